//! The allocator contract and every allocator fraglab measures.
//!
//! An [`Allocator`] hands out raw blocks for item memory. fraglab's engine is generic over it
//! (static dispatch), so the same workload can be replayed into:
//!
//! | name | what it is | `footprint_bytes` |
//! |---|---|---|
//! | [`slab`](slab::Slab) | memcached 1.6.18's slab allocator: classes, 1 MiB pages, per-class free lists | pages x 1 MiB (`total_malloced`) |
//! | [`zmalloc`](zmalloc::Zmalloc) | Redis's zmalloc (size header or usable size) over glibc, jemalloc or mimalloc | the backend's |
//! | [`glibc`](glibc::Glibc) | glibc malloc, `malloc_usable_size`, `mallinfo2` | `arena + hblkhd` (process-wide) |
//! | [`jemalloc`](jemalloc::Jemalloc) | jemalloc 5.3 on a dedicated arena, thread cache off | the arena's active pages |
//! | [`mimalloc`](mimalloc::Mimalloc) | mimalloc 2.x on a dedicated heap | the heap's committed bytes |
//! | [`bump`](bump::Bump) | bumpalo: never reuses freed memory (the no-reuse bound) | the arena's chunk capacity |
//! | [`log`](log::Log) | RAMCloud's log-structured memory: segments, a cleaner that moves blocks | segments in use x segment size |
//!
//! Every allocator counts only the memory it manages for its caller: jemalloc and mimalloc
//! through a dedicated arena or heap, glibc by being used for nothing else. A program that
//! measures glibc must therefore install another global allocator (the `fraglab` binary uses
//! mimalloc's default heap, which is separate from the heap under test).
//!
//! # Example
//!
//! ```
//! use fraglab_allocators::{Allocator, AllocSpec};
//! use fraglab_allocators::slab::{Slab, SlabConfig};
//!
//! let mut slab = Slab::new(SlabConfig::default()).unwrap();
//! // A 100-byte request lands in memcached's 120-byte class (class 2).
//! assert_eq!(slab.usable_size(100), Ok(120));
//! assert_eq!(slab.size_class(100), Some(2));
//! let block = slab.alloc(100).unwrap();
//! assert_eq!(slab.stats().footprint_bytes, 1 << 20); // one page, taken lazily
//! // SAFETY: `block` came from this allocator with size 100 and is freed once.
//! unsafe { slab.free(block.ptr, 100) };
//!
//! let spec: AllocSpec = "slab:factor=2,min=16".parse().unwrap();
//! assert_eq!(spec.to_string(), "slab:factor=2,min=16,chunk_max=524288,item_max=1048576");
//! ```

use std::ptr::NonNull;

pub mod bump;
pub mod defrag;
pub mod glibc;
pub mod heap;
pub mod jemalloc;
pub mod log;
pub mod mimalloc;
pub mod page;
pub mod page_file;
pub mod slab;
pub mod spec;
mod stats;
pub mod zmalloc;

pub use defrag::DefragInfo;
pub use spec::{AllocSpec, AllocSpecError, WithAllocator};
pub use stats::{AllocCounters, Detail, MemStats};

/// Why an allocation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// No class, page or limit could ever hold a request of this size (memcached: "object too
    /// large for cache"). Retrying after an eviction will not help.
    #[error("request of {size} bytes is larger than the largest block this allocator can hold ({max} bytes)")]
    TooLarge {
        /// The request that was refused.
        size: usize,
        /// The largest request the allocator accepts.
        max: usize,
    },
    /// The memory limit is reached (or the operating system refused memory). The engine
    /// evicts and retries, or reports the error.
    #[error("memory limit reached: a request of {size} bytes does not fit")]
    OutOfMemory {
        /// The request that was refused; or, when the request is built of several blocks
        /// (the slab's chunked items), the size of the block that did not fit, so that the
        /// engine evicts in the size class that ran out.
        size: usize,
    },
}

