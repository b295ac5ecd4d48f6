//! `MemStats`: what every allocator reports, and exactly what each field counts.

use serde::{Deserialize, Serialize};

use crate::bump::BumpDetail;
use crate::glibc::GlibcDetail;
use crate::jemalloc::JemallocDetail;
use crate::mimalloc::MimallocDetail;
use crate::slab::SlabDetail;
use crate::zmalloc::ZmallocDetail;

/// Calls made to an allocator since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Successful `alloc` / `alloc_item` calls.
    pub allocs: u64,
    /// `free` calls.
    pub frees: u64,
    /// Successful `realloc` calls.
    pub reallocs: u64,
    /// Calls to `alloc`, `alloc_item` or `realloc` that returned an error (`TooLarge` or
    /// `OutOfMemory`).
    pub failed: u64,
}

/// A snapshot of an allocator's accounting, in bytes unless said otherwise.
///
/// The four byte counts nest for allocators that own their memory:
/// `requested_bytes <= allocated_bytes <= footprint_bytes`. The differences are the lab's
/// derived metrics: internal waste = `allocated - requested` (size-class rounding, slab chunk
/// slack, zmalloc's prefix), external fragmentation = `footprint - allocated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemStats {
    /// Blocks allocated and not yet freed. A memcached chunked item counts as one block.
    pub live_blocks: u64,
    /// Sum of the sizes requested for live blocks (the `size` passed to `alloc`, or the last
    /// `realloc`).
    pub requested_bytes: u64,
    /// Sum of what live blocks cost in the allocator's own accounting: the slab chunk size
    /// (every chunk of a chunked item, chunk headers included); the usable size reported by
    /// glibc (`malloc_usable_size`), jemalloc (`sallocx`) or mimalloc (`mi_usable_size`);
    /// zmalloc's `used_memory`; the bytes bumped for a live block in the bump arena.
    pub allocated_bytes: u64,
    /// Memory the allocator holds from the operating system for the blocks it manages: slab
    /// pages x 1 MiB; glibc `arena + hblkhd` from `mallinfo2` (process-wide, less the figure
    /// at construction); jemalloc's dedicated arena's active pages x page size; mimalloc's
    /// dedicated heap's committed bytes; the bump arena's chunk capacity.
    pub footprint_bytes: u64,
    /// Call counters.
    pub counters: Counters,
    /// Allocator-specific figures.
    pub detail: Detail,
}

/// Allocator-specific statistics, tagged by allocator name when serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "allocator", rename_all = "snake_case")]
pub enum Detail {
    /// memcached's `stats slabs`.
    Slab(SlabDetail),
    /// zmalloc's `used_memory`, its histogram and the backend's own detail.
    Zmalloc(ZmallocDetail),
    /// glibc's `mallinfo2`.
    Glibc(GlibcDetail),
    /// jemalloc's per-arena statistics.
    Jemalloc(JemallocDetail),
    /// mimalloc's heap visit.
    Mimalloc(MimallocDetail),
    /// bumpalo's chunk figures.
    Bump(BumpDetail),
}

impl MemStats {
    /// Internal waste: `allocated - requested`.
    pub fn internal_waste(&self) -> i64 {
        self.allocated_bytes as i64 - self.requested_bytes as i64
    }

    /// External fragmentation: `footprint - allocated`.
    pub fn external_fragmentation(&self) -> i64 {
        self.footprint_bytes as i64 - self.allocated_bytes as i64
    }
}

/// Live-block accounting shared by every allocator: the counters plus the three sums that move
/// on every call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub live_blocks: u64,
    pub requested: u64,
    pub allocated: u64,
    pub counters: Counters,
}

impl Tally {
    #[inline]
    pub fn on_alloc(&mut self, requested: usize, allocated: usize) {
        self.live_blocks += 1;
        self.requested += requested as u64;
        self.allocated += allocated as u64;
        self.counters.allocs += 1;
    }

    #[inline]
    pub fn on_free(&mut self, requested: usize, allocated: usize) {
        self.live_blocks -= 1;
        self.requested -= requested as u64;
        self.allocated -= allocated as u64;
        self.counters.frees += 1;
    }

    #[inline]
    pub fn on_realloc(&mut self, old: (usize, usize), new: (usize, usize)) {
        self.requested = self.requested - old.0 as u64 + new.0 as u64;
        self.allocated = self.allocated - old.1 as u64 + new.1 as u64;
        self.counters.reallocs += 1;
    }

    #[inline]
    pub fn on_failure(&mut self) {
        self.counters.failed += 1;
    }

    pub fn snapshot(&self, footprint: u64, detail: Detail) -> MemStats {
        MemStats {
            live_blocks: self.live_blocks,
            requested_bytes: self.requested,
            allocated_bytes: self.allocated,
            footprint_bytes: footprint,
            counters: self.counters,
            detail,
        }
    }
}
