//! Memory over time: memcached's slab automover and Redis's active defrag, the two mechanisms
//! that fight fragmentation while a server runs, and the report's tables on them.
//!
//! - **Slab automove** (memcached 1.6.18, `slabs.c`, `slab_automove.c`): runs of one workload
//!   over the slab allocator under a memory limit, with `automove=0`, `1` and `2`. The table
//!   "Memory over time: slab automove" gives per configuration the items kept at the end, the
//!   items against the same run with the automover off, the hit ratio, and the page mover's
//!   counters (`slabs_moved`, `slab_reassign_rescues`, `slab_reassign_chunk_rescues`,
//!   `slab_reassign_evictions_nomem`). The goal it is read against: on `calcification` under
//!   `--memory 64m`, `automove=2` keeps at least [`AUTOMOVE_GOAL`] times the items of
//!   `automove=0`.
//! - **Active defrag** (Redis 7.0, `src/defrag.c`): runs of one workload over jemalloc (or
//!   zmalloc over jemalloc) with and without `--defrag`. The table "Memory over time: active
//!   defrag" gives the fragmentation (footprint / allocated: jemalloc's active / allocated) at
//!   its peak and at the end, and what the cycle did (`bytes_moved`, `active_defrag_hits`,
//!   ...). The goal: on `delete-half`, defrag brings active / allocated from about 1.9 to at
//!   most [`DEFRAG_GOAL`].
//!
//! Each table (and the charts in `chart/over_time.rs`) is left out when the set has no runs
//! for it: no slab run with the automover on, or no run with `--defrag`.

use crate::schema::{RunResult, Sample};
use crate::set::{human_bytes, Cell, ResultSet, Spread};
use crate::tabular::Table;

/// The workload the automover goal is stated on.
pub const AUTOMOVE_GOAL_WORKLOAD: &str = "calcification";
/// The memory limit the automover goal is stated at: 64 MiB.
pub const AUTOMOVE_GOAL_LIMIT: u64 = 64 << 20;
/// Items kept with `automove=2` / items kept with `automove=0`, at least.
pub const AUTOMOVE_GOAL: f64 = 1.5;
/// The workload the defrag goal is stated on.
pub const DEFRAG_GOAL_WORKLOAD: &str = "delete-half";
/// Active / allocated at the end with defrag, at most.
pub const DEFRAG_GOAL: f64 = 1.15;

/// The automover mode of an allocator spec: its `automove` key for a slab spec (0 without
/// one), None for any other allocator.
pub fn automove_mode(alloc: &str) -> Option<u8> {
    let rest = match alloc.split_once(':') {
        Some(("slab", rest)) => rest,
        None if alloc == "slab" => "",
        _ => return None,
    };
    let mut mode = 0;
    for kv in rest.split(',') {
        if let Some(v) = kv.strip_prefix("automove=") {
            mode = v.parse().ok()?;
        }
    }
    Some(mode)
}

/// A slab spec without its automover keys: what runs with automove 0, 1 and 2 share.
pub fn without_automove(alloc: &str) -> String {
    let Some((name, rest)) = alloc.split_once(':') else {
        return alloc.to_string();
    };
    let kept: Vec<&str> = rest
        .split(',')
        .filter(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            !matches!(
                k,
                "automove" | "automove_ratio" | "automove_window" | "tick_ops" | "move_us"
            )
        })
        .collect();
    if kept.is_empty() {
        name.to_string()
    } else {
        format!("{name}:{}", kept.join(","))
    }
}

/// Hits / (hits + misses), None without reads.
pub fn hit_ratio(hits: u64, misses: u64) -> Option<f64> {
    let reads = hits + misses;
    (reads > 0).then(|| hits as f64 / reads as f64)
}

/// Footprint / allocated of a sample (jemalloc's active / allocated; Redis's
/// `allocator_frag_ratio`), None without allocated bytes.
pub fn fragmentation(s: &Sample) -> Option<f64> {
    let a = s.memory.allocated_bytes;
    (a > 0).then(|| s.memory.footprint_bytes as f64 / a as f64)
}

/// The hit ratio of each interval between timeline samples (the reads of that interval only,
/// so a change shows when it happens): `(op, ratio)` at the end of every interval with reads.
pub fn interval_hit_ratio(timeline: &[Sample]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let (mut hits, mut misses) = (0u64, 0u64);
    for s in timeline {
        let (dh, dm) = (s.hits.saturating_sub(hits), s.misses.saturating_sub(misses));
        if let Some(r) = hit_ratio(dh, dm) {
            out.push((s.op as f64, r));
        }
        (hits, misses) = (s.hits, s.misses);
    }
    out
}

