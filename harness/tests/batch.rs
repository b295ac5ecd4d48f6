//! The fast replay changes nothing but the speed: on every preset, replaying with the
//! lookahead's prefetch hints (`--batch 16`, the default, and `--batch 64`) gives the same
//! results JSON as one op at a time (`--batch 1`), and a sharded replay of one shard
//! (`--threads 1`) the same as the unsharded one. Timings, the resident set (the process's, so
//! it moves with the harness), jemalloc's time-decayed page counts and the settings that name
//! the mode are left out of the comparison; every memory figure, counter, sample, phase and
//! eviction is in it.

mod support;
use fraglab_workloads::presets::NAMES;
use serde_json::Value;
use support::{fraglab, run_json, text};

/// Keys that hold timings, the process's resident set, the replay mode, or jemalloc's page
/// figures that follow its wall-clock decay (dirty pages are purged by time, so `mapped`,
/// `resident`, `pdirty` and `pmuzzy` move with the machine's speed; `pactive`, which the
/// footprint is, does not).
fn ignored(key: &str) -> bool {
    key.contains("rss")
        || key.contains("elapsed")
        || key.contains("per_sec")
        || matches!(
            key,
            "latency"
                | "env"
                | "command"
                | "batch"
                | "shards"
                | "mapped"
                | "resident"
                | "pdirty"
                | "pmuzzy"
                | "retained"
        )
}

/// `v` without the ignored keys, at any depth.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !ignored(k))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

/// The first path where `a` and `b` differ, for the message.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &format!("{at}.{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{at}.{k} only on one side")),
                }
            }
            (x.len() != y.len()).then(|| format!("{at}: keys differ"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{at}[{i}]"))),
        _ => (a != b).then(|| format!("{at}: {a} against {b}")),
    }
}

fn assert_same(what: &str, a: &Value, b: &Value) {
    let (a, b) = (strip(a), strip(b));
    if let Some(d) = first_difference(&a, &b, "") {
        panic!("{what}: the results differ at {d}");
    }
}

fn run(base: &[&str], extra: &[&str]) -> Value {
    let mut args = base.to_vec();
    args.extend_from_slice(extra);
    run_json(&args)
}

/// Every preset at a small scale with its default allocator and layout: the three modes agree.
#[test]
fn batched_and_sharded_replays_equal_one_at_a_time_on_every_preset() {
    for name in NAMES {
        let base = [
            "--workload",
            name,
            "--scale",
            "0.004",
            "--latency-every",
            "0",
        ];
        let one = run(&base, &["--batch", "1"]);
        assert!(one["complete"].as_bool().unwrap_or(false), "{name}: {one}");
        assert_same(
            &format!("{name} --batch 16"),
            &one,
            &run(&base, &["--batch", "16"]),
        );
        assert_same(
            &format!("{name} --threads 1"),
            &one,
            &run(&base, &["--threads", "1"]),
        );
    }
}

/// Under a memory limit (so that eviction decisions count) and on each layout that prefetches:
/// the hints change no eviction, no sample, no counter.
#[test]
fn batched_replay_equals_one_at_a_time_under_eviction_on_every_layout() {
    for (workload, alloc, layout, memory) in [
        ("etc", "slab", "memcached", "8m"),
        ("etc", "slab", "compact", "8m"),
        ("ycsb-a", "jemalloc", "compact", "2m"),
        ("twitter-52", "zmalloc:backend=jemalloc", "redis", "2m"),
        ("ramcloud-w2", "jemalloc", "compact", "1m"),
        ("sessions", "zmalloc", "redis", "2m"),
    ] {
        let base = [
            "--workload",
            workload,
            "--alloc",
            alloc,
            "--layout",
            layout,
            "--memory",
            memory,
            "--scale",
            "0.05",
            "--latency-every",
            "0",
        ];
        let one = run(&base, &["--batch", "1"]);
        let evictions = one["summary"]["evictions"].as_u64().unwrap_or(0);
        assert!(
            evictions > 0,
            "{workload} on {alloc}/{layout} in {memory} should evict: {}",
            one["summary"]
        );
        for batch in ["16", "64"] {
            assert_same(
                &format!("{workload} {alloc}/{layout} --memory {memory} --batch {batch}"),
                &one,
                &run(&base, &["--batch", batch]),
            );
        }
    }
}

/// Two shards split the keys: every op is replayed once, the figures add up to a whole
/// store's, the result says it is sharded, and each shard keeps its share of the limit.
#[test]
fn two_shards_replay_every_op_once_and_say_so() {
    let base = [
        "--workload",
        "etc",
        "--scale",
        "0.02",
        "--alloc",
        "slab",
        "--layout",
        "compact",
        "--latency-every",
        "8",
    ];
    let one = run(&base, &[]);
    let two = run(&base, &["--threads", "2"]);
    assert_eq!(two["run"]["shards"], 2);
    assert!(one["run"].get("shards").is_none());
    for k in ["ops", "items", "payload_bytes", "hits", "misses", "sets"] {
        assert_eq!(one["summary"][k], two["summary"][k], "summary.{k}");
    }
    let shards = two["allocator_detail"]["shards"]
        .as_array()
        .expect("each shard's allocator detail");
    assert_eq!(shards.len(), 2);
    // The shards time their own ops: the latency figures count every op.
    let gets = |r: &Value| r["latency"]["get"]["count"].as_u64().unwrap_or(0);
    assert_eq!(gets(&one), gets(&two));
    assert!(two["latency"]["get"]["timed"].as_u64().unwrap_or(0) > 0);
    let text_out = fraglab(&[
        "run",
        "--workload",
        "etc",
        "--scale",
        "0.01",
        "--threads",
        "2",
        "--quiet",
    ]);
    assert!(text_out.status.success(), "{}", text(&text_out.stderr));
    assert!(
        text(&text_out.stdout).contains("sharded over 2 engines"),
        "{}",
        text(&text_out.stdout)
    );
}

/// `fraglab run ARGS` says `needle` (on stdout or stderr); with `fails`, it also exits
/// non-zero.
fn says(args: &[&str], needle: &str, fails: bool) {
    let mut all = vec!["run", "--quiet"];
    all.extend_from_slice(args);
    let o = fraglab(&all);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(!fails || !o.status.success(), "{args:?} should fail");
    assert!(
        out.contains(needle) || err.contains(needle),
        "{args:?} should say `{needle}`:\n{out}\n{err}"
    );
}

/// What cannot be sharded is refused with the reason, and the partial result says why.
#[test]
fn sharding_refuses_what_it_cannot_split() {
    let etc = ["--workload", "etc", "--scale", "0.01"];
    says(
        &[&etc[..], &["--threads", "2", "--target", "memcached"]].concat(),
        "--threads",
        true,
    );
    says(
        &["--workload", "ycsb-e", "--scale", "0.01", "--threads", "2"],
        "single-key ops only",
        false,
    );
    // glibc's figures are the process's: even one shard, on a thread of its own, would get a
    // glibc arena of its own.
    for n in ["1", "2"] {
        for alloc in ["glibc", "zmalloc"] {
            says(
                &[&etc[..], &["--threads", n, "--alloc", alloc]].concat(),
                "mallinfo2",
                true,
            );
        }
    }
    for (flag, bad) in [
        ("--threads", "0"),
        ("--threads", "65"),
        ("--threads", "x"),
        ("--batch", "0"),
        ("--batch", "257"),
        ("--batch", "x"),
    ] {
        says(&[&etc[..], &[flag, bad]].concat(), flag, true);
    }
}
