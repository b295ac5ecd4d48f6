//! `fraglab compare`: matrices of child processes, resuming, interrupting, bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::TempDir;

use fraglab_reports::RunResult;

fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .arg("compare")
        .args(args)
        .output()
        .expect("fraglab runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The cell result files (not the timelines) in `out/cells`, sorted.
fn cell_files(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join("cells"))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.ends_with(".json") && !n.starts_with('.')
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn compare_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap()
}

fn statuses(v: &serde_json::Value) -> Vec<String> {
    v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap().to_string())
        .collect()
}

fn count(list: &[String], what: &str) -> usize {
    list.iter().filter(|s| *s == what).count()
}

const SMALL: &[&str] = &[
    "--workloads",
    "memefficiency-32,memefficiency-128",
    "--allocs",
    "jemalloc;slab",
    "--jobs",
    "2",
];

fn small(out: &Path) -> Output {
    let mut args = SMALL.to_vec();
    let out = out.to_str().unwrap();
    args.extend(["--out", out]);
    compare(&args)
}

#[test]
fn a_two_by_two_matrix_runs_in_child_processes() {
    let dir = TempDir::new("matrix");
    let out = dir.0.join("out");
    let o = small(&out);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let files = cell_files(&out);
    assert_eq!(files.len(), 4, "{files:?}");
    for f in &files {
        let r = RunResult::load(f).unwrap();
        assert!(r.complete, "{}", f.display());
        // Each cell was a `fraglab run` of its own.
        assert_eq!(r.run.command[1], "run", "{:?}", r.run.command);
        assert!(r.run.command.iter().any(|a| a == "--quiet"));
        assert!(RunResult::timeline_path(f).is_file());
    }
    let mut seen: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let r = RunResult::load(f).unwrap();
            (r.run.workload, r.run.alloc_name)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("memefficiency-128".into(), "jemalloc".into()),
            ("memefficiency-128".into(), "slab".into()),
            ("memefficiency-32".into(), "jemalloc".into()),
            ("memefficiency-32".into(), "slab".into()),
        ]
    );

    let v = compare_json(&out);
    assert_eq!(v["state"], "finished");
    let st = statuses(&v);
    assert_eq!(st, ["ok"; 4]);
    for c in v["cells"].as_array().unwrap() {
        assert!(out.join(c["file"].as_str().unwrap()).is_file());
        assert!(c["figures"]["ops_per_sec"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(v["groups"].as_array().unwrap().len(), 4);
    assert_eq!(v["settings"]["allocs"][0], "jemalloc");
    assert_eq!(
        v["settings"]["allocs"][1],
        "slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576"
    );

    let table = text(&o.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "a header and 4 rows:\n{table}");
    assert!(lines[0].starts_with("workload"), "{table}");
    for row in &lines[1..] {
        assert!(row.starts_with("memefficiency-"), "{row}");
        assert!(row.ends_with("ok"), "{row}");
    }
    assert!(lines[1].contains("jemalloc") && lines[1].contains("compact"));
    assert!(lines[2].contains("slab:factor=1.25") && lines[2].contains("memcached"));
    // Progress: one line per finished cell.
    let err = text(&o.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with('[')).count(),
        4,
        "{err}"
    );
}

#[test]
fn a_rerun_resumes_skipping_finished_cells() {
    let dir = TempDir::new("resume");
    let out = dir.0.join("out");
    let o = small(&out);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let files = cell_files(&out);
    assert_eq!(files.len(), 4);

    // One file gone, one incomplete, two left as they are.
    std::fs::remove_file(&files[0]).unwrap();
    let mut r = RunResult::load(&files[1]).unwrap();
    r.complete = false;
    r.incomplete_reason = Some("interrupted (test)".into());
    r.save(&files[1]).unwrap();
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let kept = [mtime(&files[2]), mtime(&files[3])];
    std::thread::sleep(Duration::from_millis(20));

    let o = small(&out);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("skipped 2 finished cells"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with('[')).count(),
        2,
        "{err}"
    );
    assert!(RunResult::load(&files[0]).unwrap().complete);
    assert!(RunResult::load(&files[1]).unwrap().complete);
    assert_eq!([mtime(&files[2]), mtime(&files[3])], kept);
    let st = statuses(&compare_json(&out));
    assert_eq!((count(&st, "resumed"), count(&st, "ok")), (2, 2), "{st:?}");
    assert_eq!(text(&o.stdout).lines().count(), 5);

    // A third run has nothing left to do.
    let o = small(&out);
    assert!(o.status.success());
    assert!(text(&o.stderr).contains("skipped 4 finished cells"));
}

