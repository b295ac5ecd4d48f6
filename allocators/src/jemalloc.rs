//! jemalloc 5.3 (the tikv build: 16-byte quantum) on a dedicated arena with the thread cache
//! off.
//!
//! Every call passes `MALLOCX_ARENA(i) | MALLOCX_TCACHE_NONE`, so the arena holds only the
//! engine's blocks and no freed block hides in a thread cache; the footprint is the arena's
//! active pages (`stats.arenas.<i>.pactive` x page size), which other code in the process
//! (including a jemalloc global allocator, on its automatic arenas) never moves. Dropping the
//! allocator destroys the arena and everything in it.

use std::ffi::CStr;
use std::ptr::NonNull;

use tikv_jemalloc_ctl::raw;
use tikv_jemalloc_sys as sys;

use crate::defrag::{hint_rule, DefragInfo, SlabUtil};
use crate::heap::{MallocHeap, RawHeap};
use crate::stats::Detail;
pub use crate::stats::JemallocDetail;

/// jemalloc on a dedicated arena under fraglab's accounting.
pub type Jemalloc = MallocHeap<JemallocRaw>;

/// Why the dedicated arena could not be created.
#[derive(Debug, thiserror::Error)]
#[error("jemalloc: cannot create a dedicated arena: {0}")]
pub struct ArenaError(String);

/// The raw jemalloc calls on one arena.
#[derive(Debug)]
pub struct JemallocRaw {
    arena: u32,
    flags: i32,
    page_size: u64,
    /// The defrag hint's tables, built on the first [`RawHeap::defrag_refresh`].
    defrag: Option<BinTables>,
}

/// What the defrag hint needs besides the per-pointer query: the mib of
/// `experimental.utilization.query`, each small bin's region size, and each bin's
/// `nonfull_slabs` as of the last refresh (`crate::defrag`).
#[derive(Debug)]
struct BinTables {
    query_mib: [usize; 3],
    /// Region size per bin index (`arenas.bin.<j>.size`), ascending.
    reg_size: Vec<u64>,
    /// `stats.arenas.<arena>.bins.<j>.nonfull_slabs` at the last refresh.
    nonfull: Vec<u64>,
}

/// `inspect_extent_util_stats_verbose_t` (jemalloc 5.3's `include/jemalloc/internal/
/// inspect.h`), the output of `experimental.utilization.query`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct UtilQuery {
    slabcur_addr: usize,
    nfree: usize,
    nregs: usize,
    size: usize,
    bin_nfree: usize,
    bin_nregs: usize,
}

/// Reads a `size_t` statistic (every `stats.arenas.<i>.*` figure used here is one).
fn read_size_stat(name: &str) -> u64 {
    let name = format!("{name}\0");
    // SAFETY: the names read through this function are all documented as `size_t` mallctls,
    // so reading them as `usize` matches their type; the name is NUL-terminated.
    unsafe { raw::read::<usize>(name.as_bytes()) }.unwrap_or(0) as u64
}

/// The jemalloc version string.
pub fn version() -> String {
    // SAFETY: the `version` mallctl is a `const char *`, read here as one.
    unsafe { raw::read::<*const std::ffi::c_char>(b"version\0") }
        .ok()
        .filter(|p| !p.is_null())
        // SAFETY: the pointer is jemalloc's static NUL-terminated version string.
        .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown".to_string())
}

impl Jemalloc {
    /// Creates a dedicated arena.
    pub fn new() -> Result<Self, ArenaError> {
        // SAFETY: `arenas.create` returns the new arena's index as an `unsigned`.
        let arena: u32 =
            unsafe { raw::read(b"arenas.create\0") }.map_err(|e| ArenaError(e.to_string()))?;
        // SAFETY: `arenas.page` is a `size_t`.
        let page_size = unsafe { raw::read::<usize>(b"arenas.page\0") }.unwrap_or(4096) as u64;
        Ok(MallocHeap::from_raw(JemallocRaw {
            arena,
            flags: sys::MALLOCX_ARENA(arena as usize) | sys::MALLOCX_TCACHE_NONE,
            page_size,
            defrag: None,
        }))
    }
}

impl JemallocRaw {
    /// The dedicated arena's index.
    pub fn arena(&self) -> u32 {
        self.arena
    }

    fn refresh() {
        // Statistics are snapshots refreshed by advancing the epoch.
        let _ = tikv_jemalloc_ctl::epoch::advance();
    }

    fn arena_stat(&self, name: &str) -> u64 {
        read_size_stat(&format!("stats.arenas.{}.{name}", self.arena))
    }

    /// The bin tables, built once: `None` when this jemalloc lacks the query.
    fn bin_tables() -> Option<BinTables> {
        let mut query_mib = [0usize; 3];
        raw::name_to_mib(b"experimental.utilization.query\0", &mut query_mib).ok()?;
        // SAFETY: `arenas.nbins` is an `unsigned`.
        let nbins: u32 = unsafe { raw::read(b"arenas.nbins\0") }.ok()?;
        let reg_size = (0..nbins)
            .map(|j| read_size_stat(&format!("arenas.bin.{j}.size")))
            .collect();
        Some(BinTables {
            query_mib,
            reg_size,
            nonfull: vec![0; nbins as usize],
        })
    }

