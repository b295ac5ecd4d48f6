//! The driver's lookahead: ops read from the stream a few ahead of the one applied, so that
//! the target can prefetch what each will touch ([`Target::prefetch`]) while earlier ones run.
//!
//! A lookup in a large store is two or three cache misses in a row (the index slot, the item,
//! its list neighbours), each waiting for the last. With a window of `W` ops, an op gets its
//! [`PrefetchStage::Index`] hint as it enters the window, its [`PrefetchStage::Item`] hint
//! `2W/3` ops before it runs and its [`PrefetchStage::Find`] hint `W/3` before: the misses of
//! about `W/3` lookups are in flight at once (group prefetching, as in MICA and Cuckoo++).
//!
//! The ops still run one at a time, in the stream's order, and a hint changes nothing: every
//! counter, sample and eviction is the same as with a window of 1 (no lookahead), which the
//! tests check on every preset. Only where the stream is read changes: a trace's bytes read
//! and skipped records run up to `W` ops ahead of the op applied while the run lasts, and a
//! malformed record is reported when the replay reaches it.

use std::collections::VecDeque;

use fraglab_engine::PrefetchStage;
use fraglab_workloads::{Op, OpStream};

use super::Target;

/// The default window (`fraglab run --batch`): the fastest on `etc` at full size here.
pub const DEFAULT_BATCH: usize = 16;

/// The largest window accepted.
pub const MAX_BATCH: usize = 1024;

/// Ops read ahead of the one applied.
pub(super) struct Lookahead {
    window: usize,
    ring: VecDeque<(Op, u64)>,
    /// The stream ended: `Some(None)` at its end, `Some(Some(why))` on a workload error.
    end: Option<Option<String>>,
}

impl Lookahead {
    /// A window of `window` ops (1: read one op at a time, no hints).
    pub(super) fn new(window: usize) -> Self {
        let window = window.clamp(1, MAX_BATCH);
        Lookahead {
            window,
            ring: VecDeque::with_capacity(window),
            end: None,
        }
    }

    /// The next op to apply, `None` at the end of the stream, or the workload error that
    /// comes next.
    #[inline]
    pub(super) fn next<T: Target>(
        &mut self,
        stream: &mut OpStream,
        target: &mut T,
    ) -> Option<Result<Op, String>> {
        if self.window == 1 {
            return stream.next().map(|r| r.map_err(|e| e.to_string()));
        }
        while self.end.is_none() && self.ring.len() < self.window {
            match stream.next() {
                None => self.end = Some(None),
                Some(Err(e)) => self.end = Some(Some(e.to_string())),
                Some(Ok(op)) => {
                    let mut memo = 0;
                    target.prefetch(&op, &mut memo, PrefetchStage::Index);
                    self.ring.push_back((op, memo));
                }
            }
        }
        if let Some((op, memo)) = self.ring.get_mut(self.window * 2 / 3) {
            target.prefetch(op, memo, PrefetchStage::Item);
        }
        if let Some((op, memo)) = self.ring.get_mut(self.window / 3) {
            target.prefetch(op, memo, PrefetchStage::Find);
        }
        match self.ring.pop_front() {
            Some((op, _)) => Some(Ok(op)),
            None => self.end.clone().flatten().map(Err),
        }
    }
}
