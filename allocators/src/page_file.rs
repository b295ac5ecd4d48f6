//! Slab pages kept in a file (`slab:file=PATH`), so that they outlive the process that wrote
//! them, as memcached's warm restart keeps its slabs in the file given to `-e`
//! (`memcached.c`, `restart.c`).
//!
//! One address range is reserved (`PROT_NONE`) and page `i` of the file is mapped shared at
//! `base + i MiB` when it is first needed, so a page's place in the file is its offset from the
//! base: nothing the allocator keeps about a page needs its address. Reopening the file maps
//! every page again into a new reservation, at another base.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// A file of pages, mapped.
#[derive(Debug)]
pub struct PageFile {
    file: File,
    path: PathBuf,
    base: NonNull<u8>,
    reserved: usize,
    page: usize,
    /// Pages in the file.
    len: usize,
    /// Pages given back, to be handed out again (zeroed first).
    free: Vec<usize>,
}

// SAFETY: the mapping is this value's alone; moving it to another thread moves the only
// handle to it.
unsafe impl Send for PageFile {}

fn reserve(len: usize) -> std::io::Result<NonNull<u8>> {
    // SAFETY: an anonymous PROT_NONE reservation with no address hint; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| std::io::Error::other("mmap returned null"))
}

impl PageFile {
    /// Creates (or empties) the file at `path`, for pages of `page` bytes, at most
    /// `reserved / page` of them.
    pub fn create(path: &Path, page: usize, reserved: usize) -> std::io::Result<PageFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(PageFile {
            file,
            path: path.to_path_buf(),
            base: reserve(reserved)?,
            reserved,
            page,
            len: 0,
            free: Vec::new(),
        })
    }

    /// Opens the file at `path` again and maps each of its pages into a new reservation.
    pub fn open(path: &Path, page: usize, reserved: usize) -> std::io::Result<PageFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let bytes = file.metadata()?.len() as usize;
        if bytes % page != 0 || bytes > reserved {
            return Err(std::io::Error::other(format!(
                "{} holds {bytes} bytes: not whole pages of {page}, or over {reserved}",
                path.display()
            )));
        }
        let mut f = PageFile {
            file,
            path: path.to_path_buf(),
            base: reserve(reserved)?,
            reserved,
            page,
            len: bytes / page,
            free: Vec::new(),
        };
        for i in 0..f.len {
            f.map(i)?;
        }
        Ok(f)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of a page.
    pub fn page_size(&self) -> usize {
        self.page
    }

    /// Bytes of the reserved address range.
    pub fn reserved(&self) -> usize {
        self.reserved
    }

    /// The mapping's base address.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Pages in the file.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file has no page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Page `i`'s address.
    pub fn page_at(&self, i: usize) -> NonNull<u8> {
        assert!(i < self.len, "page {i} of a file of {}", self.len);
        // SAFETY: `i < len <= reserved / page`: inside the reservation.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(i * self.page)) }
    }

    /// The index of the page at `p`, if it is one of the file's.
    pub fn index_of(&self, p: NonNull<u8>) -> Option<usize> {
        let off = (p.as_ptr() as usize).checked_sub(self.base.as_ptr() as usize)?;
        (off % self.page == 0 && off / self.page < self.len).then_some(off / self.page)
    }

    /// Maps page `i` of the file (shared) at its place in the reservation.
    fn map(&mut self, i: usize) -> std::io::Result<()> {
        // SAFETY: the target is inside the reservation, which this value owns; MAP_FIXED
        // replaces only that part of it, with page `i` of the file, which is `page` bytes long.
        let p = unsafe {
            libc::mmap(
                self.base.as_ptr().add(i * self.page).cast(),
                self.page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.file.as_raw_fd(),
                (i * self.page) as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// A zeroed page: one given back, or a new one at the end of the file.
    pub fn take(&mut self) -> Option<NonNull<u8>> {
        if let Some(i) = self.free.pop() {
            let p = self.page_at(i);
            // SAFETY: the page is mapped and no longer used by anyone.
            unsafe { std::ptr::write_bytes(p.as_ptr(), 0, self.page) };
            return Some(p);
        }
        let i = self.len;
        if (i + 1) * self.page > self.reserved {
            return None;
        }
        self.file.set_len(((i + 1) * self.page) as u64).ok()?;
        self.map(i).ok()?;
        self.len += 1;
        Some(self.page_at(i))
    }

    /// Gives page `p` back; it stays in the file, to be taken again.
    pub fn give(&mut self, p: NonNull<u8>) {
        if let Some(i) = self.index_of(p) {
            self.free.push(i);
        }
    }

    /// Says which pages are free (those a reopened file's metadata says are unused).
    pub fn set_free(&mut self, free: Vec<usize>) {
        self.free = free;
    }

    /// Writes the mapped pages back to the file (`msync`).
    pub fn sync(&self) -> std::io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        // SAFETY: the range is the file's mapped pages.
        let rc = unsafe {
            libc::msync(
                self.base.as_ptr().cast(),
                self.len * self.page,
                libc::MS_SYNC,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for PageFile {
    fn drop(&mut self) {
        // SAFETY: the reservation (and the file pages mapped into it) is this value's alone;
        // nothing refers to it once the allocator that owns this goes.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.reserved) };
    }
}
