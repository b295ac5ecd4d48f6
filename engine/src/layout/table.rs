//! An open-addressing index of item pointers (linear probing, tombstones), with the key read
//! from item memory: the compact layout's index, and the one place its random sampling comes
//! from.
//!
//! ```text
//! slot (8 bytes):  | tag: top 16 bits of the hash | item pointer: 48 bits |
//! 0 = empty, 1 = tombstone (a deleted entry probes continue through)
//! ```
//!
//! The table grows by doubling when live entries plus tombstones pass 7/8 of the slots, and is
//! rebuilt at the same size when tombstones alone would push it there; a rebuild rehashes every
//! key from item memory.

use std::ptr::NonNull;

const EMPTY: u64 = 0;
const TOMBSTONE: u64 = 1;
const PTR_BITS: u32 = 48;
const PTR_MASK: u64 = (1 << PTR_BITS) - 1;
const MIN_SLOTS: usize = 16;
/// Items a rebuild prefetches ahead of the one it rehashes.
const REBUILD_AHEAD: usize = 16;
/// Entries a rebuild hashes before it places them.
const REBUILD_CHUNK: usize = 4096;

/// The table.
#[derive(Debug)]
pub struct SlotTable {
    slots: Vec<u64>,
    len: usize,
    tombstones: usize,
}

#[inline]
fn tag(hash: u64) -> u64 {
    hash & !PTR_MASK
}

#[inline]
fn entry(ptr: NonNull<u8>, hash: u64) -> u64 {
    let p = ptr.as_ptr() as u64;
    assert!(p <= PTR_MASK, "item pointer above 2^48");
    p | tag(hash)
}

#[inline]
fn ptr_of(slot: u64) -> NonNull<u8> {
    NonNull::new((slot & PTR_MASK) as *mut u8).expect("occupied slots hold non-null pointers")
}

impl Default for SlotTable {
    fn default() -> Self {
        SlotTable {
            slots: vec![EMPTY; MIN_SLOTS],
            len: 0,
            tombstones: 0,
        }
    }
}

