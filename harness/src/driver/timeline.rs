//! The timeline of a replay: when to sample (a fixed interval, or one that doubles as the
//! timeline fills), and the samples and phases recorded.

use std::time::Duration;

use fraglab_reports::{Memory, PhaseResult, Sample};

/// About this many timeline samples per run when `--sample-every` is not given.
pub const SAMPLES_PER_RUN: u64 = 200;

/// The first interval of adaptive sampling, in ops.
pub const FIRST_ADAPTIVE_INTERVAL: u64 = 64;

/// When to sample: a fixed interval, or an adaptive one that doubles as the timeline fills.
#[derive(Debug)]
pub(super) struct Schedule {
    pub every: u64,
    pub next: u64,
    pub adaptive: bool,
}

impl Schedule {
    pub(super) fn new(given: Option<u64>, declared: Option<u64>) -> Schedule {
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
pub(super) struct Recorder {
    names: Vec<String>,
    pub timeline: Vec<Sample>,
    /// Whether each sample of the timeline ends a phase (never thinned).
    phase_end: Vec<bool>,
    pub periodic: usize,
    pub phases: Vec<PhaseResult>,
    pub phase: u16,
    start_ops: u64,
    start_elapsed: Duration,
    peak: Memory,
}

impl Recorder {
    pub(super) fn new(names: Vec<String>) -> Recorder {
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

    pub(super) fn sample(&mut self, s: Sample) {
        self.peak = self.peak.max(&s.memory);
        self.timeline.push(s);
        self.phase_end.push(false);
        self.periodic += 1;
    }

    /// Drops every periodic sample not at a multiple of `every`.
    pub(super) fn thin(&mut self, every: u64) {
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
    pub(super) fn end_phase(&mut self, s: Sample, elapsed: Duration, next: u16) {
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
