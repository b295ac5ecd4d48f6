//! The HASH type as Redis 7.0 holds it (`src/t_hash.c`): a 16-byte robj (`OBJ_HASH`) whose
//! `ptr` is a listpack of field, value, field, value... (`OBJ_ENCODING_LISTPACK`), or a dict of
//! SDS fields to SDS values (`OBJ_ENCODING_HT`).
//!
//! - `createHashObject`: an empty listpack (`lpNew(0)`, 7 bytes), then the robj.
//! - HSET: `hashTypeTryConversion` first: a field or value longer than
//!   `hash-max-listpack-value`, or a listpack that would pass 1 GiB (`lpSafeToAdd`), converts
//!   before the insert. `hashTypeSet` then replaces the value in place (`lpReplace`) or
//!   appends the field and the value (two `lpAppend`s, two reallocs), and converts after the
//!   insert when the hash has more than `hash-max-listpack-entries` fields. A hash never
//!   converts back.
//! - The conversion (`hashTypeConvertListpack`): `dictCreate` (56 bytes), `dictExpand` to the
//!   field count (pre-sized: the table is the next power of two of it, at least 4), then per
//!   pair an SDS field, an SDS value (`sdsnewlen`, or `sdsfromlonglong` for integer entries,
//!   both exact-size) and a 24-byte entry, then the listpack is freed.
//! - HINCRBY: the new value is made as an SDS first (`sdsfromlonglong`), then set; in a
//!   listpack that SDS is only copied and freed. A field longer than `hash-max-listpack-value`
//!   converts before the insert (in `hashTypeSet`).
//! - In a dict every `dictFind`, `dictAdd` and `dictDelete` takes a rehash step while
//!   rehashing; a delete then shrinks a table under 10% full (`htNeedsResize`, `dictResize`).
//!
//! A failed command leaves the hash as it was: a conversion builds the dict (and, when it
//! precedes the insert, inserts into it) before the listpack is freed; an insert followed by a
//! refused conversion is taken back. Where that order differs from Redis's: an updated value
//! in a dict is allocated before the old one is freed (Redis frees first). Should the
//! allocator refuse to give back the bytes of a refused insert (shrinking a block it has just
//! grown), the conversion is skipped and the insert stands, the hash left over the limit
//! until the next insert converts it; if the value's append was refused and the field's
//! cannot be taken back, the operation panics (no allocator here refuses such a shrink: the
//! block returns to the size class it just left). A rehash step a refused command took stays
//! taken, as a lookup's does.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::aggobj::{
    dict_obj_blocks, digits, free_dict, free_dict_obj, new_robj, robj_encoding, robj_ptr,
    sds_bytes, sds_free, sds_new, set_robj, with_dict, ENC_HT, ENC_LISTPACK, OBJ_HASH,
};
use super::dict::{entry_key, entry_val, free_entry, set_val, Dict, DICT_STRUCT};
use super::listpack::{Listpack, LpValue, LISTPACK_MAX_SAFETY_SIZE};
use super::object::{parse_i64, ROBJ};
use crate::agg::{push_elem, AggCmd, AggConfig, AggError, Encoding, Reply};
use crate::util::{hash_key, Rng};

/// Creates the empty object Redis creates for `cmd`'s first write (`createHashObject`);
/// returns the robj.
pub(super) fn create<A: Allocator>(
    a: &mut A,
    _cfg: &AggConfig,
    _cmd: &AggCmd<'_>,
) -> Result<NonNull<u8>, AllocError> {
    let lp = Listpack::new(a)?;
    match new_robj(a, OBJ_HASH, ENC_LISTPACK, lp.ptr()) {
        Ok(o) => Ok(o),
        Err(e) => {
            // SAFETY: the listpack was just made and is not referenced.
            unsafe { lp.free(a) };
            Err(e)
        }
    }
}

fn lp_of(o: NonNull<u8>) -> Listpack {
    // SAFETY: a listpack-encoded hash's `ptr` is its live listpack.
    unsafe { Listpack::from_ptr(robj_ptr(o)) }
}

/// An SDS pointer kept in a dict entry's value.
fn sds_val(e: NonNull<u8>) -> NonNull<u8> {
    // SAFETY: `e` is a live entry of a hash dict: its value is an SDS string.
    NonNull::new(unsafe { entry_val(e) } as *mut u8).expect("a hash value")
}

/// Runs one command; appends reply bytes to `out` (see `Reply`'s docs); returns the reply and
/// the change in payload bytes (field and value text lengths).
pub(super) fn apply<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    cfg: &AggConfig,
    cmd: &AggCmd<'_>,
    _rng: &mut Rng,
    out: &mut Vec<u8>,
) -> Result<(Reply, i64), AggError> {
    match robj_encoding(o) {
        ENC_LISTPACK => lp_apply(a, o, cfg, cmd, out),
        ENC_HT => with_dict(robj_ptr(o), |d| ht_apply(a, d, cmd, out)),
        e => panic!("hash: unknown encoding {e}"),
    }
}

