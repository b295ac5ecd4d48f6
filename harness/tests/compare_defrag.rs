//! `fraglab compare --defrag SPEC`: the cells that can defrag run with and without it, the
//! others once; compare.json and the report tell the two apart.

use std::process::Command;

mod support;
use support::TempDir;

use fraglab_reports::RunResult;

#[test]
fn compare_runs_defrag_cells_with_and_without_it_and_reports_the_pair() {
    let dir = TempDir::new("compare-defrag");
    let out = dir.0.join("study");
    let o = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args([
            "compare",
            "--workloads",
            "delete-half",
            "--allocs",
            "zmalloc:backend=jemalloc,prefix=0 slab",
            "--defrag",
            "ignore-bytes=64k,threshold-lower=5,cycle-min=65,cycle-max=75",
            "--scale",
            "0.05",
            "--jobs",
            "2",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // zmalloc over jemalloc runs twice, slab (no jemalloc hint) once.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    let cells = v["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3, "{v}");
    let with: Vec<&serde_json::Value> = cells.iter().filter(|c| c["defrag"].is_string()).collect();
    assert_eq!(with.len(), 1);
    assert_eq!(with[0]["alloc"], "zmalloc:backend=jemalloc,prefix=0");
    assert!(with[0]["id"].as_str().unwrap().contains("__defrag__"));
    assert_eq!(
        v["settings"]["defrag"],
        "ignore-bytes=64k,threshold-lower=5,cycle-min=65,cycle-max=75"
    );
    let r = RunResult::load(&out.join(with[0]["file"].as_str().unwrap())).unwrap();
    let settings = r.run.defrag.expect("the cell ran with --defrag");
    assert_eq!((settings.ignore_bytes, settings.cycle_min), (64 << 10, 65));
    assert!(r.defrag.is_some_and(|d| d.bytes_moved > 0));
    assert!(
        stdout.contains("zmalloc:backend=jemalloc,prefix=0 + defrag ignore-bytes=64k"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Memory over time: active defrag"), "{md}");
    assert!(md.contains("charts/defrag-fragmentation-delete-half.svg"));
    assert!(!md.contains("Memory over time: slab automove"));

    // A bad spec is refused before anything runs.
    let o = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args([
            "compare",
            "--workloads",
            "delete-half",
            "--defrag",
            "cycle-min=90,cycle-max=10",
            "--out",
        ])
        .arg(dir.0.join("bad"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--defrag cycle-min=90,cycle-max=10: cycle-min=90 is above cycle-max=10"),
        "{err}"
    );
    assert!(!dir.0.join("bad").join("compare.json").exists());
}
