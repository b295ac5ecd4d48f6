//! memcached 1.6.18's slab automover, mode 1 (`slab_automove.c`, `slab_automove_run`).
//!
//! Once a second the LRU maintainer hands the automover each class's counters: evictions and
//! the age of the COLD LRU's tail (`fill_item_stats_automove` in `items.c`), out-of-memory
//! errors, and the class's pages and free chunks (`fill_slab_stats_automove` in `slabs.c`).
//! For every class it fills one slot of a window of `slab_automove_window` seconds:
//!
//! - the slot is *dirty* when the class evicted, ran out of memory or gained a page this
//!   second;
//! - it records the tail age, and the class's share of this second's evictions.
//!
//! Then, class by class in order:
//!
//! - **reclaim**: a class with more than 2.5 pages of free chunks and a clean window gives a
//!   page to the global pool (decision made, the loop stops there);
//! - the **oldest** class is the one with the highest window-average age among those with
//!   more than 2 pages;
//! - the **youngest** is the one with the lowest average age among those that evicted in more
//!   than half the window's seconds, or took more than 25% of its evictions on average.
//!
//! Once the window has filled, a page moves oldest -> youngest when the youngest's age is
//! under `slab_automove_ratio` x the oldest's and the youngest evicted this second. The
//! arithmetic follows the C: integer averages, `float` eviction ratios.

use super::Slab;
use crate::page::PageSource;

/// What the item side knows of one class at a tick (`item_stats_automove`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassActivity {
    /// Evictions from the class, since the start.
    pub evicted: u64,
    /// Writes that failed with out of memory in the class, since the start.
    pub outofmemory: u64,
    /// Seconds since the class's LRU tail was last accessed (0 when the class is empty).
    pub age: u64,
}

/// What the slab side knows of one class at a tick (`slab_stats_automove`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ClassPages {
    pub(super) chunks_per_page: u32,
    pub(super) free_chunks: u64,
    pub(super) total_pages: u32,
}

/// `MIN_PAGES_FOR_SOURCE`.
const MIN_PAGES_FOR_SOURCE: u32 = 2;
/// `MIN_PAGES_FOR_RECLAIM`.
const MIN_PAGES_FOR_RECLAIM: f64 = 2.5;

/// One second of one class (`struct window_data`).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    age: u64,
    dirty: u64,
    evicted_ratio: f32,
    evicted_seen: u64,
}

/// The automover's state (`slab_automove`): a window per class and the counters seen at the
/// last run.
#[derive(Debug, Clone)]
pub(super) struct Automover {
    window: Vec<Slot>,
    window_size: u32,
    window_cur: u64,
    ratio: f64,
    items_before: Vec<ClassActivity>,
    pages_before: Vec<ClassPages>,
}

impl Automover {
    /// `slab_automove_init`, for `classes` classes; the "before" counters start at zero, as
    /// they are when memcached starts.
    pub(super) fn new(classes: usize, window_size: u32, ratio: f64) -> Self {
        Automover {
            window: vec![Slot::default(); classes * window_size as usize],
            window_size,
            window_cur: 0,
            ratio,
            items_before: vec![ClassActivity::default(); classes],
            pages_before: vec![ClassPages::default(); classes],
        }
    }