/// `lpFind(lp, lpFirst(lp), field, len, 1)`: the field's entry.
fn lp_find(lp: Listpack, field: &[u8]) -> Option<usize> {
    lp.first().and_then(|f| lp.find(f, field, 1))
}

fn lp_apply<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    cfg: &AggConfig,
    cmd: &AggCmd<'_>,
    out: &mut Vec<u8>,
) -> Result<(Reply, i64), AggError> {
    let lp = lp_of(o);
    let max = cfg.hash_max_listpack_value;
    Ok(match *cmd {
        AggCmd::HSet { field, value } => {
            let sum = field.len() + value.len();
            let (old, added) = if field.len() > max
                || value.len() > max
                || lp.bytes() + sum > LISTPACK_MAX_SAFETY_SIZE
            {
                convert_and(a, o, |a, d| ht_set(a, d, field, Val::Copy(value)))?
            } else {
                lp_set(a, o, cfg, field, LpValue::Str(value))?
            };
            let d = value.len() as i64 - old.map_or(-(field.len() as i64), |n| n as i64);
            (Reply::Int(i64::from(added)), d)
        }
        AggCmd::HGet { field } => match lp_find(lp, field) {
            Some(f) => {
                lp.get(lp.next(f).expect("a value")).write_text(out);
                (Reply::Bulk, 0)
            }
            None => (Reply::Nil, 0),
        },
        AggCmd::HDel { field } => match lp_find(lp, field) {
            Some(f) => {
                let gone = lp.get(f).text_len() + lp.get(lp.next(f).expect("a value")).text_len();
                let mut lp = lp;
                lp.delete_range(a, f, 2)?;
                set_robj(o, ENC_LISTPACK, lp.ptr());
                (Reply::Int(1), -(gone as i64))
            }
            None => (Reply::Int(0), 0),
        },
        AggCmd::HGetAll => {
            let mut n = 0;
            let mut text = Vec::new();
            for v in lp.iter() {
                text.clear();
                v.write_text(&mut text);
                push_elem(out, &text);
                n += 1;
            }
            (Reply::Array(n), 0)
        }
        AggCmd::HIncrBy { field, delta } => {
            let old = match lp_find(lp, field).map(|f| lp.get(lp.next(f).expect("a value"))) {
                Some(LpValue::Int(v)) => Some(v),
                Some(LpValue::Str(s)) => Some(parse_i64(s).ok_or(AggError::NotAnInteger)?),
                None => None,
            };
            let new = old
                .unwrap_or(0)
                .checked_add(delta)
                .ok_or(AggError::Overflow)?;
            let text = new.to_string();
            // `sdsfromlonglong`, then `hashTypeSet(.., HASH_SET_TAKE_VALUE)`.
            let s = sds_new(a, text.as_bytes())?;
            let r = if field.len() > max || text.len() > max {
                convert_and(a, o, |a, d| ht_set(a, d, field, Val::Take(s)))
            } else {
                let r = lp_set(a, o, cfg, field, LpValue::Int(new));
                // SAFETY: the listpack copied the value; the SDS is freed once.
                unsafe { sds_free(a, s) };
                r
            };
            let old_len = match r {
                Ok((old_len, _)) => old_len,
                Err(e) => {
                    if field.len() > max || text.len() > max {
                        // SAFETY: not taken by the dict on failure; freed once.
                        unsafe { sds_free(a, s) };
                    }
                    return Err(e.into());
                }
            };
            let d = text.len() as i64 - old_len.map_or(-(field.len() as i64), |n| n as i64);
            (Reply::Int(new), d)
        }
        _ => panic!("{} is not a hash command", cmd.name()),
    })
}

