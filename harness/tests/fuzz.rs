//! Fuzzing that stays: generated and mutated inputs fed to every parser of untrusted input:
//! the five trace formats (strict and lenient; RESP command files also with mutations of their
//! own), workload spec TOML, allocator specs and sizes.
//! (The replies of real servers, memcached's text protocol and RESP, are fuzzed beside their
//! readers, in `harness/src/peer/fuzz.rs`.)
//!
//! Each input must give a value or a clear error: no panic, and no allocation past a fixed
//! budget above what was live before it (a counting global allocator measures the peak).
//! The inputs are seeded, so a failure names the seed and the case that reproduce it.
//!
//! `cargo test -p fraglab --test fuzz` runs a short pass (20,000 inputs, what CI runs);
//! `FRAGLAB_FUZZ_INPUTS=1000000 cargo test --release -p fraglab --test fuzz` runs the full
//! count, and `FRAGLAB_FUZZ_SEED=N` another seed.

use std::io::Cursor;
use std::sync::atomic::Ordering;

use fraglab_allocators::AllocSpec;
use fraglab_workloads::rng::Rng;
use fraglab_workloads::trace::{TraceFormat, TraceOptions, TraceReader, FRAGLAB_CSV_HEADER};
use fraglab_workloads::WorkloadSpec;

#[path = "support/counting.rs"]
mod counting;
use counting::{Counting, LIVE, PEAK};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The most one input may allocate above what was live before it.
const BUDGET: usize = 64 << 20;

/// Inputs of the short pass, split over the parsers.
const SHORT_PASS: u64 = 20_000;

fn inputs() -> u64 {
    std::env::var("FRAGLAB_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SHORT_PASS)
}

fn seed() -> u64 {
    std::env::var("FRAGLAB_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// Runs `f` on one input and checks it kept within the budget. Tests in this file run one at
/// a time (a lock) so that the peak is this input's.
fn bounded<T>(what: &str, input: &[u8], f: impl FnOnce() -> T) -> T {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed);
    assert!(
        peak - before <= BUDGET,
        "{what}: {} bytes allocated for an input of {} bytes: {:?}",
        peak - before,
        input.len(),
        String::from_utf8_lossy(&input[..input.len().min(200)])
    );
    out
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A mutation of one of `seeds`: bytes flipped, set to edge values, inserted, deleted,
/// duplicated, spliced with another seed, or cut short; or, one time in 16, random bytes.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(16) == 0 {
        let n = rng.below(512) as usize;
        return (0..n).map(|_| rng.next_u64() as u8).collect();
    }
    let mut v = seeds[rng.below(seeds.len() as u64) as usize].clone();
    const EDGE: &[u8] = b"\0\xff\n\r,-9:=[]{}\"'.e ";
    for _ in 0..=rng.below(4) {
        let len = v.len() as u64;
        let at = if len == 0 { 0 } else { rng.below(len) as usize };
        match rng.below(8) {
            0 if !v.is_empty() => v[at] ^= 1 << rng.below(8),
            1 if !v.is_empty() => v[at] = EDGE[rng.below(EDGE.len() as u64) as usize],
            2 => {
                let n = 1 + rng.below(8) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(at..at, bytes);
            }
            3 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16) as usize).min(v.len());
                v.drain(at..end);
            }
            4 if !v.is_empty() => {
                let end = (at + 1 + rng.below(64) as usize).min(v.len());
                let copy = v[at..end].to_vec();
                v.splice(at..at, copy);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len() as u64) as usize];
                let from = if other.is_empty() {
                    0
                } else {
                    rng.below(other.len() as u64) as usize
                };
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            6 => v.truncate(at),
            _ => {
                // A number made huge: the lengths and counts a parser must check.
                let huge = [
                    "4294967295",
                    "18446744073709551615",
                    "99999999999999999999",
                    "-1",
                ];
                v.splice(at..at, huge[rng.below(4) as usize].bytes());
            }
        }
    }
    v
}

