//! memcached 1.6.18's text protocol over the model: the classic commands (get/gets/gat/gats,
//! set/add/replace/append/prepend/cas, incr/decr, delete, touch, flush_all, version,
//! verbosity, quit, stats, slabs reassign) and the meta commands (mg, ms, md, ma, mn, me).
//!
//! The replies and error strings are memcached's, as upstream's `proto_text.c` (1.6.18)
//! writes them and `doc/protocol.txt` documents them
//! (<https://github.com/memcached/memcached/blob/1.6.18/proto_text.c>,
//! <https://github.com/memcached/memcached/blob/1.6.18/doc/protocol.txt>):
//!
//! - a line is read up to `\n` (a `\r` before it is dropped); more than 2048 bytes without a
//!   newline closes the connection, unless the line is a `get`/`gets` (a long multiget), as
//!   `try_read_command_ascii` does; a NUL ends the line, as `strlen` does there;
//! - tokens are split on spaces; a wrong token count is `ERROR`, a bad number `CLIENT_ERROR bad
//!   command line format` (or the command's own text: `invalid exptime argument`, `invalid
//!   numeric delta argument`); a key over 250 bytes is `CLIENT_ERROR bad command line format`;
//! - a storage command whose item could never fit (memcached's `item_size_ok`: the item size,
//!   CAS included, over `-I`, 1 MiB) answers `SERVER_ERROR object too large for cache` at
//!   once and swallows the data block as it streams in, as `conn_swallow` does: the length is
//!   checked before anything is buffered or allocated; a data block not ended by `\r\n` is
//!   `CLIENT_ERROR bad data chunk`; a write the store refuses for memory is `SERVER_ERROR out
//!   of memory storing object` (and a SET then drops the old value, as memcached does);
//! - `noreply` silences every reply of the command it ends, errors included (`out_string`);
//! - a request line ending in `HTTP/...` closes the connection silently.
//!
//! CAS uniques, the meta protocol's fetched/stale/win bits and the command counters live in
//! [`Shared`], beside the store: memcached's 8-byte CAS is already counted in the memcached
//! layout's item size, so the table changes nothing in the modeled memory.
//!
//! Time is the store's ([`Ctx::now`]); exptimes follow memcached's `realtime()`: 0 is never,
//! negative is already expired, more than 30 days is a Unix time.

#[path = "memcache_meta.rs"]
mod meta;
#[path = "memcache_ops.rs"]
mod ops;
#[path = "memcache_slabs.rs"]
mod slabs;
#[path = "memcache_state.rs"]
mod state;
#[path = "memcache_stats.rs"]
mod stats;

use std::io::Write as _;

use fraglab_allocators::Allocator;
use fraglab_engine::{CmdError, Layout, LayoutKind, StoreConfig};

pub use state::{Counters, Entry, Shared};

use ops::{add_delta, delete, flush_all, retime, store, touch};
use slabs::slabs_reassign;

use super::{Ctx, Handled, Protocol};

/// memcached's `KEY_MAX_LENGTH`.
pub const KEY_MAX: usize = 250;
/// The longest command line without a newline (`try_read_command_ascii`).
pub const LINE_MAX: usize = 2048;
/// The largest item (memcached's `-I`, `settings.item_size_max`).
pub const ITEM_SIZE_MAX: usize = 1 << 20;
/// The version reported.
pub const VERSION: &str = "1.6.18";
/// memcached's `REALTIME_MAXDELTA`: exptimes above it are Unix times.
const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// One connection's protocol state.
#[derive(Debug, Default)]
pub struct Memcache {
    /// Bytes of a refused data block still to discard (memcached's `conn_swallow`).
    swallow: usize,
    /// Scratch for values read from the store.
    buf: Vec<u8>,
}

/// What running one line did.
enum Step {
    /// Consumed this many bytes (the line, and its data block if any).
    Done(usize),
    /// Consumed the line; discard this many bytes after it.
    Swallow(usize, usize),
    /// The request is not complete yet.
    More,
    /// Close the connection (after the replies so far).
    Close(usize),
}

