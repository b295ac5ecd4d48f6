//! The one replay loop, for every target.
//!
//! A [`Target`] is whatever a workload is replayed into: the engine in this process
//! ([`crate::engine_target`]) or a real memcached or redis-server over its protocol
//! ([`crate::peer`]). It applies ops and reports its figures; everything else is here, once:
//! the stream (read once, never counted first), sampling, phases, latency, progress, Ctrl-C,
//! and the end of the run.
//!
//! # Sampling
//!
//! The driver stops the clock, asks the target for its figures (a [`Sample`]) and starts the
//! clock again, so throughput excludes sampling. It samples at every phase end and
//! periodically:
//!
//! - every `--sample-every` ops when it is given;
//! - else, when the workload declares its op count before streaming (a preset or spec whose
//!   phases are all measured in requests), every `declared / 200` ops;
//! - else (traces, phases measured in bytes written), adaptively: every
//!   [`FIRST_ADAPTIVE_INTERVAL`] ops at first, and whenever the timeline passes
//!   `2 x 200` periodic samples, every other periodic sample is dropped and the interval
//!   doubles. The timeline then always holds 200 to 400 evenly spaced samples (plus the phase
//!   ends), whatever the length of the stream. Peaks are taken over every sample read, thinned
//!   or not.
//!
//! # Ctrl-C and failures
//!
//! `stop` is read every [`STOP_CHECK_OPS`] ops and at every sample: the run ends after the op
//! in flight, takes a last sample and is marked incomplete. A workload error (a malformed
//! trace record) and a target failure (a real server that died) end it the same way, with the
//! reason; a target failure takes no last sample (there is nothing left to ask). A target
//! failure once `stop` is set is Ctrl-C ending a wait on a real server that was not answering
//! (the peers wait in slices that read the flag): the run is marked interrupted, without a
//! last sample, and the target says what it was waiting for.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fraglab_engine::PrefetchStage;
use fraglab_reports::{Latency, PhaseResult, Sample};
use fraglab_workloads::{Op, OpKind, OpStream};
use hdrhistogram::Histogram;

mod feed;
pub mod lookahead;
mod timeline;

use lookahead::Lookahead;
use timeline::{Recorder, Schedule};
pub use timeline::{FIRST_ADAPTIVE_INTERVAL, SAMPLES_PER_RUN};

/// Ops between two reads of the stop flag (besides every sample); a power of two, so the
/// check is a mask.
pub const STOP_CHECK_OPS: u64 = 128;

/// A failure of the target itself (a real server died or stopped answering): the run ends.
#[derive(Debug)]
pub struct TargetFailure(pub String);

/// What a target hands back when the run ends, besides its samples.
#[derive(Debug, Default)]
pub struct TargetEnd {
    /// Command errors by kind (`not_an_integer`, `unsupported`, ...).
    pub command_errors: BTreeMap<String, u64>,
    /// Latency the target measured itself (a real server's pipelined round trips).
    pub latency: BTreeMap<String, Latency>,
    /// The allocator's detail (typed for slab and Redis).
    pub allocator_detail: fraglab_reports::AllocatorDetail,
    /// Versions of the libraries measured.
    pub library_versions: BTreeMap<String, String>,
    /// The real server, if any.
    pub server: Option<fraglab_reports::ServerInfo>,
    /// Aggregates held at the end, by type and encoding.
    pub aggregates: fraglab_reports::Aggregates,
    /// What active defrag did (engine runs with `--defrag`).
    pub defrag: Option<fraglab_reports::DefragStats>,
    /// The forked snapshots (engine runs with `--snapshot-at`).
    pub snapshot: Option<fraglab_reports::SnapshotSection>,
    /// The append-only file (engine runs with `--aof`).
    pub aof: Option<fraglab_reports::AofSection>,
    /// A warm restart (engine runs with `--restart-at`).
    pub restart: Option<fraglab_reports::RestartSection>,
}

/// What a workload is replayed into.
pub trait Target {
    /// The resident set before any data (absolute, bytes).
    fn rss_baseline(&mut self) -> u64;

