//! Sharded replay (`fraglab run --threads N`), as memcached's worker threads share a cache but
//! here with nothing shared: the keyspace is split by key hash over `N` engines, each with its
//! own allocator, store and memory limit (the limit divided by `N`), each replaying its keys
//! on a thread of its own.
//!
//! The one driver ([`crate::driver`]) still reads the stream and cuts the phases and samples;
//! this module is its [`Target`]. It routes each op to its key's shard in batches of
//! [`SHARD_BATCH`] ops; a shard replays a batch in order, with the same prefetch hints as an
//! unsharded replay ([`crate::driver::lookahead`]), ticking its own engine (expiry, the slab
//! maintainer, defrag) on its own ops' times and timing one op in `latency_every` itself.
//! Before a sample every shard finishes what it was sent, so a sample is the sum of the shards
//! at the same op: memory figures and counters add up, the resident set is the process's, and
//! `class_pages` adds up per class.
//!
//! What differs from one engine: each shard evicts within its own share of the memory limit,
//! by its own policy's view of its keys, so evictions and hits are not those of one global
//! cache (the README states how much on `etc`). A workload without timestamps gives the slab
//! automover a clock of one second per `tick_ops` ops; a shard counts its own ops, so its
//! clock runs `N` times slower than one engine's. Only single-key ops can be split: a scan
//! (which reads a range of keys) or a `slabs reassign` (which names a class of one slab) ends a
//! run of two shards or more with a clear error. With one shard the replay is the unsharded
//! one, op for op: the same results.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use fraglab_allocators::Allocator;
use fraglab_engine::{hash_key, with_store, Layout, LayoutKind, Store, StoreConfig, WithStore};
use fraglab_reports::{AllocatorDetail, Sample};
use fraglab_workloads::{Op, OpKind};
use hdrhistogram::Histogram;

use crate::driver::lookahead::{hint, hint_first};
use crate::driver::{op_histograms, op_latency, Target, TargetEnd, TargetFailure};
use crate::engine_target::EngineTarget;
use crate::env::rss_bytes;
use crate::spec::RunSpec;
use crate::values::ValueBytes;

/// Ops sent to a shard at a time.
pub const SHARD_BATCH: usize = 4096;
/// Batches queued to a shard at most.
const QUEUED: usize = 8;
/// The most shards a run may have.
pub const MAX_SHARDS: usize = 64;

/// The shard of a key whose [`hash_key`] is `hash`, out of `n`: from the hash's bits 32..47,
/// which no shard's own index uses (the compact and memcached layouts place a key by the low
/// bits, and the compact table's tag is the top 16), so every shard keeps full tags.
pub fn shard_of(hash: u64, n: usize) -> usize {
    ((((hash >> 32) & 0xFFFF) * n as u64) >> 16) as usize
}

enum ToShard {
    Ops(Vec<Op>),
    /// Reply `Synced` once every op sent before is applied.
    Sync,
    Read,
    End,
}

enum FromShard {
    Ready(Result<(), String>),
    Synced,
    Sample(Box<Sample>),
    End(Box<ShardEnd>),
    Failed(String),
}

/// What a shard hands back at the end.
struct ShardEnd {
    end: TargetEnd,
    hist: Vec<Histogram<u64>>,
    counts: [u64; OpKind::ALL.len()],
}

/// One shard's engine, on its thread.
struct Worker {
    rx: Receiver<ToShard>,
    tx: Sender<FromShard>,
    /// Applied batches go back here to be refilled (fresh buffers each time would make the
    /// allocator fault new pages in).
    spare: SyncSender<Vec<Op>>,
    layout: LayoutKind,
    values: ValueBytes,
    alloc_name: String,
    defrag: Option<fraglab_engine::defrag::DefragConfig>,
    window: usize,
    latency_every: u64,
}

impl WithStore for Worker {
    type Output = ();