#[test]
fn ctrl_c_stops_the_matrix_keeps_finished_cells_and_a_rerun_completes() {
    use std::os::unix::process::CommandExt as _;

    let dir = TempDir::new("interrupt");
    let out = dir.0.join("out");
    let out_s = out.to_str().unwrap().to_string();
    // etc at full scale takes seconds per cell; the memefficiency cells are instant.
    let args = [
        "compare",
        "--workloads",
        "etc,memefficiency-32",
        "--allocs",
        "jemalloc;slab",
        "--scale",
        "1",
        "--jobs",
        "2",
        "--out",
        &out_s,
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that the SIGINT below reaches compare and its cells as
        // a terminal's Ctrl-C does, and not this test.
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let pgid = child.id();
    let kill = Command::new("kill")
        .args(["-INT", "--", &format!("-{pgid}")])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let start = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "compare took {:?} to stop",
        start.elapsed()
    );
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("interrupted"), "{err}");
    // The summary of what it has is still printed.
    assert!(
        text(&o.stdout).starts_with("workload"),
        "{}",
        text(&o.stdout)
    );

    let v = compare_json(&out);
    assert_eq!(v["state"], "interrupted");
    let st = statuses(&v);
    assert!(
        count(&st, "interrupted") + count(&st, "not-run") > 0,
        "{st:?}"
    );
    let mut complete = 0;
    for f in cell_files(&out) {
        // Every file present is whole: complete, or saved partial and marked so.
        let r = RunResult::load(&f).unwrap();
        if r.complete {
            complete += 1;
        } else {
            assert!(r.incomplete_reason.unwrap().contains("interrupted"));
        }
    }
    assert!(complete < 4);

    let o = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    if complete > 0 {
        assert!(text(&o.stderr).contains(&format!("skipped {complete} finished cells")));
    }
    let files = cell_files(&out);
    assert_eq!(files.len(), 4);
    for f in files {
        assert!(RunResult::load(&f).unwrap().complete);
    }
    let v = compare_json(&out);
    assert_eq!(v["state"], "finished");
    let st = statuses(&v);
    assert_eq!(count(&st, "ok") + count(&st, "resumed"), 4, "{st:?}");
}

#[test]
fn a_bad_allocator_or_workload_is_refused_before_anything_runs() {
    let dir = TempDir::new("bad");
    let out = dir.0.join("out");
    let o = compare(&[
        "--workloads",
        "memefficiency-32",
        "--allocs",
        "jemalloc;nosuch",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("unknown allocator `nosuch`"), "{err}");
    for valid in [
        "slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576",
        "zmalloc:backend=jemalloc,prefix=0",
        "mimalloc",
        "bump:capacity=0",
    ] {
        assert!(err.contains(valid), "{valid} in {err}");
    }
    assert!(!out.exists(), "nothing may run");

    // Commas separate specs before an allocator's name; a word that is no allocator stays
    // part of the spec before it, which is refused, saying how specs are separated.
    let o = compare(&[
        "--allocs",
        "jemalloc,nosuch",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("--allocs `jemalloc,nosuch`"), "{err}");
    assert!(
        err.contains("separate specs with `,`, `;` or spaces"),
        "{err}"
    );
    assert!(!out.exists(), "nothing may run");

    let o = compare(&[
        "--workloads",
        "memefficiency-32,nosuch",
        "--allocs",
        "jemalloc",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("unknown workload `nosuch`"), "{err}");
    assert!(
        err.contains("ramcloud-w1") && err.contains("file:PATH"),
        "{err}"
    );

    let o = compare(&["--layouts", "hash", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("unknown layout `hash`"));
    assert!(!out.exists(), "nothing may run");
}

#[test]
fn refused_layouts_are_skipped_and_a_failed_cell_does_not_stop_the_rest() {
    let dir = TempDir::new("failed");
    let out = dir.0.join("out");
    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "this is = = not a workload\n").unwrap();
    let bad_arg = format!("file:{}", bad.display());
    let o = compare(&[
        "--workloads",
        &format!("memefficiency-32,{bad_arg}"),
        "--allocs",
        "slab",
        "--layouts",
        "default,redis",
        "--repeat",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v = compare_json(&out);
    let cells = v["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 8);
    for c in cells {
        let (w, layout, status) = (
            c["workload"].as_str().unwrap(),
            c["layout"].as_str().unwrap(),
            c["status"].as_str().unwrap(),
        );
        let reason = c["reason"].as_str().unwrap_or("");
        match (w.starts_with("file:"), layout) {
            (_, "redis") => {
                assert_eq!(status, "skipped");
                assert!(reason.contains("slab-lru"), "{reason}");
            }
            (false, "memcached") => assert_eq!(status, "ok"),
            (true, "memcached") => {
                assert_eq!(status, "failed");
                assert_eq!(c["exit_code"], 1);
                assert!(reason.contains("bad.toml"), "the child's error: {reason}");
            }
            other => panic!("unexpected cell {other:?}"),
        }
    }
    // Two repeats of the good cell; nothing was written for the refused ones.
    assert_eq!(cell_files(&out).len(), 2);
    let table = text(&o.stdout);
    assert_eq!(table.lines().count(), 5, "{table}");
    assert!(table.contains("ok (2 runs)"), "{table}");
    assert!(table.contains("FAILED"), "{table}");
    assert_eq!(
        table.matches("skipped: policy `slab-lru`").count(),
        2,
        "{table}"
    );
    assert!(text(&o.stderr).contains("failed: "));
}
