//! The text renderers, snapshot-tested on fixed results: the summary `fraglab run` prints and
//! the table `fraglab compare` prints (from the groups of compare.json).

use std::path::Path;

use fraglab_reports::compare::{self, CellFigures, CellRecord, CellStatus, GroupRecord};
use fraglab_reports::summary::run_summary;
use fraglab_reports::RunResult;

mod support;

fn fixture(name: &str) -> RunResult {
    RunResult::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/results")
            .join(name),
    )
    .unwrap()
}

#[test]
fn the_run_summary_matches_its_snapshot() {
    // A run with phases and a memory limit, and one with repeats' worth of latency kinds.
    let text = run_summary(&fixture("etc-slab-1m.json"))
        + "\n"
        + &run_summary(&fixture("w3-jemalloc.json"));
    support::check_snapshot("run-summary.txt", &text);
}

/// A cell of compare.json for a fixture result, as compare records a finished cell.
fn cell(name: &str, status: CellStatus) -> CellRecord {
    let r = fixture(name);
    CellRecord {
        id: name.trim_end_matches(".json").to_string(),
        workload: r.run.workload.clone(),
        scale: Some(1.0),
        alloc: r.run.alloc.clone(),
        layout: r.run.layout.clone(),
        default_layout: true,
        target: r.run.target.clone(),
        memory_limit: r.run.memory_limit,
        repeat: 0,
        defrag: None,
        file: format!("cells/{name}"),
        status,
        reason: None,
        exit_code: Some(0),
        seconds: Some(1.0),
        figures: Some(CellFigures::of(&r)),
    }
}

#[test]
fn the_compare_table_matches_its_snapshot() {
    // A memory sweep of two allocators (memory and hit-ratio columns), a group of two repeats,
    // and a refused and an unfinished group.
    let mut groups: Vec<GroupRecord> = [
        "etc-jemalloc-1m.json",
        "etc-jemalloc-2m.json",
        "etc-jemalloc-4m.json",
        "etc-slab-1m.json",
        "etc-slab-2m.json",
        "etc-slab-4m.json",
    ]
    .iter()
    .map(|n| GroupRecord::of(&[&cell(n, CellStatus::Ok)], None))
    .collect();
    let repeats = [
        cell("w3-jemalloc-r1.json", CellStatus::Ok),
        cell("w3-jemalloc-r2.json", CellStatus::Resumed),
    ];
    groups.push(GroupRecord::of(&[&repeats[0], &repeats[1]], None));
    let mut refused = cell("w3-slab.json", CellStatus::Skipped);
    refused.figures = None;
    groups.push(GroupRecord::of(
        &[&refused],
        Some("the redis layout keeps no list links; slab-lru needs them"),
    ));
    let mut pending = cell("w3-mimalloc.json", CellStatus::NotRun);
    pending.figures = None;
    groups.push(GroupRecord::of(&[&pending], None));
    let text = compare::table(&groups);
    support::check_snapshot("compare-table.txt", &text);
    // The sweep's hit ratios rise with the limit, per allocator.
    for series in groups[..6].chunks(3) {
        let h: Vec<f64> = series.iter().map(|g| g.hit_ratio.unwrap().median).collect();
        assert!(h[0] <= h[1] && h[1] <= h[2], "{h:?}");
    }
}
