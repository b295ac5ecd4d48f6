//! Redis's zmalloc over a backend allocator (glibc, jemalloc or mimalloc: any
//! [`MallocBackend`], whose blocks are contiguous).
//!
//! zmalloc keeps `used_memory`, the figure Redis's `maxmemory` is checked against. It has two
//! modes, as Redis 7.0's `zmalloc.c` does depending on whether the allocator can report a
//! block's size:
//!
//! - **size header** (`prefix=8`, the default here): each block gets an 8-byte prefix holding
//!   the requested size; `used_memory` grows by `requested + 8`, and `zfree` reads the header
//!   back to subtract the same amount.
//!
//!   ```text
//!   backend block:  +-------------------+----------------------------+
//!                   | size (u64, 8 B)   | the caller's bytes ...     |
//!                   +-------------------+----------------------------+
//!                                       ^ Block::ptr
//!   ```
//! - **usable size** (`prefix=0`, what Redis does on jemalloc and on glibc with
//!   `malloc_usable_size`): no header; `used_memory` grows by the block's usable size.
//!
//! Also kept: `zmalloc_allocations`, a count of allocations per requested size as Redis 2.2
//! kept it (sizes 0 to 256 exactly, one bucket above), counted on every `zmalloc` and on every
//! `zrealloc` for its new size, never decremented.

use std::ptr::NonNull;

use crate::defrag::DefragInfo;
use crate::heap::MallocBackend;
pub use crate::stats::ZmallocDetail;
use crate::stats::{AllocCounters, Detail, MemStats};
use crate::{AllocError, Allocator, Block, LimitKind};

/// zmalloc's `PREFIX_SIZE`.
pub const PREFIX_SIZE: usize = 8;
/// Sizes counted exactly by the allocation histogram; larger requests share one bucket.
pub const HISTOGRAM_MAX: usize = 256;

/// zmalloc over backend `B`. See the [module docs](self).
#[derive(Debug)]
pub struct Zmalloc<B> {
    backend: B,
    prefix: bool,
    used_memory: u64,
    live_blocks: u64,
    requested: u64,
    counters: AllocCounters,
    histogram: Box<[u64; HISTOGRAM_MAX + 2]>,
    limit: Option<u64>,
}

impl<B: MallocBackend> Zmalloc<B> {
    /// zmalloc over `backend`, with the size header when `prefix` is true.
    pub fn new(backend: B, prefix: bool) -> Self {
        Zmalloc {
            backend,
            prefix,
            used_memory: 0,
            live_blocks: 0,
            requested: 0,
            counters: AllocCounters::default(),
            histogram: Box::new([0; HISTOGRAM_MAX + 2]),
            limit: None,
        }
    }

    /// `used_memory`.
    pub fn used_memory(&self) -> u64 {
        self.used_memory
    }

    /// The count of allocations of `size` requested bytes (`size > 256`: all of those).
    pub fn allocations_for_size(&self, size: usize) -> u64 {
        self.histogram[size.min(HISTOGRAM_MAX + 1)]
    }

    #[inline]
    fn count(&mut self, size: usize) {
        self.histogram[size.min(HISTOGRAM_MAX + 1)] += 1;
    }

    fn fits(&self, cost: u64, released: u64) -> bool {
        self.limit
            .is_none_or(|limit| self.used_memory - released + cost <= limit)
    }

    /// The error for a request whose `used_memory` cost does not fit: `TooLarge` if it would
    /// not fit even with nothing else allocated, `OutOfMemory` otherwise.
    fn refusal(&mut self, size: usize, cost: usize) -> AllocError {
        self.counters.failed += 1;
        AllocError::over_limit(self.limit, size, cost)
    }

    /// What a live block costs in `used_memory`.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator requested with `size` bytes.
    unsafe fn cost_of(&self, ptr: NonNull<u8>, size: usize) -> usize {
        if self.prefix {
            // SAFETY: the header sits in the 8 bytes before `ptr`, inside the backend block.
            let stored = unsafe { ptr.sub(PREFIX_SIZE).cast::<u64>().read_unaligned() } as usize;
            debug_assert_eq!(
                stored, size,
                "zmalloc size header does not match the size freed"
            );
            stored + PREFIX_SIZE
        } else {
            // SAFETY: the caller promises `ptr` is a live backend block.
            unsafe { self.backend.usable_size_of(ptr, size) }
        }
    }
}

