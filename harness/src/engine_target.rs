//! The engine in this process as a [`Target`]: how an op becomes an engine call.
//!
//! get/gets read (and on a miss with `fill` set store the drawn value); set, add and replace
//! store; cas replays as replace (a cas of a present key succeeds when nothing raced it, and a
//! replay has no race); append, prepend, incr (+1), decr (-1), delete and touch are
//! themselves; a scan reads `value_len` keys from the op's key id up, each the op's key
//! length. Values are [`ValueBytes`]: letters by default, so Redis never stores them as
//! integers and incr/decr of a stored value fails (counted in `command_errors`). Time is the
//! op's logical time in whole seconds. With the redis layout, the active expiry pass (Redis's
//! sampling cycle, `activeExpireCycle` in Redis's `expire.c`) runs every 100 ms of logical
//! time, as Redis's default `hz 10` does; with the segcache layout, Segcache's proactive expiry
//! drops every segment whose items have all expired, once per second of logical time; the
//! memcached and compact layouts reclaim expired items when an access or an eviction finds
//! them (memcached's LRU crawler is not modeled).
//!
//! With the slab automover on (`slab:automove=1|2`), the store's maintainer runs before every
//! op ([`Store::maintain`]): a page an eviction asked for moves at once (mode 2), and the
//! automover ticks once per second of the op's time (mode 1). A workload without time (every op
//! at time 0 so far) is given a clock for it: one second every `tick_ops` ops (the slab spec's
//! key, 100,000 by default), which its TTLs then count in too.

use fraglab_allocators::Allocator;
use fraglab_engine::{
    ActiveExpire, CmdError, Layout, LayoutKind, PrefetchStage, SetOptions, Store,
};
use fraglab_reports::{AggregateRow, Aggregates, Conversion, Memory, Sample};
use fraglab_workloads::{Key, Op, OpKind};

use crate::agg_ops::{agg_cmd, member_bytes};
use crate::driver::{Target, TargetEnd, TargetFailure};
use crate::env::rss_bytes;
use crate::values::{ValueBytes, Values};

/// Names of command errors, by [`error_index`]; the last is a `slabs reassign` the page mover
/// refused.
const ERROR_NAMES: [&str; 9] = [
    "key_too_long",
    "value_too_large",
    "not_an_integer",
    "overflow",
    "invalid_ttl",
    "out_of_memory",
    "wrong_type",
    "not_a_number",
    "slabs_reassign_refused",
];

fn error_index(e: &CmdError) -> usize {
    match e {
        CmdError::KeyTooLong { .. } => 0,
        CmdError::ValueTooLarge { .. } => 1,
        CmdError::NotAnInteger => 2,
        CmdError::Overflow => 3,
        CmdError::InvalidTtl(_) => 4,
        CmdError::OutOfMemory => 5,
        CmdError::WrongType => 6,
        CmdError::NotANumber => 7,
    }
}

/// A store being replayed into.
pub struct EngineTarget<A: Allocator, L: Layout> {
    store: Store<A, L>,
    key: Vec<u8>,
    values: Values,
    out: Vec<u8>,
    errors: [u64; 9],
    member: Vec<u8>,
    /// The key bytes of the op being prefetched (the driver's lookahead).
    ahead: Vec<u8>,
    /// The next boundary of logical time for the active expiry pass, its period and mode
    /// (redis layout: Redis's sampling every 100 ms; segcache: whole expired segments every
    /// second).
    next_expire_us: Option<u64>,
    expire: (ActiveExpire, u64),
    /// The allocator's name, for `library_versions`.
    alloc_name: String,
    /// With the slab automover on: ops per second of the clock given to an untimed workload.
    tick_ops: Option<u64>,
    /// Ops seen, and whether any had a time (then the ops' own time is the clock).
    ops_seen: u64,
    timed: bool,
    /// With the automover on, the current op's time in seconds (set by `tick`).
    clock: u64,
    /// Active defrag (`--defrag`): its settings and the next 100 ms boundary of logical time
    /// at which Redis's cron runs its cycle (`hz 10`).
    defrag: Option<(fraglab_engine::defrag::DefragConfig, u64)>,
    /// Snapshots and the append-only file (`--snapshot-at`, `--aof`).
    persist: Option<Box<crate::persist::Persist>>,
}