/// `hashTypeSet` on a listpack: replaces the value or appends the pair, then converts when
/// over `hash-max-listpack-entries`. Returns the old value's text length (`None`: inserted)
/// and whether the field is new.
fn lp_set<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    cfg: &AggConfig,
    field: &[u8],
    value: LpValue<'_>,
) -> Result<(Option<usize>, bool), AllocError> {
    let mut lp = lp_of(o);
    if let Some(f) = lp_find(lp, field) {
        let v = lp.next(f).expect("a value");
        let old = lp.get(v).text_len();
        lp.replace(a, v, value)?;
        set_robj(o, ENC_LISTPACK, lp.ptr());
        // Only a hash already over the limit can be here; a refused conversion leaves it so.
        if lp.len() / 2 > cfg.hash_max_listpack_entries {
            let _ = convert_and(a, o, |_, _| Ok(()));
        }
        return Ok((Some(old), false));
    }
    lp.append(a, LpValue::Str(field))?;
    set_robj(o, ENC_LISTPACK, lp.ptr());
    if let Err(e) = lp.append(a, value) {
        let last = lp.seek(-1).expect("the field just appended");
        lp.delete(a, last)
            .unwrap_or_else(|e2| panic!("hash: a refused append ({e}) cannot be taken back: {e2}"));
        set_robj(o, ENC_LISTPACK, lp.ptr());
        return Err(e);
    }
    set_robj(o, ENC_LISTPACK, lp.ptr());
    if lp.len() / 2 > cfg.hash_max_listpack_entries {
        if let Err(e) = convert_and(a, o, |_, _| Ok(())) {
            let pair = lp.seek(-2).expect("the pair just appended");
            if lp.delete_range(a, pair, 2).is_ok() {
                set_robj(o, ENC_LISTPACK, lp.ptr());
                return Err(e);
            }
        }
    }
    Ok((None, true))
}

/// A value for [`ht_set`]: bytes to copy (`sdsdup`), or an SDS to take.
enum Val<'a> {
    Copy(&'a [u8]),
    Take(NonNull<u8>),
}

/// `hashTypeSet` on a dict: `dictFind`, then a new value for the entry, or a new SDS field
/// and value and `dictAdd`. Returns the old value's text length (`None`: inserted) and
/// whether the field is new. On failure nothing is changed and a taken value is still the
/// caller's.
fn ht_set<A: Allocator>(
    a: &mut A,
    d: &mut Dict,
    field: &[u8],
    value: Val<'_>,
) -> Result<(Option<usize>, bool), AllocError> {
    let h = hash_key(field);
    if let Some(e) = d.lookup(a, field, h) {
        let v = match value {
            Val::Copy(b) => sds_new(a, b)?,
            Val::Take(s) => s,
        };
        let old = sds_val(e);
        let n = sds_bytes(old).len();
        // SAFETY: the old value belonged to the entry only; freed once.
        unsafe { sds_free(a, old) };
        set_val(e, v.as_ptr() as usize);
        return Ok((Some(n), false));
    }
    let f = sds_new(a, field)?;
    let v = match value {
        Val::Copy(b) => match sds_new(a, b) {
            Ok(v) => v,
            Err(e) => {
                // SAFETY: just made, not referenced.
                unsafe { sds_free(a, f) };
                return Err(e);
            }
        },
        Val::Take(s) => s,
    };
    if let Err(e) = d.add_new(a, f, h, v.as_ptr() as usize) {
        // SAFETY: just made, not referenced; a taken value stays the caller's.
        unsafe {
            sds_free(a, f);
            if matches!(value, Val::Copy(_)) {
                sds_free(a, v);
            }
        }
        return Err(e);
    }
    Ok((None, true))
}

fn ht_apply<A: Allocator>(
    a: &mut A,
    d: &mut Dict,
    cmd: &AggCmd<'_>,
    out: &mut Vec<u8>,
) -> Result<(Reply, i64), AggError> {
    Ok(match *cmd {
        AggCmd::HSet { field, value } => {
            let (old, added) = ht_set(a, d, field, Val::Copy(value))?;
            let dl = value.len() as i64 - old.map_or(-(field.len() as i64), |n| n as i64);
            (Reply::Int(i64::from(added)), dl)
        }
        AggCmd::HGet { field } => match d.lookup(a, field, hash_key(field)) {
            Some(e) => {
                out.extend_from_slice(sds_bytes(sds_val(e)));
                (Reply::Bulk, 0)
            }
            None => (Reply::Nil, 0),
        },
        AggCmd::HDel { field } => match d.unlink(a, field, hash_key(field)) {
            Some(e) => {
                // SAFETY: the unlinked entry's key and value are its own; each freed once
                // (`dictFreeUnlinkedEntry`: key, value, entry).
                let gone = unsafe {
                    let (k, v) = (entry_key(e), sds_val(e));
                    let gone = sds_bytes(k).len() + sds_bytes(v).len();
                    sds_free(a, k);
                    sds_free(a, v);
                    free_entry(a, e);
                    gone
                };
                d.resize_if_needed(a);
                (Reply::Int(1), -(gone as i64))
            }
            None => (Reply::Int(0), 0),
        },
        AggCmd::HGetAll => {
            d.for_each_entry(&mut |e| {
                // SAFETY: live entries of the dict.
                push_elem(out, sds_bytes(unsafe { entry_key(e) }));
                push_elem(out, sds_bytes(sds_val(e)));
            });
            (Reply::Array(2 * d.len()), 0)
        }
        AggCmd::HIncrBy { field, delta } => {
            let old = match d.lookup(a, field, hash_key(field)) {
                Some(e) => Some(parse_i64(sds_bytes(sds_val(e))).ok_or(AggError::NotAnInteger)?),
                None => None,
            };
            let new = old
                .unwrap_or(0)
                .checked_add(delta)
                .ok_or(AggError::Overflow)?;
            let s = sds_new(a, new.to_string().as_bytes())?;
            let (old_len, _) = ht_set(a, d, field, Val::Take(s)).inspect_err(|_| {
                // SAFETY: not taken on failure; freed once.
                unsafe { sds_free(a, s) }
            })?;
            let dl = digits(new) as i64 - old_len.map_or(-(field.len() as i64), |n| n as i64);
            (Reply::Int(new), dl)
        }
        _ => panic!("{} is not a hash command", cmd.name()),
    })
}

