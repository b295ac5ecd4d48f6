//! The plain meaning of every aggregate command, over Rust collections.
//!
//! This is what the memcached and compact layouts run on a decoded blob, and what tests hold
//! the redis layout's encodings to. The semantics are Redis 7.0's (`t_hash.c`, `t_set.c`,
//! `t_list.c`, `t_zset.c`): a missing hash field or member counts as 0 for HINCRBY and
//! ZINCRBY; ranges take negative indexes from the end and clamp; a hash keeps its fields in
//! insertion order (as a listpack does), a sorted set orders by score, then member bytes.

use std::collections::VecDeque;

use super::{format_score, push_elem, AggCmd, AggError, AggType, Reply};
use crate::util::parse_i64;

/// One aggregate's contents.
#[derive(Debug, Clone, PartialEq)]
pub enum AggData {
    /// Fields and values, in insertion order.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Members, in insertion order.
    Set(Vec<Vec<u8>>),
    /// Elements, head first.
    List(VecDeque<Vec<u8>>),
    /// Scores and members, sorted by score, then member.
    Zset(Vec<(f64, Vec<u8>)>),
}

/// Redis's inclusive `start stop` range over `len` items, as `[from, to)`; empty when the
/// range is.
pub fn range(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let n = len as i64;
    let mut s = if start < 0 { n + start } else { start };
    let mut e = if stop < 0 { n + stop } else { stop };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= n {
        return (0, 0);
    }
    if e >= n {
        e = n - 1;
    }
    (s as usize, e as usize + 1)
}

impl AggData {
    /// An empty aggregate of type `t`.
    pub fn new(t: AggType) -> Self {
        match t {
            AggType::Hash => AggData::Hash(Vec::new()),
            AggType::Set => AggData::Set(Vec::new()),
            AggType::List => AggData::List(VecDeque::new()),
            AggType::Zset => AggData::Zset(Vec::new()),
        }
    }

    /// The aggregate's type.
    pub fn agg_type(&self) -> AggType {
        match self {
            AggData::Hash(_) => AggType::Hash,
            AggData::Set(_) => AggType::Set,
            AggData::List(_) => AggType::List,
            AggData::Zset(_) => AggType::Zset,
        }
    }

    /// Elements (hash fields, members, list elements).
    pub fn len(&self) -> usize {
        match self {
            AggData::Hash(v) => v.len(),
            AggData::Set(v) => v.len(),
            AggData::List(v) => v.len(),
            AggData::Zset(v) => v.len(),
        }
    }

    /// Whether the aggregate is empty (Redis then deletes the key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the client gave: fields and values, members, elements (not scores).
    pub fn payload(&self) -> u64 {
        let n: usize = match self {
            AggData::Hash(v) => v.iter().map(|(f, x)| f.len() + x.len()).sum(),
            AggData::Set(v) => v.iter().map(Vec::len).sum(),
            AggData::List(v) => v.iter().map(Vec::len).sum(),
            AggData::Zset(v) => v.iter().map(|(_, m)| m.len()).sum(),
        };
        n as u64
    }

    fn zfind(v: &[(f64, Vec<u8>)], member: &[u8]) -> Option<usize> {
        v.iter().position(|(_, m)| m == member)
    }

    fn zinsert(v: &mut Vec<(f64, Vec<u8>)>, score: f64, member: &[u8]) {
        let at = v.partition_point(|(s, m)| (*s, m.as_slice()) < (score, member));
        v.insert(at, (score, member.to_vec()));
    }

