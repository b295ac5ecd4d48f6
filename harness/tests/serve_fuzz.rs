//! Fuzzing `fraglab serve`'s RESP protocol: generated and mutated byte streams fed to
//! [`Resp::handle`] as a connection feeds it (in pieces, the unconsumed bytes handed back
//! longer), against one store, as `harness/tests/fuzz.rs` fuzzes the other parsers.
//!
//! Each input must give replies or a protocol error, never a panic; the replies must be whole
//! RESP values; `consumed` never passes the input; no input allocates past a fixed budget
//! above what was live before it (a counting global allocator measures the peak; the store's
//! own allocator is the model's, outside it). The inputs are seeded, so a failure names the
//! seed and the case that reproduce it.
//!
//! `cargo test -p fraglab --test serve_fuzz` runs 20,000 inputs;
//! `FRAGLAB_FUZZ_INPUTS=1000000 cargo test --release -p fraglab --test serve_fuzz` the full
//! count, and `FRAGLAB_FUZZ_SEED=N` another seed.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fraglab_allocators::{AllocSpec, Allocator};
use fraglab_engine::agg::AggConfig;
use fraglab_engine::{with_store, Layout, LayoutKind, Policy, Store, StoreConfig, WithStore};
use fraglab_harness::serve::resp::Resp;
use fraglab_harness::serve::{Ctx, Protocol, ProtocolKind, ServeConfig};
use fraglab_workloads::rng::Rng;

#[path = "support/counting.rs"]
mod counting;
use counting::{Counting, LIVE, PEAK};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The most one input may allocate above what was live before it.
const BUDGET: usize = 64 << 20;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Commands with arguments drawn from a small vocabulary (so keys collide and types clash).
const NAMES: &[&str] = &[
    "PING",
    "ECHO",
    "SET",
    "GET",
    "SETNX",
    "SETEX",
    "MGET",
    "MSET",
    "INCR",
    "DECRBY",
    "APPEND",
    "STRLEN",
    "DEL",
    "EXISTS",
    "EXPIRE",
    "PEXPIRE",
    "TTL",
    "PTTL",
    "PERSIST",
    "TYPE",
    "DBSIZE",
    "INFO",
    "CONFIG",
    "MEMORY",
    "OBJECT",
    "HELLO",
    "CLIENT",
    "COMMAND",
    "SELECT",
    "HSET",
    "HGET",
    "HMGET",
    "HDEL",
    "HGETALL",
    "HLEN",
    "HEXISTS",
    "HINCRBY",
    "SADD",
    "SREM",
    "SISMEMBER",
    "SCARD",
    "SPOP",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "LLEN",
    "LRANGE",
    "LTRIM",
    "ZADD",
    "ZREM",
    "ZSCORE",
    "ZINCRBY",
    "ZRANGE",
    "ZCARD",
    "ZPOPMIN",
    "FLUSHALL",
    "NOPE",
    "QUIT",
];
const WORDS: &[&str] = &[
    "k",
    "h",
    "l",
    "z",
    "s",
    "1",
    "-1",
    "0",
    "2.5",
    "inf",
    "-inf",
    "nan",
    "9223372036854775807",
    "x",
    "EX",
    "PX",
    "NX",
    "XX",
    "GET",
    "KEEPTTL",
    "WITHSCORES",
    "CH",
    "INCR",
    "SAMPLES",
    "USAGE",
    "ENCODING",
    "GET",
    "SET",
    "maxmemory",
    "*",
    "hash-max-listpack-entries",
    "1kb",
    "3",
    "2",
    "SETNAME",
    "GETNAME",
    "ID",
    "DOCS",
    "memory",
    "list-max-listpack-size",
    "-5",
];

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len() as u64) as usize]
}

/// A stream of a few commands, multibulk or inline.
fn commands(rng: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..1 + rng.below(6) {
        let mut args = vec![pick(rng, NAMES).to_string()];
        for _ in 0..rng.below(6) {
            args.push(pick(rng, WORDS).to_string());
        }
        if rng.below(4) == 0 {
            v.extend_from_slice(args.join(" ").as_bytes());
            v.extend_from_slice(b"\r\n");
        } else {
            v.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
        }
    }
    v
}

/// Framing edges: headers with odd, huge, negative or padded lengths.
fn headers(rng: &mut Rng) -> Vec<u8> {
    const NUMS: &[&str] = &[
        "0",
        "-1",
        "-2",
        "1",
        "01",
        "+1",
        " 1",
        "1048576",
        "1048577",
        "536870912",
        "536870913",
        "99999999999999999999",
        "",
        "x",
        "3",
    ];
    let mut v = format!("*{}\r\n", pick(rng, NUMS)).into_bytes();
    for _ in 0..rng.below(4) {
        v.extend_from_slice(format!("${}\r\nabc\r\n", pick(rng, NUMS)).as_bytes());
    }
    v
}

