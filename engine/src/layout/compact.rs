//! The lab's own layout: one allocation per item with the smallest header that still supports
//! expiry, eviction and lookup, and an open-addressing index of item pointers.
//!
//! ```text
//! offset  size  field
//!      0     1  key length (keys are at most 250 bytes)
//!      1     1  bits: 1 = client flags follow
//!      2     3  value length (values are at most 16 MiB - 1)
//!      5     3  access: LRU clock (seconds, 24 bits) or LFU (16-bit minutes, 8-bit counter)
//!      8     4  expiry time in logical seconds (0: none)
//!     12    16  prev, next: list links, only when the policy needs an exact order
//!   12|28    4  client flags, only when non-zero
//!      .     K  key
//!      .     V  value
//! ```
//!
//! Per-item overhead: 12 bytes of header plus one 8-byte index slot (the table is kept between
//! 7/16 and 7/8 full, so 9.1 to 18.3 bytes of slots per item), and nothing else: no
//! terminating bytes, no CAS, no hash chain, no separate expiry structure. Compare memcached's
//! 56 bytes (48-byte header + CAS) + 2 (key NUL, value CRLF) + 8-byte bucket slot, and Redis's
//! 24 (dict entry) + 16 (robj) + SDS headers and terminators + 8-byte bucket slot.

use std::ptr::NonNull;

use fraglab_allocators::{read_block, write_block, AllocError, Allocator};

use super::table::SlotTable;
use super::{Layout, LayoutKind, LayoutOptions, NewItem, PrefetchStage};
use crate::util::{hash_key, prefetch_bytes, read_at, write_at, Rng};

/// The fixed header.
pub const HEADER: usize = 12;
const BIT_FLAGS: u8 = 1;
const LINKS: usize = 16;
/// The largest value the 3-byte length holds.
pub const MAX_VALUE: usize = (1 << 24) - 1;

/// The compact layout. See the [module docs](self).
#[derive(Debug)]
pub struct Compact {
    table: SlotTable,
    links: bool,
}

#[derive(Clone, Copy)]
struct Shape {
    klen: usize,
    vlen: usize,
    has_flags: bool,
}

fn key_offset(links: bool, has_flags: bool) -> usize {
    HEADER + if links { LINKS } else { 0 } + if has_flags { 4 } else { 0 }
}

/// The key of a live item.
///
/// # Safety
/// `item` is a live item of a compact layout with links as given; the returned slice must not
/// outlive it.
unsafe fn key_at<'a>(links: bool, item: NonNull<u8>) -> &'a [u8] {
    // SAFETY: the key is inside the item's contiguous head.
    unsafe {
        let s = Compact::shape(item);
        std::slice::from_raw_parts(item.as_ptr().add(key_offset(links, s.has_flags)), s.klen)
    }
}

impl Compact {
    fn key_offset(&self, has_flags: bool) -> usize {
        key_offset(self.links, has_flags)
    }

    /// # Safety
    /// `item` is a live item of this layout.
    unsafe fn shape(item: NonNull<u8>) -> Shape {
        // SAFETY: the header's first 12 bytes are in the item's contiguous head.
        unsafe {
            Shape {
                klen: read_at::<u8>(item, 0) as usize,
                vlen: (read_at::<u32>(item, 2) & 0xFF_FFFF) as usize,
                has_flags: read_at::<u8>(item, 1) & BIT_FLAGS != 0,
            }
        }
    }

    fn size(&self, s: Shape) -> usize {
        self.key_offset(s.has_flags) + s.klen + s.vlen
    }

    fn key_of(&self, item: NonNull<u8>) -> &[u8] {
        // SAFETY: handles are live items of this layout.
        unsafe { key_at(self.links, item) }
    }

    fn hash_of(&self, item: NonNull<u8>) -> u64 {
        hash_key(self.key_of(item))
    }

