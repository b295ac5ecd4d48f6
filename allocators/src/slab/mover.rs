//! The page mover (memcached 1.6.18's `slab_rebalance_start`, `_move` and `_finish` in
//! `slabs.c`): one page of a source class is emptied and given to another class or to the
//! global page pool.
//!
//! 1. [`Slab::reassign_start`] takes the source class's *first* page (`slab_list[0]`, "most
//!    likely to contain the oldest items"), after checking the class has at least 2 pages
//!    (`REASSIGN_NOSPARE`). The page's free chunks leave the free list at once.
//! 2. The owner of the items (the engine) walks the live chunks it is given. For each it
//!    drops an expired item, or asks [`Slab::reassign_rescue`] to copy the chunk into a free
//!    chunk of the same class outside the page (`slab_rebalance_alloc`, which never takes a
//!    new page): a plain item or a chunked item's header chunk moves and the owner points its
//!    index at the new place; a chunked item's data chunk is relinked in its chain
//!    (`chunk_rescues`). When the class has no free chunk left, the owner evicts the item
//!    (`slab_reassign_evictions_nomem`). A chunk freed while its page is being moved never
//!    returns to the free list.
//! 3. [`Slab::reassign_finish`] removes the page from the source class's list (the rest shift
//!    down) and either zeroes it and cuts it into the destination class's chunks, or puts it
//!    in the global pool, from which the memory is given back to the system while more than
//!    the limit is held (`memory_release`).
//!
//! memcached's mover runs in its own thread and steps over busy items; here a move runs whole
//! between two commands, so no item is ever busy.

use std::ptr::{self, NonNull};

use super::chunked::ChunkLink;
use super::{MoveError, MoveStats, Slab, CHUNK_HEADER, PAGE_SIZE};
use crate::page::PageSource;
use crate::PageMover;

/// An item's block that the page mover copied: the owner points its references at `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescued {
    /// Where the block was (no longer to be read).
    pub from: NonNull<u8>,
    /// Where it is now, with the same bytes.
    pub to: NonNull<u8>,
}

/// A chunk of the moving page that held live data when the move started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveChunk {
    /// The chunk's start.
    pub chunk: NonNull<u8>,
}

/// The move under way (memcached's `slab_rebal`).
#[derive(Debug)]
pub(super) struct Reassign {
    base: usize,
    end: usize,
    chunk_size: usize,
    src: usize,
    dst: Option<usize>,
    /// Chunks cleared for the move (free, rescued, evicted): `slab_rebal.completed`.
    done: Vec<bool>,
    cleared: usize,
}

impl Reassign {
    /// Marks `chunk` cleared if it lies in the moving page; `false` otherwise.
    pub(super) fn absorb(&mut self, chunk: *mut u8) -> bool {
        let a = chunk as usize;
        if a < self.base || a >= self.end {
            return false;
        }
        let i = (a - self.base) / self.chunk_size;
        debug_assert!(!self.done[i], "a chunk of the moving page cleared twice");
        self.done[i] = true;
        self.cleared += 1;
        true
    }
}

impl<P: PageSource> Slab<P> {
    /// Starts moving the first page of class `src` to class `dst` (0: the global pool).
    /// Returns the page's live chunks, which the caller must each drop or rescue before
    /// [`reassign_finish`](Self::reassign_finish).
    pub fn reassign_start(&mut self, src: u32, dst: u32) -> Result<Vec<LiveChunk>, MoveError> {
        if self.reassign.is_some() {
            return Err(MoveError::Running);
        }
        let (s, d) = self.check_move(src, dst)?;
        if self.classes[s].pages < 2 {
            return Err(MoveError::NoSpare(src));
        }
        let class = &mut self.classes[s];
        let page = class.page_list[0].as_ptr() as usize;
        let size = class.size as usize;
        let perslab = class.chunks_per_page as usize;
        let mut m = Reassign {
            base: page,
            end: page + perslab * size,
            chunk_size: size,
            src: s,
            dst: d,
            done: vec![false; perslab],
            cleared: 0,
        };
        // The page's free chunks leave the free list (memcached's `slab_rebalance_cut_free`).
        Self::cut_free(class, |c| m.absorb(c));
        let live = (0..perslab)
            .filter(|&i| !m.done[i])
            .map(|i| LiveChunk {
                chunk: NonNull::new((page + i * size) as *mut u8)
                    .expect("page chunks are non-null"),
            })
            .collect();
        self.reassign = Some(m);
        Ok(live)
    }

