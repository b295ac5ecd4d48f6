//! Aggregates: Redis's hashes, sets, lists and sorted sets, as commands every layout runs.
//!
//! [`AggCmd`] is one command on one key's aggregate; [`Reply`] its answer, with any bytes it
//! returns appended to the caller's buffer. [`AggConfig`] holds Redis 7.0's encoding
//! thresholds (`redis.conf`: `hash-max-listpack-entries` and the rest), which the redis layout
//! obeys and every layout reports.
//!
//! How each layout holds an aggregate:
//!
//! - **redis**: Redis 7.0's encodings, byte for byte in the allocator under test (listpack,
//!   intset, quicklist, dict, skiplist; `layout::redis`), converting at the thresholds.
//! - **memcached** and **compact**: one item per aggregate whose value is a serialized blob
//!   ([`blob`]), read, changed and rewritten whole by every command that changes it, as a
//!   memcached client stores a hash.
//!
//! [`model`] is the plain Rust meaning of every command; the blob layouts run it, and tests
//! hold the redis encodings to it.

pub mod blob;
pub mod model;

use std::fmt;

use fraglab_allocators::AllocError;
use serde::{Deserialize, Serialize};

/// Why an aggregate command failed. The aggregate is unchanged by a failed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AggError {
    /// The allocator refused (the store may evict and retry).
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// HINCRBY on a value that is not an integer (`ERR hash value is not an integer`).
    #[error("hash value is not an integer")]
    NotAnInteger,
    /// HINCRBY past the 64-bit range (`ERR increment or decrement would overflow`).
    #[error("increment or decrement would overflow")]
    Overflow,
    /// ZINCRBY to NaN (`ERR resulting score is not a number (NaN)`).
    #[error("resulting score is not a number (NaN)")]
    NotANumber,
}

/// An aggregate's type (Redis's `OBJ_LIST` and the rest; strings are not aggregates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggType {
    /// A hash of fields to values.
    Hash,
    /// A set of members.
    Set,
    /// A list of elements.
    List,
    /// A sorted set of members with scores.
    Zset,
}

impl AggType {
    /// Every type.
    pub const ALL: [AggType; 4] = [AggType::Hash, AggType::Set, AggType::List, AggType::Zset];

    /// The type's name, as Redis's `TYPE` says it.
    pub fn name(self) -> &'static str {
        match self {
            AggType::Hash => "hash",
            AggType::Set => "set",
            AggType::List => "list",
            AggType::Zset => "zset",
        }
    }
}

impl fmt::Display for AggType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an aggregate is encoded (Redis's `OBJECT ENCODING` names; `blob` is the memcached and
/// compact layouts' serialized item).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// A listpack (small hashes and sorted sets).
    Listpack,
    /// A dict (large hashes, sets of strings or of many integers).
    Hashtable,
    /// A sorted array of 2-, 4- or 8-byte integers (small sets of integers).
    Intset,
    /// A linked list of listpack nodes (every list).
    Quicklist,
    /// A skiplist and a dict (large sorted sets).
    Skiplist,
    /// One serialized item (memcached and compact layouts).
    Blob,
}

impl Encoding {
    /// Every encoding.
    pub const ALL: [Encoding; 6] = [
        Encoding::Listpack,
        Encoding::Hashtable,
        Encoding::Intset,
        Encoding::Quicklist,
        Encoding::Skiplist,
        Encoding::Blob,
    ];

