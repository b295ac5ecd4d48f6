//! The dict as a hash, set or sorted set holds it (Redis 7.0's `src/dict.c` and `src/dict.h`):
//! its 56-byte `struct dict` in an allocator block, and the operations that take one
//! incremental rehash step each while rehashing (`_dictRehashStep` in `dictFind`,
//! `dictAddRaw`, `dictGenericDelete`, `dictGetRandomKey`; up to `count` steps in
//! `dictGetSomeKeys`).
//!
//! The main dict of the layout keeps its own rules (`super`); nothing here changes them.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::{entry_key, entry_next, key_bytes, Dict, Ht, DICT_STRUCT, ENTRY};
use crate::util::{read_at, to_raw, write_at, Rng};

/// `GETFAIR_NUM_ENTRIES` (`dict.c`).
const GETFAIR_NUM_ENTRIES: usize = 15;

/// What `add_raw` found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in super::super) enum Added {
    /// The key was there: its entry.
    Existing(NonNull<u8>),
    /// A new entry, linked, whose key and value the caller sets at once.
    New(NonNull<u8>),
}

impl Dict {
    /// `dictCreate`: a 56-byte `struct dict` holding an empty dict (no table yet).
    pub(in super::super) fn create<A: Allocator>(a: &mut A) -> Result<NonNull<u8>, AllocError> {
        let p = a.alloc(DICT_STRUCT)?.ptr;
        // SAFETY: a fresh block of 56 bytes.
        unsafe { Dict::default().store(p) };
        Ok(p)
    }

    /// Reads the dict from its `struct dict` block, laid out as Redis 7.0's (`dict.h`).
    ///
    /// # Safety
    /// `p` is a live 56-byte block written by [`Dict::store`].
    pub(in super::super) unsafe fn load(p: NonNull<u8>) -> Dict {
        // SAFETY: the caller's contract: every field lies inside the 56 bytes.
        unsafe {
            let ht = |t: usize| {
                let exp = read_at::<i8>(p, 50 + t);
                Ht {
                    table: NonNull::new(read_at::<*mut u8>(p, 8 + 8 * t)),
                    size: if exp < 0 { 0 } else { 1usize << exp },
                    used: read_at::<u64>(p, 24 + 8 * t) as usize,
                }
            };
            let idx = read_at::<i64>(p, 40);
            Dict {
                ht: [ht(0), ht(1)],
                rehashidx: (idx >= 0).then_some(idx as usize),
            }
        }
    }

    /// Writes the dict into its `struct dict` block (`type` is written as null: no
    /// `dictType` here; `pauserehash` 0; `ht_size_exp` -1 for no table, as `_dictReset`).
    ///
    /// # Safety
    /// `p` is a live block of at least 56 bytes the caller owns.
    pub(in super::super) unsafe fn store(&self, p: NonNull<u8>) {
        let exp = |ht: &Ht| {
            if ht.size == 0 {
                -1i8
            } else {
                ht.size.trailing_zeros() as i8
            }
        };
        // SAFETY: the caller's contract.
        unsafe {
            write_at::<u64>(p, 0, 0);
            for t in 0..2 {
                write_at(p, 8 + 8 * t, to_raw(self.ht[t].table));
                write_at::<u64>(p, 24 + 8 * t, self.ht[t].used as u64);
                write_at::<i8>(p, 50 + t, exp(&self.ht[t]));
            }
            write_at::<i64>(p, 40, self.rehashidx.map_or(-1, |i| i as i64));
            write_at::<i16>(p, 48, 0);
            write_at::<u32>(p, 52, 0);
        }
    }

    /// `_dictRehashStep`: one step of `dictRehash(d, 1)` while rehashing. A rehash whose old
    /// table is already empty completes at once (`dictRehash` checks `ht_used[0]` first).
    pub(in super::super) fn step<A: Allocator>(&mut self, a: &mut A) {
        if self.rehashidx.is_none() {
            return;
        }
        if self.ht[0].used == 0 {
            if let Some(t) = self.ht[0].table {
                // SAFETY: the old table was allocated with `size * 8` bytes and is empty.
                unsafe { a.free(t, self.ht[0].size * 8) };
            }
            self.ht[0] = self.ht[1];
            self.ht[1] = Ht::default();
            self.rehashidx = None;
        } else {
            self.rehash_step(a);
        }
    }

