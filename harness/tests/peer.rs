//! `fraglab run --target memcached|redis`: the real servers driven with the same op stream as
//! the engine, against the engine's models; and what happens when a server is missing, dies
//! or the run is interrupted.
//!
//! Each run starts its own server from PATH on 127.0.0.1 and a free port and stops it by its
//! pid. Where a server is not installed the tests that need it print why and pass, except
//! under `CI=true`, where they fail (`.ci/run` installs memcached and redis-server).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;
use support::{available, fraglab, memcached, run_json, text, TempDir};

use fraglab_reports::RunResult;

fn redis() -> bool {
    available("redis-server", "redis-server")
}

/// The pid in `started PROGRAM pid N on 127.0.0.1:PORT`.
fn started_pid(stderr: &str, program: &str) -> Option<u32> {
    let prefix = format!("started {program} pid ");
    stderr.lines().find_map(|l| {
        l.strip_prefix(&prefix)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
    })
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Per slab class: (total_pages, used_chunks).
fn classes(r: &serde_json::Value) -> BTreeMap<u64, (u64, u64)> {
    r["allocator_detail"]["classes"]
        .as_array()
        .expect("allocator_detail.classes")
        .iter()
        .map(|c| {
            (
                c["class"].as_u64().unwrap(),
                (
                    c["total_pages"].as_u64().unwrap(),
                    c["used_chunks"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

#[test]
fn memcached_takes_the_pages_and_chunks_of_the_slab_model() {
    if !memcached() {
        return;
    }
    let real = run_json(&[
        "--workload",
        "memefficiency-128",
        "--alloc",
        "slab",
        "--target",
        "memcached",
    ]);
    let model = run_json(&[
        "--workload",
        "memefficiency-128",
        "--alloc",
        "slab",
        "--layout",
        "memcached",
    ]);
    assert_eq!(real["run"]["target"], "memcached");
    assert_eq!(model["run"]["target"], "engine");
    let server = &real["run"]["server"];
    assert_eq!(server["program"], "memcached");
    let version = server["version"].as_str().unwrap();
    assert!(version.starts_with("1.6."), "{version}");
    assert_eq!(real["run"]["library_versions"]["memcached"], version);
    assert_eq!(server["config"]["slab_automove"], "0");
    assert_eq!(server["config"]["growth_factor"], "1.25");
    assert!(server["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "slab_chunk_max=524288,slab_automove=0"));
    assert_eq!(real["allocator_detail"]["allocator"], "slab");
    assert_eq!(real["complete"], true);
    assert!(real["latency"]["round_trip"]["count"].as_u64().unwrap() > 0);

    let (r, m) = (classes(&real), classes(&model));
    eprintln!("class  pages(memcached model)  used_chunks(memcached model)");
    for (class, rc) in &r {
        let mc = m.get(class).copied().unwrap_or_default();
        eprintln!(
            "{class:>5}  {:>6} {:>6}  {:>8} {:>8}",
            rc.0, mc.0, rc.1, mc.1
        );
    }
    let used: u64 = r.values().map(|c| c.1).sum();
    assert_eq!(used, 10_000, "one chunk per item");
    assert_eq!(u(&real["summary"]["items"]), 10_000);
    assert_eq!(r, m, "per class (total_pages, used_chunks)");
    // The item sizes and the payload derived from them are exact too.
    for f in [
        "requested_bytes",
        "allocated_bytes",
        "footprint_bytes",
        "payload_bytes",
    ] {
        assert_eq!(real["summary"][f], model["summary"][f], "{f}");
    }
    assert_eq!(
        real["run"]["sample_every"], model["run"]["sample_every"],
        "samples at the same points"
    );
    let ops = |r: &serde_json::Value| -> Vec<u64> {
        r["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| u(&s["op"]))
            .collect()
    };
    assert_eq!(ops(&real), ops(&model));
}

/// `used_memory` growth of Redis against `allocated_bytes` of the redis layout over
/// `zmalloc:backend=jemalloc,prefix=0`, at the same samples. They agree to 32 bytes (the
/// 4-slot table the warm-up left in the real dict) except while the main dict is rehashing:
/// Redis 7.0.15's SET makes about three incremental-rehash steps (GET one), the engine two per
/// new key, so Redis frees each old bucket array sooner (4 KiB ... 32 KiB early at the
/// samples). At the end of the memefficiency presets (10,000 keys) Redis has finished the
/// 8,192 -> 16,384 rehash near op 9,925 and the engine has not, so the model is 64 KiB high,
/// beyond 1% for all but the largest preset. With one more step per insert, tried in a
/// scratch copy of the engine, the three final figures agree to 32 bytes: the engine's step
/// count is what this test waits for.
#[test]
fn redis_used_memory_growth_matches_the_zmalloc_model_within_one_percent() {
    if !redis() {
        return;
    }
    let mut failures = Vec::new();
    for (workload, values) in [
        ("memefficiency-128", "letters"),
        ("memefficiency-1024", "letters"),
        ("memefficiency-64", "digits"),
    ] {
        let common = [
            "--workload",
            workload,
            "--alloc",
            "zmalloc:backend=jemalloc,prefix=0",
            "--values",
            values,
        ];
        let mut args = common.to_vec();
        args.extend(["--target", "redis"]);
        let real = run_json(&args);
        let model = run_json(&common);
        assert_eq!(real["run"]["target"], "redis");
        assert_eq!(real["run"]["values"], values);
        let server = &real["run"]["server"];
        assert_eq!(server["program"], "redis-server");
        assert!(
            server["version"].as_str().unwrap().starts_with("7."),
            "{server}"
        );
        assert_eq!(server["config"]["save"], "");
        assert!(real["run"]["library_versions"]["allocator"]
            .as_str()
            .unwrap()
            .starts_with("jemalloc"));
        assert_eq!(real["allocator_detail"]["allocator"], "redis");
        assert_eq!(u(&real["summary"]["items"]), 10_000);
        // The client's count of the payload is exact without evictions or expiry.
        assert_eq!(
            real["summary"]["payload_bytes"],
            model["summary"]["payload_bytes"]
        );
        let r = u(&real["summary"]["allocated_bytes"]) as f64;
        let m = u(&model["summary"]["allocated_bytes"]) as f64;
        let diff = (m - r) / r;
        eprintln!(
            "{workload} --values {values}: used_memory grew {r} B, the model {m} B: {:+.3}%",
            diff * 100.0
        );
        if diff.abs() > 0.01 {
            failures.push(format!(
                "{workload} --values {values}: Redis grew {r} B, the model {m} B ({:+.2}%)",
                diff * 100.0
            ));
        }
    }
    assert!(failures.is_empty(), "beyond 1%:\n{}", failures.join("\n"));
}

#[test]
fn memcached_evictions_under_a_limit_match_the_model_within_two_percent() {
    if !memcached() {
        return;
    }
    let common = [
        "--workload",
        "calcification",
        "--scale",
        "0.05",
        "--memory",
        "8m",
        "--alloc",
        "slab",
    ];
    let mut args = common.to_vec();
    args.extend(["--target", "memcached"]);
    let real = run_json(&args);
    let model = run_json(&common);
    let r = u(&real["summary"]["evictions"]);
    let m = u(&model["summary"]["evictions"]);
    eprintln!(
        "evictions: memcached {r}, model {m}; items: memcached {}, model {}",
        real["summary"]["items"], model["summary"]["items"]
    );
    eprintln!(
        "classes: memcached {:?}\n         model     {:?}",
        classes(&real),
        classes(&model)
    );
    assert_eq!(real["run"]["memory_limit"], 8 << 20);
    assert!(real["run"]["server"]["args"]
        .as_array()
        .unwrap()
        .windows(2)
        .any(|w| w[0] == "-m" && w[1] == "8"));
    assert_eq!(u(&real["allocator_detail"]["limit_maxbytes"]), 8 << 20);
    assert!(r > 1000, "the limit forces evictions: {r}");
    let diff = (m as f64 - r as f64).abs() / r as f64;
    assert!(
        diff <= 0.02,
        "memcached evicted {r}, the model {m}: {:.2}%",
        diff * 100.0
    );
    // Per class, the evictions are in `stats items`' `evicted`.
    let per_class: u64 = real["allocator_detail"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| u(&c["evicted"]))
        .sum();
    assert_eq!(per_class, r);
}

#[test]
fn a_missing_server_names_its_package() {
    let empty = TempDir::new("empty-path");
    for (target, package) in [
        ("memcached", "apt-get install memcached"),
        ("redis", "apt-get install redis-server"),
    ] {
        let alloc = if target == "memcached" {
            "slab"
        } else {
            "zmalloc"
        };
        let o = Command::new(env!("CARGO_BIN_EXE_fraglab"))
            .args([
                "run",
                "--workload",
                "memefficiency-32",
                "--alloc",
                alloc,
                "--target",
                target,
                "--quiet",
            ])
            .env("PATH", &empty.0)
            .output()
            .expect("fraglab runs");
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(package), "{target}: {err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn targets_refuse_what_they_cannot_model() {
    for (args, want) in [
        (
            &["--alloc", "jemalloc", "--target", "memcached"][..],
            "use --alloc slab",
        ),
        (
            &["--alloc", "slab", "--evict", "lru", "--target", "memcached"][..],
            "slab-lru",
        ),
        (&["--alloc", "slab", "--target", "redis"][..], "allkeys-lru"),
        (
            &["--alloc", "zmalloc", "--evict", "fifo", "--target", "redis"][..],
            "volatile-ttl",
        ),
        (
            &["--alloc", "slab", "--target", "valkey"][..],
            "engine, memcached, redis",
        ),
    ] {
        let mut all = vec!["run", "--workload", "memefficiency-32", "--quiet"];
        all.extend_from_slice(args);
        let o = fraglab(&all);
        let err = text(&o.stderr);
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("started "), "nothing started: {err}");
    }
}

#[test]
fn the_server_is_stopped_after_its_run() {
    for (target, program, alloc) in [
        ("memcached", "memcached", "slab"),
        ("redis", "redis-server", "zmalloc"),
    ] {
        if !available(program, program) {
            continue;
        }
        let o = fraglab(&[
            "run",
            "--workload",
            "memefficiency-32",
            "--alloc",
            alloc,
            "--target",
            target,
            "--quiet",
        ]);
        let err = text(&o.stderr);
        assert!(o.status.success(), "{err}");
        let pid = started_pid(&err, program).unwrap_or_else(|| panic!("no pid in {err}"));
        assert!(!alive(pid), "{program} pid {pid} still runs after the run");
    }
}

/// Starts `fraglab run ARGS` with stderr read line by line; returns the child, the server's
/// pid from its start line, and the channel of the remaining lines.
fn start_run(args: &[&str], program: &str) -> (Child, u32, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fraglab starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                if let Some(pid) = started_pid(&line, program) {
                    return (child, pid, rx);
                }
                seen.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{program} did not start: {seen:?}");
}

/// Waits for the child; returns its exit code and the rest of its stderr.
fn finish(mut child: Child, rx: mpsc::Receiver<String>) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "fraglab did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    let rest: Vec<String> = rx.iter().collect();
    (status.code(), rest.join("\n"))
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid the test just read from a live process (checked below by the
    // caller's expectations); sending a signal has no memory-safety preconditions.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

#[test]
fn a_server_killed_mid_run_ends_the_run_with_an_error_and_keeps_its_samples() {
    for (target, program, alloc) in [
        ("memcached", "memcached", "slab"),
        ("redis", "redis-server", "zmalloc"),
    ] {
        if !available(program, program) {
            continue;
        }
        let dir = TempDir::new(&format!("killed-{target}"));
        let out = dir.0.join("killed.json");
        let (mut child, pid, rx) = start_run(
            &[
                "--workload",
                "ycsb-a",
                "--records",
                "10000",
                "--ops",
                "3000000",
                "--alloc",
                alloc,
                "--target",
                target,
                "--sample-every",
                "5000",
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ],
            program,
        );
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the kill: make it longer"
        );
        signal(pid, libc::SIGKILL);
        let (code, err) = finish(child, rx);
        eprintln!("{target}: exit {code:?}: {err}");
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("error: "), "{err}");
        assert!(
            err.contains(&format!("{program} (pid {pid}) died")),
            "{err}"
        );
        let r = RunResult::load(&out).expect("the partial result was saved");
        assert!(!r.complete);
        let why = r.incomplete_reason.as_deref().unwrap();
        assert!(why.contains("died") && why.contains("SIGKILL"), "{why}");
        assert!(!r.timeline.is_empty(), "the samples taken are kept");
        assert!(
            r.summary.ops > 0 && r.summary.ops < r.run.ops,
            "{}",
            r.summary.ops
        );
        assert_eq!(r.run.target, target);
        assert!(RunResult::timeline_path(&out).is_file());
        assert!(!alive(pid));
    }
}

#[test]
fn ctrl_c_ends_a_peer_run_with_a_last_sample_and_stops_the_server() {
    if !memcached() {
        return;
    }
    let dir = TempDir::new("interrupted");
    let out = dir.0.join("interrupted.json");
    let (child, pid, rx) = start_run(
        &[
            "--workload",
            "ycsb-a",
            "--records",
            "10000",
            "--ops",
            "3000000",
            "--alloc",
            "slab",
            "--target",
            "memcached",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        "memcached",
    );
    std::thread::sleep(Duration::from_millis(1000));
    signal(child.id(), libc::SIGINT);
    let (code, err) = finish(child, rx);
    assert_eq!(code, Some(130), "{err}");
    let r = RunResult::load(&out).expect("the partial result was saved");
    assert!(!r.complete);
    let why = r.incomplete_reason.as_deref().unwrap();
    assert!(why.starts_with("interrupted after"), "{why}");
    let last = r.timeline.last().unwrap();
    assert_eq!(last.op, r.summary.ops, "a last sample where it stopped");
    assert!(last.memory.items > 0);
    assert!(!alive(pid), "memcached pid {pid} still runs");
}
