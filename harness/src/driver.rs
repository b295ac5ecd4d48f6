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
//! reason; a target failure takes no last sample (there is nothing left to ask).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fraglab_reports::{Latency, Memory, PhaseResult, Sample};
use fraglab_workloads::{Op, OpKind, OpStream};
use hdrhistogram::Histogram;

/// About this many timeline samples per run when `--sample-every` is not given.
pub const SAMPLES_PER_RUN: u64 = 200;

/// The first interval of adaptive sampling, in ops.
pub const FIRST_ADAPTIVE_INTERVAL: u64 = 64;

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
}

/// What a workload is replayed into.
pub trait Target {
    /// The resident set before any data (absolute, bytes).
    fn rss_baseline(&mut self) -> u64;

    /// Called before each op, outside its latency timing (the engine's periodic expiry pass).
    #[inline]
    fn tick(&mut self, _op: &Op) {}

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
    /// Why the run is incomplete, if it is.
    pub incomplete: Option<String>,
    /// What the target handed back.
    pub end: TargetEnd,
}

/// When to sample: a fixed interval, or an adaptive one that doubles as the timeline fills.
#[derive(Debug)]
struct Schedule {
    every: u64,
    next: u64,
    adaptive: bool,
}

impl Schedule {
    fn new(given: Option<u64>, declared: Option<u64>) -> Schedule {
        let (every, adaptive) = match (given, declared) {
            (Some(n), _) => (n.max(1), false),
            (None, Some(total)) => ((total / SAMPLES_PER_RUN).max(1), false),
            (None, None) => (FIRST_ADAPTIVE_INTERVAL, true),
        };
        Schedule {
            every,
            next: every,
            adaptive,
        }
    }
}

/// The timeline and the phases of a replay: periodic samples, and at each phase change the
/// phase's end sample, its throughput and its peaks.
struct Recorder {
    names: Vec<String>,
    timeline: Vec<Sample>,
    /// Whether each sample of the timeline ends a phase (never thinned).
    phase_end: Vec<bool>,
    periodic: usize,
    phases: Vec<PhaseResult>,
    phase: u16,
    start_ops: u64,
    start_elapsed: Duration,
    peak: Memory,
}

impl Recorder {
    fn new(names: Vec<String>) -> Recorder {
        Recorder {
            names,
            timeline: Vec::with_capacity(2 * SAMPLES_PER_RUN as usize + 16),
            phase_end: Vec::with_capacity(2 * SAMPLES_PER_RUN as usize + 16),
            periodic: 0,
            phases: Vec::new(),
            phase: 0,
            start_ops: 0,
            start_elapsed: Duration::ZERO,
            peak: Memory::default(),
        }
    }

    fn sample(&mut self, s: Sample) {
        self.peak = self.peak.max(&s.memory);
        self.timeline.push(s);
        self.phase_end.push(false);
        self.periodic += 1;
    }

    /// Drops every periodic sample not at a multiple of `every`.
    fn thin(&mut self, every: u64) {
        let mut keep = self.phase_end.iter();
        let mut ends = Vec::with_capacity(self.phase_end.len());
        self.timeline.retain(|s| {
            let end = *keep.next().unwrap_or(&false);
            let kept = end || s.op % every == 0;
            if kept {
                ends.push(end);
            }
            kept
        });
        self.periodic = ends.iter().filter(|e| !**e).count();
        self.phase_end = ends;
    }