    /// Called before each op, outside its latency timing (the engine's periodic expiry pass).
    #[inline]
    fn tick(&mut self, _op: &Op) {}

    /// Whether the driver should read ops ahead and call [`Target::prefetch`] on them (see
    /// [`lookahead`]).
    fn prefetches(&self) -> bool {
        false
    }

    /// A hint ahead of applying `op` a few ops from now, at each [`PrefetchStage`] in turn;
    /// `memo` is the target's own word for this op (zero before the first stage). It must not
    /// change any result.
    #[inline]
    fn prefetch(&mut self, _op: &Op, _memo: &mut u64, _stage: PrefetchStage) {}

    /// Applies one op. A pipelining target may only queue it; it must then complete it by
    /// the next [`Target::drain`].
    fn apply(&mut self, op: &Op) -> Result<(), TargetFailure>;

    /// Completes every queued op (before a sample, at a phase end, at the end).
    fn drain(&mut self) -> Result<(), TargetFailure> {
        Ok(())
    }

    /// Whether the driver should time single ops (one in `latency_every`). A pipelining
    /// target times its round trips itself and returns them in [`TargetEnd::latency`].
    fn times_ops(&self) -> bool;

    /// The figures now: memory and counters. The driver sets the sample's place (`op`,
    /// `phase`, `time_s`, `elapsed_s`). `phase_end`: wait until figures a server refreshes
    /// periodically are current.
    fn read(&mut self, phase_end: bool) -> Result<Sample, TargetFailure>;

    /// Says why the run ended on `e` after `ops` ops (which process died, and how).
    fn failure(&mut self, e: &TargetFailure, ops: u64) -> String {
        format!("the target failed after {ops} ops: {}", e.0)
    }

    /// Ends the run.
    fn end(self) -> TargetEnd;
}

/// Where a replay is, for progress displays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Ops replayed.
    pub ops: u64,
    /// The ops the workload declares, when known before streaming.
    pub declared_ops: Option<u64>,
    /// Bytes of a trace read, and the trace's size when it is a regular file.
    pub input: Option<(u64, Option<u64>)>,
}

/// Progress callbacks, at every sample.
pub trait Progress {
    /// Where the replay is.
    fn update(&self, at: &Position);
}

impl Progress for () {
    fn update(&self, _: &Position) {}
}

/// How to drive.
pub struct DriveOptions<'a> {
    /// Ops between periodic samples; `None` for the default (see the module docs).
    pub sample_every: Option<u64>,
    /// One op in this many is timed (0: none), when the target times ops.
    pub latency_every: u64,
    /// Ops read ahead for targets that prefetch (1: none; see [`lookahead`]).
    pub batch: usize,
    /// Draw the ops on a producer thread (see `feed`); `false` draws them on the replay's
    /// thread, for allocators whose figures another thread would change.
    pub feed_thread: bool,
    /// Ctrl-C.
    pub stop: &'a AtomicBool,
    /// Progress display.
    pub progress: &'a dyn Progress,
}

impl std::fmt::Debug for DriveOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriveOptions")
            .field("sample_every", &self.sample_every)
            .field("latency_every", &self.latency_every)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// What a replay measured.
#[derive(Debug)]
pub struct Replayed {
    /// Ops replayed.
    pub ops: u64,
    /// The ops the workload declared, or the ops replayed when the stream ended.
    pub total_ops: u64,
    /// Replay time, sampling excluded.
    pub elapsed: Duration,
    /// The resident set before any data.
    pub rss_baseline: u64,
    /// Periodic samples and phase ends.
    pub timeline: Vec<Sample>,
    /// The phases.
    pub phases: Vec<PhaseResult>,
    /// Latency per op kind (and whatever the target measured itself).
    pub latency: BTreeMap<String, Latency>,
    /// The final interval between periodic samples.
    pub sample_every: u64,
    /// For a trace: bytes read, and its size when it is a regular file.
    pub input: Option<(u64, Option<u64>)>,
    /// Records a lenient trace reader skipped, and why the first few were bad.
    pub skipped: (u64, Vec<String>),
    /// Why the run is incomplete, if it is.
    pub incomplete: Option<String>,
    /// What the target handed back.
    pub end: TargetEnd,
}