/// What runs with different automover modes share: the workload, the memory limit, the slab
/// spec without its automover keys, the layout, the target and the settings.
pub fn automove_group(c: &Cell) -> (String, Option<u64>, String, String, String, String) {
    (
        c.key.workload.clone(),
        c.key.memory_limit,
        without_automove(&c.key.alloc),
        c.key.layout.clone(),
        c.key.target.clone(),
        c.key.settings.clone(),
    )
}

/// The slab cells of the set whose group has a run with the automover on, grouped (in the
/// set's order) and sorted by mode within a group. Empty: the set has no automover study.
pub fn automove_groups(set: &ResultSet) -> Vec<Vec<&Cell>> {
    let mut groups: Vec<Vec<&Cell>> = Vec::new();
    for c in set
        .cells
        .iter()
        .filter(|c| automove_mode(&c.key.alloc).is_some())
    {
        let g = automove_group(c);
        match groups.iter_mut().find(|cs| automove_group(cs[0]) == g) {
            Some(cs) => cs.push(c),
            None => groups.push(vec![c]),
        }
    }
    groups.retain(|cs| cs.iter().any(|c| automove_mode(&c.key.alloc) != Some(0)));
    for cs in &mut groups {
        cs.sort_by_key(|c| automove_mode(&c.key.alloc));
    }
    groups
}

/// The median over a cell's runs.
fn median(c: &Cell, f: impl Fn(&RunResult) -> f64) -> f64 {
    c.spread(f).median
}

/// The page mover's figures of a cell (medians), all 0 when its runs recorded none.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MoverFigures {
    /// `slabs_moved`.
    pub slabs_moved: f64,
    /// `slab_reassign_rescues`.
    pub rescues: f64,
    /// `slab_reassign_chunk_rescues`.
    pub chunk_rescues: f64,
    /// `slab_reassign_evictions_nomem`.
    pub evictions_nomem: f64,
}

/// The page mover's figures of a cell.
pub fn mover_figures(c: &Cell) -> MoverFigures {
    let moves = |r: &RunResult| r.allocator_detail.slab().and_then(|s| s.moves);
    MoverFigures {
        slabs_moved: median(c, |r| moves(r).map_or(0.0, |m| m.slabs_moved as f64)),
        rescues: median(c, |r| {
            moves(r).map_or(0.0, |m| m.slab_reassign_rescues as f64)
        }),
        chunk_rescues: median(c, |r| {
            moves(r).map_or(0.0, |m| m.slab_reassign_chunk_rescues as f64)
        }),
        evictions_nomem: median(c, |r| {
            moves(r).map_or(0.0, |m| m.slab_reassign_evictions_nomem as f64)
        }),
    }
}

/// Items at the end, the median over a cell's runs.
pub fn items_kept(c: &Cell) -> f64 {
    median(c, |r| r.summary.items as f64)
}

/// The hit ratio over a cell's whole runs (median), None without reads.
pub fn cell_hit_ratio(c: &Cell) -> Option<f64> {
    let v: Vec<f64> = c
        .runs
        .iter()
        .filter_map(|r| hit_ratio(r.summary.hits, r.summary.misses))
        .collect();
    (!v.is_empty()).then(|| Spread::of(v).median)
}

/// Items kept with `automove=2` / with `automove=0` in a group, when it has both.
pub fn automove_ratio(group: &[&Cell]) -> Option<f64> {
    let of = |m: u8| {
        group
            .iter()
            .find(|c| automove_mode(&c.key.alloc) == Some(m))
            .map(|c| items_kept(c))
    };
    match (of(2), of(0)) {
        (Some(two), Some(zero)) if zero > 0.0 => Some(two / zero),
        _ => None,
    }
}