/// An exptime, resolved as memcached's `realtime()` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exp {
    /// No expiry.
    #[default]
    Never,
    /// Already expired (negative, or a Unix time in the past).
    Expired,
    /// Seconds to live.
    In(i64),
}

impl Exp {
    /// memcached's `realtime(EXPTIME_TO_POSITIVE_TIME(e))`.
    pub fn from_exptime(e: i64) -> Exp {
        if e == 0 {
            Exp::Never
        } else if e < 0 {
            Exp::Expired
        } else if e > REALTIME_MAXDELTA {
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if e <= unix {
                Exp::Expired
            } else {
                Exp::In(e - unix)
            }
        } else {
            Exp::In(e)
        }
    }

    /// The store's TTL (`None`: never; expired is the caller's case).
    fn ttl(self) -> Option<i64> {
        match self {
            Exp::Never => None,
            Exp::Expired => Some(0),
            Exp::In(t) => Some(t),
        }
    }
}

/// memcached's `safe_strtol`/`safe_strtoul`/`safe_strtoull`: optional leading whitespace,
/// a sign, digits, then the end or whitespace. Returns `(negative, magnitude)`.
fn number(tok: &[u8]) -> Option<(bool, u64)> {
    let mut i = tok.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let mut neg = false;
    if let Some(&s) = tok.get(i) {
        if s == b'-' || s == b'+' {
            neg = s == b'-';
            i += 1;
        }
    }
    let start = i;
    let mut v: u64 = 0;
    while let Some(d) = tok.get(i).filter(|b| b.is_ascii_digit()) {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        i += 1;
    }
    if i == start || !tok[i..].first().is_none_or(|b| b.is_ascii_whitespace()) {
        return None;
    }
    Some((neg, v))
}

/// `safe_strtol` into an `int32_t`: `strtol`'s `long`, then C's truncation to 32 bits.
pub(crate) fn parse_i32(tok: &[u8]) -> Option<i64> {
    let (neg, v) = number(tok)?;
    let l: i64 = if neg {
        if v > 1 << 63 {
            return None;
        }
        (v as i64).wrapping_neg()
    } else {
        i64::try_from(v).ok()?
    };
    Some(i64::from(l as i32))
}

/// `safe_strtoull`: `strtoull` (which negates a negative), refused only when the result
/// looks negative as a signed number and the text has a `-`.
pub(crate) fn parse_u64(tok: &[u8]) -> Option<u64> {
    let (neg, v) = number(tok)?;
    let r = if neg { v.wrapping_neg() } else { v };
    if (r as i64) < 0 && neg {
        return None;
    }
    Some(r)
}

/// `safe_strtoul` into a `uint32_t` (C's truncation to 32 bits).
pub(crate) fn parse_u32(tok: &[u8]) -> Option<u32> {
    parse_u64(tok).map(|v| v as u32)
}

/// Whether an item of this key, value length and flags can ever be stored
/// (`item_size_ok`).
pub(crate) fn item_fits<L: Layout>(key: usize, vlen: usize, flags: u32) -> bool {
    let max = StoreConfig::default().item_max.min(ITEM_SIZE_MAX);
    match L::KIND {
        LayoutKind::Memcached => fraglab_engine::layout::memcached::ntotal(key, vlen, flags) <= max,
        _ => vlen <= max,
    }
}

/// Appends a reply line (`out_string`): nothing under noreply.
fn line(out: &mut Vec<u8>, noreply: bool, s: &[u8]) {
    if !noreply {
        out.extend_from_slice(s);
        out.extend_from_slice(b"\r\n");
    }
}

/// The classic storage commands (memcached's `NREAD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

/// The result of a store (`enum store_item_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Stored,
    NotStored,
    Exists,
    NotFound,
    TooLarge,
    NoMemory,
}