impl<A: Allocator, L: Layout> std::fmt::Debug for EngineTarget<A, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineTarget")
            .field("alloc_name", &self.alloc_name)
            .finish_non_exhaustive()
    }
}

impl<A: Allocator, L: Layout> EngineTarget<A, L> {
    /// Wraps `store` (over the allocator named `alloc_name`); `layout` decides whether
    /// Redis's active expiry pass runs.
    pub fn new(
        store: Store<A, L>,
        layout: LayoutKind,
        values: ValueBytes,
        alloc_name: &str,
    ) -> Self {
        let mut store = store;
        let tick_ops = (store.allocator().automove_mode() != 0).then(|| {
            store
                .allocator_mut()
                .page_mover()
                .map_or(100_000, |pm| pm.tick_ops())
        });
        EngineTarget {
            tick_ops,
            ops_seen: 0,
            timed: false,
            clock: 0,
            alloc_name: alloc_name.to_string(),
            store,
            key: Vec::with_capacity(256),
            values: Values::new(values),
            out: Vec::new(),
            errors: [0; 9],
            member: Vec::new(),
            ahead: Vec::with_capacity(256),
            next_expire_us: match layout {
                LayoutKind::Redis => Some(100_000),
                LayoutKind::Segcache => Some(1_000_000),
                _ => None,
            },
            expire: if layout == LayoutKind::Segcache {
                (ActiveExpire::Segments, 1_000_000)
            } else {
                (ActiveExpire::Sample, 100_000)
            },
            defrag: None,
            persist: None,
        }
    }

    /// Forks snapshots and keeps an append-only file as `persist` says.
    pub fn with_persist(mut self, persist: Option<crate::persist::Persist>) -> Self {
        self.persist = persist.map(Box::new);
        self
    }

    /// The store's time for `op`, seconds.
    #[inline]
    fn now(&self, op: &Op) -> u64 {
        if self.tick_ops.is_some() {
            self.clock
        } else {
            op.time_us / 1_000_000
        }
    }

    /// Runs Redis's active defrag cycle every 100 ms of logical time, with `cfg`
    /// (`Store::defrag_cycle`).
    pub fn with_defrag(mut self, cfg: Option<fraglab_engine::defrag::DefragConfig>) -> Self {
        self.defrag = cfg.map(|c| (c, 100_000));
        self
    }

    /// The `defrag` section of the result: the store's counters.
    fn defrag_stats(&self) -> Option<fraglab_reports::DefragStats> {
        self.defrag.as_ref()?;
        let d = self.store.stats().counters.defrag;
        Some(fraglab_reports::DefragStats {
            active_defrag_hits: d.active_defrag_hits,
            active_defrag_misses: d.active_defrag_misses,
            active_defrag_key_hits: d.active_defrag_key_hits,
            active_defrag_key_misses: d.active_defrag_key_misses,
            bytes_moved: d.bytes_moved,
            defrag_cycles: d.defrag_cycles,
            scans_completed: d.scans_completed,
            skipped_blocks: d.skipped_blocks,
        })
    }

    #[inline]
    fn note<T>(errors: &mut [u64; 9], r: Result<T, CmdError>) {
        if let Err(e) = r {
            // Out-of-memory refusals are the store's own `oom_errors` counter.
            if e != CmdError::OutOfMemory {
                errors[error_index(&e)] += 1;
            }
        }
    }
}

impl<A: Allocator, L: Layout> EngineTarget<A, L> {
    /// `slabs reassign SRC DST` between two ops ([`Store::slabs_reassign`]): one page of class
    /// `src` moves to class `dst` (0: the global pool), whole, at `now` (seconds of trace
    /// time: items expired by then are dropped, not rescued).
    pub fn slabs_reassign(&mut self, src: u32, dst: u32, now: u64) -> Result<(), String> {
        self.store
            .slabs_reassign(Some(src), dst, now)
            .map_err(|e| format!("slabs reassign {src} {dst}: {e}"))
    }
}

impl<A: Allocator, L: Layout> Target for EngineTarget<A, L> {
    fn rss_baseline(&mut self) -> u64 {
        rss_bytes()
    }

