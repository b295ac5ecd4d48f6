//! `fraglab describe` and `fraglab save`, run as a user runs them.

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

fn json(args: &[&str]) -> serde_json::Value {
    let o = fraglab(args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The real oracleGeneral trace, as checked in (zstd-compressed).
fn real_trace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../workloads/tests/data/cloudPhysicsIO.oracleGeneral.bin.zst")
}

#[test]
fn describe_reads_the_real_trace() {
    let t = format!("trace:{}", real_trace().display());
    let v = json(&["describe", &t, "--format", "json"]);
    assert_eq!(v["requests"], 113_872);
    assert_eq!(v["distinct_keys"], 48_974);
    assert_eq!(v["ops"]["get"], 113_872);
    assert_eq!(v["value_size"]["max"], 69_632);
    assert_eq!(v["key_size"]["p50"], 16);
    let v = json(&["describe", &t, "--format", "json", "--key-len", "24"]);
    assert_eq!(v["key_size"]["max"], 24);
}

#[test]
fn describe_json_has_every_field() {
    let v = json(&["describe", "etc", "--scale", "0.01", "--format", "json"]);
    for f in [
        "requests",
        "distinct_keys",
        "ops",
        "key_size",
        "value_size",
        "working_set_bytes",
        "ttl",
        "phases",
        "parameters",
    ] {
        assert!(v.get(f).is_some(), "{f}");
    }
    for s in ["mean", "p50", "p90", "p99", "max"] {
        assert!(
            v["key_size"][s].is_number() && v["value_size"][s].is_number(),
            "{s}"
        );
    }
    assert_eq!(v["requests"], 30_000);
    assert_eq!(v["distinct_keys"], 10_000);
    assert_eq!(v["parameters"]["keyspace"], 10_000);
    // Text output names the workload and its phases.
    let o = fraglab(&["describe", "ycsb-b", "--records", "100", "--ops", "500"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("ycsb-b") && text.contains("load") && text.contains("run"),
        "{text}"
    );
}

#[test]
fn saved_workloads_replay_identically() {
    let dir = TempDir::new("save");
    let args = ["ycsb-f", "--records", "300", "--ops", "3000", "--seed", "9"];
    let original = json(&[&["describe"], &args[..], &["--format", "json"]].concat());
    for name in ["w.csv", "w.csv.zst"] {
        let mut described = original.clone();
        let out = dir.0.join(name);
        let o = fraglab(&[&["save"], &args[..], &["--out", out.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let t = format!("trace:{}", out.display());
        let mut replayed = json(&["describe", &t, "--format", "json"]);
        for v in [&mut described, &mut replayed] {
            let o = v.as_object_mut().unwrap();
            for volatile in ["parameters", "workload", "seed"] {
                o.remove(volatile);
            }
        }
        // The trace keeps phase numbers but not names (the first is `trace`, then `phase 1`).
        let phases_d = described.as_object_mut().unwrap().remove("phases").unwrap();
        let phases_r = replayed.as_object_mut().unwrap().remove("phases").unwrap();
        assert_eq!(phases_d.as_array().unwrap().len(), 2);
        for i in 0..2 {
            assert_eq!(phases_r[i]["requests"], phases_d[i]["requests"]);
            assert_eq!(phases_r[i]["bytes_written"], phases_d[i]["bytes_written"]);
        }
        assert_eq!(phases_r[1]["name"], "phase 1");
        assert_eq!(described, replayed, "{name}");
    }
    // oracleGeneral keeps times, ids and sizes.
    let out = dir.0.join("w.oracleGeneral.bin");
    let o = fraglab(&[&["save"], &args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&[
        "describe",
        &format!("trace:{}", out.display()),
        "--format",
        "json",
    ]);
    assert_eq!(v["requests"], original["requests"]);
    assert_eq!(v["distinct_keys"], original["distinct_keys"]);
}

#[test]
fn size_sweep_follows_the_allocator() {
    let v = json(&[
        "describe",
        "size-sweep",
        "--scale",
        "0.01",
        "--format",
        "json",
    ]);
    let phases: Vec<&str> = v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // memcached's default classes 96, 120, ... less the 75-byte item of a 16-byte key.
    assert_eq!(&phases[..4], ["size=21", "size=22", "size=45", "size=46"]);
    assert_eq!(phases.len(), 2 * 39);
    let v = json(&[
        "describe",
        "size-sweep",
        "--alloc",
        "slab:factor=2",
        "--overhead",
        "0",
        "--scale",
        "0.01",
        "--format",
        "json",
    ]);
    assert_eq!(v["phases"][0]["name"], "size=96");
    assert_eq!(v["phases"][2]["name"], "size=192");
    let o = fraglab(&["describe", "size-sweep", "--alloc", "bump"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no size classes"), "{}", stderr(&o));
}

#[test]
fn bad_workloads_fail_with_clear_errors() {
    let o = fraglab(&["describe", "ycsb-q"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown workload `ycsb-q`") && stderr(&o).contains("ramcloud-w8"));
    let o = fraglab(&["describe", "trace:/nonexistent/t.csv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/t.csv"), "{}", stderr(&o));
    let dir = TempDir::new("bad");
    let bad = dir.0.join("bad.csv");
    std::fs::write(
        &bad,
        "1,k1,3,10,0,get,0\n2,k2,3,ten,0,get,0\n3,k3,3,10,0,get,0\n",
    )
    .unwrap();
    let t = format!("trace:{}", bad.display());
    let o = fraglab(&["describe", &t]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("bad.csv: record 2") && e.contains("`ten`"),
        "{e}"
    );
    let v = json(&["describe", &t, "--lenient", "--format", "json"]);
    assert_eq!(v["requests"], 2);
    assert_eq!(v["skipped_records"], 1);
    let o = fraglab(&["describe", "etc", "--scale", "0"]);
    assert!(stderr(&o).contains("scale"), "{}", stderr(&o));
    let o = fraglab(&["describe", "etc", "--live-cap", "9q"]);
    assert!(stderr(&o).contains("--live-cap"), "{}", stderr(&o));
}
