//! Intrusive doubly linked lists through item memory: memcached's LRU links (`next`, `prev` in
//! the item header), used for `slab-lru` (one list per size class), `lru` and `fifo`.
//!
//! Each item carries 16 bytes of links at a layout-chosen offset: `prev` then `next`. The head
//! is the most recently inserted (or used) item, the tail the next victim.

use std::ptr::NonNull;

use crate::util::{read_at, to_raw, write_at};

#[derive(Debug, Clone, Copy, Default)]
struct Ends {
    head: Option<NonNull<u8>>,
    tail: Option<NonNull<u8>>,
}

/// Lists of items, one per class.
#[derive(Debug)]
pub(crate) struct Lists {
    /// Offset of the links inside an item.
    offset: usize,
    ends: Vec<Ends>,
}

impl Lists {
    pub fn new(offset: usize) -> Self {
        Lists {
            offset,
            ends: Vec::new(),
        }
    }

    fn ends(&mut self, class: usize) -> &mut Ends {
        if class >= self.ends.len() {
            self.ends.resize(class + 1, Ends::default());
        }
        &mut self.ends[class]
    }

    /// # Safety
    /// `item` is a live item with 16 bytes of links at `offset`.
    unsafe fn prev(&self, item: NonNull<u8>) -> Option<NonNull<u8>> {
        // SAFETY: the caller's contract.
        NonNull::new(unsafe { read_at::<*mut u8>(item, self.offset) })
    }

    /// # Safety
    /// As for `prev`.
    unsafe fn next(&self, item: NonNull<u8>) -> Option<NonNull<u8>> {
        // SAFETY: the caller's contract.
        NonNull::new(unsafe { read_at::<*mut u8>(item, self.offset + 8) })
    }

    /// # Safety
    /// As for `prev`.
    unsafe fn set(&self, item: NonNull<u8>, prev: Option<NonNull<u8>>, next: Option<NonNull<u8>>) {
        // SAFETY: the caller's contract.
        unsafe {
            write_at(item, self.offset, to_raw(prev));
            write_at(item, self.offset + 8, to_raw(next));
        }
    }

    /// `item`'s links as stored: `prev`, `next` (null at an end).
    ///
    /// # Safety
    /// `item` is a live item with 16 bytes of links at `offset`.
    pub unsafe fn raw_links(&self, item: NonNull<u8>) -> (*mut u8, *mut u8) {
        // SAFETY: the caller's contract.
        unsafe {
            (
                read_at::<*mut u8>(item, self.offset),
                read_at::<*mut u8>(item, self.offset + 8),
            )
        }
    }

    /// Overwrites `item`'s links (a restart's fixup).
    ///
    /// # Safety
    /// As for `raw_links`.
    pub unsafe fn set_raw_links(&self, item: NonNull<u8>, prev: *mut u8, next: *mut u8) {
        // SAFETY: the caller's contract.
        unsafe {
            write_at(item, self.offset, prev);
            write_at(item, self.offset + 8, next);
        }
    }

    /// Sets `class`'s head and tail (a restart's fixup, once the items' links are right).
    pub fn set_ends(&mut self, class: usize, head: NonNull<u8>, tail: NonNull<u8>) {
        let e = self.ends(class);
        e.head = Some(head);
        e.tail = Some(tail);
    }

    /// Empties every list without touching the items.
    pub fn forget(&mut self) {
        self.ends.clear();
    }

    /// Puts `item` at the head of `class`'s list.
    ///
    /// # Safety
    /// `item` is a live item with links at `offset`, in no list.
    pub unsafe fn push_front(&mut self, class: usize, item: NonNull<u8>) {
        let old = self.ends(class).head;
        // SAFETY: `item` and the old head are live items of this list.
        unsafe {
            self.set(item, None, old);
            if let Some(h) = old {
                write_at(h, self.offset, item.as_ptr());
            }
        }
        let e = self.ends(class);
        e.head = Some(item);
        if e.tail.is_none() {
            e.tail = Some(item);
        }
    }

    /// Prefetches `item`'s list neighbours (a bump writes both), a hint ahead of an access.
    ///
    /// # Safety
    /// `item` is a live item with links at `offset`.
    pub unsafe fn prefetch_neighbours(&self, item: NonNull<u8>) {
        // SAFETY: the caller's contract; the neighbours are only prefetched, never read.
        let (prev, next) = unsafe { (self.prev(item), self.next(item)) };
        for n in [prev, next].into_iter().flatten() {
            // The links, where the bump writes.
            crate::util::prefetch(n.as_ptr().wrapping_add(self.offset));
        }
    }

    /// Takes `item` out of `class`'s list.
    ///
    /// # Safety
    /// `item` is a live item in `class`'s list.
    pub unsafe fn unlink(&mut self, class: usize, item: NonNull<u8>) {
        // SAFETY: `item` is in the list, so its neighbours are live items of the list too.
        unsafe {
            let (prev, next) = (self.prev(item), self.next(item));
            match prev {
                Some(p) => write_at(p, self.offset + 8, to_raw(next)),
                None => self.ends(class).head = next,
            }
            match next {
                Some(n) => write_at(n, self.offset, to_raw(prev)),
                None => self.ends(class).tail = prev,
            }
            self.set(item, None, None);
        }
    }

    /// Moves `item` to the head of `class`'s list (an access under LRU).
    ///
    /// # Safety
    /// As for `unlink`.
    pub unsafe fn bump(&mut self, class: usize, item: NonNull<u8>) {
        if self.ends(class).head == Some(item) {
            return;
        }
        // SAFETY: the caller's contract.
        unsafe {
            self.unlink(class, item);
            self.push_front(class, item);
        }
    }

    /// The tail of `class`'s list: the next victim.
    pub fn tail(&self, class: usize) -> Option<NonNull<u8>> {
        self.ends.get(class).and_then(|e| e.tail)
    }

    /// The item nearest the tail of `class`'s list that `ok` accepts, looking at most at
    /// `limit` items.
    pub fn nearest_tail(
        &self,
        class: usize,
        limit: usize,
        mut ok: impl FnMut(NonNull<u8>) -> bool,
    ) -> Option<NonNull<u8>> {
        let mut cur = self.tail(class);
        for _ in 0..limit {
            let item = cur?;
            if ok(item) {
                return Some(item);
            }
            // SAFETY: items in a list are live and linked.
            cur = unsafe { self.prev(item) };
        }
        None
    }

    /// The item whose links were at `from` now has them at `to` (a copy, with the same
    /// `prev` and `next`): points its neighbours, or the list's ends, at `to`.
    ///
    /// # Safety
    /// `to` is a live item with links at `offset`, copied from an item that was in a list (or
    /// in none, with both links null and no end pointing at it).
    pub unsafe fn relocated(&mut self, from: NonNull<u8>, to: NonNull<u8>) {
        // SAFETY: the copy's neighbours are live items of the same list.
        unsafe {
            let (prev, next) = (self.prev(to), self.next(to));
            if let Some(p) = prev {
                write_at(p, self.offset + 8, to.as_ptr());
            }
            if let Some(n) = next {
                write_at(n, self.offset, to.as_ptr());
            }
        }
        for e in &mut self.ends {
            if e.head == Some(from) {
                e.head = Some(to);
            }
            if e.tail == Some(from) {
                e.tail = Some(to);
            }
        }
    }

    /// Forgets every list (after a flush freed the items).
    pub fn clear(&mut self) {
        self.ends.clear();
    }
}