    /// `dictFind`: `None` at once when empty, else a rehash step and the lookup.
    pub(in super::super) fn lookup<A: Allocator>(
        &mut self,
        a: &mut A,
        key: &[u8],
        hash: u64,
    ) -> Option<NonNull<u8>> {
        if self.len() == 0 {
            return None;
        }
        self.step(a);
        self.find(key, hash)
    }

    /// `dictAddRaw`: a rehash step, `_dictExpandIfNeeded` (before the key is looked for, as
    /// `_dictKeyIndex` does), then the existing entry or a new one linked at the head of its
    /// bucket with a null key and value, which the caller sets ([`set_key`], [`set_val`])
    /// before any other operation on the dict. When the entry cannot be allocated, a table
    /// this call made is freed again: the dict is as it was, but for the rehash step.
    pub(in super::super) fn add_raw<A: Allocator>(
        &mut self,
        a: &mut A,
        key: &[u8],
        hash: u64,
    ) -> Result<Added, AllocError> {
        self.add_raw_undoable(a, key, hash).map(|(added, _)| added)
    }

    /// `dictAddRaw` + `dictSetKey(d, de, make_key())` + `dictSetVal(d, de, val)`, as
    /// `setTypeAdd` does it (the entry first, then the key's SDS). When `make_key` fails, the
    /// entry is unlinked and freed and a table this call made freed again.
    pub(in super::super) fn add_keyed<A: Allocator>(
        &mut self,
        a: &mut A,
        key: &[u8],
        hash: u64,
        val: usize,
        make_key: impl FnOnce(&mut A) -> Result<NonNull<u8>, AllocError>,
    ) -> Result<Added, AllocError> {
        let (added, grew) = self.add_raw_undoable(a, key, hash)?;
        let Added::New(e) = added else {
            return Ok(added);
        };
        match make_key(a) {
            Ok(k) => {
                set_key(e, k);
                set_val(e, val);
                Ok(added)
            }
            Err(err) => {
                let unlinked = self.delete(a, e, hash);
                debug_assert!(unlinked, "the entry just linked");
                self.undo_expand(a, grew.0, grew.1);
                Err(err)
            }
        }
    }

    /// `add_raw`, also returning whether a table existed and whether the dict was rehashing
    /// before `_dictExpandIfNeeded` (for [`Dict::undo_expand`]).
    fn add_raw_undoable<A: Allocator>(
        &mut self,
        a: &mut A,
        key: &[u8],
        hash: u64,
    ) -> Result<(Added, (bool, bool)), AllocError> {
        self.step(a);
        let (had_table, was_rehashing) = (self.ht[0].table.is_some(), self.rehashidx.is_some());
        let grew = (had_table, was_rehashing);
        self.expand_if_needed(a);
        if let Some(e) = self.find(key, hash) {
            return Ok((Added::Existing(e), grew));
        }
        if self.ht[0].size == 0 {
            // Not even the first 4-slot table could be had.
            return Err(AllocError::OutOfMemory {
                size: super::DICT_INITIAL * 8,
            });
        }
        let e = match a.alloc(ENTRY) {
            Ok(b) => b.ptr,
            Err(err) => {
                self.undo_expand(a, had_table, was_rehashing);
                return Err(err);
            }
        };
        let t = usize::from(self.rehashidx.is_some());
        let ht = self.ht[t];
        let b = hash as usize & (ht.size - 1);
        // SAFETY: `e` is a fresh 24-byte entry.
        unsafe {
            write_at(e, 0, std::ptr::null_mut::<u8>());
            write_at(e, 8, 0usize);
            write_at(e, 16, to_raw(ht.slot(b)));
        }
        ht.set_slot(b, Some(e));
        self.ht[t].used += 1;
        Ok((Added::New(e), grew))
    }

    /// Frees a table `expand_if_needed` has just made (nothing was linked into it).
    fn undo_expand<A: Allocator>(&mut self, a: &mut A, had_table: bool, was_rehashing: bool) {
        let t = if !had_table {
            0
        } else if !was_rehashing && self.rehashidx.is_some() {
            1
        } else {
            return;
        };
        if let Some(table) = self.ht[t].table {
            // SAFETY: the table was just allocated with `size * 8` bytes and holds nothing.
            unsafe { a.free(table, self.ht[t].size * 8) };
        }
        self.ht[t] = Ht::default();
        if t == 1 {
            self.rehashidx = None;
        }
    }