    #[inline]
    fn tick(&mut self, op: &Op) {
        if let Some(per) = self.tick_ops {
            self.timed |= op.time_us > 0;
            let now_us = if self.timed {
                op.time_us
            } else {
                // One second per `per` ops.
                (u128::from(self.ops_seen) * 1_000_000 / u128::from(per)) as u64
            };
            self.clock = now_us / 1_000_000;
            self.store.maintain_us(now_us);
            self.ops_seen += 1;
        }
        if let Some(next) = self.next_expire_us {
            if op.time_us >= next {
                let (mode, period) = self.expire;
                self.store.active_expire(op.time_us / 1_000_000, mode);
                self.next_expire_us = Some((op.time_us / period + 1) * period);
            }
        }
        if let Some((cfg, next)) = &mut self.defrag {
            if op.time_us >= *next {
                *next = (op.time_us / 100_000 + 1) * 100_000;
                let cfg = *cfg;
                self.store.defrag_cycle(&cfg);
            }
        }
        if self.persist.is_some() {
            let now = self.now(op);
            if let Some(p) = &mut self.persist {
                p.tick(&mut self.store, op, now);
            }
        }
    }

    fn prefetches(&self) -> bool {
        true
    }

    #[inline]
    fn prefetch(&mut self, op: &Op, memo: &mut u64, stage: PrefetchStage) {
        if matches!(op.kind, OpKind::Scan | OpKind::SlabsReassign) {
            return;
        }
        if stage == PrefetchStage::Index {
            self.ahead.clear();
            op.key.write_to(&mut self.ahead);
            *memo = fraglab_engine::hash_key(&self.ahead);
        }
        self.store.prefetch(*memo, stage);
    }

    #[inline]
    fn apply(&mut self, op: &Op) -> Result<(), TargetFailure> {
        let now = self.now(op);
        let mut filled = false;
        let store = &mut self.store;
        let errors = &mut self.errors;
        let key = &mut self.key;
        key.clear();
        op.key.write_to(key);
        let opts = SetOptions {
            ttl: (op.ttl > 0).then_some(i64::from(op.ttl)),
            flags: 0,
        };
        match op.kind {
            OpKind::Get | OpKind::Gets => {
                // `get_into` appends: start from an empty buffer every time.
                self.out.clear();
                let hit = store.get_into(key, now, &mut self.out).is_some();
                if !hit && op.fill {
                    let r = store.set(key, self.values.get(op.value_len), opts, now);
                    filled = r.is_ok();
                    Self::note(errors, r);
                }
            }
            OpKind::Set => {
                let r = store.set(key, self.values.get(op.value_len), opts, now);
                Self::note(errors, r);
            }
            OpKind::Add => {
                let r = store.add(key, self.values.get(op.value_len), opts, now);
                Self::note(errors, r);
            }
            OpKind::Replace | OpKind::Cas => {
                let r = store.replace(key, self.values.get(op.value_len), opts, now);
                Self::note(errors, r);
            }
            OpKind::Append => {
                let r = store.append(key, self.values.get(op.value_len), now);
                Self::note(errors, r);
            }
            OpKind::Prepend => {
                let r = store.prepend(key, self.values.get(op.value_len), now);
                Self::note(errors, r);
            }
            OpKind::Incr | OpKind::Decr => {
                let delta = if op.kind == OpKind::Incr { 1 } else { -1 };
                let r = store.incr(key, delta, now);
                Self::note(errors, r);
            }
            OpKind::Delete => {
                store.delete(key, now);
            }
            OpKind::Touch => {
                let r = store.touch(key, opts.ttl, now);
                Self::note(errors, r);
            }
            OpKind::SlabsReassign => {
                let src = (op.key.id != Op::ANY_CLASS).then(|| op.key.id.min(255) as u32);
                if store.slabs_reassign(src, op.value_len, now).is_err() {
                    errors[ERROR_NAMES.len() - 1] += 1;
                }
            }
            OpKind::Scan => {
                for i in 0..u64::from(op.value_len) {
                    key.clear();
                    Key {
                        id: op.key.id.wrapping_add(i),
                        len: op.key.len,
                    }
                    .write_to(key);
                    self.out.clear();
                    store.get_into(key, now, &mut self.out);
                }
            }
            _ => {
                member_bytes(op, &mut self.member);
                let value = if op.kind == OpKind::Hset {
                    self.values.get(op.value_len)
                } else {
                    &[]
                };
                let cmd = agg_cmd(op, &self.member, value).expect("an aggregate op");
                self.out.clear();
                let r = store.agg(key, &cmd, now, &mut self.out);
                Self::note(errors, r);
            }
        }
        if let Some(p) = &mut self.persist {
            let wrote = filled || crate::persist::writes(op);
            let value = if filled || op.kind.writes_value() || op.kind == OpKind::Hset {
                self.values.get(op.value_len)
            } else {
                &[]
            };
            p.applied(&mut self.store, op, value, wrote, now);
        }
        Ok(())
    }

