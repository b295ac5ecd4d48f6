//! Active defrag of the redis layout, as Redis 7.0's `src/defrag.c` does it for a database:
//!
//! - the keyspace is scanned with `dictScan`'s reverse-binary cursor ([`scan_buckets`]), one
//!   bucket (both tables' matching buckets while rehashing) per step;
//! - `defragDictBucketCallback`: each dict entry of the bucket is offered to
//!   `activeDefragAlloc` and the chain link that pointed at it (the bucket slot or the
//!   previous entry's `next`) is fixed;
//! - `defragKey`, for each entry: the key SDS (`activeDefragSds`; the entry's `key`, and the
//!   expires dict's entry for the same key, found by hash and pointer, takes the new pointer
//!   and is itself offered for a move, as `replaceSatelliteDictKeyPtrAndOrDefragDictEntry`
//!   does); then the value (`activeDefragStringOb`): the robj of a raw or integer string or of
//!   an aggregate (the entry's `val` fixed), a raw string's SDS (the robj's `ptr` fixed), an
//!   embedded string moved whole with its `ptr` re-pointed at the same offset; then an
//!   aggregate's listpack or intset blob (`activeDefragAlloc(ob->ptr)`, the robj's `ptr`
//!   fixed).
//!
//! Not moved, and counted in `skipped_blocks` when visited: the internals of hashtable,
//! skiplist and quicklist encodings (Redis walks them with `activeDefragSdsDict`,
//! `defragZsetSkiplist`, `activeDefragQuickListNodes`, deferring keys with more than
//! `active-defrag-max-scan-fields` elements to `defragLater`); their robj still moves. The
//! dicts' bucket arrays do not move (Redis 7.0 does not move them either). Because only
//! single-blob encodings are walked, no key's step exceeds `max-scan-fields` elements.
//!
//! A move never changes a byte: the allocator copies the block's requested size
//! ([`Allocator::defrag_move`]).

use std::ptr::NonNull;

use fraglab_allocators::Allocator;

use super::aggobj::{robj_encoding, robj_ptr, set_robj, ENC_INTSET, ENC_LISTPACK};
use super::dict::{entry_next, key_bytes, Dict, ENTRY};
use super::object::{encoding, obj_ptr, value_alloc_size, Value, ENC_EMBSTR, ENC_RAW, ROBJ};
use super::sds::sds_at;
use super::{aggregate, Redis};
use crate::defrag::DefragCounters;
use crate::util::{hash_key, write_at};

/// `activeDefragAlloc`: asks the hint, and moves the block when it says so.
///
/// # Safety
/// `p` is a live contiguous block of `a` requested with `size` bytes; on `Some` the caller
/// fixes every pointer to it.
unsafe fn defrag_alloc<A: Allocator>(
    a: &mut A,
    p: NonNull<u8>,
    size: usize,
    c: &mut DefragCounters,
) -> Option<NonNull<u8>> {
    // SAFETY: the caller's contract.
    let moved = unsafe {
        if a.defrag_hint(p, size) {
            a.defrag_move(p, size)
        } else {
            None
        }
    };
    match moved {
        Some(_) => {
            c.active_defrag_hits += 1;
            c.bytes_moved += size as u64;
        }
        None => c.active_defrag_misses += 1,
    }
    moved
}