    /// The block (as [`Allocator::alloc`](crate::Allocator::alloc) returned it) whose memory
    /// includes `chunk`, or `None` when the chunk has been cleared since the move started (its
    /// item was freed, or rescued with an earlier chunk).
    pub fn reassign_block(&self, chunk: &LiveChunk) -> Option<NonNull<u8>> {
        let m = self.reassign.as_ref()?;
        let a = chunk.chunk.as_ptr() as usize;
        if a < m.base || a >= m.end || m.done[(a - m.base) / m.chunk_size] {
            return None;
        }
        if !self.chunked.contains(&a) {
            return Some(chunk.chunk);
        }
        // SAFETY: a chunk of a chunked item starts with the link `alloc_chunked` wrote.
        let head = unsafe { chunk.chunk.cast::<ChunkLink>().as_ptr().read() }.head;
        // SAFETY: the header chunk is at least 48 bytes long; the block starts after its link.
        NonNull::new(head).map(|h| unsafe { h.add(CHUNK_HEADER) })
    }

    /// Copies a live chunk of the moving page into a free chunk of its class outside the page
    /// (never a new page). Returns `Ok(Some(Rescued { from, to }))` when the item's block moved (a plain
    /// item or a chunked item's header chunk: the caller points its references at `new`),
    /// `Ok(None)` when a data chunk of a chunked item moved (its block is where it was), and
    /// `Err(MoveError::NoMemory)` when the class has no free chunk: the caller evicts the item.
    pub fn reassign_rescue(&mut self, chunk: &LiveChunk) -> Result<Option<Rescued>, MoveError> {
        let Some(block) = self.reassign_block(chunk) else {
            return Ok(None);
        };
        let src = self.reassign.as_ref().map_or(0, |m| m.src);
        let old = chunk.chunk.as_ptr();
        let class = &mut self.classes[src];
        if class.free.is_null() {
            self.moves.evictions_nomem += 1;
            return Err(MoveError::NoMemory(src as u32 + 1));
        }
        let new = class.free;
        // SAFETY: `new` is a free chunk of this class; its first 8 bytes link the free list.
        class.free = unsafe { new.cast::<*mut u8>().read() };
        class.free_count -= 1;
        let size = class.size as usize;
        let addr = old as usize;
        let moves_block = if !self.chunked.contains(&addr) {
            // SAFETY: both are distinct chunks of `size` bytes of this class, in pages we own.
            unsafe { ptr::copy_nonoverlapping(old, new, size) };
            self.moves.rescues += 1;
            true
        } else {
            // SAFETY: the chunk starts with the link `alloc_chunked` wrote, and `len` bytes of
            // data follow it inside the chunk; the new chunk has the same size.
            let link = unsafe { old.cast::<ChunkLink>().read() };
            // SAFETY: as above.
            unsafe { ptr::copy_nonoverlapping(old, new, CHUNK_HEADER + link.len as usize) };
            self.chunked.remove(&addr);
            self.chunked.insert(new as usize);
            if link.prev.is_null() {
                // The header chunk: every chunk of the chain points back at it.
                // SAFETY: the new header chunk's link was just copied; it is its own head.
                unsafe { (*new.cast::<ChunkLink>()).head = new };
                let mut cur = link.next;
                let mut prev = new;
                while !cur.is_null() {
                    // SAFETY: every chunk of the chain starts with a link we wrote.
                    unsafe {
                        let l = cur.cast::<ChunkLink>();
                        (*l).head = new;
                        (*l).prev = prev;
                        prev = cur;
                        cur = (*l).next;
                    }
                }
                self.moves.rescues += 1;
                true
            } else {
                // A data chunk: its neighbours point at the copy.
                // SAFETY: `prev` and `next` are chunks of the same chain, with our links.
                unsafe {
                    (*link.prev.cast::<ChunkLink>()).next = new;
                    if !link.next.is_null() {
                        (*link.next.cast::<ChunkLink>()).prev = new;
                    }
                }
                self.moves.chunk_rescues += 1;
                false
            }
        };
        if let Some(m) = &mut self.reassign {
            m.absorb(old);
        }
        if !moves_block {
            return Ok(None);
        }
        let offset = block.as_ptr() as usize - addr;
        // SAFETY: the block starts `offset` bytes into its chunk (0, or the 48-byte link of a
        // header chunk), and the new chunk has the same layout.
        let new_block = unsafe { NonNull::new_unchecked(new.add(offset)) };
        Ok(Some(Rescued {
            from: block,
            to: new_block,
        }))
    }

