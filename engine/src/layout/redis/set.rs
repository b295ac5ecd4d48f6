//! The SET type as Redis 7.0 holds it (`src/t_set.c`): a 16-byte robj (`OBJ_SET`) whose `ptr`
//! is an intset (`OBJ_ENCODING_INTSET`) while every member is an integer (`string2ll`'s strict
//! rule) and there are at most `set-max-intset-entries` of them (capped at 2^30), or a dict of
//! SDS members with null values (`OBJ_ENCODING_HT`). Redis 7.0 has no listpack sets (7.2
//! added them, with `set-max-listpack-entries` and `set-max-listpack-value`).
//!
//! - `setTypeCreate`: an intset (`intsetNew`, 8 bytes) when the first member is an integer,
//!   else an empty dict (`dictCreate`, 56 bytes, no table until the first add); then the robj.
//! - SADD on an intset: `intsetAdd` (upgrading the width when needed), then a conversion when
//!   the set has more than `set-max-intset-entries` members; a non-integer member converts
//!   first and is then added (`sdsdup`, `dictAdd`).
//! - The conversion (`setTypeConvert`): `dictCreate`, `dictExpand` to the member count
//!   (pre-sized), then per member an SDS (`sdsfromlonglong`) and a 24-byte entry, then the
//!   intset is freed. A set never converts back.
//! - SADD on a dict: `dictAddRaw` (rehash step, `_dictExpandIfNeeded` even when the member is
//!   there, the entry), then the member's SDS (`sdsdup`).
//! - SREM on a dict: `dictDelete` (rehash step), then `htNeedsResize`/`dictResize`.
//! - SPOP: `intsetRandom` and `intsetRemove`, or `dictGetFairRandomKey` (up to 15 rehash
//!   steps in `dictGetSomeKeys`) and `setTypeRemove`. The string object Redis makes for the
//!   reply is client-side and not modelled, as command arguments are not.
//!
//! A failed command leaves the set as it was: a conversion builds the dict, with the new
//! member when it is the cause, before the intset is freed (Redis frees the intset before
//! adding a non-integer member); an insert followed by a refused conversion is taken back,
//! the intset's width included (should the allocator refuse that shrink too, the member stays
//! and the set stays an intset until the next insert converts it). A rehash step a refused
//! command took stays taken, as a lookup's does.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::aggobj::{
    dict_obj_blocks, free_dict, free_dict_obj, new_robj, robj_encoding, robj_ptr, sds_bytes,
    sds_free, sds_new, set_robj, with_dict, ENC_HT, ENC_INTSET, OBJ_SET,
};
use super::dict::{entry_key, free_entry, Added, Dict, DICT_STRUCT};
use super::intset::Intset;
use super::object::{parse_i64, ROBJ};
use crate::agg::{push_elem, AggCmd, AggConfig, AggError, Encoding, Reply};
use crate::util::{hash_key, Rng};

/// Creates the empty object Redis creates for `cmd`'s first write (`setTypeCreate`: an intset
/// when the first member is an integer); returns the robj.
pub(super) fn create<A: Allocator>(
    a: &mut A,
    _cfg: &AggConfig,
    cmd: &AggCmd<'_>,
) -> Result<NonNull<u8>, AllocError> {
    let int = matches!(cmd, AggCmd::SAdd { member } if parse_i64(member).is_some());
    if int {
        let is = Intset::new(a)?;
        new_robj(a, OBJ_SET, ENC_INTSET, is.ptr()).inspect_err(|_| {
            // SAFETY: the intset was just made and is not referenced.
            unsafe { is.free(a) }
        })
    } else {
        let dp = Dict::create(a)?;
        new_robj(a, OBJ_SET, ENC_HT, dp).inspect_err(|_| {
            // SAFETY: the dict block was just made, empty, and is not referenced.
            unsafe { a.free(dp, DICT_STRUCT) }
        })
    }
}

fn is_of(o: NonNull<u8>) -> Intset {
    // SAFETY: an intset-encoded set's `ptr` is its live intset.
    unsafe { Intset::from_ptr(robj_ptr(o)) }
}

