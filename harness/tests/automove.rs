//! The slab automover against the real memcached: the server is started with the spec's
//! `slab_automove` settings (and echoes them in `stats settings`), `--rate` and `--pace` put
//! the real server's clock on the trace's time (the automover cases that compare the model's
//! moves with memcached's run in `tests/validate.rs`, alone in their test binary: memcached's
//! mover and LRU maintainer are threads, and other tests' work beside them changes what they
//! decide).
//!
//! Every run starts its own memcached from PATH on 127.0.0.1 and a free port, stops it by its
//! pid and reads its socket with timeouts (`harness/src/peer`). Without memcached the tests
//! that need it print why and pass, except under `CI=true`, where they fail.

use std::time::Instant;

mod support;
use support::{fraglab, memcached, run_json, text, TempDir};

#[test]
fn memcached_echoes_the_automove_settings_of_the_spec() {
    if !memcached() {
        return;
    }
    let r = run_json(&[
        "--workload",
        "calcification",
        "--scale",
        "0.05",
        "--alloc",
        "slab:automove=2,automove_ratio=0.7,automove_window=7",
        // The small phase takes 2 pages in class 4, which mode 2 can take from (a class
        // with one page is never a source: `slabs_reassign_pick_any` in `slabs.c`).
        "--memory",
        "4m",
        "--target",
        "memcached",
    ]);
    let server = &r["run"]["server"];
    let config = &server["config"];
    // `stats settings` as memcached 1.6.18 prints them (`memcached.c`, `process_stat_settings`).
    assert_eq!(config["slab_reassign"], "yes");
    assert_eq!(config["slab_automove"], "2");
    assert_eq!(config["slab_automove_ratio"], "0.70");
    assert_eq!(config["slab_automove_window"], "7");
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(
            &"slab_chunk_max=524288,slab_reassign,slab_automove=2,slab_automove_ratio=0.7,\
              slab_automove_window=7"
        ),
        "{args:?}"
    );
    // Not paced: no pacing record.
    assert!(server.get("pacing").is_none(), "{server}");
    // The server's page mover counters are read because its automover is on.
    let moves = &r["allocator_detail"]["moves"];
    assert_eq!(moves["slab_automove"], 2, "{moves}");
    assert!(moves["slabs_moved"].as_u64().unwrap() > 0, "{moves}");

    // Without automove the server is started as before, automover off.
    let off = run_json(&[
        "--workload",
        "calcification",
        "--scale",
        "0.01",
        "--alloc",
        "slab",
        "--target",
        "memcached",
    ]);
    assert_eq!(off["run"]["server"]["config"]["slab_automove"], "0");
    assert!(off["run"]["server"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "slab_chunk_max=524288,slab_automove=0"));
}

#[test]
fn a_paced_run_takes_its_trace_time_and_says_so() {
    if !memcached() {
        return;
    }
    // calcification at scale 0.01: 12,000 ops; at 6,000 a second they span 2 s of trace time.
    let t = Instant::now();
    let r = run_json(&[
        "--workload",
        "calcification",
        "--scale",
        "0.01",
        "--rate",
        "6000",
        "--alloc",
        "slab",
        "--target",
        "memcached",
        "--pace",
    ]);
    let took = t.elapsed().as_secs_f64();
    let p = &r["run"]["server"]["pacing"];
    let trace_s = p["trace_s"].as_f64().unwrap();
    let wall_s = p["wall_s"].as_f64().unwrap();
    assert!((trace_s - 11999.0 / 6000.0).abs() < 1e-5, "{p}");
    // Never early: the last reply comes after the last op's time.
    assert!(wall_s >= trace_s, "{p}");
    assert!(took >= trace_s, "the run took {took} s");
    assert!(p["late_max_ms"].as_f64().unwrap() >= 0.0, "{p}");
    // The replay waited for memcached's clock (it moves once a second) and began on its tick.
    let wait = p["tick_wait_ms"].as_f64().unwrap();
    assert!((0.0..=1100.0).contains(&wait), "{p}");
    assert!(took >= trace_s + wait / 1e3, "the run took {took} s");
    assert_eq!(r["summary"]["ops"], 12000);
}

#[test]
fn rate_changes_only_the_times_of_a_generated_workload() {
    let describe = |extra: &[&str]| {
        let mut a = vec![
            "describe",
            "calcification",
            "--scale",
            "0.01",
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        let o = fraglab(&a);
        assert!(o.status.success(), "{}", text(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (at, base) = (describe(&["--rate", "1000"]), describe(&[]));
    assert_eq!(at["parameters"]["arrival"]["rate"], 1000.0);
    assert_eq!(base["parameters"]["arrival"]["rate"], 100000.0);
    for k in [
        "ops",
        "requests",
        "distinct_keys",
        "key_size",
        "value_size",
        "working_set_bytes",
    ] {
        assert!(at.get(k).is_some(), "{k}");
        assert_eq!(at.get(k), base.get(k), "{k}");
    }
    // 12,000 ops: 11,999 gaps of 1 ms.
    assert_eq!(at["duration_s"], 11.999, "{at}");
    // etc draws its gaps: at a fixed rate they are still drawn, so the ops are the same.
    let dir = TempDir::new("rate");
    let (a, b) = (dir.file("a.csv"), dir.file("b.csv"));
    for (path, extra) in [(&a, &["--rate", "500"][..]), (&b, &[][..])] {
        let mut args = vec!["save", "etc", "--scale", "0.001"];
        args.extend_from_slice(extra);
        args.extend(["--out", path.to_str().unwrap()]);
        let o = fraglab(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let rows = |p: &std::path::Path| -> Vec<Vec<String>> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let (ra, rb) = (rows(&a), rows(&b));
    assert_eq!(ra.len(), rb.len());
    assert!(ra.len() > 100);
    let time_col = ra[0]
        .iter()
        .position(|c| c.contains("time"))
        .expect("a time column");
    let mut times_differ = false;
    for (x, y) in ra.iter().zip(&rb).skip(1) {
        for (i, (cx, cy)) in x.iter().zip(y).enumerate() {
            if i == time_col {
                times_differ |= cx != cy;
            } else {
                assert_eq!(cx, cy, "column {i}");
            }
        }
    }
    assert!(times_differ);
    // 1,000 keys preloaded at time 0, then 2,000 ops 2 ms apart: the last at 1,999 x 2 ms.
    assert_eq!(ra.len(), 1 + 3000);
    assert_eq!(ra.last().unwrap()[time_col], "3998000");
}

#[test]
fn rate_and_pace_refuse_what_they_cannot_do() {
    let o = fraglab(&[
        "run",
        "--workload",
        "trace:/nonexistent.csv",
        "--rate",
        "100",
        "--quiet",
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("--rate 100") && e.contains("recorded times"),
        "{e}"
    );
    for bad in ["0", "-5", "nan", "inf"] {
        let arg = format!("--rate={bad}");
        let o = fraglab(&["describe", "calcification", &arg]);
        assert!(!o.status.success(), "--rate {bad}");
        let e = text(&o.stderr);
        assert!(
            e.contains("--rate") && e.contains("positive number of requests per second"),
            "{bad}: {e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
    let o = fraglab(&["run", "--workload", "calcification", "--pace", "--quiet"]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("--pace") && e.contains("real server"), "{e}");
}
