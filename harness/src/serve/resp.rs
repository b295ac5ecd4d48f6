//! Redis's protocol, RESP2 and RESP3, in front of the engine: what `redis-cli`,
//! `redis-benchmark` and a Redis client library speak (the RESP spec:
//! <https://redis.io/docs/reference/protocol-spec/>).
//!
//! Requests are framed as Redis 7.0's `networking.c` frames them ([`super::resp_parse`]:
//! multibulk and inline commands, its limits and its protocol errors, after which the client
//! is closed). A command is looked up as `server.c`'s `processCommand` does: an unknown name
//! gets `-ERR unknown command 'x', with args beginning with: 'a' 'b' `, a wrong count of
//! arguments `-ERR wrong number of arguments for 'get' command` (the arities of Redis 7.0's
//! command table), an unknown subcommand `-ERR unknown subcommand 'x'. Try CONFIG HELP.`.
//! Replies are RESP2 until the client says `HELLO 3`; then maps, doubles, nulls and verbatim
//! strings are RESP3's (`networking.c`'s `addReplyMapLen`, `addReplyDouble`, `addReplyNull`,
//! `addReplyVerbatim`).
//!
//! The commands: [`super::resp_conn`] (PING, HELLO, CLIENT...), [`super::resp_cmds`]
//! (strings, keys), [`super::resp_agg`] (hashes, sets, lists), [`super::resp_zset`] (sorted
//! sets), [`super::resp_info`] (INFO, CONFIG, MEMORY, OBJECT).
//!
//! Time: the store counts whole seconds ([`Ctx::now`]), so PEXPIRE rounds up to a second and
//! PTTL answers in whole seconds times 1000.

use std::sync::atomic::{AtomicU64, Ordering};

use fraglab_allocators::Allocator;
use fraglab_engine::{CmdError, Layout};

use super::resp_parse::{string2ll, Parsed, Parser};
use super::{resp_agg, resp_cmds, resp_conn, resp_info, resp_zset, Ctx, Handled, Protocol};

/// Client ids, as Redis's `CLIENT ID` numbers them (from 1, never reused).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One connection's protocol state.
#[derive(Debug, Default)]
pub struct Resp {
    parser: Parser,
    conn: Conn,
}

/// What a connection keeps between commands.
#[derive(Debug, Default)]
pub struct Conn {
    /// RESP3 after `HELLO 3`.
    pub resp3: bool,
    /// `CLIENT SETNAME`.
    pub name: Option<Vec<u8>>,
    /// `CLIENT ID` (0 until asked).
    id: u64,
}

impl Conn {
    /// This client's id, given on first use.
    pub fn id(&mut self) -> u64 {
        if self.id == 0 {
            self.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        }
        self.id
    }
}

/// What a command asks of the connection after its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Next,
    /// Close once the reply is written (QUIT).
    Close,
}

/// A command's implementation.
pub type Handler<A, L> = fn(&mut Conn, &mut Ctx<A, L>, &[&[u8]], &mut Out<'_>) -> Flow;

impl Protocol for Resp {
    fn handle<A: Allocator, L: Layout>(
        &mut self,
        ctx: &mut Ctx<A, L>,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Handled {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.parser.parse(rest) {
                Parsed::Incomplete => break,
                Parsed::Empty(n) => at += n,
                Parsed::Error(e) => {
                    Out::new(out, self.conn.resp3).error(&e);
                    return Handled {
                        consumed: input.len(),
                        close: true,
                    };
                }
                Parsed::Request(n) => {
                    let mut args: Vec<&[u8]> = Vec::with_capacity(8);
                    self.parser.args(rest, &mut args);
                    let mut o = Out::new(out, self.conn.resp3);
                    let flow = run(&mut self.conn, ctx, &args, &mut o);
                    at += n;
                    if flow == Flow::Close {
                        return Handled {
                            consumed: input.len(),
                            close: true,
                        };
                    }
                }
            }
        }
        Handled {
            consumed: at,
            close: false,
        }
    }
}

/// Runs one command (`args[0]` its name).
fn run<A: Allocator, L: Layout>(
    conn: &mut Conn,
    ctx: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    ctx.commands += 1;
    let mut lower = [0u8; 24];
    let name = args[0];
    let found = (name.len() <= lower.len())
        .then(|| {
            let l = &mut lower[..name.len()];
            l.copy_from_slice(name);
            l.make_ascii_lowercase();
            std::str::from_utf8(l).ok()
        })
        .flatten()
        .and_then(command::<A, L>);
    let Some((full, arity, handler)) = found else {
        unknown_command(args, out);
        return Flow::Next;
    };
    if !arity_ok(arity, args.len()) {
        out.error(&format!("wrong number of arguments for '{full}' command"));
        return Flow::Next;
    }
    handler(conn, ctx, args, out)
}

/// Redis's arity check: `n` exactly, or at least `-n`.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= arity.unsigned_abs() as usize
    }
}

