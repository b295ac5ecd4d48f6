//! One run: replay a workload into a store and measure it.
//!
//! The replay loop applies each op to the store and does nothing else on the fast path. Every
//! `sample_every` ops, and at the end of every phase, it stops the clock, takes a sample (the
//! store's statistics, the allocator's, and the process's RSS) and starts the clock again, so
//! throughput excludes sampling. Latency is measured on one op in `latency_every`: timing
//! every op would cost more than the op (two clock reads are about 40 ns; a GET is about 100).
//!
//! How ops become commands: get/gets read (and on a miss with `fill` set the drawn value);
//! set, add and replace store; cas replays as replace (a cas of a present key succeeds when
//! nothing raced it, and a replay has no race); append, prepend, incr (+1), decr (-1),
//! delete and touch are themselves; a scan reads `value_len` keys from the op's key id up,
//! each the op's key length. Values are letters by default (`--values letters`), so Redis
//! never stores them as integers and incr/decr of a stored value fails (counted in
//! `command_errors`); `--values digits` makes them integers up to 19 bytes. Time is the
//! op's logical time in whole seconds. With the redis layout, the active expiry pass (Redis's
//! sampling cycle) runs every 100 ms of logical time, as Redis's default `hz 10` does; the
//! memcached and compact layouts reclaim expired items when an access or an eviction finds
//! them (memcached's LRU crawler is not modeled).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fraglab_allocators::{AllocSpec, Allocator};
use fraglab_engine::{
    with_store, ActiveExpire, CmdError, Layout, LayoutKind, Policy, SetOptions, Store, StoreConfig,
    WithStore,
};
use fraglab_reports::{Latency, Memory, PhaseResult, RunInfo, RunResult, Sample, Summary, SCHEMA};
use fraglab_workloads::{Key, Op, OpKind, OpStream, Workload};
use hdrhistogram::Histogram;

use crate::env::{env, rss_bytes};

/// About this many timeline samples per run when `--sample-every` is not given.
pub const SAMPLES_PER_RUN: u64 = 200;

/// Everything a run needs.
#[derive(Debug)]
pub struct RunSpec {
    /// The workload as given on the command line.
    pub workload_arg: String,
    /// The resolved workload.
    pub workload: Workload,
    /// The allocator.
    pub alloc: AllocSpec,
    /// The layout.
    pub layout: LayoutKind,
    /// The eviction policy.
    pub policy: Policy,
    /// The memory limit, bytes.
    pub memory: Option<u64>,
    /// The seed (workload and store).
    pub seed: u64,
    /// Ops between samples (default: the run's ops / 200).
    pub sample_every: Option<u64>,
    /// One op in this many is timed (0: none).
    pub latency_every: u64,
    /// The command line, for the record.
    pub command: Vec<String>,
    /// What value bytes look like.
    pub values: ValueBytes,
}

/// The bytes of values: the workload gives only their lengths.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueBytes {
    /// `ABC...Z` repeated: never an integer, so Redis stores every value as a string.
    #[default]
    Letters,
    /// `1234567890...` (a leading 1, never 0): values of up to 19 digits are integers, which
    /// Redis stores encoded (and shares below 10,000), and incr/decr succeed on them.
    Digits,
}

impl ValueBytes {
    /// The name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            ValueBytes::Letters => "letters",
            ValueBytes::Digits => "digits",
        }
    }

    /// Byte `i` of every value.
    #[inline]
    pub fn byte(self, i: usize) -> u8 {
        match self {
            ValueBytes::Letters => VALUE_PATTERN[i % 26],
            ValueBytes::Digits => DIGIT_PATTERN[i % 10],
        }
    }

    /// A value of `len` bytes.
    pub fn value(self, len: usize) -> Vec<u8> {
        (0..len).map(|i| self.byte(i)).collect()
    }
}

/// The default layout and eviction policy for an allocator: the system it models.
pub fn defaults_for(alloc: &AllocSpec) -> (LayoutKind, Policy) {
    match alloc {
        AllocSpec::Slab(_) => (LayoutKind::Memcached, Policy::SlabLru),
        AllocSpec::Zmalloc(_) => (LayoutKind::Redis, Policy::SampledLru),
        _ => (LayoutKind::Compact, Policy::SampledLru),
    }
}

