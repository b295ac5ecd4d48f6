//! INFO, CONFIG GET/SET, MEMORY USAGE and OBJECT ENCODING: the modeled server's memory, in
//! the fields and words of Redis 7.0 (`server.c`'s `genRedisInfoString`, `config.c`,
//! `object.c`).
//!
//! The memory figures come from the model, not from this process: `used_memory` is the
//! allocator's allocated bytes for the data (its usable sizes; zmalloc's `used_memory`),
//! `allocator_allocated` the same, `allocator_active` its footprint (the pages it holds),
//! `allocator_resident` jemalloc's resident pages where the allocator is jemalloc (the
//! footprint otherwise). Redis's own server overhead (about 0.9 MB at start: the shared
//! objects, client buffers, the replication backlog...) is not modeled, so an empty server
//! says `used_memory:0` where Redis says about 900K. `used_memory_rss` is this process's
//! resident set (the lab's binary and every connection's buffers included), and
//! `mem_fragmentation_ratio` is Redis's `rss / used_memory` of it: read the `allocator_*`
//! fields for the model's own fragmentation.

use fraglab_allocators::{Allocator, Detail};
use fraglab_engine::agg::AggConfig;
use fraglab_engine::{Layout, Policy};

use super::resp::{int_arg, is, unknown_subcommand, Conn, Flow, Out};
use super::Ctx;

/// Redis's `bytesToHuman`.
fn human(n: u64) -> String {
    let d = n as f64;
    match n {
        n if n < 1024 => format!("{n}B"),
        n if n < 1 << 20 => format!("{:.2}K", d / 1024.0),
        n if n < 1 << 30 => format!("{:.2}M", d / (1u64 << 20) as f64),
        n if n < 1 << 40 => format!("{:.2}G", d / (1u64 << 30) as f64),
        _ => format!("{:.2}T", d / (1u64 << 40) as f64),
    }
}

/// The policy's name as `maxmemory-policy` says it.
fn policy_name(p: Policy) -> String {
    match p.name() {
        "sampled-lru" => "allkeys-lru".into(),
        "lfu" => "allkeys-lfu".into(),
        "random" => "allkeys-random".into(),
        other => other.into(),
    }
}

/// This process's resident set, from `/proc/self/statm`.
fn rss() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        "0.00".into()
    } else {
        format!("{:.2}", a as f64 / b as f64)
    }
}

fn section<A: Allocator, L: Layout>(ctx: &Ctx<A, L>, name: &str, s: &mut String) {
    use std::fmt::Write;
    let st = ctx.store.stats();
    let m = &st.mem;
    match name {
        "server" => {
            let up = ctx.uptime();
            let _ = write!(
                s,
                "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nos:{} {}\r\n\
                 arch_bits:64\r\nmultiplexing_api:tokio\r\nprocess_id:{}\r\ntcp_port:{}\r\n\
                 uptime_in_seconds:{up}\r\nuptime_in_days:{}\r\nexecutable:fraglab serve\r\n\
                 fraglab_alloc:{}\r\nfraglab_layout:{}\r\n",
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                ctx.config.addr.port(),
                up / 86_400,
                ctx.config.alloc,
                ctx.config.layout.name(),
            );
        }
        "clients" => {
            let _ = write!(
                s,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n",
                ctx.clients, ctx.config.max_clients
            );
        }
        "memory" => {
            let used = m.allocated_bytes;
            let active = m.footprint_bytes;
            let resident = match &m.detail {
                Detail::Jemalloc(j) => j.resident,
                Detail::Zmalloc(z) => match z.backend_detail.as_ref() {
                    Detail::Jemalloc(j) => j.resident,
                    _ => active,
                },
                _ => active,
            };
            let rss = rss();
            let max = ctx.store.allocator().limit().unwrap_or(0);
            let _ = write!(
                s,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\n\
                 used_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\n\
                 used_memory_dataset:{used}\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\n\
                 maxmemory_policy:{}\r\nallocator_allocated:{used}\r\nallocator_active:{active}\r\n\
                 allocator_resident:{resident}\r\nallocator_frag_ratio:{}\r\n\
                 allocator_frag_bytes:{}\r\nmem_fragmentation_ratio:{}\r\n\
                 mem_fragmentation_bytes:{}\r\nmem_allocator:{}\r\n",
                human(used),
                human(rss),
                human(max),
                policy_name(ctx.store.policy()),
                ratio(active, used),
                active as i64 - used as i64,
                ratio(rss, used),
                rss as i64 - used as i64,
                ctx.config.alloc,
            );
        }
        "stats" => {
            let c = &st.counters;
            let _ = write!(
                s,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 rejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\n\
                 keyspace_hits:{}\r\nkeyspace_misses:{}\r\n",
                ctx.total_connections,
                ctx.commands,
                ctx.rejected_connections,
                c.expired_lazy + c.expired_active,
                c.evictions,
                c.hits,
                c.misses
            );
        }
        "keyspace" => {
            s.push_str("# Keyspace\r\n");
            if st.items > 0 {
                let _ = write!(s, "db0:keys={},expires=0,avg_ttl=0\r\n", st.items);
            }
        }
        _ => {}
    }
}

