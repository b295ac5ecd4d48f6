//! `fraglab validate` through the test suite: every model-against-real case must pass. The
//! one test of this binary, so no other test's work runs beside the real servers' threads
//! (memcached's slab automover cases are paced on its clock). It needs memcached and
//! redis-server on PATH; without them it skips with a message, except
//! under `CI=true` (`.ci/run` installs both), where it fails.

use std::process::Command;

fn available(program: &str, flag: &str) -> bool {
    let ok = Command::new(program)
        .arg(flag)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: {program} must be installed"
        );
        eprintln!("{program} is not installed: skipping fraglab validate");
    }
    ok
}

#[test]
fn validate_passes_every_case() {
    if !available("memcached", "-V") || !available("redis-server", "--version") {
        return;
    }
    let o = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args(["validate", "--format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&o.stderr)));
    let cases = v["cases"].as_array().unwrap();
    for c in cases {
        for f in [
            "case",
            "metric",
            "model",
            "real",
            "diff",
            "tolerance",
            "pass",
        ] {
            assert!(c.get(f).is_some(), "{f}");
        }
        eprintln!(
            "{} | {} | model {} | real {} | diff {} | {}",
            c["case"], c["metric"], c["model"], c["real"], c["diff"], c["pass"]
        );
    }
    // Every kind of case is there.
    let names: Vec<&str> = cases.iter().map(|c| c["case"].as_str().unwrap()).collect();
    for want in [
        "memcached: -f 1.08",
        "evicting",
        "redis: integers",
        "TTLs",
        "deleting half",
        "memefficiency-16384",
        "bgsave copy-on-write, jemalloc",
        "warm restart (-e FILE)",
        "slab automove=1",
        "slab automove=2",
    ] {
        assert!(names.iter().any(|n| n.contains(want)), "{want}");
    }
    // The slab automover, mode 1: every page of the 12 MiB limit is counted, pages moved on
    // both sides, and the paced replay kept to the trace's time.
    let automove = |metric: &str| {
        cases
            .iter()
            .find(|c| {
                c["case"].as_str().unwrap().contains("slab automove=1")
                    && c["metric"].as_str().unwrap().starts_with(metric)
            })
            .unwrap_or_else(|| panic!("no automove=1 row {metric}"))
    };
    assert!(automove("pages per class")["real"].as_f64().unwrap() >= 12.0);
    let moved = automove("pages moved");
    assert!(moved["real"].as_f64().unwrap() > 0.0, "{moved}");
    assert!(moved["model"].as_f64().unwrap() > 0.0, "{moved}");
    assert_eq!(automove("paced replay")["pass"], true);
    let failed: Vec<&serde_json::Value> = cases.iter().filter(|c| c["pass"] != true).collect();
    assert!(failed.is_empty(), "failed: {failed:#?}");
    assert!(o.status.success(), "exit status {:?}", o.status);
}
