//! What the aggregate types share: the 16-byte `robj` that holds an aggregate (Redis 7.0's
//! `src/server.h` and `createObject` in `src/object.c`), SDS strings made as `sdsnewlen` makes
//! them (`src/sds.c`), and a dict kept in its 56-byte `struct dict` block (`src/dict.c`).
//!
//! The functions take raw object pointers, as the rest of the layout does: every pointer
//! passed in is a live object of this layout's making.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::dict::{entry_key, entry_val, Dict, DICT_STRUCT};
use super::object::ROBJ;
use super::sds::{free_sds, new_sds, sds_at, sds_header};
use crate::util::{read_at, write_at};

/// `OBJ_LIST`.
pub(super) const OBJ_LIST: u8 = 1;
/// `OBJ_SET`.
pub(super) const OBJ_SET: u8 = 2;
/// `OBJ_ZSET`.
pub(super) const OBJ_ZSET: u8 = 3;
/// `OBJ_HASH`.
pub(super) const OBJ_HASH: u8 = 4;
/// `OBJ_ENCODING_HT`.
pub(super) const ENC_HT: u8 = 2;
/// `OBJ_ENCODING_INTSET`.
pub(super) const ENC_INTSET: u8 = 6;
/// `OBJ_ENCODING_SKIPLIST`.
pub(super) const ENC_SKIPLIST: u8 = 7;
/// `OBJ_ENCODING_QUICKLIST`.
pub(super) const ENC_QUICKLIST: u8 = 9;
/// `OBJ_ENCODING_LISTPACK`.
pub(super) const ENC_LISTPACK: u8 = 11;

/// `createObject(type, ptr)` with its encoding set: type in the low 4 bits of byte 0,
/// encoding in the high 4, the 24-bit `lru` 0 (the store sets access times), `refcount` 1.
pub(super) fn new_robj<A: Allocator>(
    a: &mut A,
    ty: u8,
    enc: u8,
    ptr: NonNull<u8>,
) -> Result<NonNull<u8>, AllocError> {
    let o = a.alloc(ROBJ)?.ptr;
    // SAFETY: a fresh block of 16 bytes.
    unsafe {
        write_at::<u8>(o, 0, ty | enc << 4);
        write_at::<u8>(o, 1, 0);
        write_at::<u16>(o, 2, 0);
        write_at::<i32>(o, 4, 1);
        write_at(o, 8, ptr.as_ptr());
    }
    Ok(o)
}

/// The object's encoding (`OBJ_ENCODING_*`).
pub(super) fn robj_encoding(o: NonNull<u8>) -> u8 {
    // SAFETY: `o` is a live robj; byte 0 holds type and encoding.
    unsafe { read_at::<u8>(o, 0) >> 4 }
}

/// The object's type (`OBJ_*`).
pub(super) fn robj_type(o: NonNull<u8>) -> u8 {
    // SAFETY: as above.
    unsafe { read_at::<u8>(o, 0) & 0xF }
}

/// The object's `ptr`.
pub(super) fn robj_ptr(o: NonNull<u8>) -> NonNull<u8> {
    // SAFETY: `o` is a live robj; an aggregate's `ptr` is never null.
    unsafe { NonNull::new_unchecked(read_at::<*mut u8>(o, 8)) }
}

/// Sets the object's encoding and `ptr` (a conversion, or a block that moved).
pub(super) fn set_robj(o: NonNull<u8>, enc: u8, ptr: NonNull<u8>) {
    // SAFETY: `o` is a live robj this layout owns.
    unsafe {
        let ty = read_at::<u8>(o, 0) & 0xF;
        write_at::<u8>(o, 0, ty | enc << 4);
        write_at(o, 8, ptr.as_ptr());
    }
}

