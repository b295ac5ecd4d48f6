//! A warm restart of the store, after memcached's (`-e`, `restart.c`): the allocator writes
//! what a new process needs and opens its memory again at a new address
//! ([`Allocator::restart`]); the store drops its index and lists without touching the items,
//! and rebuilds them from the blocks the allocator hands back, each checked whole
//! ([`Layout::adopt`]). Pointers between items (memcached's hash chain and LRU links) are not
//! read: they are written anew, as memcached's restart fixes them up.

use std::time::{Duration, Instant};

use fraglab_allocators::Allocator;

use super::Store;
use crate::layout::Layout;
use crate::list::Lists;

/// What a restart found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restarted {
    /// Keys held before the restart.
    pub items_before: u64,
    /// Keys found and checked sound after it.
    pub items_after: u64,
    /// Blocks marked live that did not hold a sound item (dropped), with the first reasons.
    pub bad_items: u64,
    /// Why the first bad items were bad.
    pub bad_reasons: Vec<String>,
    /// Bytes of metadata the allocator wrote to find its memory again.
    pub meta_bytes: u64,
    /// From the shutdown to the rebuilt index.
    pub duration: Duration,
}

impl<A: Allocator, L: Layout> Store<A, L> {
    /// Restarts the store on its allocator's memory (`slab:file=PATH` with the memcached
    /// layout): every live item is found again, checked, and indexed; the eviction lists are
    /// rebuilt in order of last access. Counters carry on. An error (nothing changed) when
    /// the allocator or the layout cannot restart.
    pub fn restart(&mut self) -> Result<Restarted, String> {
        let t = Instant::now();
        let items_before = self.layout.len() as u64;
        // The layout's refusal comes before anything is written.
        if L::KIND != crate::LayoutKind::Memcached {
            return Err(format!(
                "the {} layout cannot restart (only memcached's can)",
                L::KIND
            ));
        }
        let (alloc, meta_bytes) = self.alloc.restart()?;
        // The old index, lists and mapping go without freeing a block: the items stay in the
        // file for the new mapping.
        let old_alloc = std::mem::replace(&mut self.alloc, alloc);
        let old_layout = std::mem::replace(&mut self.layout, L::new(self.layout_opts));
        drop(old_layout);
        drop(old_alloc);
        self.lists = self.policy.needs_links().then(|| Lists::new(0));
        self.pool.clear();
        self.payload = 0;
        let mut found = Vec::new();
        let mut bad = 0u64;
        let mut reasons = Vec::new();
        {
            let Store { alloc, layout, .. } = self;
            alloc.adopt_blocks(&mut |block, size| match layout.adopt(block, size) {
                Ok(Some((h, requested))) => {
                    found.push(h);
                    Some(requested)
                }
                Ok(None) => None,
                Err(why) => {
                    bad += 1;
                    if reasons.len() < 5 {
                        reasons.push(format!("block at {block:p}: {why}"));
                    }
                    None
                }
            });
        }
        // Least recently used first, so the most recent ends at each list's head.
        found.sort_by_key(|&h| self.layout.access(h));
        for h in found {
            self.list_add(h);
            self.payload += (self.layout.key_len(h) + self.layout.value_len(&self.alloc, h)) as u64;
        }
        Ok(Restarted {
            items_before,
            items_after: self.layout.len() as u64,
            bad_items: bad,
            bad_reasons: reasons,
            meta_bytes,
            duration: t.elapsed(),
        })
    }
}