    /// `dictAdd` of a key the caller knows is absent: `add_raw` with the key and value set.
    pub(in super::super) fn add_new<A: Allocator>(
        &mut self,
        a: &mut A,
        key: NonNull<u8>,
        hash: u64,
        val: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let e = match self.add_raw(a, key_bytes(key), hash)? {
            Added::New(e) => e,
            Added::Existing(_) => panic!("dict: adding a key that is there"),
        };
        set_key(e, key);
        set_val(e, val);
        Ok(e)
    }

    /// `dictUnlink` (the search of `dictGenericDelete`): `None` at once when empty, else a
    /// rehash step, then the entry unlinked from its chain; the caller frees its key, value
    /// and the entry (`dictFreeUnlinkedEntry`, [`free_entry`]).
    pub(in super::super) fn unlink<A: Allocator>(
        &mut self,
        a: &mut A,
        key: &[u8],
        hash: u64,
    ) -> Option<NonNull<u8>> {
        if self.len() == 0 {
            return None;
        }
        self.step(a);
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
                // SAFETY: as above; keys are live SDS strings.
                if key_bytes(unsafe { entry_key(c) }) == key {
                    match prev {
                        // SAFETY: `p` is a live entry.
                        Some(p) => unsafe { write_at(p, 16, to_raw(next)) },
                        None => ht.set_slot(b, next),
                    }
                    self.ht[t].used -= 1;
                    return Some(c);
                }
                prev = Some(c);
                cur = next;
            }
            if self.rehashidx.is_none() {
                break;
            }
        }
        None
    }

    /// `htNeedsResize` + `dictResize` after a delete (`t_hash.c`, `t_set.c`): shrinks a table
    /// under 10% full to the next power of two of `used` (at least 4). A refused table is not
    /// an error: the dict keeps its table.
    pub(in super::super) fn resize_if_needed<A: Allocator>(&mut self, a: &mut A) {
        let (size, used) = (self.ht[0].size, self.ht[0].used);
        if self.rehashidx.is_none() && size > super::DICT_INITIAL && used * 100 / size < 10 {
            let _ = self.try_expand(a, used.max(super::DICT_INITIAL));
        }
    }

    /// `dictGetRandomKey`: a rehash step, then a random non-empty bucket (above `rehashidx`
    /// while rehashing) and a random entry of its chain.
    pub(in super::super) fn random_key<A: Allocator>(
        &mut self,
        a: &mut A,
        rng: &mut Rng,
    ) -> Option<NonNull<u8>> {
        if self.len() == 0 {
            return None;
        }
        self.step(a);
        self.random(rng)
    }

    /// `dictGetSomeKeys(d, des, count)`: up to `count` entries from a random walk of the
    /// buckets, after up to `count` rehash steps.
    pub(in super::super) fn some_keys<A: Allocator>(
        &mut self,
        a: &mut A,
        rng: &mut Rng,
        count: usize,
    ) -> Vec<NonNull<u8>> {
        let count = count.min(self.len());
        let mut maxsteps = count * 10;
        for _ in 0..count {
            if self.rehashidx.is_none() {
                break;
            }
            self.step(a);
        }
        let tables = if self.rehashidx.is_some() { 2 } else { 1 };
        let mut mask = self.ht[0].size.wrapping_sub(1);
        if tables > 1 {
            mask = mask.max(self.ht[1].size - 1);
        }
        let mut des: Vec<NonNull<u8>> = Vec::with_capacity(count);
        let mut stored = 0usize;
        let mut i = rng.next_u64() as usize & mask;
        let mut emptylen = 0usize;
        while stored < count && maxsteps > 0 {
            maxsteps -= 1;
            for j in 0..tables {
                let idx = self.rehashidx.unwrap_or(0);
                if tables == 2 && j == 0 && i < idx {
                    if i >= self.ht[1].size {
                        i = idx;
                    } else {
                        continue;
                    }
                }
                if i >= self.ht[j].size {
                    continue;
                }
                let mut he = self.ht[j].slot(i);
                if he.is_none() {
                    emptylen += 1;
                    if emptylen >= 5 && emptylen > count {
                        i = rng.next_u64() as usize & mask;
                        emptylen = 0;
                    }
                } else {
                    emptylen = 0;
                    while let Some(e) = he {
                        // Reservoir sampling past `count` (7.0.15's `dictGetSomeKeys`).
                        if stored < count {
                            des.push(e);
                        } else {
                            let r = rng.below(stored + 1);
                            if r < count {
                                des[r] = e;
                            }
                        }
                        // SAFETY: chained entries are live.
                        he = unsafe { entry_next(e) };
                        stored += 1;
                    }
                    if stored >= count {
                        return des;
                    }
                }
            }
            i = (i + 1) & mask;
        }
        des
    }

    /// `dictGetFairRandomKey`: one of `dictGetSomeKeys(15)`, or `dictGetRandomKey` when that
    /// found none.
    pub(in super::super) fn fair_random_key<A: Allocator>(
        &mut self,
        a: &mut A,
        rng: &mut Rng,
    ) -> Option<NonNull<u8>> {
        let some = self.some_keys(a, rng, GETFAIR_NUM_ENTRIES);
        if some.is_empty() {
            return self.random_key(a, rng);
        }
        Some(some[rng.below(some.len())])
    }

    /// `dictRelease`'s `_dictClear`: calls `free_kv(a, key, val)` for every entry, then frees
    /// the entry, bucket by bucket, then both tables. The dict is empty afterwards; the caller
    /// frees the `struct dict` block.
    pub(in super::super) fn clear<A: Allocator>(
        &mut self,
        a: &mut A,
        free_kv: &mut dyn FnMut(&mut A, NonNull<u8>, usize),
    ) {
        for t in 0..2 {
            let ht = self.ht[t];
            for i in 0..ht.size {
                let mut e = ht.slot(i);
                while let Some(cur) = e {
                    // SAFETY: chained entries are live; each is freed once.
                    unsafe {
                        e = entry_next(cur);
                        free_kv(a, entry_key(cur), super::entry_val(cur));
                        a.free(cur, ENTRY);
                    }
                }
            }
            if let Some(table) = ht.table {
                // SAFETY: the table was allocated with `size * 8` bytes.
                unsafe { a.free(table, ht.size * 8) };
            }
            self.ht[t] = Ht::default();
        }
        self.rehashidx = None;
    }

    /// Calls `f(address, requested size)` for both tables and every entry.
    pub(in super::super) fn table_and_entry_blocks(&self, f: &mut dyn FnMut(usize, usize)) {
        for ht in &self.ht {
            if let Some(t) = ht.table {
                f(t.as_ptr() as usize, ht.size * 8);
            }
        }
        for e in self.entries() {
            f(e.as_ptr() as usize, ENTRY);
        }
    }
}

