//! RAMCloud's paper beside a set: the log's typed detail through a saved result, the table
//! "RAMCloud's Figure 1", the write-amplification chart and the utilization charts, on sets
//! fabricated from the fixture.

use std::path::{Path, PathBuf};

use fraglab_reports::chart::render_all;
use fraglab_reports::ramcloud::{figure_1, log_figures};
use fraglab_reports::{AllocatorDetail, Cell, LogDetail, ResultSet, RunResult};

fn fixture() -> ResultSet {
    ResultSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results")).unwrap()
}

const LOG: &str = "log:segment=8388608,cleaner=cost-benefit,utilization=0.9,free_min=2";
const GREEDY: &str = "log:segment=1048576,cleaner=greedy,utilization=0.8,free_min=2";

fn log_detail(spec: &str, written: u64, copied: u64) -> LogDetail {
    let greedy = spec.contains("greedy");
    LogDetail {
        segment_size: if greedy { 1 << 20 } else { 8 << 20 },
        cleaner: if greedy { "greedy" } else { "cost-benefit" }.into(),
        utilization_target: if greedy { 0.8 } else { 0.9 },
        segments: 4,
        segments_max: None,
        segments_free: None,
        bytes_written: written,
        bytes_copied: copied,
        write_amplification: (written + copied) as f64 / written as f64,
        cleaner_runs: 2,
        segments_cleaned: 3,
        segments_released: 3,
        cleaner_pinned_skips: 0,
        utilization: 0.5,
    }
}

/// A copy of the first cell of `workload` in `set`, as allocator `alloc` with one run per
/// `(payload, allocated, footprint)`, each with `detail` (when given).
fn fabricate(
    set: &ResultSet,
    workload: &str,
    alloc: &str,
    runs: &[(u64, u64, u64)],
    detail: Option<LogDetail>,
) -> Cell {
    let mut c = set
        .cells
        .iter()
        .find(|c| c.key.workload == workload && c.key.memory_limit.is_none())
        .unwrap()
        .clone();
    c.key.alloc = alloc.into();
    c.key.layout = "compact".into();
    let template = c.runs[0].clone();
    c.runs = runs
        .iter()
        .enumerate()
        .map(|(i, &(payload, allocated, footprint))| {
            let mut r = template.clone();
            r.run.alloc = alloc.into();
            r.run.alloc_name = alloc.split(':').next().unwrap().into();
            r.summary.payload_bytes = payload;
            r.summary.allocated_bytes = allocated;
            r.summary.footprint_bytes = footprint;
            r.summary.ops_per_sec = 1e6 + i as f64;
            r.allocator_detail = detail
                .clone()
                .map_or(AllocatorDetail::Absent, AllocatorDetail::Log);
            r
        })
        .collect();
    c.files = (0..runs.len())
        .map(|i| PathBuf::from(format!("{alloc}-{i}.json")))
        .collect();
    c
}

/// The fixture with a log cell on ramcloud-w3 (two runs) and a greedy one on etc.
fn with_log() -> ResultSet {
    let mut set = fixture();
    let w3 = fabricate(
        &set,
        "ramcloud-w3",
        LOG,
        &[(800, 880, 1000), (800, 920, 1000)],
        Some(log_detail(LOG, 1000, 500)),
    );
    let etc = fabricate(
        &set,
        "etc",
        GREEDY,
        &[(700, 700, 1000)],
        Some(log_detail(GREEDY, 4000, 1000)),
    );
    set.cells.push(w3);
    set.cells.push(etc);
    set
}

