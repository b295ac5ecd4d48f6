//! RESP command files: a stream of RESP2 arrays of bulk strings (what `redis-cli --pipe`
//! sends), decoded one command at a time into ops. See the [module docs](super) for the
//! command table.
//!
//! Arguments are never held whole: each bulk string is read in the input's own buffer,
//! hashed as it passes (keys and members) and cut to its first [`HEAD`] bytes (command names,
//! options, numbers), so a value of 512 MiB costs nothing but its reading. A command's ops
//! wait in a queue of 16 bytes each until they are returned: at most 16 MiB for the largest
//! array, and no more than the bytes the command took in the file.

use std::io::{self, BufRead};

use super::parse::shown;
use crate::gen::VALUE_MAX;
use crate::{Key, Op, OpKind, KEY_MAX};

/// The most elements a command's array may declare (2^20); more is refused before anything is
/// read or allocated for them.
pub const RESP_ARRAY_MAX: u64 = 1 << 20;

/// The longest bulk string, 512 MiB: Redis's default `proto-max-bulk-len`. A longer one is
/// refused before anything is read or allocated for it.
pub const RESP_BULK_MAX: u64 = 512 << 20;

/// Bytes kept of each argument: every command name, option and number fits.
const HEAD: usize = 24;

/// FNV-1a's offset basis and prime ([`crate::rng::fnv1a64_bytes`], computed as the bytes
/// pass).
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Why a command yielded no op.
pub(super) enum RespFault {
    /// The command is whole but maps to no op; lenient reading skips it.
    Bad(String),
    /// The input ends inside a command.
    Truncated(String),
    /// The framing is broken or declares more than a limit: nothing after it can be trusted.
    Fatal(String),
    /// The input could not be read.
    Io(io::Error),
}

/// One bulk string as read: its length, its FNV-1a hash (when at most `u16::MAX` bytes long;
/// no key or member is longer) and its first [`HEAD`] bytes.
struct Arg {
    len: u64,
    hash: u64,
    head: [u8; HEAD],
}

impl Arg {
    /// The bytes kept: the whole argument when it is at most [`HEAD`] bytes long.
    fn head(&self) -> &[u8] {
        &self.head[..(self.len as usize).min(HEAD)]
    }

    /// The whole argument, if it was kept whole.
    fn whole(&self) -> Option<&[u8]> {
        (self.len as usize <= HEAD).then(|| self.head())
    }

    /// The argument as a canonical non-negative decimal integer fitting `u64` (no sign, no
    /// leading zero, no spaces), the form Redis stores as an integer.
    fn uint(&self) -> Option<u64> {
        let b = self.whole()?;
        if b.is_empty() || b.len() > 20 || (b[0] == b'0' && b.len() > 1) {
            return None;
        }
        b.iter().try_fold(0u64, |v, &d| {
            d.is_ascii_digit()
                .then_some(())
                .and_then(|()| v.checked_mul(10)?.checked_add(u64::from(d - b'0')))
        })
    }