    /// The name `OBJECT ENCODING` replies with.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Listpack => "listpack",
            Encoding::Hashtable => "hashtable",
            Encoding::Intset => "intset",
            Encoding::Quicklist => "quicklist",
            Encoding::Skiplist => "skiplist",
            Encoding::Blob => "blob",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One command on one key's aggregate. Byte arguments are borrowed; ranges are Redis's
/// inclusive `start stop` indexes (negative counts from the end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggCmd<'a> {
    /// HSET key field value: replies 1 if the field is new, 0 if it was updated.
    HSet {
        /// The field.
        field: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// HGET key field: the value, or nil.
    HGet {
        /// The field.
        field: &'a [u8],
    },
    /// HDEL key field: 1 if it was there.
    HDel {
        /// The field.
        field: &'a [u8],
    },
    /// HGETALL key: fields and values, alternating.
    HGetAll,
    /// HINCRBY key field delta: the new value (a missing field counts as 0).
    HIncrBy {
        /// The field.
        field: &'a [u8],
        /// The increment.
        delta: i64,
    },
    /// SADD key member: 1 if it was added.
    SAdd {
        /// The member.
        member: &'a [u8],
    },
    /// SREM key member: 1 if it was there.
    SRem {
        /// The member.
        member: &'a [u8],
    },
    /// SISMEMBER key member: 1 or 0.
    SIsMember {
        /// The member.
        member: &'a [u8],
    },
    /// SPOP key: a random member, removed, or nil.
    SPop,
    /// SMEMBERS key: every member (in the encoding's order).
    SMembers,
    /// SCARD key: the number of members.
    SCard,
    /// LPUSH key element: the new length.
    LPush {
        /// The element.
        elem: &'a [u8],
    },
    /// RPUSH key element: the new length.
    RPush {
        /// The element.
        elem: &'a [u8],
    },
    /// LPOP key: the first element, or nil.
    LPop,
    /// RPOP key: the last element, or nil.
    RPop,
    /// LRANGE key start stop: the elements in the range.
    LRange {
        /// First index.
        start: i64,
        /// Last index (inclusive).
        stop: i64,
    },
    /// LTRIM key start stop: keeps only the range.
    LTrim {
        /// First index.
        start: i64,
        /// Last index (inclusive).
        stop: i64,
    },
    /// ZADD key score member: 1 if the member is new.
    ZAdd {
        /// The member.
        member: &'a [u8],
        /// Its score.
        score: f64,
    },
    /// ZREM key member: 1 if it was there.
    ZRem {
        /// The member.
        member: &'a [u8],
    },
    /// ZSCORE key member: the score, or nil.
    ZScore {
        /// The member.
        member: &'a [u8],
    },
    /// ZINCRBY key delta member: the new score (a missing member counts as 0).
    ZIncrBy {
        /// The member.
        member: &'a [u8],
        /// The increment.
        delta: f64,
    },
    /// ZRANGE key start stop: the members in the rank range, lowest score first.
    ZRange {
        /// First rank.
        start: i64,
        /// Last rank (inclusive).
        stop: i64,
    },
    /// ZPOPMIN key: the member with the lowest score and its score, removed.
    ZPopMin,
}

impl AggCmd<'_> {
    /// The type of aggregate the command works on.
    pub fn agg_type(&self) -> AggType {
        use AggCmd::*;
        match self {
            HSet { .. } | HGet { .. } | HDel { .. } | HGetAll | HIncrBy { .. } => AggType::Hash,
            SAdd { .. } | SRem { .. } | SIsMember { .. } | SPop | SMembers | SCard => AggType::Set,
            LPush { .. } | RPush { .. } | LPop | RPop | LRange { .. } | LTrim { .. } => {
                AggType::List
            }
            ZAdd { .. }
            | ZRem { .. }
            | ZScore { .. }
            | ZIncrBy { .. }
            | ZRange { .. }
            | ZPopMin => AggType::Zset,
        }
    }

    /// Whether the command creates the key when it is missing (the writes that add).
    pub fn creates(&self) -> bool {
        use AggCmd::*;
        matches!(
            self,
            HSet { .. }
                | HIncrBy { .. }
                | SAdd { .. }
                | LPush { .. }
                | RPush { .. }
                | ZAdd { .. }
                | ZIncrBy { .. }
        )
    }

    /// Whether the command may change the aggregate.
    pub fn writes(&self) -> bool {
        use AggCmd::*;
        !matches!(
            self,
            HGet { .. }
                | HGetAll
                | SIsMember { .. }
                | SMembers
                | SCard
                | LRange { .. }
                | ZScore { .. }
                | ZRange { .. }
        )
    }

