//! RESP aggregate commands: hashes, sets, lists and sorted sets, run through the engine's
//! [`AggCmd`]s ([`fraglab_engine::Store::agg`]) and answered as Redis 7.0's `t_hash.c`,
//! `t_set.c`, `t_list.c` and `t_zset.c` answer.
//!
//! A command over many fields or members (HSET with many pairs, SADD with many members,
//! LPUSH with many elements) runs one engine command per element, in order; if the memory
//! limit refuses one midway, those before it stay done (Redis checks `maxmemory` once, before
//! the command). HLEN, SCARD, LLEN and ZCARD read the element count the store keeps for
//! `OBJECT ENCODING`. SMEMBERS is not served (the engine has no command that reads a whole
//! set without changing it).

use fraglab_allocators::Allocator;
use fraglab_engine::agg::{split_elems, AggCmd, AggType, Reply};
use fraglab_engine::{CmdError, Layout};

use super::resp::{cmd_error, Conn, Flow, Out};
use super::resp_cmds::int_arg;
use super::Ctx;

/// One engine command; the reply's bytes in `buf` (cleared first).
fn agg<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    cmd: &AggCmd<'_>,
    buf: &mut Vec<u8>,
) -> Result<Reply, CmdError> {
    let now = ctx.now();
    buf.clear();
    ctx.store.agg(key, cmd, now, buf)
}

/// An aggregate command's error, as Redis words it (HINCRBY's `hash value is not an
/// integer`).
fn agg_error(e: &CmdError, cmd: &str, out: &mut Out<'_>) {
    match e {
        CmdError::NotAnInteger if cmd == "hincrby" => out.error("hash value is not an integer"),
        e => cmd_error(e, cmd, out),
    }
}

/// Writes one engine reply.
fn reply(r: Reply, buf: &[u8], out: &mut Out<'_>) {
    match r {
        Reply::Nil => out.null(),
        Reply::Int(n) => out.int(n),
        Reply::Score(s) => out.double(s),
        Reply::Bulk => out.bulk(buf),
        Reply::Array(n) => {
            out.array(n);
            for e in split_elems(buf) {
                out.bulk(e);
            }
        }
        Reply::Ok => out.ok(),
    }
}

/// Runs one command and writes its reply.
fn one<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    cmd: AggCmd<'_>,
    name: &str,
    out: &mut Out<'_>,
) -> Flow {
    let mut buf = Vec::new();
    match agg(ctx, key, &cmd, &mut buf) {
        Ok(r) => reply(r, &buf, out),
        Err(e) => agg_error(&e, name, out),
    }
    Flow::Next
}

/// Runs one command per element, summing the integer replies (`last`: replying the last
/// one instead, as LPUSH's length).
fn many<'a, A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    cmds: impl Iterator<Item = AggCmd<'a>>,
    name: &str,
    last: bool,
    out: &mut Out<'_>,
) -> Option<i64> {
    let mut buf = Vec::new();
    let mut sum = 0;
    for c in cmds {
        match agg(ctx, key, &c, &mut buf) {
            Ok(Reply::Int(n)) if last => sum = n,
            Ok(Reply::Int(n)) => sum += n,
            Ok(_) => {}
            Err(e) => {
                agg_error(&e, name, out);
                return None;
            }
        }
    }
    Some(sum)
}

/// The element count of a key of type `t` (0 if missing), WRONGTYPE for another type.
fn card<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    t: AggType,
    out: &mut Out<'_>,
) -> Flow {
    let now = ctx.now();
    match ctx.store.agg_type_of(key, now) {
        Some(x) if x == t => {
            let n = ctx.store.agg_shape_of(key, now).map_or(0, |s| s.1);
            out.int(n as i64);
        }
        Some(_) => cmd_error(&CmdError::WrongType, "", out),
        None if ctx.store.exists(key, now) => cmd_error(&CmdError::WrongType, "", out),
        None => out.int(0),
    }
    Flow::Next
}

fn pairs_ok(args: &[&[u8]], name: &str, out: &mut Out<'_>) -> bool {
    if args.len() % 2 != 0 {
        out.error(&format!("wrong number of arguments for '{name}' command"));
        return false;
    }
    true
}

fn hset_pairs<'a>(args: &'a [&'a [u8]]) -> impl Iterator<Item = AggCmd<'a>> {
    args[2..].chunks(2).map(|p| AggCmd::HSet {
        field: p[0],
        value: p[1],
    })
}

pub fn hset<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    if pairs_ok(args, "hset", out) {
        if let Some(n) = many(ctx, args[1], hset_pairs(args), "hset", false, out) {
            out.int(n);
        }
    }
    Flow::Next
}

