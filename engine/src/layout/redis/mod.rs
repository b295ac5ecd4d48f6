//! Redis 7.0's objects for string keys, allocated through the allocator under test, so the
//! allocator's `allocated_bytes` is Redis's `used_memory` for the data.
//!
//! A key costs these allocations (Redis 7.0's `src/dict.h` for the dict entry, `src/sds.h` and
//! `src/sds.c` for the SDS headers, `src/server.h` for `robj`, `src/object.c` for the
//! encodings; `docs/design.md`, "Layouts"):
//!
//! - a dict entry, 24 bytes: `key` (the key SDS), `val` (the value object), `next` (chain);
//! - the key SDS: header + K + 1, the header 1/3/5/9/17 bytes for K < 32 / 256 / 65536 / 2^32
//!   / larger (`sdsnewlen` types 5, 8, 16, 32, 64);
//! - the value, by Redis's `tryObjectEncoding`: an integer 0..9999 is the shared object (no
//!   allocation; not shared when a limit is set with an LRU or LFU policy, as Redis does); any
//!   other integer that fits an `i64` (at most 20 characters) lives in a 16-byte robj; a string
//!   of at most 44 bytes is embedded (one allocation of 16 + 3 + V + 1); a longer one is a
//!   16-byte robj plus an SDS of header + V + 1;
//! - with a TTL, an entry of 24 bytes in the expires dict (whose key is the same SDS).
//!
//! Both dicts are Redis's: chained, power-of-two bucket arrays of 8-byte slots allocated
//! through the allocator, expanded to the next power of two of `used + 1` when `used` reaches
//! the size (4 slots to start), shrunk when under 10% full, and rehashed incrementally: one
//! bucket per lookup, insert or delete, plus steps the store's background pass runs. A bucket
//! array the allocator cannot give contiguously (a slab allocator above its largest chunk)
//! or refuses under the limit is not grown: the dict keeps its table and grows denser, where
//! Redis would abort.
//!
//! APPEND turns the value into a raw SDS and grows it with `sdsMakeRoomFor`'s greedy rule
//! (double the new length below 1 MiB, add 1 MiB above) through `realloc`. PREPEND is not a
//! Redis command; here it is APPEND's mirror.
//!
//! The submodules follow the seams of Redis's sources: `sds` (SDS strings, `sds.h`),
//! `object` (the value object and its encodings, `object.c`), `dict` (the dict and its
//! incremental rehash, `dict.c`); this module is the layout: the main and expires dicts and
//! the key-level operations.

mod aggobj;
mod aggregate;
mod defrag;
mod dict;
mod hash;
mod intset;
mod list;
mod listpack;
mod object;
mod quicklist;
mod sds;
mod set;
mod skiplist;
#[cfg(test)]
mod testalloc;
#[cfg(test)]
mod testkit;
mod zset;

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::{AggDone, Layout, LayoutKind, LayoutOptions, NewItem, PrefetchStage};
use crate::agg::{AggCmd, AggConfig, AggError, AggType, Encoding};
use crate::util::{hash_key, read_at, write_at, Rng};

pub use dict::ENTRY;
use dict::{entry_key, entry_val, key_bytes, Dict, Ht};
use object::{
    encoding, make_value, obj_ptr, value_alloc_size, value_bytes, Value, ENC_INT, ENC_RAW,
};
pub use object::{parse_i64, requested_for, EMBSTR_LIMIT, ROBJ, SHARED_INTEGERS};
pub use sds::sds_header;
use sds::{free_sds, new_sds, sds_at, sds_header_growable, Sds, SDS_MAX_PREALLOC};

/// The redis layout. See the [module docs](self).
#[derive(Debug)]
pub struct Redis {
    main: Dict,
    expires: Dict,
    shared_integers: bool,
}

impl Redis {
    fn value(h: NonNull<u8>) -> Value {
        // SAFETY: handles are live main-dict entries.
        Value::from_word(unsafe { entry_val(h) })
    }

    fn set_value(h: NonNull<u8>, v: Value) {
        // SAFETY: handles are live main-dict entries.
        unsafe { write_at(h, 8, v.word()) }
    }

    fn key(h: NonNull<u8>) -> NonNull<u8> {
        // SAFETY: handles are live entries.
        unsafe { entry_key(h) }
    }