impl Protocol for Memcache {
    fn handle<A: Allocator, L: Layout>(
        &mut self,
        ctx: &mut Ctx<A, L>,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Handled {
        let mut pos = 0;
        let written = out.len();
        let mut close = false;
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(input.len() - pos);
                pos += n;
                self.swallow -= n;
                if self.swallow > 0 {
                    break;
                }
            }
            if pos == input.len() {
                break;
            }
            match self.one(ctx, &input[pos..], out) {
                Step::Done(n) => pos += n,
                Step::Swallow(n, s) => {
                    pos += n;
                    self.swallow = s;
                }
                Step::More => break,
                Step::Close(n) => {
                    pos += n;
                    close = true;
                    break;
                }
            }
        }
        ctx.memcache.counters.bytes_read += pos as u64;
        ctx.memcache.counters.bytes_written += (out.len() - written) as u64;
        Handled {
            consumed: if close { input.len() } else { pos },
            close,
        }
    }
}

impl Memcache {
    /// Runs the request at the start of `input`.
    fn one<A: Allocator, L: Layout>(
        &mut self,
        ctx: &mut Ctx<A, L>,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Step {
        let Some(nl) = input.iter().position(|&b| b == b'\n') else {
            if input.len() > LINE_MAX {
                let lead = input.iter().take_while(|&&b| b == b' ').count();
                let rest = &input[lead..];
                if lead > 100 || !(rest.starts_with(b"get ") || rest.starts_with(b"gets ")) {
                    return Step::Close(input.len());
                }
            }
            return Step::More;
        };
        let mut end = nl;
        if end > 1 && input[end - 1] == b'\r' {
            end -= 1;
        }
        let mut text = &input[..end];
        if let Some(z) = text.iter().position(|&b| b == 0) {
            text = &text[..z];
        }
        let toks: Vec<&[u8]> = text
            .split(|&b| b == b' ')
            .filter(|t| !t.is_empty())
            .collect();
        let after = &input[nl + 1..];
        ctx.commands += 1;
        let now = ctx.now();
        if let Some(at) = ctx.memcache.flush_at {
            if now >= at {
                ctx.store.flush();
                ctx.memcache.clear();
                ctx.memcache.flush_at = None;
            }
        }
        let used = nl + 1;
        match self.command(ctx, &toks, after, now, out) {
            Step::Done(n) => Step::Done(used + n),
            Step::Swallow(n, s) => Step::Swallow(used + n, s),
            Step::More => Step::More,
            Step::Close(n) => Step::Close(used + n),
        }
    }

    /// Dispatches a tokenized line, as `process_command_ascii` does. `after` is the input
    /// after the line (a data block); the step's counts are relative to it.
    fn command<A: Allocator, L: Layout>(
        &mut self,
        ctx: &mut Ctx<A, L>,
        toks: &[&[u8]],
        after: &[u8],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Step {
        // memcached's `ntokens` counts the terminal token.
        let n = toks.len() + 1;
        let done = Step::Done(0);
        if n < 2 || toks[0].len() < 2 {
            line(out, false, b"ERROR");
            return done;
        }
        let cmd = toks[0];
        if cmd[0] == b'm' && cmd.len() == 2 {
            return meta::command(self, ctx, toks, after, now, out);
        }
        let want = |ok: bool, out: &mut Vec<u8>| {
            if !ok {
                line(out, false, b"ERROR");
            }
            ok
        };
        match cmd {
            b"get" | b"gets" | b"gat" | b"gats" | b"bget" => {
                if want(n >= 3, out) {
                    let cas = cmd == b"gets" || cmd == b"gats";
                    let touch = cmd.starts_with(b"gat");
                    self.get(ctx, toks, cas, touch, now, out);
                }
                done
            }
            b"set" | b"add" | b"replace" | b"append" | b"prepend" => {
                if !want(n == 6 || n == 7, out) {
                    return done;
                }
                let op = match cmd {
                    b"set" => Op::Set,
                    b"add" => Op::Add,
                    b"replace" => Op::Replace,
                    b"append" => Op::Append,
                    _ => Op::Prepend,
                };
                self.update(ctx, toks, after, op, now, out)
            }
            b"cas" => {
                if !want(n == 7 || n == 8, out) {
                    return done;
                }
                self.update(ctx, toks, after, Op::Cas, now, out)
            }
            b"incr" | b"decr" => {
                if want(n == 4 || n == 5, out) {
                    self.arith(ctx, toks, cmd == b"incr", now, out);
                }
                done
            }
            b"delete" => {
                if want((3..=5).contains(&n), out) {
                    delete(ctx, toks, now, out);
                }
                done
            }
            b"touch" => {
                if want(n == 4 || n == 5, out) {
                    touch(ctx, toks, now, out);
                }
                done
            }
            b"flush_all" => {
                if want((2..=4).contains(&n), out) {
                    flush_all(ctx, toks, now, out);
                }
                done
            }
            b"version" => {
                line(out, false, format!("VERSION {VERSION}").as_bytes());
                done
            }
            b"quit" => Step::Close(0),
            b"verbosity" => {
                if want(n == 3 || n == 4, out) {
                    let noreply = toks[n - 2] == b"noreply";
                    match parse_u32(toks[1]) {
                        Some(v) => {
                            ctx.memcache.verbosity = v.min(2);
                            line(out, noreply, b"OK");
                        }
                        None => line(out, noreply, b"CLIENT_ERROR bad command line format"),
                    }
                }
                done
            }
            b"stats" => {
                stats::stats(ctx, toks, out);
                done
            }
            b"slabs" if n == 5 && toks[1] == b"reassign" => {
                slabs_reassign(ctx, toks[2], toks[3], now, out);
                done
            }
            b"shutdown" => {
                line(out, false, b"ERROR: shutdown not enabled");
                done
            }
            _ => {
                if toks[n - 2].starts_with(b"HTTP/") {
                    return Step::Close(after.len());
                }
                line(out, false, b"ERROR");
                done
            }
        }
    }

    /// get/gets/gat/gats (`process_get_command`).
    fn get<A: Allocator, L: Layout>(
        &mut self,
        ctx: &mut Ctx<A, L>,
        toks: &[&[u8]],
        cas: bool,
        touch: bool,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let mut keys = &toks[1..];
        let mut exp = Exp::Never;
        if touch {
            match parse_i32(toks[1]) {
                Some(e) => exp = Exp::from_exptime(e),
                None => return line(out, false, b"CLIENT_ERROR invalid exptime argument"),
            }
            keys = &toks[2..];
        }
        let start = out.len();
        for &key in keys {
            if key.len() > KEY_MAX {
                out.truncate(start);
                return line(out, false, b"CLIENT_ERROR bad command line format");
            }
            self.buf.clear();
            let found = ctx.store.get_into(key, now, &mut self.buf);
            let c = &mut ctx.memcache.counters;
            if touch {
                c.cmd_touch += 1;
            } else {
                c.cmd_get += 1;
            }
            let Some(flags) = found else {
                if touch {
                    c.touch_misses += 1;
                } else {
                    c.get_misses += 1;
                }
                ctx.memcache.forget(key);
                continue;
            };
            if touch {
                c.touch_hits += 1;
            } else {
                c.get_hits += 1;
            }
            let e = ctx.memcache.entry(key, now);
            e.fetched = true;
            e.last = now;
            let unique = e.cas;
            out.extend_from_slice(b"VALUE ");
            out.extend_from_slice(key);
            // Writing to a Vec cannot fail.
            let _ = if cas {
                write!(out, " {flags} {} {unique}\r\n", self.buf.len())
            } else {
                write!(out, " {flags} {}\r\n", self.buf.len())
            };
            out.extend_from_slice(&self.buf);
            out.extend_from_slice(b"\r\n");
            if touch {
                retime(ctx, key, exp, now);
            }
        }
        out.extend_from_slice(b"END\r\n");
    }

    /// set/add/replace/append/prepend/cas (`process_update_command`, then
    /// `complete_nread_ascii`).
    fn update<A: Allocator, L: Layout>(
        &mut self,
        ctx: &mut Ctx<A, L>,
        toks: &[&[u8]],
        after: &[u8],
        op: Op,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Step {
        let n = toks.len() + 1;
        let noreply = toks[n - 2] == b"noreply";
        let key = toks[1];
        if key.len() > KEY_MAX {
            line(out, noreply, b"CLIENT_ERROR bad command line format");
            return Step::Done(0);
        }
        let (Some(flags), Some(exptime), Some(vlen)) =
            (parse_u32(toks[2]), parse_i32(toks[3]), parse_i32(toks[4]))
        else {
            line(out, noreply, b"CLIENT_ERROR bad command line format");
            return Step::Done(0);
        };
        let mut req_cas = 0;
        if op == Op::Cas {
            match parse_u64(toks[5]) {
                Some(c) => req_cas = c,
                None => {
                    line(out, noreply, b"CLIENT_ERROR bad command line format");
                    return Step::Done(0);
                }
            }
        }
        if vlen < 0 || vlen > i64::from(i32::MAX) - 2 {
            line(out, noreply, b"CLIENT_ERROR bad command line format");
            return Step::Done(0);
        }
        let vlen = vlen as usize;
        if !item_fits::<L>(key.len(), vlen, flags) {
            ctx.memcache.counters.store_too_large += 1;
            line(out, noreply, b"SERVER_ERROR object too large for cache");
            if op == Op::Set && ctx.store.delete(key, now) {
                ctx.memcache.forget(key);
            }
            return Step::Swallow(0, vlen + 2);
        }
        if after.len() < vlen + 2 {
            return Step::More;
        }
        ctx.memcache.counters.cmd_set += 1;
        if &after[vlen..vlen + 2] != b"\r\n" {
            line(out, noreply, b"CLIENT_ERROR bad data chunk");
            return Step::Done(vlen + 2);
        }
        let data = &after[..vlen];
        let exp = Exp::from_exptime(exptime);
        let r = store(ctx, key, data, flags, exp, op, req_cas, now);
        let reply: &[u8] = match r {
            Outcome::Stored => b"STORED",
            Outcome::NotStored => b"NOT_STORED",
            Outcome::Exists => b"EXISTS",
            Outcome::NotFound => b"NOT_FOUND",
            Outcome::TooLarge => b"SERVER_ERROR object too large for cache",
            Outcome::NoMemory => b"SERVER_ERROR out of memory storing object",
        };
        line(out, noreply, reply);
        Step::Done(vlen + 2)
    }

    /// incr/decr (`process_arithmetic_command`).
    fn arith<A: Allocator, L: Layout>(
        &mut self,
        ctx: &mut Ctx<A, L>,
        toks: &[&[u8]],
        incr: bool,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let n = toks.len() + 1;
        let noreply = toks[n - 2] == b"noreply";
        let key = toks[1];
        if key.len() > KEY_MAX {
            return line(out, noreply, b"CLIENT_ERROR bad command line format");
        }
        let Some(delta) = parse_u64(toks[2]) else {
            return line(out, noreply, b"CLIENT_ERROR invalid numeric delta argument");
        };
        match add_delta(ctx, key, incr, delta, now) {
            Ok(Some(v)) => line(out, noreply, v.to_string().as_bytes()),
            Ok(None) => line(out, noreply, b"NOT_FOUND"),
            Err(CmdError::OutOfMemory) => line(out, noreply, b"SERVER_ERROR out of memory"),
            Err(_) => line(
                out,
                noreply,
                b"CLIENT_ERROR cannot increment or decrement non-numeric value",
            ),
        }
    }
}

#[cfg(test)]
#[path = "memcache_tests.rs"]
mod tests;