pub fn hmset<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    if pairs_ok(args, "hmset", out)
        && many(ctx, args[1], hset_pairs(args), "hmset", false, out).is_some()
    {
        out.ok();
    }
    Flow::Next
}

pub fn hget<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    one(ctx, args[1], AggCmd::HGet { field: args[2] }, "hget", out)
}

pub fn hmget<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let mut bufs = Vec::with_capacity(args.len() - 2);
    for f in &args[2..] {
        let mut buf = Vec::new();
        match agg(ctx, args[1], &AggCmd::HGet { field: f }, &mut buf) {
            Ok(Reply::Bulk) => bufs.push(Some(buf)),
            Ok(_) => bufs.push(None),
            Err(e) => {
                agg_error(&e, "hmget", out);
                return Flow::Next;
            }
        }
    }
    out.array(bufs.len());
    for b in bufs {
        match b {
            Some(b) => out.bulk(&b),
            None => out.null(),
        }
    }
    Flow::Next
}

pub fn hdel<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let cmds = args[2..].iter().map(|f| AggCmd::HDel { field: f });
    if let Some(n) = many(ctx, args[1], cmds, "hdel", false, out) {
        out.int(n);
    }
    Flow::Next
}

/// HGETALL: a map in RESP3, fields and values alternating in RESP2.
pub fn hgetall<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let mut buf = Vec::new();
    match agg(ctx, args[1], &AggCmd::HGetAll, &mut buf) {
        Ok(_) => {
            let elems = split_elems(&buf);
            out.map(elems.len() / 2);
            for e in elems {
                out.bulk(e);
            }
        }
        Err(e) => agg_error(&e, "hgetall", out),
    }
    Flow::Next
}

pub fn hlen<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    card(ctx, args[1], AggType::Hash, out)
}

pub fn hexists<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let mut buf = Vec::new();
    match agg(ctx, args[1], &AggCmd::HGet { field: args[2] }, &mut buf) {
        Ok(r) => out.int(i64::from(r == Reply::Bulk)),
        Err(e) => agg_error(&e, "hexists", out),
    }
    Flow::Next
}

pub fn hincrby<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let Some(delta) = int_arg(args[3], out) else {
        return Flow::Next;
    };
    one(
        ctx,
        args[1],
        AggCmd::HIncrBy {
            field: args[2],
            delta,
        },
        "hincrby",
        out,
    )
}

pub fn sadd<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let cmds = args[2..].iter().map(|m| AggCmd::SAdd { member: m });
    if let Some(n) = many(ctx, args[1], cmds, "sadd", false, out) {
        out.int(n);
    }
    Flow::Next
}

pub fn srem<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let cmds = args[2..].iter().map(|m| AggCmd::SRem { member: m });
    if let Some(n) = many(ctx, args[1], cmds, "srem", false, out) {
        out.int(n);
    }
    Flow::Next
}

pub fn sismember<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    one(
        ctx,
        args[1],
        AggCmd::SIsMember { member: args[2] },
        "sismember",
        out,
    )
}

pub fn scard<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    card(ctx, args[1], AggType::Set, out)
}

/// A pop count argument (`value is out of range, must be positive` below 0).
fn count_arg(b: &[u8], out: &mut Out<'_>) -> Option<usize> {
    let n = int_arg(b, out)?;
    if n < 0 {
        out.error("value is out of range, must be positive");
        return None;
    }
    Some(n as usize)
}

/// Pops up to `n` with `cmd`, collecting the bulk replies.
fn pop_n<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    cmd: AggCmd<'_>,
    n: usize,
    name: &str,
    out: &mut Out<'_>,
) -> Option<Vec<Vec<u8>>> {
    let mut got = Vec::new();
    let mut buf = Vec::new();
    while got.len() < n {
        match agg(ctx, key, &cmd, &mut buf) {
            Ok(Reply::Bulk) => got.push(buf.clone()),
            Ok(_) => break,
            Err(e) => {
                agg_error(&e, name, out);
                return None;
            }
        }
    }
    Some(got)
}

/// SPOP key [count]: with a count, a set of up to `count` members.
pub fn spop<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    match args.len() {
        2 => one(ctx, args[1], AggCmd::SPop, "spop", out),
        3 => {
            let Some(n) = count_arg(args[2], out) else {
                return Flow::Next;
            };
            if let Some(got) = pop_n(ctx, args[1], AggCmd::SPop, n, "spop", out) {
                out.set_len(got.len());
                for g in got {
                    out.bulk(&g);
                }
            }
            Flow::Next
        }
        _ => {
            out.error("syntax error");
            Flow::Next
        }
    }
}