/// Valid records of every trace format.
fn trace_seeds() -> Vec<(TraceFormat, Vec<Vec<u8>>)> {
    let mut fraglab = format!("{FRAGLAB_CSV_HEADER}\n");
    for (i, op) in ["get", "set", "delete", "incr", "scan", "append"]
        .iter()
        .enumerate()
    {
        fraglab += &format!("{},{op},{},12,{},0,{},0\n", i * 10, i * 7, i * 100, i % 2);
    }
    let mut twitter = String::new();
    for (i, op) in ["get", "set", "gets", "delete", "incr", "cas"]
        .iter()
        .enumerate()
    {
        twitter += &format!("{i},key{i},{},{},3,{op},0\n", 8 + i, 100 * i);
    }
    let mut oracle = Vec::new();
    let mut segcache = Vec::new();
    for i in 0..6u64 {
        oracle.extend_from_slice(&(i as u32).to_le_bytes());
        oracle.extend_from_slice(&(i * 31).to_le_bytes());
        oracle.extend_from_slice(&(100 + i as u32).to_le_bytes());
        oracle.extend_from_slice(&(-1i64).to_le_bytes());
        segcache.extend_from_slice(&(i as u32).to_le_bytes());
        segcache.extend_from_slice(&(i * 31).to_le_bytes());
        segcache.extend_from_slice(&((16u32 << 22) | (200 + i as u32)).to_le_bytes());
        segcache.extend_from_slice(&(((1 + i as u32 % 11) << 24) | 60).to_le_bytes());
    }
    vec![
        (TraceFormat::Fraglab, vec![fraglab.into_bytes()]),
        (TraceFormat::Twitter, vec![twitter.into_bytes()]),
        (TraceFormat::OracleGeneral, vec![oracle]),
        (TraceFormat::Segcache, vec![segcache]),
        (TraceFormat::Resp, resp_seeds()),
    ]
}

/// One RESP command.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n{a}\r\n", a.len()).bytes());
    }
    out
}

/// Valid RESP command files: every command the reader knows, and some it does not.
fn resp_seeds() -> Vec<Vec<u8>> {
    let lines: [&[&[&str]]; 6] = [
        &[
            &["SET", "user:1", "hello", "EX", "60", "NX"],
            &["get", "user:1"],
            &["MSET", "a", "1", "b", "22"],
            &["MGET", "a", "b", "c"],
            &["DEL", "a"],
            &["UNLINK", "b"],
        ],
        &[
            &["EXPIRE", "k", "30"],
            &["PERSIST", "k"],
            &["INCR", "n"],
            &["DECRBY", "n", "1"],
            &["APPEND", "k", "xyz"],
            &["SET", "k", "v", "PX", "1500", "XX"],
        ],
        &[
            &["HSET", "h", "f", "v", "7", "seven"],
            &["HMSET", "h", "g", "w"],
            &["HGET", "h", "f"],
            &["HDEL", "h", "f", "7"],
            &["HGETALL", "h"],
            &["HINCRBY", "h", "c", "5"],
        ],
        &[
            &["SADD", "s", "1", "two"],
            &["SREM", "s", "1"],
            &["SISMEMBER", "s", "two"],
            &["SPOP", "s"],
            &["SCARD", "s"],
            &["LPUSH", "l", "a", "b"],
        ],
        &[
            &["RPUSH", "l", "3"],
            &["LPOP", "l"],
            &["RPOP", "l"],
            &["LRANGE", "l", "0", "9"],
            &["LTRIM", "l", "0", "-1"],
            &["ZRANGE", "z", "0", "4"],
        ],
        &[
            &["ZADD", "z", "10", "alice", "0", "7"],
            &["ZREM", "z", "alice"],
            &["ZSCORE", "z", "7"],
            &["ZINCRBY", "z", "3", "alice"],
            &["ZPOPMIN", "z"],
            &["SETRANGE", "k", "0", "x"],
        ],
    ];
    lines
        .iter()
        .map(|cmds| cmds.iter().flat_map(|c| resp(c)).collect())
        .collect()
}

/// RESP's framing tokens and the lengths at and past its limits, spliced in.
fn mutate_resp(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = mutate(rng, seeds);
    const TOKENS: [&str; 10] = [
        "*",
        "$",
        "\r\n",
        "*1048576\r\n",
        "*1048577\r\n",
        "$536870912\r\n",
        "$536870913\r\n",
        "$0\r\n\r\n",
        "*0\r\n",
        "$-1\r\n",
    ];
    for _ in 0..rng.below(3) {
        let at = rng.below(v.len() as u64 + 1) as usize;
        let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
        v.splice(at..at, t.bytes());
    }
    v
}