/// `dictScan`'s buckets for cursor `v` (Redis 7.0's `src/dict.c`): calls `f(table, bucket)`
/// for each bucket of this step and returns the next cursor, 0 when the scan is complete.
pub(super) fn scan_buckets(d: &Dict, mut v: u64, f: &mut dyn FnMut(usize, usize)) -> u64 {
    if d.len() == 0 {
        return 0;
    }
    let rev_incr = |v: u64, mask: u64| {
        let v = (v | !mask).reverse_bits().wrapping_add(1);
        v.reverse_bits()
    };
    if d.rehashidx.is_none() {
        let m0 = d.ht[0].size as u64 - 1;
        f(0, (v & m0) as usize);
        rev_incr(v, m0)
    } else {
        let (small, large) = if d.ht[0].size <= d.ht[1].size {
            (0, 1)
        } else {
            (1, 0)
        };
        let m0 = d.ht[small].size as u64 - 1;
        let m1 = d.ht[large].size as u64 - 1;
        f(small, (v & m0) as usize);
        loop {
            f(large, (v & m1) as usize);
            v = rev_incr(v, m1);
            if v & (m0 ^ m1) == 0 {
                break;
            }
        }
        v
    }
}

/// Replaces the chain link to entry `old` in `d`'s bucket for `hash` with `new`.
fn relink(d: &Dict, hash: u64, old: NonNull<u8>, new: NonNull<u8>) {
    for ht in &d.ht {
        if ht.size == 0 {
            continue;
        }
        let b = hash as usize & (ht.size - 1);
        let mut prev: Option<NonNull<u8>> = None;
        let mut cur = ht.slot(b);
        while let Some(e) = cur {
            if e == old {
                match prev {
                    // SAFETY: `p` is a live entry of the chain.
                    Some(p) => unsafe { write_at(p, 16, new.as_ptr()) },
                    None => ht.set_slot(b, Some(new)),
                }
                return;
            }
            prev = Some(e);
            // SAFETY: chained entries are live (`old` is still readable: not yet freed).
            cur = unsafe { entry_next(e) };
        }
    }
}

impl Redis {
    /// One step of the defrag scan of the main dict from `cursor`: the bucket callback, then
    /// `defragKey` for every entry of the step. Returns the next cursor and the keys visited.
    pub(super) fn defrag_scan_step<A: Allocator>(
        &mut self,
        a: &mut A,
        cursor: u64,
        c: &mut DefragCounters,
    ) -> (u64, u64) {
        let mut buckets = Vec::with_capacity(2);
        let next = scan_buckets(&self.main, cursor, &mut |t, b| buckets.push((t, b)));
        let mut keys = 0;
        for (t, b) in buckets {
            // `defragDictBucketCallback`: move the entries, fixing the links.
            let ht = self.main.ht[t];
            let mut prev: Option<NonNull<u8>> = None;
            let mut cur = ht.slot(b);
            let mut entries = Vec::new();
            while let Some(e) = cur {
                // SAFETY: a live entry of 24 bytes; its successor is read before it may move.
                let next_e = unsafe { entry_next(e) };
                // SAFETY: as above; on a move the link to it is fixed just below.
                let e = match unsafe { defrag_alloc(a, e, ENTRY, c) } {
                    Some(new) => {
                        match prev {
                            // SAFETY: `p` is the live previous entry.
                            Some(p) => unsafe { write_at(p, 16, new.as_ptr()) },
                            None => ht.set_slot(b, Some(new)),
                        }
                        new
                    }
                    None => e,
                };
                entries.push(e);
                prev = Some(e);
                cur = next_e;
            }
            for e in entries {
                keys += 1;
                let before = c.active_defrag_hits;
                self.defrag_key(a, e, c);
                if c.active_defrag_hits > before {
                    c.active_defrag_key_hits += 1;
                } else {
                    c.active_defrag_key_misses += 1;
                }
            }
        }
        (next, keys)
    }