/// Progress callbacks: ops done of total.
pub trait Progress {
    /// Called at every sample.
    fn update(&self, done: u64, total: u64);
}

impl Progress for () {
    fn update(&self, _: u64, _: u64) {}
}

/// Replays `spec` in this process. `stop` ends the replay early (Ctrl-C): the result is then
/// marked incomplete. Errors before any op ran are `Err`; a workload error part way (a
/// malformed trace record) ends the run with what was measured, marked incomplete.
pub fn run(
    spec: &RunSpec,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<RunResult, String> {
    let env = env();
    // One streaming pass to count the ops, for the sampling interval and progress.
    let mut total = 0u64;
    for op in spec.workload.stream(spec.seed).map_err(|e| e.to_string())? {
        op.map_err(|e| e.to_string())?;
        total += 1;
    }
    let sample_every = spec
        .sample_every
        .unwrap_or((total / SAMPLES_PER_RUN).max(1))
        .max(1);
    let stream = spec.workload.stream(spec.seed).map_err(|e| e.to_string())?;
    let config = StoreConfig {
        policy: spec.policy,
        seed: spec.seed,
        ..StoreConfig::default()
    };
    let replay = Replay {
        stream,
        total,
        sample_every,
        latency_every: spec.latency_every,
        stop,
        progress,
        redis_time: spec.layout == LayoutKind::Redis,
        values: spec.values,
    };
    let m = with_store(&spec.alloc, spec.layout, spec.memory, config, replay)
        .map_err(|e| e.to_string())?;
    let summary =
        Summary::from_timeline(&m.timeline, m.ops, m.elapsed.as_secs_f64(), m.rss_baseline);
    let mut library_versions = BTreeMap::new();
    if let Some(v) = m.library_version {
        library_versions.insert(spec.alloc.name().to_string(), v);
    }
    let incomplete_reason = m.incomplete.clone();
    Ok(RunResult {
        schema: SCHEMA,
        complete: incomplete_reason.is_none(),
        incomplete_reason,
        run: RunInfo {
            workload: spec.workload_arg.clone(),
            workload_parameters: spec.workload.parameters(),
            alloc: spec.alloc.to_string(),
            alloc_name: spec.alloc.name().to_string(),
            library_versions,
            layout: spec.layout.name().to_string(),
            eviction: spec.policy.name().to_string(),
            memory_limit: spec.memory,
            seed: spec.seed,
            ops: total,
            target: "engine".to_string(),
            sample_every,
            latency_every: spec.latency_every,
            command: spec.command.clone(),
            values: spec.values.name().to_string(),
            server: None,
        },
        env,
        summary,
        phases: m.phases,
        timeline: m.timeline,
        latency: m.latency,
        command_errors: m.command_errors,
        allocator_detail: m.allocator_detail,
    })
}

/// The timeline and the phases of a replay, as both runners (in process and against a real
/// server) record them: periodic samples, and at each phase change the phase's end sample,
/// its throughput and its peaks.
pub(crate) struct Recorder {
    names: Vec<String>,
    /// The samples so far.
    pub timeline: Vec<Sample>,
    /// The phases ended so far.
    pub phases: Vec<PhaseResult>,
    phase: u16,
    start_ops: u64,
    start_elapsed: Duration,
    peak: Memory,
}

impl Recorder {
    /// A recorder for a stream with these phase names, in phase 0.
    pub fn new(names: Vec<String>) -> Recorder {
        Recorder {
            names,
            timeline: Vec::with_capacity(SAMPLES_PER_RUN as usize + 16),
            phases: Vec::new(),
            phase: 0,
            start_ops: 0,
            start_elapsed: Duration::ZERO,
            peak: Memory::default(),
        }
    }

    /// The phase being replayed.
    pub fn phase(&self) -> u16 {
        self.phase
    }

    /// Records a periodic sample.
    pub fn sample(&mut self, s: Sample) {
        self.peak = self.peak.max(&s.memory);
        self.timeline.push(s);
    }

    /// Ends the current phase with its last sample `s` (taken after `s.op` ops and
    /// `elapsed` of replay) and starts phase `next`. A periodic sample at the same op count
    /// is replaced by this one.
    pub fn end_phase(&mut self, s: Sample, elapsed: Duration, next: u16) {
        self.peak = self.peak.max(&s.memory);
        let ops = s.op - self.start_ops;
        let secs = (elapsed - self.start_elapsed).as_secs_f64();
        let phase = self.phase;
        self.phases.push(PhaseResult {
            name: self
                .names
                .get(usize::from(phase))
                .cloned()
                .unwrap_or_else(|| format!("phase {phase}")),
            ops,
            elapsed_s: secs,
            ops_per_sec: fraglab_reports::per_sec(ops, secs),
            end: s.clone(),
            peak: self.peak,
        });
        if self.timeline.last().map(|t| t.op) == Some(s.op) {
            self.timeline.pop();
        }
        self.start_ops = s.op;
        self.start_elapsed = elapsed;
        self.timeline.push(s);
        self.peak = Memory::default();
        self.phase = next;
    }
}

/// What the replay measured.
struct Measured {
    ops: u64,
    elapsed: Duration,
    rss_baseline: u64,
    timeline: Vec<Sample>,
    phases: Vec<PhaseResult>,
    latency: BTreeMap<String, Latency>,
    command_errors: BTreeMap<String, u64>,
    allocator_detail: serde_json::Value,
    library_version: Option<String>,
    incomplete: Option<String>,
}

struct Replay<'a> {
    stream: OpStream,
    total: u64,
    sample_every: u64,
    latency_every: u64,
    stop: &'a AtomicBool,
    progress: &'a dyn Progress,
    redis_time: bool,
    values: ValueBytes,
}