#[test]
fn the_log_detail_round_trips_through_a_saved_result() {
    let dir = std::env::temp_dir().join(format!("fraglab-ramcloud-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let set = with_log();
    let cell = set.cells.iter().find(|c| c.key.alloc == LOG).unwrap();
    let path = dir.join("w3-log.json");
    cell.runs[0].save(&path).unwrap();
    let back = RunResult::load(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(back.allocator_detail, cell.runs[0].allocator_detail);
    let l = back.allocator_detail.log().expect("read back typed");
    assert_eq!((l.bytes_written, l.bytes_copied), (1000, 500));
    assert_eq!(l.cleaner, "cost-benefit");
    assert_eq!(back.allocator_detail.allocator(), Some("log"));
    // The JSON has the allocator's tag and names.
    let v = serde_json::to_value(&back).unwrap();
    assert_eq!(v["allocator_detail"]["allocator"], "log");
    assert_eq!(v["allocator_detail"]["segment_size"], 8 << 20);
    assert!(v["allocator_detail"]["segments_max"].is_null());
}

#[test]
fn log_figures_are_medians_of_utilization_and_write_amplification() {
    let set = with_log();
    let cell = set.cells.iter().find(|c| c.key.alloc == LOG).unwrap();
    let l = log_figures(cell).unwrap();
    // allocated / footprint: 0.88 and 0.92, median 0.90.
    assert!((l.utilization.unwrap() - 0.9).abs() < 1e-12, "{l:?}");
    // (1000 + 500) / 1000.
    assert!((l.write_amplification - 1.5).abs() < 1e-12, "{l:?}");
    assert_eq!(
        (l.cleaner.as_str(), l.segment_size),
        ("cost-benefit", 8 << 20)
    );
    // Not a log cell: no figures.
    let je = set
        .cells
        .iter()
        .find(|c| c.key.alloc == "jemalloc" && c.key.workload == "ramcloud-w3")
        .unwrap();
    assert_eq!(log_figures(je), None);
}

#[test]
fn figure_1_has_footprint_per_payload_and_the_logs_write_amplification() {
    let mut set = with_log();
    // A cell whose runs need 2.0 and 3.0 bytes per live byte: the median is 2.5; and one that
    // needs exactly 2.0.
    let two = fabricate(&set, "ramcloud-w3", "glibc", &[(1000, 1500, 2000)], None);
    let spread = fabricate(
        &set,
        "ramcloud-w3",
        "mimalloc:fabricated",
        &[(1000, 1500, 2000), (1000, 1500, 3000)],
        None,
    );
    set.cells.push(two);
    set.cells.push(spread);
    let t = figure_1(&set).expect("a ramcloud workload: the table");
    assert_eq!(t.title, "RAMCloud's Figure 1");
    assert_eq!(t.headers, ["allocator", "layout", "target", "ramcloud-w3"]);
    let row = |alloc: &str| {
        t.rows
            .iter()
            .find(|r| r[0] == alloc && r[1] == "compact")
            .unwrap_or_else(|| panic!("no row {alloc}: {:?}", t.rows))
    };
    assert_eq!(row("glibc")[3], "2.00");
    assert_eq!(row("mimalloc:fabricated")[3], "2.50");
    // The log on ramcloud-w3: footprint / payload = 1000 / 800, write amplification 1.5.
    assert_eq!(row(LOG)[3], "1.25 (WA 1.50)");
    // The greedy log ran on etc only: no ramcloud figure, no row.
    assert!(t.rows.iter().all(|r| r[0] != GREEDY), "{:?}", t.rows);
    // Memory-limited cells are not rows: the fixture's etc sweep is not a ramcloud workload,
    // and every row is a configuration without a limit on ramcloud-w3.
    assert_eq!(t.rows.len(), 7, "{:?}", t.rows);
    // The paper's figures, cited.
    for words in [
        "80-90% memory utilization",
        "glibc 2.12 malloc",
        "up to about 2x the live data",
        "u/(1-u) bytes per byte freed",
        "Rumble, Kejriwal, Ousterhout, Log-structured Memory for DRAM-based Storage, FAST \
         2014, Figure 1 and Table 1",
    ] {
        assert!(t.note.contains(words), "{words}: {}", t.note);
    }
    // In the report's tables, after "Where the bytes go".
    let all = fraglab_reports::table::all(&set, None);
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    let at = ids.iter().position(|i| *i == "ramcloud-figure-1").unwrap();
    assert_eq!(ids[at - 1], "bytes", "{ids:?}");
}

#[test]
fn figure_1_needs_a_ramcloud_workload() {
    let mut set = with_log();
    set.cells.retain(|c| c.key.workload == "etc");
    assert!(figure_1(&set).is_none());
    let all = fraglab_reports::table::all(&set, None);
    assert!(all.iter().all(|t| t.id != "ramcloud-figure-1"));
}

#[test]
fn the_write_amplification_chart_draws_every_log_cell_beside_the_cleaning_cost() {
    let charts = render_all(&with_log(), None).unwrap();
    let ids: Vec<&str> = charts.iter().map(|c| c.id.as_str()).collect();
    let wa = charts
        .iter()
        .find(|c| c.id == "log-write-amplification")
        .unwrap_or_else(|| panic!("no write-amplification chart: {ids:?}"));
    // Right after the throughput chart, before the per-workload charts.
    assert_eq!(
        ids[..3],
        ["memory-needed", "throughput", "log-write-amplification"]
    );
    // One series per workload, the reference curve and the paper's range in the legend.
    for text in [
        "ramcloud-w3",
        "etc",
        "1 + u/(1-u) = 1/(1-u)",
        "80-90% utilization",
        "write amplification (log scale)",
        "90%",
    ] {
        assert!(wa.svg.contains(text), "{text} not drawn");
    }
    // The two log configurations differ by cleaner, target and segment size: labelled so.
    assert!(wa.svg.contains("greedy, target 80%, 1.00 MiB segments"));
    assert!(wa
        .svg
        .contains("cost-benefit, target 90%, 8.00 MiB segments"));
    assert!(
        wa.caption.contains("2 points, 2 log configurations"),
        "{}",
        wa.caption
    );
    assert!(wa.caption.contains("FAST 2014"), "{}", wa.caption);
    // A configuration on two workloads is labelled once.
    let mut twice = with_log();
    let etc = fabricate(
        &twice,
        "etc",
        LOG,
        &[(700, 800, 1000)],
        Some(log_detail(LOG, 1000, 100)),
    );
    twice.cells.push(etc);
    let charts = render_all(&twice, None).unwrap();
    let wa2 = charts
        .iter()
        .find(|c| c.id == "log-write-amplification")
        .unwrap();
    assert_eq!(
        wa2.svg
            .matches("cost-benefit, target 90%, 8.00 MiB segments")
            .count(),
        1
    );
    assert!(
        wa2.caption.contains("3 points, 2 log configurations"),
        "{}",
        wa2.caption
    );
    // One log configuration: nothing to tell apart, no point labels.
    let mut one = with_log();
    one.cells.retain(|c| c.key.alloc != GREEDY);
    let charts = render_all(&one, None).unwrap();
    let wa = charts
        .iter()
        .find(|c| c.id == "log-write-amplification")
        .unwrap();
    assert!(!wa.svg.contains("cost-benefit, target"));
    assert!(
        wa.caption.contains("1 point, 1 log configuration."),
        "{}",
        wa.caption
    );
}

#[test]
fn no_log_cell_no_write_amplification_chart() {
    let mut set = with_log();
    set.cells.retain(|c| !c.key.alloc.starts_with("log"));
    let charts = render_all(&set, None).unwrap();
    assert!(charts.iter().all(|c| c.id != "log-write-amplification"));
    // A log cell whose detail is not the log's (written before it was typed, or another
    // shape) is no log cell either.
    let mut set = with_log();
    for c in &mut set.cells {
        for r in &mut c.runs {
            if r.allocator_detail.log().is_some() {
                r.allocator_detail =
                    serde_json::json!({"allocator": "log", "segments": "x"}).into();
            }
        }
    }
    let charts = render_all(&set, None).unwrap();
    assert!(charts.iter().all(|c| c.id != "log-write-amplification"));
}

#[test]
fn utilization_charts_follow_each_workload_with_timelines() {
    let set = with_log();
    let charts = render_all(&set, None).unwrap();
    let get = |id: &str| charts.iter().find(|c| c.id == id);
    let w3 = get("utilization-ramcloud-w3").expect("utilization chart for ramcloud-w3");
    // Every configuration of the workload is a line; the log's target is marked; the paper's
    // range is shaded on a ramcloud workload only.
    assert!(w3.svg.contains("jemalloc / compact"));
    assert!(w3.svg.contains("log / compact"));
    assert!(w3.svg.contains("log target 90%"));
    assert!(w3.caption.contains("80-90%"), "{}", w3.caption);
    assert!(w3.title.contains("ramcloud-w3"));
    let etc = get("utilization-etc").expect("utilization chart for etc");
    assert!(etc.svg.contains("log target 80%"));
    assert!(!etc.caption.contains("80-90%"), "{}", etc.caption);
    // After each workload's timeline.
    let ids: Vec<&str> = charts.iter().map(|c| c.id.as_str()).collect();
    let t = ids.iter().position(|i| *i == "timeline-etc").unwrap();
    assert_eq!(ids[t + 1], "utilization-etc", "{ids:?}");
    // No log cell on the workload: no target line.
    let mut plain = with_log();
    plain.cells.retain(|c| !c.key.alloc.starts_with("log"));
    let charts = render_all(&plain, None).unwrap();
    let w3 = charts
        .iter()
        .find(|c| c.id == "utilization-ramcloud-w3")
        .unwrap();
    assert!(!w3.svg.contains("log target"));
    // Without timelines (or without a footprint in any sample) there is nothing to draw.
    let mut bare = with_log();
    for c in &mut bare.cells {
        for r in &mut c.runs {
            if c.key.workload == "etc" {
                r.timeline.clear();
            } else {
                for s in &mut r.timeline {
                    s.memory.footprint_bytes = 0;
                }
            }
        }
    }
    let charts = render_all(&bare, None).unwrap();
    assert!(
        charts.iter().all(|c| !c.id.starts_with("utilization-")),
        "{:?}",
        charts.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
}

#[test]
fn the_run_summary_has_a_log_line() {
    let set = with_log();
    let cell = set.cells.iter().find(|c| c.key.alloc == LOG).unwrap();
    let text = fraglab_reports::summary::run_summary(&cell.runs[0]);
    let line = text
        .lines()
        .find(|l| l.starts_with("log: "))
        .unwrap_or_else(|| panic!("no log line in\n{text}"));
    assert!(line.contains("write amplification 1.50"), "{line}");
    let jemalloc = set.cells.iter().find(|c| c.key.alloc != LOG).unwrap();
    assert!(!fraglab_reports::summary::run_summary(&jemalloc.runs[0]).contains("\nlog: "));
}