    /// `defragKey` for the main-dict entry `e`.
    fn defrag_key<A: Allocator>(&mut self, a: &mut A, e: NonNull<u8>, c: &mut DefragCounters) {
        let key = Self::key(e);
        let hash = hash_key(key_bytes(key));
        // The expires entry, found while the key can still be compared.
        let x = if self.expires.len() > 0 {
            self.expires.find(key_bytes(key), hash)
        } else {
            None
        };
        // SAFETY: the key SDS of a live entry; `sds_at` finds its block.
        let sds = unsafe { sds_at(key) };
        // SAFETY: a live SDS block of `size()` bytes; both references to it are fixed.
        if let Some(base) = unsafe { defrag_alloc(a, sds.base, sds.size(), c) } {
            // SAFETY: the same header at the new place.
            let new_key = unsafe { base.add(sds.hdr) };
            // SAFETY: `e` is live; its key field takes the new pointer.
            unsafe { write_at(e, 0, new_key.as_ptr()) };
            if let Some(x) = x {
                // SAFETY: `x` is the live expires entry that shared the old key pointer.
                unsafe { write_at(x, 0, new_key.as_ptr()) };
            }
        }
        if let Some(x) = x {
            // SAFETY: a live 24-byte expires entry; its chain link is fixed.
            if let Some(new) = unsafe { defrag_alloc(a, x, ENTRY, c) } {
                relink(&self.expires, hash, x, new);
            }
        }
        let Value::Obj(o) = Self::value(e) else {
            return; // a shared integer: no allocation of its own
        };
        let agg = aggregate::agg_type(o).is_some();
        // SAFETY: a live robj.
        let enc = unsafe { encoding(o) };
        if !agg && enc == ENC_EMBSTR {
            // The string is inside the robj's block: move it whole, re-point `ptr`.
            let size = value_alloc_size(Value::Obj(o));
            // SAFETY: `ptr` lies inside the block.
            let ofs = unsafe { obj_ptr(o) } - o.as_ptr() as usize;
            // SAFETY: a live block of `size` bytes; the entry's `val` and `ptr` are fixed.
            if let Some(new) = unsafe { defrag_alloc(a, o, size, c) } {
                Self::set_value(e, Value::Obj(new));
                // SAFETY: the new block holds the robj; `ptr` is at offset 8.
                unsafe { write_at(new, 8, new.as_ptr() as usize + ofs) };
            }
            return;
        }
        // SAFETY: a live 16-byte robj; the entry's `val` is its only reference.
        let o = match unsafe { defrag_alloc(a, o, ROBJ, c) } {
            Some(new) => {
                Self::set_value(e, Value::Obj(new));
                new
            }
            None => o,
        };
        if !agg {
            if enc == ENC_RAW {
                // SAFETY: a raw robj's `ptr` is its live SDS string.
                let v = unsafe { sds_at(NonNull::new_unchecked(obj_ptr(o) as *mut u8)) };
                // SAFETY: a live SDS block; the robj's `ptr` is its only reference.
                if let Some(base) = unsafe { defrag_alloc(a, v.base, v.size(), c) } {
                    // SAFETY: `o` is live; `ptr` at offset 8.
                    unsafe { write_at(o, 8, base.as_ptr() as usize + v.hdr) };
                }
            }
            return;
        }
        let enc = robj_encoding(o);
        let blob = robj_ptr(o);
        let mut blob_size = None;
        let mut others = 0u64;
        aggregate::blocks(o, &mut |s, n| {
            if s == blob.as_ptr() as usize && matches!(enc, ENC_LISTPACK | ENC_INTSET) {
                blob_size = Some(n);
            } else if s != o.as_ptr() as usize {
                others += 1;
            }
        });
        c.skipped_blocks += others;
        if let Some(size) = blob_size {
            // SAFETY: the listpack or intset of a live robj, `size` bytes, referenced only by
            // the robj's `ptr`.
            if let Some(new) = unsafe { defrag_alloc(a, blob, size, c) } {
                set_robj(o, enc, new);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_visits_every_bucket_once_without_rehash() {
        let mut d = Dict::default();
        d.ht[0].size = 8;
        d.ht[0].used = 1;
        let mut seen = Vec::new();
        let mut v = 0;
        loop {
            v = scan_buckets(&d, v, &mut |t, b| seen.push((t, b)));
            if v == 0 {
                break;
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..8).map(|b| (0, b)).collect::<Vec<_>>());
    }
}