    /// `experimental.utilization.query` for `ptr`.
    fn query(mib: &[usize; 3], ptr: *const u8) -> UtilQuery {
        let mut out = UtilQuery::default();
        let mut out_len = std::mem::size_of::<UtilQuery>();
        let mut input = ptr;
        // SAFETY: the mallctl writes one `inspect_extent_util_stats_verbose_t` (whose layout
        // `UtilQuery` repeats, and whose size it checks against `out_len`) and reads one
        // pointer from `input`; it only looks the pointer up in jemalloc's extent map, which
        // is sound for any address of a live extent.
        unsafe {
            sys::mallctlbymib(
                mib.as_ptr(),
                mib.len(),
                (&mut out as *mut UtilQuery).cast(),
                &mut out_len,
                (&mut input as *mut *const u8).cast(),
                std::mem::size_of::<*const u8>(),
            );
        }
        out
    }
}

impl Drop for JemallocRaw {
    fn drop(&mut self) {
        let name = format!("arena.{}.destroy\0", self.arena);
        // SAFETY: a void mallctl call with NULL old/new pointers; destroying the arena discards
        // its blocks, and none outlives the allocator (the contract's `free` safety rule ends
        // with the allocator). No thread cache holds blocks of it (MALLOCX_TCACHE_NONE).
        unsafe {
            sys::mallctl(
                name.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            );
        }
    }
}

impl RawHeap for JemallocRaw {
    const NAME: &'static str = "jemalloc";

    fn malloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        // SAFETY: `size` is non-zero (the contract layer passes `max(1)`), as mallocx requires.
        NonNull::new(unsafe { sys::mallocx(size, self.flags) }.cast())
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        _old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller promises `ptr` is a live block of this arena; `new_size` > 0.
        NonNull::new(unsafe { sys::rallocx(ptr.as_ptr().cast(), new_size, self.flags) }.cast())
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller promises `ptr` is a live block of this arena requested with `size`
        // bytes, which is within [requested, usable] as sdallocx requires.
        unsafe { sys::sdallocx(ptr.as_ptr().cast(), size, self.flags) }
    }

    unsafe fn usable(&self, ptr: NonNull<u8>) -> usize {
        // SAFETY: the caller promises `ptr` is a live jemalloc block.
        unsafe { sys::sallocx(ptr.as_ptr().cast(), 0) }
    }

    fn predict(&self, size: usize) -> usize {
        // SAFETY: `nallocx` has no preconditions for a non-zero size.
        unsafe { sys::nallocx(size, self.flags) }
    }

    fn footprint(&self) -> u64 {
        Self::refresh();
        self.arena_stat("pactive") * self.page_size
    }

    fn detail(&self) -> Detail {
        Self::refresh();
        Detail::Jemalloc(JemallocDetail {
            version: version(),
            arena: self.arena,
            page_size: self.page_size,
            pactive: self.arena_stat("pactive"),
            pdirty: self.arena_stat("pdirty"),
            pmuzzy: self.arena_stat("pmuzzy"),
            small_allocated: self.arena_stat("small.allocated"),
            large_allocated: self.arena_stat("large.allocated"),
            mapped: self.arena_stat("mapped"),
            resident: self.arena_stat("resident"),
        })
    }

    fn version(&self) -> Option<String> {
        Some(format!("jemalloc {}", version()))
    }

    fn defrag_refresh(&mut self) -> Option<DefragInfo> {
        if self.defrag.is_none() {
            self.defrag = Some(Self::bin_tables()?);
        }
        Self::refresh();
        let arena = self.arena;
        let tables = self.defrag.as_mut()?;
        for (j, n) in tables.nonfull.iter_mut().enumerate() {
            *n = read_size_stat(&format!("stats.arenas.{arena}.bins.{j}.nonfull_slabs"));
        }
        Some(DefragInfo {
            active: self.arena_stat("pactive") * self.page_size,
            allocated: self.arena_stat("small.allocated") + self.arena_stat("large.allocated"),
        })
    }

    unsafe fn defrag_hint(&mut self, ptr: NonNull<u8>) -> bool {
        let Some(tables) = &self.defrag else {
            return false;
        };
        let q = Self::query(&tables.query_mib, ptr.as_ptr());
        if q.nregs <= 1 || q.bin_nregs == 0 {
            return false;
        }
        let reg = (q.size / q.nregs) as u64;
        let Ok(bin) = tables.reg_size.binary_search(&reg) else {
            return false;
        };
        let addr = ptr.as_ptr() as usize;
        let has_slabcur = q.slabcur_addr != 0;
        let in_slabcur = has_slabcur && addr >= q.slabcur_addr && addr < q.slabcur_addr + q.size;
        let slabcur_nfree = if has_slabcur {
            Self::query(&tables.query_mib, q.slabcur_addr as *const u8).nfree as u64
        } else {
            0
        };
        hint_rule(&SlabUtil {
            nfree: q.nfree as u64,
            nregs: q.nregs as u64,
            size: q.size as u64,
            bin_nfree: q.bin_nfree as u64,
            bin_nregs: q.bin_nregs as u64,
            in_slabcur,
            has_slabcur,
            slabcur_nfree,
            nonfull_slabs: tables.nonfull[bin],
        })
    }
}
