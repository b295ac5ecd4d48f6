//! `fraglab report`, and `compare` rendering its report, run as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;
use support::TempDir;

fn fraglab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args(args)
        .output()
        .expect("fraglab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/fixtures/results")
}

#[test]
fn report_renders_a_directory_in_place() {
    let dir = TempDir::new("fixture");
    for e in std::fs::read_dir(fixture()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.0.join(e.file_name())).unwrap();
    }
    let d = dir.0.to_str().unwrap();
    let o = fraglab(&["report", d, "--png"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("rendered 12 configurations") && out.contains("report.html"),
        "{out}"
    );
    assert!(dir.0.join("report.md").exists() && dir.0.join("report.html").exists());
    assert!(dir.0.join("charts/memory-needed.png").exists());
    // Only HTML: no Markdown written this time, and --png needs the Markdown.
    std::fs::remove_file(dir.0.join("report.md")).unwrap();
    let o = fraglab(&["report", d, "--format", "html"]);
    assert!(o.status.success());
    assert!(!dir.0.join("report.md").exists());
    let o = fraglab(&["report", d, "--format", "html", "--png"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--png"));
    // A baseline adds the ratio table.
    let o = fraglab(&["report", d, "--baseline", fixture().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(dir.0.join("report.md")).unwrap();
    assert!(md.contains("## Against the baseline"));
}

#[test]
fn report_errors_name_the_directory() {
    let o = fraglab(&["report", "/nonexistent/results"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/results"),
        "{}",
        stderr(&o)
    );
    let dir = TempDir::new("empty");
    std::fs::write(dir.0.join("broken.json"), "[1, 2").unwrap();
    let o = fraglab(&["report", dir.0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("no results to report") && e.contains("broken.json"),
        "{e}"
    );
    let o = fraglab(&[
        "report",
        dir.0.to_str().unwrap(),
        "--baseline",
        "/nonexistent/base",
    ]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn compare_renders_its_report() {
    let dir = TempDir::new("compare");
    let out = dir.0.join("cmp");
    let o = fraglab(&[
        "compare",
        "--workloads",
        "memefficiency-32,memefficiency-128",
        "--allocs",
        "jemalloc;slab",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("memefficiency-128") && html.contains("<svg"));
    assert!(out.join("report.md").exists());
    // compare.json is an index, not a result: it is not listed as skipped.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!md.contains("## Skipped files"), "{md}");
}
