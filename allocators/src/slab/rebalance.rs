//! Page moves between classes (memcached's `slab_rebalance`): which pages of a class are
//! empty, and moving one to another class or to the global pool.

use std::collections::BTreeMap;
use std::ptr::{self, NonNull};

use super::{Slab, PAGE_SIZE};
use crate::page::PageSource;

/// Why a page could not be moved between classes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// The class id does not exist.
    #[error("no slab class {0}")]
    NoSuchClass(u32),
    /// Every page of the source class still holds live chunks: evict them first.
    #[error("class {0} has no page whose chunks are all free")]
    NoEmptyPage(u32),
    /// Source and destination are the same class.
    #[error("cannot move a page from class {0} to itself")]
    SameClass(u32),
    /// The source class has fewer than 2 pages (memcached's `NOSPARE`).
    #[error("class {0} has no spare page to move (it needs at least 2)")]
    NoSpare(u32),
    /// A page move is already under way (memcached's `RUNNING`).
    #[error("a page move is already under way")]
    Running,
    /// No page move is under way.
    #[error("no page move is under way")]
    NotStarted,
    /// The class has no free chunk outside the moving page to rescue an item into.
    #[error("class {0} has no free chunk to rescue an item into")]
    NoMemory(u32),
    /// Chunks of the moving page still hold live items.
    #[error("{0} chunks of the moving page still hold live items")]
    LiveChunks(usize),
}

/// A page as the rebalancer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// Start of the page.
    pub base: NonNull<u8>,
    /// The class the page is cut for.
    pub class: u32,
    /// Chunks of the page on the free list.
    pub free_chunks: u32,
    /// Chunks of the page in use.
    pub used_chunks: u32,
}

impl<P: PageSource> Slab<P> {
    /// Pages of class `class` (1-based) with their free and used chunks: what a rebalancer
    /// needs to choose a page to empty. Costs one walk over the class's free list.
    pub fn class_pages(&self, class: u32) -> Result<Vec<PageInfo>, MoveError> {
        let id = self.check_class(class)?;
        let mut free: BTreeMap<usize, u32> = self
            .pages
            .iter()
            .filter(|(_, c)| **c == Some(id as u8))
            .map(|(&base, _)| (base, 0))
            .collect();
        let mut cur = self.classes[id].free;
        while !cur.is_null() {
            let addr = cur as usize;
            if let Some((_, n)) = free.range_mut(..=addr).next_back() {
                *n += 1;
            }
            // SAFETY: `cur` is on the free list, whose links we wrote.
            cur = unsafe { cur.cast::<*mut u8>().read() };
        }
        let chunks_per_page = self.classes[id].chunks_per_page;
        Ok(free
            .into_iter()
            .map(|(base, free_chunks)| PageInfo {
                base: NonNull::new(base as *mut u8).expect("page bases are non-null"),
                class,
                free_chunks,
                used_chunks: chunks_per_page - free_chunks,
            })
            .collect())
    }

    /// Checks a move's classes: the source's index and the destination's (`None`: the pool).
    pub(super) fn check_move(
        &self,
        from: u32,
        to: u32,
    ) -> Result<(usize, Option<usize>), MoveError> {
        if from == to {
            return Err(MoveError::SameClass(from));
        }
        let src = self.check_class(from)?;
        let dst = if to == 0 {
            None
        } else {
            Some(self.check_class(to)?)
        };
        Ok((src, dst))
    }

    /// Takes off `class`'s free list every chunk `cut` says, keeping the others in order.
    pub(super) fn cut_free(class: &mut super::Class, mut cut: impl FnMut(*mut u8) -> bool) {
        let mut cur = class.free;
        let mut keep = Vec::with_capacity(class.free_count as usize);
        while !cur.is_null() {
            // SAFETY: `cur` is on the free list, whose links we wrote.
            let next = unsafe { cur.cast::<*mut u8>().read() };
            if !cut(cur) {
                keep.push(cur);
            }
            cur = next;
        }
        class.free = ptr::null_mut();
        class.free_count = 0;
        for chunk in keep.into_iter().rev() {
            Self::push_free(class, chunk);
        }
    }

    pub(super) fn check_class(&self, class: u32) -> Result<usize, MoveError> {
        if class == 0 || class as usize > self.classes.len() {
            return Err(MoveError::NoSuchClass(class));
        }
        Ok(class as usize - 1)
    }

    /// The rebalancing primitive (`slab_rebalance`): takes a page whose chunks are all free away
    /// from class `from` and gives it to class `to`, or to the global pool when `to` is 0. The
    /// caller (the engine) evicts the items on a page first; `class_pages` tells which page is
    /// empty. Returns the page moved.
    pub fn move_page(&mut self, from: u32, to: u32) -> Result<NonNull<u8>, MoveError> {
        let (src, dst) = self.check_move(from, to)?;
        let page = self
            .class_pages(from)?
            .into_iter()
            .find(|p| p.used_chunks == 0)
            .ok_or(MoveError::NoEmptyPage(from))?
            .base;
        // Unlink the page's chunks from the source class's free list.
        let (lo, hi) = (page.as_ptr() as usize, page.as_ptr() as usize + PAGE_SIZE);
        Self::cut_free(&mut self.classes[src], |c| (lo..hi).contains(&(c as usize)));
        let class = &mut self.classes[src];
        class.pages -= 1;
        class.page_list.retain(|&p| p != page);
        match dst {
            Some(dst) => {
                // SAFETY: the page is ours and no chunk of it is in use or on a free list; zero
                // it as memcached's `slab_rebalance_finish` does before reuse.
                unsafe { ptr::write_bytes(page.as_ptr(), 0, PAGE_SIZE) };
                self.carve(dst, page);
            }
            None => {
                self.pages.insert(lo, None);
                self.pool.push(page);
            }
        }
        Ok(page)
    }
}