    /// Finishes the move once every chunk of the page is cleared; returns the page.
    pub fn reassign_finish(&mut self) -> Result<NonNull<u8>, MoveError> {
        let Some(m) = self.reassign.take() else {
            return Err(MoveError::NotStarted);
        };
        if m.cleared < m.done.len() {
            let left = m.done.len() - m.cleared;
            self.reassign = Some(m);
            return Err(MoveError::LiveChunks(left));
        }
        let page = NonNull::new(m.base as *mut u8).expect("page bases are non-null");
        let class = &mut self.classes[m.src];
        class.pages -= 1;
        class.page_list.remove(0);
        match m.dst {
            Some(dst) => {
                // SAFETY: the page is ours and no chunk of it is in use or on a free list;
                // zero it as `slab_rebalance_finish` does before splitting it.
                unsafe { ptr::write_bytes(page.as_ptr(), 0, PAGE_SIZE) };
                self.carve(dst, page);
            }
            None => {
                self.pages.insert(m.base, None);
                self.pool.push(page);
                self.memory_release();
            }
        }
        self.moves.slabs_moved += 1;
        Ok(page)
    }

    /// `memory_release`: gives pooled pages back while more than the limit is held.
    fn memory_release(&mut self) {
        let Some(limit) = self.mem_limit else {
            return;
        };
        while self.mem_malloced > limit {
            let Some(page) = self.pool.pop() else {
                break;
            };
            self.pages.remove(&(page.as_ptr() as usize));
            // SAFETY: the page came from `take_page(PAGE_SIZE)`; it is in no class and on no
            // free list, and nothing refers to it any more.
            unsafe { self.source.return_page(page, PAGE_SIZE) };
            self.mem_malloced -= PAGE_SIZE as u64;
        }
    }

    /// `slabs_reassign_pick_any`: the next class after the last one picked (round robin) with
    /// more than one page, other than `dst`.
    pub fn reassign_pick_any(&mut self, dst: u32) -> Option<u32> {
        let n = self.classes.len();
        for _ in 0..n {
            self.pick_cur = (self.pick_cur + 1) % n;
            if self.pick_cur as u32 + 1 == dst {
                continue;
            }
            if self.classes[self.pick_cur].pages > 1 {
                return Some(self.pick_cur as u32 + 1);
            }
        }
        None
    }

    /// The page mover's counters.
    pub fn move_stats(&self) -> MoveStats {
        self.moves
    }
}

impl<P: PageSource> PageMover for Slab<P> {
    fn automove_mode(&self) -> u8 {
        self.config.automove.map_or(0, |a| a.mode)
    }

    fn tick_ops(&self) -> u64 {
        self.config.automove.map_or(u64::MAX, |a| a.tick_ops)
    }

    fn move_us(&self) -> u64 {
        self.config.automove.map_or(0, |a| a.move_us)
    }

    fn class_count(&self) -> usize {
        self.classes.len()
    }

    fn automove_run(&mut self, items: &[super::ClassActivity]) -> Option<(u32, u32)> {
        Slab::automove_run(self, items)
    }

    fn pick_any(&mut self, dst: u32) -> Option<u32> {
        self.reassign_pick_any(dst)
    }

    fn start(&mut self, src: u32, dst: u32) -> Result<Vec<LiveChunk>, MoveError> {
        self.reassign_start(src, dst)
    }

    fn block(&self, chunk: &LiveChunk) -> Option<NonNull<u8>> {
        self.reassign_block(chunk)
    }

    fn rescue(&mut self, chunk: &LiveChunk) -> Result<Option<Rescued>, MoveError> {
        self.reassign_rescue(chunk)
    }

    fn finish(&mut self) -> Result<NonNull<u8>, MoveError> {
        self.reassign_finish()
    }
}