/// Letters for values: never parsed as integers.
const VALUE_PATTERN: &[u8; 26] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Digits for values, starting with 1 so that no value has a leading zero.
const DIGIT_PATTERN: &[u8; 10] = b"1234567890";

fn grow_values(values: &mut Vec<u8>, len: usize, kind: ValueBytes) {
    let start = values.len();
    values.reserve(len - start);
    values.extend((start..len).map(|i| kind.byte(i)));
}

/// Names of command errors, by [`error_index`].
const ERROR_NAMES: [&str; 6] = [
    "key_too_long",
    "value_too_large",
    "not_an_integer",
    "overflow",
    "invalid_ttl",
    "out_of_memory",
];

fn error_index(e: &CmdError) -> usize {
    match e {
        CmdError::KeyTooLong { .. } => 0,
        CmdError::ValueTooLarge { .. } => 1,
        CmdError::NotAnInteger => 2,
        CmdError::Overflow => 3,
        CmdError::InvalidTtl(_) => 4,
        CmdError::OutOfMemory => 5,
    }
}

struct Buffers {
    key: Vec<u8>,
    values: Vec<u8>,
    kind: ValueBytes,
    out: Vec<u8>,
    errors: [u64; 6],
}

impl Buffers {
    #[inline]
    fn value(&mut self, len: u32) -> &[u8] {
        let len = len as usize;
        if len > self.values.len() {
            grow_values(&mut self.values, len, self.kind);
        }
        &self.values[..len]
    }

    #[inline]
    fn note<T>(&mut self, r: Result<T, CmdError>) {
        if let Err(e) = r {
            // Out-of-memory refusals are the store's own `oom_errors` counter.
            if e != CmdError::OutOfMemory {
                self.errors[error_index(&e)] += 1;
            }
        }
    }
}