#[test]
fn resp_reader_gives_records_or_errors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(seed() ^ 0x8e59);
    let seeds = resp_seeds();
    let n = inputs() / 4;
    let (mut ops, mut skipped) = (0u64, 0u64);
    for i in 0..n {
        let input = mutate_resp(&mut rng, &seeds);
        let opts = TraceOptions {
            format: Some(TraceFormat::Resp),
            lenient: i % 2 == 0,
            key_len: 16,
        };
        let (o, s) = bounded("resp", &input, || {
            let mut reader =
                TraceReader::from_reader("fuzz.resp", Cursor::new(input.clone()), &opts)
                    .expect("no format to detect, nothing read yet");
            let mut n = 0u64;
            for op in reader.by_ref() {
                match op {
                    Ok(op) => {
                        assert!(op.key.len >= 1, "{op:?}");
                        assert!(op.member.len <= fraglab_workloads::KEY_MAX, "{op:?}");
                        n += 1;
                    }
                    Err(e) => {
                        let m = e.to_string();
                        assert!(m.starts_with("fuzz.resp: "), "{m}");
                        break;
                    }
                }
            }
            (n, reader.skipped())
        });
        ops += o;
        skipped += s;
    }
    eprintln!(
        "fuzz: {n} RESP inputs (seed {}), {ops} ops decoded, {skipped} commands skipped",
        seed()
    );
    assert!(
        ops > 0 && skipped > 0,
        "the mutations keep some commands valid, some not"
    );
}

#[test]
fn trace_readers_give_records_or_errors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(seed());
    let seeds = trace_seeds();
    let n = inputs() / 2;
    let mut records = 0u64;
    for i in 0..n {
        let (format, s) = &seeds[(i % seeds.len() as u64) as usize];
        let input = mutate(&mut rng, s);
        let opts = TraceOptions {
            format: Some(*format),
            lenient: i % 3 == 0,
            key_len: 1 + (i % 64) as u16,
        };
        records += bounded(format.name(), &input, || {
            let Ok(reader) = TraceReader::from_reader("fuzz", Cursor::new(input.clone()), &opts)
            else {
                return 0;
            };
            // Every record, or the first error.
            reader.take_while(Result::is_ok).count() as u64
        });
    }
    eprintln!(
        "fuzz: {n} trace inputs (seed {}), {records} records decoded",
        seed()
    );
    assert!(records > 0, "the mutations keep some inputs valid");
}

#[test]
fn workload_specs_parse_or_say_why() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(seed() ^ 0x5eed);
    let example = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../workloads/examples/workload.toml"
    ))
    .unwrap();
    let small = b"name = \"s\"\nkeyspace = 100\nmix = { get = 0.9, set = 0.1 }\n\
        [key_size]\ndist = \"fixed\"\nsize = 8\n[value_size]\ndist = \"lognormal\"\nmu = 4\nsigma = 1\n\
        [[phases]]\nname = \"p\"\nops = 50\n"
        .to_vec();
    let seeds = [example, small];
    let n = inputs() / 4;
    let mut valid = 0u64;
    for _ in 0..n {
        let input = mutate(&mut rng, &seeds);
        let text = String::from_utf8_lossy(&input).into_owned();
        valid += bounded("workload spec", &input, || {
            match WorkloadSpec::from_toml(&text) {
                Ok(spec) if spec.validate().is_ok() => {
                    // A valid spec generates: the first ops, within the budget.
                    let dir = std::env::temp_dir();
                    if let Ok(g) = fraglab_workloads::Generator::new(&spec, &dir, 1) {
                        std::hint::black_box(g.take(1_000).count());
                    }
                    1
                }
                Ok(_) => 0,
                Err(_) => 0,
            }
        });
    }
    eprintln!("fuzz: {n} spec inputs, {valid} valid");
    assert!(valid > 0, "the mutations keep some specs valid");
}

#[test]
fn allocator_specs_and_sizes_parse_or_say_why() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(seed() ^ 0xa110c);
    let mut seeds: Vec<Vec<u8>> = AllocSpec::all()
        .iter()
        .map(|s| s.to_string().into_bytes())
        .collect();
    seeds.extend(
        [
            "512",
            "64k",
            "64m",
            "1g",
            "2t",
            "64KiB",
            "1.5m",
            "0",
            "18446744073709551615",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec()),
    );
    let n = inputs() / 4;
    let mut parsed = 0u64;
    for _ in 0..n {
        let input = mutate(&mut rng, &seeds);
        let text = String::from_utf8_lossy(&input).into_owned();
        parsed += bounded("allocator spec or size", &input, || {
            let spec = text.parse::<AllocSpec>().map(|s| {
                // A parsed spec prints back and parses to itself.
                let again: AllocSpec = s.to_string().parse().expect("its own canonical form");
                assert_eq!(again.to_string(), s.to_string());
            });
            let size = fraglab_units::parse_size(&text);
            u64::from(spec.is_ok()) + u64::from(size.is_ok())
        });
    }
    eprintln!("fuzz: {n} allocator spec and size inputs, {parsed} parsed");
    assert!(parsed > 0);
}
