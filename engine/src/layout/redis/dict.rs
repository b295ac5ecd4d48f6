//! Redis 7.0's dict (`src/dict.c`): chained, power-of-two bucket arrays allocated through the
//! allocator, two tables while rehashing incrementally.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::sds::sds_at;
use crate::layout::PrefetchStage;
use crate::util::{hash_key, prefetch, read_at, to_raw, write_at, Rng};

/// A dict entry: key, value, next.
pub const ENTRY: usize = 24;
/// `sizeof(dict)` in Redis 7.0 (`dict.h`): `type` (8), `ht_table[2]` (16), `ht_used[2]`
/// (16), `rehashidx` (8), `pauserehash` (2), `ht_size_exp[2]` (2), padding (4). Every hash, set
/// and sorted set in a dict costs this block ([`Dict::create`]).
#[allow(dead_code)] // Used by the aggregate types until the layout wires them in (issue 14).
pub(super) const DICT_STRUCT: usize = 56;
/// `DICT_HT_INITIAL_SIZE`.
const DICT_INITIAL: usize = 4;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ht {
    pub(super) table: Option<NonNull<u8>>,
    pub(super) size: usize,
    pub(super) used: usize,
}

impl Ht {
    pub(super) fn slot(&self, i: usize) -> Option<NonNull<u8>> {
        // SAFETY: `i < size` and the table holds `size` 8-byte slots.
        NonNull::new(unsafe { read_at::<*mut u8>(self.table.expect("a table"), i * 8) })
    }

    pub(super) fn set_slot(&self, i: usize, e: Option<NonNull<u8>>) {
        // SAFETY: as for `slot`.
        unsafe { write_at(self.table.expect("a table"), i * 8, to_raw(e)) }
    }
}

/// # Safety (for the three accessors) `e` is a live entry.
pub(super) unsafe fn entry_key(e: NonNull<u8>) -> NonNull<u8> {
    // SAFETY: the caller's contract.
    unsafe { NonNull::new_unchecked(read_at::<*mut u8>(e, 0)) }
}
pub(super) unsafe fn entry_val(e: NonNull<u8>) -> usize {
    // SAFETY: the caller's contract.
    unsafe { read_at::<usize>(e, 8) }
}
pub(super) unsafe fn entry_next(e: NonNull<u8>) -> Option<NonNull<u8>> {
    // SAFETY: the caller's contract.
    NonNull::new(unsafe { read_at::<*mut u8>(e, 16) })
}

/// Redis's dict (`dict.c`): two tables while rehashing.
#[derive(Debug, Default)]
pub(super) struct Dict {
    pub(super) ht: [Ht; 2],
    /// Next bucket of `ht[0]` to move, while rehashing.
    pub(super) rehashidx: Option<usize>,
}

pub(super) fn key_bytes<'a>(k: NonNull<u8>) -> &'a [u8] {
    // SAFETY: dict keys are live SDS strings.
    unsafe { sds_at(k).bytes() }
}

impl Dict {
    pub(super) fn len(&self) -> usize {
        self.ht[0].used + self.ht[1].used
    }

    pub(super) fn table_bytes(&self) -> u64 {
        ((self.ht[0].size + self.ht[1].size) * 8) as u64
    }

    /// `dictRehash(d, 1)`: moves one bucket, visiting at most 10 empty ones.
    pub(super) fn rehash_step<A: Allocator>(&mut self, a: &mut A) -> bool {
        let Some(mut idx) = self.rehashidx else {
            return false;
        };
        let mut empty_visits = 10;
        while self.ht[0].size > idx && self.ht[0].slot(idx).is_none() {
            idx += 1;
            empty_visits -= 1;
            if empty_visits == 0 {
                self.rehashidx = Some(idx);
                return true;
            }
        }
        if idx < self.ht[0].size {
            let mut e = self.ht[0].slot(idx);
            while let Some(cur) = e {
                // SAFETY: chained entries are live.
                unsafe {
                    e = entry_next(cur);
                    let b = hash_key(key_bytes(entry_key(cur))) as usize & (self.ht[1].size - 1);
                    write_at(cur, 16, to_raw(self.ht[1].slot(b)));
                    self.ht[1].set_slot(b, Some(cur));
                }
                self.ht[0].used -= 1;
                self.ht[1].used += 1;
            }
            self.ht[0].set_slot(idx, None);
            idx += 1;
        }
        if self.ht[0].used == 0 {
            if let Some(t) = self.ht[0].table {
                // SAFETY: the old table was allocated with `size * 8` bytes and is now empty.
                unsafe { a.free(t, self.ht[0].size * 8) };
            }
            self.ht[0] = self.ht[1];
            self.ht[1] = Ht::default();
            self.rehashidx = None;
        } else {
            self.rehashidx = Some(idx);
        }
        true
    }

