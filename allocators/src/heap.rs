//! What glibc, jemalloc and mimalloc share: a malloc-style heap under fraglab's accounting.
//!
//! Each of the three supplies the raw calls ([`RawHeap`]); [`MallocHeap`] adds the live-block
//! tally, the memory limit and the contract. The limit counts `allocated_bytes` (the sum of
//! usable sizes), as Redis would count `used_memory` on top of the allocator: an allocation is
//! made, measured, and given back with `OutOfMemory` if it would cross the limit; a `realloc`
//! is checked beforehand against an upper bound of the new usable size, because a C `realloc`
//! cannot be undone.

use std::ptr::NonNull;

use crate::defrag::DefragInfo;
use crate::stats::{Detail, MemStats, Tally};
use crate::{AllocError, Allocator, Block, LimitKind};

/// The raw calls of a malloc-style heap.
pub trait RawHeap {
    /// The allocator's spec name.
    const NAME: &'static str;
    /// `malloc(size)` on this heap; `None` when the system refuses.
    fn malloc(&mut self, size: usize) -> Option<NonNull<u8>>;
    /// `realloc`; on `None` the old block is untouched.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap requested with `old_size` bytes.
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>>;
    /// `free`.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap requested with `size` bytes; it is not used again.
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize);
    /// The usable size of a live block (`malloc_usable_size`, `sallocx`, `mi_usable_size`).
    ///
    /// # Safety
    /// `ptr` is a live block of this heap.
    unsafe fn usable(&self, ptr: NonNull<u8>) -> usize;
    /// The usable size a request of `size` bytes gets, as the library predicts it.
    fn predict(&self, size: usize) -> usize;
    /// An upper bound of the usable size `realloc(ptr, new_size)` can give (for the limit
    /// check made before a `realloc`, which cannot be undone). Defaults to the prediction, for
    /// libraries whose prediction is exact.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap.
    unsafe fn predict_max(&self, ptr: NonNull<u8>, new_size: usize) -> usize {
        let _ = ptr;
        self.predict(new_size)
    }
    /// Bytes the heap holds from the OS for its blocks.
    fn footprint(&self) -> u64;
    /// The library's own figures.
    fn detail(&self) -> Detail;
    /// The library's version.
    fn version(&self) -> Option<String>;
    /// Active defrag's figures, refreshing what the hint reads (`crate::defrag`); `None` for a
    /// library without the defrag hint.
    fn defrag_refresh(&mut self) -> Option<DefragInfo> {
        None
    }
    /// The defrag hint for a live block.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap.
    unsafe fn defrag_hint(&mut self, ptr: NonNull<u8>) -> bool {
        let _ = ptr;
        false
    }
}

/// A [`RawHeap`] under fraglab's accounting. See the [module docs](self).
#[derive(Debug)]
pub struct MallocHeap<H> {
    raw: H,
    tally: Tally,
    limit: Option<u64>,
}

impl<H: RawHeap> MallocHeap<H> {
    pub(crate) fn from_raw(raw: H) -> Self {
        MallocHeap {
            raw,
            tally: Tally::default(),
            limit: None,
        }
    }

    /// The raw heap.
    pub fn raw(&self) -> &H {
        &self.raw
    }

    fn fits(&self, extra: u64, released: u64) -> bool {
        self.limit
            .is_none_or(|limit| self.tally.allocated - released + extra <= limit)
    }

    /// The error for a request that does not fit: `TooLarge` if it could not fit even in an
    /// empty heap under the limit, `OutOfMemory` otherwise.
    fn refusal(&mut self, size: usize, cost: usize) -> AllocError {
        self.tally.on_failure();
        AllocError::over_limit(self.limit, size, cost)
    }
}

/// An allocator zmalloc can sit on: a malloc-style heap whose blocks are contiguous and whose
/// `realloc` result can be bounded beforehand.
pub trait MallocBackend: Allocator {
    /// An upper bound of the usable size `realloc(ptr, _, new_size)` can give.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator.
    unsafe fn realloc_usable_max(&self, ptr: NonNull<u8>, new_size: usize) -> usize;
}

impl<H: RawHeap> MallocBackend for MallocHeap<H> {
    unsafe fn realloc_usable_max(&self, ptr: NonNull<u8>, new_size: usize) -> usize {
        // SAFETY: the caller's promise is passed on.
        unsafe { self.raw.predict_max(ptr, new_size.max(1)) }
    }
}

impl<H: RawHeap> Allocator for MallocHeap<H> {
    fn name(&self) -> &'static str {
        H::NAME
    }

    #[inline]
    fn alloc(&mut self, size: usize) -> Result<Block, AllocError> {
        let Some(ptr) = self.raw.malloc(size.max(1)) else {
            self.tally.on_failure();
            return Err(AllocError::OutOfMemory { size });
        };
        // SAFETY: `ptr` was just returned by this heap.
        let usable = unsafe { self.raw.usable(ptr) };
        if !self.fits(usable as u64, 0) {
            // SAFETY: `ptr` is live, requested with `size.max(1)` bytes, and never handed out.
            unsafe { self.raw.free(ptr, size.max(1)) };
            return Err(self.refusal(size, usable));
        }
        self.tally.on_alloc(size, usable);
        Ok(Block { ptr, usable })
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller promises `ptr` is a live block of this heap of `size` bytes.
        let usable = unsafe { self.raw.usable(ptr) };
        // SAFETY: as above; the block is not used again.
        unsafe { self.raw.free(ptr, size.max(1)) };
        self.tally.on_free(size, usable);
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<Block, AllocError> {
        // SAFETY: the caller promises `ptr` is live.
        let old_usable = unsafe { self.raw.usable(ptr) };
        // SAFETY: as above.
        let bound = unsafe { self.raw.predict_max(ptr, new_size.max(1)) };
        if !self.fits(bound as u64, old_usable as u64) {
            return Err(self.refusal(new_size, bound));
        }
        // SAFETY: the caller promises `ptr` is live with `old_size` bytes.
        let Some(new) = (unsafe { self.raw.realloc(ptr, old_size.max(1), new_size.max(1)) }) else {
            self.tally.on_failure();
            return Err(AllocError::OutOfMemory { size: new_size });
        };
        // SAFETY: `new` was just returned by this heap.
        let usable = unsafe { self.raw.usable(new) };
        self.tally
            .on_realloc((old_size, old_usable), (new_size, usable));
        Ok(Block { ptr: new, usable })
    }

    fn usable_size(&self, size: usize) -> Result<usize, AllocError> {
        Ok(self.raw.predict(size.max(1)))
    }

    unsafe fn usable_size_of(&self, ptr: NonNull<u8>, _size: usize) -> usize {
        // SAFETY: the caller promises `ptr` is live.
        unsafe { self.raw.usable(ptr) }
    }

    fn stats(&self) -> MemStats {
        self.tally.snapshot(self.raw.footprint(), self.raw.detail())
    }

    fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit;
    }

    fn limit(&self) -> Option<u64> {
        self.limit
    }

    fn limit_kind(&self) -> LimitKind {
        LimitKind::AllocatedBytes
    }

    fn library_version(&self) -> Option<String> {
        self.raw.version()
    }

    fn defrag_info(&mut self) -> Option<DefragInfo> {
        self.raw.defrag_refresh()
    }

    unsafe fn defrag_hint(&mut self, ptr: NonNull<u8>, _size: usize) -> bool {
        // SAFETY: the caller's promise is passed on.
        unsafe { self.raw.defrag_hint(ptr) }
    }
}
