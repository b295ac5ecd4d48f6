//! RESP commands as ops: what each argument of each command read means (the table is in
//! the [module docs](super)). [`super::resp`] frames the commands and feeds the arguments in.

use super::parse::shown;
use crate::gen::VALUE_MAX;
use crate::{Key, OpKind, KEY_MAX};

/// Bytes kept of each argument: every command name, option and number fits.
pub(super) const HEAD: usize = 24;

/// One bulk string as read: its length, its FNV-1a hash (when at most `u16::MAX` bytes long;
/// no key or member is longer) and its first [`HEAD`] bytes.
pub(super) struct Arg {
    pub(super) len: u64,
    pub(super) hash: u64,
    pub(super) head: [u8; HEAD],
}

impl Arg {
    /// The bytes kept: the whole argument when it is at most [`HEAD`] bytes long.
    pub(super) fn head(&self) -> &[u8] {
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
            Ok(len) => Ok(Key { id: self.hash, len }),
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
#[rustfmt::skip]
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
pub(super) struct Elem {
    pub(super) id: u64,
    pub(super) len: u16,
    pub(super) value_len: u32,
}

/// A command being decoded: what its arguments have said so far.
pub(super) struct Command {
    /// The command's name, as the table spells it.
    pub(super) name: &'static str,
    pub(super) kind: OpKind,
    shape: Shape,
    pub(super) key: Key,
    /// The pending half of a pair (a key, a field or a member).
    pair: Option<Key>,
    /// A score or count waiting for its member (ZADD, ZINCRBY).
    number: u32,
    pub(super) value_len: u32,
    pub(super) ttl: u32,
    /// SET: the option whose time comes next (`EX` or `PX`).
    expect_time: Option<&'static str>,
    /// SET: whether a time or NX/XX was given.
    timed: bool,
    conditional: bool,
}

impl Command {
    /// The command `name` with `n` arguments after it, which starts at byte `start`; or why it
    /// is not read.
    pub(super) fn named(name: &Arg, n: u64, start: u64) -> Result<Command, String> {
        let upper = name.head().to_ascii_uppercase();
        let found = COMMANDS
            .iter()
            .find(|c| name.len as usize <= HEAD && c.0.as_bytes() == upper.as_slice());
        match found {
            Some(&(cmd_name, _, shape, form)) if !shape.fits(n) => Err(format!(
                "unsupported form of {cmd_name} at byte {start} ({n} arguments): fraglab \
                 reads `{form}`"
            )),
            Some(&(cmd_name, kind, shape, _)) => Ok(Command {
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
            None if name.len == 0 => Err(format!("an empty command name at byte {start}")),
            None => {
                let more = if name.len as usize > HEAD { "..." } else { "" };
                Err(format!(
                    "unsupported command {}{more} at byte {start}",
                    shown(&upper)
                ))
            }
        }
    }

    /// Whether each element is an op's key (MGET, DEL, MSET) rather than its member.
    pub(super) fn per_key(&self) -> bool {
        matches!(self.shape, Shape::Keys | Shape::KeyValues)
    }

    /// Checks the command once every argument was taken.
    pub(super) fn finish(&self) -> Result<(), String> {
        match self.expect_time {
            Some(unit) => Err(format!("{unit} without a time")),
            None => Ok(()),
        }
    }

    /// Takes argument `i` (0 = the first after the name).
    pub(super) fn take(&mut self, i: u64, a: &Arg, elems: &mut Vec<Elem>) -> Result<(), String> {
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