/// The latency figures of `count` ops, from the histogram of the timed ones.
pub fn latency(count: u64, h: &Histogram<u64>) -> Latency {
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

/// One latency histogram per op kind (up to 60 s), and a count of ops per kind.
pub fn op_histograms() -> (Vec<Histogram<u64>>, [u64; OpKind::ALL.len()]) {
    let hist = OpKind::ALL
        .iter()
        .map(|_| histogram(60_000_000_000))
        .collect();
    (hist, [0; OpKind::ALL.len()])
}

/// The latency figures per op kind, of the kinds with ops.
pub fn op_latency(hist: &[Histogram<u64>], counts: &[u64]) -> BTreeMap<String, Latency> {
    OpKind::ALL
        .iter()
        .zip(hist.iter().zip(counts))
        .filter(|(_, (_, n))| **n > 0)
        .map(|(k, (h, n))| (k.name().to_string(), latency(*n, h)))
        .collect()
}

/// A latency histogram in nanoseconds up to `max_ns`, 3 significant digits.
pub fn histogram(max_ns: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max_ns, 3).expect("valid bounds")
}

/// The replay's own state: the clock and what is being counted.
struct Loop<'a, T: Target> {
    target: &'a mut T,
    rec: Recorder,
    elapsed: Duration,
    clock: Instant,
    ops: u64,
    last_time_us: u64,
}

impl<T: Target> Loop<'_, T> {
    /// Stops the clock, drains the target and reads it into a sample.
    fn sample(&mut self, phase_end: bool) -> Result<Sample, TargetFailure> {
        let drained = self.target.drain();
        self.elapsed += self.clock.elapsed();
        drained?;
        let s = self.target.read(phase_end)?;
        self.clock = Instant::now();
        Ok(Sample {
            op: self.ops,
            phase: self.rec.phase,
            time_s: self.last_time_us as f64 / 1e6,
            elapsed_s: self.elapsed.as_secs_f64(),
            ..s
        })
    }

    fn end_phase(&mut self, next: u16) -> Result<(), TargetFailure> {
        let s = self.sample(true)?;
        self.rec.end_phase(s, self.elapsed, next);
        Ok(())
    }
}

/// Why a replay loop stopped early.
enum Cut {
    Stopped,
    Workload(String),
    Target(TargetFailure),
}

