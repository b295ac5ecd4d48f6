//! `fraglab save W --out FILE.resp`: workloads written as the RESP peer's commands, read back
//! as a `resp` trace (the same requests, keys and elements hashed from the bytes written) and
//! piped into a real Redis with `redis-cli --pipe`.
//!
//! The Redis test starts `redis-server` from PATH on 127.0.0.1 and a free port (the
//! allocators' test helper, which checks by pid that the server answering is its own and stops
//! it by pid). Without redis-server or redis-cli it prints why and passes, except under
//! `CI=true`, where it fails (`.ci/run` installs redis-server).

#[path = "../../allocators/tests/common/mod.rs"]
mod common;
mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{redis_available, RedisServer, Reply};
use fraglab_workloads::rng::fnv1a64_bytes;
use fraglab_workloads::trace::{FraglabCsvWriter, TraceOptions, TraceReader};
use fraglab_workloads::{Key, Op, OpKind, PresetParams, Workload};
use support::TempDir;

fn fraglab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args(args)
        .output()
        .expect("fraglab runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `fraglab save WORKLOAD --out OUT ARGS...`, which must succeed; its stdout.
fn save(workload: &str, out: &Path, args: &[&str]) -> String {
    let mut all = vec!["save", workload, "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = fraglab(&all);
    assert!(o.status.success(), "fraglab {all:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

/// An element's bytes as read back: an integer member when they are a canonical decimal
/// integer, else hashed.
fn element(bytes: &[u8]) -> Key {
    let canonical = !bytes.is_empty()
        && bytes.len() <= 20
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes[0] != b'0' || bytes.len() == 1);
    match std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()) {
        Some(n) if canonical => Key { id: n, len: 0 },
        _ => Key {
            id: fnv1a64_bytes(bytes),
            len: bytes.len() as u16,
        },
    }
}

/// The ops a `resp` trace gives for `op` once saved: what the RESP peer sends, read back.
fn read_back(op: &Op) -> Vec<Op> {
    use OpKind::*;
    let hashed = |k: Key| Key {
        id: fnv1a64_bytes(&k.to_bytes()),
        len: k.len,
    };
    let mut out = Op {
        time_us: 0,
        kind: op.kind,
        key: hashed(op.key),
        value_len: 0,
        ttl: 0,
        fill: false,
        phase: 0,
        member: Key::NONE,
    };
    if op.kind.has_member() {
        let mut bytes = Vec::new();
        op.member.write_member_to(&mut bytes);
        out.member = element(&bytes);
    }
    match op.kind {
        Prepend => return vec![],
        Scan => {
            return (0..u64::from(op.value_len))
                .map(|i| Op {
                    kind: Get,
                    key: hashed(Key {
                        id: op.key.id.wrapping_add(i),
                        len: op.key.len,
                    }),
                    ..out
                })
                .collect()
        }
        Gets => out.kind = Get,
        Set | Add | Replace | Cas => {
            // A cas is sent as `SET ... XX`: a replace.
            out.kind = if op.kind == Cas { Replace } else { op.kind };
            (out.value_len, out.ttl) = (op.value_len, op.ttl);
        }
        Touch => out.ttl = op.ttl,
        Append | Hset | Hincrby | Zadd | Zincrby | Lrange | Ltrim | Zrange => {
            out.value_len = op.value_len
        }
        _ => {}
    }
    vec![out]
}

fn read_trace(path: &Path) -> Vec<Op> {
    TraceReader::open(path, &TraceOptions::default())
        .unwrap()
        .map(|o| o.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn op(kind: OpKind, id: u64, len: u16, value_len: u32, ttl: u32, member: Key) -> Op {
    Op {
        time_us: 7,
        kind,
        key: Key { id, len },
        value_len,
        ttl,
        fill: kind == OpKind::Get,
        phase: 0,
        member,
    }
}

/// A request of every kind, on keys of each type, that a fresh Redis runs without an error
/// (values are letters, so no counter is a value). Strings 1, 3 and 4 (2 is deleted), a
/// hash, a set, a list and a sorted set are left: 7 keys.
fn every_kind() -> Vec<Op> {
    use OpKind::*;
    let none = Key::NONE;
    let int = |n| Key { id: n, len: 0 };
    let s = |id, len| Key { id, len };
    let (h, st, l, z) = (1000, 1001, 1002, 1003);
    vec![
        op(Set, 1, 8, 10, 3600, none),
        op(Add, 2, 8, 5, 0, none),
        op(Replace, 1, 8, 7, 0, none),
        op(Cas, 1, 8, 3, 0, none),
        op(Get, 1, 8, 100, 0, none),
        op(Gets, 2, 8, 0, 0, none),
        op(Append, 3, 8, 4, 0, none),
        op(Prepend, 3, 8, 4, 0, none),
        op(Incr, 4, 8, 0, 0, none),
        op(Decr, 4, 8, 0, 0, none),
        op(Touch, 1, 8, 0, 100, none),
        op(Touch, 2, 8, 0, 0, none),
        op(Scan, 1, 8, 3, 0, none),
        op(Scan, 1, 8, 0, 0, none),
        op(Delete, 2, 8, 0, 0, none),
        op(Hset, h, 12, 12, 0, int(7)),
        op(Hset, h, 12, 4, 0, s(3, 6)),
        op(Hget, h, 12, 0, 0, s(3, 6)),
        op(Hincrby, h, 12, 5, 0, int(8)),
        op(Hdel, h, 12, 0, 0, int(7)),
        op(Hgetall, h, 12, 0, 0, none),
        op(Sadd, st, 12, 0, 0, int(1)),
        // "5": the bytes of a string member that read back as an integer.
        op(Sadd, st, 12, 0, 0, s(5, 1)),
        op(Sadd, st, 12, 0, 0, s(70_000, 250)),
        op(Srem, st, 12, 0, 0, int(1)),
        op(Sismember, st, 12, 0, 0, s(5, 1)),
        op(Spop, st, 12, 0, 0, none),
        op(Scard, st, 12, 0, 0, none),
        op(Lpush, l, 12, 0, 0, s(1, 4)),
        op(Rpush, l, 12, 0, 0, int(u64::MAX)),
        op(Rpush, l, 12, 0, 0, int(0)),
        op(Lpop, l, 12, 0, 0, none),
        op(Rpop, l, 12, 0, 0, none),
        op(Lrange, l, 12, 3, 0, none),
        op(Lrange, l, 12, 0, 0, none),
        op(Ltrim, l, 12, 5, 0, none),
        op(Zadd, z, 12, 10, 0, s(9, 3)),
        op(Zadd, z, 12, 20, 0, int(20)),
        op(Zadd, z, 12, 5, 0, int(5)),
        op(Zincrby, z, 12, 3, 0, s(9, 3)),
        op(Zscore, z, 12, 0, 0, s(9, 3)),
        op(Zrem, z, 12, 0, 0, int(20)),
        op(Zrange, z, 12, 0, 0, none),
        op(Zrange, z, 12, 2, 0, none),
        op(Zpopmin, z, 12, 0, 0, none),
    ]
}

/// Keys `every_kind` leaves in Redis.
const EVERY_KIND_KEYS: i64 = 7;

fn every_kind_trace(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.file("every.csv");
    let mut w = FraglabCsvWriter::create(&path).unwrap();
    for op in every_kind() {
        w.write(&op).unwrap();
    }
    w.finish().unwrap();
    path
}

#[test]
fn every_kind_reads_back_from_resp_as_sent() {
    let dir = TempDir::new("resp-every");
    let csv = every_kind_trace(&dir);
    let want: Vec<Op> = every_kind().iter().flat_map(read_back).collect();
    for name in ["every.resp", "every.resp.zst"] {
        let out = dir.file(name);
        let msg = save(&format!("trace:{}", csv.display()), &out, &[]);
        assert!(msg.contains("wrote 43 requests"), "{msg}");
        assert!(
            msg.contains("left out 1 prepends, which Redis has no command for"),
            "{msg}"
        );
        assert!(msg.contains("left out 1 scans of no keys"), "{msg}");
        let got = read_trace(&out);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "op {i}");
        }
    }
    // Integer-ness as written: "5" reads back as an integer, "18446744073709551615" too.
    let got = read_trace(&dir.file("every.resp"));
    let members: Vec<Key> = got.iter().map(|o| o.member).collect();
    assert!(members.contains(&Key { id: 5, len: 0 }));
    assert!(members.contains(&Key {
        id: u64::MAX,
        len: 0
    }));
    assert!(members.iter().any(|m| m.len == 250));
}

#[test]
fn generated_workloads_read_back_from_resp_as_sent() {
    let dir = TempDir::new("resp-gen");
    let params = PresetParams {
        scale: 0.002,
        ..PresetParams::default()
    };
    for preset in [
        "ycsb-e",
        "twitter-52",
        "sessions",
        "leaderboard",
        "followers",
        "timeline",
    ] {
        let out = dir.file(&format!("{preset}.resp"));
        save(preset, &out, &["--scale", "0.002", "--seed", "3"]);
        let stream = Workload::preset(preset, &params)
            .unwrap()
            .stream(3)
            .unwrap();
        let want: Vec<Op> = stream.flat_map(|o| read_back(&o.unwrap())).collect();
        let got = read_trace(&out);
        assert_eq!(got.len(), want.len(), "{preset}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{preset} op {i}");
        }
    }
}

#[test]
fn resp_traces_read_from_stdin_and_say_where_they_are_bad() {
    let dir = TempDir::new("resp-bad");
    let good = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$2\r\nvv\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n";
    let mut bad = good.to_vec();
    bad.extend_from_slice(b"*4\r\n$8\r\nsetrange\r\n$1\r\na\r\n$1\r\n0\r\n$1\r\nx\r\n");
    bad.extend_from_slice(good);
    let path = dir.file("bad.resp");
    std::fs::write(&path, &bad).unwrap();
    let t = format!("trace:{}", path.display());
    let o = fraglab(&["describe", &t]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("bad.resp: record 3: unsupported command SETRANGE at byte 48"),
        "{e}"
    );
    let o = fraglab(&["describe", &t, "--lenient", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["requests"], 4);
    assert_eq!(v["ops"]["set"], 2);

    let mut child = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args([
            "describe",
            "trace:-",
            "--trace-format",
            "resp",
            "--format",
            "json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(good).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["requests"].as_u64(), v["distinct_keys"].as_u64()),
        (Some(2), Some(1))
    );
}

/// Whether redis-cli runs; panics under `CI=true` when it does not.
fn redis_cli_available() -> bool {
    let ok = Command::new("redis-cli")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-cli is not installed (apt-get install redis-tools); under CI=true this test \
             must run"
        );
        eprintln!("skipping: redis-cli is not on PATH (apt-get install redis-tools)");
    }
    ok
}

/// `redis-cli -p PORT --pipe < file`: its `errors` and `replies`.
fn pipe(port: u16, file: &Path) -> (u64, u64) {
    let o = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--pipe"])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .expect("redis-cli runs");
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    let last = out
        .lines()
        .find_map(|l| l.strip_prefix("errors: "))
        .unwrap_or_else(|| panic!("no `errors:` line in {out}"));
    let (errors, replies) = last
        .split_once(", replies: ")
        .expect("errors: N, replies: M");
    (errors.parse().unwrap(), replies.trim().parse().unwrap())
}

#[test]
fn saved_resp_pipes_into_a_real_redis() {
    if !redis_available() || !redis_cli_available() {
        return;
    }
    let dir = TempDir::new("resp-redis");
    let server = RedisServer::start(&[]);
    let mut conn = server.connect();
    let csv = every_kind_trace(&dir);
    let every = dir.file("every.resp");
    save(&format!("trace:{}", csv.display()), &every, &[]);
    assert_eq!(pipe(server.port, &every), (0, 43));
    assert_eq!(conn.cmd(&[b"DBSIZE"]), Reply::Int(EVERY_KIND_KEYS));

    // A generated workload: every record loaded, then read and updated.
    assert_eq!(conn.cmd(&[b"FLUSHALL"]), Reply::Status("OK".into()));
    let ycsb = dir.file("ycsb.resp");
    let msg = save("ycsb-a", &ycsb, &["--records", "500", "--ops", "2000"]);
    assert!(msg.contains("wrote 2500 requests"), "{msg}");
    assert_eq!(pipe(server.port, &ycsb), (0, 2500));
    assert_eq!(conn.cmd(&[b"DBSIZE"]), Reply::Int(500));

    // Aggregates, with either kind of value bytes.
    for (preset, values) in [("timeline", "letters"), ("leaderboard", "digits")] {
        assert_eq!(conn.cmd(&[b"FLUSHALL"]), Reply::Status("OK".into()));
        let file = dir.file(&format!("{preset}.resp"));
        let msg = save(preset, &file, &["--scale", "0.002", "--values", values]);
        let n: u64 = msg
            .strip_prefix("wrote ")
            .and_then(|m| m.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{msg}"));
        assert_eq!(pipe(server.port, &file), (0, n), "{preset}");
        let Reply::Int(keys) = conn.cmd(&[b"DBSIZE"]) else {
            panic!("DBSIZE")
        };
        assert!(keys > 0, "{preset}");
    }
}

#[test]
fn an_append_only_file_with_rewrites_loads_into_a_real_redis_as_the_same_keys() {
    if !redis_available() || !redis_cli_available() {
        return;
    }
    let dir = TempDir::new("aof-redis");
    let server = RedisServer::start(&[]);
    let mut conn = server.connect();
    // Hashes and a sorted set (YCSB's Redis binding), then strings with deletes and TTLs.
    for (preset, scale) in [("ycsb-hash", "0.002"), ("twitter-14", "0.005")] {
        assert_eq!(conn.cmd(&[b"FLUSHALL"]), Reply::Status("OK".into()));
        let aof = dir.file(&format!("{preset}.aof"));
        let v = support::run_json(&[
            "--workload",
            preset,
            "--scale",
            scale,
            "--alloc",
            "zmalloc",
            "--layout",
            "redis",
            "--aof",
            "no",
            "--aof-to",
            aof.to_str().unwrap(),
            "--aof-rewrite-min-size",
            "64k",
        ]);
        let rewrites = v["aof"]["rewrites"].as_array().unwrap();
        assert!(!rewrites.is_empty(), "{preset}: {}", v["aof"]);
        assert!(
            rewrites.iter().all(|r| r["complete"] == true),
            "{}",
            v["aof"]
        );
        let (errors, replies) = pipe(server.port, &aof);
        assert_eq!(errors, 0, "{preset}");
        assert!(replies > 0);
        assert_eq!(
            conn.cmd(&[b"DBSIZE"]),
            Reply::Int(v["summary"]["items"].as_i64().unwrap()),
            "{preset}: the keys the model held"
        );
    }
}