    /// Whether the argument is `word`, ignoring case.
    fn is(&self, word: &str) -> bool {
        self.whole()
            .is_some_and(|b| b.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// The argument for an error message, cut short.
    fn shown(&self) -> String {
        let more = if self.len as usize > HEAD { "..." } else { "" };
        format!("`{}{more}`", shown(self.head()))
    }

    fn key(&self) -> Result<Key, String> {
        match u16::try_from(self.len) {
            Ok(0) => Err("an empty key (keys need at least one byte)".into()),
            Ok(len) => Ok(Key {
                id: self.hash,
                len,
            }),
            Err(_) => Err(format!(
                "a key of {} bytes (the longest fraglab replays is {})",
                self.len,
                u16::MAX
            )),
        }
    }

    fn member(&self) -> Result<Key, String> {
        if let Some(id) = self.uint() {
            return Ok(Key { id, len: 0 });
        }
        match self.len {
            0 => Err("an empty element (an element needs at least one byte)".into()),
            // At most KEY_MAX, so it fits.
            len if len <= u64::from(KEY_MAX) => Ok(Key {
                id: self.hash,
                len: len as u16,
            }),
            len => Err(format!(
                "an element of {len} bytes (the longest fraglab replays is {KEY_MAX})"
            )),
        }
    }

    /// A non-negative integer up to [`VALUE_MAX`], as a value length.
    fn count(&self, what: &str) -> Result<u32, String> {
        match self.uint() {
            Some(n) if n <= u64::from(VALUE_MAX) => Ok(n as u32),
            _ => Err(format!(
                "{what} {} is not a non-negative integer up to {VALUE_MAX} (an op's value_len)",
                self.shown()
            )),
        }
    }
}

/// How a command's arguments become ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `CMD key`.
    Key,
    /// `CMD key [key ...]`: an op per key.
    Keys,
    /// `MSET key value [key value ...]`: a set per pair.
    KeyValues,
    /// `SET key value [EX s|PX ms] [NX|XX]`.
    Set,
    /// `APPEND key value`.
    Append,
    /// `EXPIRE key seconds`.
    Expire,
    /// `INCRBY key 1`, `DECRBY key 1`.
    IncrBy,
    /// `CMD key element`.
    Member,
    /// `CMD key element [element ...]`: an op per element.
    Members,
    /// `HSET key field value [field value ...]`: an op per pair.
    FieldValues,
    /// `ZADD key score member [score member ...]`: an op per pair.
    ScoreMembers,
    /// `HINCRBY key field n`.
    FieldNumber,
    /// `ZINCRBY key n member`.
    NumberMember,
    /// `CMD key 0 stop`.
    Range,
}

impl Shape {
    /// Whether `n` arguments (after the name) fit the shape.
    fn fits(self, n: u64) -> bool {
        match self {
            Shape::Key => n == 1,
            Shape::Keys => n >= 1,
            Shape::KeyValues => n >= 2 && n % 2 == 0,
            Shape::Set | Shape::Members => n >= 2,
            Shape::Append | Shape::Expire | Shape::IncrBy | Shape::Member => n == 2,
            Shape::FieldValues | Shape::ScoreMembers => n >= 3 && n % 2 == 1,
            Shape::FieldNumber | Shape::NumberMember | Shape::Range => n == 3,
        }
    }
}

/// The commands read: name, op kind, shape and the form read (for errors).
const COMMANDS: &[(&str, OpKind, Shape, &str)] = &[
    ("GET", OpKind::Get, Shape::Key, "GET key"),
    ("SET", OpKind::Set, Shape::Set, "SET key value [EX s|PX ms] [NX|XX]"),
    ("MSET", OpKind::Set, Shape::KeyValues, "MSET key value [key value ...]"),
    ("MGET", OpKind::Get, Shape::Keys, "MGET key [key ...]"),
    ("DEL", OpKind::Delete, Shape::Keys, "DEL key [key ...]"),
    ("UNLINK", OpKind::Delete, Shape::Keys, "UNLINK key [key ...]"),
    ("EXPIRE", OpKind::Touch, Shape::Expire, "EXPIRE key seconds"),
    ("PERSIST", OpKind::Touch, Shape::Key, "PERSIST key"),
    ("INCR", OpKind::Incr, Shape::Key, "INCR key"),
    ("DECR", OpKind::Decr, Shape::Key, "DECR key"),
    ("INCRBY", OpKind::Incr, Shape::IncrBy, "INCRBY key 1"),
    ("DECRBY", OpKind::Decr, Shape::IncrBy, "DECRBY key 1"),
    ("APPEND", OpKind::Append, Shape::Append, "APPEND key value"),
    ("HSET", OpKind::Hset, Shape::FieldValues, "HSET key field value [field value ...]"),
    ("HMSET", OpKind::Hset, Shape::FieldValues, "HMSET key field value [field value ...]"),
    ("HGET", OpKind::Hget, Shape::Member, "HGET key field"),
    ("HDEL", OpKind::Hdel, Shape::Members, "HDEL key field [field ...]"),
    ("HGETALL", OpKind::Hgetall, Shape::Key, "HGETALL key"),
    ("HINCRBY", OpKind::Hincrby, Shape::FieldNumber, "HINCRBY key field n"),
    ("SADD", OpKind::Sadd, Shape::Members, "SADD key member [member ...]"),
    ("SREM", OpKind::Srem, Shape::Members, "SREM key member [member ...]"),
    ("SISMEMBER", OpKind::Sismember, Shape::Member, "SISMEMBER key member"),
    ("SPOP", OpKind::Spop, Shape::Key, "SPOP key"),
    ("SCARD", OpKind::Scard, Shape::Key, "SCARD key"),
    ("LPUSH", OpKind::Lpush, Shape::Members, "LPUSH key element [element ...]"),
    ("RPUSH", OpKind::Rpush, Shape::Members, "RPUSH key element [element ...]"),
    ("LPOP", OpKind::Lpop, Shape::Key, "LPOP key"),
    ("RPOP", OpKind::Rpop, Shape::Key, "RPOP key"),
    ("LRANGE", OpKind::Lrange, Shape::Range, "LRANGE key 0 stop"),
    ("LTRIM", OpKind::Ltrim, Shape::Range, "LTRIM key 0 stop"),
    ("ZADD", OpKind::Zadd, Shape::ScoreMembers, "ZADD key score member [score member ...]"),
    ("ZREM", OpKind::Zrem, Shape::Members, "ZREM key member [member ...]"),
    ("ZSCORE", OpKind::Zscore, Shape::Member, "ZSCORE key member"),
    ("ZINCRBY", OpKind::Zincrby, Shape::NumberMember, "ZINCRBY key n member"),
    ("ZRANGE", OpKind::Zrange, Shape::Range, "ZRANGE key 0 stop"),
    ("ZPOPMIN", OpKind::Zpopmin, Shape::Key, "ZPOPMIN key"),
];

/// One op of a command, waiting to be returned: its key (for the commands that name several
/// keys) or its element, and its value length.
#[derive(Clone, Copy, Debug)]
struct Elem {
    id: u64,
    len: u16,
    value_len: u32,
}

/// A command being decoded: what its arguments have said so far.
struct Command {
    /// The command's name, as the table spells it.
    name: &'static str,
    kind: OpKind,
    shape: Shape,
    key: Key,
    /// The pending half of a pair (a key, a field or a member).
    pair: Option<Key>,
    /// A score or count waiting for its member (ZADD, ZINCRBY).
    number: u32,
    value_len: u32,
    ttl: u32,
    /// SET: the option whose time comes next (`EX` or `PX`).
    expect_time: Option<&'static str>,
    /// SET: whether a time or NX/XX was given.
    timed: bool,
    conditional: bool,
}

impl Command {
    /// Takes argument `i` (0 = the first after the name).
    fn take(&mut self, i: u64, a: &Arg, elems: &mut Vec<Elem>) -> Result<(), String> {
        let member = |k: Key, value_len: u32| Elem {
            id: k.id,
            len: k.len,
            value_len,
        };
        if i == 0 && !matches!(self.shape, Shape::Keys | Shape::KeyValues) {
            self.key = a.key()?;
            return Ok(());
        }
        match self.shape {
            Shape::Key => {}
            Shape::Keys => elems.push(member(a.key()?, 0)),
            Shape::KeyValues if i % 2 == 0 => self.pair = Some(a.key()?),
            Shape::KeyValues => {
                let k = self.pair.take().unwrap_or(Key::NONE);
                elems.push(member(k, a.len as u32));
            }
            Shape::Set if i == 1 => self.value_len = a.len as u32,
            Shape::Set => self.set_option(a)?,
            Shape::Append => self.value_len = a.len as u32,
            Shape::Expire => self.ttl = seconds(a, "EXPIRE time")?,
            Shape::IncrBy if a.is("1") => {}
            Shape::IncrBy => {
                return Err(format!(
                    "an increment of {}: only 1 is an {} op",
                    a.shown(),
                    self.kind
                ))
            }
            Shape::Member | Shape::Members => elems.push(member(a.member()?, 0)),
            Shape::FieldValues if i % 2 == 1 => self.pair = Some(a.member()?),
            Shape::FieldValues => {
                let k = self.pair.take().unwrap_or(Key::NONE);
                elems.push(member(k, a.len as u32));
            }
            Shape::ScoreMembers if i % 2 == 1 => self.number = a.count("score")?,
            Shape::ScoreMembers => elems.push(member(a.member()?, self.number)),
            Shape::FieldNumber if i == 1 => self.pair = Some(a.member()?),
            Shape::FieldNumber => {
                let k = self.pair.take().unwrap_or(Key::NONE);
                elems.push(member(k, a.count("increment")?));
            }
            Shape::NumberMember if i == 1 => self.number = a.count("increment")?,
            Shape::NumberMember => elems.push(member(a.member()?, self.number)),
            Shape::Range if i == 1 => {
                if !a.is("0") {
                    return Err(format!("start {} (fraglab reads only 0)", a.shown()));
                }
            }
            Shape::Range => {
                // `0 -1` is what a range of value_len 0 is sent as (see `agg_ops`).
                self.value_len = if a.is("-1") {
                    0
                } else {
                    match a.uint() {
                        Some(n) if n < u64::from(VALUE_MAX) => n as u32 + 1,
                        _ => {
                            return Err(format!(
                                "stop {} is not -1 or a non-negative integer below {VALUE_MAX}",
                                a.shown()
                            ))
                        }
                    }
                };
            }
        }
        Ok(())
    }

