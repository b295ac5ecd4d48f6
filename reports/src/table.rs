//! The tables behind the charts: every number a chart draws, as median and spread, and the
//! method (commands, versions, machine). Renderers turn them into Markdown or HTML.

use std::collections::BTreeMap;

use crate::schema::RunResult;
use crate::set::{human_bytes, Cell, ResultSet, Spread};
pub use crate::tabular::Table;
use crate::tabular::{headers, row_head};

fn bytes_spread(s: Spread) -> String {
    if s.min == s.max {
        human_bytes(s.median)
    } else {
        format!(
            "{} [{}–{}]",
            human_bytes(s.median),
            human_bytes(s.min),
            human_bytes(s.max)
        )
    }
}

fn num_spread(s: Spread, scale: f64, digits: usize) -> String {
    if s.min == s.max {
        format!("{:.*}", digits, s.median / scale)
    } else {
        format!(
            "{:.*} [{:.*}–{:.*}]",
            digits,
            s.median / scale,
            digits,
            s.min / scale,
            digits,
            s.max / scale
        )
    }
}

/// The summary: one row per cell.
pub fn summary(set: &ResultSet) -> Table {
    let rows = set
        .cells
        .iter()
        .map(|c| {
            let mut r = row_head(c);
            r.extend([
                c.runs.len().to_string(),
                num_spread(c.spread(|r| r.summary.ops_per_sec), 1e6, 2),
                bytes_spread(c.spread(|r| r.summary.payload_bytes as f64)),
                bytes_spread(c.spread(|r| r.summary.footprint_bytes as f64)),
                bytes_spread(c.spread(|r| r.summary.index_bytes as f64)),
                num_spread(c.spread(|r| r.summary.efficiency), 1.0, 3),
                num_spread(c.spread(|r| r.summary.evictions as f64), 1.0, 0),
                num_spread(c.spread(miss_ratio), 1.0, 4),
                complete_cell(c),
            ]);
            r
        })
        .collect();
    Table {
        id: "summary".into(),
        title: "Summary".into(),
        note: "One row per configuration; figures are medians over its repeats with [min–max] \
               when they differ. Throughput excludes sampling pauses. Efficiency is payload / \
               (footprint + index)."
            .into(),
        headers: headers(&[
            "runs",
            "M ops/s",
            "payload",
            "footprint",
            "index",
            "efficiency",
            "evictions",
            "miss ratio",
            "complete",
        ]),
        rows,
    }
}

/// "yes" or "NO", with `SKIPPED N` when a run skipped malformed trace records (`--lenient`).
fn complete_cell(c: &Cell) -> String {
    let done = if c.complete() { "yes" } else { "NO" };
    match c.runs.iter().map(|r| r.run.skipped_records).max() {
        Some(n) if n > 0 => format!("{done}, SKIPPED {n}"),
        _ => done.to_string(),
    }
}

/// `misses / (hits + misses)`, 0 without reads.
pub fn miss_ratio(r: &RunResult) -> f64 {
    let reads = r.summary.hits + r.summary.misses;
    if reads == 0 {
        0.0
    } else {
        r.summary.misses as f64 / reads as f64
    }
}

/// `f / payload` over a cell's runs, as median [min–max] with two decimals; runs without
/// payload are left out, and a cell with none shows `n/a`.
fn per_payload(c: &Cell, f: fn(&RunResult) -> u64) -> String {
    let v: Vec<f64> = c
        .runs
        .iter()
        .filter(|r| r.summary.payload_bytes > 0)
        .map(|r| f(r) as f64 / r.summary.payload_bytes as f64)
        .collect();
    if v.is_empty() {
        "n/a".to_string()
    } else {
        num_spread(Spread::of(v), 1.0, 2)
    }
}

/// `hits / (hits + misses)`, 0 without reads.
pub fn hit_ratio(r: &RunResult) -> f64 {
    let reads = r.summary.hits + r.summary.misses;
    if reads == 0 {
        0.0
    } else {
        r.summary.hits as f64 / reads as f64
    }
}