pub fn lpush<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let cmds = args[2..].iter().map(|e| AggCmd::LPush { elem: e });
    if let Some(n) = many(ctx, args[1], cmds, "lpush", true, out) {
        out.int(n);
    }
    Flow::Next
}

pub fn rpush<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let cmds = args[2..].iter().map(|e| AggCmd::RPush { elem: e });
    if let Some(n) = many(ctx, args[1], cmds, "rpush", true, out) {
        out.int(n);
    }
    Flow::Next
}

/// LPOP/RPOP key [count]: with a count, an array (a null array for a missing key).
fn list_pop<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    cmd: AggCmd<'_>,
    name: &str,
    out: &mut Out<'_>,
) -> Flow {
    if args.len() > 3 {
        out.error(&format!("wrong number of arguments for '{name}' command"));
        return Flow::Next;
    }
    let Some(c) = args.get(2) else {
        return one(ctx, args[1], cmd, name, out);
    };
    let Some(n) = count_arg(c, out) else {
        return Flow::Next;
    };
    let now = ctx.now();
    match ctx.store.agg_type_of(args[1], now) {
        Some(AggType::List) => {}
        Some(_) => {
            cmd_error(&CmdError::WrongType, name, out);
            return Flow::Next;
        }
        None if ctx.store.exists(args[1], now) => {
            cmd_error(&CmdError::WrongType, name, out);
            return Flow::Next;
        }
        None => {
            out.null_array();
            return Flow::Next;
        }
    }
    if let Some(got) = pop_n(ctx, args[1], cmd, n, name, out) {
        out.array(got.len());
        for g in got {
            out.bulk(&g);
        }
    }
    Flow::Next
}

pub fn lpop<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    list_pop(ctx, args, AggCmd::LPop, "lpop", out)
}

pub fn rpop<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    list_pop(ctx, args, AggCmd::RPop, "rpop", out)
}

pub fn llen<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    card(ctx, args[1], AggType::List, out)
}

fn range_args(args: &[&[u8]], out: &mut Out<'_>) -> Option<(i64, i64)> {
    Some((int_arg(args[2], out)?, int_arg(args[3], out)?))
}

pub fn lrange<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    match range_args(args, out) {
        Some((start, stop)) => one(ctx, args[1], AggCmd::LRange { start, stop }, "lrange", out),
        None => Flow::Next,
    }
}

pub fn ltrim<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    match range_args(args, out) {
        Some((start, stop)) => one(ctx, args[1], AggCmd::LTrim { start, stop }, "ltrim", out),
        None => Flow::Next,
    }
}

/// A score as Redis reads one (`strtod` whole, `inf`/`+inf`/`-inf`, no NaN), or `-ERR
/// value is not a valid float`.
pub fn score_arg(b: &[u8], out: &mut Out<'_>) -> Option<f64> {
    let v = std::str::from_utf8(b)
        .ok()
        .filter(|s| !s.is_empty() && !s.starts_with(char::is_whitespace))
        .and_then(|s| match s.to_ascii_lowercase().as_str() {
            "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            l if l.contains("inf") || l.contains("nan") => None,
            _ => s.parse::<f64>().ok(),
        });
    if v.is_none() {
        out.error("value is not a valid float");
    }
    v
}

/// The score of a member, if it is in the sorted set.
fn score_of<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    member: &[u8],
) -> Result<Option<f64>, CmdError> {
    let mut buf = Vec::new();
    match agg(ctx, key, &AggCmd::ZScore { member }, &mut buf)? {
        Reply::Score(s) => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// ZADD key [NX|XX] [CH] [INCR] score member [score member ...].
pub fn zadd<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let (mut nx, mut xx, mut ch, mut incr) = (false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let a = args[i];
        match () {
            () if a.eq_ignore_ascii_case(b"nx") => nx = true,
            () if a.eq_ignore_ascii_case(b"xx") => xx = true,
            () if a.eq_ignore_ascii_case(b"ch") => ch = true,
            () if a.eq_ignore_ascii_case(b"incr") => incr = true,
            () => break,
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() || rest.len() % 2 != 0 {
        out.error("syntax error");
        return Flow::Next;
    }
    if nx && xx {
        out.error("XX and NX options at the same time are not compatible");
        return Flow::Next;
    }
    if incr && rest.len() > 2 {
        out.error("INCR option supports a single increment-element pair");
        return Flow::Next;
    }
    let mut scores = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        let Some(s) = score_arg(p[0], out) else {
            return Flow::Next;
        };
        scores.push((s, p[1]));
    }
    let key = args[1];
    let mut count = 0;
    for (score, member) in scores {
        let old = if nx || xx || ch || incr {
            match score_of(ctx, key, member) {
                Ok(o) => o,
                Err(e) => {
                    agg_error(&e, "zadd", out);
                    return Flow::Next;
                }
            }
        } else {
            None
        };
        if (nx && old.is_some()) || (xx && old.is_none()) {
            if incr {
                out.null();
                return Flow::Next;
            }
            continue;
        }
        let cmd = if incr {
            AggCmd::ZIncrBy {
                member,
                delta: score,
            }
        } else {
            AggCmd::ZAdd { member, score }
        };
        let mut buf = Vec::new();
        match agg(ctx, key, &cmd, &mut buf) {
            Ok(Reply::Score(s)) => {
                out.double(s);
                return Flow::Next;
            }
            Ok(Reply::Int(n)) => {
                count += if ch {
                    i64::from(n == 1 || old != Some(score))
                } else {
                    n
                }
            }
            Ok(_) => {}
            Err(e) => {
                agg_error(&e, "zadd", out);
                return Flow::Next;
            }
        }
    }
    out.int(count);
    Flow::Next
}

pub fn zrem<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let cmds = args[2..].iter().map(|m| AggCmd::ZRem { member: m });
    if let Some(n) = many(ctx, args[1], cmds, "zrem", false, out) {
        out.int(n);
    }
    Flow::Next
}

pub fn zscore<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    one(
        ctx,
        args[1],
        AggCmd::ZScore { member: args[2] },
        "zscore",
        out,
    )
}