    /// The command's name, upper case, as Redis spells it.
    pub fn name(&self) -> &'static str {
        use AggCmd::*;
        match self {
            HSet { .. } => "HSET",
            HGet { .. } => "HGET",
            HDel { .. } => "HDEL",
            HGetAll => "HGETALL",
            HIncrBy { .. } => "HINCRBY",
            SAdd { .. } => "SADD",
            SRem { .. } => "SREM",
            SIsMember { .. } => "SISMEMBER",
            SPop => "SPOP",
            SMembers => "SMEMBERS",
            SCard => "SCARD",
            LPush { .. } => "LPUSH",
            RPush { .. } => "RPUSH",
            LPop => "LPOP",
            RPop => "RPOP",
            LRange { .. } => "LRANGE",
            LTrim { .. } => "LTRIM",
            ZAdd { .. } => "ZADD",
            ZRem { .. } => "ZREM",
            ZScore { .. } => "ZSCORE",
            ZIncrBy { .. } => "ZINCRBY",
            ZRange { .. } => "ZRANGE",
            ZPopMin => "ZPOPMIN",
        }
    }
}

impl AggCmd<'_> {
    /// The command as Redis receives it: name, key, arguments (what `redis-cli` would send,
    /// and what a RESP command file holds).
    pub fn to_args(&self, key: &[u8]) -> Vec<Vec<u8>> {
        use AggCmd::*;
        let num = |n: i64| n.to_string().into_bytes();
        let score = |s: f64| {
            let mut v = Vec::new();
            format_score(s, &mut v);
            v
        };
        let mut a = vec![self.name().as_bytes().to_vec(), key.to_vec()];
        match *self {
            HSet { field, value } => a.extend([field.to_vec(), value.to_vec()]),
            HGet { field } | HDel { field } => a.push(field.to_vec()),
            HIncrBy { field, delta } => a.extend([field.to_vec(), num(delta)]),
            SAdd { member }
            | SRem { member }
            | SIsMember { member }
            | ZRem { member }
            | ZScore { member } => a.push(member.to_vec()),
            LPush { elem } | RPush { elem } => a.push(elem.to_vec()),
            LRange { start, stop } | LTrim { start, stop } | ZRange { start, stop } => {
                a.extend([num(start), num(stop)])
            }
            ZAdd { member, score: s } => a.extend([score(s), member.to_vec()]),
            ZIncrBy { member, delta } => a.extend([score(delta), member.to_vec()]),
            HGetAll | SPop | SMembers | SCard | LPop | RPop | ZPopMin => {}
        }
        a
    }
}

/// A command's answer. Byte results go to the caller's buffer: a [`Reply::Bulk`] appends its
/// bytes; a [`Reply::Array`] of `n` appends each element as a 4-byte little-endian length and
/// its bytes (a score as the text Redis replies with, [`format_score`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reply {
    /// Nothing (a missing field, an empty pop).
    Nil,
    /// An integer.
    Int(i64),
    /// A score.
    Score(f64),
    /// A string, appended to the buffer.
    Bulk,
    /// `n` strings, appended to the buffer length-prefixed.
    Array(usize),
    /// Nothing to say (LTRIM's OK).
    Ok,
}

/// Appends one element of an array reply (see [`Reply`]).
pub fn push_elem(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Splits an array reply's buffer into its elements.
pub fn split_elems(mut buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let n = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let end = (4 + n).min(buf.len());
        out.push(&buf[4..end]);
        buf = &buf[end..];
    }
    out
}

/// A score as Redis replies with it and as a listpack stores it (`d2string`): an integral
/// score within ±2^53 as an integer, anything else as the shortest text that reads back to the
/// same double, `inf` and `-inf` for the infinities.
pub fn format_score(score: f64, out: &mut Vec<u8>) {
    use std::io::Write;
    if score.is_infinite() {
        out.extend_from_slice(if score > 0.0 { b"inf" } else { b"-inf" });
    } else if score == score.trunc() && score.abs() < (1u64 << 53) as f64 {
        let _ = write!(out, "{}", score as i64);
    } else {
        let _ = write!(out, "{score}");
    }
}