/// Replays `stream` into `target`, then ends the target.
pub fn drive<T: Target>(mut target: T, stream: OpStream, opts: &DriveOptions<'_>) -> Replayed {
    let declared = stream.declared_ops();
    let mut schedule = Schedule::new(opts.sample_every, declared);
    let rss_baseline = target.rss_baseline();
    let times_ops = target.times_ops();
    let time_ops = times_ops && opts.latency_every > 0;
    let (mut hist, mut counts) = op_histograms();
    let mut lat_countdown = opts.latency_every;
    let mut lp = Loop {
        target: &mut target,
        rec: Recorder::new(stream.phase_names()),
        elapsed: Duration::ZERO,
        clock: Instant::now(),
        ops: 0,
        last_time_us: 0,
    };
    let position = |ops: u64, ahead: &Lookahead| Position {
        ops,
        declared_ops: declared,
        input: ahead.feed().input_progress(),
    };
    let window = if lp.target.prefetches() {
        opts.batch
    } else {
        1
    };
    let mut ahead = Lookahead::new(stream, window, opts.feed_thread);
    let cut: Result<(), Cut> = (|| loop {
        let op = match ahead.next(lp.target) {
            None => return Ok(()),
            Some(Ok(op)) => op,
            Some(Err(e)) => {
                return Err(Cut::Workload(format!(
                    "workload error after {} ops: {e}",
                    lp.ops
                )))
            }
        };
        if op.phase != lp.rec.phase {
            lp.end_phase(op.phase).map_err(Cut::Target)?;
        }
        lp.target.tick(&op);
        counts[op.kind as usize] += 1;
        if time_ops {
            lat_countdown -= 1;
            if lat_countdown == 0 {
                lat_countdown = opts.latency_every;
                let t = Instant::now();
                let applied = lp.target.apply(&op);
                let ns = t.elapsed().as_nanos() as u64;
                hist[op.kind as usize].saturating_record(ns.max(1));
                applied.map_err(Cut::Target)?;
            } else {
                lp.target.apply(&op).map_err(Cut::Target)?;
            }
        } else {
            lp.target.apply(&op).map_err(Cut::Target)?;
        }
        lp.ops += 1;
        lp.last_time_us = op.time_us;
        if lp.ops == schedule.next {
            let s = lp.sample(false).map_err(Cut::Target)?;
            lp.rec.sample(s);
            schedule.next += schedule.every;
            if schedule.adaptive && lp.rec.periodic > 2 * SAMPLES_PER_RUN as usize {
                schedule.every *= 2;
                lp.rec.thin(schedule.every);
                schedule.next = (lp.ops / schedule.every + 1) * schedule.every;
            }
            opts.progress.update(&position(lp.ops, &ahead));
            if opts.stop.load(Ordering::Relaxed) {
                return Err(Cut::Stopped);
            }
        } else if lp.ops % STOP_CHECK_OPS == 0 && opts.stop.load(Ordering::Relaxed) {
            return Err(Cut::Stopped);
        }
    })();
    let interrupted = |ops: u64| match declared {
        Some(total) => format!("interrupted after {ops} of {total} ops"),
        None => format!("interrupted after {ops} ops"),
    };
    // A target failure once Ctrl-C came is Ctrl-C ending a wait on a real server (see
    // `crate::peer`): the run was interrupted, and the target says what it was waiting for.
    let failure = |lp: &mut Loop<'_, T>, e: &TargetFailure| {
        let why = lp.target.failure(e, lp.ops);
        if opts.stop.load(Ordering::Relaxed) {
            format!("{}; {why}", interrupted(lp.ops))
        } else {
            why
        }
    };
    let mut incomplete = match &cut {
        Ok(()) => None,
        Err(Cut::Stopped) => Some(interrupted(lp.ops)),
        Err(Cut::Workload(why)) => Some(why.clone()),
        Err(Cut::Target(e)) => Some(failure(&mut lp, e)),
    };
    // The last sample, unless the target itself failed (there is nothing left to ask).
    let mut target_failed = matches!(cut, Err(Cut::Target(_)));
    if !target_failed && (lp.ops > 0 || lp.rec.timeline.is_empty()) {
        let phase = lp.rec.phase;
        if let Err(e) = lp.end_phase(phase) {
            incomplete = Some(failure(&mut lp, &e));
            target_failed = true;
        }
    } else {
        lp.elapsed += lp.clock.elapsed();
    }
    if let Some(why) = incomplete
        .as_deref()
        .filter(|_| target_failed && !opts.stop.load(Ordering::Relaxed))
    {
        crate::note!("error: {why}");
    }
    opts.progress.update(&position(lp.ops, &ahead));
    let Loop {
        rec, elapsed, ops, ..
    } = lp;
    let mut latency: BTreeMap<String, Latency> = if times_ops {
        op_latency(&hist, &counts)
    } else {
        BTreeMap::new()
    };
    let mut end = target.end();
    latency.append(&mut end.latency);
    Replayed {
        ops,
        total_ops: declared.unwrap_or(ops),
        elapsed,
        rss_baseline,
        timeline: rec.timeline,
        phases: rec.phases,
        latency,
        sample_every: schedule.every,
        input: ahead.feed().input_progress(),
        skipped: (
            ahead.feed().skipped(),
            ahead.feed().skipped_reasons().to_vec(),
        ),
        incomplete,
        end,
    }
}

#[cfg(test)]
mod tests;
