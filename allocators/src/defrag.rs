//! What Redis's active defrag asks of the allocator: its fragmentation figures and, for one
//! live pointer, whether moving it is worthwhile (the "defrag hint").
//!
//! Redis 7.0 (`src/defrag.c`, `activeDefragAlloc`) calls `je_get_defrag_hint`, a function of
//! the jemalloc fork it vendors (`deps/jemalloc/include/jemalloc/internal/
//! jemalloc_internal_inlines_c.h`, `iget_defrag_hint`). The rule there, for the pointer's slab
//! and bin:
//!
//! - only small allocations (slab-backed) are candidates;
//! - never a pointer in the bin's current slab (`slabcur`, where new allocations go);
//! - never a pointer in a full slab (`free_in_slab == 0`);
//! - otherwise move when `used_in_slab * nonfull_slabs <= nonfull_used + nonfull_used / 8`,
//!   where `nonfull_slabs` and `nonfull_used` count the bin's nonfull slabs other than
//!   `slabcur` and their used regions: the slab is at most 112.5% as full as their average.
//!
//! Upstream jemalloc 5.3 (the build `tikv-jemalloc-sys` vendors) has no such function, but
//! exposes the facts through the `experimental.utilization.query` mallctl (`src/ctl.c`,
//! `experimental_utilization_query_ctl`, filled by `inspect_extent_util_stats_verbose_get` in
//! `src/inspect.c`): for a pointer, its slab's `nfree`, `nregs` and `size`, the bin's
//! `bin_nfree` and `bin_nregs` (from the bin's live `curslabs` and `curregs`), and `slabcur_addr`.
//! What it lacks is the count of nonfull slabs: that is the bin statistic
//! `stats.arenas.<i>.bins.<j>.nonfull_slabs`, read after an `epoch` refresh, as Valkey 8.1's
//! `src/allocator_defrag.c` (`allocatorDefragGetFragSmallbins`, `makeDefragDecision`) does for
//! the same purpose over unpatched jemalloc. In jemalloc 5.3 (`src/arena.c`,
//! `arena_bin_slabs_nonfull_tryget`) the slab that becomes `slabcur` leaves the nonfull heap
//! and its count, so `nonfull_slabs` already excludes `slabcur`; `curslabs` and `curregs`
//! include it and the full slabs. [`hint_rule`] is the formula on those figures.

/// An allocator's fragmentation figures as Redis reads them for active defrag (`INFO memory`'s
/// `allocator_active` and `allocator_allocated`, jemalloc's `stats.active` and
/// `stats.allocated`), here for the allocator's own arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DefragInfo {
    /// Bytes in active pages (jemalloc: `pactive` x page size).
    pub active: u64,
    /// Bytes allocated, as jemalloc counts them (usable sizes of live blocks).
    pub allocated: u64,
}

impl DefragInfo {
    /// Redis's fragmentation percentage: `active / allocated x 100 - 100`
    /// (`getAllocatorFragmentation` in Redis 7.0's `src/defrag.c`); 0 when nothing is
    /// allocated.
    pub fn frag_pct(&self) -> f64 {
        if self.allocated == 0 {
            0.0
        } else {
            self.active as f64 / self.allocated as f64 * 100.0 - 100.0
        }
    }

    /// Fragmented bytes: `active - allocated`.
    pub fn frag_bytes(&self) -> u64 {
        self.active.saturating_sub(self.allocated)
    }
}

/// What `experimental.utilization.query` says about one pointer, with the bin's nonfull slab
/// count and `slabcur`'s free regions: every input of [`hint_rule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlabUtil {
    /// Free regions in the pointer's slab.
    pub nfree: u64,
    /// Regions per slab of the pointer's size class (1 for a large allocation).
    pub nregs: u64,
    /// The pointer's extent size in bytes.
    pub size: u64,
    /// Free regions in the bin's slabs (`nregs x curslabs - curregs`).
    pub bin_nfree: u64,
    /// Regions in the bin's slabs (`nregs x curslabs`); 0 for a large allocation.
    pub bin_nregs: u64,
    /// Whether the pointer lies in the bin's current slab.
    pub in_slabcur: bool,
    /// Whether the bin has a current slab (the query names one).
    pub has_slabcur: bool,
    /// Free regions in the current slab.
    pub slabcur_nfree: u64,
    /// The bin's nonfull slabs, `slabcur` not counted (`stats...bins.<j>.nonfull_slabs`).
    pub nonfull_slabs: u64,
}

/// jemalloc 5.3's `SC_SMALL_MAXCLASS` with 4 KiB pages and a 16-byte quantum: the largest
/// small (slab-backed) size class.
pub const SMALL_MAXCLASS: u64 = 14 << 10;

