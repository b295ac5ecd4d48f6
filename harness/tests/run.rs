//! `fraglab run` end to end: every allocator, every field of the results schema, the
//! accounting invariants, interruption, and bad input.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;
use support::TempDir;

use fraglab_reports::RunResult;

fn fraglab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args(args)
        .output()
        .expect("fraglab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn allocators() -> Vec<String> {
    let o = fraglab(&["list", "allocators"]);
    assert!(o.status.success());
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every field of the results schema (`docs/results-schema.md`), by JSON path.
const FIELDS: &[&str] = &[
    "/schema",
    "/complete",
    "/run/workload",
    "/run/workload_parameters",
    "/run/alloc",
    "/run/library_versions",
    "/run/layout",
    "/run/eviction",
    "/run/memory_limit",
    "/run/seed",
    "/run/ops",
    "/run/target",
    "/env/cpu_model",
    "/env/cores",
    "/env/kernel",
    "/env/rustc",
    "/env/fraglab_version",
    "/env/fraglab_commit",
    "/summary/ops",
    "/summary/elapsed_s",
    "/summary/ops_per_sec",
    "/summary/items",
    "/summary/payload_bytes",
    "/summary/requested_bytes",
    "/summary/allocated_bytes",
    "/summary/footprint_bytes",
    "/summary/index_bytes",
    "/summary/rss_bytes",
    "/summary/rss_baseline_bytes",
    "/summary/hits",
    "/summary/misses",
    "/summary/evictions",
    "/summary/expired",
    "/summary/oom_errors",
    "/summary/efficiency",
    "/summary/peak/footprint_bytes",
    "/summary/peak/allocated_bytes",
    "/phases/0/name",
    "/phases/0/ops_per_sec",
    "/phases/0/end/footprint_bytes",
    "/phases/0/peak/footprint_bytes",
    "/timeline/0/op",
    "/timeline/0/footprint_bytes",
    "/latency",
    "/allocator_detail",
];

#[test]
fn every_allocator_runs_and_reports_every_field() {
    let dir = TempDir::new("all");
    let allocs = allocators();
    assert_eq!(allocs.len(), 12);
    for (i, alloc) in allocs.iter().enumerate() {
        let out = dir.file(&format!("r{i}.json"));
        let o = fraglab(&[
            "run",
            "--workload",
            "etc",
            "--scale",
            "0.005",
            "--alloc",
            alloc,
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
            "--quiet",
        ]);
        assert!(o.status.success(), "{alloc}: {}", stderr(&o));
        let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(printed, saved, "{alloc}: stdout and file agree");
        for f in FIELDS {
            assert!(saved.pointer(f).is_some(), "{alloc}: no {f}");
        }
        let r = RunResult::load(&out).unwrap();
        assert!(r.complete);
        assert_eq!(r.run.alloc, *alloc);
        assert_eq!(r.run.target, "engine");
        assert_eq!(r.summary.ops, r.run.ops);
        assert_eq!(r.run.ops, 15_000);
        assert_eq!(r.phases.len(), 2);
        assert_eq!(r.phases.iter().map(|p| p.ops).sum::<u64>(), r.summary.ops);
        assert!(
            r.timeline.len() >= 150 && r.timeline.len() <= 210,
            "{}",
            r.timeline.len()
        );
        let s = &r.summary;
        assert!(
            s.payload_bytes > 0 && s.payload_bytes <= s.requested_bytes,
            "{alloc}"
        );
        assert!(
            s.requested_bytes <= s.allocated_bytes,
            "{alloc}: requested > allocated"
        );
        let owns_pages =
            ["slab", "jemalloc", "mimalloc", "bump"].contains(&r.run.alloc_name.as_str());
        if owns_pages {
            assert!(
                s.allocated_bytes <= s.footprint_bytes,
                "{alloc}: allocated > footprint"
            );
            for t in &r.timeline {
                assert!(
                    t.memory.allocated_bytes <= t.memory.footprint_bytes,
                    "{alloc} at {}",
                    t.op
                );
            }
        }
        for t in &r.timeline {
            assert!(
                t.memory.payload_bytes <= t.memory.requested_bytes,
                "{alloc} at {}",
                t.op
            );
        }
        assert!(s.peak.footprint_bytes >= s.footprint_bytes);
        assert_eq!(s.hits + s.misses, r.latency["get"].count, "{alloc}");
        assert!(r.latency["get"].timed > 0 && r.latency["get"].p50_ns <= r.latency["get"].p99_ns);
        assert!(
            (s.efficiency - s.payload_bytes as f64 / (s.footprint_bytes + s.index_bytes) as f64)
                .abs()
                < 1e-9
        );
        // The timeline CSV sits beside the JSON, one line per sample.
        let csv = std::fs::read_to_string(RunResult::timeline_path(&out)).unwrap();
        assert_eq!(csv.lines().count(), r.timeline.len() + 1);
        assert!(csv.starts_with("op,phase,time_s,elapsed_s,items,payload_bytes"));
    }
}

#[test]
fn defaults_follow_the_allocator() {
    let dir = TempDir::new("defaults");
    for (alloc, layout, evict) in [
        ("slab", "memcached", "slab-lru"),
        ("zmalloc", "redis", "sampled-lru"),
        ("mimalloc", "compact", "sampled-lru"),
    ] {
        let out = dir.file(&format!("{alloc}.json"));
        let o = fraglab(&[
            "run",
            "--workload",
            "memefficiency-64",
            "--alloc",
            alloc,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let r = RunResult::load(&out).unwrap();
        assert_eq!(
            (r.run.layout.as_str(), r.run.eviction.as_str()),
            (layout, evict)
        );
        assert_eq!(r.summary.items, 10_000);
        assert_eq!(r.run.memory_limit, None);
        // Text output is a readable summary.
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(
            text.contains("footprint") && text.contains("efficiency"),
            "{text}"
        );
    }
    // The slab detail is memcached's `stats slabs`.
    let r = RunResult::load(&dir.file("slab.json")).unwrap();
    let d = r.allocator_detail.slab().expect("a typed slab detail");
    assert_eq!(d.total_malloced, r.summary.footprint_bytes);
    assert!(!d.classes.is_empty());
    // The file holds memcached's `stats slabs` names, `chunks_per_page` among them.
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.file("slab.json")).unwrap()).unwrap();
    for c in raw["allocator_detail"]["classes"].as_array().unwrap() {
        for f in [
            "class",
            "chunk_size",
            "chunks_per_page",
            "total_pages",
            "used_chunks",
            "free_chunks",
            "mem_requested",
        ] {
            assert!(c.get(f).is_some(), "{f}");
        }
    }
    for c in &d.classes {
        assert_eq!(
            c.used_chunks + c.free_chunks,
            c.total_pages * c.chunks_per_page
        );
    }
    let used: u64 = d.classes.iter().map(|c| c.used_chunks).sum();
    assert_eq!(used, 10_000);
}

#[test]
fn a_memory_limit_evicts() {
    let dir = TempDir::new("limit");
    let out = dir.file("r.json");
    let o = fraglab(&[
        "run",
        "--workload",
        "calcification",
        "--scale",
        "0.1",
        "--memory",
        "3m",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = RunResult::load(&out).unwrap();
    assert_eq!(r.run.memory_limit, Some(3 << 20));
    assert!(r.summary.evictions > 0);
    // memcached's first-page rule lets each class take one page past the limit.
    let past = r.allocator_detail.slab().unwrap().pages_past_limit.unwrap();
    assert!(r.summary.footprint_bytes <= (3 << 20) + (past << 20));
    assert_eq!(
        r.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["small", "large"]
    );
}

#[test]
fn ctrl_c_keeps_partial_results_marked_incomplete() {
    let dir = TempDir::new("sigint");
    let out = dir.file("r.json");
    let child = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args([
            "run",
            "--workload",
            "etc",
            "--scale",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it count the workload and start replaying, then interrupt it.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let r = RunResult::load(&out).unwrap();
    assert!(!r.complete);
    assert!(r
        .incomplete_reason
        .as_deref()
        .unwrap()
        .contains("interrupted"));
    assert!(
        r.summary.ops > 0 && r.summary.ops < r.run.ops,
        "{} of {}",
        r.summary.ops,
        r.run.ops
    );
    assert!(Path::new(&RunResult::timeline_path(&out)).exists());
}

#[test]
fn bad_input_gets_clear_errors() {
    for (args, want) in [
        (vec!["run", "--workload", "nope"], "unknown workload `nope`"),
        (
            vec!["run", "--workload", "etc", "--alloc", "slub"],
            "unknown allocator `slub`",
        ),
        (
            vec!["run", "--workload", "etc", "--layout", "btree"],
            "--layout",
        ),
        (
            vec!["run", "--workload", "etc", "--evict", "oldest"],
            "--evict",
        ),
        (
            vec!["run", "--workload", "etc", "--memory", "lots"],
            "--memory lots",
        ),
        (
            vec!["run", "--workload", "trace:/nonexistent/x.csv"],
            "/nonexistent/x.csv",
        ),
        (
            vec![
                "run",
                "--workload",
                "etc",
                "--alloc",
                "zmalloc",
                "--evict",
                "slab-lru",
            ],
            "slab-lru",
        ),
        // Regressions from the hardening issue: a first chunk the system cannot give was a
        // panic; an interval of 0 silently became 1; 2^64 bytes silently became u64::MAX.
        (
            vec!["run", "--workload", "etc", "--alloc", "bump:capacity=200t"],
            "refused a first chunk of 219902325555200 bytes",
        ),
        (
            vec!["run", "--workload", "etc", "--sample-every", "0"],
            "--sample-every 0",
        ),
        (
            vec![
                "run",
                "--workload",
                "etc",
                "--memory",
                "18446744073709551616",
            ],
            "too large",
        ),
        (
            vec!["run", "--workload", "etc", "--memory", "16e"],
            "use b, k, m, g or t",
        ),
    ] {
        let o = fraglab(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.starts_with("error: ") && e.contains(want),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn a_malformed_trace_ends_the_run_with_what_was_measured() {
    let dir = TempDir::new("badtrace");
    let trace = dir.file("t.csv");
    let mut lines = String::new();
    for i in 0..1000 {
        lines += &format!("{i},key{i},10,100,1,set,0\n");
    }
    lines += "1000,keyX,10,abc,1,set,0\n";
    std::fs::write(&trace, lines).unwrap();
    let out = dir.file("r.json");
    let t = format!("trace:{}", trace.display());
    let o = fraglab(&[
        "run",
        "--workload",
        &t,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    // The trace is read once: the 1,000 good records are replayed and kept, and the run ends
    // at the bad one, marked incomplete with the record's number.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = RunResult::load(&out).unwrap();
    assert!(!r.complete);
    let why = r.incomplete_reason.as_deref().unwrap();
    assert!(
        why.contains("record 1001") && why.contains("after 1000 ops"),
        "{why}"
    );
    assert_eq!(r.summary.ops, 1000);
    assert_eq!(r.summary.items, 1000);
    let o = fraglab(&[
        "run",
        "--workload",
        &t,
        "--lenient",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(RunResult::load(&out).unwrap().summary.items, 1000);
}

#[test]
fn list_names_everything() {
    let workloads = String::from_utf8(fraglab(&["list", "workloads"]).stdout).unwrap();
    for w in [
        "ycsb-a",
        "etc",
        "ramcloud-w8",
        "memefficiency-16384",
        "twitter-37",
        "size-sweep",
    ] {
        assert!(workloads.lines().any(|l| l.starts_with(w)), "{w}");
    }
    let layouts = String::from_utf8(fraglab(&["list", "layouts"]).stdout).unwrap();
    assert_eq!(layouts, "compact\nmemcached\nredis\nsegcache\n");
    let policies = String::from_utf8(fraglab(&["list", "policies"]).stdout).unwrap();
    assert!(policies.lines().count() == 10 && policies.contains("volatile-ttl"));
}

/// Regression: the Ctrl-C handler ran on a thread of its own, whose start allocates from glibc
/// (thread attributes, the thread-local destructor list); it raced a glibc allocator under
/// test and moved its footprint by 132 KiB in about half the runs. The handler now runs in the
/// signal, and the same run gives the same glibc figures every time.
#[test]
fn glibc_figures_are_the_same_run_after_run() {
    let dir = TempDir::new("glibc-repeat");
    let out = dir.file("r.json");
    let figures: Vec<(u64, u64, u64)> = (0..8)
        .map(|_| {
            let o = fraglab(&[
                "run",
                "--workload",
                "memefficiency-1024",
                "--alloc",
                "glibc",
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            let s = RunResult::load(&out).unwrap().summary;
            (s.footprint_bytes, s.allocated_bytes, s.peak.footprint_bytes)
        })
        .collect();
    assert!(figures.windows(2).all(|w| w[0] == w[1]), "{figures:?}");
}

/// Finding 7 of the hardening issue: `run --lenient` said nothing of what it skipped. Now the
/// result carries the count and the first reasons, and the summary, stderr and the report's
/// complete column all say `SKIPPED`.
#[test]
fn a_lenient_run_says_how_many_records_it_skipped_and_why() {
    let dir = TempDir::new("lenient");
    let trace = dir.0.join("bad.csv");
    let mut csv = String::new();
    for i in 0..40 {
        // fraglab's CSV: time, key, key length, value length, client, op, ttl; every tenth
        // record has a value length that is not a number.
        let value = if i % 10 == 3 {
            "ten".into()
        } else {
            format!("{}", 100 + i)
        };
        csv += &format!("{i},k{i},4,{value},0,set,0\n");
    }
    std::fs::write(&trace, csv).unwrap();
    let out = dir.0.join("r.json");
    let t = format!("trace:{}", trace.display());
    let args = [
        "run",
        "--workload",
        &t,
        "--lenient",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = fraglab(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        summary.contains("SKIPPED 4 malformed records (--lenient)"),
        "{summary}"
    );
    assert!(summary.contains("bad.csv: record 4"), "{summary}");
    assert!(
        stderr(&o).contains("SKIPPED 4 malformed records"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["run"]["skipped_records"], 4);
    let reasons = v["run"]["skipped_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 4);
    assert!(
        reasons[0].as_str().unwrap().contains("`ten`"),
        "{reasons:?}"
    );
    assert_eq!(v["complete"], true, "every record was read");
    assert_eq!(v["summary"]["items"], 36);
    let o = fraglab(&["report", dir.0.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(dir.0.join("report.md")).unwrap();
    assert!(md.contains("yes, SKIPPED 4"), "{md}");
    // A clean run of the same kind carries no such field and no flag.
    let clean = dir.0.join("clean.csv");
    std::fs::write(&clean, "0,k0,4,100,0,set,0\n1,k1,4,100,0,set,0\n").unwrap();
    let t = format!("trace:{}", clean.display());
    let o = fraglab(&["run", "--workload", &t, "--lenient", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["run"].get("skipped_records").is_none(), "{v}");
    assert!(!stderr(&o).contains("SKIPPED"));
}