    /// Allocates and fills an item; returns it.
    fn build<A: Allocator>(
        &self,
        a: &mut A,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        access: u32,
    ) -> Result<NonNull<u8>, AllocError> {
        let has_flags = flags != 0;
        let ko = self.key_offset(has_flags);
        let size = ko + key.len() + value.len();
        let block = a.alloc_item(size, ko + key.len())?;
        let item = block.ptr;
        // SAFETY: the block holds `size` bytes, of which the first `ko + key.len()` are
        // contiguous (the head); the value may be spread over segments, so it goes through
        // `write_block`.
        unsafe {
            write_at::<u8>(item, 0, key.len() as u8);
            write_at::<u8>(item, 1, if has_flags { BIT_FLAGS } else { 0 });
            write_at::<u32>(item, 2, value.len() as u32 & 0xFF_FFFF);
            write_at::<u8>(item, 5, access as u8);
            write_at::<u16>(item, 6, (access >> 8) as u16);
            write_at::<u32>(item, 8, exptime);
            if self.links {
                write_at::<[u8; LINKS]>(item, HEADER, [0; LINKS]);
            }
            if has_flags {
                write_at::<u32>(item, ko - 4, flags);
            }
            std::ptr::copy_nonoverlapping(key.as_ptr(), item.as_ptr().add(ko), key.len());
            write_block(a, item, size, ko + key.len(), value);
        }
        Ok(item)
    }
}

impl Layout for Compact {
    const KIND: LayoutKind = LayoutKind::Compact;
    type Handle = NonNull<u8>;
    const FOLLOWS_MOVES: bool = true;
    const BLOCK_HANDLES: bool = true;