/// Applies one op to the store.
#[inline]
fn apply<A: Allocator, L: Layout>(store: &mut Store<A, L>, op: &Op, b: &mut Buffers) {
    let now = op.time_us / 1_000_000;
    b.key.clear();
    op.key.write_to(&mut b.key);
    let opts = SetOptions {
        ttl: (op.ttl > 0).then_some(i64::from(op.ttl)),
        flags: 0,
    };
    match op.kind {
        OpKind::Get | OpKind::Gets => {
            // `get_into` appends: start from an empty buffer every time.
            b.out.clear();
            let hit = store.get_into(&b.key, now, &mut b.out).is_some();
            if !hit && op.fill {
                let key = std::mem::take(&mut b.key);
                let r = store.set(&key, b.value(op.value_len), opts, now);
                b.key = key;
                b.note(r);
            }
        }
        OpKind::Set => {
            let key = std::mem::take(&mut b.key);
            let r = store.set(&key, b.value(op.value_len), opts, now);
            b.key = key;
            b.note(r);
        }
        OpKind::Add | OpKind::Replace | OpKind::Cas => {
            let key = std::mem::take(&mut b.key);
            let v = b.value(op.value_len);
            let r = if op.kind == OpKind::Add {
                store.add(&key, v, opts, now)
            } else {
                store.replace(&key, v, opts, now)
            };
            b.key = key;
            b.note(r);
        }
        OpKind::Append | OpKind::Prepend => {
            let key = std::mem::take(&mut b.key);
            let v = b.value(op.value_len);
            let r = if op.kind == OpKind::Append {
                store.append(&key, v, now)
            } else {
                store.prepend(&key, v, now)
            };
            b.key = key;
            b.note(r);
        }
        OpKind::Incr | OpKind::Decr => {
            let delta = if op.kind == OpKind::Incr { 1 } else { -1 };
            let r = store.incr(&b.key, delta, now);
            b.note(r);
        }
        OpKind::Delete => {
            store.delete(&b.key, now);
        }
        OpKind::Touch => {
            let r = store.touch(&b.key, opts.ttl, now);
            b.note(r);
        }
        OpKind::Scan => {
            for i in 0..u64::from(op.value_len) {
                b.key.clear();
                Key {
                    id: op.key.id.wrapping_add(i),
                    len: op.key.len,
                }
                .write_to(&mut b.key);
                b.out.clear();
                store.get_into(&b.key, now, &mut b.out);
            }
        }
    }
}

fn sample<A: Allocator, L: Layout>(
    store: &Store<A, L>,
    op: u64,
    phase: u16,
    time_us: u64,
    elapsed: Duration,
) -> Sample {
    let st = store.stats();
    let c = st.counters;
    Sample {
        op,
        phase,
        time_s: time_us as f64 / 1e6,
        elapsed_s: elapsed.as_secs_f64(),
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
    }
}

