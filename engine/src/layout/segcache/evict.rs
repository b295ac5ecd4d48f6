//! Segcache's merge-based eviction, in two steps around the store's own bookkeeping: `begin`
//! picks the segments and the items to keep, and returns the others for the store to remove
//! (so its counts of items, payload and aggregates stay right); `finish` compacts the kept
//! items into the first segment and gives the other segments back.

use fraglab_allocators::Allocator;

use super::table::Loc;
use super::{key_of, Segcache, MERGE};
use crate::layout::Layout;
use crate::util::hash_key;

impl Segcache {
    /// Picks the next TTL bucket's oldest segments (up to [`MERGE`]), never those holding
    /// `protect`; returns the items to evict, or `None` when no segment can be merged.
    pub(super) fn merge_begin<A: Allocator>(
        &mut self,
        a: &mut A,
        protect: Option<Loc>,
        now: u64,
    ) -> Option<Vec<Loc>> {
        let n = self.segs.chains.len();
        let mut set = Vec::new();
        for i in 0..n {
            let b = (self.segs.next_bucket + i) % n;
            let mut cur = self.segs.chains[b].first;
            set.clear();
            while let Some(id) = cur {
                if set.len() == MERGE {
                    break;
                }
                set.push(id);
                cur = self.segs.get(id).newer;
            }
            if set.is_empty() || protect.is_some_and(|p| set.contains(&p.seg)) {
                continue;
            }
            self.segs.next_bucket = (b + 1) % n;
            break;
        }
        if set.is_empty() || protect.is_some_and(|p| set.contains(&p.seg)) {
            return None;
        }
        // Every live item of the set, with its size and frequency; expired ones go.
        let mut live = Vec::new();
        let mut total = 0;
        for &id in &set {
            for loc in self.live_items(id) {
                let size = self.shape(loc).size();
                let expired = {
                    let e = self.exptime(a, loc);
                    e != 0 && u64::from(e) <= now
                };
                let freq = self.table.freq(self.slot(loc));
                total += size;
                live.push((loc, size, freq, expired));
            }
        }
        // Keep the most read, about 1/MERGE of the bytes and at most a segment.
        let budget = (total / MERGE).min(self.seg_size);
        let mut order: Vec<usize> = (0..live.len())
            .filter(|&i| !live[i].3 && live[i].2 > 0)
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(live[i].2));
        let mut keep = vec![false; live.len()];
        let mut kept = 0;
        for i in order {
            if kept + live[i].1 <= budget {
                keep[i] = true;
                kept += live[i].1;
            }
        }
        self.merging = set;
        self.retained = live
            .iter()
            .zip(&keep)
            .filter(|(_, &k)| k)
            .map(|(l, _)| l.0)
            .collect();
        Some(
            live.iter()
                .zip(&keep)
                .filter(|(_, &k)| !k)
                .map(|(l, _)| l.0)
                .collect(),
        )
    }

    /// Compacts the kept items into the merge's first segment, halving their counters, and
    /// gives the other segments back; `true` if room was made.
    pub(super) fn merge_finish<A: Allocator>(&mut self, a: &mut A) -> bool {
        let set = std::mem::take(&mut self.merging);
        let Some(&first) = set.first() else {
            return false;
        };
        let before = self.segs.get(first).cursor;
        let mut cursor = 0;
        for old in std::mem::take(&mut self.retained) {
            let size = self.shape(old).size();
            let hash = hash_key(key_of(&self.segs, old));
            let p = self
                .table
                .find_loc(hash, old)
                .expect("a kept item has a slot");
            let new = Loc {
                seg: first,
                off: (cursor / 8) as u32,
            };
            if new != old {
                let (src, dst) = (self.item(old), self.item(new));
                // SAFETY: both ranges lie in live segments; items of the first segment move
                // only towards its start (the cursor never passes an item not yet moved), so
                // an overlapping copy is a memmove.
                unsafe { std::ptr::copy(src.as_ptr(), dst.as_ptr(), size) };
                self.table.set_loc(p, new);
                if let Some(e) = self.late_expiry.remove(&old) {
                    self.late_expiry.insert(new, e);
                }
            }
            let f = self.table.freq(p);
            self.table.set_freq(p, f / 2);
            cursor += size;
        }
        let count = set.len();
        for &id in &set[1..] {
            self.free_segment(a, id);
        }
        let moved_in: usize = cursor;
        let seg = self.segs.get_mut(first);
        seg.cursor = moved_in;
        seg.live_bytes = moved_in;
        // The live count is recounted from the items now in it.
        let n = self.live_items(first).len() as u32;
        self.segs.get_mut(first).live = n;
        if n == 0 {
            self.free_segment(a, first);
            return true;
        }
        count > 1 || moved_in < before
    }
}
