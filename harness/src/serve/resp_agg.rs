//! RESP aggregate commands: hashes, sets and lists (sorted sets: [`super::resp_zset`]), run through the engine's
//! [`AggCmd`]s ([`fraglab_engine::Store::agg`]) and answered as Redis 7.0's `t_hash.c`,
//! `t_set.c`, `t_list.c` and `t_zset.c` answer.
//!
//! A command over many fields or members (HSET with many pairs, SADD with many members,
//! LPUSH with many elements) runs one engine command per element, in order; if the memory
//! limit refuses one midway, those before it stay done (Redis checks `maxmemory` once, before
//! the command). HLEN, SCARD, LLEN and ZCARD read the element count the store keeps for
//! `OBJECT ENCODING`. SMEMBERS answers in the encoding's order (an intset's sorted integers, a
//! dict's buckets), as Redis does.

use fraglab_allocators::Allocator;
use fraglab_engine::agg::{split_elems, AggCmd, AggType, Reply};
use fraglab_engine::{CmdError, Layout};

use super::resp::{cmd_error, int_arg, Conn, Flow, Out};
use super::Ctx;

/// One engine command; the reply's bytes in `buf` (cleared first).
pub(super) fn agg<A: Allocator, L: Layout>(
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
pub(super) fn agg_error(e: &CmdError, cmd: &str, out: &mut Out<'_>) {
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
pub(super) fn one<A: Allocator, L: Layout>(
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
pub(super) fn many<'a, A: Allocator, L: Layout>(
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
pub(super) fn card<A: Allocator, L: Layout>(
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

pub fn smembers<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let mut buf = Vec::new();
    match agg(ctx, args[1], &AggCmd::SMembers, &mut buf) {
        Ok(_) => {
            let elems = split_elems(&buf);
            out.set_len(elems.len());
            for e in elems {
                out.bulk(e);
            }
        }
        Err(e) => agg_error(&e, "smembers", out),
    }
    Flow::Next
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
pub(super) fn count_arg(b: &[u8], out: &mut Out<'_>) -> Option<usize> {
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

pub(super) fn range_args(args: &[&[u8]], out: &mut Out<'_>) -> Option<(i64, i64)> {
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
