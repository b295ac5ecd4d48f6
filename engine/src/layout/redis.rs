//! Redis 7.0's objects for string keys, allocated through the allocator under test, so the
//! allocator's `allocated_bytes` is Redis's `used_memory` for the data.
//!
//! A key costs these allocations (REFERENCE.md):
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

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::{Layout, LayoutKind, LayoutOptions, NewItem};
use crate::util::{hash_key, read_at, to_raw, write_at, Rng};

/// A dict entry: key, value, next.
pub const ENTRY: usize = 24;
/// `sizeof(robj)`.
pub const ROBJ: usize = 16;
/// `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`.
pub const EMBSTR_LIMIT: usize = 44;
/// `OBJ_SHARED_INTEGERS`.
pub const SHARED_INTEGERS: i64 = 10_000;
const SDS_MAX_PREALLOC: usize = 1 << 20;
const DICT_INITIAL: usize = 4;
const ENC_RAW: u8 = 0;
const ENC_INT: u8 = 1;
const ENC_EMBSTR: u8 = 8;

/// The header size of an SDS string of `len` bytes (`sdsReqType`), for a fresh `sdsnewlen`.
pub fn sds_header(len: usize) -> usize {
    match len {
        // `sdsnewlen`: an empty string gets type 8, never type 5.
        0 => 3,
        1..32 => 1,
        32..256 => 3,
        256..65536 => 5,
        _ if len as u64 <= u32::MAX as u64 => 9,
        _ => 17,
    }
}

/// The header size for a string that will grow (`sdsMakeRoomFor` never uses type 5).
fn sds_header_growable(len: usize) -> usize {
    sds_header(len).max(3)
}

/// What a key costs in Redis with `jemalloc`-style exact sizes (requested bytes, before the
/// allocator's rounding): the entry, key SDS and value allocations. For tests and docs.
pub fn requested_for(key_len: usize, value: &[u8], shared_integers: bool) -> Vec<usize> {
    let mut out = vec![ENTRY, sds_header(key_len) + key_len + 1];
    match parse_i64(value) {
        Some(v) if shared_integers && (0..SHARED_INTEGERS).contains(&v) => {}
        Some(_) => out.push(ROBJ),
        None if value.len() <= EMBSTR_LIMIT => out.push(ROBJ + 3 + value.len() + 1),
        None => out.extend([ROBJ, sds_header(value.len()) + value.len() + 1]),
    }
    out
}

/// Redis's `string2ll` on at most 20 characters: a canonical decimal `i64` (no sign but `-`,
/// no leading zeros, no spaces).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(digit)?
        } else {
            v.checked_add(digit)?
        };
    }
    Some(v)
}

// ---- SDS strings: [header][bytes][NUL], the pointer after the header. ----

/// An SDS in allocator memory: the allocation's start, its requested size, and the header.
#[derive(Debug, Clone, Copy)]
struct Sds {
    base: NonNull<u8>,
    hdr: usize,
}

impl Sds {
    /// # Safety
    /// `base` is a live SDS allocation.
    unsafe fn len(self) -> usize {
        // SAFETY: the header is at the start of the allocation.
        unsafe {
            match self.hdr {
                1 => (read_at::<u8>(self.base, 0) >> 3) as usize,
                3 => read_at::<u8>(self.base, 0) as usize,
                5 => read_at::<u16>(self.base, 0) as usize,
                9 => read_at::<u32>(self.base, 0) as usize,
                _ => read_at::<u64>(self.base, 0) as usize,
            }
        }
    }

    /// Capacity (the `alloc` field; type 5 has none: its length).
    ///
    /// # Safety
    /// As for `len`.
    unsafe fn alloc(self) -> usize {
        // SAFETY: as above.
        unsafe {
            match self.hdr {
                1 => self.len(),
                3 => read_at::<u8>(self.base, 1) as usize,
                5 => read_at::<u16>(self.base, 2) as usize,
                9 => read_at::<u32>(self.base, 4) as usize,
                _ => read_at::<u64>(self.base, 8) as usize,
            }
        }
    }