    fn new(opts: LayoutOptions) -> Self {
        Compact {
            table: SlotTable::default(),
            links: opts.links,
        }
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn index_bytes(&self) -> u64 {
        self.table.bytes()
    }

    #[inline]
    fn find<A: Allocator>(&mut self, _a: &mut A, key: &[u8], hash: u64) -> Option<NonNull<u8>> {
        self.table.find(hash, |item| self.key_of(*item) == key)
    }

    fn prefetch<A: Allocator>(
        &self,
        _a: &A,
        hash: u64,
        stage: PrefetchStage,
    ) -> Option<NonNull<u8>> {
        match stage {
            PrefetchStage::Index => self.table.prefetch_slot(hash),
            PrefetchStage::Item => self.table.prefetch_items(hash),
            PrefetchStage::Find => {
                let found = self.table.find(hash, |_| true)?;
                // The value, which a get copies out: the item's head is cached now.
                // SAFETY: entries are live items of this layout.
                let size = self.size(unsafe { Self::shape(found) });
                prefetch_bytes(found.as_ptr(), size);
                return Some(found);
            }
        }
        None
    }

    fn insert<A: Allocator>(
        &mut self,
        a: &mut A,
        it: NewItem<'_>,
    ) -> Result<NonNull<u8>, AllocError> {
        let item = self.build(a, it.key, it.value, it.flags, it.exptime, it.access)?;
        let links = self.links;
        // SAFETY: the table holds live items of this layout only.
        self.table
            .insert(it.hash, item, |p| hash_key(unsafe { key_at(links, p) }));
        Ok(item)
    }

    fn update<A: Allocator>(
        &mut self,
        a: &mut A,
        h: NonNull<u8>,
        value: &[u8],
        flags: u32,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: the old item (and so its key) stays live until it is freed below; no
        // allocation is made per overwrite to hold the key.
        let key = unsafe { key_at(self.links, h) };
        let hash = hash_key(key);
        let (exptime, access) = (self.exptime(a, h), self.access(h));
        let item = self.build(a, key, value, flags, exptime, access)?;
        self.table.replace(hash, h, item);
        // SAFETY: `h` is a live item of this layout, no longer in the index (the caller took
        // it out of any list first).
        unsafe {
            let size = self.size(Self::shape(h));
            a.free(h, size);
        }
        Ok(item)
    }

    fn overwrite<A: Allocator>(&mut self, a: &mut A, h: NonNull<u8>, value: &[u8]) {
        // SAFETY: `h` is live and its value has `value.len()` bytes at the end of the item.
        unsafe {
            let s = Self::shape(h);
            debug_assert_eq!(s.vlen, value.len());
            write_block(
                a,
                h,
                self.size(s),
                self.key_offset(s.has_flags) + s.klen,
                value,
            );
        }
    }

    fn remove<A: Allocator>(&mut self, a: &mut A, h: NonNull<u8>) {
        let hash = self.hash_of(h);
        let found = self.table.remove(hash, h);
        debug_assert!(found, "removing an item that is not indexed");
        // SAFETY: `h` is a live item of this layout, now out of the index; freed once.
        unsafe {
            let size = self.size(Self::shape(h));
            a.free(h, size);
        }
    }

    fn read_value<A: Allocator>(&self, a: &A, h: NonNull<u8>, out: &mut Vec<u8>) {
        // SAFETY: `h` is live; the value is the item's last `vlen` bytes.
        unsafe {
            let s = Self::shape(h);
            let start = out.len();
            out.resize(start + s.vlen, 0);
            read_block(
                a,
                h,
                self.size(s),
                self.key_offset(s.has_flags) + s.klen,
                &mut out[start..],
            );
        }
    }

    fn value_len<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> usize {
        // SAFETY: `h` is live.
        unsafe { Self::shape(h).vlen }
    }

    fn key_len(&self, h: NonNull<u8>) -> usize {
        // SAFETY: `h` is live.
        unsafe { Self::shape(h).klen }
    }

    fn read_key<A: Allocator>(&self, _a: &A, h: NonNull<u8>, out: &mut Vec<u8>) {
        out.extend_from_slice(self.key_of(h));
    }

    fn flags<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> u32 {
        // SAFETY: `h` is live; the flags sit just before the key when present.
        unsafe {
            let s = Self::shape(h);
            if s.has_flags {
                read_at::<u32>(h, self.key_offset(true) - 4)
            } else {
                0
            }
        }
    }

    fn exptime<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> u32 {
        // SAFETY: `h` is live.
        unsafe { read_at::<u32>(h, 8) }
    }

    fn set_exptime<A: Allocator>(
        &mut self,
        _a: &mut A,
        h: NonNull<u8>,
        exptime: u32,
    ) -> Result<(), AllocError> {
        // SAFETY: `h` is live.
        unsafe { write_at::<u32>(h, 8, exptime) };
        Ok(())
    }

    #[inline]
    fn access(&self, h: NonNull<u8>) -> u32 {
        // SAFETY: `h` is live; bytes 5..8 hold the access field.
        unsafe { u32::from(read_at::<u8>(h, 5)) | u32::from(read_at::<u16>(h, 6)) << 8 }
    }

    #[inline]
    fn set_access(&mut self, h: NonNull<u8>, access: u32) {
        // SAFETY: `h` is live.
        unsafe {
            write_at::<u8>(h, 5, access as u8);
            write_at::<u16>(h, 6, (access >> 8) as u16);
        }
    }

    fn links(&self, h: NonNull<u8>) -> Option<NonNull<u8>> {
        // SAFETY: with links on, every item has 16 bytes of links at offset 12.
        self.links.then(|| unsafe { h.add(HEADER) })
    }

    fn handle_at_links(&self, links: NonNull<u8>) -> NonNull<u8> {
        // SAFETY: `links` came from `links()`, 12 bytes into an item.
        unsafe { links.sub(HEADER) }
    }

    fn alloc_size<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> usize {
        // SAFETY: `h` is live.
        self.size(unsafe { Self::shape(h) })
    }

    fn random<A: Allocator>(
        &mut self,
        a: &A,
        rng: &mut Rng,
        volatile: bool,
    ) -> Option<NonNull<u8>> {
        for _ in 0..if volatile { 64 } else { 1 } {
            let item = self.table.entry_from(rng.below(self.table.capacity()))?;
            if !volatile || self.exptime(a, item) != 0 {
                return Some(item);
            }
        }
        None
    }

    fn handles(&self) -> Vec<NonNull<u8>> {
        self.table.entries().collect()
    }

    fn for_each_handle(&self, f: &mut dyn FnMut(NonNull<u8>) -> bool) {
        for h in self.table.entries() {
            if !f(h) {
                return;
            }
        }
    }

    fn handle_at_block(&self, block: NonNull<u8>) -> NonNull<u8> {
        block
    }

    fn scan_keys(&self, cursor: u64, out: &mut Vec<NonNull<u8>>) -> u64 {
        // 16 slots a step, about a dict bucket's worth of keys at the table's 7/16..7/8 load.
        self.table.entries_in(cursor as usize, 16, out) as u64
    }

    fn relocated(&mut self, from: NonNull<u8>, to: NonNull<u8>) -> (NonNull<u8>, NonNull<u8>) {
        let hash = self.hash_of(to);
        let found = self.table.replace(hash, from, to);
        debug_assert!(found, "a moved item that is not indexed");
        (from, to)
    }

    fn blocks<A: Allocator>(&self, a: &A, h: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
        // SAFETY: `h` is a live item of `alloc_size` bytes; its pieces (one, or the chunks of
        // a large item) are reported by the allocator.
        unsafe {
            a.for_each_segment(h, self.alloc_size(a, h), &mut |p, n| {
                f(p.as_ptr() as usize, n)
            })
        }
    }
}
