//! The unit of every workload: one request, [`Op`].
//!
//! An op names its key by a 64-bit id and a length rather than by bytes, so ops are `Copy`,
//! sixteen-odd bytes wide and cost nothing to generate. The bytes are a pure function of the
//! two ([`Key::write_to`]): the same key always has the same bytes, on every run and machine,
//! and two different ids of the same length never share bytes as long as the length holds the
//! id's digits ([`Key::digits`]). Trace keys become ids when they are read (a trace's own
//! integer id, or a 64-bit hash of its anonymized key string), and keep the trace's length.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a request does. The names are memcached's text-protocol commands; `scan` is YCSB's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Read a key. With [`Op::fill`] set, a miss is followed by a set of `value_len` bytes.
    Get,
    /// Read a key and its CAS unique.
    Gets,
    /// Store unconditionally.
    Set,
    /// Store only if the key is absent.
    Add,
    /// Store only if the key is present.
    Replace,
    /// Store if the key has not changed since it was read (replayed as a set of a present key).
    Cas,
    /// Append `value_len` bytes to a present value.
    Append,
    /// Prepend `value_len` bytes to a present value.
    Prepend,
    /// Add to a counter.
    Incr,
    /// Subtract from a counter.
    Decr,
    /// Remove a key.
    Delete,
    /// Set a key's TTL to [`Op::ttl`] without reading it.
    Touch,
    /// Read `value_len` consecutive keys starting at this one (YCSB workload E).
    Scan,
    /// HSET key field value: [`Op::member`] is the field, `value_len` the value's bytes.
    Hset,
    /// HGET key field.
    Hget,
    /// HDEL key field.
    Hdel,
    /// HGETALL key.
    Hgetall,
    /// HINCRBY key field `value_len`.
    Hincrby,
    /// SADD key member.
    Sadd,
    /// SREM key member.
    Srem,
    /// SISMEMBER key member.
    Sismember,
    /// SPOP key.
    Spop,
    /// SCARD key.
    Scard,
    /// LPUSH key element ([`Op::member`] is the element).
    Lpush,
    /// RPUSH key element.
    Rpush,
    /// LPOP key.
    Lpop,
    /// RPOP key.
    Rpop,
    /// LRANGE key 0 `value_len - 1`.
    Lrange,
    /// LTRIM key 0 `value_len - 1`: keeps the first `value_len` elements.
    Ltrim,
    /// ZADD key `value_len` member: the score is `value_len`.
    Zadd,
    /// ZREM key member.
    Zrem,
    /// ZSCORE key member.
    Zscore,
    /// ZINCRBY key `value_len` member.
    Zincrby,
    /// ZRANGE key 0 `value_len - 1`.
    Zrange,
    /// ZPOPMIN key.
    Zpopmin,
    /// memcached's `slabs reassign SRC DST`: move one slab page from class `SRC` (the
    /// [`Key::id`]; [`Op::ANY_CLASS`] for memcached's `-1`, any class with a page to spare) to
    /// class `DST` (`value_len`; 0 is the global page pool). Read from fraglab CSV traces; a
    /// mix cannot draw it.
    SlabsReassign,
}

impl OpKind {
    /// Every kind, in declaration order (the order of reports and of Segcache's op codes
    /// does not follow this; see the trace readers).
    pub const ALL: [OpKind; 36] = [
        OpKind::Get,
        OpKind::Gets,
        OpKind::Set,
        OpKind::Add,
        OpKind::Replace,
        OpKind::Cas,
        OpKind::Append,
        OpKind::Prepend,
        OpKind::Incr,
        OpKind::Decr,
        OpKind::Delete,
        OpKind::Touch,
        OpKind::Scan,
        OpKind::Hset,
        OpKind::Hget,
        OpKind::Hdel,
        OpKind::Hgetall,
        OpKind::Hincrby,
        OpKind::Sadd,
        OpKind::Srem,
        OpKind::Sismember,
        OpKind::Spop,
        OpKind::Scard,
        OpKind::Lpush,
        OpKind::Rpush,
        OpKind::Lpop,
        OpKind::Rpop,
        OpKind::Lrange,
        OpKind::Ltrim,
        OpKind::Zadd,
        OpKind::Zrem,
        OpKind::Zscore,
        OpKind::Zincrby,
        OpKind::Zrange,
        OpKind::Zpopmin,
        OpKind::SlabsReassign,
    ];