    fn run<A: Allocator, L: Layout>(self, store: Store<A, L>) {
        let mut t = EngineTarget::new(store, self.layout, self.values, &self.alloc_name)
            .with_defrag(self.defrag);
        let _ = self.tx.send(FromShard::Ready(Ok(())));
        let (mut hist, mut counts) = op_histograms();
        let mut countdown = self.latency_every;
        let mut memos = Vec::new();
        while let Ok(msg) = self.rx.recv() {
            let reply = match msg {
                ToShard::Ops(mut ops) => {
                    memos.clear();
                    memos.resize(ops.len(), 0);
                    if self.window > 1 {
                        hint_first(&mut t, &ops, &mut memos, self.window);
                    }
                    for (i, op) in ops.iter().enumerate() {
                        if self.window > 1 {
                            hint(&mut t, &ops, &mut memos, i, self.window);
                        }
                        t.tick(op);
                        counts[op.kind as usize] += 1;
                        let timed = self.latency_every > 0 && {
                            countdown -= 1;
                            countdown == 0
                        };
                        let applied = if timed {
                            countdown = self.latency_every;
                            let start = Instant::now();
                            let r = t.apply(op);
                            let ns = start.elapsed().as_nanos() as u64;
                            hist[op.kind as usize].saturating_record(ns.max(1));
                            r
                        } else {
                            t.apply(op)
                        };
                        if let Err(e) = applied {
                            let _ = self.tx.send(FromShard::Failed(e.0));
                            return;
                        }
                    }
                    ops.clear();
                    let _ = self.spare.try_send(ops);
                    continue;
                }
                ToShard::Sync => FromShard::Synced,
                ToShard::Read => match t.read(false) {
                    Ok(s) => FromShard::Sample(Box::new(s)),
                    Err(e) => FromShard::Failed(e.0),
                },
                ToShard::End => {
                    let _ = self.tx.send(FromShard::End(Box::new(ShardEnd {
                        end: t.end(),
                        hist,
                        counts,
                    })));
                    return;
                }
            };
            if self.tx.send(reply).is_err() {
                return;
            }
        }
    }
}

struct Shard {
    tx: SyncSender<ToShard>,
    rx: Receiver<FromShard>,
    spare: Receiver<Vec<Op>>,
    thread: Option<JoinHandle<()>>,
}

impl Shard {
    fn send(&self, i: usize, msg: ToShard) -> Result<(), TargetFailure> {
        self.tx.send(msg).map_err(|_| self.stopped(i))
    }

    /// Why shard `i` stopped: the failure it sent, if any.
    fn stopped(&self, i: usize) -> TargetFailure {
        while let Ok(m) = self.rx.try_recv() {
            if let FromShard::Failed(why) = m {
                return TargetFailure(format!("shard {i}: {why}"));
            }
        }
        TargetFailure(format!("shard {i} stopped (its thread ended)"))
    }

    fn recv(&self, i: usize) -> Result<FromShard, TargetFailure> {
        match self.rx.recv() {
            Ok(FromShard::Failed(why)) => Err(TargetFailure(format!("shard {i}: {why}"))),
            Ok(m) => Ok(m),
            Err(_) => Err(TargetFailure(format!(
                "shard {i} stopped (its thread ended)"
            ))),
        }
    }
}

/// The sharded engine: the driver's target for `--threads N`. See the [module docs](self).
pub struct Sharded {
    shards: Vec<Shard>,
    pending: Vec<Vec<Op>>,
    key: Vec<u8>,
    latency_every: u64,
}