    /// `slab_automove_run`: one tick. `items` and `pages` are indexed by class index (0-based:
    /// class id - 1). Returns `(src, dst)` class ids, 1-based, with `dst` 0 for the global
    /// pool; `None` when no page should move.
    pub(super) fn run(
        &mut self,
        items: &[ClassActivity],
        pages: &[ClassPages],
    ) -> Option<(u32, u32)> {
        let n_classes = self.items_before.len();
        let size = self.window_size as usize;
        let mut decision = None;
        let (mut oldest, mut oldest_age) = (None, 0u64);
        let (mut youngest, mut youngest_age) = (None, u64::MAX);
        let mut youngest_evicting = false;
        let item = |n: usize| items.get(n).copied().unwrap_or_default();
        let page = |n: usize| pages.get(n).copied().unwrap_or_default();

        let evicted_total: u64 = (0..n_classes)
            .map(|n| item(n).evicted - self.items_before[n].evicted)
            .sum();
        self.window_cur += 1;
        for n in 0..n_classes {
            let (after, before) = (item(n), self.items_before[n]);
            let slot_at = n * size + (self.window_cur % u64::from(self.window_size)) as usize;
            let mut slot = Slot::default();
            let evicted_delta = after.evicted - before.evicted;
            if evicted_delta > 0 {
                slot.evicted_ratio = evicted_delta as f32 / evicted_total as f32;
                slot.evicted_seen = 1;
                slot.dirty = 1;
            }
            if after.outofmemory > before.outofmemory {
                slot.dirty = 1;
            }
            if page(n).total_pages > self.pages_before[n].total_pages {
                slot.dirty = 1;
            }
            slot.age = after.age;
            self.window[slot_at] = slot;

            let mut sum = Slot::default();
            for s in &self.window[n * size..(n + 1) * size] {
                sum.age += s.age;
                sum.dirty += s.dirty;
                sum.evicted_ratio += s.evicted_ratio;
                sum.evicted_seen += s.evicted_seen;
            }
            let age = sum.age / u64::from(self.window_size);
            let p = page(n);
            if p.free_chunks as f64 > f64::from(p.chunks_per_page) * MIN_PAGES_FOR_RECLAIM
                && sum.dirty == 0
            {
                decision = Some((n as u32 + 1, 0));
                youngest = None;
                oldest = None;
                break;
            }
            if age > oldest_age && p.total_pages > MIN_PAGES_FOR_SOURCE {
                oldest = Some(n);
                oldest_age = age;
            }
            if age < youngest_age
                && (sum.evicted_seen > u64::from(self.window_size / 2)
                    || sum.evicted_ratio / self.window_size as f32 > 0.25)
            {
                youngest = Some(n);
                youngest_age = age;
                youngest_evicting = slot.evicted_seen != 0;
            }
        }
        self.items_before
            .copy_from_slice(&items[..n_classes.min(items.len())]);
        for (n, p) in self.pages_before.iter_mut().enumerate() {
            *p = page(n);
        }
        if let (Some(y), Some(o)) = (youngest, oldest) {
            if self.window_cur > u64::from(self.window_size)
                && (youngest_age as f64) < oldest_age as f64 * self.ratio
                && youngest_evicting
            {
                decision = Some((o as u32 + 1, y as u32 + 1));
            }
        }
        decision
    }
}

impl<P: PageSource> Slab<P> {
    /// One tick of the automover (`automove=1`): `items` holds each class's eviction and
    /// out-of-memory counters and tail age, by class index. Returns the page move to make,
    /// `(src, dst)` with `dst` 0 for the global pool; `None` with another mode.
    pub fn automove_run(&mut self, items: &[ClassActivity]) -> Option<(u32, u32)> {
        let pages: Vec<ClassPages> = self
            .classes
            .iter()
            .map(|c| ClassPages {
                chunks_per_page: c.chunks_per_page,
                free_chunks: c.free_count,
                total_pages: c.pages,
            })
            .collect();
        self.automover.as_mut()?.run(items, &pages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle class with a tail of age 1000, and a class that evicted `10 t` by second `t`
    /// with a tail of age `young`.
    fn old_and_young(t: u64, young: u64) -> [ClassActivity; 2] {
        [
            ClassActivity {
                evicted: 0,
                outofmemory: 0,
                age: 1000,
            },
            ClassActivity {
                evicted: 10 * t,
                outofmemory: 0,
                age: young,
            },
        ]
    }

    fn pages(total: u32, free: u64) -> ClassPages {
        ClassPages {
            chunks_per_page: 100,
            free_chunks: free,
            total_pages: total,
        }
    }

    #[test]
    fn a_class_with_free_pages_and_a_clean_window_gives_one_back() {
        let mut a = Automover::new(2, 3, 0.8);
        let items = [ClassActivity::default(); 2];
        // 251 free chunks > 2.5 pages of 100, and nothing happened: reclaim at once.
        let p = [pages(5, 251), pages(1, 0)];
        // The first tick sees the pages appear (dirty), so the window is not clean yet.
        assert_eq!(a.run(&items, &p), None);
        for _ in 0..2 {
            assert_eq!(a.run(&items, &p), None);
        }
        assert_eq!(a.run(&items, &p), Some((1, 0)));
        // 250 free chunks is not more than 2.5 pages.
        let mut b = Automover::new(1, 3, 0.8);
        for _ in 0..10 {
            assert_eq!(b.run(&items[..1], &[pages(5, 250)]), None);
        }
    }

    #[test]
    fn the_oldest_class_feeds_the_youngest_once_the_window_has_filled() {
        let mut a = Automover::new(2, 3, 0.8);
        let p = [pages(10, 0), pages(10, 0)];
        let mut moves = Vec::new();
        for t in 1..=6u64 {
            moves.push(a.run(&old_and_young(t, 100), &p));
        }
        // window_cur must exceed the window (3): ticks 4, 5, 6 decide.
        assert_eq!(&moves[..3], &[None, None, None]);
        assert_eq!(&moves[3..], &[Some((1, 2)); 3]);
    }

    #[test]
    fn no_move_when_the_ages_are_within_the_ratio() {
        let mut a = Automover::new(2, 3, 0.8);
        let p = [pages(10, 0), pages(10, 0)];
        for t in 1..=8u64 {
            // 810 >= 0.8 x 1000
            assert_eq!(a.run(&old_and_young(t, 810), &p), None);
        }
    }
}