    /// Ends the current phase with its last sample `s` (taken after `elapsed` of replay) and
    /// starts phase `next`. A periodic sample at the same op count is replaced by this one.
    fn end_phase(&mut self, s: Sample, elapsed: Duration, next: u16) {
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
        if self.timeline.last().map(|t| t.op) == Some(s.op) && self.phase_end.last() == Some(&false)
        {
            self.timeline.pop();
            self.phase_end.pop();
            self.periodic -= 1;
        }
        self.start_ops = s.op;
        self.start_elapsed = elapsed;
        self.timeline.push(s);
        self.phase_end.push(true);
        self.peak = Memory::default();
        self.phase = next;
    }
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
pub fn drive<T: Target>(mut target: T, mut stream: OpStream, opts: &DriveOptions<'_>) -> Replayed {
    let declared = stream.declared_ops();
    let mut schedule = Schedule::new(opts.sample_every, declared);
    let rss_baseline = target.rss_baseline();
    let times_ops = target.times_ops();
    let time_ops = times_ops && opts.latency_every > 0;
    let mut hist: Vec<Histogram<u64>> = OpKind::ALL
        .iter()
        .map(|_| histogram(60_000_000_000))
        .collect();
    let mut counts = [0u64; OpKind::ALL.len()];
    let mut lat_countdown = opts.latency_every;
    let mut lp = Loop {
        target: &mut target,
        rec: Recorder::new(stream.phase_names()),
        elapsed: Duration::ZERO,
        clock: Instant::now(),
        ops: 0,
        last_time_us: 0,
    };
    let position = |ops: u64, stream: &OpStream| Position {
        ops,
        declared_ops: declared,
        input: stream.input_progress(),
    };

    let cut: Result<(), Cut> = (|| loop {
        let op = match stream.next() {
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
            opts.progress.update(&position(lp.ops, &stream));
            if opts.stop.load(Ordering::Relaxed) {
                return Err(Cut::Stopped);
            }
        } else if lp.ops % STOP_CHECK_OPS == 0 && opts.stop.load(Ordering::Relaxed) {
            return Err(Cut::Stopped);
        }
    })();
    let mut incomplete = match &cut {
        Ok(()) => None,
        Err(Cut::Stopped) => Some(match declared {
            Some(total) => format!("interrupted after {} of {total} ops", lp.ops),
            None => format!("interrupted after {} ops", lp.ops),
        }),
        Err(Cut::Workload(why)) => Some(why.clone()),
        Err(Cut::Target(e)) => Some(lp.target.failure(e, lp.ops)),
    };
    // The last sample, unless the target itself failed (there is nothing left to ask).
    let mut target_failed = matches!(cut, Err(Cut::Target(_)));
    if !target_failed && (lp.ops > 0 || lp.rec.timeline.is_empty()) {
        let phase = lp.rec.phase;
        if let Err(e) = lp.end_phase(phase) {
            incomplete = Some(lp.target.failure(&e, lp.ops));
            target_failed = true;
        }
    } else {
        lp.elapsed += lp.clock.elapsed();
    }
    if let Some(why) = incomplete.as_deref().filter(|_| target_failed) {
        eprintln!("error: {why}");
    }
    opts.progress.update(&position(lp.ops, &stream));
    let Loop {
        rec, elapsed, ops, ..
    } = lp;
    let mut latency: BTreeMap<String, Latency> = if times_ops {
        OpKind::ALL
            .iter()
            .zip(hist.iter().zip(counts))
            .filter(|(_, (_, n))| *n > 0)
            .map(|(k, (h, n))| (k.name().to_string(), self::latency(n, h)))
            .collect()
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
        input: stream.input_progress(),
        incomplete,
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fraglab_workloads::trace::{TraceOptions, TraceReader, FRAGLAB_CSV_HEADER};

    /// A fraglab CSV stream of `n` sets, in phase 0 up to `phase_at` and phase 1 after, with a
    /// malformed record after `bad_after` ops if given.
    fn stream(n: u64, phase_at: u64, bad_after: Option<u64>) -> OpStream {
        let mut csv = format!("{FRAGLAB_CSV_HEADER}\n");
        for i in 0..n {
            if bad_after == Some(i) {
                csv += "x,set,1,8,10,0,0,0\n";
            }
            let phase = u16::from(i >= phase_at);
            csv += &format!("{i},set,{i},8,10,0,0,{phase}\n");
        }
        let r =
            TraceReader::from_reader("t.csv", std::io::Cursor::new(csv), &TraceOptions::default());
        OpStream::Trace(Box::new(r.unwrap()))
    }

    /// A pipelining target: ops queue until `drain`; it fails at op `fail_at`.
    #[derive(Default)]
    struct Queue {
        queued: u64,
        applied: u64,
        reads: u64,
        fail_at: Option<u64>,
    }

    impl Target for Queue {
        fn rss_baseline(&mut self) -> u64 {
            0
        }
        fn apply(&mut self, _: &Op) -> Result<(), TargetFailure> {
            if Some(self.applied + self.queued) == self.fail_at {
                return Err(TargetFailure("connection reset".into()));
            }
            self.queued += 1;
            Ok(())
        }
        fn drain(&mut self) -> Result<(), TargetFailure> {
            self.applied += std::mem::take(&mut self.queued);
            Ok(())
        }
        fn times_ops(&self) -> bool {
            false
        }
        fn read(&mut self, _: bool) -> Result<Sample, TargetFailure> {
            // A sample must never see a queued op.
            assert_eq!(self.queued, 0, "read before drain");
            self.reads += 1;
            Ok(Sample {
                sets: self.applied,
                ..Sample::empty(0)
            })
        }
        fn end(self) -> TargetEnd {
            TargetEnd::default()
        }
    }

    fn opts(stop: &AtomicBool) -> DriveOptions<'_> {
        DriveOptions {
            sample_every: None,
            latency_every: 0,
            stop,
            progress: &(),
        }
    }

    #[test]
    fn an_unknown_length_is_sampled_adaptively_and_phases_end_with_a_sample() {
        let stop = AtomicBool::new(false);
        let r = drive(
            Queue::default(),
            stream(100_000, 30_000, None),
            &opts(&stop),
        );
        assert!(r.incomplete.is_none());
        assert_eq!((r.ops, r.total_ops), (100_000, 100_000));
        let ends: Vec<u64> = r.phases.iter().map(|p| p.end.op).collect();
        assert_eq!(ends, [30_000, 100_000]);
        assert_eq!(r.phases[0].end.sets, 30_000, "drained before the phase end");
        // 100,000 / 400 = 250: the interval doubled from 64 to 256 and the timeline holds the
        // multiples of 256 and the phase ends.
        assert_eq!(r.sample_every, 256);
        for s in &r.timeline {
            assert!(s.op % 256 == 0 || ends.contains(&s.op), "{}", s.op);
            assert_eq!(s.sets, s.op);
        }
        assert_eq!(r.timeline.len(), 100_000 / 256 + 2);
    }

    #[test]
    fn a_target_failure_ends_the_run_with_the_samples_taken() {
        let stop = AtomicBool::new(false);
        let target = Queue {
            fail_at: Some(5_000),
            ..Queue::default()
        };
        let r = drive(target, stream(10_000, 10_000, None), &opts(&stop));
        let why = r.incomplete.unwrap();
        assert!(
            why.contains("after 5000 ops") && why.contains("connection reset"),
            "{why}"
        );
        assert_eq!(r.ops, 5_000);
        assert!(r.phases.is_empty(), "no last sample of a failed target");
        assert_eq!(
            r.timeline.last().unwrap().op,
            4_992,
            "the samples taken are kept"
        );
    }

    #[test]
    fn a_workload_error_and_ctrl_c_end_the_run_with_a_last_sample() {
        let stop = AtomicBool::new(false);
        let r = drive(
            Queue::default(),
            stream(1_000, 1_000, Some(700)),
            &opts(&stop),
        );
        let why = r.incomplete.unwrap();
        assert!(
            why.contains("after 700 ops") && why.contains("record 702"),
            "{why}"
        );
        assert_eq!(r.phases.last().unwrap().end.sets, 700);

        let stop = AtomicBool::new(true);
        let r = drive(Queue::default(), stream(1_000, 1_000, None), &opts(&stop));
        assert_eq!(r.incomplete.unwrap(), "interrupted after 64 ops");
        assert_eq!(r.phases.last().unwrap().end.op, 64);
    }

    #[test]
    fn a_given_interval_is_kept() {
        let stop = AtomicBool::new(false);
        let o = DriveOptions {
            sample_every: Some(1_000),
            ..opts(&stop)
        };
        let r = drive(Queue::default(), stream(50_000, 50_000, None), &o);
        assert_eq!(r.sample_every, 1_000);
        assert_eq!(r.timeline.len(), 50);
    }
}
