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

    /// The file the pages live in, when they outlive the process (`slab:file=PATH`).
    fn page_file(&self) -> Option<&crate::page_file::PageFile> {
        None
    }

    /// The page file, mutably.
    fn page_file_mut(&mut self) -> Option<&mut crate::page_file::PageFile> {
        None
    }

    /// A new source over the same page file, every page mapped again at a new base (a warm
    /// restart); an error for a source whose pages are not a file's.
    fn reopen(&self) -> Result<Self, String>
    where
        Self: Sized,
    {
        Err(format!(
            "{} pages are not in a file (slab:file=PATH)",
            self.name()
        ))
    }
}

/// How [`MmapPages`] maps its pages (the slab's `huge` and `prefault` keys).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapOptions {
    /// Take pages from [`REGION`]-byte reservations aligned to 2 MiB and advised
    /// `MADV_HUGEPAGE`, so the kernel backs them with transparent huge pages (as memcached's
    /// `-L` asks for large pages): one TLB entry covers two pages instead of 512 4 KiB ones.
    pub huge: bool,
    /// Populate each mapping when it is made (`MADV_POPULATE_WRITE`, or a write per 4 KiB
    /// where the kernel lacks it), so no access later takes a first-touch fault. The
    /// resident set then grows by a mapping at a time (a region with `huge`).
    pub prefault: bool,
}

/// The bytes of one huge-page reservation: 32 MiB, sixteen 2 MiB huge pages.
pub const REGION: usize = 32 << 20;
const HUGE: usize = 2 << 20;

/// Pages mapped with `mmap(MAP_PRIVATE | MAP_ANONYMOUS)`. By default each page is its own
/// mapping and the kernel makes it resident as it is touched, as glibc does for memcached's
/// 1 MiB mallocs; [`MapOptions`] changes that.
#[derive(Debug, Default)]
pub struct MmapPages {
    options: MapOptions,
    /// With `huge`: the untaken rest of the current reservation (start, bytes).
    region: Option<(NonNull<u8>, usize)>,
    /// With `slab:file=PATH`: every page is a page of this file.
    file: Option<crate::page_file::PageFile>,
}

// SAFETY: the reservation is memory this source alone maps; nothing else refers to it.
unsafe impl Send for MmapPages {}

/// Maps `len` fresh bytes, or `None`.
fn map(len: usize) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions; the
    // result is checked against MAP_FAILED before use.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
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

/// Unmaps `[p, p + len)`.
///
/// # Safety
/// The range is mapped by this source and nothing refers to it any more.
unsafe fn unmap(p: *mut u8, len: usize) {
    if len > 0 {
        // SAFETY: the caller's contract.
        let rc = unsafe { libc::munmap(p.cast(), len) };
        debug_assert_eq!(rc, 0, "munmap of slab pages failed");
    }
}

/// Makes `[p, p + len)` resident now (see [`MapOptions::prefault`]).
///
/// # Safety
/// The range is a fresh, writable, zeroed mapping of this source.
unsafe fn populate(p: NonNull<u8>, len: usize) {
    // SAFETY: the range is mapped and writable (the caller's contract); the advice only
    // faults it in.
    let rc = unsafe { libc::madvise(p.as_ptr().cast(), len, libc::MADV_POPULATE_WRITE) };
    if rc != 0 {
        // An older kernel: write a zero (the bytes are zero already) into every 4 KiB page.
        for off in (0..len).step_by(4096) {
            // SAFETY: `off < len`, inside the mapping.
            unsafe { std::ptr::write_volatile(p.as_ptr().add(off), 0) };
        }
    }
}

impl MmapPages {
    /// A source that maps as `options` say.
    pub fn new(options: MapOptions) -> Self {
        MmapPages {
            options,
            region: None,
            file: None,
        }
    }

    /// A source whose pages are the pages of `file` (shared mappings of it).
    pub fn with_file(file: crate::page_file::PageFile) -> Self {
        MmapPages {
            options: MapOptions::default(),
            region: None,
            file: Some(file),
        }
    }