    /// `dictExpand`: a new table of the next power of two of `size`; `false` when the
    /// allocator cannot give it (the dict keeps its table).
    fn expand<A: Allocator>(&mut self, a: &mut A, size: usize) -> bool {
        self.try_expand(a, size).unwrap_or(false)
    }

    /// `dictExpand`, telling a refused table apart: `Ok(false)` when Redis does nothing
    /// (rehashing, too small for `used`, the same size), the allocator's error when it
    /// refuses the table (the dict is unchanged).
    pub(super) fn try_expand<A: Allocator>(
        &mut self,
        a: &mut A,
        size: usize,
    ) -> Result<bool, AllocError> {
        if self.rehashidx.is_some() || self.ht[0].used > size {
            return Ok(false);
        }
        let real = size.max(DICT_INITIAL).next_power_of_two();
        if real == self.ht[0].size {
            return Ok(false);
        }
        if real * 8 > a.max_contiguous() {
            return Err(AllocError::TooLarge {
                size: real * 8,
                max: a.max_contiguous(),
            });
        }
        let block = a.alloc(real * 8)?;
        // SAFETY: the block holds `real * 8` bytes; `zcalloc` zeroes them.
        unsafe { std::ptr::write_bytes(block.ptr.as_ptr(), 0, real * 8) };
        let ht = Ht {
            table: Some(block.ptr),
            size: real,
            used: 0,
        };
        if self.ht[0].table.is_none() {
            self.ht[0] = ht;
        } else {
            self.ht[1] = ht;
            self.rehashidx = Some(0);
        }
        Ok(true)
    }

    /// `_dictExpandIfNeeded`.
    fn expand_if_needed<A: Allocator>(&mut self, a: &mut A) {
        if self.rehashidx.is_some() {
            return;
        }
        if self.ht[0].size == 0 {
            self.expand(a, DICT_INITIAL);
        } else if self.ht[0].used >= self.ht[0].size {
            self.expand(a, self.ht[0].used + 1);
        }
    }

    /// `htNeedsResize` + `dictResize`: shrinks a table under 10% full.
    pub(super) fn shrink_if_needed<A: Allocator>(&mut self, a: &mut A) -> bool {
        let (size, used) = (self.ht[0].size, self.ht[0].used);
        if self.rehashidx.is_none() && size > DICT_INITIAL && used * 100 / size < 10 {
            return self.expand(a, used.max(DICT_INITIAL));
        }
        false
    }

