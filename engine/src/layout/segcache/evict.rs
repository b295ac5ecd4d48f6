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
    /// Picks up to [`MERGE`] segments of the next TTL bucket, from where its last merge
    /// stopped (a hand that goes round the chain, oldest to newest), never those holding
    /// `protect`; returns the items to evict, or `None` when no segment can be merged.
    pub(super) fn merge_begin<A: Allocator>(
        &mut self,
        a: &mut A,
        protect: Option<Loc>,
        now: u64,
    ) -> Option<Vec<Loc>> {
        self.clock = self.clock.max(now);
        let n = self.segs.chains.len();
        let mut set = Vec::new();
        // Buckets whose merge frees a segment (two or more to merge) first; a lone segment is
        // halved only when no bucket has more.
        let lone = (0..n).all(|b| self.segs.chains[b].len < 2);
        for i in 0..n {
            let b = (self.segs.next_bucket + i) % n;
            if !lone && self.segs.chains[b].len < 2 {
                continue;
            }
            let chain = self.segs.chains[b];
            // Where the last merge of this bucket stopped, or its oldest segment; the segment
            // being appended to is merged only when it is all the bucket has.
            let resume = chain
                .resume
                .filter(|&id| self.segs.segs[id as usize].is_some_and(|s| s.bucket as usize == b))
                .filter(|&id| Some(id) != chain.last);
            let collect = |start: Option<u32>, set: &mut Vec<u32>| {
                set.clear();
                let mut cur = start;
                while let Some(id) = cur {
                    if set.len() == MERGE || (Some(id) == chain.last && !set.is_empty()) {
                        break;
                    }
                    set.push(id);
                    cur = self.segs.get(id).newer;
                }
            };
            collect(resume.or(chain.first), &mut set);
            if set.len() < MERGE && resume.is_some() {
                // The hand reached the newest segments: it goes round to the oldest.
                collect(chain.first, &mut set);
            }
            if let Some(p) = protect.filter(|p| set.contains(&p.seg)) {
                // The key being written holds a segment of this window: merge the next one.
                collect(self.segs.get(p.seg).newer, &mut set);
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
        for &id in &set {
            for loc in self.live_items(id) {
                let size = self.shape(loc).size();
                let expired = {
                    let e = self.exptime(a, loc);
                    e != 0 && u64::from(e) <= now
                };
                let freq = self.table.freq(self.slot(loc));
                live.push((loc, size, freq, expired));
            }
        }
        // Keep the most read (never an item not read since it was written or last kept), as
        // many as fill the one segment the merge leaves.
        // A merge of one segment (all its bucket has) must still shed something: half.
        let budget = if set.len() > 1 {
            self.seg_size
        } else {
            live.iter().map(|l| l.1).sum::<usize>() / 2
        };
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
            let e = self.exptime(&*a, new);
            self.segs.note_expiry(first, e);
            cursor += size;
        }
        let count = set.len();
        // The next merge of this bucket starts after this one.
        let after = self
            .segs
            .get(*set.last().expect("a merge has segments"))
            .newer;
        let bucket = usize::from(self.segs.get(first).bucket);
        self.segs.chains[bucket].resume = after;
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
