//! The access fields the policies read (the LRU clock, Redis's LFU counter, memcached's item
//! time) and the lists that the list policies evict from.

use fraglab_allocators::Allocator;

use super::{Store, ITEM_UPDATE_INTERVAL, LFU_DECAY_MINUTES, LFU_INIT, LFU_LOG_FACTOR};
use crate::layout::{Layout, LayoutKind, PrefetchStage};
use crate::policy::Policy;

impl<A: Allocator, L: Layout> Store<A, L> {
    fn minutes(now: u64) -> u32 {
        ((now / 60) & 0xFFFF) as u32
    }

    pub(super) fn initial_access(&self, now: u64) -> u32 {
        if self.policy.uses_lfu() {
            (Self::minutes(now) << 8) | LFU_INIT
        } else {
            Self::clock(now)
        }
    }

    fn clock(now: u64) -> u32 {
        if L::KIND == LayoutKind::Memcached {
            now as u32
        } else {
            (now & 0xFF_FFFF) as u32
        }
    }

    /// `LFUDecrAndReturn`.
    fn lfu_counter(access: u32, now: u64) -> u32 {
        let ldt = access >> 8;
        let counter = access & 0xFF;
        let now_m = Self::minutes(now);
        let elapsed = if now_m >= ldt {
            now_m - ldt
        } else {
            65535 - ldt + now_m
        };
        let periods = elapsed / LFU_DECAY_MINUTES;
        counter.saturating_sub(periods)
    }

    pub(super) fn touch_access(&mut self, h: L::Handle, now: u64) {
        // Redis leaves the access time alone while a child saves ("this will trigger a copy
        // on write madness": `db.c`, `lookupKey`, `hasActiveChildProcess`).
        if self.child_active && L::KIND == LayoutKind::Redis {
            return;
        }
        // memcached bumps an item at most once per ITEM_UPDATE_INTERVAL (60 s).
        if L::KIND == LayoutKind::Memcached
            && !self.policy.uses_lfu()
            && now < u64::from(self.layout.access(h)).saturating_add(ITEM_UPDATE_INTERVAL)
        {
            return;
        }
        if self.policy.uses_lfu() {
            let mut counter = Self::lfu_counter(self.layout.access(h), now);
            if counter < 255 {
                let base = counter.saturating_sub(LFU_INIT) as f64;
                if self.rng.unit() < 1.0 / (base * LFU_LOG_FACTOR + 1.0) {
                    counter += 1;
                }
            }
            self.layout
                .set_access(h, (Self::minutes(now) << 8) | counter);
        } else {
            self.layout.set_access(h, Self::clock(now));
        }
        if self.policy == Policy::Lru || self.policy == Policy::SlabLru {
            let class = self.class_of(h);
            if let (Some(lists), Some(links)) = (self.lists.as_mut(), self.layout.links(h)) {
                // SAFETY: with list links on, every stored item is in exactly one list.
                unsafe { lists.bump(class, links) };
            }
        }
    }

    /// A hint ahead of an op on the key whose [`hash_key`](crate::hash_key) is `hash`, a few
    /// ops from now: the replay driver's lookahead calls it at each stage as the op comes
    /// nearer ([`Layout::prefetch`]). At the last stage, the item found has its list
    /// neighbours prefetched, which its bump will write. It reads only: results are the same
    /// with or without it.
    pub fn prefetch(&self, hash: u64, stage: PrefetchStage) {
        let found = self.layout.prefetch(&self.alloc, hash, stage);
        if let (Some(h), Some(lists)) = (found, self.lists.as_ref()) {
            if let Some(links) = self.layout.links(h) {
                // SAFETY: with list links on, every stored item is in a list, its links live.
                unsafe { lists.prefetch_neighbours(links) };
            }
        }
    }

    pub(super) fn idle(&self, h: L::Handle, now: u64) -> u64 {
        let access = self.layout.access(h);
        match self.policy {
            Policy::Lfu => 255 - u64::from(Self::lfu_counter(access, now)),
            Policy::VolatileTtl => u64::MAX - u64::from(self.layout.exptime(&self.alloc, h)),
            _ => {
                let clock = Self::clock(now);
                if L::KIND == LayoutKind::Memcached {
                    u64::from(clock.wrapping_sub(access))
                } else if clock >= access {
                    u64::from(clock - access)
                } else {
                    u64::from(clock + (0xFF_FFFF - access))
                }
            }
        }
    }

    // ---- lists ----

    pub(super) fn class_of(&self, h: L::Handle) -> usize {
        if self.lists_per_class {
            let size = self.layout.alloc_size(&self.alloc, h);
            self.alloc.size_class(size).unwrap_or(0) as usize
        } else {
            0
        }
    }

    pub(super) fn list_add(&mut self, h: L::Handle) {
        let class = self.class_of(h);
        if let (Some(lists), Some(links)) = (self.lists.as_mut(), self.layout.links(h)) {
            // SAFETY: `h` is a live item, in no list.
            unsafe { lists.push_front(class, links) };
        }
    }

    pub(super) fn list_remove(&mut self, h: L::Handle) {
        let class = self.class_of(h);
        if let (Some(lists), Some(links)) = (self.lists.as_mut(), self.layout.links(h)) {
            // SAFETY: `h` is a live item in its class's list.
            unsafe { lists.unlink(class, links) };
        }
    }
}
