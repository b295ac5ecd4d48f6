//! The generator: turns a [`WorkloadSpec`] and a seed into a stream of [`Op`]s, one at a time.
//!
//! Per request, the generator draws (in this order, from the one [`Rng`]): the mix entry, the
//! key, the value size (writes and demand-fill gets), the TTL, and the gap to the next
//! request. Key lengths are not drawn per request: each key's length is a fixed function of
//! its id and the seed ([`KeyLengths`]).
//!
//! Live data. When a phase has a live cap or deletes a fraction of the live keys, the
//! generator keeps the set of live keys: those written (set, add of an absent key, replace or
//! cas of a present key, append and prepend grow them) and not deleted. It ignores TTLs and
//! evictions: it is the data the workload asked to keep, which is what RAMCloud's
//! "memory needed for the live data" is measured against. Under a cap, a write that would
//! pass it is preceded by deletes of random live keys until it fits, so live data never
//! exceeds the cap after any request (unless one write alone is larger than the cap: that
//! write deletes nothing).

use std::collections::VecDeque;
use std::path::Path;

use crate::agg::{mix_types, AggGen};
use crate::dist::{Clock, KeyChooser, KeyLengths, SizeSampler, Weighted};
use crate::live::LiveSet;
use crate::rng::{mix64, Rng};
use crate::spec::{MixOp, WorkloadSpec, WorkloadSpecError};
use crate::{Key, Op, OpKind};

pub use crate::op::VALUE_MAX;

#[derive(Debug)]
enum Length {
    Ops(u64),
    Bytes(u64),
    DeleteFraction(f64),
}

#[derive(Debug)]
struct Phase {
    length: Length,
    mix: Weighted<MixOp>,
    keys: KeyChooser,
    values: SizeSampler,
    ttl: Weighted<u32>,
    clock: Clock,
    live_cap: Option<u64>,
}

/// A running workload. Iterate it for its ops.
#[derive(Debug)]
pub struct Generator {
    rng: Rng,
    key_lengths: KeyLengths,
    demand_fill: bool,
    names: Vec<String>,
    preload: Option<(u64, SizeSampler)>,
    preloaded: u64,
    phases: Vec<Phase>,
    /// Index into `phases` of the current phase.
    current: usize,
    /// Phase index reported in ops (offset by one when there is a preload).
    phase_offset: u16,
    phase_ops: u64,
    phase_bytes: u64,
    deletes_left: Option<u64>,
    keyspace: u64,
    seq: u64,
    time_us: f64,
    live: Option<LiveSet>,
    pending: VecDeque<Op>,
    /// The number of ops the whole stream yields, when known before it starts.
    declared: Option<u64>,
    /// Hash, set, list and sorted-set ops: their elements (`crate::agg`).
    agg: Option<AggGen>,
}