const SECTIONS: [&str; 5] = ["server", "clients", "memory", "stats", "keyspace"];

/// INFO [section ...].
pub fn info<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let mut want: Vec<&str> = Vec::new();
    if args.len() == 1 {
        want.extend(SECTIONS);
    }
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        if ["all", "default", "everything"].contains(&a.as_str()) {
            want.extend(SECTIONS);
        } else if let Some(s) = SECTIONS.iter().find(|s| **s == a) {
            want.push(s);
        }
    }
    let mut s = String::new();
    for (i, w) in SECTIONS.iter().filter(|s| want.contains(s)).enumerate() {
        if i > 0 {
            s.push_str("\r\n");
        }
        section(ctx, w, &mut s);
    }
    out.verbatim(s.as_bytes());
    Flow::Next
}

/// Redis's `stringmatchlen` (`*`, `?`, `[...]` with `^` and ranges, `\` escapes), case
/// insensitive as CONFIG GET matches.
pub fn glob(p: &[u8], s: &[u8]) -> bool {
    let (Some(&c), rest) = (p.first(), p.get(1..).unwrap_or(&[])) else {
        return s.is_empty();
    };
    match c {
        b'*' => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        b'?' => !s.is_empty() && glob(rest, &s[1..]),
        b'[' => {
            let Some(&ch) = s.first() else { return false };
            let ch = ch.to_ascii_lowercase();
            let (neg, mut q) = match rest.first() {
                Some(b'^') => (true, &rest[1..]),
                _ => (false, rest),
            };
            let mut hit = false;
            while let Some(&x) = q.first() {
                if x == b']' {
                    break;
                }
                if x == b'\\' && q.len() >= 2 {
                    hit |= q[1].to_ascii_lowercase() == ch;
                    q = &q[2..];
                } else if q.len() >= 3 && q[1] == b'-' {
                    let (a, b) = (q[0].to_ascii_lowercase(), q[2].to_ascii_lowercase());
                    hit |= a.min(b) <= ch && ch <= a.max(b);
                    q = &q[3..];
                } else {
                    hit |= x.to_ascii_lowercase() == ch;
                    q = &q[1..];
                }
            }
            let q = q.get(1..).unwrap_or(&[]);
            hit != neg && glob(q, &s[1..])
        }
        b'\\' if !rest.is_empty() => {
            s.first().is_some_and(|x| x.eq_ignore_ascii_case(&rest[0])) && glob(&rest[1..], &s[1..])
        }
        c => s.first().is_some_and(|x| x.eq_ignore_ascii_case(&c)) && glob(rest, &s[1..]),
    }
}

/// The parameters CONFIG GET answers, with their values.
fn params<A: Allocator, L: Layout>(ctx: &Ctx<A, L>) -> Vec<(&'static str, String)> {
    let a = ctx.store.agg_config();
    vec![
        ("save", String::new()),
        ("appendonly", "no".into()),
        (
            "maxmemory",
            ctx.store.allocator().limit().unwrap_or(0).to_string(),
        ),
        ("maxmemory-policy", policy_name(ctx.store.policy())),
        ("maxclients", ctx.config.max_clients.to_string()),
        ("timeout", ctx.config.timeout.as_secs().to_string()),
        ("proto-max-bulk-len", (512u64 << 20).to_string()),
        (
            "hash-max-listpack-entries",
            a.hash_max_listpack_entries.to_string(),
        ),
        (
            "hash-max-listpack-value",
            a.hash_max_listpack_value.to_string(),
        ),
        (
            "set-max-intset-entries",
            a.set_max_intset_entries.to_string(),
        ),
        (
            "zset-max-listpack-entries",
            a.zset_max_listpack_entries.to_string(),
        ),
        (
            "zset-max-listpack-value",
            a.zset_max_listpack_value.to_string(),
        ),
        (
            "list-max-listpack-size",
            a.list_max_listpack_size.to_string(),
        ),
    ]
}