/// Memory needed per byte of live data (chart 1) and where the bytes go (chart 2).
pub fn bytes(set: &ResultSet) -> Table {
    let rows = set
        .cells
        .iter()
        .map(|c| {
            let s = |f: fn(&RunResult) -> f64| bytes_spread(c.spread(f));
            let mut r = row_head(c);
            r.extend([
                s(|r| r.summary.payload_bytes as f64),
                s(|r| r.summary.metadata_bytes as f64),
                s(|r| r.summary.internal_waste_bytes as f64),
                s(|r| r.summary.external_fragmentation_bytes as f64),
                s(|r| r.summary.index_bytes as f64),
                s(|r| (r.summary.footprint_bytes + r.summary.index_bytes) as f64),
                per_payload(c, |r| r.summary.footprint_bytes + r.summary.index_bytes),
                per_payload(c, |r| r.summary.footprint_bytes),
                per_payload(c, |r| r.summary.requested_bytes),
                s(|r| r.summary.peak.footprint_bytes as f64),
                s(|r| r.summary.rss_bytes as f64),
            ]);
            r
        })
        .collect();
    Table {
        id: "bytes".into(),
        title: "Where the bytes go".into(),
        note: "At the end of each run: payload (key + value stored), metadata (requested − \
               payload), internal waste (allocated − requested), external fragmentation \
               (footprint − allocated), index; memory needed = footprint + index, and its ratio \
               to the payload. Chart 1's figures are footprint / payload and requested / payload \
               (bytes per byte of live data; n/a without payload). Peak footprint is the \
               maximum over the timeline samples."
            .into(),
        headers: headers(&[
            "payload",
            "metadata",
            "internal waste",
            "external fragmentation",
            "index",
            "memory needed",
            "needed / payload",
            "footprint / payload",
            "requested / payload",
            "peak footprint",
            "rss",
        ]),
        rows,
    }
}

/// Per phase: ops, throughput, footprint at the end and at peak (chart 3's numbers).
pub fn phases(set: &ResultSet) -> Table {
    let mut rows = Vec::new();
    for c in &set.cells {
        let r = c.representative();
        for p in &r.phases {
            let mut row = row_head(c);
            row.extend([
                p.name.clone(),
                p.ops.to_string(),
                format!("{:.2}", p.ops_per_sec / 1e6),
                human_bytes(p.end.memory.payload_bytes as f64),
                human_bytes(p.end.memory.requested_bytes as f64),
                human_bytes(p.end.memory.allocated_bytes as f64),
                human_bytes(p.end.memory.footprint_bytes as f64),
                human_bytes(p.peak.footprint_bytes as f64),
            ]);
            rows.push(row);
        }
    }
    Table {
        id: "phases".into(),
        title: "Phases".into(),
        note: "Each phase of the median-throughput run: the figures at its end, and its peak \
               footprint."
            .into(),
        headers: headers(&[
            "phase",
            "ops",
            "M ops/s",
            "payload",
            "requested",
            "allocated",
            "footprint",
            "peak footprint",
        ]),
        rows,
    }
}

/// Latency percentiles per op kind (chart 5's numbers).
pub fn latency(set: &ResultSet) -> Table {
    let mut rows = Vec::new();
    for c in &set.cells {
        let r = c.representative();
        for (kind, l) in &r.latency {
            let mut row = row_head(c);
            row.extend([
                kind.clone(),
                l.count.to_string(),
                l.timed.to_string(),
                l.p50_ns.to_string(),
                l.p90_ns.to_string(),
                l.p99_ns.to_string(),
                l.p999_ns.to_string(),
                l.max_ns.to_string(),
            ]);
            rows.push(row);
        }
    }
    Table {
        id: "latency".into(),
        title: "Latency (ns)".into(),
        note: "From the median-throughput run's HdrHistograms: one op in `latency_every` timed."
            .into(),
        headers: headers(&["op", "count", "timed", "p50", "p90", "p99", "p99.9", "max"]),
        rows,
    }
}