impl Generator {
    /// Compiles `spec` (paths in it relative to `base`) for `seed`.
    pub fn new(
        spec: &WorkloadSpec,
        base: &Path,
        seed: u64,
    ) -> Result<Generator, WorkloadSpecError> {
        spec.validate()?;
        let key_sampler = spec.key_size.compile(base, "key_size")?;
        let values = spec.value_size.compile(base, "value_size")?;
        let mix = compile_mix(&spec.mix, "mix")?;
        let ttl = spec.ttl.compile("ttl")?;
        let clock = spec.arrival.compile(base, "arrival")?;
        let mut names = Vec::new();
        let preload = match &spec.preload {
            Some(p) => {
                names.push("load".to_string());
                let sampler = match &p.value_size {
                    Some(v) => v.compile(base, "preload.value_size")?,
                    None => values.clone(),
                };
                Some((p.keys.unwrap_or(spec.keyspace), sampler))
            }
            None => None,
        };
        let mut phases = Vec::with_capacity(spec.phases.len());
        for (i, p) in spec.phases.iter().enumerate() {
            let at = format!("phases[{i}] `{}`", p.name);
            names.push(p.name.clone());
            let length = match (p.ops, p.bytes, p.delete_fraction) {
                (Some(n), _, _) => Length::Ops(n),
                (_, Some(b), _) => Length::Bytes(b.0),
                (_, _, Some(f)) => Length::DeleteFraction(f),
                _ => unreachable!("validate() requires one length"),
            };
            phases.push(Phase {
                length,
                mix: match &p.mix {
                    Some(m) => compile_mix(m, &format!("{at}: mix"))?,
                    None => mix.clone(),
                },
                keys: KeyChooser::new(
                    p.popularity.as_ref().unwrap_or(&spec.popularity),
                    spec.keyspace,
                ),
                values: match &p.value_size {
                    Some(v) => v.compile(base, &format!("{at}: value_size"))?,
                    None => values.clone(),
                },
                ttl: match &p.ttl {
                    Some(t) => t.compile(&format!("{at}: ttl"))?,
                    None => ttl.clone(),
                },
                clock: match &p.arrival {
                    Some(a) => a.compile(base, &format!("{at}: arrival"))?,
                    None => clock.clone(),
                },
                live_cap: p.live_cap.map(|b| b.0),
            });
        }
        if names.len() > usize::from(u16::MAX) {
            return Err(WorkloadSpecError::Invalid(
                "too many phases (at most 65,535)".into(),
            ));
        }
        let mut declared = declare_ops(preload.as_ref().map(|p| p.0), &phases);
        let mut rng = Rng::new(seed);
        let salt = rng.next_u64();
        let op_names = std::iter::once(&spec.mix)
            .chain(spec.phases.iter().filter_map(|p| p.mix.as_ref()))
            .flat_map(|m| m.keys());
        let types = mix_types(op_names);
        let agg = if types.iter().any(|&t| t != "string") || spec.aggregate.is_some() {
            let a = spec.aggregate.clone().unwrap_or_default();
            if preload.is_some() {
                // A preload fills each aggregate key to its size: a count only the draws tell.
                declared = None;
            }
            Some(AggGen::new(&a, base, types, mix64(salt ^ 0x6167_6772))?)
        } else {
            None
        };
        Ok(Generator {
            key_lengths: KeyLengths::new(&key_sampler, salt),
            rng,
            demand_fill: spec.demand_fill,
            names,
            phase_offset: u16::from(preload.is_some()),
            preload,
            preloaded: 0,
            phases,
            current: 0,
            phase_ops: 0,
            phase_bytes: 0,
            deletes_left: None,
            keyspace: spec.keyspace,
            seq: spec
                .preload
                .as_ref()
                .map_or(0, |p| p.keys.unwrap_or(spec.keyspace)),
            time_us: 0.0,
            live: spec.tracks_live().then(LiveSet::default),
            pending: VecDeque::new(),
            declared,
            agg,
        })
    }

    /// The exact number of ops the whole stream yields (from its start), when it is known
    /// before streaming: the preload's keys plus, for every phase, its requests (twice its
    /// requests when its mix is only `rmw`, which yields a get and a set per request). `None`
    /// when any phase is measured in bytes written or deletes a fraction of the live keys,
    /// has a live cap (whose deletes depend on the draws), or mixes `rmw` with other ops.
    pub fn declared_ops(&self) -> Option<u64> {
        self.declared
    }

    /// The phases' names; an op's `phase` indexes this list.
    pub fn phase_names(&self) -> &[String] {
        &self.names
    }

    /// Live data in bytes (key + value of live keys), when the workload tracks it.
    pub fn live_bytes(&self) -> Option<u64> {
        self.live.as_ref().map(|l| l.bytes)
    }

    /// Number of live keys, when the workload tracks them.
    pub fn live_keys(&self) -> Option<u64> {
        self.live.as_ref().map(|l| l.len() as u64)
    }

    #[inline]
    fn key(&self, id: u64) -> Key {
        Key {
            id,
            len: self.key_lengths.len(id),
        }
    }

    #[inline]
    fn op(&self, kind: OpKind, id: u64, value_len: u32, ttl: u32, phase: u16) -> Op {
        Op {
            time_us: self.time_us as u64,
            kind,
            key: self.key(id),
            value_len,
            ttl,
            fill: false,
            phase,
            member: Key::NONE,
        }
    }

    /// Updates the live set for `op` (when tracked).
    fn track(&mut self, op: &Op) {
        let Some(live) = &mut self.live else { return };
        let id = op.key.id;
        let bytes = u64::from(op.key.len) + u64::from(op.value_len);
        match op.kind {
            OpKind::Set => live.put(id, bytes),
            OpKind::Add if live.get(id).is_none() => live.put(id, bytes),
            OpKind::Replace | OpKind::Cas if live.get(id).is_some() => live.put(id, bytes),
            OpKind::Append | OpKind::Prepend => {
                if let Some(old) = live.get(id) {
                    live.put(id, old + u64::from(op.value_len));
                }
            }
            OpKind::Delete => live.remove(id),
            _ => {}
        }
    }