/// The command table: name, arity (Redis 7.0's `commands.c`), handler.
fn command<A: Allocator, L: Layout>(name: &str) -> Option<(&'static str, i32, Handler<A, L>)> {
    use resp_agg as g;
    use resp_cmds as c;
    use resp_conn as n;
    use resp_info as i;
    use resp_zset as z;
    let e: (&'static str, i32, Handler<A, L>) = match name {
        "ping" => ("ping", -1, n::ping),
        "echo" => ("echo", 2, n::echo),
        "quit" => ("quit", -1, n::quit),
        "hello" => ("hello", -1, n::hello),
        "select" => ("select", 2, n::select),
        "client" => ("client", -2, n::client),
        "command" => ("command", -1, n::command),
        "get" => ("get", 2, c::get),
        "set" => ("set", -3, c::set),
        "setnx" => ("setnx", 3, c::setnx),
        "setex" => ("setex", 4, c::setex),
        "mget" => ("mget", -2, c::mget),
        "mset" => ("mset", -3, c::mset),
        "incr" => ("incr", 2, c::incr),
        "decr" => ("decr", 2, c::decr),
        "incrby" => ("incrby", 3, c::incrby),
        "decrby" => ("decrby", 3, c::decrby),
        "append" => ("append", 3, c::append),
        "strlen" => ("strlen", 2, c::strlen),
        "del" => ("del", -2, c::del),
        "unlink" => ("unlink", -2, c::del),
        "exists" => ("exists", -2, c::exists),
        "expire" => ("expire", -3, c::expire),
        "pexpire" => ("pexpire", -3, c::pexpire),
        "ttl" => ("ttl", 2, c::ttl),
        "pttl" => ("pttl", 2, c::pttl),
        "persist" => ("persist", 2, c::persist),
        "type" => ("type", 2, c::type_cmd),
        "dbsize" => ("dbsize", 1, c::dbsize),
        "flushall" => ("flushall", -1, c::flushall),
        "flushdb" => ("flushdb", -1, c::flushall),
        "info" => ("info", -1, i::info),
        "config" => ("config", -2, i::config),
        "memory" => ("memory", -2, i::memory),
        "object" => ("object", -2, i::object),
        "hset" => ("hset", -4, g::hset),
        "hmset" => ("hmset", -4, g::hmset),
        "hget" => ("hget", 3, g::hget),
        "hmget" => ("hmget", -3, g::hmget),
        "hdel" => ("hdel", -3, g::hdel),
        "hgetall" => ("hgetall", 2, g::hgetall),
        "hlen" => ("hlen", 2, g::hlen),
        "hexists" => ("hexists", 3, g::hexists),
        "hincrby" => ("hincrby", 4, g::hincrby),
        "sadd" => ("sadd", -3, g::sadd),
        "srem" => ("srem", -3, g::srem),
        "sismember" => ("sismember", 3, g::sismember),
        "scard" => ("scard", 2, g::scard),
        "smembers" => ("smembers", 2, g::smembers),
        "spop" => ("spop", -2, g::spop),
        "lpush" => ("lpush", -3, g::lpush),
        "rpush" => ("rpush", -3, g::rpush),
        "lpop" => ("lpop", -2, g::lpop),
        "rpop" => ("rpop", -2, g::rpop),
        "llen" => ("llen", 2, g::llen),
        "lrange" => ("lrange", 4, g::lrange),
        "ltrim" => ("ltrim", 4, g::ltrim),
        "zadd" => ("zadd", -4, z::zadd),
        "zrem" => ("zrem", -3, z::zrem),
        "zscore" => ("zscore", 3, z::zscore),
        "zincrby" => ("zincrby", 4, z::zincrby),
        "zrange" => ("zrange", -4, z::zrange),
        "zcard" => ("zcard", 2, z::zcard),
        "zpopmin" => ("zpopmin", -2, z::zpopmin),
        _ => return None,
    };
    Some(e)
}

/// `-ERR unknown command 'name', with args beginning with: 'a' 'b' ` (`processCommand`:
/// the name cut to 128 bytes, arguments quoted until 128 bytes of them are written).
fn unknown_command(args: &[&[u8]], out: &mut Out<'_>) {
    let mut quoted = Vec::new();
    for a in &args[1..] {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push(b'\'');
        quoted.extend_from_slice(&cstr(a)[..cstr(a).len().min(room)]);
        quoted.extend_from_slice(b"' ");
    }
    let name = cstr(args[0]);
    let mut m = b"unknown command '".to_vec();
    m.extend_from_slice(&name[..name.len().min(128)]);
    m.extend_from_slice(b"', with args beginning with: ");
    m.extend_from_slice(&quoted);
    out.error_bytes(&m);
}

/// An integer argument, or `-ERR value is not an integer or out of range`.
pub fn int_arg(b: &[u8], out: &mut Out<'_>) -> Option<i64> {
    let v = string2ll(b);
    if v.is_none() {
        out.error("value is not an integer or out of range");
    }
    v
}