    /// SET's options after the value.
    fn set_option(&mut self, a: &Arg) -> Result<(), String> {
        if let Some(unit) = self.expect_time.take() {
            self.ttl = if unit == "EX" {
                seconds(a, "EX time")?
            } else {
                let ms = match a.uint() {
                    Some(ms @ 1..) => ms,
                    _ => return Err(format!("PX time {} is not a positive integer", a.shown())),
                };
                u32::try_from(ms.div_ceil(1000))
                    .map_err(|_| format!("PX time {} is over {} s", a.shown(), u32::MAX))?
            };
            return Ok(());
        }
        let repeated = |what: &str| Err(format!("{what} given twice"));
        if a.is("EX") || a.is("PX") {
            if self.timed {
                return repeated("a time (EX or PX)");
            }
            self.timed = true;
            self.expect_time = Some(if a.is("EX") { "EX" } else { "PX" });
        } else if a.is("NX") || a.is("XX") {
            if self.conditional {
                return repeated("a condition (NX or XX)");
            }
            self.conditional = true;
            self.kind = if a.is("NX") {
                OpKind::Add
            } else {
                OpKind::Replace
            };
        } else {
            return Err(format!(
                "SET option {} (fraglab reads EX, PX, NX and XX)",
                a.shown()
            ));
        }
        Ok(())
    }
}

/// A TTL in whole seconds, 1 to `u32::MAX`.
fn seconds(a: &Arg, what: &str) -> Result<u32, String> {
    match a.uint() {
        Some(s @ 1..) if s <= u64::from(u32::MAX) => Ok(s as u32),
        _ => Err(format!(
            "{what} {} is not a whole number of seconds from 1 to {}",
            a.shown(),
            u32::MAX
        )),
    }
}

/// Decodes RESP commands into ops, keeping the byte offset in the (decompressed) input.
pub(super) struct RespDecoder {
    /// Bytes of the input consumed.
    offset: u64,
    /// The current command's op, less what each element sets.
    template: Op,
    /// Whether an element is its op's key (MGET, DEL, MSET) rather than its member.
    per_key: bool,
    /// The current command's ops, returned from `next`.
    elems: Vec<Elem>,
    next: usize,
}

impl RespDecoder {
    pub(super) fn new() -> RespDecoder {
        RespDecoder {
            offset: 0,
            template: Op {
                time_us: 0,
                kind: OpKind::Get,
                key: Key::NONE,
                value_len: 0,
                ttl: 0,
                fill: false,
                phase: 0,
                member: Key::NONE,
            },
            per_key: false,
            elems: Vec::new(),
            next: 0,
        }
    }