    /// Before a write of `op` under `cap`: queue deletes of random live keys until it fits.
    /// A write that stores nothing (an add of a live key, a replace of a dead one) deletes
    /// nothing, and neither does a write too large for the cap on its own: it is emitted and
    /// live data passes the cap until later writes' deletes bring it back.
    fn make_room(&mut self, op: &Op, cap: u64) {
        let Some(live) = &mut self.live else { return };
        let id = op.key.id;
        let new = u64::from(op.key.len) + u64::from(op.value_len);
        let present = live.get(id);
        let stores = match op.kind {
            OpKind::Set => true,
            OpKind::Add => present.is_none(),
            OpKind::Replace | OpKind::Cas | OpKind::Append | OpKind::Prepend => present.is_some(),
            _ => false,
        };
        let alone = match op.kind {
            OpKind::Append | OpKind::Prepend => present.unwrap_or(0) + u64::from(op.value_len),
            _ => new,
        };
        if !stores || alone > cap {
            return;
        }
        // Victims are never `id`, so its bytes stay `old` throughout.
        let old = present.unwrap_or(0);
        loop {
            let after = match op.kind {
                OpKind::Append | OpKind::Prepend => live.bytes + u64::from(op.value_len),
                _ => live.bytes - old + new,
            };
            if after <= cap {
                return;
            }
            let Some(victim) = live.remove_random(&mut self.rng, Some(id)) else {
                return;
            };
            if victim == id {
                // `alone <= cap`, so some other key is live and can go.
                continue;
            }
            let d = Op {
                time_us: op.time_us,
                kind: OpKind::Delete,
                key: Key {
                    id: victim,
                    len: self.key_lengths.len(victim),
                },
                value_len: 0,
                ttl: 0,
                fill: false,
                phase: op.phase,
                member: Key::NONE,
            };
            self.pending.push_back(d);
        }
    }

    fn next_preload(&mut self) -> Option<Op> {
        let (keys, sampler) = self.preload.as_ref()?;
        if self.preloaded >= *keys {
            return None;
        }
        let id = self.preloaded;
        self.preloaded += 1;
        if let Some(agg) = &mut self.agg {
            let t = agg.type_of(id);
            if t != "string" {
                let sampler = sampler.clone();
                return self.preload_aggregate(t, id, &sampler);
            }
        }
        let value_len = sampler.sample(&mut self.rng, VALUE_MAX);
        let ttl = self
            .phases
            .first()
            .map_or(0, |p| p.ttl.sample(&mut self.rng));
        let op = self.op(OpKind::Set, id, value_len, ttl, 0);
        self.track(&op);
        Some(op)
    }

    /// Advances to the next phase; false when there is none.
    fn next_phase(&mut self) -> bool {
        self.current += 1;
        self.phase_ops = 0;
        self.phase_bytes = 0;
        self.deletes_left = None;
        self.current < self.phases.len()
    }

    fn phase_done(&self) -> bool {
        match self.phases[self.current].length {
            Length::Ops(n) => self.phase_ops >= n,
            Length::Bytes(b) => self.phase_bytes >= b,
            Length::DeleteFraction(_) => self.deletes_left == Some(0),
        }
    }

    /// Draws the next request (and queues any that follow it). None at the end.
    fn draw(&mut self) -> Option<Op> {
        loop {
            if self.current >= self.phases.len() {
                return None;
            }
            if self.phase_done() {
                if !self.next_phase() {
                    return None;
                }
                continue;
            }
            let Length::DeleteFraction(f) = self.phases[self.current].length else {
                break;
            };
            let phase_no = self.current as u16 + self.phase_offset;
            let live = self.live.as_mut().expect("delete phases track live keys");
            let left = *self
                .deletes_left
                .get_or_insert_with(|| (f * live.len() as f64).round() as u64);
            // An empty fraction (or no live keys) ends the phase at the top of the loop.
            if left == 0 {
                continue;
            }
            let victim = live
                .remove_random(&mut self.rng, None)
                .expect("a fraction of live keys remains");
            self.deletes_left = Some(left - 1);
            self.phase_ops += 1;
            return Some(self.op(OpKind::Delete, victim, 0, 0, phase_no));
        }
        let phase_no = self.current as u16 + self.phase_offset;

        let phase = &mut self.phases[self.current];
        let entry = phase.mix.sample(&mut self.rng);
        let rng = &mut self.rng;
        let (kind, id) = match entry {
            MixOp::Kind(k) => (k, phase.keys.choose(rng, self.keyspace, &mut self.seq)),
            MixOp::Insert => {
                let id = self.keyspace;
                self.keyspace += 1;
                (OpKind::Set, id)
            }
            MixOp::ReadModifyWrite => (
                OpKind::Get,
                phase.keys.choose(rng, self.keyspace, &mut self.seq),
            ),
        };
        if let Some(agg) = &mut self.agg {
            let id = agg.typed_id(kind, id);
            if kind.is_aggregate() {
                let (member, value_len) = agg.draw(kind, id, rng, &phase.values);
                let gap = phase.clock.gap(rng);
                let mut op = self.op(kind, id, value_len, 0, phase_no);
                op.member = member;
                self.time_us += gap;
                self.phase_ops += 1;
                self.phase_bytes += op.bytes_written();
                return Some(op);
            }
            return self.draw_string(entry, kind, id, phase_no);
        }
        self.draw_string(entry, kind, id, phase_no)
    }

