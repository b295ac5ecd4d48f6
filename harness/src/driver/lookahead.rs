//! The driver's lookahead: ops taken from the [`Feed`] a batch at a time, so that the target
//! can prefetch what the next ones will touch ([`Target::prefetch`]) while earlier ones run.
//!
//! A lookup in a large store is two or three cache misses in a row (the index slot, the item,
//! its value and list neighbours), each waiting for the last. With a window of `W` ops, an op
//! gets its [`PrefetchStage::Index`] hint `W` ops before it runs, its [`PrefetchStage::Item`]
//! hint `2W/3` before and its [`PrefetchStage::Find`] hint `W/3` before: the misses of about
//! `W/3` lookups are in flight at once (group prefetching, as in MICA and Cuckoo++). Hints do
//! not cross a batch of the feed ([`super::feed::BATCH`] ops): the first ops of a batch run
//! without some of them.
//!
//! The ops still run one at a time, in the stream's order, and a hint changes nothing: every
//! counter, sample and eviction is the same as with a window of 1 (no hints), which the tests
//! check on every preset.

use fraglab_engine::PrefetchStage;
use fraglab_workloads::{Op, OpStream};

use super::feed::Feed;
use super::Target;

/// The default window (`fraglab run --batch`): the fastest on `etc` at full size here.
pub const DEFAULT_BATCH: usize = 16;

/// The largest window accepted.
pub const MAX_BATCH: usize = 256;

/// The ops of the current batch, the next to apply, and the hints given ahead of it.
pub(super) struct Lookahead {
    window: usize,
    feed: Feed,
    ops: Vec<Op>,
    memos: Vec<u64>,
    pos: usize,
    /// The stream ended after the current batch: `Some(None)` at its end, `Some(Some(why))`
    /// on a workload error.
    end: Option<Option<String>>,
}

impl Lookahead {
    /// A window of `window` ops (1: no hints) over `stream`, drawn on a thread of its own when
    /// `threaded`.
    pub(super) fn new(stream: OpStream, window: usize, threaded: bool) -> Self {
        Lookahead {
            window: window.clamp(1, MAX_BATCH),
            feed: Feed::new(stream, threaded),
            ops: Vec::new(),
            memos: Vec::new(),
            pos: 0,
            end: None,
        }
    }

    /// The feed, for the input read and the records skipped.
    pub(super) fn feed(&self) -> &Feed {
        &self.feed
    }

    /// The next op to apply, `None` at the end of the stream, or the workload error that
    /// comes next.
    #[inline]
    pub(super) fn next<T: Target>(&mut self, target: &mut T) -> Option<Result<Op, String>> {
        while self.pos == self.ops.len() {
            if let Some(end) = &self.end {
                return end.clone().map(Err);
            }
            self.end = self.feed.next(&mut self.ops);
            self.pos = 0;
            if self.window > 1 {
                self.memos.clear();
                self.memos.resize(self.ops.len(), 0);
                hint_first(target, &self.ops, &mut self.memos, self.window);
            }
        }
        let i = self.pos;
        if self.window > 1 {
            hint(target, &self.ops, &mut self.memos, i, self.window);
        }
        self.pos += 1;
        Some(Ok(self.ops[i]))
    }
}

/// The first hints of a batch: [`PrefetchStage::Index`] for its first `window` ops.
/// `memos` is as long as `ops`.
pub(crate) fn hint_first<T: Target>(target: &mut T, ops: &[Op], memos: &mut [u64], window: usize) {
    for i in 0..window.min(ops.len()) {
        target.prefetch(&ops[i], &mut memos[i], PrefetchStage::Index);
    }
}

/// The hints given before op `i` of `ops` runs, to the ops `window`, `2 window / 3` and
/// `window / 3` ahead of it (see the [module docs](self)). Never inlined, so that a profile
/// (`scripts/replay-profile`) shows the hints' stalls apart from the driver's own work.
#[inline(never)]
pub(crate) fn hint<T: Target>(
    target: &mut T,
    ops: &[Op],
    memos: &mut [u64],
    i: usize,
    window: usize,
) {
    for (at, stage) in [
        (i + window, PrefetchStage::Index),
        (i + window * 2 / 3, PrefetchStage::Item),
        (i + window / 3, PrefetchStage::Find),
    ] {
        if at < ops.len() {
            target.prefetch(&ops[at], &mut memos[at], stage);
        }
    }
}