    /// The next op: one queued from the last command, or the first of the next command (whose
    /// reading counts one more record). `Ok(None)` at the end of the input.
    pub(super) fn next_op(
        &mut self,
        input: &mut dyn BufRead,
        records: &mut u64,
    ) -> Result<Option<Op>, RespFault> {
        loop {
            if let Some(&e) = self.elems.get(self.next) {
                self.next += 1;
                let mut op = self.template;
                let k = Key {
                    id: e.id,
                    len: e.len,
                };
                if self.per_key {
                    op.key = k;
                } else {
                    op.member = k;
                }
                op.value_len = e.value_len;
                return Ok(Some(op));
            }
            self.elems.clear();
            self.next = 0;
            // A command of a million elements leaves no 16 MiB queue behind.
            self.elems.shrink_to(4096);
            let start = self.offset;
            let Some(first) = self.byte(input)? else {
                return Ok(None);
            };
            *records += 1;
            self.command(input, first, start)?;
        }
    }

    /// Reads one command, whose first byte `first` was at `start`, into the queue.
    fn command(
        &mut self,
        input: &mut dyn BufRead,
        first: u8,
        start: u64,
    ) -> Result<(), RespFault> {
        if first != b'*' {
            return Err(malformed(start, "an array (`*`)", first));
        }
        let n = self.length(input, start, RESP_ARRAY_MAX, "an array")?;
        if n == 0 {
            return Err(RespFault::Bad(format!("an empty command at byte {start}")));
        }
        let name = self.arg(input, start)?;
        let upper = name.head().to_ascii_uppercase();
        let found = COMMANDS
            .iter()
            .find(|c| name.len as usize <= HEAD && c.0.as_bytes() == upper.as_slice());
        let (mut cmd, mut error) = match found {
            Some(&(cmd_name, _, shape, form)) if !shape.fits(n - 1) => (
                None,
                Some(format!(
                    "unsupported form of {cmd_name} at byte {start} ({} arguments): fraglab \
                     reads `{form}`",
                    n - 1
                )),
            ),
            Some(&(cmd_name, kind, shape, _)) => (
                Some(Command {
                    name: cmd_name,
                    kind,
                    shape,
                    key: Key::NONE,
                    pair: None,
                    number: 0,
                    value_len: 0,
                    ttl: 0,
                    expect_time: None,
                    timed: false,
                    conditional: false,
                }),
                None,
            ),
            None if name.len == 0 => (None, Some(format!("an empty command name at byte {start}"))),
            None => {
                let more = if name.len as usize > HEAD { "..." } else { "" };
                let m = format!("unsupported command {}{more} at byte {start}", shown(&upper));
                (None, Some(m))
            }
        };
        for i in 0..n - 1 {
            let a = self.arg(input, start)?;
            if let (Some(c), None) = (cmd.as_mut(), &error) {
                if let Err(m) = c.take(i, &a, &mut self.elems) {
                    error = Some(format!("{} at byte {start}: {m}", c.name));
                }
            }
        }
        let (Some(cmd), None) = (cmd, &error) else {
            self.elems.clear();
            let m = error.unwrap_or_else(|| format!("a bad command at byte {start}"));
            return Err(RespFault::Bad(m));
        };
        if let Some(unit) = cmd.expect_time {
            self.elems.clear();
            return Err(RespFault::Bad(format!(
                "SET at byte {start}: {unit} without a time"
            )));
        }
        self.per_key = matches!(cmd.shape, Shape::Keys | Shape::KeyValues);
        self.template = Op {
            kind: cmd.kind,
            key: cmd.key,
            ttl: cmd.ttl,
            ..RespDecoder::new().template
        };
        if self.elems.is_empty() {
            // A command of one op on its key.
            self.elems.push(Elem {
                id: 0,
                len: 0,
                value_len: cmd.value_len,
            });
        }
        Ok(())
    }