/// Sets an entry's key (`dictSetKey`).
pub(in super::super) fn set_key(e: NonNull<u8>, key: NonNull<u8>) {
    // SAFETY: `e` is a live entry.
    unsafe { write_at(e, 0, key.as_ptr()) }
}

/// Sets an entry's value (`dictSetVal`).
pub(in super::super) fn set_val(e: NonNull<u8>, val: usize) {
    // SAFETY: `e` is a live entry.
    unsafe { write_at(e, 8, val) }
}

/// Frees an unlinked entry's 24 bytes (its key and value are the caller's).
///
/// # Safety
/// `e` is an entry unlinked by [`Dict::unlink`], freed once.
pub(in super::super) unsafe fn free_entry<A: Allocator>(a: &mut A, e: NonNull<u8>) {
    // SAFETY: the caller's contract.
    unsafe { a.free(e, ENTRY) }
}

#[cfg(test)]
mod tests {
    use super::super::super::sds::{free_sds, new_sds, sds_header};
    use super::super::super::testkit::Faulty;
    use super::*;
    use crate::util::hash_key as hash_of;

    fn sds<A: Allocator>(a: &mut A, s: &[u8]) -> NonNull<u8> {
        let h = sds_header(s.len());
        let x = new_sds(a, s, h, s.len()).unwrap();
        // SAFETY: the string starts after the header.
        unsafe { x.base.add(h) }
    }

