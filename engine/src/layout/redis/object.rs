//! The value object (`robj`, Redis 7.0's `src/server.h`) and the encodings
//! `tryObjectEncoding` picks (`src/object.c`): shared integers, integers in the pointer,
//! embedded strings, raw SDS strings.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::dict::ENTRY;
use super::sds::{alloc_whole, free_sds, new_sds, sds_at, sds_header, Sds};
use crate::util::{read_at, write_at};

/// `sizeof(robj)`.
pub const ROBJ: usize = 16;
/// `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`.
pub const EMBSTR_LIMIT: usize = 44;
/// `OBJ_SHARED_INTEGERS`.
pub const SHARED_INTEGERS: i64 = 10_000;
pub(super) const ENC_RAW: u8 = 0;
pub(super) const ENC_INT: u8 = 1;
pub(super) const ENC_EMBSTR: u8 = 8;

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

pub use crate::util::parse_i64;

/// The value word of a main-dict entry: a robj pointer, or a shared integer tagged in the low
/// bit (`n << 1 | 1`; robj pointers are aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value {
    Shared(i64),
    Obj(NonNull<u8>),
}

impl Value {
    pub(super) fn word(self) -> usize {
        match self {
            Value::Shared(n) => ((n as usize) << 1) | 1,
            Value::Obj(p) => p.as_ptr() as usize,
        }
    }

    pub(super) fn from_word(w: usize) -> Value {
        if w & 1 == 1 {
            Value::Shared((w >> 1) as i64)
        } else {
            Value::Obj(NonNull::new(w as *mut u8).expect("a value object"))
        }
    }
}

/// # Safety
/// `o` is a live robj.
pub(super) unsafe fn encoding(o: NonNull<u8>) -> u8 {
    // SAFETY: byte 0 holds type (low 4 bits) and encoding (high 4 bits).
    unsafe { read_at::<u8>(o, 0) >> 4 }
}

/// # Safety
/// `o` is a live robj.
pub(super) unsafe fn obj_ptr(o: NonNull<u8>) -> usize {
    // SAFETY: the ptr field is at offset 8.
    unsafe { read_at::<usize>(o, 8) }
}

/// Builds the value object for `bytes` (`createStringObject` + `tryObjectEncoding`).
pub(super) fn make_value<A: Allocator>(
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
pub(super) fn value_alloc_size(v: Value) -> usize {
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

/// Frees a string value object (the layout frees aggregates through `aggregate`).
///
/// # Safety
/// `v` is a live value of `a`, freed once.
pub(super) unsafe fn free_value<A: Allocator>(a: &mut A, v: Value) {
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

/// Appends a string value's bytes to `out`.
pub(super) fn value_bytes(v: Value, out: &mut Vec<u8>) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn requested_sizes_follow_object_c() {
        assert_eq!(requested_for(16, &[b'x'; 100], true), vec![24, 18, 16, 104]);
        assert_eq!(requested_for(16, &[b'x'; 44], true), vec![24, 18, 64]);
        assert_eq!(requested_for(16, &[b'x'; 45], true), vec![24, 18, 16, 49]);
        assert_eq!(requested_for(16, b"123", true), vec![24, 18]);
        assert_eq!(requested_for(16, b"123", false), vec![24, 18, 16]);
        assert_eq!(requested_for(16, b"12345", true), vec![24, 18, 16]);
    }
}
