//! A bump arena (bumpalo): never reuses freed memory. The no-reuse bound.
//!
//! Every request bumps a pointer in bumpalo's current chunk (8-aligned, so a block costs its
//! size rounded up to 8); `free` only updates the books, and `realloc` always copies into a
//! fresh block. The footprint is the capacity of every chunk the arena has taken
//! (`Bump::allocated_bytes`), which only grows; the memory limit caps it, through bumpalo's own
//! allocation limit.

use std::alloc::Layout;
use std::ptr::NonNull;

pub use crate::stats::BumpDetail;
use crate::stats::{Detail, MemStats, Tally};
use crate::{AllocError, Allocator, Block, LimitKind};

const ALIGN: usize = 8;

/// The bump arena under fraglab's accounting.
#[derive(Debug)]
pub struct Bump {
    bump: bumpalo::Bump,
    tally: Tally,
    bumped: u64,
    limit: Option<u64>,
}

impl Bump {
    /// An empty arena whose first chunk holds at least `capacity` bytes (0: bumpalo's default).
    ///
    /// # Panics
    /// If the first chunk cannot be had from the system; [`Bump::try_with_capacity`] says so
    /// instead.
    pub fn with_capacity(capacity: usize) -> Self {
        match Self::try_with_capacity(capacity) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    /// An empty arena whose first chunk holds at least `capacity` bytes, or an error when the
    /// system cannot give that chunk (`bump:capacity=200t`).
    pub fn try_with_capacity(capacity: usize) -> Result<Self, String> {
        let bump = bumpalo::Bump::try_with_capacity(capacity).map_err(|_| {
            format!("the system refused a first chunk of {capacity} bytes (bump:capacity)")
        })?;
        Ok(Bump {
            bump,
            tally: Tally::default(),
            bumped: 0,
            limit: None,
        })
    }

    fn cost(size: usize) -> usize {
        size.max(1).next_multiple_of(ALIGN)
    }
}

impl Default for Bump {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl Allocator for Bump {
    fn name(&self) -> &'static str {
        "bump"
    }

    #[inline]
    fn alloc(&mut self, size: usize) -> Result<Block, AllocError> {
        let usable = Self::cost(size);
        let layout = Layout::from_size_align(usable, ALIGN).map_err(|_| AllocError::TooLarge {
            size,
            max: isize::MAX as usize,
        })?;
        match self.bump.try_alloc_layout(layout) {
            Ok(ptr) => {
                self.bumped += usable as u64;
                self.tally.on_alloc(size, usable);
                Ok(Block { ptr, usable })
            }
            Err(_) => {
                self.tally.on_failure();
                Err(AllocError::over_limit(self.limit, size, usable))
            }
        }
    }

    unsafe fn free(&mut self, _ptr: NonNull<u8>, size: usize) {
        self.tally.on_free(size, Self::cost(size));
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<Block, AllocError> {
        let block = self.alloc(new_size)?;
        // SAFETY: `ptr` is live with `old_size` bytes (caller's promise) and `block` is a fresh
        // block of at least `new_size` bytes; bump blocks never overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr.as_ptr(), block.ptr.as_ptr(), old_size.min(new_size))
        };
        self.tally.on_free(old_size, Self::cost(old_size));
        self.tally.count_as_realloc();
        Ok(block)
    }

    fn usable_size(&self, size: usize) -> Result<usize, AllocError> {
        Ok(Self::cost(size))
    }

    fn stats(&self) -> MemStats {
        let chunk_bytes = self.bump.allocated_bytes() as u64;
        self.tally.snapshot(
            chunk_bytes,
            Detail::Bump(BumpDetail {
                chunk_bytes,
                bumped_bytes: self.bumped,
                dead_bytes: self.bumped - self.tally.allocated,
            }),
        )
    }

    fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit;
        self.bump
            .set_allocation_limit(limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)));
    }

    fn limit(&self) -> Option<u64> {
        self.limit
    }

    fn limit_kind(&self) -> LimitKind {
        LimitKind::Footprint
    }

    fn library_version(&self) -> Option<String> {
        Some("bumpalo 3".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_is_never_reused() {
        let mut b = Bump::default();
        let first = b.alloc(100).unwrap();
        // SAFETY: live with 100 requested bytes.
        unsafe { b.free(first.ptr, 100) };
        let second = b.alloc(100).unwrap();
        assert_ne!(first.ptr, second.ptr);
        let st = b.stats();
        assert_eq!(
            (st.live_blocks, st.requested_bytes, st.allocated_bytes),
            (1, 100, 104)
        );
        let Detail::Bump(d) = st.detail else {
            unreachable!()
        };
        assert_eq!((d.bumped_bytes, d.dead_bytes), (208, 104));
        assert!(st.footprint_bytes >= 208);
    }

    #[test]
    fn limit_caps_the_chunks() {
        let mut b = Bump::default();
        b.set_limit(Some(64 << 10));
        let mut n = 0;
        while b.alloc(1000).is_ok() {
            n += 1;
        }
        assert!(
            n > 10 && n < 66,
            "{n} blocks of 1000 bytes under a 64 KiB cap"
        );
        assert!(b.stats().footprint_bytes <= 64 << 10);
    }
}
