//! Making room: eviction by the policy while the allocator is out of memory (Redis's
//! eviction pool, memcached's per-class lists), and emptying a slab page.

use fraglab_allocators::{AllocError, Allocator, LimitKind};

use super::{CmdError, Store, POOL_SIZE, SAMPLES};
use crate::layout::{Layout, LayoutKind};
use crate::policy::Policy;
use crate::util::hash_key;

/// How far from the tail a list policy looks for a victim that can make room.
const LIST_SEARCH: usize = 1000;
/// The most evictions one write may cause before it gives up with an out-of-memory error.
const MAX_EVICTIONS_PER_WRITE: usize = 10_000;
/// The same, over an allocator that moves blocks (a log, whose cleaner needs a segment's worth
/// of dead bytes before it can free one: 8 MiB of 16-byte items).
const MAX_EVICTIONS_PER_WRITE_MOVING: usize = 1 << 20;

/// A candidate in the eviction pool (Redis's `evictionPoolEntry`).
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    idle: u64,
    key: Vec<u8>,
}

impl<A: Allocator, L: Layout> Store<A, L> {
    /// Runs an allocating step, evicting by the policy while the allocator answers
    /// `OutOfMemory`. `protect` is never evicted (the key being written).
    pub(super) fn with_room<T>(
        &mut self,
        protect: Option<L::Handle>,
        now: u64,
        mut step: impl FnMut(&mut A, &mut L) -> Result<T, AllocError>,
    ) -> Result<T, CmdError> {
        // A log frees memory a segment at a time: evicting for one write may take a segment's
        // worth of keys before the cleaner can free one.
        let budget = if A::MOVES_BLOCKS {
            MAX_EVICTIONS_PER_WRITE_MOVING
        } else {
            MAX_EVICTIONS_PER_WRITE
        };
        if A::MOVES_BLOCKS && self.alloc.wants_compaction() {
            self.compact_now(protect);
        }
        for _ in 0..budget {
            match step(&mut self.alloc, &mut self.layout) {
                Ok(t) => return Ok(t),
                Err(AllocError::TooLarge { size, max }) => {
                    return Err(CmdError::ValueTooLarge { len: size, max })
                }
                Err(AllocError::OutOfMemory { size }) => {
                    // An allocator that moves blocks may free a segment by cleaning first.
                    if A::MOVES_BLOCKS && self.compact_now(protect) > 0 {
                        continue;
                    }
                    if L::EVICTS_SEGMENTS {
                        if self.policy != Policy::Noeviction && self.evict_segments(protect, now) {
                            continue;
                        }
                        if self.alloc.on_no_victim(size) {
                            continue;
                        }
                        self.counters.oom_errors += 1;
                        return Err(CmdError::OutOfMemory);
                    }
                    if self.policy == Policy::Noeviction || !self.evict_one(size, protect, now) {
                        // Nothing to evict for `size`: the allocator may have another way
                        // (a chunked item's tail taking a full-size chunk).
                        if self.alloc.on_no_victim(size) {
                            continue;
                        }
                        self.note_class_oom(size);
                        self.counters.oom_errors += 1;
                        return Err(CmdError::OutOfMemory);
                    }
                }
            }
        }
        self.counters.oom_errors += 1;
        Err(CmdError::OutOfMemory)
    }

    /// A segment eviction by the layout (Segcache's merge): the store removes the keys the
    /// layout drops, then the layout compacts and frees; `true` if memory came back.
    fn evict_segments(&mut self, protect: Option<L::Handle>, now: u64) -> bool {
        let Some(victims) = self.layout.evict_begin(&mut self.alloc, protect, now) else {
            return false;
        };
        for h in victims {
            self.remove(h);
            self.counters.evictions += 1;
        }
        self.layout.evict_finish(&mut self.alloc)
    }

    /// Whether evicting `h` can make room for a request of `size` bytes. Under a page limit
    /// (memcached's `-m`) pages never leave their class, so only a victim of the class the
    /// request needs frees a chunk it can use; evicting others would empty the store for
    /// nothing. (The redis layout spreads a key over several classes: any key will do.)
    fn can_make_room(&self, h: L::Handle, size: usize, protect: Option<L::Handle>) -> bool {
        if Some(h) == protect {
            return false;
        }
        if self.per_class_room() {
            let class = |n: usize| self.alloc.size_class(n);
            return class(self.layout.alloc_size(&self.alloc, h)) == class(size);
        }
        true
    }