impl AllocError {
    /// The refusal of a request of `size` bytes that costs `cost` under a memory limit:
    /// `TooLarge` when it would not fit even with nothing else allocated, `OutOfMemory`
    /// otherwise.
    pub fn over_limit(limit: Option<u64>, size: usize, cost: usize) -> AllocError {
        match limit {
            Some(limit) if cost as u64 > limit => AllocError::TooLarge {
                size,
                max: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            _ => AllocError::OutOfMemory { size },
        }
    }
}

/// A block handed out by an allocator.
///
/// `usable` bytes starting at `ptr` belong to the caller until the block is freed, unless the
/// allocator reports the block as segmented ([`Allocator::is_segmented`]): then the bytes are
/// spread over several chunks, `usable` is their total, and the caller reaches them through
/// [`Allocator::for_each_segment`] (memcached's chunked large items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Start of the caller's bytes.
    pub ptr: NonNull<u8>,
    /// How many bytes the caller may use (at least the requested size).
    pub usable: usize,
}

/// What an allocator's memory limit counts, in the semantics of the system it models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// memcached's `-m`: whole pages taken from the OS (`total_malloced`), with the rule that a
    /// class with no page yet always gets its first one.
    Pages,
    /// Redis's `maxmemory`: zmalloc's `used_memory`.
    UsedMemory,
    /// The sum of usable sizes of live blocks (`allocated_bytes`), as Redis would count it on
    /// top of this allocator.
    AllocatedBytes,
    /// Memory ever taken from the OS (`footprint_bytes`): for an allocator that never reuses.
    Footprint,
}

/// Receives the news that an allocator moved a live block (compaction): the owner of the
/// block updates its reference, the relocation hook of an allocator that moves blocks (the
/// [`log`] allocator's cleaner).
pub trait Relocate {
    /// The block of `size` requested bytes at `from` now lives at `to`, with the same bytes;
    /// `from` is invalid.
    fn relocated(&mut self, from: NonNull<u8>, to: NonNull<u8>, size: usize);

    /// Whether the live block at `ptr` must not move now (the caller holds its address
    /// across the compaction, such as the item a write is rewriting). An allocator leaves
    /// such a block, and what it would have freed with it, in place.
    fn pinned(&self, ptr: NonNull<u8>) -> bool {
        let _ = ptr;
        false
    }
}

/// Page moves between size classes: memcached's slab rebalancer and automover, for an
/// allocator that has classes of pages ([`slab`](slab::Slab)). The owner of the items drives a
/// move (it alone can drop or re-point an item): [`start`](PageMover::start), then for every
/// live chunk either drop its item or [`rescue`](PageMover::rescue) it, then
/// [`finish`](PageMover::finish). See [`slab`]'s `mover` module.
pub trait PageMover {
    /// `slab_automove`: 0, 1 or 2.
    fn automove_mode(&self) -> u8;

    /// Ops per maintainer tick when the workload has no time.
    fn tick_ops(&self) -> u64;

    /// Microseconds of trace time a page move keeps the mover busy.
    fn move_us(&self) -> u64;

    /// Number of classes (class ids are 1..=this).
    fn class_count(&self) -> usize;

    /// One automover tick (mode 1): `(src, dst)` to move, `dst` 0 for the global pool.
    fn automove_run(&mut self, items: &[slab::ClassActivity]) -> Option<(u32, u32)>;

    /// The source for a page request to `dst` (mode 2's `slabs_reassign(-1, dst)`).
    fn pick_any(&mut self, dst: u32) -> Option<u32>;

    /// Starts moving the first page of `src` to `dst` (0: the pool); returns its live chunks.
    fn start(&mut self, src: u32, dst: u32) -> Result<Vec<slab::LiveChunk>, slab::MoveError>;

    /// The live block a chunk of the moving page belongs to, or `None` once it is cleared.
    fn block(&self, chunk: &slab::LiveChunk) -> Option<NonNull<u8>>;

    /// Copies a chunk out of the moving page: `Some` when its block moved.
    fn rescue(&mut self, chunk: &slab::LiveChunk)
        -> Result<Option<slab::Rescued>, slab::MoveError>;