    /// The rest of [`draw`](Self::draw) for a string op of `kind` on key `id`.
    fn draw_string(&mut self, entry: MixOp, kind: OpKind, id: u64, phase_no: u16) -> Option<Op> {
        let phase = &mut self.phases[self.current];
        let rng = &mut self.rng;
        let reads_one = matches!(kind, OpKind::Get | OpKind::Gets);
        let needs_value = kind.writes_value() || (reads_one && self.demand_fill);
        let value_len = if kind == OpKind::Scan {
            // YCSB E: scan lengths uniform in 1..=100.
            1 + rng.below(100) as u32
        } else if needs_value || entry == MixOp::ReadModifyWrite {
            phase.values.sample(rng, VALUE_MAX)
        } else {
            0
        };
        let ttl = if needs_value || kind == OpKind::Touch || entry == MixOp::ReadModifyWrite {
            phase.ttl.sample(rng)
        } else {
            0
        };
        let gap = phase.clock.gap(rng);
        let live_cap = phase.live_cap;
        let mut op = self.op(kind, id, value_len, ttl, phase_no);
        op.fill = reads_one && self.demand_fill;
        self.time_us += gap;
        self.phase_ops += 1;

        if entry == MixOp::ReadModifyWrite {
            // The get reads the key; the set writes it back with the drawn size.
            let mut set = op;
            set.kind = OpKind::Set;
            set.fill = false;
            op.fill = false;
            op.value_len = 0;
            op.ttl = 0;
            self.emit_write(set, live_cap);
            self.pending.push_front(op);
            return self.pending.pop_front();
        }
        if kind.writes_value() || kind == OpKind::Delete {
            if self.live.is_none() {
                // Nothing to track or make room for: skip the queue.
                self.phase_bytes += op.bytes_written();
                return Some(op);
            }
            self.emit_write(op, live_cap);
            return self.pending.pop_front();
        }
        Some(op)
    }

    /// The preload of aggregate key `id` of type `t`: the ops that fill it, and for YCSB's
    /// index, a ZADD of the key to the index sorted set.
    fn preload_aggregate(&mut self, t: &str, id: u64, values: &SizeSampler) -> Option<Op> {
        let agg = self.agg.as_mut().expect("aggregate preload");
        let fill = agg.fill(t, id, &mut self.rng, values);
        let index = agg.index;
        for (kind, member, value_len) in fill {
            let mut op = self.op(kind, id, value_len, 0, 0);
            op.member = member;
            self.pending.push_back(op);
        }
        if index {
            let key = self.key(id);
            let mut op = self.op(OpKind::Zadd, self.keyspace, (mix64(id) >> 32) as u32, 0, 0);
            op.member = key;
            self.pending.push_back(op);
        }
        self.pending.pop_front()
    }

    /// Queues a write (or delete) behind the deletes its live cap needs.
    fn emit_write(&mut self, op: Op, cap: Option<u64>) {
        if let Some(cap) = cap {
            if op.kind.writes_value() {
                self.make_room(&op, cap);
            }
        }
        self.track(&op);
        self.phase_bytes += op.bytes_written();
        self.pending.push_back(op);
    }
}

impl Iterator for Generator {
    type Item = Op;

    #[inline]
    fn next(&mut self) -> Option<Op> {
        if let Some(op) = self.pending.pop_front() {
            return Some(op);
        }
        if let Some(op) = self.next_preload() {
            return Some(op);
        }
        self.draw()
    }
}

/// See [`Generator::declared_ops`].
fn declare_ops(preload: Option<u64>, phases: &[Phase]) -> Option<u64> {
    let mut total = preload.unwrap_or(0);
    for p in phases {
        let Length::Ops(requests) = p.length else {
            return None;
        };
        if p.live_cap.is_some() {
            return None;
        }
        let entries = p.mix.items();
        let rmw = entries
            .iter()
            .filter(|&&e| e == MixOp::ReadModifyWrite)
            .count();
        let per_request = match rmw {
            0 => 1,
            n if n == entries.len() => 2,
            _ => return None,
        };
        total = total.checked_add(requests.checked_mul(per_request)?)?;
    }
    Some(total)
}

fn compile_mix(
    mix: &std::collections::BTreeMap<String, f64>,
    what: &str,
) -> Result<Weighted<MixOp>, WorkloadSpecError> {
    let mut items = Vec::new();
    for (name, &w) in mix {
        items.push((MixOp::parse(name)?, w));
    }
    Weighted::new(&items, what)
}
