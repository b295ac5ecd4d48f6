//! Where the driver's ops come from: the workload's stream, read in batches, on a thread of
//! its own unless the run measures glibc's process-wide figures (`spec::process_wide`: a
//! second thread's first malloc would add a glibc arena to them).
//!
//! Drawing an op costs about as much as applying one that hits the cache (a size from a
//! quantile table, a key from a popularity law, `exp` and `ln` for the arrivals), so the
//! replay leaves it to a producer thread: it fills batches of [`BATCH`] ops and hands them
//! over a bounded channel ([`AHEAD`] batches at most), and the buffers come back to it to be
//! refilled. The ops are the stream's, in its order, whichever side drew them: only the
//! timing changes. A trace is read the same way, its bytes read and records skipped travelling
//! with each batch.
//!
//! When the replay stops early (Ctrl-C, a failed target) the producer finds the channel closed
//! at its next batch and ends; it is never waited for. A replay of a slow pipe (`trace:-`
//! fed live) waits for a whole batch, or the end of the input, before it applies the batch's
//! ops, and Ctrl-C is read between batches there: a live trace lags by up to [`BATCH`]
//! records. What the run reports of the input (bytes read, records skipped) is what the
//! producer had read when it sent the last batch the replay took.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use fraglab_workloads::{Op, OpStream};

/// Ops per batch.
pub const BATCH: usize = 1024;
/// Batches the producer may run ahead of the replay.
pub const AHEAD: usize = 4;

/// One batch, and what the stream had read by its end.
struct Batch {
    ops: Vec<Op>,
    /// The stream ended after these ops: `Some(None)` at its end, `Some(Some(why))` on a
    /// workload error.
    end: Option<Option<String>>,
    input: Option<(u64, Option<u64>)>,
    skipped: u64,
    /// The skipped records' reasons, when the count changed with this batch.
    reasons: Option<Vec<String>>,
}

/// Fills `buf` (emptied first) with up to [`BATCH`] ops; returns how the stream ended, if it
/// did.
fn fill(stream: &mut OpStream, buf: &mut Vec<Op>) -> Option<Option<String>> {
    buf.clear();
    while buf.len() < BATCH {
        match stream.next() {
            None => return Some(None),
            Some(Err(e)) => return Some(Some(e.to_string())),
            Some(Ok(op)) => buf.push(op),
        }
    }
    None
}

/// Draws one batch from `stream` into `buf`, with the stream's position.
fn batch(stream: &mut OpStream, mut buf: Vec<Op>, skipped_before: u64) -> Batch {
    let end = fill(stream, &mut buf);
    let skipped = stream.skipped();
    Batch {
        ops: buf,
        end,
        input: stream.input_progress(),
        skipped,
        reasons: (skipped != skipped_before).then(|| stream.skipped_reasons().to_vec()),
    }
}

enum Source {
    /// Drawn on the replay's thread.
    Inline(OpStream),
    /// Drawn by the producer thread.
    Thread {
        rx: Receiver<Batch>,
        recycle: SyncSender<Vec<Op>>,
    },
}

/// The op source of one replay. See the [module docs](self).
pub(super) struct Feed {
    source: Source,
    input: Option<(u64, Option<u64>)>,
    skipped: u64,
    reasons: Vec<String>,
}

impl Feed {
    /// Reads `stream`, on a producer thread when `threaded` (else on the caller's).
    pub(super) fn new(stream: OpStream, threaded: bool) -> Self {
        let input = stream.input_progress();
        let source = if threaded {
            Self::spawn(stream)
        } else {
            Source::Inline(stream)
        };
        Feed {
            source,
            input,
            skipped: 0,
            reasons: Vec::new(),
        }
    }

    /// The producer thread, or the stream read inline if no thread can be made.
    fn spawn(stream: OpStream) -> Source {
        let (tx, rx) = sync_channel::<Batch>(AHEAD);
        let (recycle, back) = sync_channel::<Vec<Op>>(AHEAD + 2);
        // The stream goes to the thread once it runs, so that a failed spawn keeps it here.
        let (give, take) = sync_channel::<OpStream>(1);
        let spawned = std::thread::Builder::new()
            .name("fraglab-ops".into())
            .spawn(move || {
                let Ok(mut stream) = take.recv() else { return };
                let mut skipped = 0;
                loop {
                    let buf = back
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                    let b = batch(&mut stream, buf, skipped);
                    skipped = b.skipped;
                    let done = b.end.is_some();
                    // A closed channel: the replay stopped early.
                    if tx.send(b).is_err() || done {
                        return;
                    }
                }
            });
        match spawned {
            Ok(_) => match give.send(stream) {
                Ok(()) => Source::Thread { rx, recycle },
                Err(e) => Source::Inline(e.0),
            },
            Err(_) => Source::Inline(stream),
        }
    }

    /// The next batch into `buf` (whose old ops are dropped); how the stream ended, if it did
    /// after these ops.
    pub(super) fn next(&mut self, buf: &mut Vec<Op>) -> Option<Option<String>> {
        let b = match &mut self.source {
            Source::Inline(stream) => batch(stream, std::mem::take(buf), self.skipped),
            Source::Thread { rx, recycle } => match rx.recv() {
                Ok(b) => {
                    // The old buffer goes back to be refilled (or is dropped if the producer
                    // has enough).
                    let _ = recycle.try_send(std::mem::take(buf));
                    b
                }
                Err(_) => {
                    return Some(Some("the op producer thread ended unexpectedly".into()));
                }
            },
        };
        *buf = b.ops;
        self.input = b.input;
        self.skipped = b.skipped;
        if let Some(r) = b.reasons {
            self.reasons = r;
        }
        b.end
    }

    /// For a trace, its bytes read and size, as of the last batch taken.
    pub(super) fn input_progress(&self) -> Option<(u64, Option<u64>)> {
        self.input
    }

    /// Records skipped, as of the last batch taken.
    pub(super) fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Why the first few skipped records were bad.
    pub(super) fn skipped_reasons(&self) -> &[String] {
        &self.reasons
    }
}
