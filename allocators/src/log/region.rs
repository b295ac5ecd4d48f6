//! The address space a log's segments live in: one reservation, committed a segment at a time.
//!
//! The log reserves [`RESERVE`] bytes of address space once (`mmap(PROT_NONE,
//! MAP_NORESERVE)`: no memory, no commit charge), so that a segment's id is its offset from the
//! base divided by the segment size, and a block's segment is found by a subtraction. A segment
//! is committed (`mprotect` read-write) when the log opens it and decommitted (`madvise
//! MADV_DONTNEED`, then `PROT_NONE`) when the cleaner frees it, so the kernel's figures follow
//! the log's footprint.

use std::ptr::NonNull;

/// Address space reserved per log (64 GiB; halved down to 1 GiB where the system refuses).
pub const RESERVE: usize = 64 << 30;
const RESERVE_MIN: usize = 1 << 30;

/// A reservation of address space cut into segments of one size.
#[derive(Debug)]
pub(crate) struct Region {
    base: NonNull<u8>,
    len: usize,
    segment: usize,
}

impl Region {
    /// Reserves address space for segments of `segment` bytes (a multiple of the page size).
    pub fn reserve(segment: usize) -> Option<Region> {
        let mut len = RESERVE;
        while len >= RESERVE_MIN.max(segment) {
            // SAFETY: an anonymous private mapping with no address hint has no preconditions;
            // the result is checked against MAP_FAILED before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if ptr != libc::MAP_FAILED {
                return Some(Region {
                    base: NonNull::new(ptr.cast())?,
                    len,
                    segment,
                });
            }
            len /= 2;
        }
        None
    }

    /// How many segments the reservation holds.
    pub fn segments(&self) -> u32 {
        u32::try_from(self.len / self.segment).unwrap_or(u32::MAX)
    }

    /// The first byte of segment `id`.
    #[inline]
    pub fn start(&self, id: u32) -> NonNull<u8> {
        debug_assert!(id < self.segments());
        // SAFETY: `id < segments()`, so the offset is inside the reservation.
        unsafe { self.base.add(id as usize * self.segment) }
    }

    /// The segment holding `ptr` and the offset of `ptr` in it.
    #[inline]
    pub fn locate(&self, ptr: NonNull<u8>) -> (u32, usize) {
        let off = ptr.as_ptr() as usize - self.base.as_ptr() as usize;
        debug_assert!(off < self.len, "a pointer outside the log's reservation");
        ((off / self.segment) as u32, off % self.segment)
    }

    /// Makes segment `id` readable and writable (zeroed on first touch). `false` when the
    /// system refuses (its commit limit).
    pub fn commit(&mut self, id: u32) -> bool {
        // SAFETY: the range is one whole segment inside this reservation, page-aligned
        // because the base is and the segment size is a multiple of the page size.
        let rc = unsafe {
            libc::mprotect(
                self.start(id).as_ptr().cast(),
                self.segment,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        rc == 0
    }

    /// Gives segment `id`'s memory back to the system; its bytes read as zero if it is
    /// committed again.
    pub fn decommit(&mut self, id: u32) {
        let start = self.start(id).as_ptr().cast();
        // SAFETY: as in `commit`; nothing refers into a segment the log frees (every live
        // entry was moved out first), so dropping its pages and its access is invisible.
        unsafe {
            libc::madvise(start, self.segment, libc::MADV_DONTNEED);
            libc::mprotect(start, self.segment, libc::PROT_NONE);
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly the mapping made in `reserve`, unmapped once.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}
