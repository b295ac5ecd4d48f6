//! Where slab pages come from: one small interface over the operating system.
//!
//! memcached takes each 1 MiB page with `malloc` when a class runs out of chunks (without `-L`
//! it never preallocates). fraglab's slab allocator takes them from a [`PageSource`]:
//! [`MmapPages`] maps each page from the kernel, so the pages are outside every other
//! allocator's books; [`HeapPages`] takes them from the global allocator, for tests and for
//! machines without `mmap`.

use std::alloc::Layout;
use std::ptr::NonNull;

/// A source of fixed-size, zeroed pages.
pub trait PageSource {
    /// Takes one page of `size` bytes, aligned to at least 4096. `None` when the system refuses.
    fn take_page(&mut self, size: usize) -> Option<NonNull<u8>>;

    /// Gives a page back.
    ///
    /// # Safety
    /// `page` must come from `take_page(size)` of this source, with the same `size`, and not be
    /// used afterwards.
    unsafe fn return_page(&mut self, page: NonNull<u8>, size: usize);

    /// A short name for reports (`mmap`, `heap`).
    fn name(&self) -> &'static str;
}

/// Pages mapped one at a time with `mmap(MAP_PRIVATE | MAP_ANONYMOUS)`. The kernel makes them
/// resident as they are touched, as glibc does for memcached's 1 MiB mallocs.
#[derive(Debug, Default)]
pub struct MmapPages;

impl PageSource for MmapPages {
    fn take_page(&mut self, size: usize) -> Option<NonNull<u8>> {
        // SAFETY: an anonymous private mapping with no address hint has no preconditions; the
        // result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(ptr.cast())
    }

    unsafe fn return_page(&mut self, page: NonNull<u8>, size: usize) {
        // SAFETY: the caller promises `page` is a mapping of `size` bytes made by `take_page`.
        let rc = unsafe { libc::munmap(page.as_ptr().cast(), size) };
        debug_assert_eq!(rc, 0, "munmap of a slab page failed");
    }

    fn name(&self) -> &'static str {
        "mmap"
    }
}

/// Pages taken from the global allocator (zeroed, 4096-aligned).
#[derive(Debug, Default)]
pub struct HeapPages;

fn page_layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size, 4096).ok()
}

impl PageSource for HeapPages {
    fn take_page(&mut self, size: usize) -> Option<NonNull<u8>> {
        let layout = page_layout(size)?;
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size (checked above).
        NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
    }

    unsafe fn return_page(&mut self, page: NonNull<u8>, size: usize) {
        let layout = page_layout(size).expect("a page layout that was valid at take_page");
        // SAFETY: the caller promises `page` came from `take_page(size)`, i.e. from
        // `alloc_zeroed` with this same layout.
        unsafe { std::alloc::dealloc(page.as_ptr(), layout) }
    }

    fn name(&self) -> &'static str {
        "heap"
    }
}