/// Per slab class (chart 4's numbers), for every slab cell.
pub fn slab_classes(set: &ResultSet) -> Table {
    let mut rows = Vec::new();
    for c in &set.cells {
        let r = c.representative();
        let Some(d) = r.allocator_detail.slab() else {
            continue;
        };
        for cl in &d.classes {
            let chunk_bytes = cl.used_chunks.saturating_mul(cl.chunk_size);
            let mut row = row_head(c);
            row.extend([
                cl.class.to_string(),
                cl.chunk_size.to_string(),
                cl.total_pages.to_string(),
                cl.used_chunks.to_string(),
                cl.free_chunks.to_string(),
                cl.mem_requested.to_string(),
                chunk_bytes.to_string(),
                chunk_bytes.saturating_sub(cl.mem_requested).to_string(),
            ]);
            rows.push(row);
        }
    }
    Table {
        id: "slab-classes".into(),
        title: "Slab classes".into(),
        note: "memcached's `stats slabs` for each slab run: chunk bytes = used chunks × chunk \
               size; waste = chunk bytes − requested."
            .into(),
        headers: headers(&[
            "class",
            "chunk size",
            "pages",
            "used chunks",
            "free chunks",
            "requested",
            "chunk bytes",
            "waste",
        ]),
        rows,
    }
}

/// Miss ratio against the memory limit (chart 7's numbers), for workloads run at several
/// limits.
pub fn miss_ratio_table(set: &ResultSet) -> Option<Table> {
    let mut rows = Vec::new();
    for w in set.workloads() {
        let mut by_series: BTreeMap<String, Vec<&Cell>> = BTreeMap::new();
        for c in set.cells_of(&w) {
            by_series
                .entry(format!("{} [{}]", c.key.series(), c.key.target))
                .or_default()
                .push(c);
        }
        for cells in by_series.values() {
            // A sweep: the series ran under at least two memory settings (no limit counts as one),
            // as the miss-ratio chart has it.
            let mut limits: Vec<Option<u64>> = cells.iter().map(|c| c.key.memory_limit).collect();
            limits.sort_unstable();
            limits.dedup();
            if limits.len() < 2 {
                continue;
            }
            for c in cells {
                let mut row = row_head(c);
                row.extend([
                    num_spread(c.spread(miss_ratio), 1.0, 4),
                    num_spread(c.spread(|r| r.summary.evictions as f64), 1.0, 0),
                    bytes_spread(c.spread(|r| r.summary.footprint_bytes as f64)),
                    num_spread(c.spread(hit_ratio), 1.0, 4),
                ]);
                rows.push(row);
            }
        }
    }
    (!rows.is_empty()).then(|| Table {
        id: "miss-ratio".into(),
        title: "Miss ratio against memory limit".into(),
        note: "The miss-ratio curve's numbers: misses / (hits + misses) per allocator and layout, \
               for those run under several memory limits; the hit ratio is hits / (hits + \
               misses)."
            .into(),
        headers: headers(&["miss ratio", "evictions", "footprint", "hit ratio"]),
        rows,
    })
}

/// The exact command lines, allocator versions and tunables, the machine and the date.
pub fn method(set: &ResultSet) -> Table {
    let mut rows = Vec::new();
    for c in &set.cells {
        for (r, f) in c.runs.iter().zip(&c.files) {
            let versions: Vec<String> = r
                .run
                .library_versions
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            rows.push(vec![
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                r.run.command.join(" "),
                r.run.alloc.clone(),
                versions.join("; "),
                format!(
                    "{} ({} cores), {}",
                    r.env.cpu_model, r.env.cores, r.env.kernel
                ),
                format!(
                    "fraglab {} {}, {}",
                    r.env.fraglab_version, r.env.fraglab_commit, r.env.rustc
                ),
                r.env.started_at.clone(),
            ]);
        }
    }
    Table {
        id: "method".into(),
        title: "Method".into(),
        note: "Every run: the command that produced it, the allocator with every tunable \
               resolved and its library version, the machine, the build, and when it ran."
            .into(),
        headers: [
            "file",
            "command",
            "allocator spec",
            "library",
            "machine",
            "build",
            "started",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    }
}

/// Every table of a set, in report order.
pub fn all(set: &ResultSet, base: Option<&ResultSet>) -> Vec<Table> {
    let mut out = vec![summary(set), bytes(set)];
    out.extend(crate::ramcloud::figure_1(set));
    out.extend(crate::over_time::automove_table(set));
    out.extend(crate::over_time::defrag_table(set));
    if let Some(b) = base {
        out.push(crate::baseline::ratios(set, b));
        out.push(crate::baseline::counters(set, b));
    }
    out.push(phases(set));
    out.push(latency(set));
    let slab = slab_classes(set);
    if !slab.rows.is_empty() {
        out.push(slab);
    }
    if let Some(m) = miss_ratio_table(set) {
        out.push(m);
    }
    out.push(method(set));
    out
}
