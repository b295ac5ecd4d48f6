//! `MemStats`: what every allocator reports, and exactly what each field counts, with each
//! allocator's own detail.
//!
//! A leaf: this module uses nothing else of the crate, so the crate root and every allocator
//! module depend on it and never the other way. Each allocator module re-exports its detail
//! type (`slab::SlabDetail`, `zmalloc::ZmallocDetail`, ...).

use serde::{Deserialize, Serialize};

/// Calls made to an allocator since it was created. (The store's own event counters are the
/// engine's `StoreCounters`.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocCounters {
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
    pub counters: AllocCounters,
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
    /// The log's segments and cleaner.
    Log(LogDetail),
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

// ---- Each allocator's detail. ----

/// Per-class figures, with the names of memcached's `stats slabs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlabClassStats {
    /// Class id, 1-based.
    pub class: u32,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Chunks per 1 MiB page (memcached's `slabs.c` calls it `perslab`).
    pub chunks_per_page: u32,
    /// Pages assigned to the class.
    pub total_pages: u32,
    /// `total_pages x chunks_per_page`.
    pub total_chunks: u64,
    /// Chunks holding live data.
    pub used_chunks: u64,
    /// Chunks on the class's free list.
    pub free_chunks: u64,
    /// Sum of the requested sizes of the items in this class (memcached 1.6's `mem_requested`
    /// from `stats items`, the sum of `ntotal`); a chunked item counts whole in the largest
    /// class, whose LRU memcached links it into.
    pub mem_requested: u64,
}

/// The page mover's counters, named as memcached's `stats` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveStats {
    /// `slabs_moved`: pages moved.
    pub slabs_moved: u64,
    /// `slab_reassign_rescues`: items copied out of a moving page.
    pub rescues: u64,
    /// `slab_reassign_chunk_rescues`: chunks of chunked items copied out of a moving page.
    pub chunk_rescues: u64,
    /// `slab_reassign_evictions_nomem`: items evicted because their class had no free chunk.
    pub evictions_nomem: u64,
}

/// The slab allocator's detail: `stats slabs` plus the page-level figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlabDetail {
    /// Pages taken from the page source x page size (memcached's `total_malloced`).
    pub total_malloced: u64,
    /// The memory limit in bytes (`limit_maxbytes`), if any.
    pub limit_maxbytes: Option<u64>,
    /// Pages waiting in the global pool (released by rebalancing, not in any class).
    pub pool_pages: u32,
    /// Pages granted beyond the limit by the first-page rule.
    pub pages_past_limit: u32,
    /// Where pages come from (`mmap` or `heap`).
    pub page_source: String,
    /// Every class of the table, in order.
    pub classes: Vec<SlabClassStats>,
    /// `slab_automove` (0: off).
    pub automove: u8,
    /// The page mover's counters (`slabs_moved`, `slab_reassign_*`).
    pub moves: MoveStats,
}

/// zmalloc's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZmallocDetail {
    /// `used_memory`.
    pub used_memory: u64,
    /// Whether blocks carry the 8-byte size header.
    pub prefix: bool,
    /// The backend's name.
    pub backend: String,
    /// `zmalloc_allocations`: `[size, count]` for every requested size 0..=256 with a non-zero
    /// count, in order.
    pub allocations: Vec<[u64; 2]>,
    /// Allocations of more than 256 bytes.
    pub allocations_above: u64,
    /// The backend's own detail.
    pub backend_detail: Box<Detail>,
}

/// glibc's `mallinfo2` figures (process-wide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlibcDetail {
    /// glibc version (`gnu_get_libc_version`).
    pub version: String,
    /// `arena`: bytes taken with `sbrk`/`mmap` for the heaps (all arenas).
    pub arena: u64,
    /// `hblkhd`: bytes in chunks mapped on their own (requests above the mmap threshold).
    pub hblkhd: u64,
    /// `hblks`: number of such chunks.
    pub hblks: u64,
    /// `uordblks`: bytes in chunks in use.
    pub uordblks: u64,
    /// `fordblks`: bytes in free chunks.
    pub fordblks: u64,
    /// `keepcost`: releasable bytes at the top of the main heap.
    pub keepcost: u64,
    /// `arena + hblkhd` when the allocator was created (subtracted from the footprint).
    pub baseline: u64,
    /// Always true: these figures cover every glibc allocation in the process.
    pub process_wide: bool,
}