    #[test]
    fn struct_round_trips_in_56_bytes() {
        let mut a = Faulty::new();
        let p = Dict::create(&mut a).unwrap();
        assert_eq!(a.requested(), 56);
        // SAFETY: `p` is the dict block.
        let mut d = unsafe { Dict::load(p) };
        assert_eq!((d.len(), d.ht[0].size, d.rehashidx), (0, 0, None));
        for i in 0..5 {
            let k = format!("k{i}");
            let key = sds(&mut a, k.as_bytes());
            d.add_new(&mut a, key, hash_of(k.as_bytes()), 0).unwrap();
        }
        // Four keys fill the 4-slot table; the fifth starts a rehash to 8.
        assert_eq!(d.ht[1].size, 8);
        assert!(d.rehashidx.is_some());
        // SAFETY: `p` is the dict block.
        unsafe { d.store(p) };
        // SAFETY: as above.
        let e = unsafe { Dict::load(p) };
        assert_eq!(e.ht[0].size, d.ht[0].size);
        assert_eq!(e.ht[1].size, d.ht[1].size);
        assert_eq!(e.ht[0].used + e.ht[1].used, 5);
        assert_eq!(e.ht[0].table, d.ht[0].table);
        assert_eq!(e.rehashidx, d.rehashidx);
        // SAFETY: as above: `ht_size_exp` bytes.
        unsafe {
            assert_eq!(read_at::<i8>(p, 50), 2);
            assert_eq!(read_at::<i8>(p, 51), 3);
        }
        let mut sum = 56;
        d.table_and_entry_blocks(&mut |_, n| sum += n);
        d.clear(&mut a, &mut |a, k, _| {
            // SAFETY: keys are live SDS strings, freed once.
            unsafe { free_sds(a, super::super::super::sds::sds_at(k)) }
        });
        assert_eq!(sum, 56 + 32 + 64 + 5 * 24);
        // SAFETY: the dict block, freed once.
        unsafe { a.free(p, DICT_STRUCT) };
        assert_eq!(a.requested(), 0);
    }

    #[test]
    fn rehash_steps_on_find_add_and_delete() {
        let mut a = Faulty::new();
        let mut d = Dict::default();
        let mut keys = Vec::new();
        for i in 0..5 {
            let k = format!("key{i}");
            let key = sds(&mut a, k.as_bytes());
            keys.push(key);
            d.add_new(&mut a, key, hash_of(k.as_bytes()), i).unwrap();
        }
        // Rehashing 4 buckets into 8: each call moves one bucket (or skips up to 10 empty).
        let mut calls = 0;
        while d.rehashidx.is_some() {
            calls += 1;
            assert!(d.lookup(&mut a, b"key0", hash_of(b"key0")).is_some());
        }
        assert!(calls <= 4, "{calls} lookups");
        assert_eq!(d.ht[0].size, 8);
        for i in 0..5 {
            let k = format!("key{i}");
            let e = d
                .unlink(&mut a, k.as_bytes(), hash_of(k.as_bytes()))
                .unwrap();
            // SAFETY: unlinked entry and its key, freed once.
            unsafe {
                free_sds(&mut a, super::super::super::sds::sds_at(entry_key(e)));
                free_entry(&mut a, e);
            }
            d.resize_if_needed(&mut a);
        }
        assert_eq!(d.len(), 0);
        d.clear(&mut a, &mut |_, _, _| {});
        assert_eq!(a.requested(), 0);
    }

    #[test]
    fn refused_entry_frees_the_table_it_made() {
        let mut a = Faulty::new();
        let mut d = Dict::default();
        a.fail_in(1); // the table is granted, the entry refused
        assert!(d.add_raw(&mut a, b"x", hash_of(b"x")).is_err());
        a.heal();
        assert_eq!((d.ht[0].size, d.ht[0].table), (0, None));
        assert_eq!(a.requested(), 0);
    }

    #[test]
    fn fair_random_finds_every_key() {
        let mut a = Faulty::new();
        let mut d = Dict::default();
        for i in 0..40 {
            let k = format!("m{i}");
            let key = sds(&mut a, k.as_bytes());
            d.add_new(&mut a, key, hash_of(k.as_bytes()), 0).unwrap();
        }
        let mut rng = Rng::new(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let e = d.fair_random_key(&mut a, &mut rng).unwrap();
            // SAFETY: live entry.
            seen.insert(key_bytes(unsafe { entry_key(e) }).to_vec());
        }
        assert_eq!(seen.len(), 40);
        d.clear(&mut a, &mut |a, k, _| {
            // SAFETY: keys are live SDS strings, freed once.
            unsafe { free_sds(a, super::super::super::sds::sds_at(k)) }
        });
        assert_eq!(a.requested(), 0);
    }
}
