//! Copy-on-write in user space, at the allocator's block granularity, measured over a fork's
//! window.
//!
//! A fork-less snapshot of an allocator that owns its memory (a slab: pages cut into chunks)
//! copies a block before its first write after the snapshot starts, and only that block,
//! where the kernel copies the whole 4 KiB page around any write. To set the two side by
//! side on the same run, [`BlockWatch`] checksums every block (and every 4 KiB page) of the
//! allocator's regions at the fork and again when the child ends: a block whose bytes
//! changed was written in the window, and a user-space copy-on-write would have copied it
//! once. Writes that left a block's bytes as they were (a link rewritten to its old value)
//! are not seen, so the figure is a floor; the page count taken the same way is the part of
//! the kernel's copy (`cow_bytes`) that the allocator's memory explains.

use std::collections::HashMap;

use fraglab_allocators::Allocator;
use fraglab_reports::ForkSave;

const PAGE: usize = 4096;

/// A 32-bit checksum of `bytes` (FNV-1a over 8-byte words, folded).
fn sum(bytes: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(0x100_0000_01b3);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// One region's checksums at the fork.
#[derive(Debug)]
struct Region {
    len: usize,
    block: usize,
    blocks: Vec<u32>,
    pages: Vec<u32>,
}

/// The checksums of an allocator's blocks at a fork.
#[derive(Debug)]
pub struct BlockWatch {
    regions: HashMap<usize, Region>,
}

/// The checksums of a region's blocks and of its 4 KiB pages.
fn sums(bytes: &[u8], block: usize) -> (Vec<u32>, Vec<u32>) {
    (
        bytes.chunks(block).map(sum).collect(),
        bytes.chunks(PAGE).map(sum).collect(),
    )
}

/// # Safety
/// `start..start + len` must be memory the allocator owns and keeps mapped.
unsafe fn bytes<'a>(start: std::ptr::NonNull<u8>, len: usize) -> &'a [u8] {
    // SAFETY: the caller's promise; the bytes are only read, while nothing writes them (the
    // replay is on this thread and waits).
    unsafe { std::slice::from_raw_parts(start.as_ptr(), len) }
}

impl BlockWatch {
    /// Checksums every block of `alloc` now, or `None` when it does not own its blocks.
    pub fn start<A: Allocator>(alloc: &A) -> Option<Self> {
        let mut regions = HashMap::new();
        let owns = alloc.for_each_block_region(&mut |start, len, block| {
            // SAFETY: the allocator reports a region it owns, mapped while it lives.
            let (blocks, pages) = sums(unsafe { bytes(start, len) }, block);
            regions.insert(
                start.as_ptr() as usize,
                Region {
                    len,
                    block,
                    blocks,
                    pages,
                },
            );
        });
        owns.then_some(BlockWatch { regions })
    }

    /// Counts the blocks (and 4 KiB pages) of the regions at the fork whose bytes have
    /// changed, into `save`. A region given back or cut anew since the fork counts whole: its
    /// blocks were all written.
    pub fn measure<A: Allocator>(&self, alloc: &A, save: &mut ForkSave) {
        let mut blocks = 0u64;
        let mut pages = 0u64;
        let mut seen = 0usize;
        alloc.for_each_block_region(&mut |start, len, block| {
            let Some(r) = self.regions.get(&(start.as_ptr() as usize)) else {
                return;
            };
            seen += 1;
            if r.len != len || r.block != block {
                blocks += r.len as u64;
                pages += r.len.div_ceil(PAGE) as u64 * PAGE as u64;
                return;
            }
            // SAFETY: as in `start`.
            let (now_blocks, now_pages) = sums(unsafe { bytes(start, len) }, block);
            for (i, (a, b)) in r.blocks.iter().zip(&now_blocks).enumerate() {
                if a != b {
                    blocks += block.min(len - i * block) as u64;
                }
            }
            for (i, (a, b)) in r.pages.iter().zip(&now_pages).enumerate() {
                if a != b {
                    pages += PAGE.min(len - i * PAGE) as u64;
                }
            }
        });
        // Regions gone since the fork (a page given back) were rewritten or unmapped whole.
        if seen < self.regions.len() {
            let mut live = std::collections::HashSet::new();
            alloc.for_each_block_region(&mut |s, _, _| {
                live.insert(s.as_ptr() as usize);
            });
            for (start, r) in &self.regions {
                if !live.contains(start) {
                    blocks += r.len as u64;
                    pages += r.len.div_ceil(PAGE) as u64 * PAGE as u64;
                }
            }
        }
        save.block_cow_bytes = Some(blocks);
        save.block_page_cow_bytes = Some(pages);
    }
}
