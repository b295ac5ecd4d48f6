//! A warm restart of the store, after memcached's (`-e`, `restart.c`): the allocator writes
//! what a new process needs and opens its memory again at a new address
//! ([`Allocator::restart`]); the store drops its index and lists without touching the items,
//! and rebuilds them from the blocks the allocator hands back, each checked whole
//! ([`Layout::adopt`]). The hash chain is built anew (the index is not in the file); the LRU
//! links in the items are moved to the new mapping, as memcached's `restart_fixup` moves them,
//! so the eviction order survives the restart.

use std::ptr::NonNull;
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
    /// Whether the eviction lists kept their order through the items' own links, moved to
    /// the new mapping as memcached's restart does (true also for a store that keeps no
    /// lists); false when they were rebuilt by last access instead (a bad item, or links
    /// that did not hold together).
    pub lists_kept: bool,
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
        let old_base = self.alloc.file_base();
        let (alloc, meta_bytes) = self.alloc.restart()?;
        let new_base = alloc.file_base();
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
        let relinked = match (old_base, new_base) {
            (Some(old), Some(new)) if bad == 0 => {
                self.relink(&found, old.as_ptr() as usize, new.as_ptr() as usize)
            }
            _ => false,
        };
        if !relinked {
            // Rebuilt instead, least recently used first, so the most recent ends at each
            // list's head.
            if let Some(lists) = self.lists.as_mut() {
                lists.forget();
            }
            found.sort_by_key(|&h| self.layout.access(h));
            for &h in &found {
                self.list_add(h);
            }
        }
        for h in found {
            self.payload += (self.layout.key_len(h) + self.layout.value_len(&self.alloc, h)) as u64;
        }
        Ok(Restarted {
            items_before,
            items_after: self.layout.len() as u64,
            bad_items: bad,
            bad_reasons: reasons,
            meta_bytes,
            lists_kept: relinked,
            duration: t.elapsed(),
        })
    }

    /// memcached's `restart_fixup` (`restart.c`): each linked item's LRU links, addresses in
    /// the old mapping, move by the distance from the old base to the new, and each class's
    /// head and tail are its items with no `prev` and no `next`, so the lists keep their
    /// order. True when they came out whole: every link lands on an item found, each class
    /// has one head and one tail, and the walk from the heads meets every item once, each
    /// `prev` the item before. Otherwise (a damaged file) the caller rebuilds them.
    fn relink(&mut self, found: &[L::Handle], old: usize, new: usize) -> bool {
        let Some(lists) = self.lists.as_ref() else {
            return true;
        };
        let mut at: std::collections::HashSet<usize> =
            std::collections::HashSet::with_capacity(found.len());
        for &h in found {
            match self.layout.links(h) {
                Some(l) => at.insert(l.as_ptr() as usize),
                None => return false,
            };
        }
        let moved = |p: *mut u8| -> Option<*mut u8> {
            if p.is_null() {
                return Some(p);
            }
            let q = (p as usize).wrapping_sub(old).wrapping_add(new);
            at.contains(&q).then_some(q as *mut u8)
        };
        let mut fixed = Vec::with_capacity(found.len());
        let mut ends: std::collections::BTreeMap<usize, [Option<NonNull<u8>>; 2]> =
            Default::default();
        for &h in found {
            let l = self.layout.links(h).expect("checked above");
            // SAFETY: `h` is an item adopted from the reopened file, live, with its links at
            // the lists' offset (the layout's `links`).
            let (prev, next) = unsafe { lists.raw_links(l) };
            let (Some(prev), Some(next)) = (moved(prev), moved(next)) else {
                return false;
            };
            let class = self.class_of(h);
            let e = ends.entry(class).or_default();
            for (end, is_end) in e.iter_mut().zip([prev.is_null(), next.is_null()]) {
                if is_end && end.replace(l).is_some() {
                    return false;
                }
            }
            fixed.push((l, prev, next));
        }
        let lists = self.lists.as_mut().expect("checked above");
        for (l, prev, next) in fixed {
            // SAFETY: as above; the new links name items found.
            unsafe { lists.set_raw_links(l, prev, next) };
        }
        let mut seen = 0usize;
        for (&class, e) in &ends {
            let [Some(head), Some(tail)] = *e else {
                return false;
            };
            lists.set_ends(class, head, tail);
            let (mut cur, mut before) = (Some(head), std::ptr::null_mut());
            while let Some(l) = cur {
                seen += 1;
                if seen > found.len() {
                    return false;
                }
                // SAFETY: every link was checked to name an item found.
                let (prev, next) = unsafe { lists.raw_links(l) };
                if prev != before {
                    return false;
                }
                before = l.as_ptr();
                cur = NonNull::new(next);
            }
        }
        seen == found.len()
    }
}