impl<B: MallocBackend> Allocator for Zmalloc<B> {
    fn name(&self) -> &'static str {
        "zmalloc"
    }

    #[inline]
    fn alloc(&mut self, size: usize) -> Result<Block, AllocError> {
        let raw = size + if self.prefix { PREFIX_SIZE } else { 0 };
        let block = match self.backend.alloc(raw) {
            Ok(block) => block,
            Err(e) => {
                self.counters.failed += 1;
                return Err(e);
            }
        };
        let cost = if self.prefix { raw } else { block.usable };
        if !self.fits(cost as u64, 0) {
            // SAFETY: `block` was just allocated with `raw` bytes and never handed out.
            unsafe { self.backend.free(block.ptr, raw) };
            return Err(self.refusal(size, cost));
        }
        self.used_memory += cost as u64;
        self.live_blocks += 1;
        self.requested += size as u64;
        self.counters.allocs += 1;
        self.count(size);
        if self.prefix {
            // SAFETY: the backend block has at least `size + 8` bytes; the header takes the
            // first 8 and the caller gets the rest.
            unsafe {
                block
                    .ptr
                    .cast::<u64>()
                    .as_ptr()
                    .write_unaligned(size as u64);
                Ok(Block {
                    ptr: block.ptr.add(PREFIX_SIZE),
                    usable: block.usable - PREFIX_SIZE,
                })
            }
        } else {
            Ok(block)
        }
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller promises `ptr` is live with `size` bytes.
        let cost = unsafe { self.cost_of(ptr, size) };
        self.used_memory -= cost as u64;
        self.live_blocks -= 1;
        self.requested -= size as u64;
        self.counters.frees += 1;
        // SAFETY: as above; the backend block starts 8 bytes earlier in prefix mode.
        unsafe {
            if self.prefix {
                self.backend.free(ptr.sub(PREFIX_SIZE), size + PREFIX_SIZE)
            } else {
                self.backend.free(ptr, size)
            }
        }
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<Block, AllocError> {
        // SAFETY: the caller promises `ptr` is live with `old_size` bytes.
        let old_cost = unsafe { self.cost_of(ptr, old_size) };
        let new_cost_max = if self.prefix {
            new_size + PREFIX_SIZE
        } else {
            // SAFETY: `ptr` is a live backend block (no prefix in this mode).
            unsafe { self.backend.realloc_usable_max(ptr, new_size) }
        };
        if !self.fits(new_cost_max as u64, old_cost as u64) {
            return Err(self.refusal(new_size, new_cost_max));
        }
        let block = if self.prefix {
            // SAFETY: the backend block starts 8 bytes before `ptr`.
            let raw = unsafe {
                self.backend.realloc(
                    ptr.sub(PREFIX_SIZE),
                    old_size + PREFIX_SIZE,
                    new_size + PREFIX_SIZE,
                )
            };
            match raw {
                // SAFETY: the new backend block has `new_size + 8` bytes.
                Ok(b) => unsafe {
                    b.ptr
                        .cast::<u64>()
                        .as_ptr()
                        .write_unaligned(new_size as u64);
                    Block {
                        ptr: b.ptr.add(PREFIX_SIZE),
                        usable: b.usable - PREFIX_SIZE,
                    }
                },
                Err(e) => {
                    self.counters.failed += 1;
                    return Err(e);
                }
            }
        } else {
            // SAFETY: the caller promises `ptr` is a live backend block.
            match unsafe { self.backend.realloc(ptr, old_size, new_size) } {
                Ok(b) => b,
                Err(e) => {
                    self.counters.failed += 1;
                    return Err(e);
                }
            }
        };
        let new_cost = if self.prefix {
            new_size + PREFIX_SIZE
        } else {
            block.usable
        };
        self.used_memory = self.used_memory - old_cost as u64 + new_cost as u64;
        self.requested = self.requested - old_size as u64 + new_size as u64;
        self.counters.reallocs += 1;
        self.count(new_size);
        Ok(block)
    }

    fn usable_size(&self, size: usize) -> Result<usize, AllocError> {
        if self.prefix {
            Ok(size + PREFIX_SIZE)
        } else {
            self.backend.usable_size(size)
        }
    }

    unsafe fn usable_size_of(&self, ptr: NonNull<u8>, size: usize) -> usize {
        // SAFETY: the caller's promise is passed on.
        unsafe { self.cost_of(ptr, size) }
    }

    fn stats(&self) -> MemStats {
        let backend = self.backend.stats();
        let allocations = self.histogram[..=HISTOGRAM_MAX]
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(size, &n)| [size as u64, n])
            .collect();
        MemStats {
            live_blocks: self.live_blocks,
            requested_bytes: self.requested,
            allocated_bytes: self.used_memory,
            footprint_bytes: backend.footprint_bytes,
            counters: self.counters,
            detail: Detail::Zmalloc(ZmallocDetail {
                used_memory: self.used_memory,
                prefix: self.prefix,
                backend: self.backend.name().to_string(),
                allocations,
                allocations_above: self.histogram[HISTOGRAM_MAX + 1],
                backend_detail: Box::new(backend.detail),
            }),
        }
    }

    fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit;
    }

    fn limit(&self) -> Option<u64> {
        self.limit
    }

    fn limit_kind(&self) -> LimitKind {
        LimitKind::UsedMemory
    }

    fn library_version(&self) -> Option<String> {
        self.backend.library_version()
    }

    fn defrag_info(&mut self) -> Option<DefragInfo> {
        // The backend's own figures: Redis's frag% is jemalloc's active / allocated, not
        // `used_memory`.
        self.backend.defrag_info()
    }

    unsafe fn defrag_hint(&mut self, ptr: NonNull<u8>, size: usize) -> bool {
        // SAFETY: the caller promises `ptr` is live with `size` bytes; the backend block
        // starts 8 bytes earlier in prefix mode, and jemalloc is asked about its start.
        unsafe {
            if self.prefix {
                self.backend
                    .defrag_hint(ptr.sub(PREFIX_SIZE), size + PREFIX_SIZE)
            } else {
                self.backend.defrag_hint(ptr, size)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glibc::Glibc;
    use crate::jemalloc::Jemalloc;

    #[test]
    fn size_header_mode_counts_requested_plus_8_and_reads_the_header_back() {
        let mut z = Zmalloc::new(Glibc::new(), true);
        let a = z.alloc(24).unwrap();
        let b = z.alloc(100).unwrap();
        assert_eq!(z.used_memory(), 24 + 8 + 100 + 8);
        // SAFETY: the header is the 8 bytes before the caller's block.
        let header = unsafe { a.ptr.sub(8).cast::<u64>().read_unaligned() };
        assert_eq!(header, 24);
        // SAFETY: live blocks with their requested sizes.
        let c = unsafe { z.realloc(b.ptr, 100, 300) }.unwrap();
        assert_eq!(z.used_memory(), 24 + 8 + 300 + 8);
        // SAFETY: both blocks are live with these sizes and freed once.
        unsafe {
            z.free(a.ptr, 24);
            z.free(c.ptr, 300);
        }
        assert_eq!(z.used_memory(), 0);
        let st = z.stats();
        assert_eq!(
            (st.live_blocks, st.requested_bytes, st.allocated_bytes),
            (0, 0, 0)
        );
    }

    #[test]
    fn allocation_histogram_counts_requested_sizes() {
        let mut z = Zmalloc::new(Jemalloc::new().unwrap(), false);
        let mut live = Vec::new();
        for size in [0, 24, 24, 256, 257, 5000] {
            live.push((z.alloc(size).unwrap(), size));
        }
        assert_eq!(z.allocations_for_size(24), 2);
        assert_eq!(z.allocations_for_size(256), 1);
        assert_eq!(z.allocations_for_size(257), 2, "one bucket above 256");
        for (b, size) in live {
            // SAFETY: live with its requested size.
            unsafe { z.free(b.ptr, size) };
        }
        // Counts are of allocations made, never decremented (as Redis 2.2 kept them).
        assert_eq!(z.allocations_for_size(24), 2);
        let Detail::Zmalloc(d) = z.stats().detail else {
            unreachable!()
        };
        assert_eq!(d.allocations, vec![[0, 1], [24, 2], [256, 1]]);
        assert_eq!(d.allocations_above, 2);
    }

    #[test]
    fn limit_is_on_used_memory() {
        let mut z = Zmalloc::new(Glibc::new(), true);
        z.set_limit(Some(1000));
        let a = z.alloc(492).unwrap(); // 500 of used_memory
        let b = z.alloc(492).unwrap(); // 1000: exactly the limit
        assert_eq!(z.alloc(0), Err(AllocError::OutOfMemory { size: 0 }));
        assert_eq!(z.used_memory(), 1000);
        // SAFETY: live blocks with their requested sizes; each freed once.
        unsafe {
            assert!(z.realloc(a.ptr, 492, 493).is_err());
            z.free(a.ptr, 492);
            z.free(b.ptr, 492);
        }
        assert_eq!(z.stats().counters.failed, 2);
    }
}
