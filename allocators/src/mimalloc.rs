//! mimalloc 2.x on a dedicated heap (`mi_heap_new`, `mi_heap_malloc`, `mi_usable_size`).
//!
//! The heap holds only the engine's blocks; its footprint is the `committed` bytes of the areas
//! (pages) `mi_heap_visit_blocks` reports, summed (an area's `used` is a count of blocks, so
//! the bytes in use are `used x block_size`). mimalloc computes an area's `committed` as the
//! page's initialized capacity x block size: it leaves out page slack, segment metadata and
//! pages the heap has retired, so it is the heap's share of memory, not the OS's view (RSS). A mimalloc heap belongs to the thread that
//! created it, so this allocator is neither `Send` nor `Sync`. Dropping it destroys the heap and
//! everything in it.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;

use libmimalloc_sys as mi;

use crate::heap::{MallocHeap, RawHeap};
use crate::stats::Detail;
pub use crate::stats::MimallocDetail;

/// mimalloc on a dedicated heap under fraglab's accounting.
pub type Mimalloc = MallocHeap<MimallocRaw>;

/// The raw mimalloc calls on one heap.
#[derive(Debug)]
pub struct MimallocRaw {
    heap: NonNull<mi::mi_heap_t>,
    /// A mimalloc heap is bound to its thread.
    _not_send: PhantomData<*mut ()>,
}

/// Why the dedicated heap could not be created.
#[derive(Debug, thiserror::Error)]
#[error("mimalloc: mi_heap_new failed")]
pub struct HeapError;

impl Mimalloc {
    /// Creates a dedicated heap owned by the current thread.
    pub fn new() -> Result<Self, HeapError> {
        // SAFETY: `mi_heap_new` has no preconditions.
        let heap = NonNull::new(unsafe { mi::mi_heap_new() }).ok_or(HeapError)?;
        Ok(MallocHeap::from_raw(MimallocRaw {
            heap,
            _not_send: PhantomData,
        }))
    }
}

/// `mi_version()` as a number: major x 10000 + minor x 100 + patch.
pub fn version() -> u32 {
    // SAFETY: `mi_version` has no preconditions.
    unsafe { mi::mi_version() as u32 }
}

unsafe extern "C" fn visit_area(
    _heap: *const mi::mi_heap_t,
    area: *const mi::mi_heap_area_t,
    _block: *mut c_void,
    _block_size: usize,
    arg: *mut c_void,
) -> bool {
    // SAFETY: mimalloc passes a valid area for the duration of the call, and `arg` is the
    // `MimallocDetail` that `visit` lent for the duration of `mi_heap_visit_blocks`.
    let (area, d) = unsafe { (&*area, &mut *arg.cast::<MimallocDetail>()) };
    d.areas += 1;
    d.reserved += area.reserved as u64;
    d.committed += area.committed as u64;
    d.used_blocks += area.used as u64;
    d.used_bytes += (area.used * area.block_size) as u64;
    true
}

impl MimallocRaw {
    fn visit(&self) -> MimallocDetail {
        let mut d = MimallocDetail {
            version: version(),
            ..MimallocDetail::default()
        };
        // SAFETY: the heap is live (owned by `self`) and used from its own thread (`self` is
        // not `Send`); the visitor only reads the area and writes to `d`, which outlives the
        // call.
        unsafe {
            mi::mi_heap_visit_blocks(
                self.heap.as_ptr(),
                false,
                Some(visit_area),
                (&mut d as *mut MimallocDetail).cast(),
            );
        }
        d
    }
}

impl Drop for MimallocRaw {
    fn drop(&mut self) {
        // SAFETY: the heap is live and owned by this thread; destroying it frees its blocks,
        // none of which outlives the allocator.
        unsafe { mi::mi_heap_destroy(self.heap.as_ptr()) }
    }
}

impl RawHeap for MimallocRaw {
    const NAME: &'static str = "mimalloc";

    fn malloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        // SAFETY: the heap is live and owned by this thread.
        NonNull::new(unsafe { mi::mi_heap_malloc(self.heap.as_ptr(), size) }.cast())
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        _old_size: usize,
        new_size: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller promises `ptr` is a live block of this heap.
        NonNull::new(
            unsafe { mi::mi_heap_realloc(self.heap.as_ptr(), ptr.as_ptr().cast(), new_size) }
                .cast(),
        )
    }

    unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize) {
        // SAFETY: the caller promises `ptr` is a live mimalloc block, freed once.
        unsafe { mi::mi_free(ptr.as_ptr().cast()) }
    }

    unsafe fn usable(&self, ptr: NonNull<u8>) -> usize {
        // SAFETY: the caller promises `ptr` is a live mimalloc block.
        unsafe { mi::mi_usable_size(ptr.as_ptr().cast()) }
    }

    /// `mi_good_size` up to 512 KiB; above, mimalloc maps a huge page rounded as its
    /// `_mi_os_good_alloc_size` rounds (64 KiB below 2 MiB, 256 KiB below 8 MiB, 1 MiB below
    /// 32 MiB, 4 MiB above), which `mi_good_size` does not model.
    fn predict(&self, size: usize) -> usize {
        const KIB: usize = 1024;
        const MIB: usize = 1024 * KIB;
        if size <= 512 * KIB {
            // SAFETY: `mi_good_size` has no preconditions.
            return unsafe { mi::mi_good_size(size) };
        }
        let align = match size {
            s if s < 2 * MIB => 64 * KIB,
            s if s < 8 * MIB => 256 * KIB,
            s if s < 32 * MIB => MIB,
            _ => 4 * MIB,
        };
        size.next_multiple_of(align)
    }

    fn footprint(&self) -> u64 {
        self.visit().committed
    }

    fn detail(&self) -> Detail {
        Detail::Mimalloc(self.visit())
    }

    fn version(&self) -> Option<String> {
        let v = version();
        Some(format!(
            "mimalloc {}.{}.{}",
            v / 10000,
            v / 100 % 100,
            v % 100
        ))
    }
}
