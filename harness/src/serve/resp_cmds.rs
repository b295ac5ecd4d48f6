//! RESP string and key commands: GET, SET, SETNX, SETEX, MGET, MSET, INCR/DECR(BY), APPEND,
//! STRLEN; DEL/UNLINK, EXISTS, EXPIRE/PEXPIRE, TTL/PTTL, PERSIST, TYPE, DBSIZE,
//! FLUSHALL/FLUSHDB. Replies and errors as Redis 7.0's `t_string.c`, `db.c` and `expire.c`
//! write them.

use std::time::{SystemTime, UNIX_EPOCH};

use fraglab_allocators::Allocator;
use fraglab_engine::{CmdError, Layout, SetOptions, Ttl};

use super::resp::{cmd_error, int_arg, is, Conn, Flow, Out};
use super::Ctx;

/// Whether a key holds an aggregate (WRONGTYPE for a string command). In the redis layout
/// the store refuses these itself; the blob layouts would read the blob.
fn is_aggregate<A: Allocator, L: Layout>(ctx: &mut Ctx<A, L>, key: &[u8]) -> bool {
    let now = ctx.now();
    ctx.store.agg_type_of(key, now).is_some()
}

/// GET into `buf`: `Ok(true)` on a hit, `Ok(false)` on a miss, WRONGTYPE on an aggregate.
fn get_string<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    buf: &mut Vec<u8>,
) -> Result<bool, CmdError> {
    let now = ctx.now();
    let redis = L::KIND.redis_semantics();
    if !redis && is_aggregate(ctx, key) {
        return Err(CmdError::WrongType);
    }
    match ctx.store.get_into(key, now, buf) {
        Some(_) => Ok(true),
        None if redis && is_aggregate(ctx, key) => Err(CmdError::WrongType),
        None => Ok(false),
    }
}

pub fn get<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let mut buf = Vec::new();
    match get_string(ctx, args[1], &mut buf) {
        Ok(true) => out.bulk(&buf),
        Ok(false) => out.null(),
        Err(e) => cmd_error(&e, "get", out),
    }
    Flow::Next
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL].
pub fn set<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let (mut nx, mut xx, mut get, mut keep) = (false, false, false, false);
    let mut ttl: Option<i64> = None;
    let mut i = 3;
    while i < args.len() {
        let a = args[i];
        let next = args.get(i + 1);
        let timed = ttl.is_some() || keep;
        if is(a, "nx") && !xx {
            nx = true;
        } else if is(a, "xx") && !nx {
            xx = true;
        } else if is(a, "get") {
            get = true;
        } else if is(a, "keepttl") && !timed {
            keep = true;
        } else if let (true, Some(v)) = (
            ["ex", "px", "exat", "pxat"].iter().any(|w| is(a, w)) && !timed,
            next,
        ) {
            let Some(n) = int_arg(v, out) else {
                return Flow::Next;
            };
            let ms = is(a, "px") || is(a, "pxat");
            if n <= 0 || (ms && n > i64::MAX / 1000) {
                out.error("invalid expire time in 'set' command");
                return Flow::Next;
            }
            // Rounded up without overflowing (`n` is at most i64::MAX / 1000 for PX).
            let secs = if ms {
                n / 1000 + i64::from(n % 1000 != 0)
            } else {
                n
            };
            let secs = if is(a, "exat") || is(a, "pxat") {
                secs - unix_now() as i64
            } else {
                secs
            };
            // An absolute time already past: Redis sets and deletes at once; a TTL of 0
            // here would be refused, so one second is the nearest the clock can say.
            ttl = Some(secs.max(1));
            i += 1;
        } else {
            out.error("syntax error");
            return Flow::Next;
        }
        i += 1;
    }
    let key = args[1];
    let now = ctx.now();
    let mut old = Vec::new();
    let had = if get {
        match get_string(ctx, key, &mut old) {
            Ok(h) => h,
            Err(e) => {
                cmd_error(&e, "set", out);
                return Flow::Next;
            }
        }
    } else {
        false
    };
    if keep {
        if let Ttl::Seconds(s) = ctx.store.ttl(key, now) {
            ttl = Some(s.max(1) as i64);
        }
    }
    let opts = SetOptions { ttl, flags: 0 };
    let r = if nx {
        ctx.store.add(key, args[2], opts, now)
    } else if xx {
        ctx.store.replace(key, args[2], opts, now)
    } else {
        ctx.store.set(key, args[2], opts, now).map(|()| true)
    };
    match r {
        Err(e) => cmd_error(&e, "set", out),
        Ok(_) if get && had => out.bulk(&old),
        Ok(_) if get => out.null(),
        Ok(true) => out.ok(),
        Ok(false) => out.null(),
    }
    Flow::Next
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn setnx<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let now = ctx.now();
    match ctx.store.add(args[1], args[2], SetOptions::default(), now) {
        Ok(added) => out.int(i64::from(added)),
        Err(e) => cmd_error(&e, "setnx", out),
    }
    Flow::Next
}

