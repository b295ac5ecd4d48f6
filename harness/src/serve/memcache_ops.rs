//! The store side of the classic commands: memcached's `do_store_item` (set, add, replace,
//! append, prepend, cas), `do_add_delta` (incr/decr), delete, touch and flush_all, over the
//! model (upstream `proto_text.c`/`items.c`, 1.6.18).

use fraglab_allocators::Allocator;
use fraglab_engine::{CmdError, Layout, SetOptions};

use super::{line, parse_i32, Ctx, Exp, Op, Outcome, KEY_MAX};

/// INCR/DECR by an unsigned 64-bit delta (the store takes `i64` steps: a delta past
/// `i64::MAX` is applied in steps, which wrap or stop at 0 exactly as one step would).
pub(crate) fn add_delta<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    incr: bool,
    delta: u64,
    now: u64,
) -> Result<Option<u64>, CmdError> {
    let mut left = delta;
    let mut result;
    loop {
        let step = left.min(i64::MAX as u64) as i64;
        left -= step as u64;
        let r = ctx.store.incr(key, if incr { step } else { -step }, now)?;
        let c = &mut ctx.memcache.counters;
        match r {
            None => {
                if incr {
                    c.incr_misses += 1;
                } else {
                    c.decr_misses += 1;
                }
                ctx.memcache.forget(key);
                return Ok(None);
            }
            Some(v) => result = v as u64,
        }
        if left == 0 {
            break;
        }
    }
    let c = &mut ctx.memcache.counters;
    if incr {
        c.incr_hits += 1;
    } else {
        c.decr_hits += 1;
    }
    ctx.memcache.rewritten(key, now);
    Ok(Some(result))
}

/// Sets a live key's exptime (TOUCH, GAT, the meta `T` flag).
pub(crate) fn retime<A: Allocator, L: Layout>(ctx: &mut Ctx<A, L>, key: &[u8], exp: Exp, now: u64) {
    let _ = ctx.store.touch(key, exp.ttl(), now);
    if exp == Exp::Expired {
        ctx.memcache.forget(key);
    }
}

/// Runs a store (`do_store_item`): `req_cas` is the CAS to match (0: none; append/prepend
/// check it too, as memcached's meta set does).
#[allow(clippy::too_many_arguments)]
pub(crate) fn store<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    data: &[u8],
    flags: u32,
    exp: Exp,
    op: Op,
    req_cas: u64,
    now: u64,
) -> Outcome {
    // A plain SET needs no lookup first (the common case: one store lookup, not two).
    let live = (op != Op::Set || exp == Exp::Expired) && ctx.store.exists(key, now);
    if !live && op != Op::Set {
        ctx.memcache.forget(key);
    }
    let cas_ok = |ctx: &mut Ctx<A, L>| req_cas == 0 || ctx.memcache.entry(key, now).cas == req_cas;
    let r = match op {
        Op::Add if live => return Outcome::NotStored,
        Op::Replace if !live => return Outcome::NotStored,
        Op::Append | Op::Prepend if !live => return Outcome::NotStored,
        Op::Cas if !live => {
            ctx.memcache.counters.cas_misses += 1;
            return Outcome::NotFound;
        }
        Op::Cas if !cas_ok(ctx) => {
            ctx.memcache.counters.cas_badval += 1;
            return Outcome::Exists;
        }
        Op::Append | Op::Prepend if !cas_ok(ctx) => return Outcome::Exists,
        Op::Append | Op::Prepend => {
            if op == Op::Append {
                ctx.store.append(key, data, now).map(|_| ())
            } else {
                ctx.store.prepend(key, data, now).map(|_| ())
            }
        }
        _ if exp == Exp::Expired => {
            // Stored and expired at once: what is left is no key.
            if live {
                ctx.store.delete(key, now);
                ctx.memcache.forget(key);
            }
            Ok(())
        }
        _ => ctx.store.set(
            key,
            data,
            SetOptions {
                ttl: exp.ttl(),
                flags,
            },
            now,
        ),
    };
    if op == Op::Cas {
        ctx.memcache.counters.cas_hits += 1;
    }
    match r {
        Ok(()) => {
            ctx.memcache.counters.total_items += 1;
            if exp != Exp::Expired || matches!(op, Op::Append | Op::Prepend) {
                ctx.memcache.stored(key, now);
            }
            ctx.memcache.prune(&mut ctx.store, now);
            Outcome::Stored
        }
        Err(CmdError::OutOfMemory) => {
            ctx.memcache.counters.store_no_memory += 1;
            if op == Op::Set && ctx.store.delete(key, now) {
                ctx.memcache.forget(key);
            }
            Outcome::NoMemory
        }
        Err(_) => {
            ctx.memcache.counters.store_too_large += 1;
            Outcome::TooLarge
        }
    }
}

