//! SDS strings as Redis 7.0's `src/sds.h` lays them out: `[header][bytes][NUL]`, the pointer
//! after the header; the header type (5, 8, 16, 32, 64) by length.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use crate::util::{read_at, write_at};

/// `SDS_MAX_PREALLOC`: `sdsMakeRoomFor` doubles below it and adds it above.
pub(super) const SDS_MAX_PREALLOC: usize = 1 << 20;

/// The header size of an SDS string of `len` bytes (`sdsReqType`), for a fresh `sdsnewlen`.
pub fn sds_header(len: usize) -> usize {
    match len {
        // `sdsnewlen`: an empty string gets type 8, never type 5.
        0 => 3,
        1..32 => 1,
        32..256 => 3,
        256..65536 => 5,
        _ if len as u64 <= u32::MAX as u64 => 9,
        _ => 17,
    }
}

/// The header size for a string that will grow (`sdsMakeRoomFor` never uses type 5).
pub(super) fn sds_header_growable(len: usize) -> usize {
    sds_header(len).max(3)
}

/// An SDS in allocator memory: the allocation's start, its requested size, and the header.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sds {
    pub(super) base: NonNull<u8>,
    pub(super) hdr: usize,
}

impl Sds {
    /// # Safety
    /// `base` is a live SDS allocation.
    pub(super) unsafe fn len(self) -> usize {
        // SAFETY: the header is at the start of the allocation.
        unsafe {
            match self.hdr {
                1 => (read_at::<u8>(self.base, 0) >> 3) as usize,
                3 => read_at::<u8>(self.base, 0) as usize,
                5 => read_at::<u16>(self.base, 0) as usize,
                9 => read_at::<u32>(self.base, 0) as usize,
                _ => read_at::<u64>(self.base, 0) as usize,
            }
        }
    }

    /// Capacity (the `alloc` field; type 5 has none: its length).
    ///
    /// # Safety
    /// As for `len`.
    pub(super) unsafe fn alloc(self) -> usize {
        // SAFETY: as above.
        unsafe {
            match self.hdr {
                1 => self.len(),
                3 => read_at::<u8>(self.base, 1) as usize,
                5 => read_at::<u16>(self.base, 2) as usize,
                9 => read_at::<u32>(self.base, 4) as usize,
                _ => read_at::<u64>(self.base, 8) as usize,
            }
        }
    }

    /// Writes the header for `len` bytes of `alloc` capacity.
    ///
    /// # Safety
    /// The allocation holds at least `hdr + alloc + 1` bytes.
    pub(super) unsafe fn set(self, len: usize, alloc: usize) {
        // SAFETY: the caller's contract; the flags byte is the header's last.
        unsafe {
            match self.hdr {
                1 => write_at::<u8>(self.base, 0, (len << 3) as u8),
                3 => {
                    write_at::<u8>(self.base, 0, len as u8);
                    write_at::<u8>(self.base, 1, alloc as u8);
                    write_at::<u8>(self.base, 2, 1);
                }
                5 => {
                    write_at::<u16>(self.base, 0, len as u16);
                    write_at::<u16>(self.base, 2, alloc as u16);
                    write_at::<u8>(self.base, 4, 2);
                }
                9 => {
                    write_at::<u32>(self.base, 0, len as u32);
                    write_at::<u32>(self.base, 4, alloc as u32);
                    write_at::<u8>(self.base, 8, 3);
                }
                _ => {
                    write_at::<u64>(self.base, 0, len as u64);
                    write_at::<u64>(self.base, 8, alloc as u64);
                    write_at::<u8>(self.base, 16, 4);
                }
            }
            write_at::<u8>(self.base, self.hdr + len, 0);
        }
    }

    /// # Safety
    /// As for `len`; the slice must not outlive the allocation.
    pub(super) unsafe fn bytes<'a>(self) -> &'a [u8] {
        // SAFETY: the bytes follow the header.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(self.hdr), self.len()) }
    }

    /// The allocation's requested size.
    ///
    /// # Safety
    /// As for `len`.
    pub(super) unsafe fn size(self) -> usize {
        // SAFETY: as above.
        self.hdr + unsafe { self.alloc() } + 1
    }
}

/// The SDS header size from the flags byte before the string.
///
/// # Safety
/// `s` points just after an SDS header.
pub(super) unsafe fn sds_at(s: NonNull<u8>) -> Sds {
    // SAFETY: the flags byte is the last header byte.
    let hdr = match unsafe { s.as_ptr().sub(1).read() } & 7 {
        0 => 1,
        1 => 3,
        2 => 5,
        3 => 9,
        _ => 17,
    };
    // SAFETY: the header starts `hdr` bytes before the string.
    let base = unsafe { s.sub(hdr) };
    Sds { base, hdr }
}

/// Allocates a block Redis's code can use as one piece (Redis's objects are never split): a
/// request above the allocator's largest contiguous block is `TooLarge`.
pub(super) fn alloc_whole<A: Allocator>(a: &mut A, size: usize) -> Result<NonNull<u8>, AllocError> {
    let max = a.max_contiguous();
    if size > max {
        return Err(AllocError::TooLarge { size, max });
    }
    Ok(a.alloc(size)?.ptr)
}

pub(super) fn new_sds<A: Allocator>(
    a: &mut A,
    bytes: &[u8],
    hdr: usize,
    alloc: usize,
) -> Result<Sds, AllocError> {
    let base = alloc_whole(a, hdr + alloc + 1)?;
    let sds = Sds { base, hdr };
    // SAFETY: the block holds `hdr + alloc + 1 >= hdr + len + 1` bytes.
    unsafe {
        sds.set(bytes.len(), alloc);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.as_ptr().add(hdr), bytes.len());
    }
    Ok(sds)
}

/// # Safety
/// `sds` is a live SDS of `a`, freed once.
pub(super) unsafe fn free_sds<A: Allocator>(a: &mut A, sds: Sds) {
    // SAFETY: the caller's contract.
    unsafe { a.free(sds.base, sds.size()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sds_headers_by_length() {
        assert_eq!(
            [0, 1, 31, 32, 255, 256, 65535, 65536].map(sds_header),
            [3, 1, 1, 3, 3, 5, 5, 9]
        );
    }
}
