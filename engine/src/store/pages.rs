//! Moving slab pages between classes, as memcached 1.6.18 does while it runs: the page mover
//! (`slab_rebalance_move` in memcached's `slabs.c`), the automover's once-a-second tick
//! (`slab_automove=1`, `lru_maintainer_thread` in `items.c`), a page request on every eviction
//! (`slab_automove=2`, `lru_pull_tail`), and `slabs reassign SRC DST` by hand.
//!
//! The allocator ([`fraglab_allocators::PageMover`], the slab) picks the page and copies chunks; the store, which
//! alone knows which key a block holds, drops expired items, points its index and LRU at each
//! rescued item, and evicts the items the class has no free chunk for. A move runs whole
//! between two commands, where memcached's mover thread runs beside them.
//!
//! The model's per-class LRU has no HOT/WARM/COLD segments: the automover reads the tail age
//! of the class's one LRU where memcached reads the COLD LRU's, and every eviction from it
//! counts as a COLD eviction.

use fraglab_allocators::slab::{ClassActivity, MoveError};
use fraglab_allocators::{Allocator, Relocate};

use super::compaction::Mover;
use super::Store;
use crate::layout::Layout;

/// The most automover runs in one second: after a reclaim to the global pool memcached runs
/// the automover again after 1 ms instead of waiting for the next second.
const RECLAIM_RUNS_PER_TICK: u64 = 1000;
/// The LRU maintainer's sleep after a reclaim (`to_sleep = 1000` in `items.c`), microseconds.
const RECLAIM_RERUN_US: u64 = 1000;

/// Why `slabs reassign` did not move a page (memcached's answers in the comments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassignError {
    /// The allocator has no pages that change class, or the layout cannot follow a moved item.
    #[error("page moves need the slab allocator and the memcached or compact layout")]
    Unsupported,
    /// The page mover refused (`BADCLASS`, `NOSPARE`, `SAME`, ...).
    #[error(transparent)]
    Move(#[from] MoveError),
    /// `slabs reassign -1 DST` found no class with a page to spare.
    #[error("no class has a page to spare for class {0}")]
    NoSource(u32),
}

/// The automover's side of the store: per-class counters and the maintainer's clock.
#[derive(Debug, Clone, Default)]
pub(super) struct Maintainer {
    /// Evictions per class index (`itemstats[COLD_LRU].evicted`).
    evicted: Vec<u64>,
    /// Out-of-memory refusals per class index (`itemstats[HOT_LRU].outofmemory`).
    outofmemory: Vec<u64>,
    /// A page asked for by an eviction (mode 2), to move before the next command.
    pending: Option<u32>,
    /// The second of the last tick.
    last_tick: Option<u64>,
    mode: u8,
    /// Until when (trace microseconds) the mover is busy with the last automatic move.
    busy_until_us: u64,
    /// How long a move keeps it busy.
    move_us: u64,
}

impl Maintainer {
    pub(super) fn new(mode: u8, classes: usize, move_us: u64) -> Self {
        Maintainer {
            evicted: vec![0; classes],
            outofmemory: vec![0; classes],
            mode,
            move_us,
            ..Maintainer::default()
        }
    }
}

impl<A: Allocator, L: Layout> Store<A, L> {
    /// Counts an eviction in class `class` (1-based) for the automover; with mode 2 it asks
    /// for a page for that class, unless a request is already waiting (memcached's
    /// `slabs_reassign` answers `RUNNING` while a move is under way).
    pub(super) fn note_class_eviction(&mut self, class: Option<u32>) {
        let (Some(m), Some(class)) = (self.maintainer.as_mut(), class) else {
            return;
        };
        if let Some(n) = m.evicted.get_mut(class as usize - 1) {
            *n += 1;
        }
        if m.mode == 2 && m.pending.is_none() {
            m.pending = Some(class);
        }
    }

    /// Counts a write refused for lack of memory in the class of `size` bytes.
    pub(super) fn note_class_oom(&mut self, size: usize) {
        let class = self.alloc.size_class(size);
        let (Some(m), Some(class)) = (self.maintainer.as_mut(), class) else {
            return;
        };
        if let Some(n) = m.outofmemory.get_mut(class as usize - 1) {
            *n += 1;
        }
    }

    /// The slab maintainer, called between commands with the current time in seconds: see
    /// [`maintain_us`](Self::maintain_us).
    pub fn maintain(&mut self, now: u64) {
        self.maintain_us(now.saturating_mul(1_000_000));
    }