/// The allocator's detail as JSON; for slab, memcached's `stats slabs` names.
fn allocator_detail(detail: &fraglab_allocators::Detail) -> serde_json::Value {
    use fraglab_allocators::Detail;
    match detail {
        Detail::Slab(s) => serde_json::json!({
            "allocator": "slab",
            "total_malloced": s.total_malloced,
            "limit_maxbytes": s.limit_maxbytes,
            "pool_pages": s.pool_pages,
            "pages_past_limit": s.pages_past_limit,
            "classes": s.classes.iter().filter(|c| c.total_pages > 0).map(|c| serde_json::json!({
                "class": c.class,
                "chunk_size": c.chunk_size,
                "perslab": c.chunks_per_page,
                "total_pages": c.total_pages,
                "used_chunks": c.used_chunks,
                "free_chunks": c.free_chunks,
                "mem_requested": c.mem_requested,
            })).collect::<Vec<_>>(),
        }),
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}

/// The latency figures of `count` ops, from the histogram of the timed ones.
pub(crate) fn latency(count: u64, h: &Histogram<u64>) -> Latency {
    Latency {
        count,
        timed: h.len(),
        mean_ns: if h.is_empty() { 0.0 } else { h.mean() },
        p50_ns: h.value_at_quantile(0.5),
        p90_ns: h.value_at_quantile(0.9),
        p99_ns: h.value_at_quantile(0.99),
        p999_ns: h.value_at_quantile(0.999),
        max_ns: h.max(),
    }
}

/// One latency histogram per op kind, in nanoseconds, 3 significant digits.
fn histograms() -> Vec<Histogram<u64>> {
    OpKind::ALL
        .iter()
        .map(|_| Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"))
        .collect()
}

impl WithStore for Replay<'_> {
    type Output = Measured;

    fn run<A: Allocator, L: Layout>(mut self, mut store: Store<A, L>) -> Measured {
        let rss_baseline = rss_bytes();
        let mut b = Buffers {
            key: Vec::with_capacity(256),
            values: Vec::new(),
            kind: self.values,
            out: Vec::new(),
            errors: [0; 6],
        };
        let mut hist = histograms();
        let mut counts = [0u64; OpKind::ALL.len()];
        let mut rec = Recorder::new(self.stream.phase_names());
        let mut elapsed = Duration::ZERO;
        let mut ops = 0u64;
        let mut last_time_us = 0u64;
        let mut next_expire_us = 100_000u64;
        let mut incomplete = None;
        let mut next_sample = self.sample_every;
        let lat_every = self.latency_every;
        let mut lat_countdown = lat_every;
        let mut clock = Instant::now();

        loop {
            let op = match self.stream.next() {
                None => break,
                Some(Ok(op)) => op,
                Some(Err(e)) => {
                    incomplete = Some(format!("workload error after {ops} ops: {e}"));
                    break;
                }
            };
            if op.phase != rec.phase() {
                elapsed += clock.elapsed();
                let s = sample(&store, ops, rec.phase(), last_time_us, elapsed);
                rec.end_phase(s, elapsed, op.phase);
                clock = Instant::now();
            }
            if self.redis_time && op.time_us >= next_expire_us {
                store.active_expire(op.time_us / 1_000_000, ActiveExpire::Sample);
                next_expire_us = (op.time_us / 100_000 + 1) * 100_000;
            }
            counts[op.kind as usize] += 1;
            if lat_every > 0 {
                lat_countdown -= 1;
                if lat_countdown == 0 {
                    lat_countdown = lat_every;
                    let t = Instant::now();
                    apply(&mut store, &op, &mut b);
                    let ns = t.elapsed().as_nanos() as u64;
                    hist[op.kind as usize].saturating_record(ns.max(1));
                } else {
                    apply(&mut store, &op, &mut b);
                }
            } else {
                apply(&mut store, &op, &mut b);
            }
            ops += 1;
            last_time_us = op.time_us;
            if ops == next_sample {
                elapsed += clock.elapsed();
                rec.sample(sample(&store, ops, rec.phase(), last_time_us, elapsed));
                self.progress.update(ops, self.total);
                next_sample += self.sample_every;
                if self.stop.load(Ordering::Relaxed) {
                    incomplete = Some(format!("interrupted after {ops} of {} ops", self.total));
                    break;
                }
                clock = Instant::now();
            } else if ops & 0xffff == 0 && self.stop.load(Ordering::Relaxed) {
                elapsed += clock.elapsed();
                incomplete = Some(format!("interrupted after {ops} of {} ops", self.total));
                clock = Instant::now();
                break;
            }
        }
        elapsed += clock.elapsed();
        if ops > 0 || rec.timeline.is_empty() {
            let s = sample(&store, ops, rec.phase(), last_time_us, elapsed);
            let phase = rec.phase();
            rec.end_phase(s, elapsed, phase);
        }
        self.progress.update(ops, self.total);
        let latency = OpKind::ALL
            .iter()
            .zip(hist.iter().zip(counts))
            .filter(|(_, (_, n))| *n > 0)
            .map(|(k, (h, n))| (k.name().to_string(), latency(n, h)))
            .collect();
        let command_errors = ERROR_NAMES
            .iter()
            .zip(b.errors)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (name.to_string(), n))
            .collect();
        let mem = store.mem_stats();
        Measured {
            ops,
            elapsed,
            rss_baseline,
            timeline: rec.timeline,
            phases: rec.phases,
            latency,
            command_errors,
            allocator_detail: allocator_detail(&mem.detail),
            library_version: store.allocator().library_version(),
            incomplete,
        }
    }
}
