//! glibc's malloc: `malloc`, `realloc`, `free`, `malloc_usable_size`, `mallinfo2`.
//!
//! glibc keeps one set of books for the whole process, so its figures are only clean when
//! nothing else in the process allocates with glibc. The `fraglab` binary and this crate's
//! tests therefore install another global allocator (mimalloc's default heap); the footprint is
//! `arena + hblkhd` from `mallinfo2` less the figure seen when the allocator was created, so
//! what the C library itself had allocated by then is left out.

use std::ffi::CStr;
use std::ptr::NonNull;

use crate::heap::{MallocHeap, RawHeap};
use crate::stats::Detail;
pub use crate::stats::GlibcDetail;

/// glibc's malloc under fraglab's accounting.
pub type Glibc = MallocHeap<GlibcRaw>;

/// The raw glibc calls.
#[derive(Debug)]
pub struct GlibcRaw {
    baseline: u64,
}

fn mallinfo() -> libc::mallinfo2 {
    // SAFETY: `mallinfo2` has no preconditions; it walks glibc's arenas under their locks.
    unsafe { libc::mallinfo2() }
}

impl Glibc {
    /// glibc's malloc; the footprint counts from now.
    pub fn new() -> Self {
        let m = mallinfo();
        MallocHeap::from_raw(GlibcRaw {
            baseline: (m.arena + m.hblkhd) as u64,
        })
    }
}

impl Default for Glibc {
    fn default() -> Self {
        Self::new()
    }
}

/// glibc's chunk size for a request (`request2size`): the request plus the 8-byte size field,
/// rounded up to 16, at least 32.
fn request2size(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

/// glibc's default mmap threshold (`DEFAULT_MMAP_THRESHOLD_MIN`).
const MMAP_THRESHOLD: usize = 128 * 1024;
const PAGE: usize = 4096;

fn mmapped_usable(size: usize) -> usize {
    (request2size(size) + 8).div_ceil(PAGE) * PAGE - 16
}

/// The glibc version string (`2.36`).
pub fn version() -> String {
    // SAFETY: `gnu_get_libc_version` returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) }
        .to_string_lossy()
        .into_owned()
}

impl RawHeap for GlibcRaw {
    const NAME: &'static str = "glibc";

    fn malloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        // SAFETY: `malloc` has no preconditions.
        NonNull::new(unsafe { libc::malloc(size) }.cast())
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        _old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller promises `ptr` came from glibc's malloc and is live.
        NonNull::new(unsafe { libc::realloc(ptr.as_ptr().cast(), new_size) }.cast())
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize) {
        // SAFETY: the caller promises `ptr` came from glibc's malloc and is freed once.
        unsafe { libc::free(ptr.as_ptr().cast()) }
    }

    unsafe fn usable(&self, ptr: NonNull<u8>) -> usize {
        // SAFETY: the caller promises `ptr` is a live glibc block.
        unsafe { libc::malloc_usable_size(ptr.as_ptr().cast()) }
    }

    /// `request2size(n) - 8`: what a chunk cut from the heap gives. This is a lower bound: a
    /// block is larger when glibc hands out a free chunk whole because the remainder would be
    /// under 32 bytes, or when a request at or above the mmap threshold (128 KiB, raised as
    /// mapped chunks are freed) that the heap's top cannot hold is mapped on its own and
    /// page-rounded.
    fn predict(&self, size: usize) -> usize {
        request2size(size) - 8
    }

    unsafe fn predict_max(&self, ptr: NonNull<u8>, new_size: usize) -> usize {
        // SAFETY: the caller promises `ptr` is a live glibc block: its chunk's size word, whose
        // bit 1 is IS_MMAPPED, is the 8 bytes before it.
        let size_word = unsafe { ptr.as_ptr().sub(8).cast::<usize>().read_unaligned() };
        let heap_max = request2size(new_size) + 32 - 8; // an unsplit chunk: at most 31 more
        if size_word & 2 != 0 || request2size(new_size) >= MMAP_THRESHOLD {
            // A mapped chunk stays mapped (mremap) or a large one may be mapped: page-rounded.
            heap_max.max(mmapped_usable(new_size))
        } else {
            heap_max
        }
    }

    fn footprint(&self) -> u64 {
        let m = mallinfo();
        ((m.arena + m.hblkhd) as u64).saturating_sub(self.baseline)
    }

    fn detail(&self) -> Detail {
        let m = mallinfo();
        Detail::Glibc(GlibcDetail {
            version: version(),
            arena: m.arena as u64,
            hblkhd: m.hblkhd as u64,
            hblks: m.hblks as u64,
            uordblks: m.uordblks as u64,
            fordblks: m.fordblks as u64,
            keepcost: m.keepcost as u64,
            baseline: self.baseline,
            process_wide: true,
        })
    }

    fn version(&self) -> Option<String> {
        Some(format!("glibc {}", version()))
    }
}