    /// The command's name, lower case, as traces and spec files spell it.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Gets => "gets",
            OpKind::Set => "set",
            OpKind::Add => "add",
            OpKind::Replace => "replace",
            OpKind::Cas => "cas",
            OpKind::Append => "append",
            OpKind::Prepend => "prepend",
            OpKind::Incr => "incr",
            OpKind::Decr => "decr",
            OpKind::Delete => "delete",
            OpKind::Touch => "touch",
            OpKind::Scan => "scan",
            OpKind::Hset => "hset",
            OpKind::Hget => "hget",
            OpKind::Hdel => "hdel",
            OpKind::Hgetall => "hgetall",
            OpKind::Hincrby => "hincrby",
            OpKind::Sadd => "sadd",
            OpKind::Srem => "srem",
            OpKind::Sismember => "sismember",
            OpKind::Spop => "spop",
            OpKind::Scard => "scard",
            OpKind::Lpush => "lpush",
            OpKind::Rpush => "rpush",
            OpKind::Lpop => "lpop",
            OpKind::Rpop => "rpop",
            OpKind::Lrange => "lrange",
            OpKind::Ltrim => "ltrim",
            OpKind::Zadd => "zadd",
            OpKind::Zrem => "zrem",
            OpKind::Zscore => "zscore",
            OpKind::Zincrby => "zincrby",
            OpKind::Zrange => "zrange",
            OpKind::Zpopmin => "zpopmin",
            OpKind::SlabsReassign => "slabs-reassign",
        }
    }

    /// The type of value the op works on: `string` for memcached's commands, else Redis's
    /// `hash`, `set`, `list` or `zset`.
    pub fn data_type(self) -> &'static str {
        use OpKind::*;
        match self {
            Hset | Hget | Hdel | Hgetall | Hincrby => "hash",
            Sadd | Srem | Sismember | Spop | Scard => "set",
            Lpush | Rpush | Lpop | Rpop | Lrange | Ltrim => "list",
            Zadd | Zrem | Zscore | Zincrby | Zrange | Zpopmin => "zset",
            SlabsReassign => "admin",
            _ => "string",
        }
    }

    /// Whether the op works on an aggregate (a hash, set, list or sorted set).
    pub fn is_aggregate(self) -> bool {
        !matches!(self.data_type(), "string" | "admin")
    }

    /// Whether the op names an element ([`Op::member`]).
    pub fn has_member(self) -> bool {
        use OpKind::*;
        matches!(
            self,
            Hset | Hget
                | Hdel
                | Hincrby
                | Sadd
                | Srem
                | Sismember
                | Lpush
                | Rpush
                | Zadd
                | Zrem
                | Zscore
                | Zincrby
        )
    }

    /// Whether the op adds an element to an aggregate (creating the key if it is missing).
    pub fn adds_element(self) -> bool {
        use OpKind::*;
        matches!(self, Hset | Hincrby | Sadd | Lpush | Rpush | Zadd | Zincrby)
    }

    /// Whether the op stores `value_len` bytes of value (set, add, replace, cas, append,
    /// prepend). These are the ops that count as "bytes written" for phase lengths.
    pub fn writes_value(self) -> bool {
        matches!(
            self,
            OpKind::Set
                | OpKind::Add
                | OpKind::Replace
                | OpKind::Cas
                | OpKind::Append
                | OpKind::Prepend
        )
    }

    /// Whether the op only reads.
    pub fn is_read(self) -> bool {
        use OpKind::*;
        matches!(
            self,
            Get | Gets | Scan | Hget | Hgetall | Sismember | Scard | Lrange | Zscore | Zrange
        )
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown op name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown op `{0}` (expected one of get, gets, set, add, replace, cas, append, prepend, incr, decr, delete, touch, scan, hset, hget, hdel, hgetall, hincrby, sadd, srem, sismember, spop, scard, lpush, rpush, lpop, rpop, lrange, ltrim, zadd, zrem, zscore, zincrby, zrange, zpopmin, slabs-reassign)")]
pub struct UnknownOp(pub String);

impl FromStr for OpKind {
    type Err = UnknownOp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OpKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownOp(s.to_string()))
    }
}

/// The alphabet of key digits: 64 characters that are legal in memcached keys and need no
/// quoting in Redis or CSV.
const KEY_DIGITS: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
/// Fills a key after its digits; not a digit, so the digits end where the padding starts.
const KEY_PAD: u8 = b'.';

/// The largest value a generator writes: 1 GiB less one byte.
pub const VALUE_MAX: u32 = (1 << 30) - 1;

/// The longest key fraglab generates: memcached's `KEY_MAX_LENGTH`.
pub const KEY_MAX: u16 = 250;

/// A key: an id and a length in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// The key's identity. Generators number keys 0, 1, 2, ...; traces keep their own ids.
    pub id: u64,
    /// The key's length in bytes.
    pub len: u16,
}

impl Key {
    /// How many digits [`Key::write_to`] uses for `id` (base 64, at least one). A key at least
    /// this long is unique among keys of its length.
    pub fn digits(id: u64) -> u16 {
        if id == 0 {
            1
        } else {
            (64 - id.leading_zeros()).div_ceil(6) as u16
        }
    }