/// Per-arena statistics of the dedicated arena.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JemallocDetail {
    /// jemalloc version (`version`).
    pub version: String,
    /// The arena's index.
    pub arena: u32,
    /// Page size (`arenas.page`).
    pub page_size: u64,
    /// Pages in active extents (`stats.arenas.<i>.pactive`).
    pub pactive: u64,
    /// Dirty pages kept for reuse (`pdirty`).
    pub pdirty: u64,
    /// Muzzy pages (`pmuzzy`).
    pub pmuzzy: u64,
    /// Bytes in small allocations (`small.allocated`).
    pub small_allocated: u64,
    /// Bytes in large allocations (`large.allocated`).
    pub large_allocated: u64,
    /// Mapped bytes (`mapped`).
    pub mapped: u64,
    /// Resident bytes (`resident`): pages of the arena that are physically resident.
    pub resident: u64,
}

/// What a visit of the dedicated heap found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MimallocDetail {
    /// mimalloc version (`mi_version`, e.g. 20302 for 2.3.2).
    pub version: u32,
    /// Areas (pages) in the heap.
    pub areas: u64,
    /// Bytes reserved by the heap's areas.
    pub reserved: u64,
    /// Bytes committed by the heap's areas (the footprint).
    pub committed: u64,
    /// Blocks in use.
    pub used_blocks: u64,
    /// Bytes in use: the sum over areas of `used x block_size`.
    pub used_bytes: u64,
}

/// bumpalo's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BumpDetail {
    /// Capacity of all chunks (`allocated_bytes`).
    pub chunk_bytes: u64,
    /// Bytes bumped since creation, live or not.
    pub bumped_bytes: u64,
    /// Bytes bumped for blocks that have since been freed (never reused).
    pub dead_bytes: u64,
}

/// The log allocator's segments and what its cleaner did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogDetail {
    /// Segment size in bytes.
    pub segment_size: u64,
    /// The cleaner's policy (`cost-benefit` or `greedy`).
    pub cleaner: String,
    /// The `utilization` setting.
    pub utilization_target: f64,
    /// Segments in use (head, survivor and sealed).
    pub segments: u64,
    /// Segments the memory limit allows, if there is one.
    pub segments_max: Option<u64>,
    /// Segments the limit still allows, if there is one.
    pub segments_free: Option<u64>,
    /// Bytes of entries the caller appended (headers included).
    pub bytes_written: u64,
    /// Bytes of entries the cleaner copied.
    pub bytes_copied: u64,
    /// `(bytes_written + bytes_copied) / bytes_written` (1 before anything is written).
    pub write_amplification: f64,
    /// Times the cleaner ran.
    pub cleaner_runs: u64,
    /// Segments the cleaner emptied and freed.
    pub segments_cleaned: u64,
    /// Segments given back to the system (cleaned, or emptied by frees).
    pub segments_released: u64,
    /// Segments the cleaner passed over because a live block in them was pinned.
    pub cleaner_pinned_skips: u64,
    /// Live entries' bytes / footprint now.
    pub utilization: f64,
}

/// Live-block accounting shared by every allocator: the counters plus the three sums that move
/// on every call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub live_blocks: u64,
    pub requested: u64,
    pub allocated: u64,
    pub counters: AllocCounters,
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

    /// Books an alloc and a free that together made a realloc (a moving realloc built of the
    /// two calls) as the one realloc.
    #[inline]
    pub fn count_as_realloc(&mut self) {
        self.counters.allocs -= 1;
        self.counters.frees -= 1;
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