fn mutate(rng: &mut Rng, mut v: Vec<u8>) -> Vec<u8> {
    const EDGE: &[u8] = b"\0\xff\n\r*$:+-\"' 0123456789";
    for _ in 0..=rng.below(4) {
        let len = v.len() as u64;
        let at = if len == 0 { 0 } else { rng.below(len) as usize };
        match rng.below(5) {
            0 if !v.is_empty() => v[at] ^= 1 << rng.below(8),
            1 if !v.is_empty() => v[at] = EDGE[rng.below(EDGE.len() as u64) as usize],
            2 => v.insert(at, EDGE[rng.below(EDGE.len() as u64) as usize]),
            3 if !v.is_empty() => {
                v.remove(at);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn input(rng: &mut Rng) -> Vec<u8> {
    match rng.below(8) {
        0 => (0..rng.below(512)).map(|_| rng.next_u64() as u8).collect(),
        1 => headers(rng),
        2 | 3 => commands(rng),
        4 => {
            let h = headers(rng);
            mutate(rng, h)
        }
        _ => {
            let c = commands(rng);
            mutate(rng, c)
        }
    }
}

/// Where the reply at `pos` ends, if it is a whole RESP value.
fn reply_end(b: &[u8], pos: usize) -> Option<usize> {
    let t = *b.get(pos)?;
    let e = pos + b[pos..].windows(2).position(|w| w == b"\r\n")?;
    if b"+-:_,#(".contains(&t) {
        return Some(e + 2);
    }
    let n: i64 = std::str::from_utf8(&b[pos + 1..e]).ok()?.parse().ok()?;
    if n < 0 {
        return Some(e + 2);
    }
    match t {
        b'$' | b'=' => {
            let end = e + 2 + n as usize + 2;
            (b.len() >= end && &b[end - 2..end] == b"\r\n").then_some(end)
        }
        b'*' | b'~' | b'%' => {
            let mut p = e + 2;
            for _ in 0..n * if t == b'%' { 2 } else { 1 } {
                p = reply_end(b, p)?;
            }
            Some(p)
        }
        _ => None,
    }
}

/// Feeds `bytes` to a fresh connection in pieces, as the server does; checks the contract.
fn feed<A: Allocator, L: Layout>(ctx: &mut Ctx<A, L>, rng: &mut Rng, bytes: &[u8]) -> String {
    let mut proto = Resp::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = 1 + rng.below(bytes.len() as u64) as usize;
        let end = (at + n).min(bytes.len());
        pending.extend_from_slice(&bytes[at..end]);
        at = end;
        let h = proto.handle(ctx, &pending, &mut out);
        if h.consumed > pending.len() {
            return format!("consumed {} of {}", h.consumed, pending.len());
        }
        pending.drain(..h.consumed);
        if h.close {
            break;
        }
    }
    let mut p = 0;
    while p < out.len() {
        match reply_end(&out, p) {
            Some(e) => p = e,
            None => return format!("not RESP at {p}: {:?}", String::from_utf8_lossy(&out[p..])),
        }
    }
    String::new()
}

struct Fuzz {
    inputs: u64,
    seed: u64,
}

impl WithStore for Fuzz {
    type Output = ();

    fn run<A: Allocator, L: Layout>(self, store: Store<A, L>) {
        let config = ServeConfig {
            protocol: ProtocolKind::Resp,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_clients: 16,
            timeout: Duration::from_secs(10),
            memory: None,
            alloc: "zmalloc:backend=jemalloc,prefix=0".into(),
            layout: L::KIND,
            policy: Policy::Noeviction,
        };
        let mut ctx = Ctx::new(store, config);
        let mut rng = Rng::new(self.seed);
        for case in 0..self.inputs {
            if case % 256 == 0 {
                ctx.store.flush();
                ctx.store.set_agg_config(AggConfig::default());
                ctx.store.allocator_mut().set_limit(None);
            }
            let bytes = input(&mut rng);
            let before = LIVE.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let problem = feed(&mut ctx, &mut rng, &bytes);
            let peak = PEAK.load(Ordering::Relaxed) - before;
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            assert!(
                problem.is_empty(),
                "seed {} case {case}: {problem}; input {shown:?}",
                self.seed
            );
            assert!(
                peak <= BUDGET,
                "seed {} case {case}: {peak} bytes allocated; input {shown:?}",
                self.seed
            );
        }
    }
}

#[test]
fn resp_protocol_survives_arbitrary_bytes() {
    let inputs = env_or("FRAGLAB_FUZZ_INPUTS", 20_000);
    let seed = env_or("FRAGLAB_FUZZ_SEED", 12);
    let spec: AllocSpec = "zmalloc:backend=jemalloc,prefix=0".parse().unwrap();
    let config = StoreConfig {
        seed: 1,
        ..StoreConfig::default()
    };
    let started = std::time::Instant::now();
    with_store(
        &spec,
        LayoutKind::Redis,
        None,
        config,
        Fuzz { inputs, seed },
    )
    .unwrap();
    eprintln!(
        "serve_fuzz: {inputs} inputs, seed {seed}, no panic, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