    /// The main dict's bucket slots (both tables while rehashing).
    pub fn main_slots(&self) -> usize {
        self.main.ht[0].size + self.main.ht[1].size
    }

    /// The expires dict's bucket slots.
    pub fn expires_slots(&self) -> usize {
        self.expires.ht[0].size + self.expires.ht[1].size
    }

    fn expires_entry(&self, h: NonNull<u8>) -> Option<NonNull<u8>> {
        let key = key_bytes(Self::key(h));
        self.expires.find(key, hash_key(key))
    }

    /// `dbUnshareStringValue`: makes the value a raw SDS of exactly its bytes.
    fn unshare<A: Allocator>(
        &mut self,
        a: &mut A,
        h: NonNull<u8>,
    ) -> Result<NonNull<u8>, AllocError> {
        if let Value::Obj(o) = Self::value(h) {
            // SAFETY: live value object.
            if unsafe { encoding(o) } == ENC_RAW {
                return Ok(o);
            }
        }
        let mut bytes = Vec::new();
        value_bytes(Self::value(h), &mut bytes);
        let o = a.alloc(ROBJ)?.ptr;
        // `createRawStringObject`: a fresh `sdsnewlen`, type 5 for short strings.
        let hdr = sds_header(bytes.len());
        let sds = match new_sds(a, &bytes, hdr, bytes.len()) {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: `o` was just allocated.
                unsafe { a.free(o, ROBJ) };
                return Err(e);
            }
        };
        let access = self.access(h);
        // SAFETY: `o` is a fresh 16-byte robj; the old value is live and replaced once.
        unsafe {
            write_at::<u8>(o, 0, ENC_RAW << 4);
            write_at::<u8>(o, 1, access as u8);
            write_at::<u16>(o, 2, (access >> 8) as u16);
            write_at::<i32>(o, 4, 1);
            write_at::<usize>(o, 8, sds.base.as_ptr() as usize + hdr);
            free_value(a, Self::value(h));
        }
        Self::set_value(h, Value::Obj(o));
        Ok(o)
    }
}

/// Frees a value: a string's object, or a whole aggregate (a SET over a hash, a removal).
///
/// # Safety
/// `v` is a live value of `a`, freed once.
unsafe fn free_value<A: Allocator>(a: &mut A, v: Value) {
    match v {
        // SAFETY: the caller's contract.
        Value::Obj(o) if aggregate::agg_type(o).is_some() => unsafe { aggregate::free(a, o) },
        // SAFETY: the caller's contract.
        _ => unsafe { object::free_value(a, v) },
    }
}

impl Redis {
    /// The key's expires entry, if it has one, as a block.
    fn expires_block(&self, h: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
        if self.expires.len() > 0 {
            if let Some(x) = self.expires_entry(h) {
                f(x.as_ptr() as usize, ENTRY);
            }
        }
    }

    fn agg_obj(h: NonNull<u8>) -> Option<NonNull<u8>> {
        match Self::value(h) {
            Value::Obj(o) => aggregate::agg_type(o).map(|_| o),
            Value::Shared(_) => None,
        }
    }
}

impl Layout for Redis {
    const KIND: LayoutKind = LayoutKind::Redis;
    const HAS_LINKS: bool = false;
    type Handle = NonNull<u8>;

    fn new(opts: LayoutOptions) -> Self {
        Redis {
            main: Dict::default(),
            expires: Dict::default(),
            shared_integers: opts.shared_integers,
        }
    }

    fn len(&self) -> usize {
        self.main.len()
    }

    fn index_bytes(&self) -> u64 {
        0
    }

    fn index_in_allocator_bytes(&self) -> u64 {
        self.main.table_bytes() + self.expires.table_bytes()
    }

    fn find<A: Allocator>(&mut self, a: &mut A, key: &[u8], hash: u64) -> Option<NonNull<u8>> {
        self.main.rehash_step(a);
        self.main.find(key, hash)
    }

    fn prefetch<A: Allocator>(
        &self,
        _a: &A,
        hash: u64,
        stage: PrefetchStage,
    ) -> Option<NonNull<u8>> {
        self.main.prefetch(hash, stage);
        None
    }