    /// Appends the key's bytes to `buf`: the id's base-64 digits, least significant first,
    /// then `.` up to `len`. A key shorter than its digits keeps the low digits (and may then
    /// alias another id; generators never make such keys).
    ///
    /// ```
    /// use fraglab_workloads::Key;
    /// let mut buf = Vec::new();
    /// Key { id: 65, len: 5 }.write_to(&mut buf);
    /// assert_eq!(buf, b"11...");
    /// ```
    #[inline]
    pub fn write_to(&self, buf: &mut Vec<u8>) {
        let len = usize::from(self.len);
        let start = buf.len();
        buf.resize(start + len, KEY_PAD);
        let mut id = self.id;
        for b in &mut buf[start..] {
            *b = KEY_DIGITS[(id & 63) as usize];
            id >>= 6;
            if id == 0 {
                break;
            }
        }
    }

    /// No element: the [`Op::member`] of an op that names none.
    pub const NONE: Key = Key { id: 0, len: 0 };

    /// Appends an element's bytes (see [`Op::member`]): with a length of 0, the id in
    /// decimal (an integer member: Redis keeps it as an integer); otherwise as a key's bytes.
    #[inline]
    pub fn write_member_to(&self, buf: &mut Vec<u8>) {
        if self.len == 0 {
            let mut digits = [0u8; 20];
            let mut n = self.id;
            let mut i = digits.len();
            loop {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            buf.extend_from_slice(&digits[i..]);
        } else {
            self.write_to(buf);
        }
    }

    /// The length of [`write_member_to`](Key::write_member_to)'s bytes.
    pub fn member_len(&self) -> u64 {
        if self.len == 0 {
            u64::from(crate::dist::decimal_digits(self.id))
        } else {
            u64::from(self.len)
        }
    }

    /// The key's bytes in a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(usize::from(self.len));
        self.write_to(&mut v);
        v
    }
}

/// One request.
///
/// `value_len` is the bytes stored by a write, the size to fill on a get miss when `fill` is
/// set, the bytes read back where a trace records them, or the number of keys of a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// Logical time in microseconds since the start of the workload. TTLs are measured
    /// against it, so they expire during a replay as they would in production.
    pub time_us: u64,
    /// What the request does.
    pub kind: OpKind,
    /// Which key.
    pub key: Key,
    /// Value bytes (see the type's docs).
    pub value_len: u32,
    /// Time to live in seconds; 0 means none.
    pub ttl: u32,
    /// Demand fill: on a get miss, the replayer sets the key with `value_len` and `ttl`, as a
    /// look-aside cache's client does.
    pub fill: bool,
    /// Index of the phase this op belongs to (see the stream's phase names).
    pub phase: u16,
    /// The element an aggregate op names ([`OpKind::has_member`]): a hash field, a set or
    /// sorted-set member, a list element; [`Key::NONE`] otherwise. Its bytes are a pure
    /// function of the id and length, as a key's are; a length of 0 is an integer member, the
    /// id written in decimal ([`Key::write_member_to`]).
    pub member: Key,
}

impl Op {
    /// The source class of a [`OpKind::SlabsReassign`] meaning "any class with a page to
    /// spare" (memcached's `-1`).
    pub const ANY_CLASS: u64 = u64::MAX;

    /// Key plus value bytes this op writes (0 for ops that do not store a value); for an op
    /// that adds to an aggregate, the element's bytes (and HSET's value).
    pub fn bytes_written(&self) -> u64 {
        if self.kind.writes_value() {
            u64::from(self.key.len) + u64::from(self.value_len)
        } else if self.kind.adds_element() {
            self.member.member_len()
                + if self.kind == OpKind::Hset {
                    u64::from(self.value_len)
                } else {
                    0
                }
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_is_small() {
        // 40 bytes of request and 16 of element (an id and a length, as a key).
        assert!(
            std::mem::size_of::<Op>() <= 56,
            "{}",
            std::mem::size_of::<Op>()
        );
    }

    #[test]
    fn keys_are_unique_at_their_digits() {
        let mut seen = std::collections::HashSet::new();
        for id in 0..20_000u64 {
            let len = Key::digits(id).max(3);
            assert!(seen.insert(Key { id, len }.to_bytes()), "id {id}");
        }
        assert_eq!(Key::digits(0), 1);
        assert_eq!(Key::digits(63), 1);
        assert_eq!(Key::digits(64), 2);
        assert_eq!(Key::digits(u64::MAX), 11);
        // 64 bits are ten 6-bit digits and a top digit of 4 bits (15, `F`).
        assert_eq!(
            Key {
                id: u64::MAX,
                len: 12
            }
            .to_bytes(),
            b"__________F."
        );
    }

    #[test]
    fn op_names_round_trip() {
        for k in OpKind::ALL {
            assert_eq!(k.name().parse::<OpKind>().unwrap(), k);
        }
        assert!("fetch"
            .parse::<OpKind>()
            .unwrap_err()
            .to_string()
            .contains("fetch"));
    }
}