    /// How this source maps.
    pub fn options(&self) -> MapOptions {
        self.options
    }

    /// A new [`REGION`], 2 MiB-aligned, advised for huge pages (and populated with
    /// `prefault`).
    fn reserve(&mut self) -> Option<(NonNull<u8>, usize)> {
        // Over-map by one huge page and trim both ends to the alignment.
        let raw = map(REGION + HUGE)?.as_ptr();
        let lead = (HUGE - raw as usize % HUGE) % HUGE;
        // SAFETY: `lead <= HUGE`, so both trimmed ends are inside the fresh mapping, which
        // nothing refers to yet.
        let start = unsafe {
            unmap(raw, lead);
            unmap(raw.add(lead + REGION), HUGE - lead);
            raw.add(lead)
        };
        let start = NonNull::new(start)?;
        // SAFETY: `[start, start + REGION)` is the mapping just made; the advice is a hint
        // (a kernel without transparent huge pages refuses it, and the pages stay 4 KiB).
        unsafe { libc::madvise(start.as_ptr().cast(), REGION, libc::MADV_HUGEPAGE) };
        if self.options.prefault {
            // SAFETY: a fresh, writable, zeroed mapping.
            unsafe { populate(start, REGION) };
        }
        Some((start, REGION))
    }
}

impl Drop for MmapPages {
    fn drop(&mut self) {
        if let Some((p, left)) = self.region.take() {
            // SAFETY: the untaken rest of the reservation was never handed out.
            unsafe { unmap(p.as_ptr(), left) };
        }
    }
}

impl PageSource for MmapPages {
    fn take_page(&mut self, size: usize) -> Option<NonNull<u8>> {
        if let Some(f) = &mut self.file {
            return f.take();
        }
        if !self.options.huge || size > REGION || size % 4096 != 0 {
            let page = map(size)?;
            if self.options.prefault {
                // SAFETY: a fresh, writable, zeroed mapping.
                unsafe { populate(page, size) };
            }
            return Some(page);
        }
        let (p, left) = match self.region {
            Some((p, left)) if left >= size => (p, left),
            rest => {
                if let Some((p, left)) = rest {
                    // SAFETY: a tail too small for a page, never handed out.
                    unsafe { unmap(p.as_ptr(), left) };
                }
                self.region = None;
                self.reserve()?
            }
        };
        // SAFETY: `size <= left`, so the rest starts inside (or at the end of) the region.
        let rest = unsafe { NonNull::new_unchecked(p.as_ptr().add(size)) };
        self.region = Some((rest, left - size));
        Some(p)
    }

    unsafe fn return_page(&mut self, page: NonNull<u8>, size: usize) {
        if let Some(f) = &mut self.file {
            // The page stays in the file (and mapped) until the file is closed.
            f.give(page);
            return;
        }
        // A page of a reservation is unmapped alone, as a page mapped by itself is (the kernel
        // splits the huge page it sat in).
        // SAFETY: the caller promises `page` is `size` bytes made by `take_page`.
        unsafe { unmap(page.as_ptr(), size) };
    }

    fn page_file(&self) -> Option<&crate::page_file::PageFile> {
        self.file.as_ref()
    }

    fn page_file_mut(&mut self) -> Option<&mut crate::page_file::PageFile> {
        self.file.as_mut()
    }

    fn reopen(&self) -> Result<Self, String> {
        let f = self
            .file
            .as_ref()
            .ok_or("the slab's pages are not in a file (slab:file=PATH)")?;
        let again = crate::page_file::PageFile::open(f.path(), f.page_size(), f.reserved())
            .map_err(|e| format!("{}: {e}", f.path().display()))?;
        Ok(MmapPages::with_file(again))
    }

    fn name(&self) -> &'static str {
        if self.file.is_some() {
            return "file";
        }
        match (self.options.huge, self.options.prefault) {
            (false, false) => "mmap",
            (true, false) => "mmap, huge pages",
            (false, true) => "mmap, prefaulted",
            (true, true) => "mmap, huge pages, prefaulted",
        }
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