    /// Whether victims must come from the class of the failing request (a page limit).
    fn per_class_room(&self) -> bool {
        L::KIND != LayoutKind::Redis
            && self.alloc.limit().is_some()
            && self.alloc.limit_kind() == LimitKind::Pages
    }

    /// How many samples a sampling policy draws before it gives up: many more when only one
    /// class's keys can make room, as they may be a small share of the store.
    pub(super) fn sample_budget(&self) -> usize {
        if self.per_class_room() {
            1024
        } else {
            32
        }
    }

    /// Evicts one key by the policy to make room for a request of `size` bytes; `false` when
    /// there is nothing to evict.
    fn evict_one(&mut self, size: usize, protect: Option<L::Handle>, now: u64) -> bool {
        let victim = match self.policy {
            Policy::Noeviction => None,
            Policy::SlabLru | Policy::Lru | Policy::Fifo => {
                let class = if self.lists_per_class {
                    self.alloc.size_class(size).unwrap_or(0) as usize
                } else {
                    0
                };
                self.lists
                    .as_ref()
                    .and_then(|lists| {
                        lists.nearest_tail(class, LIST_SEARCH, |links| {
                            self.can_make_room(self.layout.handle_at_links(links), size, protect)
                        })
                    })
                    .map(|links| self.layout.handle_at_links(links))
            }
            Policy::Random | Policy::VolatileRandom => {
                let volatile = self.policy == Policy::VolatileRandom;
                let mut found = None;
                for _ in 0..self.sample_budget() {
                    match self.layout.random(&self.alloc, &mut self.rng, volatile) {
                        Some(h) if self.can_make_room(h, size, protect) => {
                            found = Some(h);
                            break;
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                found
            }
            Policy::SampledLru | Policy::Lfu | Policy::VolatileLru | Policy::VolatileTtl => {
                self.pool_victim(size, protect, now)
            }
        };
        match victim {
            Some(h) => {
                if self.maintainer.is_some() {
                    let class = self
                        .alloc
                        .size_class(self.layout.alloc_size(&self.alloc, h));
                    self.note_class_eviction(class);
                }
                self.remove(h);
                self.counters.evictions += 1;
                true
            }
            None => false,
        }
    }

    /// `evictionPoolPopulate` + the pick in `performEvictions`.
    fn pool_victim(
        &mut self,
        size: usize,
        protect: Option<L::Handle>,
        now: u64,
    ) -> Option<L::Handle> {
        let volatile = matches!(self.policy, Policy::VolatileLru | Policy::VolatileTtl);
        for _round in 0..self.sample_budget() / SAMPLES {
            for _ in 0..SAMPLES {
                let Some(h) = self.layout.random(&self.alloc, &mut self.rng, volatile) else {
                    break;
                };
                if Some(h) == protect {
                    continue;
                }
                let idle = self.idle(h, now);
                let mut key = Vec::new();
                self.layout.read_key(&self.alloc, h, &mut key);
                if self.pool.iter().any(|c| c.key == key) {
                    continue;
                }
                // The pool is sorted by idle time, best candidate last.
                let k = self.pool.partition_point(|c| c.idle < idle);
                if self.pool.len() == POOL_SIZE {
                    if k == 0 {
                        continue;
                    }
                    self.pool.remove(0);
                    self.pool.insert(k - 1, Candidate { idle, key });
                } else {
                    self.pool.insert(k, Candidate { idle, key });
                }
            }
            while let Some(c) = self.pool.pop() {
                let hash = hash_key(&c.key);
                if let Some(h) = self.layout.find(&mut self.alloc, &c.key, hash) {
                    if self.can_make_room(h, size, protect)
                        && (!volatile || self.layout.exptime(&self.alloc, h) != 0)
                    {
                        return Some(h);
                    }
                }
            }
        }
        None
    }

    /// the allocator can move it to another class. Returns the keys evicted.
    pub fn evict_range(&mut self, start: usize, end: usize) -> u64 {
        let mut n = 0;
        for h in self.layout.handles() {
            let mut overlaps = false;
            self.layout.blocks(&self.alloc, h, &mut |lo, len| {
                overlaps |= lo < end && lo + len > start
            });
            if overlaps {
                self.remove(h);
                n += 1;
            }
        }
        self.counters.evictions_page += n;
        n
    }
}