    /// A hint ahead of a lookup (see `Layout::prefetch`): the bucket in each table, then the
    /// chain's first entry, then that entry's key string and value object. It reads slots and
    /// entries only; the key is compared when the lookup runs.
    pub(super) fn prefetch(&self, hash: u64, stage: PrefetchStage) {
        for ht in self.ht.iter().filter(|ht| ht.size > 0) {
            let i = hash as usize & (ht.size - 1);
            let Some(table) = ht.table else { continue };
            match stage {
                PrefetchStage::Index => prefetch(table.as_ptr().wrapping_add(i * 8)),
                PrefetchStage::Item => {
                    if let Some(e) = ht.slot(i) {
                        prefetch(e.as_ptr());
                    }
                }
                PrefetchStage::Find => {
                    if let Some(e) = ht.slot(i) {
                        // SAFETY: chained entries are live.
                        let (k, v) = unsafe { (entry_key(e), entry_val(e)) };
                        // The SDS header sits just before the key's bytes.
                        prefetch(k.as_ptr().wrapping_sub(1));
                        if v & 1 == 0 {
                            prefetch(v as *const u8);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn find(&self, key: &[u8], hash: u64) -> Option<NonNull<u8>> {
        for t in 0..2 {
            let ht = &self.ht[t];
            if ht.size == 0 {
                continue;
            }
            let mut e = ht.slot(hash as usize & (ht.size - 1));
            while let Some(cur) = e {
                // SAFETY: chained entries are live.
                unsafe {
                    if key_bytes(entry_key(cur)) == key {
                        return Some(cur);
                    }
                    e = entry_next(cur);
                }
            }
            if self.rehashidx.is_none() {
                break;
            }
        }
        None
    }

    /// `dictAdd` for a key known to be absent: allocates the entry.
    pub(super) fn add<A: Allocator>(
        &mut self,
        a: &mut A,
        key: NonNull<u8>,
        hash: u64,
        val: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        self.expand_if_needed(a);
        if self.ht[0].size == 0 {
            // Not even the first 4-slot table could be had.
            return Err(AllocError::OutOfMemory {
                size: DICT_INITIAL * 8,
            });
        }
        let e = a.alloc(ENTRY)?.ptr;
        let t = usize::from(self.rehashidx.is_some());
        let ht = self.ht[t];
        let b = hash as usize & (ht.size - 1);
        // SAFETY: `e` is a fresh 24-byte entry.
        unsafe {
            write_at(e, 0, key.as_ptr());
            write_at(e, 8, val);
            write_at(e, 16, to_raw(ht.slot(b)));
        }
        ht.set_slot(b, Some(e));
        self.ht[t].used += 1;
        Ok(e)
    }

    /// Unlinks an entry (by identity) and frees it.
    pub(super) fn delete<A: Allocator>(&mut self, a: &mut A, e: NonNull<u8>, hash: u64) -> bool {
        for t in 0..2 {
            let ht = self.ht[t];
            if ht.size == 0 {
                continue;
            }
            let b = hash as usize & (ht.size - 1);
            let mut prev: Option<NonNull<u8>> = None;
            let mut cur = ht.slot(b);
            while let Some(c) = cur {
                // SAFETY: chained entries are live.
                let next = unsafe { entry_next(c) };
                if c == e {
                    match prev {
                        // SAFETY: `p` is a live entry.
                        Some(p) => unsafe { write_at(p, 16, to_raw(next)) },
                        None => ht.set_slot(b, next),
                    }
                    self.ht[t].used -= 1;
                    // SAFETY: `e` is unlinked and freed once.
                    unsafe { a.free(e, ENTRY) };
                    return true;
                }
                prev = Some(c);
                cur = next;
            }
        }
        false
    }

    /// `dictGetRandomKey`.
    pub(super) fn random(&self, rng: &mut Rng) -> Option<NonNull<u8>> {
        if self.len() == 0 {
            return None;
        }
        let skip = self.rehashidx.unwrap_or(0);
        let total = self.ht[0].size + self.ht[1].size - skip;
        loop {
            let i = skip + rng.below(total);
            let (ht, b) = if i < self.ht[0].size {
                (&self.ht[0], i)
            } else {
                (&self.ht[1], i - self.ht[0].size)
            };
            let mut chain = Vec::new();
            let mut e = ht.slot(b);
            while let Some(cur) = e {
                chain.push(cur);
                // SAFETY: chained entries are live.
                e = unsafe { entry_next(cur) };
            }
            if !chain.is_empty() {
                return Some(chain[rng.below(chain.len())]);
            }
        }
    }

    pub(super) fn entries(&self) -> Vec<NonNull<u8>> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each_entry(&mut |e| out.push(e));
        out
    }

    /// Calls `f` with every entry, table by table, bucket by bucket (`dictNext`'s order).
    pub(super) fn for_each_entry(&self, f: &mut dyn FnMut(NonNull<u8>)) {
        for ht in &self.ht {
            for i in 0..ht.size {
                let mut e = ht.slot(i);
                while let Some(cur) = e {
                    // SAFETY: chained entries are live; `f` does not unlink them.
                    let next = unsafe { entry_next(cur) };
                    f(cur);
                    e = next;
                }
            }
        }
    }
}

#[path = "dict_agg.rs"]
mod agg;
pub(super) use agg::{free_entry, set_val, Added};