pub fn setex<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let Some(secs) = int_arg(args[2], out) else {
        return Flow::Next;
    };
    if secs <= 0 {
        out.error("invalid expire time in 'setex' command");
        return Flow::Next;
    }
    let now = ctx.now();
    let opts = SetOptions {
        ttl: Some(secs),
        flags: 0,
    };
    match ctx.store.set(args[1], args[3], opts, now) {
        Ok(()) => out.ok(),
        Err(e) => cmd_error(&e, "setex", out),
    }
    Flow::Next
}

pub fn mget<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    out.array(args.len() - 1);
    let mut buf = Vec::new();
    for k in &args[1..] {
        buf.clear();
        match get_string(ctx, k, &mut buf) {
            Ok(true) => out.bulk(&buf),
            _ => out.null(),
        }
    }
    Flow::Next
}

/// MSET: the pairs are set in order; one refused (OOM) stops there with its error.
pub fn mset<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    if args.len() % 2 == 0 {
        out.error("wrong number of arguments for 'mset' command");
        return Flow::Next;
    }
    let now = ctx.now();
    for kv in args[1..].chunks(2) {
        if let Err(e) = ctx.store.set(kv[0], kv[1], SetOptions::default(), now) {
            cmd_error(&e, "mset", out);
            return Flow::Next;
        }
    }
    out.ok();
    Flow::Next
}

fn incr_by<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    delta: i64,
    out: &mut Out<'_>,
) -> Flow {
    let now = ctx.now();
    if !L::KIND.redis_semantics() && is_aggregate(ctx, key) {
        cmd_error(&CmdError::WrongType, "incr", out);
        return Flow::Next;
    }
    match ctx.store.incr(key, delta, now) {
        Ok(Some(v)) => out.int(v as i64),
        // memcached semantics (a blob layout): a missing key is not counted from 0.
        Ok(None) => match ctx.store.set(
            key,
            delta.to_string().as_bytes(),
            SetOptions::default(),
            now,
        ) {
            Ok(()) => out.int(delta),
            Err(e) => cmd_error(&e, "incr", out),
        },
        Err(e) => cmd_error(&e, "incr", out),
    }
    Flow::Next
}

pub fn incr<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    incr_by(ctx, args[1], 1, out)
}

pub fn decr<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    incr_by(ctx, args[1], -1, out)
}

pub fn incrby<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    match int_arg(args[2], out) {
        Some(d) => incr_by(ctx, args[1], d, out),
        None => Flow::Next,
    }
}

pub fn decrby<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    match int_arg(args[2], out) {
        Some(i64::MIN) => {
            out.error("decrement would overflow");
            Flow::Next
        }
        Some(d) => incr_by(ctx, args[1], -d, out),
        None => Flow::Next,
    }
}

pub fn append<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let now = ctx.now();
    let key = args[1];
    if !L::KIND.redis_semantics() && is_aggregate(ctx, key) {
        cmd_error(&CmdError::WrongType, "append", out);
        return Flow::Next;
    }
    let r = match ctx.store.append(key, args[2], now) {
        Ok(true) => Ok(()),
        // memcached semantics: APPEND to a missing key stores nothing; Redis creates it.
        Ok(false) => ctx.store.set(key, args[2], SetOptions::default(), now),
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        cmd_error(&e, "append", out);
        return Flow::Next;
    }
    strlen_reply(ctx, key, out);
    Flow::Next
}

fn strlen_reply<A: Allocator, L: Layout>(ctx: &mut Ctx<A, L>, key: &[u8], out: &mut Out<'_>) {
    let mut buf = Vec::new();
    match get_string(ctx, key, &mut buf) {
        Ok(_) => out.int(buf.len() as i64),
        Err(e) => cmd_error(&e, "strlen", out),
    }
}