    /// The next byte, `None` at the end of the input.
    fn byte(&mut self, input: &mut dyn BufRead) -> Result<Option<u8>, RespFault> {
        loop {
            match input.fill_buf() {
                Ok([]) => return Ok(None),
                Ok(&[b, ..]) => {
                    input.consume(1);
                    self.offset += 1;
                    return Ok(Some(b));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RespFault::Io(e)),
            }
        }
    }

    /// The next byte of the command that started at `start`; the end of the input is a
    /// truncation.
    fn byte_in(&mut self, input: &mut dyn BufRead, start: u64) -> Result<u8, RespFault> {
        self.byte(input)?.ok_or_else(|| self.truncated(start))
    }

    fn truncated(&self, start: u64) -> RespFault {
        RespFault::Truncated(format!(
            "the command at byte {start} is cut short: the input ends at byte {}",
            self.offset
        ))
    }

    /// A length after its type byte: canonical decimal digits then CRLF, at most `max`
    /// (refused as soon as the digits pass it).
    fn length(
        &mut self,
        input: &mut dyn BufRead,
        start: u64,
        max: u64,
        what: &str,
    ) -> Result<u64, RespFault> {
        let header = self.offset - 1;
        let mut n: u64 = 0;
        let mut digits = 0;
        loop {
            let at = self.offset;
            match self.byte_in(input, start)? {
                d @ b'0'..=b'9' => {
                    if digits == 1 && n == 0 {
                        return Err(malformed(at, "CRLF after a length of 0", d));
                    }
                    n = n * 10 + u64::from(d - b'0');
                    digits += 1;
                    if n > max {
                        let unit = if max == RESP_BULK_MAX {
                            "bytes (512 MiB, Redis's proto-max-bulk-len)"
                        } else {
                            "elements"
                        };
                        return Err(RespFault::Fatal(format!(
                            "{what} at byte {header} declares more than {max} {unit}; refused"
                        )));
                    }
                }
                b'\r' if digits > 0 => {
                    let at = self.offset;
                    return match self.byte_in(input, start)? {
                        b'\n' => Ok(n),
                        other => Err(malformed(at, "`\\n` after `\\r`", other)),
                    };
                }
                other => {
                    let expected = if digits == 0 {
                        "a length (a decimal digit)"
                    } else {
                        "a digit or CRLF"
                    };
                    return Err(malformed(at, expected, other));
                }
            }
        }
    }