impl std::fmt::Debug for Sharded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Sharded {
    /// Builds `n` engines for `spec` (each with `spec.memory / n`), one thread each; the
    /// error of the first that cannot start.
    pub fn start(spec: &RunSpec, n: usize) -> Result<Self, String> {
        let n = n.clamp(1, MAX_SHARDS);
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let (to_tx, to_rx) = sync_channel(QUEUED);
            let (from_tx, from_rx) = channel();
            let (spare_tx, spare_rx) = sync_channel(QUEUED + 2);
            let worker = Worker {
                rx: to_rx,
                tx: from_tx.clone(),
                spare: spare_tx,
                layout: spec.layout,
                values: spec.values,
                alloc_name: spec.alloc.name().to_string(),
                defrag: spec.defrag,
                window: spec.batch,
                latency_every: spec.latency_every,
            };
            let alloc = spec.alloc.clone();
            let (layout, memory) = (spec.layout, spec.memory.map(|m| m / n as u64));
            let config = StoreConfig {
                policy: spec.policy,
                seed: spec.seed.wrapping_add(i as u64),
                agg: spec.agg,
                ..StoreConfig::default()
            };
            let thread = std::thread::Builder::new()
                .name(format!("fraglab-shard-{i}"))
                .spawn(move || {
                    if let Err(e) = with_store(&alloc, layout, memory, config, worker) {
                        let _ = from_tx.send(FromShard::Ready(Err(e.to_string())));
                    }
                })
                .map_err(|e| format!("cannot start shard {i}'s thread: {e}"))?;
            let shard = Shard {
                tx: to_tx,
                rx: from_rx,
                spare: spare_rx,
                thread: Some(thread),
            };
            match shard.rx.recv() {
                Ok(FromShard::Ready(Ok(()))) => shards.push(shard),
                Ok(FromShard::Ready(Err(e))) => return Err(e),
                _ => return Err(format!("shard {i} did not start")),
            }
        }
        Ok(Sharded {
            pending: (0..n).map(|_| Vec::with_capacity(SHARD_BATCH)).collect(),
            shards,
            key: Vec::with_capacity(256),
            latency_every: spec.latency_every,
        })
    }

    fn flush(&mut self, i: usize) -> Result<(), TargetFailure> {
        let fresh = self.shards[i]
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(SHARD_BATCH));
        let ops = std::mem::replace(&mut self.pending[i], fresh);
        self.shards[i].send(i, ToShard::Ops(ops))
    }
}

impl Target for Sharded {
    fn rss_baseline(&mut self) -> u64 {
        rss_bytes()
    }