/// `sdsnewlen(bytes, len)`: the string's pointer (after its header).
pub(super) fn sds_new<A: Allocator>(a: &mut A, bytes: &[u8]) -> Result<NonNull<u8>, AllocError> {
    let hdr = sds_header(bytes.len());
    let s = new_sds(a, bytes, hdr, bytes.len())?;
    // SAFETY: the string starts after the header, inside the block.
    Ok(unsafe { s.base.add(hdr) })
}

/// The bytes of an SDS string.
pub(super) fn sds_bytes<'a>(s: NonNull<u8>) -> &'a [u8] {
    // SAFETY: `s` is a live SDS string of this layout.
    unsafe { sds_at(s).bytes() }
}

/// The SDS string's block: (address, requested size).
pub(super) fn sds_block(s: NonNull<u8>) -> (usize, usize) {
    // SAFETY: as above.
    let x = unsafe { sds_at(s) };
    // SAFETY: as above.
    (x.base.as_ptr() as usize, unsafe { x.size() })
}

/// `sdsfree`.
///
/// # Safety
/// `s` is a live SDS string of `a`, freed once.
pub(super) unsafe fn sds_free<A: Allocator>(a: &mut A, s: NonNull<u8>) {
    // SAFETY: the caller's contract.
    unsafe { free_sds(a, sds_at(s)) }
}

/// Runs `f` on the dict kept in the `struct dict` block `p`, and writes it back (also when `f`
/// fails: a rehash step may have moved buckets).
pub(super) fn with_dict<R>(p: NonNull<u8>, f: impl FnOnce(&mut Dict) -> R) -> R {
    // SAFETY: `p` is a live dict block written by `Dict::store`.
    let mut d = unsafe { Dict::load(p) };
    let r = f(&mut d);
    // SAFETY: as above.
    unsafe { d.store(p) };
    r
}

/// `dictRelease` of a dict of SDS keys and SDS values (hash) or none (set): every key, value
/// and entry, both tables, then the `struct dict` block.
///
/// # Safety
/// `p` is a live dict block of `a` whose keys (and values when `vals`) are SDS strings of `a`;
/// nothing of it is used afterwards.
pub(super) unsafe fn free_dict_obj<A: Allocator>(a: &mut A, p: NonNull<u8>, vals: bool) {
    // SAFETY: the caller's contract.
    let mut d = unsafe { Dict::load(p) };
    free_dict(a, &mut d, vals);
    // SAFETY: the caller's contract: the block is 56 bytes.
    unsafe { a.free(p, DICT_STRUCT) };
}

/// `_dictClear` of a dict of SDS keys (and SDS values when `vals`).
pub(super) fn free_dict<A: Allocator>(a: &mut A, d: &mut Dict, vals: bool) {
    d.clear(a, &mut |a, k, v| {
        // SAFETY: keys and values are live SDS strings owned by the dict, freed once.
        unsafe {
            sds_free(a, k);
            if vals {
                sds_free(a, NonNull::new(v as *mut u8).expect("an SDS value"));
            }
        }
    });
}

/// Calls `f(address, size)` for the `struct dict` block, its tables, its entries, and their
/// SDS keys (and values when `vals`).
pub(super) fn dict_obj_blocks(p: NonNull<u8>, vals: bool, f: &mut dyn FnMut(usize, usize)) {
    f(p.as_ptr() as usize, DICT_STRUCT);
    // SAFETY: `p` is a live dict block.
    let d = unsafe { Dict::load(p) };
    d.table_and_entry_blocks(f);
    d.for_each_entry(&mut |e| {
        // SAFETY: `e` is a live entry; its key (and value) are live SDS strings.
        unsafe {
            let (at, n) = sds_block(entry_key(e));
            f(at, n);
            if vals {
                let (at, n) = sds_block(NonNull::new_unchecked(entry_val(e) as *mut u8));
                f(at, n);
            }
        }
    });
}

/// The length of an integer's decimal text.
pub(super) fn digits(v: i64) -> usize {
    v.unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1)
        + usize::from(v < 0)
}