/// delete (`process_delete_command`).
pub(super) fn delete<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    toks: &[&[u8]],
    now: u64,
    out: &mut Vec<u8>,
) {
    let n = toks.len() + 1;
    let mut noreply = false;
    if n > 3 {
        let hold_is_zero = toks[2] == b"0";
        noreply = toks[n - 2] == b"noreply";
        let valid = (n == 4 && (hold_is_zero || noreply)) || (n == 5 && hold_is_zero && noreply);
        if !valid {
            return line(
                out,
                noreply,
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
            );
        }
    }
    let key = toks[1];
    if key.len() > KEY_MAX {
        return line(out, noreply, b"CLIENT_ERROR bad command line format");
    }
    if ctx.store.delete(key, now) {
        ctx.memcache.counters.delete_hits += 1;
        ctx.memcache.forget(key);
        line(out, noreply, b"DELETED");
    } else {
        ctx.memcache.counters.delete_misses += 1;
        ctx.memcache.forget(key);
        line(out, noreply, b"NOT_FOUND");
    }
}

/// touch (`process_touch_command`).
pub(super) fn touch<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    toks: &[&[u8]],
    now: u64,
    out: &mut Vec<u8>,
) {
    let n = toks.len() + 1;
    let noreply = toks[n - 2] == b"noreply";
    let key = toks[1];
    if key.len() > KEY_MAX {
        return line(out, noreply, b"CLIENT_ERROR bad command line format");
    }
    let Some(e) = parse_i32(toks[2]) else {
        return line(out, noreply, b"CLIENT_ERROR invalid exptime argument");
    };
    ctx.memcache.counters.cmd_touch += 1;
    if ctx.store.exists(key, now) {
        ctx.memcache.counters.touch_hits += 1;
        retime(ctx, key, Exp::from_exptime(e), now);
        line(out, noreply, b"TOUCHED");
    } else {
        ctx.memcache.counters.touch_misses += 1;
        ctx.memcache.forget(key);
        line(out, noreply, b"NOT_FOUND");
    }
}

/// flush_all [delay] [noreply] (`process_flush_all_command`).
pub(super) fn flush_all<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    toks: &[&[u8]],
    now: u64,
    out: &mut Vec<u8>,
) {
    let n = toks.len() + 1;
    let noreply = toks[n - 2] == b"noreply";
    ctx.memcache.counters.cmd_flush += 1;
    let mut delay = 0;
    if n != if noreply { 3 } else { 2 } {
        match parse_i32(toks[1]) {
            Some(d) => delay = d,
            None => return line(out, noreply, b"CLIENT_ERROR invalid exptime argument"),
        }
    }
    match Exp::from_exptime(delay) {
        Exp::In(t) if delay > 0 => ctx.memcache.flush_at = Some(now + t as u64),
        _ => {
            ctx.store.flush();
            ctx.memcache.clear();
            ctx.memcache.flush_at = None;
        }
    }
    line(out, noreply, b"OK");
}