pub fn zincrby<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let Some(delta) = score_arg(args[2], out) else {
        return Flow::Next;
    };
    one(
        ctx,
        args[1],
        AggCmd::ZIncrBy {
            member: args[3],
            delta,
        },
        "zincrby",
        out,
    )
}

pub fn zcard<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    card(ctx, args[1], AggType::Zset, out)
}

/// Members with their scores: RESP2 alternating (scores as `%.17g` bulk strings), RESP3 an
/// array of `[member, double]` pairs (`flat`: alternating in RESP3 too, as ZPOPMIN without a
/// count replies).
fn with_scores(pairs: &[(Vec<u8>, f64)], flat: bool, out: &mut Out<'_>) {
    let nested = out.resp3 && !flat;
    out.array(if nested { pairs.len() } else { 2 * pairs.len() });
    for (m, s) in pairs {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
}

/// ZRANGE key start stop [WITHSCORES] (ranks only: BYSCORE, BYLEX, REV and LIMIT are not
/// served).
pub fn zrange<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let mut scores = false;
    for a in &args[4..] {
        if a.eq_ignore_ascii_case(b"withscores") {
            scores = true;
        } else {
            out.error("syntax error");
            return Flow::Next;
        }
    }
    let Some((start, stop)) = range_args(args, out) else {
        return Flow::Next;
    };
    if !scores {
        return one(ctx, args[1], AggCmd::ZRange { start, stop }, "zrange", out);
    }
    let mut buf = Vec::new();
    if let Err(e) = agg(ctx, args[1], &AggCmd::ZRange { start, stop }, &mut buf) {
        agg_error(&e, "zrange", out);
        return Flow::Next;
    }
    let members: Vec<Vec<u8>> = split_elems(&buf).into_iter().map(<[u8]>::to_vec).collect();
    let mut pairs = Vec::with_capacity(members.len());
    for m in members {
        let s = score_of(ctx, args[1], &m).ok().flatten().unwrap_or(0.0);
        pairs.push((m, s));
    }
    with_scores(&pairs, false, out);
    Flow::Next
}

/// ZPOPMIN key [count].
pub fn zpopmin<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    if args.len() > 3 {
        out.error("syntax error");
        return Flow::Next;
    }
    let n = match args.get(2) {
        None => 1,
        Some(c) => match count_arg(c, out) {
            Some(n) => n,
            None => return Flow::Next,
        },
    };
    let mut pairs = Vec::new();
    let mut buf = Vec::new();
    while pairs.len() < n {
        match agg(ctx, args[1], &AggCmd::ZPopMin, &mut buf) {
            Ok(Reply::Array(2)) => {
                let e = split_elems(&buf);
                let s = std::str::from_utf8(e[1])
                    .ok()
                    .and_then(|t| match t {
                        "inf" => Some(f64::INFINITY),
                        "-inf" => Some(f64::NEG_INFINITY),
                        t => t.parse().ok(),
                    })
                    .unwrap_or(0.0);
                pairs.push((e[0].to_vec(), s));
            }
            Ok(_) => break,
            Err(e) => {
                agg_error(&e, "zpopmin", out);
                return Flow::Next;
            }
        }
    }
    with_scores(&pairs, args.len() == 2, out);
    Flow::Next
}
