//! `fraglab compare --plan`: the matrix as shell commands another scheduler runs, picked up by
//! the same compare afterwards; `--allocs` list forms; `--memory` sweeps.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;
use support::TempDir;

use fraglab_reports::compare::{CellStatus, CompareFile, CompareState, GroupStatus};

fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .arg("compare")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("fraglab runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn compare_file(out: &Path) -> CompareFile {
    serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap()
}

/// The outline of a rendered report: its headings and its chart files (the numbers beside
/// them hold times and resident sets, which differ from run to run).
fn report_outline(out: &Path) -> (Vec<String>, Vec<String>) {
    let headings = std::fs::read_to_string(out.join("report.md"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let mut charts: Vec<String> = std::fs::read_dir(out.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    charts.sort();
    (headings, charts)
}

const MATRIX: &[&str] = &[
    "--workloads",
    "memefficiency-32,memefficiency-128",
    "--allocs",
    "jemalloc,slab,zmalloc:backend=jemalloc,prefix=0",
    "--seed",
    "3",
];

#[test]
fn plan_lines_run_by_xargs_are_picked_up_as_if_compare_ran_them() {
    let dir = TempDir::new("xargs");
    let planned = dir.0.join("planned");
    let mut args = MATRIX.to_vec();
    let p = planned.to_str().unwrap();
    args.extend(["--out", p, "--plan"]);
    let o = compare(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines = text(&o.stdout);
    // Nothing but the command lines on stdout: one per cell, each running a cell into DIR.
    assert_eq!(lines.lines().count(), 6, "{lines}");
    let abs = std::fs::canonicalize(&planned).unwrap();
    for l in lines.lines() {
        assert!(l.contains(" run --workload memefficiency-"), "{l}");
        assert!(l.contains(&format!("{}/cells/", abs.display())), "{l}");
        assert!(l.ends_with("--quiet --format json"), "{l}");
    }
    let f = compare_file(&planned);
    assert_eq!(f.state, CompareState::Planned);
    assert!(f.cells.iter().all(|c| c.status == CellStatus::Pending));
    assert!(
        std::fs::read_dir(planned.join("cells"))
            .unwrap()
            .next()
            .is_none(),
        "--plan runs nothing"
    );

    // Another scheduler: xargs, two at a time, from another working directory.
    let mut xargs = Command::new("xargs")
        .args(["-P", "2", "-I", "{}", "sh", "-c", "{}"])
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xargs");
    std::io::Write::write_all(xargs.stdin.as_mut().unwrap(), lines.as_bytes()).unwrap();
    let x = xargs.wait_with_output().unwrap();
    assert!(x.status.success(), "{}", text(&x.stderr));

    // A second plan has nothing left to run.
    let again = compare(&args);
    assert!(again.status.success());
    assert_eq!(text(&again.stdout), "");

    // The same compare without --plan collects them: nothing runs, every cell is in.
    args.pop();
    let o = compare(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("skipped 6 finished cells"), "{err}");
    let collected = compare_file(&planned);
    assert_eq!(collected.state, CompareState::Finished);
    assert!(collected
        .cells
        .iter()
        .all(|c| c.status == CellStatus::Resumed));
    assert!(collected.groups.iter().all(|g| g.status == GroupStatus::Ok));

    // compare running the same matrix itself gives the same memory figures and report.
    let direct = dir.0.join("direct");
    let mut args = MATRIX.to_vec();
    args.extend(["--out", direct.to_str().unwrap(), "--jobs", "2"]);
    let d = compare(&args);
    assert!(d.status.success(), "{}", text(&d.stderr));
    let ran = compare_file(&direct);
    assert!(ran.cells.iter().all(|c| c.status == CellStatus::Ok));
    assert_eq!(ran.cells.len(), collected.cells.len());
    for (a, b) in ran.cells.iter().zip(&collected.cells) {
        assert_eq!(a.id, b.id);
        let (fa, fb) = (a.figures.as_ref().unwrap(), b.figures.as_ref().unwrap());
        assert_eq!(
            (
                fa.footprint_bytes,
                fa.payload_bytes,
                fa.index_bytes,
                fa.hits
            ),
            (
                fb.footprint_bytes,
                fb.payload_bytes,
                fb.index_bytes,
                fb.hits
            ),
            "{}",
            a.id
        );
    }
    assert_eq!(report_outline(&direct), report_outline(&planned));
}

#[test]
fn alloc_lists_with_commas_and_semicolons_give_the_same_cells() {
    let dir = TempDir::new("allocs");
    let forms = [
        vec![
            "--allocs",
            "jemalloc,slab:factor=2,min=64,zmalloc:backend=glibc,prefix=8",
        ],
        vec![
            "--allocs",
            "jemalloc;slab:factor=2,min=64;zmalloc:backend=glibc,prefix=8",
        ],
        vec![
            "--allocs",
            "jemalloc slab:factor=2,min=64 zmalloc:backend=glibc,prefix=8",
        ],
        vec![
            "--allocs",
            "jemalloc",
            "--allocs",
            "slab:factor=2,min=64",
            "--allocs",
            "zmalloc:backend=glibc,prefix=8",
        ],
    ];
    let mut plans = Vec::new();
    for (i, form) in forms.iter().enumerate() {
        let out = dir.0.join(format!("f{i}"));
        let mut args = vec!["--workloads", "memefficiency-32", "--plan"];
        args.extend(form.iter().copied());
        args.extend(["--out", out.to_str().unwrap()]);
        let o = compare(&args);
        assert!(o.status.success(), "{form:?}: {}", text(&o.stderr));
        let ids: Vec<String> = compare_file(&out).cells.into_iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), 3, "{form:?}");
        plans.push(ids);
    }
    assert!(plans.windows(2).all(|w| w[0] == w[1]), "{plans:?}");
}

#[test]
fn the_ramcloud_group_plans_the_eight_ramcloud_workloads() {
    let dir = TempDir::new("ramcloud-group");
    let out = dir.0.join("p");
    let o = compare(&[
        "--workloads",
        "ramcloud,ramcloud-w3,etc",
        "--allocs",
        "jemalloc,log",
        "--plan",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let file = compare_file(&out);
    // The group expands in order; a member named again is not planned twice.
    let mut want: Vec<String> = (1..=8).map(|i| format!("ramcloud-w{i}")).collect();
    want.push("etc".into());
    assert_eq!(file.settings.workloads, want);
    let mut planned: Vec<(String, String)> = file
        .cells
        .iter()
        .map(|c| {
            (
                c.workload.clone(),
                c.alloc.split(':').next().unwrap().to_string(),
            )
        })
        .collect();
    planned.dedup();
    let expected: Vec<(String, String)> = want
        .iter()
        .flat_map(|w| [(w.clone(), "jemalloc".into()), (w.clone(), "log".into())])
        .collect();
    assert_eq!(planned, expected);
    // One plan line per cell.
    assert_eq!(text(&o.stdout).lines().count(), 18);
    // The group is named where an unknown workload is refused.
    let refused = dir.0.join("q");
    let o = compare(&[
        "--workloads",
        "ramcloudd",
        "--plan",
        "--out",
        refused.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("ramcloud = ramcloud-w1,"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_memory_sweep_runs_every_cell_at_every_limit_and_draws_the_miss_ratio_curve() {
    let dir = TempDir::new("sweep");
    let out = dir.0.join("out");
    let o = compare(&[
        "--workloads",
        "ycsb-c",
        "--scale",
        "0.02",
        "--allocs",
        "jemalloc,mimalloc",
        "--layouts",
        "compact,memcached",
        "--memory",
        "1m,2m,4m",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let f = compare_file(&out);
    assert_eq!(
        f.settings.memory_limits,
        [Some(1 << 20), Some(2 << 20), Some(4 << 20)]
    );
    assert_eq!(f.groups.len(), 2 * 2 * 3);
    // A larger limit never hits less (the same stream, the same policy).
    for series in f.groups.chunks(3) {
        let ratios: Vec<f64> = series
            .iter()
            .map(|g| g.hit_ratio.expect("reads").median)
            .collect();
        assert!(
            ratios.windows(2).all(|w| w[0] <= w[1] + 1e-9),
            "{} {}: {ratios:?}",
            series[0].alloc,
            series[0].layout
        );
        assert!(ratios[0] < ratios[2], "the sweep matters: {ratios:?}");
    }
    let table = text(&o.stdout);
    assert!(
        table.contains("memory") && table.contains("hit ratio"),
        "{table}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Miss ratio by memory limit"),
        "the miss-ratio chart is drawn"
    );
}