fn limit_text(m: Option<u64>) -> String {
    m.map_or("none".into(), |m| human_bytes(m as f64))
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

/// The table "Memory over time: slab automove", None without an automover run.
pub fn automove_table(set: &ResultSet) -> Option<Table> {
    let groups = automove_groups(set);
    if groups.is_empty() {
        return None;
    }
    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    for g in &groups {
        let zero = g
            .iter()
            .find(|c| automove_mode(&c.key.alloc) == Some(0))
            .map(|c| items_kept(c));
        for c in g {
            let items = items_kept(c);
            let m = mover_figures(c);
            let mut against = match zero {
                Some(z) if z > 0.0 => format!("{:.2}x", items / z),
                _ => "–".into(),
            };
            if !c.complete() {
                against.push_str(" (incomplete)");
            }
            rows.push(vec![
                c.key.workload.clone(),
                without_automove(&c.key.alloc),
                c.key.layout.clone(),
                limit_text(c.key.memory_limit),
                c.key.target.clone(),
                automove_mode(&c.key.alloc).unwrap_or(0).to_string(),
                count(items),
                against,
                cell_hit_ratio(c).map_or("–".into(), |r| format!("{r:.4}")),
                count(m.slabs_moved),
                count(m.rescues),
                count(m.chunk_rescues),
                count(m.evictions_nomem),
                count(median(c, |r| r.summary.evictions as f64)),
            ]);
        }
        if let Some(r) = automove_ratio(g) {
            let (w, limit) = (&g[0].key.workload, g[0].key.memory_limit);
            let goal = if *w == AUTOMOVE_GOAL_WORKLOAD && limit == Some(AUTOMOVE_GOAL_LIMIT) {
                format!(
                    " (the goal: at least {AUTOMOVE_GOAL:.1}x; {})",
                    if r >= AUTOMOVE_GOAL { "met" } else { "NOT met" }
                )
            } else {
                String::new()
            };
            verdicts.push(format!(
                "{w}, {} limit, {}: automove=2 keeps {r:.2}x the items of automove=0{goal}.",
                limit_text(limit),
                without_automove(&g[0].key.alloc)
            ));
        }
    }
    let mut note = String::from(
        "memcached 1.6.18's slab automover in the model (slabs.c, slab_automove.c): the same \
         workload and memory limit with automove=0 (off), 1 (a page moves when a class's \
         COLD-tail age over the window is below automove_ratio of the oldest's, or free pages \
         go to the global pool) and 2 (a page is requested on every eviction). Items kept: keys \
         stored at the end (median over repeats); against automove=0: items / items of the \
         automove=0 run of the same workload and limit; hit ratio: hits / reads over the whole \
         run (– where the workload only writes). The page mover's counters, as memcached's \
         `stats` names them: pages moved (slabs_moved), items copied out of a moving page \
         into a free chunk of their class (slab_reassign_rescues; chunked items' chunks: \
         slab_reassign_chunk_rescues), items evicted because their class had no free chunk \
         (slab_reassign_evictions_nomem); evictions counts every eviction, these included. The \
         goal: on calcification under --memory 64m, automove=2 keeps at least 1.5x the items \
         of automove=0.",
    );
    for v in verdicts {
        note.push(' ');
        note.push_str(&v);
    }
    Some(Table {
        id: "over-time-automove".into(),
        title: "Memory over time: slab automove".into(),
        note,
        headers: [
            "workload",
            "allocator",
            "layout",
            "memory limit",
            "target",
            "automove",
            "items kept",
            "against automove=0",
            "hit ratio",
            "pages moved",
            "rescues",
            "chunk rescues",
            "evictions_nomem",
            "evictions",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    })
}

/// What runs with and without defrag share: everything in the cell key but the defrag.
pub fn defrag_group(c: &Cell) -> (String, String, String, Option<u64>, String, String) {
    (
        c.key.workload.clone(),
        c.key.alloc.clone(),
        c.key.layout.clone(),
        c.key.memory_limit,
        c.key.target.clone(),
        c.key.settings.clone(),
    )
}

/// The cells of every configuration that ran with `--defrag`, each group with the same
/// configuration without it first (when the set has it). Empty: no defrag study.
pub fn defrag_groups(set: &ResultSet) -> Vec<Vec<&Cell>> {
    let mut groups: Vec<Vec<&Cell>> = Vec::new();
    for c in set.cells.iter().filter(|c| c.key.defrag.is_some()) {
        let g = defrag_group(c);
        match groups.iter_mut().find(|cs| defrag_group(cs[0]) == g) {
            Some(cs) => cs.push(c),
            None => groups.push(vec![c]),
        }
    }
    for cs in &mut groups {
        let g = defrag_group(cs[0]);
        if let Some(off) = set
            .cells
            .iter()
            .find(|c| c.key.defrag.is_none() && defrag_group(c) == g)
        {
            cs.insert(0, off);
        }
    }
    groups
}

/// A cell's fragmentation (footprint / allocated) at the end and at its peak over the
/// timeline (medians over the runs), None without allocated bytes.
pub fn fragmentation_end_peak(c: &Cell) -> (Option<f64>, Option<f64>) {
    let end: Vec<f64> = c
        .runs
        .iter()
        .filter(|r| r.summary.allocated_bytes > 0)
        .map(|r| r.summary.footprint_bytes as f64 / r.summary.allocated_bytes as f64)
        .collect();
    let peak: Vec<f64> = c
        .runs
        .iter()
        .filter_map(|r| r.timeline.iter().filter_map(fragmentation).reduce(f64::max))
        .collect();
    let m = |v: Vec<f64>| (!v.is_empty()).then(|| Spread::of(v).median);
    (m(end), m(peak))
}

/// The table "Memory over time: active defrag", None without a `--defrag` run.
pub fn defrag_table(set: &ResultSet) -> Option<Table> {
    let groups = defrag_groups(set);
    if groups.is_empty() {
        return None;
    }
    let ratio = |v: Option<f64>| v.map_or("–".into(), |r| format!("{r:.3}"));
    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    for g in &groups {
        let off = g
            .iter()
            .find(|c| c.key.defrag.is_none())
            .and_then(|c| fragmentation_end_peak(c).0);
        for c in g {
            let (end, peak) = fragmentation_end_peak(c);
            let d = |f: fn(&crate::DefragStats) -> u64| {
                count(median(c, |r| r.defrag.as_ref().map_or(0, f) as f64))
            };
            let (moved, hits, misses, key_hits, key_misses, scans) = if c.key.defrag.is_some() {
                (
                    human_bytes(median(c, |r| {
                        r.defrag.as_ref().map_or(0, |s| s.bytes_moved) as f64
                    })),
                    d(|s| s.active_defrag_hits),
                    d(|s| s.active_defrag_misses),
                    d(|s| s.active_defrag_key_hits),
                    d(|s| s.active_defrag_key_misses),
                    d(|s| s.scans_completed),
                )
            } else {
                let off = || "–".to_string();
                (off(), off(), off(), off(), off(), off())
            };
            let mut end_text = ratio(end);
            if !c.complete() {
                end_text.push_str(" (incomplete)");
            }
            rows.push(vec![
                c.key.workload.clone(),
                c.key.alloc.clone(),
                c.key.layout.clone(),
                limit_text(c.key.memory_limit),
                c.key.defrag.clone().unwrap_or_else(|| "off".into()),
                ratio(peak),
                end_text,
                moved,
                hits,
                misses,
                key_hits,
                key_misses,
                scans,
            ]);
            if let (Some(spec), Some(e)) = (&c.key.defrag, end) {
                let from = off.map_or(String::new(), |o| format!(" from {o:.3} without it"));
                let goal = if c.key.workload == DEFRAG_GOAL_WORKLOAD {
                    format!(
                        " (the goal: at most {DEFRAG_GOAL:.2}; {})",
                        if e <= DEFRAG_GOAL { "met" } else { "NOT met" }
                    )
                } else {
                    String::new()
                };
                verdicts.push(format!(
                    "{}, {}: defrag {spec} ends at {e:.3}{from}{goal}.",
                    c.key.workload,
                    c.key.alloc.clone()
                ));
            }
        }
    }
    let mut note = String::from(
        "Redis 7.0's active defrag in the model (src/defrag.c, the move rule of Redis's \
         jemalloc hint): each configuration run with --defrag beside the same run without it \
         (off). Fragmentation is footprint / allocated (jemalloc's active / allocated, Redis's \
         allocator_frag_ratio): its peak over the timeline samples and its value at the end \
         (medians over repeats). Bytes moved: requested bytes of the blocks moved; hits: blocks \
         moved; misses: blocks the hint said to leave; key hits / misses: keys visited with and \
         without a block moved; scans: full scans of the keyspace (Redis's INFO stats names). \
         The goal: on delete-half, defrag brings active / allocated from about 1.9 to at most \
         1.15.",
    );
    for v in verdicts {
        note.push(' ');
        note.push_str(&v);
    }
    Some(Table {
        id: "over-time-defrag".into(),
        title: "Memory over time: active defrag".into(),
        note,
        headers: [
            "workload",
            "allocator",
            "layout",
            "memory limit",
            "defrag",
            "peak footprint / allocated",
            "end footprint / allocated",
            "bytes moved",
            "hits",
            "misses",
            "key hits",
            "key misses",
            "scans",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automove_modes_and_base_specs() {
        let base = "slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576";
        assert_eq!(automove_mode(base), Some(0));
        assert_eq!(automove_mode("slab"), Some(0));
        let two = format!(
            "{base},automove=2,automove_ratio=0.8,automove_window=30,tick_ops=100000,move_us=750"
        );
        assert_eq!(automove_mode(&two), Some(2));
        assert_eq!(without_automove(&two), base);
        assert_eq!(automove_mode("jemalloc"), None);
        assert_eq!(automove_mode("slab-lru"), None);
        assert_eq!(automove_mode("slab:automove=x"), None);
        assert_eq!(without_automove("slab:automove=1"), "slab");
        assert_eq!(hit_ratio(3, 1), Some(0.75));
        assert_eq!(hit_ratio(0, 0), None);
    }
}