    /// Runs `cmd` (of this aggregate's type; another type's command is a caller's bug and
    /// panics). `pick(n)` chooses SPOP's member among `n`. Returns the reply and the change in
    /// [`payload`](Self::payload).
    pub fn apply(
        &mut self,
        cmd: &AggCmd<'_>,
        pick: &mut dyn FnMut(usize) -> usize,
        out: &mut Vec<u8>,
    ) -> Result<(Reply, i64), AggError> {
        use AggCmd::*;
        let len = |b: &[u8]| b.len() as i64;
        Ok(match (self, *cmd) {
            (AggData::Hash(h), HSet { field, value }) => {
                match h.iter_mut().find(|(f, _)| f == field) {
                    Some((_, v)) => {
                        let d = len(value) - len(v);
                        *v = value.to_vec();
                        (Reply::Int(0), d)
                    }
                    None => {
                        h.push((field.to_vec(), value.to_vec()));
                        (Reply::Int(1), len(field) + len(value))
                    }
                }
            }
            (AggData::Hash(h), HGet { field }) => match h.iter().find(|(f, _)| f == field) {
                Some((_, v)) => {
                    out.extend_from_slice(v);
                    (Reply::Bulk, 0)
                }
                None => (Reply::Nil, 0),
            },
            (AggData::Hash(h), HDel { field }) => match h.iter().position(|(f, _)| f == field) {
                Some(i) => {
                    let (f, v) = h.remove(i);
                    (Reply::Int(1), -(len(&f) + len(&v)))
                }
                None => (Reply::Int(0), 0),
            },
            (AggData::Hash(h), HGetAll) => {
                for (f, v) in h.iter() {
                    push_elem(out, f);
                    push_elem(out, v);
                }
                (Reply::Array(2 * h.len()), 0)
            }
            (AggData::Hash(h), HIncrBy { field, delta }) => {
                let at = h.iter().position(|(f, _)| f == field);
                let old = match at {
                    Some(i) => parse_i64(&h[i].1).ok_or(AggError::NotAnInteger)?,
                    None => 0,
                };
                let new = old.checked_add(delta).ok_or(AggError::Overflow)?;
                let text = new.to_string().into_bytes();
                let d = match at {
                    Some(i) => {
                        let d = len(&text) - len(&h[i].1);
                        h[i].1 = text;
                        d
                    }
                    None => {
                        let d = len(field) + len(&text);
                        h.push((field.to_vec(), text));
                        d
                    }
                };
                (Reply::Int(new), d)
            }
            (AggData::Set(s), SAdd { member }) => {
                if s.iter().any(|m| m == member) {
                    (Reply::Int(0), 0)
                } else {
                    s.push(member.to_vec());
                    (Reply::Int(1), len(member))
                }
            }
            (AggData::Set(s), SRem { member }) => match s.iter().position(|m| m == member) {
                Some(i) => {
                    s.swap_remove(i);
                    (Reply::Int(1), -len(member))
                }
                None => (Reply::Int(0), 0),
            },
            (AggData::Set(s), SIsMember { member }) => {
                (Reply::Int(i64::from(s.iter().any(|m| m == member))), 0)
            }
            (AggData::Set(s), SPop) => {
                if s.is_empty() {
                    (Reply::Nil, 0)
                } else {
                    let m = s.swap_remove(pick(s.len()));
                    out.extend_from_slice(&m);
                    (Reply::Bulk, -len(&m))
                }
            }
            (AggData::Set(s), SCard) => (Reply::Int(s.len() as i64), 0),
            (AggData::Set(s), SMembers) => {
                for m in s.iter() {
                    push_elem(out, m);
                }
                (Reply::Array(s.len()), 0)
            }
            (AggData::List(l), LPush { elem }) => {
                l.push_front(elem.to_vec());
                (Reply::Int(l.len() as i64), len(elem))
            }
            (AggData::List(l), RPush { elem }) => {
                l.push_back(elem.to_vec());
                (Reply::Int(l.len() as i64), len(elem))
            }
            (AggData::List(l), LPop | RPop) => {
                let e = if matches!(cmd, LPop) {
                    l.pop_front()
                } else {
                    l.pop_back()
                };
                match e {
                    Some(e) => {
                        out.extend_from_slice(&e);
                        (Reply::Bulk, -len(&e))
                    }
                    None => (Reply::Nil, 0),
                }
            }
            (AggData::List(l), LRange { start, stop }) => {
                let (from, to) = range(start, stop, l.len());
                for e in l.range(from..to) {
                    push_elem(out, e);
                }
                (Reply::Array(to - from), 0)
            }
            (AggData::List(l), LTrim { start, stop }) => {
                let (from, to) = range(start, stop, l.len());
                let mut d = 0;
                for e in l.drain(to..) {
                    d -= len(&e);
                }
                for e in l.drain(..from) {
                    d -= len(&e);
                }
                (Reply::Ok, d)
            }
            (AggData::Zset(z), ZAdd { member, score }) => match Self::zfind(z, member) {
                Some(i) => {
                    if z[i].0 != score {
                        z.remove(i);
                        Self::zinsert(z, score, member);
                    }
                    (Reply::Int(0), 0)
                }
                None => {
                    Self::zinsert(z, score, member);
                    (Reply::Int(1), len(member))
                }
            },
            (AggData::Zset(z), ZRem { member }) => match Self::zfind(z, member) {
                Some(i) => {
                    z.remove(i);
                    (Reply::Int(1), -len(member))
                }
                None => (Reply::Int(0), 0),
            },
            (AggData::Zset(z), ZScore { member }) => match Self::zfind(z, member) {
                Some(i) => (Reply::Score(z[i].0), 0),
                None => (Reply::Nil, 0),
            },
            (AggData::Zset(z), ZIncrBy { member, delta }) => {
                let at = Self::zfind(z, member);
                let new = at.map_or(0.0, |i| z[i].0) + delta;
                if new.is_nan() {
                    return Err(AggError::NotANumber);
                }
                let d = match at {
                    Some(i) => {
                        z.remove(i);
                        0
                    }
                    None => len(member),
                };
                Self::zinsert(z, new, member);
                (Reply::Score(new), d)
            }
            (AggData::Zset(z), ZRange { start, stop }) => {
                let (from, to) = range(start, stop, z.len());
                for (_, m) in &z[from..to] {
                    push_elem(out, m);
                }
                (Reply::Array(to - from), 0)
            }
            (AggData::Zset(z), ZPopMin) => {
                if z.is_empty() {
                    (Reply::Array(0), 0)
                } else {
                    let (s, m) = z.remove(0);
                    push_elem(out, &m);
                    let mut text = Vec::new();
                    format_score(s, &mut text);
                    push_elem(out, &text);
                    (Reply::Array(2), -len(&m))
                }
            }
            (data, cmd) => panic!(
                "{} is a {} command, run on a {}",
                cmd.name(),
                cmd.agg_type(),
                data.agg_type()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::split_elems;

    fn run(d: &mut AggData, cmd: AggCmd<'_>) -> (Reply, Vec<Vec<u8>>) {
        let mut out = Vec::new();
        let (r, _) = d.apply(&cmd, &mut |_| 0, &mut out).unwrap();
        let elems = match r {
            Reply::Array(_) => split_elems(&out).into_iter().map(<[u8]>::to_vec).collect(),
            Reply::Bulk => vec![out],
            _ => Vec::new(),
        };
        (r, elems)
    }

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(range(0, -1, 5), (0, 5));
        assert_eq!(range(-2, -1, 5), (3, 5));
        assert_eq!(range(-100, 1, 5), (0, 2));
        assert_eq!(range(3, 1, 5), (0, 0));
        assert_eq!(range(5, 10, 5), (0, 0));
        assert_eq!(range(0, 100, 5), (0, 5));
        assert_eq!(range(0, -1, 0), (0, 0));
    }

    #[test]
    fn hashes_count_payload_and_refuse_non_integers() {
        let mut h = AggData::new(AggType::Hash);
        let mut out = Vec::new();
        let set = AggCmd::HSet {
            field: b"f",
            value: b"abc",
        };
        assert_eq!(h.apply(&set, &mut |_| 0, &mut out), Ok((Reply::Int(1), 4)));
        let incr = AggCmd::HIncrBy {
            field: b"f",
            delta: 1,
        };
        assert_eq!(
            h.apply(&incr, &mut |_| 0, &mut out),
            Err(AggError::NotAnInteger)
        );
        let incr = AggCmd::HIncrBy {
            field: b"n",
            delta: i64::MAX,
        };
        assert_eq!(
            h.apply(&incr, &mut |_| 0, &mut out),
            Ok((Reply::Int(i64::MAX), 20))
        );
        let incr = AggCmd::HIncrBy {
            field: b"n",
            delta: 1,
        };
        assert_eq!(
            h.apply(&incr, &mut |_| 0, &mut out),
            Err(AggError::Overflow)
        );
        assert_eq!(h.payload(), 4 + 20);
    }

    #[test]
    fn zsets_order_by_score_then_member() {
        let mut z = AggData::new(AggType::Zset);
        for (m, s) in [(&b"b"[..], 2.0), (b"a", 2.0), (b"c", 1.0)] {
            run(
                &mut z,
                AggCmd::ZAdd {
                    member: m,
                    score: s,
                },
            );
        }
        let (r, e) = run(&mut z, AggCmd::ZRange { start: 0, stop: -1 });
        assert_eq!(r, Reply::Array(3));
        assert_eq!(e, vec![b"c".to_vec(), b"a".to_vec(), b"b".to_vec()]);
        let (r, _) = run(
            &mut z,
            AggCmd::ZIncrBy {
                member: b"c",
                delta: 5.0,
            },
        );
        assert_eq!(r, Reply::Score(6.0));
        let (_, e) = run(&mut z, AggCmd::ZPopMin);
        assert_eq!(e, vec![b"a".to_vec(), b"2".to_vec()]);
    }

    #[test]
    fn lists_trim_and_pop() {
        let mut l = AggData::new(AggType::List);
        for e in [&b"1"[..], b"2", b"3", b"4"] {
            run(&mut l, AggCmd::RPush { elem: e });
        }
        run(&mut l, AggCmd::LTrim { start: 1, stop: -2 });
        let (_, e) = run(&mut l, AggCmd::LRange { start: 0, stop: -1 });
        assert_eq!(e, vec![b"2".to_vec(), b"3".to_vec()]);
        let (r, e) = run(&mut l, AggCmd::RPop);
        assert_eq!((r, e), (Reply::Bulk, vec![b"3".to_vec()]));
        assert_eq!(l.payload(), 1);
    }
}