pub fn strlen<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    strlen_reply(ctx, args[1], out);
    Flow::Next
}

/// DEL and UNLINK (the engine frees at once either way).
pub fn del<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let now = ctx.now();
    let n = args[1..]
        .iter()
        .filter(|k| ctx.store.delete(k, now))
        .count();
    out.int(n as i64);
    Flow::Next
}

pub fn exists<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let now = ctx.now();
    let n = args[1..]
        .iter()
        .filter(|k| ctx.store.exists(k, now))
        .count();
    out.int(n as i64);
    Flow::Next
}

/// EXPIRE/PEXPIRE key n [NX|XX|GT|LT] (`expireGenericCommand`).
fn expire_generic<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    ms: bool,
    out: &mut Out<'_>,
) -> Flow {
    let name = if ms { "pexpire" } else { "expire" };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if is(a, "gt") {
            gt = true;
        } else if is(a, "lt") {
            lt = true;
        } else {
            let opt = String::from_utf8_lossy(super::resp::cstr(a)).into_owned();
            out.error(&format!("Unsupported option {opt}"));
            return Flow::Next;
        }
    }
    if nx && (xx || gt || lt) {
        out.error("NX and XX, GT or LT options at the same time are not compatible");
        return Flow::Next;
    }
    if gt && lt {
        out.error("GT and LT options at the same time are not compatible");
        return Flow::Next;
    }
    let Some(n) = int_arg(args[2], out) else {
        return Flow::Next;
    };
    if !ms && n > i64::MAX / 1000 {
        out.error(&format!("invalid expire time in '{name}' command"));
        return Flow::Next;
    }
    let secs = if ms {
        if n <= 0 {
            n
        } else {
            // Rounded up without overflowing near i64::MAX.
            n / 1000 + i64::from(n % 1000 != 0)
        }
    } else {
        n
    };
    let now = ctx.now();
    let key = args[1];
    let current = match ctx.store.ttl(key, now) {
        Ttl::Missing => {
            out.int(0);
            return Flow::Next;
        }
        Ttl::Persistent => None,
        Ttl::Seconds(s) => Some(s as i64),
    };
    let refuse = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| secs <= c))
        || (lt && current.is_some_and(|c| secs >= c));
    if refuse {
        out.int(0);
        return Flow::Next;
    }
    match ctx.store.touch(key, Some(secs), now) {
        Ok(t) => out.int(i64::from(t)),
        Err(e) => cmd_error(&e, name, out),
    }
    Flow::Next
}

pub fn expire<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    expire_generic(ctx, args, false, out)
}

pub fn pexpire<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    expire_generic(ctx, args, true, out)
}

fn ttl_reply<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    scale: i64,
    out: &mut Out<'_>,
) {
    let now = ctx.now();
    match ctx.store.ttl(key, now) {
        Ttl::Missing => out.int(-2),
        Ttl::Persistent => out.int(-1),
        Ttl::Seconds(s) => out.int(s as i64 * scale),
    }
}

pub fn ttl<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    ttl_reply(ctx, args[1], 1, out);
    Flow::Next
}

pub fn pttl<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    ttl_reply(ctx, args[1], 1000, out);
    Flow::Next
}

pub fn persist<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let now = ctx.now();
    let key = args[1];
    if !matches!(ctx.store.ttl(key, now), Ttl::Seconds(_)) {
        out.int(0);
        return Flow::Next;
    }
    match ctx.store.touch(key, None, now) {
        Ok(t) => out.int(i64::from(t)),
        Err(e) => cmd_error(&e, "persist", out),
    }
    Flow::Next
}

pub fn type_cmd<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let now = ctx.now();
    match ctx.store.agg_type_of(args[1], now) {
        Some(t) => out.simple(t.name()),
        None if ctx.store.exists(args[1], now) => out.simple("string"),
        None => out.simple("none"),
    }
    Flow::Next
}

pub fn dbsize<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    _: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    out.int(ctx.store.len() as i64);
    Flow::Next
}

/// FLUSHALL / FLUSHDB [ASYNC|SYNC].
pub fn flushall<A: Allocator, L: Layout>(
    _: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    if args.len() > 2
        || args
            .get(1)
            .is_some_and(|a| !is(a, "async") && !is(a, "sync"))
    {
        out.error("syntax error");
        return Flow::Next;
    }
    ctx.store.flush();
    out.ok();
    Flow::Next
}
