//! Aggregate ops as engine commands: the one mapping from an [`Op`] of a hash, set, list or
//! sorted-set kind to an [`AggCmd`], used by the engine target and the RESP peer alike.
//!
//! The element is [`Op::member`] (a hash field, a member, a list element); HSET's value is
//! `value_len` bytes of the run's value bytes. ZADD's score and ZINCRBY's increment are
//! `value_len`; HINCRBY's increment is `value_len`; LRANGE, LTRIM and ZRANGE cover
//! `0 .. value_len - 1`.

use fraglab_engine::agg::AggCmd;
use fraglab_workloads::{Op, OpKind};

/// The command an aggregate op runs; `None` for a string op.
pub fn agg_cmd<'a>(op: &Op, member: &'a [u8], value: &'a [u8]) -> Option<AggCmd<'a>> {
    use AggCmd::*;
    let n = i64::from(op.value_len);
    let last = n - 1;
    Some(match op.kind {
        OpKind::Hset => HSet {
            field: member,
            value,
        },
        OpKind::Hget => HGet { field: member },
        OpKind::Hdel => HDel { field: member },
        OpKind::Hgetall => HGetAll,
        OpKind::Hincrby => HIncrBy {
            field: member,
            delta: n,
        },
        OpKind::Sadd => SAdd { member },
        OpKind::Srem => SRem { member },
        OpKind::Sismember => SIsMember { member },
        OpKind::Spop => SPop,
        OpKind::Scard => SCard,
        OpKind::Lpush => LPush { elem: member },
        OpKind::Rpush => RPush { elem: member },
        OpKind::Lpop => LPop,
        OpKind::Rpop => RPop,
        OpKind::Lrange => LRange {
            start: 0,
            stop: last,
        },
        OpKind::Ltrim => LTrim {
            start: 0,
            stop: last,
        },
        OpKind::Zadd => ZAdd {
            member,
            score: n as f64,
        },
        OpKind::Zrem => ZRem { member },
        OpKind::Zscore => ZScore { member },
        OpKind::Zincrby => ZIncrBy {
            member,
            delta: n as f64,
        },
        OpKind::Zrange => ZRange {
            start: 0,
            stop: last,
        },
        OpKind::Zpopmin => ZPopMin,
        _ => return None,
    })
}

/// Writes the op's element bytes into `buf` (cleared first) when the op names one.
#[inline]
pub fn member_bytes(op: &Op, buf: &mut Vec<u8>) {
    buf.clear();
    if op.kind.has_member() {
        op.member.write_member_to(buf);
    }
}