    /// Writes the header for `len` bytes of `alloc` capacity.
    ///
    /// # Safety
    /// The allocation holds at least `hdr + alloc + 1` bytes.
    unsafe fn set(self, len: usize, alloc: usize) {
        // SAFETY: the caller's contract; the flags byte is the header's last.
        unsafe {
            match self.hdr {
                1 => write_at::<u8>(self.base, 0, (len << 3) as u8),
                3 => {
                    write_at::<u8>(self.base, 0, len as u8);
                    write_at::<u8>(self.base, 1, alloc as u8);
                    write_at::<u8>(self.base, 2, 1);
                }
                5 => {
                    write_at::<u16>(self.base, 0, len as u16);
                    write_at::<u16>(self.base, 2, alloc as u16);
                    write_at::<u8>(self.base, 4, 2);
                }
                9 => {
                    write_at::<u32>(self.base, 0, len as u32);
                    write_at::<u32>(self.base, 4, alloc as u32);
                    write_at::<u8>(self.base, 8, 3);
                }
                _ => {
                    write_at::<u64>(self.base, 0, len as u64);
                    write_at::<u64>(self.base, 8, alloc as u64);
                    write_at::<u8>(self.base, 16, 4);
                }
            }
            write_at::<u8>(self.base, self.hdr + len, 0);
        }
    }

    /// # Safety
    /// As for `len`; the slice must not outlive the allocation.
    unsafe fn bytes<'a>(self) -> &'a [u8] {
        // SAFETY: the bytes follow the header.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(self.hdr), self.len()) }
    }

    /// The allocation's requested size.
    ///
    /// # Safety
    /// As for `len`.
    unsafe fn size(self) -> usize {
        // SAFETY: as above.
        self.hdr + unsafe { self.alloc() } + 1
    }
}

/// The SDS header size from the flags byte before the string.
///
/// # Safety
/// `s` points just after an SDS header.
unsafe fn sds_at(s: NonNull<u8>) -> Sds {
    // SAFETY: the flags byte is the last header byte.
    let hdr = match unsafe { s.as_ptr().sub(1).read() } & 7 {
        0 => 1,
        1 => 3,
        2 => 5,
        3 => 9,
        _ => 17,
    };
    // SAFETY: the header starts `hdr` bytes before the string.
    let base = unsafe { s.sub(hdr) };
    Sds { base, hdr }
}

/// Allocates a block Redis's code can use as one piece (Redis's objects are never split): a
/// request above the allocator's largest contiguous block is `TooLarge`.
fn alloc_whole<A: Allocator>(a: &mut A, size: usize) -> Result<NonNull<u8>, AllocError> {
    let max = a.max_contiguous();
    if size > max {
        return Err(AllocError::TooLarge { size, max });
    }
    Ok(a.alloc(size)?.ptr)
}

fn new_sds<A: Allocator>(
    a: &mut A,
    bytes: &[u8],
    hdr: usize,
    alloc: usize,
) -> Result<Sds, AllocError> {
    let base = alloc_whole(a, hdr + alloc + 1)?;
    let sds = Sds { base, hdr };
    // SAFETY: the block holds `hdr + alloc + 1 >= hdr + len + 1` bytes.
    unsafe {
        sds.set(bytes.len(), alloc);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.as_ptr().add(hdr), bytes.len());
    }
    Ok(sds)
}

/// # Safety
/// `sds` is a live SDS of `a`, freed once.
unsafe fn free_sds<A: Allocator>(a: &mut A, sds: Sds) {
    // SAFETY: the caller's contract.
    unsafe { a.free(sds.base, sds.size()) }
}

// ---- Values: a tagged word in the entry. ----

/// The value word of a main-dict entry: a robj pointer, or a shared integer tagged in the low
/// bit (`n << 1 | 1`; robj pointers are aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Shared(i64),
    Obj(NonNull<u8>),
}

impl Value {
    fn word(self) -> usize {
        match self {
            Value::Shared(n) => ((n as usize) << 1) | 1,
            Value::Obj(p) => p.as_ptr() as usize,
        }
    }

    fn from_word(w: usize) -> Value {
        if w & 1 == 1 {
            Value::Shared((w >> 1) as i64)
        } else {
            Value::Obj(NonNull::new(w as *mut u8).expect("a value object"))
        }
    }
}

/// # Safety
/// `o` is a live robj.
unsafe fn encoding(o: NonNull<u8>) -> u8 {
    // SAFETY: byte 0 holds type (low 4 bits) and encoding (high 4 bits).
    unsafe { read_at::<u8>(o, 0) >> 4 }
}

/// # Safety
/// `o` is a live robj.
unsafe fn obj_ptr(o: NonNull<u8>) -> usize {
    // SAFETY: the ptr field is at offset 8.
    unsafe { read_at::<usize>(o, 8) }
}

