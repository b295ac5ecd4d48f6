//! The driver with a fake pipelining target.

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
    let r = TraceReader::from_reader("t.csv", std::io::Cursor::new(csv), &TraceOptions::default());
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
        batch: 1,
        feed_thread: true,
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