/// Runs one command; appends reply bytes to `out` (see `Reply`'s docs); returns the reply and
/// the change in payload bytes (member text lengths).
pub(super) fn apply<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    cfg: &AggConfig,
    cmd: &AggCmd<'_>,
    rng: &mut Rng,
    out: &mut Vec<u8>,
) -> Result<(Reply, i64), AggError> {
    match robj_encoding(o) {
        ENC_INTSET => intset_apply(a, o, cfg, cmd, rng, out),
        ENC_HT => with_dict(robj_ptr(o), |d| ht_apply(a, d, cmd, rng, out)),
        e => panic!("set: unknown encoding {e}"),
    }
}

fn intset_apply<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    cfg: &AggConfig,
    cmd: &AggCmd<'_>,
    rng: &mut Rng,
    out: &mut Vec<u8>,
) -> Result<(Reply, i64), AggError> {
    let mut is = is_of(o);
    let n = |m: &[u8]| m.len() as i64;
    Ok(match *cmd {
        AggCmd::SAdd { member } => {
            let Some(v) = parse_i64(member) else {
                // Not an integer: convert, with the member added to the new dict.
                convert_and(a, o, |a, d| {
                    let s = sds_new(a, member)?;
                    d.add_new(a, s, hash_key(member), 0)
                        .map(|_| ())
                        .inspect_err(|_| {
                            // SAFETY: just made, not referenced.
                            unsafe { sds_free(a, s) }
                        })
                })?;
                return Ok((Reply::Int(1), n(member)));
            };
            let enc = is.encoding();
            if !is.add(a, v)? {
                return Ok((Reply::Int(0), 0));
            }
            set_robj(o, ENC_INTSET, is.ptr());
            if is.len() > cfg.set_max_intset_entries.min(1 << 30) {
                if let Err(e) = convert_and(a, o, |_, _| Ok(())) {
                    if is.undo_add(a, v, enc).is_ok() {
                        set_robj(o, ENC_INTSET, is.ptr());
                        return Err(e.into());
                    }
                }
            }
            (Reply::Int(1), n(member))
        }
        AggCmd::SRem { member } => match parse_i64(member) {
            Some(v) if is.remove(a, v)? => {
                set_robj(o, ENC_INTSET, is.ptr());
                (Reply::Int(1), -n(member))
            }
            _ => (Reply::Int(0), 0),
        },
        AggCmd::SIsMember { member } => {
            let found = parse_i64(member).is_some_and(|v| is.find(v));
            (Reply::Int(i64::from(found)), 0)
        }
        AggCmd::SPop => {
            if is.len() == 0 {
                return Ok((Reply::Nil, 0));
            }
            let v = is.random(rng);
            is.remove(a, v)?;
            set_robj(o, ENC_INTSET, is.ptr());
            let text = v.to_string();
            out.extend_from_slice(text.as_bytes());
            (Reply::Bulk, -(text.len() as i64))
        }
        AggCmd::SCard => (Reply::Int(is.len() as i64), 0),
        AggCmd::SMembers => {
            for v in is.iter() {
                push_elem(out, v.to_string().as_bytes());
            }
            (Reply::Array(is.len()), 0)
        }
        _ => panic!("{} is not a set command", cmd.name()),
    })
}

/// Unlinks and frees a member (`dictDelete` with the set's `sdsfree` key destructor), then
/// shrinks the table if it is under 10% full. Returns the member's length, if it was there.
fn remove<A: Allocator>(a: &mut A, d: &mut Dict, member: &[u8]) -> Option<usize> {
    let e = d.unlink(a, member, hash_key(member))?;
    // SAFETY: the unlinked entry and its key are its own; each freed once.
    unsafe {
        sds_free(a, entry_key(e));
        free_entry(a, e);
    }
    d.resize_if_needed(a);
    Some(member.len())
}

