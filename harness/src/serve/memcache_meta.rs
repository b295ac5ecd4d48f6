//! The meta commands (mg, ms, md, ma, mn, me), as memcached 1.6.18's `proto_text.c`
//! (`process_mget_command`, `process_mset_command`, `process_mdelete_command`,
//! `process_marithmetic_command`, `_meta_flag_preparse`) answers them.
//!
//! Flags: `v k f s t c q O T N R h l u I F C M J D` (the base64 key flag `b` is refused as an
//! invalid flag). `E` (explicit CAS) arrived after 1.6.18, so it is an invalid flag here, as
//! there. Return codes: `VA`, `HD`, `EN`, `NF`, `NS`, `EX`, `MN`; with `q`, the nominal reply
//! (`EN` of mg, `HD` of ms/md/ma) is left out.

use fraglab_allocators::Allocator;
use fraglab_engine::{CmdError, Layout, SetOptions, Ttl};

use super::{
    add_delta, item_fits, line, parse_i32, parse_u32, parse_u64, retime, store, Ctx, Exp, Memcache,
    Op, Outcome, Step, KEY_MAX,
};

/// memcached's `MFLAG_MAX_OPT_LENGTH`.
const MAX_OPT: usize = 20;
/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`.
const MAX_OPAQUE: usize = 32;

/// `struct _meta_flags`.
#[derive(Debug, Default)]
struct Flags {
    vivify: bool,
    value: bool,
    set_stale: bool,
    no_reply: bool,
    no_update: bool,
    has_cas: bool,
    new_ttl: bool,
    mode: u8,
    exptime: Option<Exp>,
    autoviv: Exp,
    recache: Option<Exp>,
    client_flags: u32,
    req_cas: u64,
    delta: u64,
    initial: u64,
}

/// `_meta_flag_preparse`: the flags from `toks[start..]`, or the error line.
fn preparse(toks: &[&[u8]], start: usize) -> Result<Flags, &'static str> {
    let mut of = Flags {
        delta: 1,
        ..Flags::default()
    };
    let mut seen = [false; 127];
    let mut err: Option<&'static str> = None;
    for t in &toks[start..] {
        let o = t[0];
        if o >= 127 || seen[o as usize] {
            return Err("CLIENT_ERROR duplicate flag");
        }
        seen[o as usize] = true;
        let arg = &t[1..];
        match o {
            b'N' | b'T' | b'R' => match parse_i32(arg) {
                None => err = Some("CLIENT_ERROR bad token in command line format"),
                Some(e) => {
                    let e = Exp::from_exptime(e);
                    match o {
                        b'N' => {
                            of.vivify = true;
                            of.autoviv = e;
                        }
                        b'T' => {
                            of.exptime = Some(e);
                            of.new_ttl = true;
                        }
                        _ => of.recache = Some(e),
                    }
                }
            },
            b'l' | b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' => {}
            b'v' => of.value = true,
            b'u' => of.no_update = true,
            b'q' => of.no_reply = true,
            b'F' => match parse_u32(arg) {
                Some(f) => of.client_flags = f,
                None => err = Some("CLIENT_ERROR bad command line format"),
            },
            b'C' => match parse_u64(arg) {
                Some(c) => {
                    of.req_cas = c;
                    of.has_cas = true;
                }
                None => err = Some("CLIENT_ERROR bad token in command line format"),
            },
            b'M' => {
                if t.len() != 2 {
                    err = Some("CLIENT_ERROR incorrect length for M token");
                } else {
                    of.mode = t[1];
                }
            }
            b'J' => match parse_u64(arg) {
                Some(v) => of.initial = v,
                None => err = Some("CLIENT_ERROR invalid numeric initial value"),
            },
            b'D' => match parse_u64(arg) {
                Some(v) => of.delta = v,
                None => err = Some("CLIENT_ERROR invalid numeric delta value"),
            },
            b'I' => of.set_stale = true,
            _ => return Err("CLIENT_ERROR invalid flag"),
        }
    }
    match err {
        Some(e) => Err(e),
        None => Ok(of),
    }
}

/// Appends the `O` and `k` flags (every meta reply echoes them); `Err` for a long opaque.
fn echo(toks: &[&[u8]], start: usize, key: &[u8], p: &mut Vec<u8>) -> Result<(), ()> {
    for t in &toks[start..] {
        match t[0] {
            b'O' => {
                if t.len() > MAX_OPAQUE {
                    return Err(());
                }
                p.push(b' ');
                p.extend_from_slice(t);
            }
            b'k' => {
                p.extend_from_slice(b" k");
                p.extend_from_slice(key);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A meta command (the first token is two bytes starting with `m`).
pub(super) fn command<A: Allocator, L: Layout>(
    conn: &mut Memcache,
    ctx: &mut Ctx<A, L>,
    toks: &[&[u8]],
    after: &[u8],
    now: u64,
    out: &mut Vec<u8>,
) -> Step {
    let n = toks.len() + 1;
    ctx.memcache.counters.cmd_meta += 1;
    let sub = toks[0][1];
    if sub == b'n' {
        line(out, false, b"MN");
        return Step::Done(0);
    }
    if !matches!(sub, b'g' | b's' | b'd' | b'a' | b'e') {
        line(out, false, b"ERROR");
        return Step::Done(0);
    }
    if n < 3 {
        line(
            out,
            false,
            if sub == b'e' {
                b"CLIENT_ERROR bad command line format"
            } else {
                b"ERROR"
            },
        );
        return Step::Done(0);
    }
    if toks[1].len() > KEY_MAX {
        line(out, false, b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    }
    match sub {
        b's' => return mset(ctx, toks, after, now, out),
        b'e' => super::stats::me(conn, ctx, toks[1], now, out),
        _ if n > MAX_OPT => {
            let e: &[u8] = if sub == b'g' {
                b"CLIENT_ERROR options flags are too long"
            } else {
                b"CLIENT_ERROR options flags too long"
            };
            line(out, false, e);
        }
        b'g' => mget(conn, ctx, toks, now, out),
        b'd' => mdelete(ctx, toks, now, out),
        _ => marith(ctx, toks, now, out),
    }
    Step::Done(0)
}

/// `mg`.
fn mget<A: Allocator, L: Layout>(
    conn: &mut Memcache,
    ctx: &mut Ctx<A, L>,
    toks: &[&[u8]],
    now: u64,
    out: &mut Vec<u8>,
) {
    let of = match preparse(toks, 2) {
        Ok(f) => f,
        Err(e) => return line(out, false, e.as_bytes()),
    };
    let key = toks[1];
    conn.buf.clear();
    ctx.memcache.counters.cmd_get += 1;
    let mut found = ctx.store.get_into(key, now, &mut conn.buf);
    let mut created = false;
    if found.is_none() && of.vivify {
        ctx.memcache.forget(key);
        let ttl = match of.autoviv {
            Exp::Expired => Some(1),
            e => e.ttl(),
        };
        if ctx
            .store
            .set(key, b"", SetOptions { ttl, flags: 0 }, now)
            .is_ok()
        {
            ctx.memcache.stored(key, now);
            created = true;
            found = Some(0);
        }
    }
    let mut p = Vec::with_capacity(64);
    let Some(flags) = found else {
        ctx.memcache.counters.get_misses += 1;
        ctx.memcache.forget(key);
        p.extend_from_slice(b"EN");
        if echo(toks, 2, key, &mut p).is_err() {
            return line(out, false, b"CLIENT_ERROR opaque token too long");
        }
        return line(out, of.no_reply, &p);
    };
    ctx.memcache.counters.get_hits += 1;
    let before = *ctx.memcache.entry(key, now);
    let mut won = false;
    if of.value {
        p.extend_from_slice(format!("VA {}", conn.buf.len()).as_bytes());
    } else {
        p.extend_from_slice(b"HD");
    }
    for t in &toks[2..] {
        match t[0] {
            b'T' => {
                if let Some(e) = of.exptime {
                    retime(ctx, key, e, now);
                }
            }
            b'N' => won |= created,
            b'R' => {
                if let (Some(Exp::In(r)), Ttl::Seconds(left)) =
                    (of.recache, ctx.store.ttl(key, now))
                {
                    if !before.token_sent && !created && (left as i64) < r {
                        won = true;
                    }
                }
            }
            b's' => p.extend_from_slice(format!(" s{}", conn.buf.len()).as_bytes()),
            b't' => match ctx.store.ttl(key, now) {
                Ttl::Seconds(s) => p.extend_from_slice(format!(" t{s}").as_bytes()),
                _ => p.extend_from_slice(b" t-1"),
            },
            b'c' => p.extend_from_slice(format!(" c{}", before.cas).as_bytes()),
            b'f' => p.extend_from_slice(format!(" f{flags}").as_bytes()),
            b'l' => {
                p.extend_from_slice(format!(" l{}", now.saturating_sub(before.last)).as_bytes())
            }
            b'h' => p.extend_from_slice(if before.fetched { b" h1" } else { b" h0" }),
            b'O' => {
                if t.len() > MAX_OPAQUE {
                    return line(out, false, b"CLIENT_ERROR opaque token too long");
                }
                p.push(b' ');
                p.extend_from_slice(t);
            }
            b'k' => {
                p.extend_from_slice(b" k");
                p.extend_from_slice(key);
            }
            _ => {}
        }
    }
    if before.token_sent {
        p.extend_from_slice(b" Z");
    }
    if before.stale {
        p.extend_from_slice(b" X");
        won |= !before.token_sent;
    }
    if ctx.store.exists(key, now) {
        let e = ctx.memcache.entry(key, now);
        if won {
            e.token_sent = true;
        }
        if !of.no_update {
            e.fetched = true;
            e.last = now;
        }
    }
    if won {
        p.extend_from_slice(b" W");
    }
    p.extend_from_slice(b"\r\n");
    out.extend_from_slice(&p);
    if of.value {
        out.extend_from_slice(&conn.buf);
        out.extend_from_slice(b"\r\n");
    }
}

/// `ms <key> <datalen> <flags>*` and its data block.
fn mset<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    toks: &[&[u8]],
    after: &[u8],
    now: u64,
    out: &mut Vec<u8>,
) -> Step {
    let n = toks.len() + 1;
    if n == 3 {
        line(out, false, b"CLIENT_ERROR bad command line format");
        return Step::Done(0);
    }
    if n > MAX_OPT {
        line(out, false, b"CLIENT_ERROR options flags too long");
        return Step::Done(0);
    }
    let vlen = match parse_i32(toks[2]) {
        Some(v) if (0..=i64::from(i32::MAX) - 2).contains(&v) => v as usize,
        _ => {
            line(out, false, b"CLIENT_ERROR bad command line format");
            return Step::Done(0);
        }
    };
    let key = toks[1];
    let fail = |out: &mut Vec<u8>, e: &[u8]| {
        line(out, false, e);
        Step::Swallow(0, vlen + 2)
    };
    let of = match preparse(toks, 3) {
        Ok(f) => f,
        Err(e) => return fail(out, e.as_bytes()),
    };
    if toks[3..]
        .iter()
        .any(|t| t[0] == b'O' && t.len() > MAX_OPAQUE)
    {
        return fail(out, b"CLIENT_ERROR opaque token too long");
    }
    let mut op = match of.mode {
        0 | b'S' => Op::Set,
        b'E' => Op::Add,
        b'A' => Op::Append,
        b'P' => Op::Prepend,
        b'R' => Op::Replace,
        _ => return fail(out, b"CLIENT_ERROR invalid mode for ms M token"),
    };
    if of.has_cas && matches!(op, Op::Set | Op::Replace) {
        op = Op::Cas;
    }
    if !item_fits::<L>(key.len(), vlen, of.client_flags) {
        ctx.memcache.counters.store_too_large += 1;
        if ctx.store.delete(key, now) {
            ctx.memcache.forget(key);
        }
        return fail(out, b"SERVER_ERROR object too large for cache");
    }
    if after.len() < vlen + 2 {
        return Step::More;
    }
    ctx.memcache.counters.cmd_set += 1;
    if &after[vlen..vlen + 2] != b"\r\n" {
        line(out, false, b"CLIENT_ERROR bad data chunk");
        return Step::Done(vlen + 2);
    }
    let data = &after[..vlen];
    let exp = of.exptime.unwrap_or(Exp::Never);
    let req_cas = if op == Op::Add { 0 } else { of.req_cas };
    let live_cas = ctx
        .store
        .exists(key, now)
        .then(|| ctx.memcache.entry(key, now).cas);
    let r = match live_cas {
        // `I` with a CAS older than the item's: the value is stored but marked stale, its
        // TTL kept (`do_store_item`'s `set_stale`).
        Some(cur) if of.set_stale && op == Op::Cas && req_cas < cur => {
            let keep = match ctx.store.ttl(key, now) {
                Ttl::Seconds(s) => Exp::In(s.max(1) as i64),
                _ => Exp::Never,
            };
            let sent = ctx.memcache.entry(key, now).token_sent;
            let r = store(ctx, key, data, of.client_flags, keep, Op::Set, 0, now);
            if r == Outcome::Stored {
                let e = ctx.memcache.entry(key, now);
                e.stale = true;
                e.token_sent = sent;
            }
            r
        }
        _ => store(ctx, key, data, of.client_flags, exp, op, req_cas, now),
    };
    let mut p = Vec::with_capacity(32);
    p.extend_from_slice(match r {
        Outcome::Stored => b"HD",
        Outcome::Exists => b"EX",
        Outcome::NotFound => b"NF",
        Outcome::NotStored => b"NS",
        Outcome::TooLarge => {
            line(out, false, b"SERVER_ERROR object too large for cache");
            return Step::Done(vlen + 2);
        }
        Outcome::NoMemory => {
            line(out, false, b"SERVER_ERROR out of memory storing object");
            return Step::Done(vlen + 2);
        }
    });
    let cas = if r == Outcome::Stored && ctx.store.exists(key, now) {
        ctx.memcache.entry(key, now).cas
    } else {
        0
    };
    for t in &toks[3..] {
        match t[0] {
            b'O' => {
                p.push(b' ');
                p.extend_from_slice(t);
            }
            b'k' => {
                p.extend_from_slice(b" k");
                p.extend_from_slice(key);
            }
            b'c' => p.extend_from_slice(format!(" c{cas}").as_bytes()),
            _ => {}
        }
    }
    line(out, of.no_reply && r == Outcome::Stored, &p);
    Step::Done(vlen + 2)
}

/// `md`.
fn mdelete<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    toks: &[&[u8]],
    now: u64,
    out: &mut Vec<u8>,
) {
    let Ok(of) = preparse(toks, 2) else {
        return line(out, false, b"CLIENT_ERROR invalid or duplicate flag");
    };
    let key = toks[1];
    let mut flags = Vec::new();
    if echo(toks, 2, key, &mut flags).is_err() {
        return line(out, false, b"CLIENT_ERROR opaque token too long");
    }
    let mut p = Vec::with_capacity(16 + flags.len());
    let mut quiet = false;
    if ctx.store.exists(key, now) {
        if of.has_cas && ctx.memcache.entry(key, now).cas != of.req_cas {
            p.extend_from_slice(b"EX");
        } else if of.set_stale {
            if let Some(e) = of.exptime.filter(|_| of.new_ttl) {
                retime(ctx, key, e, now);
            }
            if ctx.store.exists(key, now) {
                ctx.memcache.rewritten(key, now);
                let e = ctx.memcache.entry(key, now);
                e.stale = true;
                e.token_sent = false;
            }
            quiet = of.no_reply;
            p.extend_from_slice(b"HD");
        } else {
            ctx.store.delete(key, now);
            ctx.memcache.forget(key);
            ctx.memcache.counters.delete_hits += 1;
            quiet = of.no_reply;
            p.extend_from_slice(b"HD");
        }
    } else {
        ctx.memcache.forget(key);
        ctx.memcache.counters.delete_misses += 1;
        p.extend_from_slice(b"NF");
    }
    p.extend_from_slice(&flags);
    line(out, quiet, &p);
}

/// `ma`.
fn marith<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    toks: &[&[u8]],
    now: u64,
    out: &mut Vec<u8>,
) {
    let Ok(of) = preparse(toks, 2) else {
        return line(out, false, b"CLIENT_ERROR invalid or duplicate flag");
    };
    let key = toks[1];
    let incr = match of.mode {
        0 | b'I' | b'+' => true,
        b'D' | b'-' => false,
        _ => return line(out, false, b"CLIENT_ERROR invalid mode for ma M token"),
    };
    let mut p = Vec::with_capacity(32);
    let live = ctx.store.exists(key, now);
    let mut created = false;
    let mut value = None;
    if live && of.has_cas && of.req_cas != 0 && ctx.memcache.entry(key, now).cas != of.req_cas {
        p.extend_from_slice(b"EX");
    } else {
        match add_delta(ctx, key, incr, of.delta, now) {
            Ok(Some(v)) => value = Some(v),
            Ok(None) if of.vivify => {
                let text = of.initial.to_string();
                match ctx
                    .store
                    .add(key, text.as_bytes(), SetOptions::default(), now)
                {
                    Ok(true) => {
                        ctx.memcache.stored(key, now);
                        created = true;
                        value = Some(of.initial);
                    }
                    Ok(false) => p.extend_from_slice(b"NS"),
                    Err(_) => {
                        return line(
                            out,
                            false,
                            b"SERVER_ERROR Out of memory allocating new item",
                        )
                    }
                }
            }
            Ok(None) => p.extend_from_slice(b"NF"),
            Err(CmdError::OutOfMemory) => return line(out, false, b"SERVER_ERROR out of memory"),
            Err(_) => {
                return line(
                    out,
                    false,
                    b"CLIENT_ERROR cannot increment or decrement non-numeric value",
                )
            }
        }
    }
    let Some(v) = value else {
        if echo(toks, 2, key, &mut p).is_err() {
            return line(out, false, b"CLIENT_ERROR opaque token too long");
        }
        return line(out, false, &p);
    };
    let text = v.to_string();
    if of.value {
        p.extend_from_slice(format!("VA {}", text.len()).as_bytes());
    } else {
        p.extend_from_slice(b"HD");
    }
    for t in &toks[2..] {
        match t[0] {
            b'c' => {
                let cas = ctx.memcache.entry(key, now).cas;
                p.extend_from_slice(format!(" c{cas}").as_bytes());
            }
            b't' => match ctx.store.ttl(key, now) {
                Ttl::Seconds(s) => p.extend_from_slice(format!(" t{s}").as_bytes()),
                _ => p.extend_from_slice(b" t-1"),
            },
            b'T' => {
                if let Some(e) = of.exptime {
                    retime(ctx, key, e, now);
                }
            }
            b'N' if created => retime(ctx, key, of.autoviv, now),
            b'O' => {
                if t.len() > MAX_OPAQUE {
                    return line(out, false, b"CLIENT_ERROR opaque token too long");
                }
                p.push(b' ');
                p.extend_from_slice(t);
            }
            b'k' => {
                p.extend_from_slice(b" k");
                p.extend_from_slice(key);
            }
            _ => {}
        }
    }
    if of.value {
        p.extend_from_slice(b"\r\n");
        p.extend_from_slice(text.as_bytes());
    }
    line(out, of.no_reply && !created, &p);
}
