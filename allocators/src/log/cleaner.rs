//! The log's cleaner: which segments it picks, how it moves their live entries out, and a
//! recount of the books for tests.

use std::ptr::NonNull;

use super::{header, CleanerPolicy, Log, State, HEADER};
use crate::Relocate;

/// One entry of a segment, as the cleaner walks it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Offset of the header in the segment.
    at: usize,
    /// The block's requested size.
    size: usize,
    live: bool,
}

impl Log {
    /// The entries of segment `id`, in order.
    fn entries(&self, id: u32) -> impl Iterator<Item = Entry> + '_ {
        let start = self.region.start(id);
        let written = self.segs[id as usize].written;
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= written {
                return None;
            }
            // SAFETY: `at < written`, and every entry up to `written` begins with a header
            // written by `append` inside this committed segment.
            let h = unsafe { start.add(at).cast::<u32>().as_ptr().read_unaligned() };
            let e = Entry {
                at,
                size: (h >> 1) as usize,
                live: h & 1 == 1,
            };
            at += HEADER + e.size;
            Some(e)
        })
    }

    fn block_at(&self, id: u32, e: Entry) -> NonNull<u8> {
        // SAFETY: the entry lies inside segment `id`.
        unsafe { self.region.start(id).add(e.at + HEADER) }
    }

    /// The sealed segments in the order the policy cleans them.
    fn candidates(&self) -> Vec<u32> {
        let s = self.cfg.segment as f64;
        let mut scored: Vec<(f64, u32)> = self
            .segs
            .iter()
            .enumerate()
            .filter(|(_, g)| g.state == State::Sealed)
            .map(|(id, g)| {
                let u = g.live as f64 / s;
                let score = match self.cfg.cleaner {
                    CleanerPolicy::Greedy => 1.0 - u,
                    CleanerPolicy::CostBenefit => {
                        let age = (self.clock - g.stamp + 1) as f64;
                        (1.0 - u) * age / (1.0 + u)
                    }
                };
                (score, id as u32)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().map(|(_, id)| id).collect()
    }

    /// Runs the cleaner (see the module docs); returns the bytes of footprint it released.
    pub(super) fn clean(&mut self, relocate: &mut dyn Relocate) -> u64 {
        use crate::Allocator;
        let needed = |log: &Log| log.short_of_segments() || log.wants_compaction();
        let floor = self.stalled_at.unwrap_or(0);
        if self.sealed_dead < floor.saturating_add(self.cfg.segment as u64) || !needed(self) {
            return 0;
        }
        self.work.runs += 1;
        let before = self.in_use;
        let mut order = Vec::new();
        for id in self.candidates() {
            if self
                .entries(id)
                .any(|e| e.live && relocate.pinned(self.block_at(id, e)))
            {
                self.work.pinned_skips += 1;
                continue;
            }
            order.push(id);
        }
        // Copy nothing unless cleaning some prefix of the order frees a segment: blocks that
        // do not pack into the survivors (the ends of segments too short for them) free none.
        if self.gaining_prefix(&order).is_some() {
            for id in order {
                if !needed(self) {
                    break;
                }
                if !self.evacuate(id, relocate) {
                    break;
                }
            }
        }
        let freed = before.saturating_sub(self.in_use);
        self.stalled_at = (freed == 0).then_some(self.sealed_dead);
        u64::from(freed) * self.cfg.segment as u64
    }

    /// The shortest prefix of `order` whose cleaning frees a segment, simulating how its live
    /// entries fill the survivor segments; `None` if no prefix does.
    fn gaining_prefix(&self, order: &[u32]) -> Option<usize> {
        let s = self.cfg.segment;
        let mut room = self
            .survivor
            .map_or(0, |id| s - self.segs[id as usize].written);
        let mut opened = 0usize;
        for (i, &id) in order.iter().enumerate() {
            for e in self.entries(id).filter(|e| e.live) {
                let entry = HEADER + e.size;
                if entry > room {
                    opened += 1;
                    room = s;
                }
                room -= entry;
            }
            if i + 1 > opened {
                return Some(i + 1);
            }
        }
        None
    }

    /// Moves every live entry of sealed segment `id` to the survivor segments and frees it;
    /// `false` if no survivor segment could be had (what was moved stays moved).
    fn evacuate(&mut self, id: u32, relocate: &mut dyn Relocate) -> bool {
        let live: Vec<Entry> = self.entries(id).filter(|e| e.live).collect();
        for e in live {
            let entry = HEADER + e.size;
            let sid = match self.room(self.survivor, entry) {
                Some(s) => s,
                None => {
                    if let Some(old) = self.survivor.take() {
                        self.seal(old);
                    }
                    match self.open(State::Survivor) {
                        Some(s) => {
                            self.survivor = Some(s);
                            s
                        }
                        None => return false,
                    }
                }
            };
            let from = self.block_at(id, e);
            let to = self.append(sid, e.size);
            // SAFETY: `from` is a live entry of `e.size` bytes in segment `id`, `to` a fresh one
            // in another segment; the old header is rewritten dead in place.
            unsafe {
                std::ptr::copy_nonoverlapping(from.as_ptr(), to.as_ptr(), e.size);
                from.sub(HEADER)
                    .cast::<u32>()
                    .as_ptr()
                    .write_unaligned(header(e.size, false));
            }
            let src = &mut self.segs[id as usize];
            src.live -= entry;
            src.entries -= 1;
            self.sealed_dead += entry as u64;
            self.work.bytes_copied += entry as u64;
            relocate.relocated(from, to, e.size);
        }
        self.release(id);
        self.work.segments_cleaned += 1;
        true
    }

    /// Recounts every segment's entries and compares them with the books; `Err` says what
    /// differs. For tests: it walks the whole log.
    pub fn check(&self) -> Result<(), String> {
        let (mut live, mut blocks, mut dead) = (0usize, 0u64, 0u64);
        let mut in_use = 0;
        for (id, seg) in self.segs.iter().enumerate() {
            let id = id as u32;
            if seg.state == State::Free {
                if !self.free_ids.contains(&id) {
                    return Err(format!("segment {id} is free but not in the free set"));
                }
                continue;
            }
            in_use += 1;
            let (mut l, mut n, mut end) = (0, 0u32, 0);
            for e in self.entries(id) {
                if e.live {
                    l += HEADER + e.size;
                    n += 1;
                }
                end = e.at + HEADER + e.size;
            }
            if (l, n, end) != (seg.live, seg.entries, seg.written) {
                return Err(format!(
                    "segment {id}: recount {l} live bytes in {n} entries to {end}, books say {} in {} to {}",
                    seg.live, seg.entries, seg.written
                ));
            }
            if seg.state == State::Sealed {
                if n == 0 {
                    return Err(format!("segment {id} is sealed and empty but not freed"));
                }
                dead += (self.cfg.segment - l) as u64;
            }
            live += l;
            blocks += u64::from(n);
        }
        let books = (
            self.tally.allocated,
            self.tally.live_blocks,
            self.sealed_dead,
            self.in_use,
        );
        if (live as u64, blocks, dead, in_use) != books {
            return Err(format!(
                "recount: {live} live bytes, {blocks} blocks, {dead} dead sealed bytes, {in_use} segments; books: {books:?}"
            ));
        }
        Ok(())
    }
}