    fn insert<A: Allocator>(
        &mut self,
        a: &mut A,
        it: NewItem<'_>,
    ) -> Result<NonNull<u8>, AllocError> {
        // Two rehash steps: `dictAddRaw`'s, and one more that Redis 7.0.15 takes on every
        // SET of a new key. The second is measured, not traced to a line: with active
        // rehashing off, the real server finishes its rehash of 8,192 buckets after about
        // 1,730 new keys (three steps each, counting the lookup's), and with one step here
        // the model took half again as many (`harness/tests/peer.rs`, `fraglab validate`).
        self.main.rehash_step(a);
        self.main.rehash_step(a);
        let hdr = sds_header(it.key.len());
        let key = new_sds(a, it.key, hdr, it.key.len())?;
        // SAFETY: the SDS string starts after its header.
        let kptr = unsafe { key.base.add(hdr) };
        let value = match make_value(a, it.value, self.shared_integers, it.access) {
            Ok(v) => v,
            Err(e) => {
                // SAFETY: `key` was just allocated.
                unsafe { free_sds(a, key) };
                return Err(e);
            }
        };
        let e = match self.main.add(a, kptr, it.hash, value.word()) {
            Ok(e) => e,
            Err(err) => {
                // SAFETY: both were just allocated and are not in the dict.
                unsafe {
                    free_value(a, value);
                    free_sds(a, key);
                }
                return Err(err);
            }
        };
        if it.exptime != 0 {
            if let Err(err) = self.set_exptime(a, e, it.exptime) {
                self.remove(a, e);
                return Err(err);
            }
        }
        Ok(e)
    }

    fn update<A: Allocator>(
        &mut self,
        a: &mut A,
        h: NonNull<u8>,
        value: &[u8],
        _flags: u32,
    ) -> Result<NonNull<u8>, AllocError> {
        // `dbOverwrite` finds the key again (`dictFind`): a rehash step.
        self.main.rehash_step(a);
        let access = self.access(h);
        let v = make_value(a, value, self.shared_integers, access)?;
        // SAFETY: the old value is live and replaced once.
        unsafe { free_value(a, Self::value(h)) };
        Self::set_value(h, v);
        Ok(h)
    }