/// Whether an argument is `word`, in any case.
pub fn is(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

/// A C string's view of bytes: up to the first NUL (Redis formats arguments with `%s`).
pub fn cstr(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

/// `-ERR unknown subcommand 'x'. Try CMD HELP.`
pub fn unknown_subcommand(args: &[&[u8]], out: &mut Out<'_>) {
    let sub = cstr(args[1]);
    let mut m = b"unknown subcommand '".to_vec();
    m.extend_from_slice(&sub[..sub.len().min(128)]);
    m.extend_from_slice(b"'. Try ");
    m.extend(args[0].to_ascii_uppercase());
    m.extend_from_slice(b" HELP.");
    out.error_bytes(&m);
}

/// The error reply of a failed store command, as Redis words it.
pub fn cmd_error(e: &CmdError, cmd: &str, out: &mut Out<'_>) {
    match e {
        CmdError::WrongType => {
            out.error_raw("WRONGTYPE Operation against a key holding the wrong kind of value")
        }
        CmdError::NotAnInteger => out.error("value is not an integer or out of range"),
        CmdError::Overflow => out.error("increment or decrement would overflow"),
        CmdError::NotANumber => out.error("resulting score is not a number (NaN)"),
        CmdError::InvalidTtl(_) => out.error(&format!("invalid expire time in '{cmd}' command")),
        // Past proto-max-bulk-len (the redis layout's own bound) as Redis words it; a block
        // the allocator can never hold under its limit is, to a Redis client, over maxmemory.
        CmdError::ValueTooLarge { max, .. } if *max >= 512 << 20 => {
            out.error("string exceeds maximum allowed size (proto-max-bulk-len)")
        }
        CmdError::OutOfMemory | CmdError::ValueTooLarge { .. } => {
            out.error_raw("OOM command not allowed when used memory > 'maxmemory'.")
        }
        CmdError::KeyTooLong { len, max } => out.error(&format!(
            "key of {len} bytes is longer than this layout's {max}"
        )),
    }
}

/// A reply being written, in the connection's protocol version.
#[derive(Debug)]
pub struct Out<'a> {
    buf: &'a mut Vec<u8>,
    /// RESP3.
    pub resp3: bool,
}

impl<'a> Out<'a> {
    /// A writer appending to `buf`.
    pub fn new(buf: &'a mut Vec<u8>, resp3: bool) -> Self {
        Out { buf, resp3 }
    }

    fn line(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        let mut b = itoa(n);
        self.buf.append(&mut b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `-ERR <msg>` (newlines turned to spaces, as `addReplyErrorFormat` does).
    pub fn error(&mut self, msg: &str) {
        let mut m = b"ERR ".to_vec();
        m.extend_from_slice(msg.as_bytes());
        self.error_raw_bytes(&m);
    }

    /// `-ERR <msg>` from bytes.
    pub fn error_bytes(&mut self, msg: &[u8]) {
        let mut m = b"ERR ".to_vec();
        m.extend_from_slice(msg);
        self.error_raw_bytes(&m);
    }

    /// An error with its own code (`WRONGTYPE ...`, `OOM ...`).
    pub fn error_raw(&mut self, msg: &str) {
        self.error_raw_bytes(msg.as_bytes());
    }

    fn error_raw_bytes(&mut self, msg: &[u8]) {
        self.buf.push(b'-');
        self.buf.extend(
            msg.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer.
    pub fn int(&mut self, n: i64) {
        self.line(b':', n);
    }

    /// A bulk string.
    pub fn bulk(&mut self, b: &[u8]) {
        self.line(b'$', b.len() as i64);
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A null bulk string (RESP3: `_`).
    pub fn null(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// A null array (RESP3: `_`).
    pub fn null_array(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    /// An array header of `n` elements.
    pub fn array(&mut self, n: usize) {
        self.line(b'*', n as i64);
    }

    /// A set header (RESP2: an array).
    pub fn set_len(&mut self, n: usize) {
        self.line(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// A map header of `n` pairs (RESP2: an array of `2n`).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.line(b'%', n as i64);
        } else {
            self.line(b'*', 2 * n as i64);
        }
    }

    /// A double (`addReplyDouble`: `%.17g`; RESP3 `,`, RESP2 a bulk string).
    pub fn double(&mut self, d: f64) {
        let text = fmt_17g(d);
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }

    /// A verbatim string of type `txt` (RESP2: a bulk string).
    pub fn verbatim(&mut self, s: &[u8]) {
        if self.resp3 {
            self.line(b'=', s.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(s);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s);
        }
    }
}

fn itoa(n: i64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// C's `%.17g`: 17 significant digits, fixed or exponent form by the exponent, trailing
/// zeros dropped; `inf`/`-inf`/`nan` as Redis writes them.
pub fn fmt_17g(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{d:.16e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if (-4..17).contains(&exp) {
        let prec = (16 - exp).max(0) as usize;
        trim(format!("{d:.prec$}"))
    } else {
        let m = trim(mant.to_string());
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_as_c_prints_them() {
        assert_eq!(fmt_17g(1.5), "1.5");
        assert_eq!(fmt_17g(3.0), "3");
        assert_eq!(fmt_17g(0.1), "0.10000000000000001");
        assert_eq!(fmt_17g(1e20), "1e+20");
        assert_eq!(fmt_17g(1.25e-5), "1.2500000000000001e-05");
        assert_eq!(fmt_17g(-2.5), "-2.5");
        assert_eq!(fmt_17g(123456.0), "123456");
    }
}