/// `hashTypeConvertListpack`, then `f` on the new dict, and only then the listpack freed and
/// the robj switched: on any failure the new dict is freed and the hash is as it was.
fn convert_and<A: Allocator, T>(
    a: &mut A,
    o: NonNull<u8>,
    f: impl FnOnce(&mut A, &mut Dict) -> Result<T, AllocError>,
) -> Result<T, AllocError> {
    let lp = lp_of(o);
    let dp = Dict::create(a)?;
    let mut d = Dict::default();
    let built = fill(a, &mut d, lp).and_then(|()| f(a, &mut d));
    match built {
        Ok(t) => {
            // SAFETY: `dp` is the new dict block; the listpack is replaced and freed once.
            unsafe {
                d.store(dp);
                lp.free(a);
            }
            set_robj(o, ENC_HT, dp);
            Ok(t)
        }
        Err(e) => {
            free_dict(a, &mut d, true);
            // SAFETY: the dict block was just made and is not referenced.
            unsafe { a.free(dp, DICT_STRUCT) };
            Err(e)
        }
    }
}

/// The pairs of the listpack into the (pre-sized) dict.
fn fill<A: Allocator>(a: &mut A, d: &mut Dict, lp: Listpack) -> Result<(), AllocError> {
    d.try_expand(a, lp.len() / 2)?;
    let mut off = lp.first();
    while let Some(fo) = off {
        let vo = lp.next(fo).expect("a value");
        let field = lp.get(fo).to_vec();
        let k = sds_new(a, &field)?;
        let v = match sds_new(a, &lp.get(vo).to_vec()) {
            Ok(v) => v,
            Err(e) => {
                // SAFETY: just made, not referenced.
                unsafe { sds_free(a, k) };
                return Err(e);
            }
        };
        if let Err(e) = d.add_new(a, k, hash_key(&field), v.as_ptr() as usize) {
            // SAFETY: just made, not referenced.
            unsafe {
                sds_free(a, k);
                sds_free(a, v);
            }
            return Err(e);
        }
        off = lp.next(vo);
    }
    Ok(())
}

/// Fields in the hash.
pub(super) fn len(o: NonNull<u8>) -> usize {
    match robj_encoding(o) {
        ENC_LISTPACK => lp_of(o).len() / 2,
        // SAFETY: a dict-encoded hash's `ptr` is its dict block.
        _ => unsafe { Dict::load(robj_ptr(o)) }.len(),
    }
}

/// The hash's encoding.
pub(super) fn encoding(o: NonNull<u8>) -> Encoding {
    match robj_encoding(o) {
        ENC_LISTPACK => Encoding::Listpack,
        _ => Encoding::Hashtable,
    }
}

/// Frees every allocation, the robj included (`freeHashObject`, then the robj).
///
/// # Safety
/// `o` is a live hash robj of `a`, not used afterwards.
pub(super) unsafe fn free<A: Allocator>(a: &mut A, o: NonNull<u8>) {
    // SAFETY: the caller's contract.
    unsafe {
        match robj_encoding(o) {
            ENC_LISTPACK => lp_of(o).free(a),
            _ => free_dict_obj(a, robj_ptr(o), true),
        }
        a.free(o, ROBJ);
    }
}

/// Calls `f(start address, requested size)` for every allocation the hash holds, robj
/// included.
pub(super) fn blocks(o: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
    f(o.as_ptr() as usize, ROBJ);
    match robj_encoding(o) {
        ENC_LISTPACK => {
            let lp = lp_of(o);
            f(lp.ptr().as_ptr() as usize, lp.bytes());
        }
        _ => dict_obj_blocks(robj_ptr(o), true, f),
    }
}

#[cfg(test)]
#[path = "hash_tests.rs"]
mod tests;