    fn times_ops(&self) -> bool {
        true
    }

    fn read(&mut self, _phase_end: bool) -> Result<Sample, TargetFailure> {
        let st = self.store.stats();
        let c = st.counters;
        Ok(Sample {
            op: 0,
            phase: 0,
            time_s: 0.0,
            elapsed_s: 0.0,
            memory: Memory {
                items: st.items,
                payload_bytes: st.payload_bytes,
                requested_bytes: st.mem.requested_bytes,
                allocated_bytes: st.mem.allocated_bytes,
                footprint_bytes: st.mem.footprint_bytes,
                index_bytes: st.index_bytes,
                rss_bytes: rss_bytes(),
            },
            hits: c.hits,
            misses: c.misses,
            sets: c.sets,
            deletes: c.deletes,
            evictions: c.evictions + c.evictions_page,
            expired: c.expired_lazy + c.expired_active,
            oom_errors: c.oom_errors,
            class_pages: match (&st.mem.detail, self.tick_ops) {
                (fraglab_allocators::Detail::Slab(d), Some(_)) => Some(
                    std::iter::once([0, u64::from(d.pool_pages)])
                        .chain(
                            d.classes
                                .iter()
                                .filter(|c| c.total_pages > 0)
                                .map(|c| [u64::from(c.class), u64::from(c.total_pages)]),
                        )
                        .collect(),
                ),
                _ => None,
            },
        })
    }

    fn end(mut self) -> TargetEnd {
        let (snapshot, aof, restart) = match self.persist.take() {
            Some(p) => (*p).finish(&mut self.store),
            None => (None, None, None),
        };
        let mem = self.store.mem_stats();
        let mut end = TargetEnd {
            command_errors: ERROR_NAMES
                .iter()
                .zip(self.errors)
                .filter(|(_, n)| *n > 0)
                .map(|(name, n)| (name.to_string(), n))
                .collect(),
            allocator_detail: crate::detail::allocator_detail(&mem.detail),
            aggregates: aggregates(&self.store),
            defrag: self.defrag_stats(),
            snapshot,
            aof,
            restart,
            ..TargetEnd::default()
        };
        if let Some(v) = self.store.allocator().library_version() {
            end.library_versions.insert(self.alloc_name, v);
        }
        end
    }
}

/// The `aggregates` section: the store's book, with every aggregate key's bytes walked.
fn aggregates<A: Allocator, L: Layout>(store: &Store<A, L>) -> Aggregates {
    let book = store.agg_book();
    let bytes = store.agg_bytes();
    Aggregates {
        held: book
            .held()
            .iter()
            .map(|(&(t, enc), c)| {
                let (requested, allocated) = bytes.get(&(t, enc)).copied().unwrap_or((0, 0));
                AggregateRow {
                    agg_type: t.name().to_string(),
                    encoding: enc.name().to_string(),
                    keys: c.keys,
                    elements: c.elements,
                    requested_bytes: requested,
                    allocated_bytes: allocated,
                }
            })
            .collect(),
        conversions: book
            .conversions
            .iter()
            .map(|(&(t, from, to), &count)| Conversion {
                agg_type: t.name().to_string(),
                from: from.name().to_string(),
                to: to.name().to_string(),
                count,
            })
            .collect(),
        commands: book.commands,
    }
}