impl SlotTable {
    /// Entries stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Slots allocated.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of slots.
    pub fn bytes(&self) -> u64 {
        (self.slots.len() * 8) as u64
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The items of the entries with `hash`'s tag, in the order its probe meets them (up to
    /// the first empty slot).
    #[inline]
    fn probe(&self, hash: u64) -> impl Iterator<Item = NonNull<u8>> + '_ {
        let mask = self.mask();
        let t = tag(hash);
        let mut i = hash as usize & mask;
        std::iter::from_fn(move || loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
            if s != TOMBSTONE && s & !PTR_MASK == t {
                return Some(ptr_of(s));
            }
        })
    }

    /// Finds the entry whose key `is_key` accepts, among those with this hash's tag.
    #[inline]
    pub fn find(&self, hash: u64, is_key: impl FnMut(&NonNull<u8>) -> bool) -> Option<NonNull<u8>> {
        self.probe(hash).find(is_key)
    }

    /// Prefetches the slot `hash` probes first (a hint; see `Layout::prefetch`).
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        crate::util::prefetch(
            self.slots
                .as_ptr()
                .wrapping_add(hash as usize & self.mask())
                .cast(),
        );
    }

    /// Prefetches the items of the entries with `hash`'s tag along its probe (a hint: the slots
    /// are read, nothing else).
    #[inline]
    pub fn prefetch_items(&self, hash: u64) {
        self.probe(hash)
            .for_each(|p| crate::util::prefetch(p.as_ptr()));
    }

    fn position(&self, hash: u64, ptr: NonNull<u8>) -> Option<usize> {
        let mask = self.mask();
        let want = entry(ptr, hash);
        let mut i = hash as usize & mask;
        loop {
            match self.slots[i] {
                EMPTY => return None,
                s if s == want => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Adds an entry for a key known to be absent. `hash_of` recomputes an item's hash when the
    /// table is rebuilt.
    pub fn insert(&mut self, hash: u64, ptr: NonNull<u8>, hash_of: impl Fn(NonNull<u8>) -> u64) {
        if (self.len + self.tombstones + 1) * 8 > self.slots.len() * 7 {
            let slots = if (self.len + 1) * 8 > self.slots.len() * 7 / 2 {
                self.slots.len() * 2
            } else {
                self.slots.len()
            };
            self.rebuild(slots, &hash_of);
        }
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.slots[i] > TOMBSTONE {
            i = (i + 1) & mask;
        }
        if self.slots[i] == TOMBSTONE {
            self.tombstones -= 1;
        }
        self.slots[i] = entry(ptr, hash);
        self.len += 1;
    }

    /// Removes the entry for `ptr`; returns whether it was there.
    pub fn remove(&mut self, hash: u64, ptr: NonNull<u8>) -> bool {
        let Some(i) = self.position(hash, ptr) else {
            return false;
        };
        let next_empty = self.slots[(i + 1) & self.mask()] == EMPTY;
        // A slot before an empty one ends every probe that reaches it: it can become empty.
        if next_empty {
            self.slots[i] = EMPTY;
        } else {
            self.slots[i] = TOMBSTONE;
            self.tombstones += 1;
        }
        self.len -= 1;
        true
    }

    /// Points the entry for `old` at `new` (the item moved; same key, same hash).
    pub fn replace(&mut self, hash: u64, old: NonNull<u8>, new: NonNull<u8>) -> bool {
        match self.position(hash, old) {
            Some(i) => {
                self.slots[i] = entry(new, hash);
                true
            }
            None => false,
        }
    }

    fn rebuild(&mut self, slots: usize, hash_of: &impl Fn(NonNull<u8>) -> u64) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots.max(MIN_SLOTS)]);
        self.tombstones = 0;
        let mask = self.mask();
        // Rehashing reads every item's key, and placing it writes a random slot: each chunk of
        // entries is hashed in one pass and placed in another, each fetching a few entries
        // ahead so that their cache misses overlap. The entries go in the old slots' order, as
        // one pass would put them, and the extra memory is one chunk.
        let mut live = old.into_iter().filter(|&s| s > TOMBSTONE);
        let mut chunk: Vec<(u64, u64)> = Vec::with_capacity(REBUILD_CHUNK);
        loop {
            chunk.clear();
            chunk.extend(live.by_ref().take(REBUILD_CHUNK).map(|s| (s, 0)));
            if chunk.is_empty() {
                break;
            }
            for &(s, _) in chunk.iter().take(REBUILD_AHEAD) {
                crate::util::prefetch(ptr_of(s).as_ptr());
            }
            for n in 0..chunk.len() {
                if let Some(&(ahead, _)) = chunk.get(n + REBUILD_AHEAD) {
                    crate::util::prefetch(ptr_of(ahead).as_ptr());
                }
                chunk[n].1 = hash_of(ptr_of(chunk[n].0));
            }
            for n in 0..chunk.len() {
                if let Some(&(_, ahead)) = chunk.get(n + REBUILD_AHEAD) {
                    self.prefetch_slot(ahead);
                }
                let (s, hash) = chunk[n];
                let mut i = hash as usize & mask;
                while self.slots[i] != EMPTY {
                    i = (i + 1) & mask;
                }
                self.slots[i] = entry(ptr_of(s), hash);
            }
        }
    }

    /// The first entry at or after slot `start` (wrapping), if any.
    pub fn entry_from(&self, start: usize) -> Option<NonNull<u8>> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = start & mask;
        loop {
            if self.slots[i] > TOMBSTONE {
                return Some(ptr_of(self.slots[i]));
            }
            i = (i + 1) & mask;
        }
    }

    /// The entries in slots `[from, from + n)` (a defrag scan's step); the next slot to scan,
    /// 0 once past the end.
    pub fn entries_in(&self, from: usize, n: usize, out: &mut Vec<NonNull<u8>>) -> usize {
        let end = from.saturating_add(n).min(self.slots.len());
        for &s in self.slots.get(from..end).unwrap_or(&[]) {
            if s > TOMBSTONE {
                out.push(ptr_of(s));
            }
        }
        if end >= self.slots.len() {
            0
        } else {
            end
        }
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = NonNull<u8>> + '_ {
        self.slots
            .iter()
            .filter(|&&s| s > TOMBSTONE)
            .map(|&s| ptr_of(s))
    }
}