/// Builds the value object for `bytes` (`createStringObject` + `tryObjectEncoding`).
fn make_value<A: Allocator>(
    a: &mut A,
    bytes: &[u8],
    shared: bool,
    access: u32,
) -> Result<Value, AllocError> {
    let init = |o: NonNull<u8>, enc: u8, ptr: usize| {
        // SAFETY: `o` is a fresh allocation of at least 16 bytes.
        unsafe {
            write_at::<u8>(o, 0, enc << 4);
            write_at::<u8>(o, 1, access as u8);
            write_at::<u16>(o, 2, (access >> 8) as u16);
            write_at::<i32>(o, 4, 1);
            write_at::<usize>(o, 8, ptr);
        }
    };
    if let Some(v) = parse_i64(bytes) {
        if shared && (0..SHARED_INTEGERS).contains(&v) {
            return Ok(Value::Shared(v));
        }
        let o = a.alloc(ROBJ)?.ptr;
        init(o, ENC_INT, v as usize);
        return Ok(Value::Obj(o));
    }
    if bytes.len() <= EMBSTR_LIMIT {
        let o = alloc_whole(a, ROBJ + 3 + bytes.len() + 1)?;
        // SAFETY: the allocation holds the robj and an sdshdr8 of `len` bytes after it.
        let base = unsafe { o.add(ROBJ) };
        let sds = Sds { base, hdr: 3 };
        // SAFETY: as above: header, bytes and NUL fit in the allocation.
        unsafe {
            sds.set(bytes.len(), bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), sds.base.as_ptr().add(3), bytes.len());
        }
        init(o, ENC_EMBSTR, sds.base.as_ptr() as usize + 3);
        return Ok(Value::Obj(o));
    }
    let o = a.alloc(ROBJ)?.ptr;
    let hdr = sds_header(bytes.len()).max(3);
    match new_sds(a, bytes, hdr, bytes.len()) {
        Ok(sds) => {
            init(o, ENC_RAW, sds.base.as_ptr() as usize + hdr);
            Ok(Value::Obj(o))
        }
        Err(e) => {
            // SAFETY: `o` was just allocated with 16 bytes.
            unsafe { a.free(o, ROBJ) };
            Err(e)
        }
    }
}

/// The size of a value's own allocation (the robj, with the embedded string if any).
fn value_alloc_size(v: Value) -> usize {
    match v {
        Value::Shared(_) => 0,
        // SAFETY: value objects in the dict are live.
        Value::Obj(o) => unsafe {
            match encoding(o) {
                ENC_EMBSTR => {
                    ROBJ + 3 + sds_at(NonNull::new_unchecked(obj_ptr(o) as *mut u8)).len() + 1
                }
                _ => ROBJ,
            }
        },
    }
}

/// Frees a value object.
///
/// # Safety
/// `v` is a live value of `a`, freed once.
unsafe fn free_value<A: Allocator>(a: &mut A, v: Value) {
    let Value::Obj(o) = v else { return };
    // SAFETY: the caller's contract; a raw value's SDS is freed with it.
    unsafe {
        if encoding(o) == ENC_RAW {
            free_sds(a, sds_at(NonNull::new_unchecked(obj_ptr(o) as *mut u8)));
        }
        let size = value_alloc_size(v);
        a.free(o, size);
    }
}

/// Appends a value's bytes to `out`.
fn value_bytes(v: Value, out: &mut Vec<u8>) {
    match v {
        Value::Shared(n) => out.extend_from_slice(n.to_string().as_bytes()),
        // SAFETY: value objects in the dict are live.
        Value::Obj(o) => unsafe {
            match encoding(o) {
                ENC_INT => out.extend_from_slice((obj_ptr(o) as i64).to_string().as_bytes()),
                _ => out.extend_from_slice(
                    sds_at(NonNull::new_unchecked(obj_ptr(o) as *mut u8)).bytes(),
                ),
            }
        },
    }
}

// ---- The dict. ----

#[derive(Debug, Clone, Copy, Default)]
struct Ht {
    table: Option<NonNull<u8>>,
    size: usize,
    used: usize,
}

impl Ht {
    fn slot(&self, i: usize) -> Option<NonNull<u8>> {
        // SAFETY: `i < size` and the table holds `size` 8-byte slots.
        NonNull::new(unsafe { read_at::<*mut u8>(self.table.expect("a table"), i * 8) })
    }

    fn set_slot(&self, i: usize, e: Option<NonNull<u8>>) {
        // SAFETY: as for `slot`.
        unsafe { write_at(self.table.expect("a table"), i * 8, to_raw(e)) }
    }
}

/// # Safety (for the three accessors) `e` is a live entry.
unsafe fn entry_key(e: NonNull<u8>) -> NonNull<u8> {
    // SAFETY: the caller's contract.
    unsafe { NonNull::new_unchecked(read_at::<*mut u8>(e, 0)) }
}
unsafe fn entry_val(e: NonNull<u8>) -> usize {
    // SAFETY: the caller's contract.
    unsafe { read_at::<usize>(e, 8) }
}
unsafe fn entry_next(e: NonNull<u8>) -> Option<NonNull<u8>> {
    // SAFETY: the caller's contract.
    NonNull::new(unsafe { read_at::<*mut u8>(e, 16) })
}