    #[inline]
    fn apply(&mut self, op: &Op) -> Result<(), TargetFailure> {
        if self.shards.len() > 1 && matches!(op.kind, OpKind::Scan | OpKind::SlabsReassign) {
            // The ops before it are replayed, so that the result covers every op counted.
            self.drain()?;
            return Err(TargetFailure(format!(
                "a sharded run (--threads) replays single-key ops only, and this workload has \
                 a `{}`; run it without --threads",
                op.kind.name()
            )));
        }
        let i = if self.shards.len() == 1 {
            0
        } else {
            self.key.clear();
            op.key.write_to(&mut self.key);
            shard_of(hash_key(&self.key), self.shards.len())
        };
        self.pending[i].push(*op);
        if self.pending[i].len() == SHARD_BATCH {
            self.flush(i)?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), TargetFailure> {
        for i in 0..self.shards.len() {
            if !self.pending[i].is_empty() {
                self.flush(i)?;
            }
            self.shards[i].send(i, ToShard::Sync)?;
        }
        for (i, s) in self.shards.iter().enumerate() {
            s.recv(i)?;
        }
        Ok(())
    }

    fn times_ops(&self) -> bool {
        // The shards time their own ops (the driver would time a push onto a batch).
        false
    }

    fn read(&mut self, _phase_end: bool) -> Result<Sample, TargetFailure> {
        for (i, s) in self.shards.iter().enumerate() {
            s.send(i, ToShard::Read)?;
        }
        let mut total: Option<Sample> = None;
        for (i, s) in self.shards.iter().enumerate() {
            let FromShard::Sample(x) = s.recv(i)? else {
                return Err(TargetFailure(format!("shard {i} answered out of turn")));
            };
            total = Some(match total {
                None => *x,
                Some(t) => add_samples(t, &x),
            });
        }
        Ok(total.unwrap_or_else(|| Sample::empty(0)))
    }

    fn end(mut self) -> TargetEnd {
        let mut ends = Vec::new();
        for (i, s) in self.shards.iter().enumerate() {
            if s.send(i, ToShard::End).is_ok() {
                if let Ok(FromShard::End(e)) = s.recv(i) {
                    ends.push(*e);
                }
            }
        }
        for s in &mut self.shards {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
        merge_ends(ends, self.shards.len(), self.latency_every > 0)
    }
}

/// Two shards' samples at the same op: figures added, the process's resident set kept.
fn add_samples(mut t: Sample, x: &Sample) -> Sample {
    let (m, o) = (&mut t.memory, &x.memory);
    m.items += o.items;
    m.payload_bytes += o.payload_bytes;
    m.requested_bytes += o.requested_bytes;
    m.allocated_bytes += o.allocated_bytes;
    m.footprint_bytes += o.footprint_bytes;
    m.index_bytes += o.index_bytes;
    m.rss_bytes = m.rss_bytes.max(o.rss_bytes);
    t.hits += x.hits;
    t.misses += x.misses;
    t.sets += x.sets;
    t.deletes += x.deletes;
    t.evictions += x.evictions;
    t.expired += x.expired;
    t.oom_errors += x.oom_errors;
    if let (Some(a), Some(b)) = (&mut t.class_pages, &x.class_pages) {
        let mut by_class: BTreeMap<u64, u64> = a.iter().map(|&[c, p]| (c, p)).collect();
        for &[c, p] in b {
            *by_class.entry(c).or_default() += p;
        }
        *a = by_class.into_iter().map(|(c, p)| [c, p]).collect();
    }
    t
}

/// The shards' ends as one: counts and latency histograms added, aggregates and defrag
/// counters added, each shard's allocator detail kept (one shard's as is).
fn merge_ends(ends: Vec<ShardEnd>, shards: usize, timed: bool) -> TargetEnd {
    let (mut hist, mut counts) = op_histograms();
    let mut out = TargetEnd::default();
    let mut details = Vec::new();
    for e in ends {
        for (h, x) in hist.iter_mut().zip(&e.hist) {
            let _ = h.add(x);
        }
        for (c, x) in counts.iter_mut().zip(e.counts) {
            *c += x;
        }
        for (k, v) in e.end.command_errors {
            *out.command_errors.entry(k).or_default() += v;
        }
        out.library_versions.extend(e.end.library_versions);
        add_aggregates(&mut out.aggregates, e.end.aggregates);
        out.defrag = match (out.defrag, e.end.defrag) {
            (Some(a), Some(b)) => Some(add_defrag(a, b)),
            (a, b) => a.or(b),
        };
        details.push(e.end.allocator_detail);
    }
    out.allocator_detail = if shards == 1 {
        details.pop().unwrap_or_default()
    } else {
        AllocatorDetail::Other(serde_json::json!({ "shards": details }))
    };
    if timed {
        out.latency = op_latency(&hist, &counts);
    }
    out
}

fn add_aggregates(a: &mut fraglab_reports::Aggregates, b: fraglab_reports::Aggregates) {
    a.commands += b.commands;
    for r in b.held {
        match a
            .held
            .iter_mut()
            .find(|x| x.agg_type == r.agg_type && x.encoding == r.encoding)
        {
            Some(x) => {
                x.keys += r.keys;
                x.elements += r.elements;
                x.requested_bytes += r.requested_bytes;
                x.allocated_bytes += r.allocated_bytes;
            }
            None => a.held.push(r),
        }
    }
    for c in b.conversions {
        match a
            .conversions
            .iter_mut()
            .find(|x| x.agg_type == c.agg_type && x.from == c.from && x.to == c.to)
        {
            Some(x) => x.count += c.count,
            None => a.conversions.push(c),
        }
    }
}

fn add_defrag(
    a: fraglab_reports::DefragStats,
    b: fraglab_reports::DefragStats,
) -> fraglab_reports::DefragStats {
    fraglab_reports::DefragStats {
        active_defrag_hits: a.active_defrag_hits + b.active_defrag_hits,
        active_defrag_misses: a.active_defrag_misses + b.active_defrag_misses,
        active_defrag_key_hits: a.active_defrag_key_hits + b.active_defrag_key_hits,
        active_defrag_key_misses: a.active_defrag_key_misses + b.active_defrag_key_misses,
        bytes_moved: a.bytes_moved + b.bytes_moved,
        defrag_cycles: a.defrag_cycles + b.defrag_cycles,
        scans_completed: a.scans_completed + b.scans_completed,
        skipped_blocks: a.skipped_blocks + b.skipped_blocks,
    }
}