/// Redis's `memtoll`: a number with an optional unit (`k` 1000, `kb` 1024, `m`, `mb`, `g`,
/// `gb`, any case).
fn memtoll(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?.to_ascii_lowercase();
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let mul: u64 = match &s[digits.len()..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// CONFIG GET pattern... / CONFIG SET param value ... / CONFIG RESETSTAT.
pub fn config<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let sub = args[1];
    if is(sub, "get") {
        if args.len() < 3 {
            out.error("wrong number of arguments for 'config|get' command");
            return Flow::Next;
        }
        let all = params(ctx);
        let hits: Vec<_> = all
            .iter()
            .filter(|(n, _)| args[2..].iter().any(|p| glob(p, n.as_bytes())))
            .collect();
        out.map(hits.len());
        for (n, v) in hits {
            out.bulk(n.as_bytes());
            out.bulk(v.as_bytes());
        }
    } else if is(sub, "set") {
        if args.len() < 4 {
            out.error("wrong number of arguments for 'config|set' command");
            return Flow::Next;
        }
        config_set(ctx, &args[2..], out);
    } else if is(sub, "resetstat") {
        out.ok();
    } else {
        unknown_subcommand(args, out);
    }
    Flow::Next
}

fn config_set<A: Allocator, L: Layout>(ctx: &mut Ctx<A, L>, pairs: &[&[u8]], out: &mut Out<'_>) {
    let name = |b: &[u8]| String::from_utf8_lossy(super::resp::cstr(b)).to_ascii_lowercase();
    if pairs.len() % 2 != 0 {
        let last = name(pairs[pairs.len() - 1]);
        out.error(&format!(
            "Unknown option or number of arguments for CONFIG SET - '{last}'"
        ));
        return;
    }
    // Every value is checked before any is applied, as Redis applies all or none.
    let mut agg = *ctx.store.agg_config();
    let mut limit = None;
    for p in pairs.chunks(2) {
        let n = name(p[0]).replace("ziplist", "listpack");
        let v = String::from_utf8_lossy(p[1]).into_owned();
        if n == "maxmemory" {
            match memtoll(p[1]) {
                Some(m) => limit = Some(m),
                None => {
                    out.error("CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value");
                    return;
                }
            }
        } else if AggConfig::PARAMS.contains(&n.as_str()) {
            if let Err(e) = agg.set(&n, &v) {
                out.error(&format!(
                    "CONFIG SET failed (possibly related to argument '{n}') - {e}"
                ));
                return;
            }
        } else {
            out.error(&format!(
                "Unknown option or number of arguments for CONFIG SET - '{n}'"
            ));
            return;
        }
    }
    if let Some(m) = limit {
        ctx.store.allocator_mut().set_limit((m > 0).then_some(m));
    }
    ctx.store.set_agg_config(agg);
    out.ok();
}

/// MEMORY USAGE key [SAMPLES n] (every block of the key at its allocator size; SAMPLES is
/// accepted and ignored: the count is exact) / MEMORY DOCTOR. Redis's `memoryCommand` adds
/// `sizeof(dictEntry)` (24) for the key's entry where the allocator hands out 32, and a few
/// other structs at their `sizeof`, so Redis says 64 for a short string key where this says
/// 72 (jemalloc): the model counts what the allocator holds.
pub fn memory<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    if is(args[1], "usage") {
        if args.len() < 3 {
            out.error("wrong number of arguments for 'memory|usage' command");
            return Flow::Next;
        }
        match args.len() {
            3 => {}
            5 if is(args[3], "samples") => {
                if int_arg(args[4], out).is_none() {
                    return Flow::Next;
                }
            }
            _ => {
                out.error("syntax error");
                return Flow::Next;
            }
        }
        let now = ctx.now();
        match ctx.store.key_memory(args[2], now) {
            Some(n) => out.int(n as i64),
            None => out.null(),
        }
    } else if is(args[1], "doctor") {
        out.verbatim(b"Sam, I have no memory problems");
    } else {
        unknown_subcommand(args, out);
    }
    Flow::Next
}

/// OBJECT ENCODING key: an aggregate's encoding; a string's `int` (a 64-bit integer of at
/// most 20 characters), `embstr` (at most 44 bytes) or `raw`.
pub fn object<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    if !is(args[1], "encoding") {
        unknown_subcommand(args, out);
        return Flow::Next;
    }
    if args.len() != 3 {
        out.error("wrong number of arguments for 'object|encoding' command");
        return Flow::Next;
    }
    let now = ctx.now();
    if let Some((enc, _)) = ctx.store.agg_shape_of(args[2], now) {
        out.bulk(enc.name().as_bytes());
        return Flow::Next;
    }
    let mut v = Vec::new();
    if ctx.store.get_into(args[2], now, &mut v).is_none() {
        out.null();
        return Flow::Next;
    }
    let enc: &[u8] = if v.len() <= 20 && super::resp_parse::string2ll(&v).is_some() {
        b"int"
    } else if v.len() <= 44 {
        b"embstr"
    } else {
        b"raw"
    };
    out.bulk(enc);
    Flow::Next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_units() {
        assert!(glob(b"*", b"maxmemory"));
        assert!(glob(b"max*", b"maxmemory-policy"));
        assert!(glob(b"MAXMEMORY", b"maxmemory"));
        assert!(!glob(b"max", b"maxmemory"));
        assert!(glob(b"hash-max-*-[ev]*", b"hash-max-listpack-entries"));
        assert!(glob(b"s?ve", b"save"));
        assert_eq!(memtoll(b"100mb"), Some(100 << 20));
        assert_eq!(memtoll(b"1k"), Some(1000));
        assert_eq!(memtoll(b"12x"), None);
        assert_eq!(human(1536), "1.50K");
    }
}