    /// The slab maintainer, called between commands with the current time in microseconds:
    /// moves the page an eviction asked for (mode 2), and once per new second runs the
    /// automover (mode 1). A move keeps the mover busy for `move_us` (the slab spec's key), and
    /// requests in that time are dropped, as memcached's `slabs_reassign` answers `RUNNING`
    /// while its mover thread works. Does nothing when the allocator has no automover.
    pub fn maintain_us(&mut self, now_us: u64) {
        let now = now_us / 1_000_000;
        let Some(m) = self.maintainer.as_mut() else {
            return;
        };
        if let Some(dst) = m.pending.take() {
            if now_us >= m.busy_until_us {
                // `slabs_reassign(-1, dst)`: a refusal is silent, as in memcached.
                if self.slabs_reassign(None, dst, now).is_ok() {
                    self.set_busy(now_us);
                }
            }
        }
        let Some(m) = self.maintainer.as_mut() else {
            return;
        };
        if m.mode != 1 || m.last_tick == Some(now) {
            return;
        }
        m.last_tick = Some(now);
        // After a reclaim to the pool memcached runs the automover again 1 ms later; each run
        // advances its window, and a decision made while the mover is busy is dropped.
        for i in 0..RECLAIM_RUNS_PER_TICK {
            let at_us = now_us + i * RECLAIM_RERUN_US;
            let items = self.class_activity(now);
            let Some(pm) = self.alloc.page_mover() else {
                return;
            };
            let decision = pm.automove_run(&items);
            let free = self
                .maintainer
                .as_ref()
                .is_some_and(|m| at_us >= m.busy_until_us);
            match decision {
                Some((src, dst)) => {
                    if free && self.move_page(src, dst, now).is_ok() {
                        self.set_busy(at_us);
                    }
                    if dst != 0 {
                        return;
                    }
                }
                None => return,
            }
        }
    }

    /// Marks the mover busy for one move from `at_us`.
    fn set_busy(&mut self, at_us: u64) {
        if let Some(m) = self.maintainer.as_mut() {
            m.busy_until_us = at_us.saturating_add(m.move_us);
        }
    }

    /// Each class's evictions, out-of-memory refusals and LRU tail age.
    fn class_activity(&self, now: u64) -> Vec<ClassActivity> {
        let Some(m) = self.maintainer.as_ref() else {
            return Vec::new();
        };
        (0..m.evicted.len())
            .map(|i| {
                let age = self
                    .lists
                    .as_ref()
                    .and_then(|lists| lists.tail(i + 1))
                    .map_or(0, |links| {
                        self.idle(self.layout.handle_at_links(links), now)
                    });
                ClassActivity {
                    evicted: m.evicted[i],
                    outofmemory: m.outofmemory[i],
                    age,
                }
            })
            .collect()
    }

    /// `slabs reassign SRC DST`: moves one page of class `src` (or, with `None`, of the next
    /// class with a page to spare, memcached's `-1`) to class `dst` (0: the global pool).
    pub fn slabs_reassign(
        &mut self,
        src: Option<u32>,
        dst: u32,
        now: u64,
    ) -> Result<(), ReassignError> {
        if !L::BLOCK_HANDLES {
            return Err(ReassignError::Unsupported);
        }
        let pm = self.alloc.page_mover().ok_or(ReassignError::Unsupported)?;
        let src = match src {
            Some(s) => s,
            None => pm.pick_any(dst).ok_or(ReassignError::NoSource(dst))?,
        };
        self.move_page(src, dst, now)
    }

    /// One page move, whole: every live item of the page is dropped if expired, rescued into
    /// a free chunk of its class, or evicted.
    fn move_page(&mut self, src: u32, dst: u32, now: u64) -> Result<(), ReassignError> {
        let pm = self.alloc.page_mover().ok_or(ReassignError::Unsupported)?;
        let live = pm.start(src, dst)?;
        for chunk in &live {
            let Some(block) = self.alloc.page_mover().and_then(|pm| pm.block(chunk)) else {
                continue;
            };
            let h = self.layout.handle_at_block(block);
            // `slab_rebalance_move`: `it->exptime != 0 && it->exptime < current_time`.
            let exptime = self.layout.exptime(&self.alloc, h);
            if exptime != 0 && u64::from(exptime) < now {
                self.remove(h);
                self.counters.expired_active += 1;
                continue;
            }
            let Some(pm) = self.alloc.page_mover() else {
                break;
            };
            match pm.rescue(chunk) {
                Ok(Some(r)) => {
                    let mut mover = Mover::new(&mut self.layout, self.lists.as_mut());
                    mover.relocated(r.from, r.to, 0);
                }
                Ok(None) => {}
                Err(_) => {
                    self.remove(h);
                    self.counters.evictions_page += 1;
                }
            }
        }
        let pm = self.alloc.page_mover().ok_or(ReassignError::Unsupported)?;
        pm.finish()?;
        Ok(())
    }
}

/// Whether a store over `alloc` can run its automover under layout `L`: `Err` with the reason.
pub(super) fn check_automove<A: Allocator, L: Layout>(
    alloc: &A,
    per_class_lists: bool,
) -> Result<(), &'static str> {
    match alloc.automove_mode() {
        0 => Ok(()),
        _ if !L::BLOCK_HANDLES => Err(
            "the slab automover moves items between pages, which needs a layout whose key is \
             one block (memcached or compact)",
        ),
        1 if !per_class_lists => Err(
            "automove=1 reads the age of each class's LRU tail, which needs per-class LRU \
             lists: use --evict slab-lru",
        ),
        _ => Ok(()),
    }
}
