//! Memory over time: the tables "Memory over time: slab automove" and "... active defrag" and
//! their charts, on results built from the fixture and saved and loaded as `fraglab report`
//! loads them; and their absence from sets without those runs.

use std::path::{Path, PathBuf};

use fraglab_reports::chart::render_all;
use fraglab_reports::over_time::{automove_table, defrag_table, interval_hit_ratio};
use fraglab_reports::{
    AllocatorDetail, DefragSettings, DefragStats, ResultSet, RunResult, SlabMoves,
};

const SLAB: &str = "slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576";
const ZM: &str = "zmalloc:backend=jemalloc,prefix=0";

fn fixture(name: &str) -> RunResult {
    RunResult::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/results")
            .join(name),
    )
    .unwrap()
}

/// A directory removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p =
            std::env::temp_dir().join(format!("fraglab-over-time-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A slab run of `workload` under 64 MiB with automove `mode`, keeping `items`; with the
/// automover on, its page mover's counters and pages per class in every sample (class 0, the
/// pool, and classes 4 and 11 trading pages); `reads` gives every sample hits and misses.
fn slab_run(workload: &str, mode: u8, items: u64, moved: u64, reads: bool) -> RunResult {
    let mut r = fixture("etc-slab-1m.json");
    r.run.workload = workload.into();
    r.run.alloc = if mode == 0 {
        SLAB.into()
    } else {
        format!("{SLAB},automove={mode},automove_ratio=0.8,automove_window=30,tick_ops=100000")
    };
    r.run.memory_limit = Some(64 << 20);
    r.summary.items = items;
    let n = r.timeline.len() as u64;
    for (i, s) in r.timeline.iter_mut().enumerate() {
        let i = i as u64;
        s.hits = if reads { 90 * i } else { 0 };
        s.misses = if reads { 10 * i } else { 0 };
        s.class_pages =
            (mode != 0).then(|| vec![[0, 1], [4, 40 - 30 * i / n], [11, 2 + 30 * i / n]]);
    }
    r.summary.hits = r.timeline.last().unwrap().hits;
    r.summary.misses = r.timeline.last().unwrap().misses;
    let AllocatorDetail::Slab(d) = &mut r.allocator_detail else {
        panic!("the fixture's detail is the slab's");
    };
    d.moves = (mode != 0).then_some(SlabMoves {
        slab_automove: mode,
        slabs_moved: moved,
        slab_reassign_rescues: 7 * moved,
        slab_reassign_chunk_rescues: 0,
        slab_reassign_evictions_nomem: 3 * moved,
    });
    r
}

/// A zmalloc run of delete-half ending at `footprint / allocated`, with `--defrag` when
/// `defrag` has its stats.
fn defrag_run(end_ratio: f64, defrag: Option<DefragStats>) -> RunResult {
    let mut r = fixture("etc-jemalloc.json");
    r.run.workload = "delete-half".into();
    r.run.alloc = ZM.into();
    r.run.alloc_name = "zmalloc".into();
    r.run.layout = "redis".into();
    r.run.memory_limit = None;
    r.run.defrag = defrag.map(|_| DefragSettings {
        ignore_bytes: 2 << 20,
        threshold_lower: 5,
        threshold_upper: 100,
        cycle_min: 65,
        cycle_max: 75,
        max_scan_fields: 1000,
        keys_per_cpu_ms: 1000,
    });
    r.defrag = defrag;
    let allocated = 10_000_000u64;
    for s in r.timeline.iter_mut() {
        s.memory.allocated_bytes = allocated;
        s.memory.footprint_bytes = (allocated as f64 * 1.9) as u64;
    }
    let last = r.timeline.last_mut().unwrap();
    last.memory.footprint_bytes = (allocated as f64 * end_ratio) as u64;
    r.summary.allocated_bytes = allocated;
    r.summary.footprint_bytes = last.memory.footprint_bytes;
    r
}

fn save(dir: &Dir, runs: &[(&str, RunResult)]) -> ResultSet {
    for (name, r) in runs {
        r.save(&dir.0.join(format!("{name}.json"))).unwrap();
    }
    let set = ResultSet::load(&dir.0).unwrap();
    assert!(set.skipped.is_empty(), "{:?}", set.skipped);
    set
}

fn stats(bytes_moved: u64) -> DefragStats {
    DefragStats {
        active_defrag_hits: 300,
        active_defrag_misses: 700,
        active_defrag_key_hits: 100,
        active_defrag_key_misses: 150,
        bytes_moved,
        defrag_cycles: 40,
        scans_completed: 2,
        skipped_blocks: 0,
    }
}

#[test]
fn the_automove_table_has_items_the_ratio_and_the_mover_s_counters() {
    let dir = Dir::new("automove");
    let set = save(
        &dir,
        &[
            ("a0", slab_run("calcification", 0, 30_000, 0, false)),
            ("a1", slab_run("calcification", 1, 33_000, 12, false)),
            ("a2", slab_run("calcification", 2, 60_000, 500, false)),
            ("r0", slab_run("calcification-reads", 0, 100_000, 0, true)),
            ("r2", slab_run("calcification-reads", 2, 80_000, 90, true)),
        ],
    );
    let t = automove_table(&set).expect("the set has automover runs");
    assert_eq!(t.title, "Memory over time: slab automove");
    let col = |h: &str| t.headers.iter().position(|x| x == h).unwrap();
    let row = |w: &str, mode: &str| {
        t.rows
            .iter()
            .find(|r| r[0] == w && r[col("automove")] == mode)
            .unwrap_or_else(|| panic!("no row {w} automove={mode}: {:?}", t.rows))
    };
    assert_eq!(t.rows.len(), 5);
    let two = row("calcification", "2");
    assert_eq!(two[col("allocator")], SLAB);
    assert_eq!(two[col("memory limit")], "64.00 MiB");
    assert_eq!(two[col("items kept")], "60000");
    assert_eq!(two[col("against automove=0")], "2.00x");
    assert_eq!(two[col("pages moved")], "500");
    assert_eq!(two[col("rescues")], "3500");
    assert_eq!(two[col("evictions_nomem")], "1500");
    assert_eq!(two[col("hit ratio")], "–");
    assert_eq!(
        row("calcification", "1")[col("against automove=0")],
        "1.10x"
    );
    assert_eq!(row("calcification", "0")[col("pages moved")], "0");
    let reads = row("calcification-reads", "2");
    assert_eq!(reads[col("against automove=0")], "0.80x");
    assert_eq!(reads[col("hit ratio")], "0.9000");
    assert!(
        t.note.contains(&format!(
            "calcification, 64.00 MiB limit, {SLAB}: automove=2 keeps 2.00x the items of \
             automove=0 (the goal: at least 1.5x; met)."
        )),
        "{}",
        t.note
    );
    // The goal is stated on calcification only.
    assert!(
        t.note
            .contains(&format!("calcification-reads, 64.00 MiB limit, {SLAB}: automove=2 keeps 0.80x the items of automove=0.")),
        "{}",
        t.note
    );

    // Below the goal, the note says so.
    let dir = Dir::new("automove-short");
    let set = save(
        &dir,
        &[
            ("a0", slab_run("calcification", 0, 30_000, 0, false)),
            ("a2", slab_run("calcification", 2, 40_000, 500, false)),
        ],
    );
    let note = automove_table(&set).unwrap().note;
    assert!(
        note.contains("keeps 1.33x the items of automove=0 (the goal: at least 1.5x; NOT met)"),
        "{note}"
    );
}

#[test]
fn the_defrag_table_pairs_runs_with_and_without_defrag() {
    let dir = Dir::new("defrag");
    let set = save(
        &dir,
        &[
            ("off", defrag_run(1.9, None)),
            ("on", defrag_run(1.05, Some(stats(16 << 20)))),
        ],
    );
    // With and without --defrag are two cells, not two repeats of one.
    assert_eq!(set.cells.len(), 2);
    let t = defrag_table(&set).expect("the set has a --defrag run");
    assert_eq!(t.title, "Memory over time: active defrag");
    let col = |h: &str| t.headers.iter().position(|x| x == h).unwrap();
    assert_eq!(t.rows.len(), 2);
    let (off, on) = (&t.rows[0], &t.rows[1]);
    assert_eq!(off[col("defrag")], "off");
    assert_eq!(off[col("end footprint / allocated")], "1.900");
    assert_eq!(off[col("bytes moved")], "–");
    assert!(on[col("defrag")].starts_with("ignore-bytes=2097152,threshold-lower=5"));
    assert_eq!(on[col("peak footprint / allocated")], "1.900");
    assert_eq!(on[col("end footprint / allocated")], "1.050");
    assert_eq!(on[col("bytes moved")], "16.00 MiB");
    assert_eq!(on[col("hits")], "300");
    assert_eq!(on[col("misses")], "700");
    assert!(
        t.note
            .contains("ends at 1.050 from 1.900 without it (the goal: at most 1.15; met)."),
        "{}",
        t.note
    );
    let dir = Dir::new("defrag-short");
    let set = save(
        &dir,
        &[
            ("off", defrag_run(1.9, None)),
            ("on", defrag_run(1.4, Some(stats(1 << 20)))),
        ],
    );
    let note = defrag_table(&set).unwrap().note;
    assert!(
        note.contains("ends at 1.400 from 1.900 without it (the goal: at most 1.15; NOT met)"),
        "{note}"
    );
}

#[test]
fn the_section_is_absent_without_its_runs() {
    let fixture_set =
        ResultSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results"))
            .unwrap();
    assert_eq!(automove_table(&fixture_set), None);
    assert_eq!(defrag_table(&fixture_set), None);
    let ids: Vec<String> = render_all(&fixture_set, None)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert!(
        !ids.iter()
            .any(|i| i.starts_with("automove-") || i.starts_with("defrag-")),
        "{ids:?}"
    );
    // Slab runs with the automover off, and zmalloc runs without defrag, are no study.
    let dir = Dir::new("absent");
    let set = save(
        &dir,
        &[
            ("a0", slab_run("calcification", 0, 30_000, 0, false)),
            ("off", defrag_run(1.9, None)),
        ],
    );
    assert_eq!(automove_table(&set), None);
    assert_eq!(defrag_table(&set), None);
    let tables = fraglab_reports::table::all(&set, None);
    assert!(!tables
        .iter()
        .any(|t| t.title.starts_with("Memory over time")));
}

#[test]
fn the_charts_are_well_formed() {
    let dir = Dir::new("charts");
    let set = save(
        &dir,
        &[
            ("a0", slab_run("calcification", 0, 30_000, 0, false)),
            ("a1", slab_run("calcification", 1, 33_000, 12, false)),
            ("a2", slab_run("calcification", 2, 60_000, 500, false)),
            ("r0", slab_run("calcification-reads", 0, 100_000, 0, true)),
            ("r2", slab_run("calcification-reads", 2, 80_000, 90, true)),
            ("off", defrag_run(1.9, None)),
            ("on", defrag_run(1.05, Some(stats(16 << 20)))),
        ],
    );
    let charts = render_all(&set, None).unwrap();
    let get = |id: &str| {
        charts.iter().find(|c| c.id == id).unwrap_or_else(|| {
            panic!(
                "no chart {id}: {:?}",
                charts.iter().map(|c| &c.id).collect::<Vec<_>>()
            )
        })
    };
    for id in [
        "automove-items-calcification-64m",
        "automove-pages-calcification-64m",
        "automove-items-calcification-reads-64m",
        "automove-hit-ratio-calcification-reads-64m",
        "automove-pages-calcification-reads-64m",
        "defrag-fragmentation-delete-half",
    ] {
        let c = get(id);
        assert!(
            c.svg.starts_with("<svg") && c.svg.trim_end().ends_with("</svg>"),
            "{id}"
        );
        assert!(c.svg.contains("<polyline"), "{id}: no line drawn");
        assert!(!c.caption.is_empty(), "{id}");
    }
    // calcification only writes: no hit-ratio chart.
    assert!(!charts
        .iter()
        .any(|c| c.id == "automove-hit-ratio-calcification-64m"));
    let items = get("automove-items-calcification-64m");
    for label in [
        "slab / memcached",
        "slab:automove=1 / memcached",
        "slab:automove=2 / memcached",
    ] {
        assert!(items.svg.contains(label), "items legend lacks {label}");
    }
    // Pages: one panel per mode that recorded them; automove=0 named as recording none.
    let pages = get("automove-pages-calcification-64m");
    assert!(pages.svg.contains("slab:automove=1 / memcached"));
    assert!(pages.svg.contains("slab:automove=2 / memcached"));
    assert!(pages.svg.contains("global page pool"));
    assert!(
        pages.svg.contains("class 4 ("),
        "class 4's chunk size in the legend"
    );
    assert!(pages
        .caption
        .contains("record no pages per class over time"));
    assert!(pages.caption.contains("slab / memcached"));
    let frag = get("defrag-fragmentation-delete-half");
    assert!(frag.svg.contains("+ defrag"));
    assert!(frag.svg.contains("goal: 1.15"));
}

#[test]
fn interval_hit_ratios_count_each_interval_s_reads_alone() {
    let mut r = fixture("etc-slab-1m.json");
    r.timeline.truncate(3);
    let reads = [(0, 0), (90, 10), (100, 100)];
    for (s, (h, m)) in r.timeline.iter_mut().zip(reads) {
        s.hits = h;
        s.misses = m;
    }
    let got = interval_hit_ratio(&r.timeline);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, 0.9);
    assert_eq!(got[1].1, 10.0 / 100.0);
}