fn ht_apply<A: Allocator>(
    a: &mut A,
    d: &mut Dict,
    cmd: &AggCmd<'_>,
    rng: &mut Rng,
    out: &mut Vec<u8>,
) -> Result<(Reply, i64), AggError> {
    Ok(match *cmd {
        AggCmd::SAdd { member } => {
            match d.add_keyed(a, member, hash_key(member), 0, |a| sds_new(a, member))? {
                Added::Existing(_) => (Reply::Int(0), 0),
                Added::New(_) => (Reply::Int(1), member.len() as i64),
            }
        }
        AggCmd::SRem { member } => match remove(a, d, member) {
            Some(n) => (Reply::Int(1), -(n as i64)),
            None => (Reply::Int(0), 0),
        },
        AggCmd::SIsMember { member } => {
            let found = d.lookup(a, member, hash_key(member)).is_some();
            (Reply::Int(i64::from(found)), 0)
        }
        AggCmd::SPop => match d.fair_random_key(a, rng) {
            Some(e) => {
                // SAFETY: a live entry: its key is a live SDS string.
                let m = sds_bytes(unsafe { entry_key(e) }).to_vec();
                let n = remove(a, d, &m).expect("the member just picked");
                out.extend_from_slice(&m);
                (Reply::Bulk, -(n as i64))
            }
            None => (Reply::Nil, 0),
        },
        AggCmd::SCard => (Reply::Int(d.len() as i64), 0),
        AggCmd::SMembers => {
            d.for_each_entry(&mut |e| {
                // SAFETY: a live entry: its key is a live SDS string.
                push_elem(out, sds_bytes(unsafe { entry_key(e) }));
            });
            (Reply::Array(d.len()), 0)
        }
        _ => panic!("{} is not a set command", cmd.name()),
    })
}

/// `setTypeConvert(o, OBJ_ENCODING_HT)`, then `f` on the new dict, and only then the intset
/// freed and the robj switched: on any failure the new dict is freed and the set is as it
/// was.
fn convert_and<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    f: impl FnOnce(&mut A, &mut Dict) -> Result<(), AllocError>,
) -> Result<(), AllocError> {
    let is = is_of(o);
    let dp = Dict::create(a)?;
    let mut d = Dict::default();
    match fill(a, &mut d, is).and_then(|()| f(a, &mut d)) {
        Ok(()) => {
            // SAFETY: `dp` is the new dict block; the intset is replaced and freed once.
            unsafe {
                d.store(dp);
                is.free(a);
            }
            set_robj(o, ENC_HT, dp);
            Ok(())
        }
        Err(e) => {
            free_dict(a, &mut d, false);
            // SAFETY: the dict block was just made and is not referenced.
            unsafe { a.free(dp, DICT_STRUCT) };
            Err(e)
        }
    }
}

/// The intset's members into the (pre-sized) dict, as `sdsfromlonglong` strings.
fn fill<A: Allocator>(a: &mut A, d: &mut Dict, is: Intset) -> Result<(), AllocError> {
    d.try_expand(a, is.len())?;
    for v in is.iter() {
        let text = v.to_string();
        let s = sds_new(a, text.as_bytes())?;
        d.add_new(a, s, hash_key(text.as_bytes()), 0)
            .inspect_err(|_| {
                // SAFETY: just made, not referenced.
                unsafe { sds_free(a, s) }
            })?;
    }
    Ok(())
}

/// Members in the set.
pub(super) fn len(o: NonNull<u8>) -> usize {
    match robj_encoding(o) {
        ENC_INTSET => is_of(o).len(),
        // SAFETY: a dict-encoded set's `ptr` is its dict block.
        _ => unsafe { Dict::load(robj_ptr(o)) }.len(),
    }
}

/// The set's encoding.
pub(super) fn encoding(o: NonNull<u8>) -> Encoding {
    match robj_encoding(o) {
        ENC_INTSET => Encoding::Intset,
        _ => Encoding::Hashtable,
    }
}

/// Frees every allocation, the robj included (`freeSetObject`, then the robj).
///
/// # Safety
/// `o` is a live set robj of `a`, not used afterwards.
pub(super) unsafe fn free<A: Allocator>(a: &mut A, o: NonNull<u8>) {
    // SAFETY: the caller's contract.
    unsafe {
        match robj_encoding(o) {
            ENC_INTSET => is_of(o).free(a),
            _ => free_dict_obj(a, robj_ptr(o), false),
        }
        a.free(o, ROBJ);
    }
}

/// Calls `f(start address, requested size)` for every allocation the set holds, robj
/// included.
pub(super) fn blocks(o: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
    f(o.as_ptr() as usize, ROBJ);
    match robj_encoding(o) {
        ENC_INTSET => {
            let is = is_of(o);
            f(is.ptr().as_ptr() as usize, is.blob_len());
        }
        _ => dict_obj_blocks(robj_ptr(o), false, f),
    }
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
