//! Aggregate workloads: what a spec's `[aggregate]` table says, and how the generator draws
//! the elements of hash, set, list and sorted-set ops from it.
//!
//! - **Elements per key** (`elements`): each aggregate key has a size, a fixed function of
//!   its id drawn once from this distribution (as key lengths are). The preload fills every
//!   key to it; members and fields are drawn from `0..size` of the key; LTRIM keeps that
//!   many elements.
//! - **Members** (`members`): when given, members are drawn from one population `0..members`
//!   shared by every key (a follower graph's user ids) instead of from the key's size.
//! - **Member bytes**: a member id is an integer member (written in decimal, so Redis keeps
//!   it as an integer) with probability `integer_members`, decided by the id; otherwise a
//!   string of `member_size` bytes (a fixed function of the id, at most 250).
//! - **Types**: when the mixes touch more than one type (strings count as one), keys are
//!   split among the types by id: type `t` of `T` owns the ids `≡ t (mod T)`, and an op's
//!   chosen id moves to the nearest id of its type at or below it. So a key never changes
//!   type and popularity keeps its shape.
//! - **List elements** are numbered in push order (a timeline's post ids).
//! - **Counters**: HINCRBY's fields are the hash's `counters` counter fields, numbered after
//!   the fields of its size, so they hold integers only.
//! - `value_len` carries HSET's value size (the phase's `value_size`), ZADD's score and
//!   ZINCRBY's increment (drawn from the same distribution), HINCRBY's increment (1), and
//!   the count of LRANGE and ZRANGE (`range`) and of LTRIM (the key's size).

use std::path::Path;

use crate::dist::{KeyLengths, SizeSampler};
use crate::rng::{mix64, unit, Rng};
use crate::spec::WorkloadSpecError;
use crate::{Key, OpKind};

pub use crate::agg_spec::{AggregateSpec, ELEMENTS_MAX};

/// The compiled `[aggregate]` table.
#[derive(Debug, Clone)]
pub(crate) struct AggGen {
    sizes: Box<[u32; 4096]>,
    salt: u64,
    member_lengths: KeyLengths,
    members: Option<u64>,
    counters: u64,
    integer: f64,
    range: SizeSampler,
    /// The types the mixes touch (`string`, `hash`, ...).
    types: Vec<&'static str>,
    /// Whether keys are split among them (more than one).
    split: bool,
    next_element: u64,
    pub(crate) index: bool,
}

impl AggGen {
    /// Compiles `spec` for the types in `types` (every type any mix names, sorted).
    pub(crate) fn new(
        spec: &AggregateSpec,
        base: &Path,
        types: Vec<&'static str>,
        salt: u64,
    ) -> Result<AggGen, WorkloadSpecError> {
        spec.validate()?;
        let elements = spec.elements.compile(base, "aggregate.elements")?;
        let mut sizes = Box::new([0u32; 4096]);
        for (i, s) in sizes.iter_mut().enumerate() {
            let u = (i as f64 + 0.5) / 4096.0;
            *s = crate::dist::clamp_size(elements.quantile(u).round(), ELEMENTS_MAX).max(1);
        }
        let member_size = spec.member_size.compile(base, "aggregate.member_size")?;
        Ok(AggGen {
            sizes,
            salt,
            member_lengths: KeyLengths::new(&member_size, mix64(salt ^ 0x6d65_6d62)),
            members: spec.members,
            counters: spec.counters,
            integer: spec.integer_members,
            range: spec.range.compile(base, "aggregate.range")?,
            split: types.len() > 1,
            types,
            next_element: 0,
            index: spec.index,
        })
    }

    /// The id an op of `kind` uses for a chosen `id`: the nearest of its type's ids.
    #[inline]
    pub(crate) fn typed_id(&self, kind: OpKind, id: u64) -> u64 {
        if !self.split {
            return id;
        }
        let t = self.types.len() as u64;
        // DELETE and TOUCH (DEL, EXPIRE) work on any type: their id stays.
        match self.types.iter().position(|&x| x == kind.data_type()) {
            Some(at) if !matches!(kind, OpKind::Delete | OpKind::Touch) => id - id % t + at as u64,
            _ => id,
        }
    }

    /// The type of key `id` (`string` when no mix names a type).
    pub(crate) fn type_of(&self, id: u64) -> &'static str {
        match self.types.len() {
            0 => "string",
            n => self.types[(id % n as u64) as usize],
        }
    }

    /// Key `id`'s size.
    #[inline]
    pub(crate) fn size(&self, id: u64) -> u64 {
        u64::from(self.sizes[(mix64(id ^ self.salt) >> 52) as usize])
    }

    /// The element with id `id`.
    #[inline]
    pub(crate) fn member(&self, id: u64) -> Key {
        let integer = self.integer > 0.0 && unit(mix64(id ^ !self.salt)) < self.integer;
        Key {
            id,
            len: if integer {
                0
            } else {
                self.member_lengths.len(id)
            },
        }
    }

    /// Draws the element and `value_len` of an op of `kind` on key `id`.
    pub(crate) fn draw(
        &mut self,
        kind: OpKind,
        id: u64,
        rng: &mut Rng,
        values: &SizeSampler,
    ) -> (Key, u32) {
        use OpKind::*;
        let member = match kind {
            Lpush | Rpush => {
                self.next_element += 1;
                self.member(self.next_element - 1)
            }
            Hincrby => {
                let first = self.members.unwrap_or_else(|| self.size(id));
                self.member(first + rng.below(self.counters))
            }
            _ if kind.has_member() => {
                let n = self.members.unwrap_or_else(|| self.size(id));
                self.member(rng.below(n))
            }
            _ => Key::NONE,
        };
        let value_len = match kind {
            Hset | Zadd | Zincrby => values.sample(rng, crate::op::VALUE_MAX),
            Hincrby => 1,
            Lrange | Zrange => self.range.sample(rng, ELEMENTS_MAX),
            Ltrim => self.size(id) as u32,
            _ => 0,
        };
        (member, value_len)
    }

    /// The ops that fill key `id` of type `t` to its size: (kind, element, value_len).
    pub(crate) fn fill(
        &mut self,
        t: &str,
        id: u64,
        rng: &mut Rng,
        values: &SizeSampler,
    ) -> Vec<(OpKind, Key, u32)> {
        let n = self.size(id);
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let (kind, member) = match t {
                "hash" => (OpKind::Hset, self.member(i)),
                "set" => (
                    OpKind::Sadd,
                    self.member(self.members.map_or(i, |m| rng.below(m))),
                ),
                "list" => {
                    self.next_element += 1;
                    (OpKind::Rpush, self.member(self.next_element - 1))
                }
                _ => (
                    OpKind::Zadd,
                    self.member(self.members.map_or(i, |m| rng.below(m))),
                ),
            };
            let value_len = match kind {
                OpKind::Hset | OpKind::Zadd => values.sample(rng, crate::op::VALUE_MAX),
                _ => 0,
            };
            out.push((kind, member, value_len));
        }
        out
    }
}

/// The data types the mixes name (`string`, `hash`, ...), sorted and distinct.
pub(crate) fn mix_types<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'static str> {
    let mut types: Vec<&'static str> = names
        .filter_map(|n| match crate::spec::MixOp::parse(n) {
            Ok(crate::spec::MixOp::Kind(OpKind::Delete | OpKind::Touch)) => None,
            Ok(crate::spec::MixOp::Kind(k)) => Some(k.data_type()),
            Ok(_) => Some("string"),
            Err(_) => None,
        })
        .collect();
    types.sort_unstable();
    types.dedup();
    types
}