    /// Finishes the move once every chunk is cleared.
    fn finish(&mut self) -> Result<NonNull<u8>, slab::MoveError>;
}

/// The allocator contract the engine is generic over.
///
/// Sizes passed to [`free`](Allocator::free) and [`realloc`](Allocator::realloc) are the sizes
/// the block was requested with (like Rust's `GlobalAlloc::dealloc` takes the layout): every
/// allocator needs them to keep `requested_bytes` exact, and the slab allocator finds the class
/// from them, as memcached finds it from the item header.
pub trait Allocator {
    /// Whether this allocator may move live blocks (see [`compact`](Allocator::compact)).
    const MOVES_BLOCKS: bool = false;

    /// The name used in allocator specs (`slab`, `zmalloc`, ...).
    fn name(&self) -> &'static str;

    /// Allocates `size` bytes.
    fn alloc(&mut self, size: usize) -> Result<Block, AllocError>;

    /// Allocates an item of `size` bytes whose first `head` bytes (its header and key) must
    /// stay in one piece. Only an allocator that splits large blocks (memcached's chunked items)
    /// uses `head`: it keeps the head in a header chunk and spreads the rest over chunks.
    fn alloc_item(&mut self, size: usize, head: usize) -> Result<Block, AllocError> {
        let _ = head;
        self.alloc(size)
    }

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` must be a live block of this allocator and `size` the size it was requested (or
    /// last reallocated) with. The block must not be used afterwards.
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize);

    /// Resizes a block, keeping its first `min(old_size, new_size)` bytes. On error the old
    /// block is untouched and still live.
    ///
    /// # Safety
    /// As for [`free`](Allocator::free): `ptr` is live and `old_size` its requested size. On
    /// success the old pointer must not be used again.
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<Block, AllocError>;

    /// How much `allocated_bytes` grows by if a request of `size` bytes succeeds now, without
    /// allocating (the slab's chunk size, jemalloc's `nallocx`, zmalloc's `used_memory` step).
    fn usable_size(&self, size: usize) -> Result<usize, AllocError>;

    /// How much `allocated_bytes` grows by if `alloc_item(size, head)` succeeds now. Differs
    /// from [`usable_size`](Allocator::usable_size) only for allocators that use `head`.
    fn usable_size_item(&self, size: usize, head: usize) -> Result<usize, AllocError> {
        let _ = head;
        self.usable_size(size)
    }

    /// The usable size of a live block as the allocator reports it (`malloc_usable_size`,
    /// `sallocx`, the chunk size). Defaults to the prediction.
    ///
    /// # Safety
    /// `ptr` must be a live block of this allocator requested with `size` bytes.
    unsafe fn usable_size_of(&self, ptr: NonNull<u8>, size: usize) -> usize {
        let _ = ptr;
        self.usable_size(size).unwrap_or(size)
    }

    /// The size class a request of `size` bytes falls in, where the allocator has classes it
    /// exposes (the slab allocator's class id, 1-based as in memcached); `None` otherwise.
    fn size_class(&self, size: usize) -> Option<u32> {
        let _ = size;
        None
    }

    /// The largest request whose block is contiguous (not split over chunks).
    fn max_contiguous(&self) -> usize {
        usize::MAX
    }

    /// Whether a block of `size` requested bytes is split over several chunks.
    fn is_segmented(&self, size: usize) -> bool {
        let _ = size;
        false
    }

    /// Calls `f` with every piece of a block's memory, in order, as (start, length); the
    /// lengths add up to the requested `size`. A contiguous block is one piece.
    ///
    /// # Safety
    /// `ptr` must be a live block of this allocator requested with `size` bytes.
    unsafe fn for_each_segment(
        &self,
        ptr: NonNull<u8>,
        size: usize,
        f: &mut dyn FnMut(NonNull<u8>, usize),
    ) {
        f(ptr, size)
    }

    /// Calls `f(start, len, block)` for every region of memory the allocator owns and cuts
    /// into blocks of `block` bytes from `start` (a slab class's page and its chunk size),
    /// for a copy-on-write done in user space at block granularity; returns whether the
    /// allocator owns its blocks so (by default it does not: its memory is a library's).
    fn for_each_block_region(&self, f: &mut dyn FnMut(NonNull<u8>, usize, usize)) -> bool {
        let _ = f;
        false
    }

    /// A warm restart (memcached's `-e`): writes what a new process needs to find the
    /// allocator's memory again, and opens it again at a new address as a new allocator whose
    /// blocks are all taken, none free, until [`adopt_blocks`](Allocator::adopt_blocks) says
    /// which hold live data. Returns it and the bytes of metadata written. Only an allocator
    /// whose memory is a file can (`slab:file=PATH`, `allocators/src/slab/restart.rs`).
    fn restart(&mut self) -> Result<(Self, u64), String>
    where
        Self: Sized,
    {
        Err(format!(
            "{} keeps no memory across a restart; use slab:file=PATH",
            self.name()
        ))
    }

    /// Where the memory a restart keeps is mapped (the page file's base), if it is a file's:
    /// addresses stored in it move by the difference between two mappings' bases.
    fn file_base(&self) -> Option<NonNull<u8>> {
        None
    }

    /// After [`restart`](Allocator::restart): `live(block, block_size)` says, for every block
    /// of the reopened memory, whether it holds live data (its requested size) or is free.
    fn adopt_blocks(&mut self, live: &mut dyn FnMut(NonNull<u8>, usize) -> Option<usize>) {
        let _ = live;
    }

    /// A snapshot of the allocator's accounting. Cheap enough to call every few thousand ops.
    fn stats(&self) -> MemStats;

    /// Sets (or with `None` removes) the memory limit, counted as [`limit_kind`] says.
    ///
    /// [`limit_kind`]: Allocator::limit_kind
    fn set_limit(&mut self, limit: Option<u64>);

    /// The memory limit in bytes, if any.
    fn limit(&self) -> Option<u64>;

    /// What the memory limit counts.
    fn limit_kind(&self) -> LimitKind;

    /// Moves live blocks to reduce fragmentation, telling `relocate` about every move, and
    /// returns the number of bytes of footprint released. Allocators that never move blocks
    /// (all but [`log`]) return 0. The caller must hold no address of a block across the call
    /// unless `relocate` pins it.
    fn compact(&mut self, relocate: &mut dyn Relocate) -> u64 {
        let _ = relocate;
        0
    }

    /// Whether the allocator would like [`compact`](Allocator::compact) to run now (the log's
    /// cleaning threshold is crossed). The engine asks before each allocating step.
    fn wants_compaction(&self) -> bool {
        false
    }

    /// The page mover, for an allocator whose pages can change class (the slab allocator).
    fn page_mover(&mut self) -> Option<&mut dyn PageMover> {
        None
    }

    /// The slab automover's mode (`slab_automove`: 0 off, 1, 2), for an allocator that has
    /// one; 0 otherwise.
    fn automove_mode(&self) -> u8 {
        0
    }

    /// The version of the underlying library, where there is one (`5.3.0-...` for jemalloc).
    fn library_version(&self) -> Option<String> {
        None
    }

    /// Called when a request failed with [`AllocError::OutOfMemory`] `{ size }` and the caller
    /// found nothing to evict for `size`. Returns `true` if a retry may now succeed another
    /// way. The slab's chunked items do this: a tail chunk first waits for an eviction in its
    /// own class, and only when there is none takes a full-size chunk (memcached's
    /// `do_item_alloc_chunk`). Others have no second way and return `false`.
    fn on_no_victim(&mut self, size: usize) -> bool {
        let _ = size;
        false
    }

    /// Redis's active defrag: the allocator's active and allocated bytes, refreshing what
    /// [`defrag_hint`](Allocator::defrag_hint) reads ([`defrag`]). `None` (the default): the
    /// allocator gives no per-pointer hint, so active defrag cannot run over it. jemalloc and
    /// zmalloc over jemalloc answer.
    fn defrag_info(&mut self) -> Option<DefragInfo> {
        None
    }

    /// Whether the live block at `ptr` should move to defragment (Redis's
    /// `je_get_defrag_hint`, [`defrag`]). The default: never.
    ///
    /// # Safety
    /// `ptr` must be a live block of this allocator requested with `size` bytes.
    unsafe fn defrag_hint(&mut self, ptr: NonNull<u8>, size: usize) -> bool {
        let _ = (ptr, size);
        false
    }

    /// Moves a live block as Redis's `activeDefragAlloc` does: allocates the same size
    /// (bypassing the thread cache: fraglab's jemalloc arena has none), copies the bytes,
    /// frees the old block. Returns the new block, or `None` (the old block untouched) when
    /// the allocation is refused. The caller fixes every reference to the block.
    ///
    /// # Safety
    /// `ptr` must be a live contiguous block of this allocator requested with `size` bytes;
    /// on `Some` it must not be used again.
    unsafe fn defrag_move(&mut self, ptr: NonNull<u8>, size: usize) -> Option<NonNull<u8>> {
        let new = self.alloc(size).ok()?.ptr;
        // SAFETY: both blocks hold at least `size` bytes and are distinct live blocks; the
        // old one is freed once, with its requested size.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), size);
            self.free(ptr, size);
        }
        Some(new)
    }
}

/// Walks the segments of a block that overlap `[offset, offset + len)`, calling `f` with the
/// segment memory at that point, the position in the range, and the length of the overlap.
///
/// # Safety
/// `ptr` must be a live block of `alloc` requested with `size` bytes, and
/// `offset + len <= size`.
unsafe fn walk_range<A: Allocator + ?Sized>(
    alloc: &A,
    ptr: NonNull<u8>,
    size: usize,
    offset: usize,
    len: usize,
    f: &mut dyn FnMut(*mut u8, usize, usize),
) {
    debug_assert!(offset + len <= size);
    let mut pos = 0usize;
    // SAFETY: the caller guarantees the block is live with `size` bytes; the pointer handed to
    // `f` stays inside the segment the allocator reported.
    unsafe {
        alloc.for_each_segment(ptr, size, &mut |seg, seg_len| {
            let (start, end) = (pos, pos + seg_len);
            pos = end;
            let from = offset.max(start);
            let to = (offset + len).min(end);
            if from < to {
                f(seg.as_ptr().add(from - start), from - offset, to - from);
            }
        });
    }
}

/// Copies `bytes` into a block at `offset`, across segments if the block is segmented.
///
/// # Safety
/// `ptr` must be a live block of `alloc` requested with `size` bytes, and
/// `offset + bytes.len() <= size`.
pub unsafe fn write_block<A: Allocator + ?Sized>(
    alloc: &A,
    ptr: NonNull<u8>,
    size: usize,
    offset: usize,
    bytes: &[u8],
) {
    // SAFETY: the caller's promise; each copy is `n` bytes inside both the segment and `bytes`.
    unsafe {
        walk_range(alloc, ptr, size, offset, bytes.len(), &mut |dst, at, n| {
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(at), dst, n)
        })
    }
}

/// Reads `out.len()` bytes of a block from `offset`, across segments if needed.
///
/// # Safety
/// As for [`write_block`].
pub unsafe fn read_block<A: Allocator + ?Sized>(
    alloc: &A,
    ptr: NonNull<u8>,
    size: usize,
    offset: usize,
    out: &mut [u8],
) {
    let out_ptr = out.as_mut_ptr();
    // SAFETY: the caller's promise; each copy is `n` bytes inside both the segment and `out`.
    unsafe {
        walk_range(alloc, ptr, size, offset, out.len(), &mut |src, at, n| {
            std::ptr::copy_nonoverlapping(src, out_ptr.add(at), n)
        })
    }
}