    fn append<A: Allocator>(
        &mut self,
        a: &mut A,
        h: NonNull<u8>,
        bytes: &[u8],
        prepend: bool,
    ) -> Result<NonNull<u8>, AllocError> {
        let o = self.unshare(a, h)?;
        // SAFETY: `o` is a live raw robj; its SDS is resized through `realloc` as
        // `sdsMakeRoomFor` does, and the robj's pointer updated.
        unsafe {
            let sds = sds_at(NonNull::new_unchecked(obj_ptr(o) as *mut u8));
            let (len, avail) = (sds.len(), sds.alloc() - sds.len());
            let newlen = len + bytes.len();
            let sds = if avail >= bytes.len() {
                sds
            } else {
                let greedy = if newlen < SDS_MAX_PREALLOC {
                    newlen * 2
                } else {
                    newlen + SDS_MAX_PREALLOC
                };
                let hdr = sds_header_growable(greedy);
                if hdr + greedy + 1 > a.max_contiguous() {
                    return Err(AllocError::TooLarge {
                        size: hdr + greedy + 1,
                        max: a.max_contiguous(),
                    });
                }
                if hdr == sds.hdr {
                    let block = a.realloc(sds.base, sds.size(), hdr + greedy + 1)?;
                    let grown = Sds {
                        base: block.ptr,
                        hdr,
                    };
                    grown.set(len, greedy);
                    grown
                } else {
                    let grown = new_sds(a, sds.bytes(), hdr, greedy)?;
                    free_sds(a, sds);
                    grown
                }
            };
            let data = sds.base.as_ptr().add(sds.hdr);
            if prepend {
                std::ptr::copy(data, data.add(bytes.len()), len);
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
            } else {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.add(len), bytes.len());
            }
            let alloc = sds.alloc();
            sds.set(newlen, alloc);
            write_at::<usize>(o, 8, data as usize);
        }
        Ok(h)
    }

    fn overwrite<A: Allocator>(&mut self, a: &mut A, h: NonNull<u8>, value: &[u8]) {
        // The store calls this only under memcached semantics (Redis's INCR re-encodes through
        // `update`); if it were called here, a same-length rewrite would be an `update`.
        let rewritten = self.update(a, h, value, 0);
        debug_assert!(
            rewritten.is_ok(),
            "overwrite is not used by the redis layout"
        );
    }

    fn remove<A: Allocator>(&mut self, a: &mut A, h: NonNull<u8>) {
        let key = Self::key(h);
        let hash = hash_key(key_bytes(key));
        if let Some(x) = self.expires.find(key_bytes(key), hash) {
            self.expires.delete(a, x, hash);
        }
        let v = Self::value(h);
        let found = self.main.delete(a, h, hash);
        debug_assert!(found, "removing an entry that is not in the dict");
        // SAFETY: the key SDS and the value belonged to the deleted entry only.
        unsafe {
            free_value(a, v);
            free_sds(a, sds_at(key));
        }
        self.main.rehash_step(a);
    }

    fn read_value<A: Allocator>(&self, _a: &A, h: NonNull<u8>, out: &mut Vec<u8>) {
        // The store refuses string reads of aggregates before they get here.
        if Self::agg_obj(h).is_none() {
            value_bytes(Self::value(h), out);
        }
    }

    fn value_len<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> usize {
        let digits = |n: i64| {
            n.unsigned_abs()
                .checked_ilog10()
                .map_or(1, |d| d as usize + 1)
                + usize::from(n < 0)
        };
        match Self::value(h) {
            Value::Shared(n) => digits(n),
            Value::Obj(o) if aggregate::agg_type(o).is_some() => aggregate::payload(o),
            // SAFETY: value objects in the dict are live.
            Value::Obj(o) => unsafe {
                match encoding(o) {
                    ENC_INT => digits(obj_ptr(o) as i64),
                    _ => sds_at(NonNull::new_unchecked(obj_ptr(o) as *mut u8)).len(),
                }
            },
        }
    }

    fn key_len(&self, h: NonNull<u8>) -> usize {
        key_bytes(Self::key(h)).len()
    }

    fn read_key<A: Allocator>(&self, _a: &A, h: NonNull<u8>, out: &mut Vec<u8>) {
        out.extend_from_slice(key_bytes(Self::key(h)));
    }

    fn flags<A: Allocator>(&self, _a: &A, _h: NonNull<u8>) -> u32 {
        0
    }

    fn exptime<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> u32 {
        // `getExpire`: no lookup while the expires dict is empty.
        if self.expires.len() == 0 {
            return 0;
        }
        // SAFETY: expires entries are live; the value word holds the expiry time.
        self.expires_entry(h)
            .map_or(0, |x| unsafe { entry_val(x) } as u32)
    }

    fn set_exptime<A: Allocator>(
        &mut self,
        a: &mut A,
        h: NonNull<u8>,
        exptime: u32,
    ) -> Result<(), AllocError> {
        let key = Self::key(h);
        let hash = hash_key(key_bytes(key));
        match (self.expires.find(key_bytes(key), hash), exptime) {
            (Some(x), 0) => {
                self.expires.delete(a, x, hash);
            }
            // SAFETY: `x` is a live expires entry.
            (Some(x), t) => unsafe { write_at(x, 8, t as usize) },
            (None, 0) => {}
            (None, t) => {
                self.expires.rehash_step(a);
                self.expires.add(a, key, hash, t as usize)?;
            }
        }
        Ok(())
    }

    fn access(&self, h: NonNull<u8>) -> u32 {
        match Self::value(h) {
            Value::Shared(_) => 0,
            // SAFETY: live robj; bytes 1..4 hold the 24-bit lru field.
            Value::Obj(o) => unsafe {
                u32::from(read_at::<u8>(o, 1)) | u32::from(read_at::<u16>(o, 2)) << 8
            },
        }
    }

    fn set_access(&mut self, h: NonNull<u8>, access: u32) {
        if let Value::Obj(o) = Self::value(h) {
            // SAFETY: live robj.
            unsafe {
                write_at::<u8>(o, 1, access as u8);
                write_at::<u16>(o, 2, (access >> 8) as u16);
            }
        }
    }

    fn links(&self, _h: NonNull<u8>) -> Option<NonNull<u8>> {
        None
    }

    fn handle_at_links(&self, links: NonNull<u8>) -> NonNull<u8> {
        links
    }

    fn alloc_size<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> usize {
        value_alloc_size(Self::value(h))
    }

    fn random<A: Allocator>(
        &mut self,
        _a: &A,
        rng: &mut Rng,
        volatile: bool,
    ) -> Option<NonNull<u8>> {
        if volatile {
            let x = self.expires.random(rng)?;
            // SAFETY: expires entries share the main entry's live key.
            let key = key_bytes(unsafe { entry_key(x) });
            self.main.find(key, hash_key(key))
        } else {
            self.main.random(rng)
        }
    }

    fn handles(&self) -> Vec<NonNull<u8>> {
        self.main.entries()
    }

    fn for_each_handle(&self, f: &mut dyn FnMut(NonNull<u8>) -> bool) {
        let mut go = true;
        self.main.for_each_entry(&mut |e| {
            if go {
                go = f(e);
            }
        });
    }

    fn agg_elements<A: Allocator>(
        &self,
        a: &mut A,
        h: NonNull<u8>,
        cfg: &AggConfig,
    ) -> crate::agg::model::AggData {
        aggregate::elements(a, Self::agg_obj(h).expect("an aggregate key"), cfg)
    }

    fn blocks<A: Allocator>(&self, _a: &A, h: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
        let mut block = |p: NonNull<u8>, size: usize| f(p.as_ptr() as usize, size);
        block(h, ENTRY);
        let key = Self::key(h);
        // SAFETY: the key SDS, the value and the expires entry of a live entry are live.
        unsafe {
            let sds = sds_at(key);
            block(sds.base, sds.size());
            if let Value::Obj(o) = Self::value(h) {
                if aggregate::agg_type(o).is_some() {
                    aggregate::blocks(o, f);
                    return self.expires_block(h, f);
                }
                block(o, value_alloc_size(Value::Obj(o)));
                if encoding(o) == ENC_RAW {
                    let v = sds_at(NonNull::new_unchecked(obj_ptr(o) as *mut u8));
                    block(v.base, v.size());
                }
            }
        }
        self.expires_block(h, f);
    }

    fn agg_type<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> Option<AggType> {
        Self::agg_obj(h).and_then(aggregate::agg_type)
    }

    fn agg_shape<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> (Encoding, usize) {
        let o = Self::agg_obj(h).expect("an aggregate key");
        (aggregate::encoding(o), aggregate::len(o))
    }

    fn agg_create<A: Allocator>(
        &mut self,
        a: &mut A,
        item: NewItem<'_>,
        cfg: &AggConfig,
        cmd: &AggCmd<'_>,
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) -> Result<AggDone<NonNull<u8>>, AggError> {
        self.agg_create_in(a, item, cfg, cmd, rng, out)
    }

    fn agg_apply<A: Allocator>(
        &mut self,
        a: &mut A,
        h: NonNull<u8>,
        cfg: &AggConfig,
        cmd: &AggCmd<'_>,
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) -> Result<AggDone<NonNull<u8>>, AggError> {
        let o = Self::agg_obj(h).expect("an aggregate key");
        let before = (aggregate::encoding(o), aggregate::len(o));
        let (reply, payload_delta) = aggregate::apply(a, o, cfg, cmd, rng, out)?;
        Ok(AggDone {
            handle: h,
            reply,
            payload_delta,
            before: Some(before),
            after: (aggregate::encoding(o), aggregate::len(o)),
        })
    }

    fn release<A: Allocator>(&mut self, a: &mut A) {
        for dict in [&mut self.main, &mut self.expires] {
            debug_assert_eq!(dict.len(), 0, "release before every key is removed");
            for ht in &mut dict.ht {
                if let Some(t) = ht.table.take() {
                    // SAFETY: the table was allocated with `size * 8` bytes; it is empty.
                    unsafe { a.free(t, ht.size * 8) };
                }
                *ht = Ht::default();
            }
            dict.rehashidx = None;
        }
    }

    fn defrag_step<A: Allocator>(
        &mut self,
        a: &mut A,
        cursor: u64,
        _max_scan_fields: u64,
        c: &mut crate::defrag::DefragCounters,
    ) -> Option<(u64, u64)> {
        Some(self.defrag_scan_step(a, cursor, c))
    }

    fn background_step<A: Allocator>(&mut self, a: &mut A) -> bool {
        let mut worked = self.main.rehash_step(a) | self.expires.rehash_step(a);
        worked |= self.main.shrink_if_needed(a) | self.expires.shrink_if_needed(a);
        worked
    }
}
