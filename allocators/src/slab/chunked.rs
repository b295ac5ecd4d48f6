//! memcached's chunked items: a request above `chunk_max` spread over a header chunk and data
//! chunks, each starting with a 48-byte link (see the [module docs](super)).

use std::ptr::{self, NonNull};

use super::{Slab, CHUNK_HEADER};
use crate::page::PageSource;
use crate::{AllocError, Block};

/// The 48-byte link at the start of every chunk of a chunked item (memcached's `item_chunk`);
/// fraglab stores its own fields in it.
#[repr(C)]
pub(super) struct ChunkLink {
    /// Next data chunk, or null.
    pub(super) next: *mut u8,
    /// Bytes of caller data in this chunk.
    pub(super) len: u32,
    /// Class index (0-based) of this chunk.
    pub(super) class: u32,
    /// The chunk before this one in the chain (null for the header chunk): the page mover
    /// relinks a data chunk it copies, as memcached's `item_chunk.prev` lets it.
    pub(super) prev: *mut u8,
    /// The chain's header chunk (itself for the header chunk; memcached's `item_chunk.head`).
    pub(super) head: *mut u8,
    _rest: [u8; CHUNK_HEADER - 32],
}

const _: () = assert!(std::mem::size_of::<ChunkLink>() == CHUNK_HEADER);

impl<P: PageSource> Slab<P> {
    /// `alloc_item` for a request above `chunk_max`: a header chunk, then data chunks.
    pub(super) fn alloc_chunked(&mut self, size: usize, head: usize) -> Result<Block, AllocError> {
        let too_large = AllocError::TooLarge {
            size,
            max: self.config.item_max,
        };
        if size > self.config.item_max || head > size {
            return Err(too_large);
        }
        let hdr_total = head + CHUNK_HEADER;
        if hdr_total > self.config.chunk_max {
            return Err(too_large);
        }
        let hdr_id = self.class_index(hdr_total);
        // memcached pulls every chunk with `do_item_alloc_pull`, which evicts in that chunk's
        // own class when it is full. So an `OutOfMemory` from here names a size in the class
        // that ran out (the header's, the largest, or the tail's), and the engine evicts there.
        let fallback = std::mem::take(&mut self.tail_fallback);
        self.tail_waiting = None;
        let Some(hdr) = self.take_chunk(hdr_id, 0) else {
            return Err(AllocError::OutOfMemory { size: hdr_total });
        };
        // SAFETY: `hdr` is a chunk of at least `hdr_total` bytes that we own; the link fits in
        // its first 48 bytes and chunks are 8-aligned.
        unsafe {
            hdr.cast::<ChunkLink>().as_ptr().write(ChunkLink {
                next: ptr::null_mut(),
                len: head as u32,
                class: hdr_id as u32,
                prev: ptr::null_mut(),
                head: hdr.as_ptr(),
                _rest: [0; CHUNK_HEADER - 32],
            })
        };
        self.chunked.insert(hdr.as_ptr() as usize);
        let mut last = hdr;
        let mut allocated = self.classes[hdr_id].size as usize;
        let mut remain = size - head;
        while remain > 0 {
            let csize = (remain + CHUNK_HEADER).min(self.config.chunk_max);
            let mut id = self.class_index(csize);
            let mut chunk = self.take_chunk(id, 0);
            if chunk.is_none() && id != self.largest() && fallback {
                // `do_item_alloc_chunk`: a tail whose class is full and has nothing to evict
                // takes a full-size chunk instead.
                id = self.largest();
                chunk = self.take_chunk(id, 0);
            }
            let Some(chunk) = chunk else {
                // SAFETY: the chain from `hdr` is complete up to `last`, whose `next` is null.
                unsafe { self.free_chain(hdr) };
                if id != self.largest() {
                    self.tail_waiting = Some(id);
                }
                return Err(AllocError::OutOfMemory { size: csize });
            };
            let len = csize - CHUNK_HEADER;
            // SAFETY: as for the header chunk; `last` is a chunk of this chain we own.
            unsafe {
                chunk.cast::<ChunkLink>().as_ptr().write(ChunkLink {
                    next: ptr::null_mut(),
                    len: len as u32,
                    class: id as u32,
                    prev: last.as_ptr(),
                    head: hdr.as_ptr(),
                    _rest: [0; CHUNK_HEADER - 32],
                });
                (*last.cast::<ChunkLink>().as_ptr()).next = chunk.as_ptr();
            }
            self.chunked.insert(chunk.as_ptr() as usize);
            last = chunk;
            allocated += self.classes[id].size as usize;
            remain -= len;
        }
        let largest = self.largest();
        self.classes[largest].requested += size as u64;
        self.tally.on_alloc(size, allocated);
        Ok(Block {
            // SAFETY: the header chunk is at least 48 bytes long.
            ptr: unsafe { hdr.add(CHUNK_HEADER) },
            usable: size,
        })
    }

    /// Frees every chunk of a chain starting at the header chunk; returns the chunk bytes.
    ///
    /// # Safety
    /// `hdr` must be the header chunk of a chain built by `alloc_chunked`.
    pub(super) unsafe fn free_chain(&mut self, hdr: NonNull<u8>) -> usize {
        let mut freed = 0;
        let mut cur = hdr.as_ptr();
        while let Some(chunk) = NonNull::new(cur) {
            // SAFETY: every chunk of the chain starts with a link written by `alloc_chunked`.
            let link = unsafe { chunk.cast::<ChunkLink>().as_ptr().read() };
            let id = link.class as usize;
            freed += self.classes[id].size as usize;
            self.chunked.remove(&(chunk.as_ptr() as usize));
            self.put_chunk(id, chunk, 0);
            cur = link.next;
        }
        freed
    }
}