/// Redis 7.0's encoding thresholds (`redis.conf`), as layout parameters of the same names
/// (`redis:hash-max-listpack-entries=128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AggConfig {
    /// A hash stays a listpack up to this many fields (512).
    pub hash_max_listpack_entries: usize,
    /// ... and while every field and value is at most this long (64).
    pub hash_max_listpack_value: usize,
    /// A set of integers stays an intset up to this many members (512).
    pub set_max_intset_entries: usize,
    /// A sorted set stays a listpack up to this many members (128).
    pub zset_max_listpack_entries: usize,
    /// ... and while every member is at most this long (64).
    pub zset_max_listpack_value: usize,
    /// A quicklist node's limit: positive, entries per node; -1..-5, 4/8/16/32/64 KiB (-2).
    pub list_max_listpack_size: i64,
}

impl Default for AggConfig {
    fn default() -> Self {
        AggConfig {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
        }
    }
}

impl AggConfig {
    /// The parameter names, as `redis.conf` spells them.
    pub const PARAMS: [&'static str; 6] = [
        "hash-max-listpack-entries",
        "hash-max-listpack-value",
        "set-max-intset-entries",
        "zset-max-listpack-entries",
        "zset-max-listpack-value",
        "list-max-listpack-size",
    ];

    /// Sets one parameter by its `redis.conf` name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let bad = || format!("layout parameter `{name}`: `{value}` is not a valid value");
        if name == "list-max-listpack-size" {
            let v: i64 = value.parse().map_err(|_| bad())?;
            if v == 0 || !(-5..=65_535).contains(&v) {
                return Err(format!(
                    "layout parameter `{name}`: {v} is out of range (-5..-1 or 1..65535)"
                ));
            }
            self.list_max_listpack_size = v;
            return Ok(());
        }
        let v: usize = value.parse().map_err(|_| bad())?;
        // Redis's own bounds: `set-max-intset-entries` and the rest are plain counts, but a
        // count past 2^30 only makes a listpack too large to realloc.
        if v > 1 << 30 {
            return Err(format!(
                "layout parameter `{name}`: {v} is larger than 2^30"
            ));
        }
        let slot = match name {
            "hash-max-listpack-entries" => &mut self.hash_max_listpack_entries,
            "hash-max-listpack-value" => &mut self.hash_max_listpack_value,
            "set-max-intset-entries" => &mut self.set_max_intset_entries,
            "zset-max-listpack-entries" => &mut self.zset_max_listpack_entries,
            "zset-max-listpack-value" => &mut self.zset_max_listpack_value,
            _ => {
                return Err(format!(
                    "unknown layout parameter `{name}`; valid: {}",
                    Self::PARAMS.join(", ")
                ))
            }
        };
        *slot = v;
        Ok(())
    }

    /// The byte limit of a quicklist node for a negative `list-max-listpack-size`
    /// (`optimization_level` in `quicklist.c`), or `None` for a count limit.
    pub fn list_node_bytes(&self) -> Option<usize> {
        let f = self.list_max_listpack_size;
        (f < 0).then(|| 4096usize << ((-f - 1) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_format_as_redis_replies() {
        let f = |s: f64| {
            let mut v = Vec::new();
            format_score(s, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(f(3.0), "3");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(f64::INFINITY), "inf");
    }

    #[test]
    fn config_parameters_parse_and_refuse() {
        let mut c = AggConfig::default();
        assert_eq!(c.list_node_bytes(), Some(8192));
        c.set("hash-max-listpack-entries", "128").unwrap();
        assert_eq!(c.hash_max_listpack_entries, 128);
        c.set("list-max-listpack-size", "-5").unwrap();
        assert_eq!(c.list_node_bytes(), Some(65536));
        c.set("list-max-listpack-size", "100").unwrap();
        assert_eq!(c.list_node_bytes(), None);
        assert!(c.set("list-max-listpack-size", "-6").is_err());
        assert!(c.set("hash-max-listpack-value", "x").is_err());
        let e = c.set("hash-max-ziplist-entries", "1").unwrap_err();
        assert!(e.contains("hash-max-listpack-entries"), "{e}");
    }

    #[test]
    fn array_elements_round_trip() {
        let mut out = Vec::new();
        push_elem(&mut out, b"a");
        push_elem(&mut out, b"");
        push_elem(&mut out, b"xyz");
        assert_eq!(split_elems(&out), vec![&b"a"[..], b"", b"xyz"]);
    }
}