    /// One bulk string of the command that started at `start`, read through.
    fn arg(&mut self, input: &mut dyn BufRead, start: u64) -> Result<Arg, RespFault> {
        let at = self.offset;
        match self.byte_in(input, start)? {
            b'$' => {}
            other => return Err(malformed(at, "a bulk string (`$`)", other)),
        }
        let len = self.length(input, start, RESP_BULK_MAX, "a bulk string")?;
        let mut a = Arg {
            len,
            hash: FNV_OFFSET,
            head: [0; HEAD],
        };
        let hashing = len <= u64::from(u16::MAX);
        let mut done = 0u64;
        while done < len {
            let buf = match input.fill_buf() {
                Ok([]) => return Err(self.truncated(start)),
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RespFault::Io(e)),
            };
            let n = buf.len().min((len - done) as usize);
            let chunk = &buf[..n];
            if (done as usize) < HEAD {
                let from = done as usize;
                let k = (HEAD - from).min(n);
                a.head[from..from + k].copy_from_slice(&chunk[..k]);
            }
            if hashing {
                for &b in chunk {
                    a.hash = (a.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
                }
            }
            input.consume(n);
            self.offset += n as u64;
            done += n as u64;
        }
        for want in [b'\r', b'\n'] {
            let at = self.offset;
            let b = self.byte_in(input, start)?;
            if b != want {
                let what = if want == b'\r' {
                    "CRLF after the bulk string's bytes"
                } else {
                    "`\\n` after `\\r`"
                };
                return Err(malformed(at, what, b));
            }
        }
        Ok(a)
    }
}

fn malformed(at: u64, expected: &str, found: u8) -> RespFault {
    let found = match found {
        b' '..=b'~' => format!("`{}`", found as char),
        b'\r' => "`\\r`".into(),
        b'\n' => "`\\n`".into(),
        other => format!("byte 0x{other:02x}"),
    };
    RespFault::Fatal(format!(
        "malformed RESP at byte {at}: expected {expected}, found {found}"
    ))
}
