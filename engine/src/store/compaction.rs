//! Following an allocator that moves blocks (the log allocator's cleaner): the store runs the
//! allocator's compaction between steps, with a [`Relocate`] that points the index and the
//! eviction lists at each block's new place and pins the key a write is working on.

use std::ptr::NonNull;

use fraglab_allocators::{Allocator, Relocate};

use super::Store;
use crate::layout::Layout;
use crate::list::Lists;

/// The store's answer to a move: the layout's index and the lists follow the block.
pub(super) struct Mover<'a, L: Layout> {
    pub(super) layout: &'a mut L,
    pub(super) lists: Option<&'a mut Lists>,
    /// The blocks of the key a write holds (start, length): they must not move.
    pub(super) pinned: Vec<(usize, usize)>,
}

impl<'a, L: Layout> Mover<'a, L> {
    /// A mover that pins nothing (the slab's page mover runs between commands).
    pub(super) fn new(layout: &'a mut L, lists: Option<&'a mut Lists>) -> Self {
        Mover {
            layout,
            lists,
            pinned: Vec::new(),
        }
    }
}

impl<L: Layout> Relocate for Mover<'_, L> {
    fn relocated(&mut self, from: NonNull<u8>, to: NonNull<u8>, _size: usize) {
        let (old, new) = self.layout.relocated(from, to);
        if let (Some(lists), Some(old), Some(new)) = (
            self.lists.as_deref_mut(),
            self.layout.links(old),
            self.layout.links(new),
        ) {
            // SAFETY: `new` is the live copy of an item whose links were at `old`; an item is
            // in its list, or in none with null links (a key being rewritten is pinned, so the
            // only items that move are listed ones or unlisted ones with cleared links).
            unsafe { lists.relocated(old, new) };
        }
    }

    fn pinned(&self, ptr: NonNull<u8>) -> bool {
        let p = ptr.as_ptr() as usize;
        self.pinned.iter().any(|&(s, n)| p >= s && p < s + n)
    }
}

impl<A: Allocator, L: Layout> Store<A, L> {
    /// Runs the allocator's compaction, keeping `protect`'s blocks in place; returns the bytes
    /// of footprint it released.
    pub(super) fn compact_now(&mut self, protect: Option<L::Handle>) -> u64 {
        let mut pinned = Vec::new();
        if let Some(h) = protect {
            self.layout
                .blocks(&self.alloc, h, &mut |s, n| pinned.push((s, n)));
        }
        let mut mover = Mover {
            layout: &mut self.layout,
            lists: self.lists.as_mut(),
            pinned,
        };
        self.alloc.compact(&mut mover)
    }
}
