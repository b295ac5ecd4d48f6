//! Persistence in a run: forked snapshots (`--snapshot-at`) and the append-only file
//! (`--aof`), end to end through the binary.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fraglab_engine::snapshot::Reader;
use support::{fraglab, run_json, text, TempDir};

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[test]
fn a_snapshot_saves_every_live_key_to_a_file_that_reads_back() {
    let dir = TempDir::new("persist-snap");
    let snap = dir.file("dump.snap");
    let v = run_json(&[
        "--workload",
        "etc",
        "--scale",
        "0.01",
        "--alloc",
        "slab",
        "--layout",
        "compact",
        "--snapshot-at",
        "0.5",
        "--snapshot-to",
        &s(&snap),
    ]);
    let save = &v["snapshot"]["saves"][0];
    assert_eq!(save["complete"], true, "{save}");
    assert_eq!(save["path"], s(&snap).as_str());
    let keys = save["keys"].as_u64().unwrap();
    assert!(keys > 1000, "{save}");
    assert_eq!(
        save["bytes"].as_u64().unwrap(),
        std::fs::metadata(&snap).unwrap().len()
    );
    // At half the ops of etc every key has been loaded: the snapshot holds them all.
    assert_eq!(keys, v["summary"]["items"].as_u64().unwrap(), "{save}");
    let mut r = Reader::new(std::io::BufReader::new(std::fs::File::open(&snap).unwrap())).unwrap();
    let mut n = 0;
    while let Some(rec) = r.next_record().unwrap() {
        assert!(rec.key.starts_with(b"key:") || !rec.key.is_empty());
        n += 1;
    }
    assert_eq!(n, keys);
    // The slab owns its blocks: the user-space copy-on-write is reported beside fork's.
    assert!(save["block_cow_bytes"].is_u64(), "{save}");
    assert!(save["cow_bytes"].as_u64().unwrap() > 0, "{save}");
    assert_eq!(v["snapshot"]["cow_bytes"], save["cow_bytes"]);
    // Nothing but the snapshot is left beside it.
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn writes_during_a_slow_save_are_copied_and_a_library_allocator_has_no_block_figure() {
    let v = run_json(&[
        "--workload",
        "etc",
        "--scale",
        "0.01",
        "--alloc",
        "jemalloc",
        "--layout",
        "redis",
        "--snapshot-at",
        "0.5",
        "--snapshot-key-delay",
        "50",
    ]);
    let save = &v["snapshot"]["saves"][0];
    assert_eq!(save["complete"], true, "{save}");
    assert!(save["writes_during"].as_u64().unwrap() > 0, "{save}");
    assert!(save["ops_during"].as_u64().unwrap() >= save["writes_during"].as_u64().unwrap());
    // Every page the parent wrote while the child ran is the child's alone at its end.
    assert!(save["cow_bytes"].as_u64().unwrap() >= 4096, "{save}");
    assert!(save.get("block_cow_bytes").is_none(), "{save}");
    assert!(
        save.get("path").is_none(),
        "a temporary snapshot is removed: {save}"
    );
}

/// The processes in process group `pgid`, from /proc.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state, ppid, pgrp.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f[2].parse::<u32>().ok() == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn ctrl_c_during_a_save_reaps_the_child_and_removes_its_file() {
    let dir = TempDir::new("persist-int");
    let snap = dir.file("dump.snap");
    let child = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args([
            "run",
            "--workload",
            "etc",
            "--scale",
            "0.02",
            "--alloc",
            "slab",
            "--layout",
            "compact",
            "--snapshot-at",
            "0.5",
            "--snapshot-to",
            &s(&snap),
            "--snapshot-key-delay",
            "5000",
            "--quiet",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: the SIGINT below reaches the replay and its child as a
        // terminal's Ctrl-C does.
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id();
    // Wait until the snapshot's child exists (two processes in the group).
    let start = Instant::now();
    while group_members(pgid).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no snapshot child was forked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(
        group_members(pgid).is_empty(),
        "a process of the run is left"
    );
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left: {left:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["complete"], false);
    let save = &v["snapshot"]["saves"][0];
    assert_eq!(save["complete"], false, "{save}");
    assert!(save["error"].as_str().unwrap().contains("Ctrl-C"), "{save}");
}

#[test]
fn the_append_only_file_holds_every_write_and_is_rewritten_by_redis_rule() {
    let dir = TempDir::new("persist-aof");
    let aof = dir.file("appendonly.aof");
    let v = run_json(&[
        "--workload",
        "etc",
        "--scale",
        "0.02",
        "--alloc",
        "zmalloc",
        "--layout",
        "redis",
        "--aof",
        "everysec",
        "--aof-to",
        &s(&aof),
        "--aof-rewrite-min-size",
        "1m",
    ]);
    let a = &v["aof"];
    assert_eq!(a["fsync"], "everysec");
    let size = std::fs::metadata(&aof).unwrap().len();
    assert_eq!(a["aof_bytes"].as_u64().unwrap(), size, "{a}");
    let rewrites = a["rewrites"].as_array().unwrap();
    assert!(!rewrites.is_empty(), "{a}");
    assert!(rewrites.iter().all(|r| r["complete"] == true), "{a}");
    let bytes = std::fs::read(&aof).unwrap();
    assert!(
        bytes.starts_with(b"*3\r\n$3\r\nSET\r\n"),
        "{}",
        text(&bytes[..40])
    );
    // Every key held at the end has its SET in the file (values are letters: no CRLF).
    let sets = bytes
        .windows(11)
        .filter(|w| w == b"\r\n$3\r\nSET\r\n")
        .count()
        + 1;
    assert!(
        sets as u64 >= v["summary"]["items"].as_u64().unwrap(),
        "{sets} SETs"
    );
    let last = rewrites.last().unwrap();
    assert!(last["keys"].as_u64().unwrap() > 0, "{last}");
    // Nothing but the file is left: no rewrite's temporary or increment.
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");

    let v = run_json(&[
        "--workload",
        "etc",
        "--scale",
        "0.001",
        "--alloc",
        "slab",
        "--layout",
        "compact",
        "--aof",
        "always",
    ]);
    let a = &v["aof"];
    assert_eq!(
        a["fsyncs"], a["commands"],
        "always syncs after every write: {a}"
    );
    assert!(a["commands"].as_u64().unwrap() > 0);
}

#[test]
fn persistence_is_refused_where_it_cannot_be_measured() {
    let says = |args: &[&str], what: &str| {
        let mut all = vec!["run", "--workload", "etc", "--scale", "0.001", "--quiet"];
        all.extend_from_slice(args);
        let o = fraglab(&all);
        assert!(!o.status.success(), "{args:?} ran");
        let err = text(&o.stderr);
        assert!(err.contains(what), "{args:?}: {err}");
    };
    says(&["--snapshot-at", "1.5"], "inside (0, 1)");
    says(&["--snapshot-at", "0.8,0.5"], "must increase");
    says(&["--snapshot-at", "half"], "not a fraction");
    says(&["--aof", "sometimes"], "always, everysec or no");
    says(
        &["--snapshot-at", "0.5", "--alloc", "slab", "--threads", "2"],
        "drop --threads",
    );
    says(
        &["--snapshot-at", "0.5", "--snapshot-to", "/dev/null"],
        "character device",
    );
}

#[test]
fn a_restart_part_way_finds_every_item_and_the_run_goes_on() {
    let dir = TempDir::new("persist-restart");
    let file = dir.file("slabs");
    let alloc = format!("slab:file={},item_max=524288", s(&file));
    let v = run_json(&[
        "--workload",
        "etc",
        "--scale",
        "0.1",
        "--alloc",
        &alloc,
        "--memory",
        "48m",
        "--restart-at",
        "0.5",
    ]);
    let r = &v["restart"];
    assert!(r.get("error").is_none(), "{r}");
    assert_eq!(r["bad_items"], 0, "{r}");
    assert!(r["items_before"].as_u64().unwrap() > 1000, "{r}");
    assert_eq!(r["items_after"], r["items_before"], "{r}");
    assert_eq!(r["lists_kept"], true, "{r}");
    // Every page goes back to its class.
    assert!(
        r["class_pages_before"].as_array().unwrap().len() >= 39,
        "{r}"
    );
    assert_eq!(r["class_pages_after"], r["class_pages_before"], "{r}");
    assert!(r["meta_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["complete"], true);
    // The evictions went on after the restart, under the same limit.
    assert!(v["summary"]["evictions"].as_u64().unwrap() > 0);
    assert!(std::fs::metadata(&file).unwrap().len() >= 48 << 20);
    let says = |args: &[&str], what: &str| {
        let mut all = vec!["run", "--workload", "etc", "--scale", "0.001", "--quiet"];
        all.extend_from_slice(args);
        let o = fraglab(&all);
        assert!(!o.status.success(), "{args:?} ran");
        let err = text(&o.stderr);
        assert!(err.contains(what), "{args:?}: {err}");
    };
    says(
        &["--restart-at", "0.5", "--alloc", "slab"],
        "slab:file=PATH",
    );
    says(
        &[
            "--restart-at",
            "0.5",
            "--alloc",
            &alloc,
            "--layout",
            "compact",
        ],
        "cannot restart",
    );
    says(&["--restart-at", "2", "--alloc", &alloc], "inside (0, 1)");
    // A page of each of the 39 classes is taken at the start, as memcached's -e does.
    says(
        &["--alloc", &alloc, "--memory", "38m"],
        "at least --memory 39m",
    );
    // And the server refuses it the same way, before it listens.
    let o = fraglab(&[
        "serve",
        "--protocol",
        "memcached",
        "--alloc",
        &alloc,
        "--memory",
        "38m",
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("at least --memory 39m"));
    says(&["--alloc", &format!("slab:file={}", s(&file))], "item_max");
}