/// Redis's defrag hint (`iget_defrag_hint`), on the figures of [`SlabUtil`]: `true` when the
/// pointer should move. See the [module docs](self).
pub fn hint_rule(u: &SlabUtil) -> bool {
    // Small allocations only: a slab of several regions (`alloc_ctx.slab`). A 1-region slab
    // does not exist for small classes with 4 KiB pages, and the query says `nregs == 1`,
    // `bin_nregs == 0` for a large extent.
    let small = u.bin_nregs > 0 && (u.nregs > 1 || u.size / u.nregs.max(1) <= SMALL_MAXCLASS);
    if !small || u.in_slabcur || u.nfree == 0 {
        return false;
    }
    let curslabs = u.bin_nregs / u.nregs;
    let curregs = u.bin_nregs - u.bin_nfree;
    let slabcur = u64::from(u.has_slabcur);
    // Full slabs: every slab that is neither nonfull nor slabcur.
    let full = curslabs.saturating_sub(u.nonfull_slabs + slabcur);
    let slabcur_used = if u.has_slabcur {
        u.nregs - u.slabcur_nfree.min(u.nregs)
    } else {
        0
    };
    let nonfull_used = curregs
        .saturating_sub(full * u.nregs)
        .saturating_sub(slabcur_used);
    let used_in_slab = u.nregs - u.nfree;
    used_in_slab * u.nonfull_slabs <= nonfull_used + nonfull_used / 8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bin of 8-region slabs: `slabs` lists each non-current slab's used regions; `cur`
    /// the current slab's used regions. The pointer is in the slab `slabs[at]`.
    fn case(slabs: &[u64], cur: Option<u64>, at: usize) -> SlabUtil {
        let nregs = 8;
        let all: Vec<u64> = slabs.iter().copied().chain(cur).collect();
        let curregs: u64 = all.iter().sum();
        SlabUtil {
            nfree: nregs - slabs[at],
            nregs,
            size: 4096,
            bin_nfree: nregs * all.len() as u64 - curregs,
            bin_nregs: nregs * all.len() as u64,
            in_slabcur: false,
            has_slabcur: cur.is_some(),
            slabcur_nfree: cur.map_or(0, |c| nregs - c),
            nonfull_slabs: slabs.iter().filter(|&&u| u < nregs).count() as u64,
        }
    }

    #[test]
    fn a_slab_below_the_average_of_nonfull_slabs_moves() {
        // Nonfull slabs use 1, 7 and 6 regions: average 14/3 = 4.67; 112.5% of it is 5.25.
        // Full slabs (8) and slabcur are not part of the average.
        let slabs = [1, 7, 6, 8, 8];
        assert!(hint_rule(&case(&slabs, Some(2), 0)), "1 x 3 <= 14 + 1");
        assert!(!hint_rule(&case(&slabs, Some(2), 1)), "7 x 3 > 15");
        assert!(!hint_rule(&case(&slabs, Some(2), 2)), "6 x 3 > 15");
        assert!(
            !hint_rule(&case(&slabs, Some(2), 3)),
            "a full slab never moves"
        );
    }

    #[test]
    fn the_eighth_of_slack_lets_equal_slabs_move() {
        // All nonfull slabs equally used: 4 x 3 <= 12 + 1, so each may move (the 12.5%
        // weight that avoids stagnation).
        assert!(hint_rule(&case(&[4, 4, 4], None, 1)));
        // 5 x 2 = 10 <= 9 + 9 / 8 = 10 moves; 6 x 2 = 12 > 10 + 10 / 8 = 11 stays.
        assert!(hint_rule(&case(&[5, 4], None, 0)));
        assert!(!hint_rule(&case(&[6, 4], None, 0)));
    }

    #[test]
    fn slabcur_and_large_allocations_never_move() {
        let mut u = case(&[1, 7], Some(2), 0);
        assert!(hint_rule(&u));
        u.in_slabcur = true;
        assert!(!hint_rule(&u));
        let large = SlabUtil {
            nfree: 0,
            nregs: 1,
            size: 64 << 10,
            ..SlabUtil::default()
        };
        assert!(!hint_rule(&large));
    }

    #[test]
    fn frag_pct_is_redis_formula() {
        let d = DefragInfo {
            active: 190,
            allocated: 100,
        };
        assert!((d.frag_pct() - 90.0).abs() < 1e-9);
        assert_eq!(d.frag_bytes(), 90);
        assert_eq!(DefragInfo::default().frag_pct(), 0.0);
    }
}