/// Redis's dict (`dict.c`): two tables while rehashing.
#[derive(Debug, Default)]
struct Dict {
    ht: [Ht; 2],
    /// Next bucket of `ht[0]` to move, while rehashing.
    rehashidx: Option<usize>,
}

fn key_bytes<'a>(k: NonNull<u8>) -> &'a [u8] {
    // SAFETY: dict keys are live SDS strings.
    unsafe { sds_at(k).bytes() }
}

impl Dict {
    fn len(&self) -> usize {
        self.ht[0].used + self.ht[1].used
    }

    fn table_bytes(&self) -> u64 {
        ((self.ht[0].size + self.ht[1].size) * 8) as u64
    }

    /// `dictRehash(d, 1)`: moves one bucket, visiting at most 10 empty ones.
    fn rehash_step<A: Allocator>(&mut self, a: &mut A) -> bool {
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
        if self.rehashidx.is_some() || self.ht[0].used > size {
            return false;
        }
        let real = size.max(DICT_INITIAL).next_power_of_two();
        if real == self.ht[0].size || real * 8 > a.max_contiguous() {
            return false;
        }
        let Ok(block) = a.alloc(real * 8) else {
            return false;
        };
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
        true
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
    fn shrink_if_needed<A: Allocator>(&mut self, a: &mut A) -> bool {
        let (size, used) = (self.ht[0].size, self.ht[0].used);
        if self.rehashidx.is_none() && size > DICT_INITIAL && used * 100 / size < 10 {
            return self.expand(a, used.max(DICT_INITIAL));
        }
        false
    }

    fn find(&self, key: &[u8], hash: u64) -> Option<NonNull<u8>> {
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
    fn add<A: Allocator>(
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
    fn delete<A: Allocator>(&mut self, a: &mut A, e: NonNull<u8>, hash: u64) -> bool {
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
    fn random(&self, rng: &mut Rng) -> Option<NonNull<u8>> {
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

    fn entries(&self) -> Vec<NonNull<u8>> {
        let mut out = Vec::with_capacity(self.len());
        for ht in &self.ht {
            for i in 0..ht.size {
                let mut e = ht.slot(i);
                while let Some(cur) = e {
                    out.push(cur);
                    // SAFETY: chained entries are live.
                    e = unsafe { entry_next(cur) };
                }
            }
        }
        out
    }
}

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

impl Layout for Redis {
    const KIND: LayoutKind = LayoutKind::Redis;
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
        value_bytes(Self::value(h), out);
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

    fn blocks<A: Allocator>(&self, _a: &A, h: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
        let mut block = |p: NonNull<u8>, size: usize| f(p.as_ptr() as usize, size);
        block(h, ENTRY);
        let key = Self::key(h);
        // SAFETY: the key SDS, the value and the expires entry of a live entry are live.
        unsafe {
            let sds = sds_at(key);
            block(sds.base, sds.size());
            if let Value::Obj(o) = Self::value(h) {
                block(o, value_alloc_size(Value::Obj(o)));
                if encoding(o) == ENC_RAW {
                    let v = sds_at(NonNull::new_unchecked(obj_ptr(o) as *mut u8));
                    block(v.base, v.size());
                }
            }
        }
        if self.expires.len() > 0 {
            if let Some(x) = self.expires_entry(h) {
                block(x, ENTRY);
            }
        }
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

    fn background_step<A: Allocator>(&mut self, a: &mut A) -> bool {
        let mut worked = self.main.rehash_step(a) | self.expires.rehash_step(a);
        worked |= self.main.shrink_if_needed(a) | self.expires.shrink_if_needed(a);
        worked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sds_headers_by_length() {
        assert_eq!(
            [0, 1, 31, 32, 255, 256, 65535, 65536].map(sds_header),
            [3, 1, 1, 3, 3, 5, 5, 9]
        );
    }

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1a",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn requested_sizes_follow_reference() {
        assert_eq!(requested_for(16, &[b'x'; 100], true), vec![24, 18, 16, 104]);
        assert_eq!(requested_for(16, &[b'x'; 44], true), vec![24, 18, 64]);
        assert_eq!(requested_for(16, &[b'x'; 45], true), vec![24, 18, 16, 49]);
        assert_eq!(requested_for(16, b"123", true), vec![24, 18]);
        assert_eq!(requested_for(16, b"123", false), vec![24, 18, 16]);
        assert_eq!(requested_for(16, b"12345", true), vec![24, 18, 16]);
    }
}
