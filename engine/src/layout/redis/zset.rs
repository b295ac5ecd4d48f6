//! The ZSET type of Redis 7.0 (`src/t_zset.c`) in allocator memory: a 16-byte robj
//! (`OBJ_ZSET`) over one of two encodings.
//!
//! - `OBJ_ENCODING_LISTPACK`: one listpack (`listpack.rs`) of member, score pairs in order of
//!   score, then member bytes (`zzlInsert`). A score is stored as `zzlInsertAt` stores it: an
//!   integer entry when `double2ll` takes it (integral, within +-2^62), else the text
//!   `d2string` writes, `%.17g` (`0.1` is `0.10000000000000001`), read back with `strtod`.
//! - `OBJ_ENCODING_SKIPLIST`: the `zset` struct, 16 bytes (`dict`, `zsl`); a dict (56-byte
//!   struct, bucket arrays, 24-byte entries whose key is the member's SDS, shared with the
//!   skiplist node, and whose value points at the node's score; `zsetDictType`); and the
//!   skiplist (`skiplist.rs`).
//!
//! A new key is a listpack unless `zset-max-listpack-entries` is 0 or the first member is
//! longer than `zset-max-listpack-value` (`zaddGenericCommand`). A listpack becomes a
//! skiplist when a new member would make it longer than the entries limit, or the member is
//! longer than the value limit, or the listpack would pass 1 GiB (`zsetAdd`, `lpSafeToAdd`);
//! `zsetConvert` builds the skiplist (the struct, the dict, the skiplist, then every member's
//! SDS, node and dict entry) and frees the listpack. ZREM and ZPOPMIN never convert back, and
//! shrink the dict under 10% full (`zsetDel`: `htNeedsResize`, `dictResize`).
//!
//! A command the allocator refuses midway leaves the sorted set as it was: a listpack changed
//! in several steps (an update is `zzlDelete` then `zzlInsert`) is put back in one `realloc`
//! to the size it had, a conversion is undone (the listpack rebuilt, the skiplist freed).
//! Allocations that live only during a command (ZPOPMIN's copy of the member) are not made.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::aggobj::{
    new_robj, robj_encoding, robj_ptr, sds_free, sds_new, set_robj, ENC_LISTPACK, ENC_SKIPLIST,
    OBJ_ZSET,
};
use super::dict::{entry_val, free_entry, set_val, Dict, DICT_STRUCT};
use super::list::push_value;
use super::listpack::{entry_size, Listpack, LpValue, LISTPACK_MAX_SAFETY_SIZE};
use super::object::ROBJ;
use super::skiplist::Zsl;
use crate::agg::model::range;
use crate::agg::{format_score, push_elem, AggCmd, AggConfig, AggError, Encoding, Reply};
use crate::util::{hash_key, read_at, write_at, Rng};
use zzl::{lp_score, restore, snapshot, zzl_find, zzl_insert};

/// `sizeof(zset)`.
pub(super) const ZSET: usize = 16;

/// The skiplist encoding's parts: the `zset` struct, its dict's struct, its skiplist.
#[derive(Debug, Clone, Copy)]
struct Sl {
    zs: NonNull<u8>,
    dict: NonNull<u8>,
    zsl: Zsl,
}

impl Sl {
    fn at(zs: NonNull<u8>) -> Sl {
        // SAFETY: a live `zset` struct: the dict and skiplist pointers.
        unsafe {
            Sl {
                zs,
                dict: NonNull::new_unchecked(read_at::<*mut u8>(zs, 0)),
                zsl: Zsl(NonNull::new_unchecked(read_at::<*mut u8>(zs, 8))),
            }
        }
    }

    fn load(self) -> Dict {
        // SAFETY: the zset's live `struct dict` block.
        unsafe { Dict::load(self.dict) }
    }

    fn store(self, d: &Dict) {
        // SAFETY: as above.
        unsafe { d.store(self.dict) }
    }

    /// `createZsetObject`'s and `zsetConvert`'s start: the struct, `dictCreate`, `zslCreate`.
    fn create<A: Allocator>(a: &mut A) -> Result<Sl, AllocError> {
        let zs = a.alloc(ZSET)?.ptr;
        let dict = match Dict::create(a) {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: just allocated.
                unsafe { a.free(zs, ZSET) };
                return Err(e);
            }
        };
        let zsl = match Zsl::create(a) {
            Ok(z) => z,
            Err(e) => {
                // SAFETY: both just allocated; the dict is empty.
                unsafe {
                    a.free(dict, DICT_STRUCT);
                    a.free(zs, ZSET);
                }
                return Err(e);
            }
        };
        // SAFETY: the fresh 16-byte struct.
        unsafe {
            write_at(zs, 0, dict.as_ptr());
            write_at(zs, 8, zsl.0.as_ptr());
        }
        Ok(Sl { zs, dict, zsl })
    }

    /// `freeZsetObject`'s skiplist half: `dictRelease` (entries, tables, struct; the keys
    /// belong to the skiplist), `zslFree`, the struct.
    ///
    /// # Safety
    /// The parts are live and not used afterwards.
    unsafe fn free<A: Allocator>(self, a: &mut A) {
        let mut d = self.load();
        d.clear(a, &mut |_, _, _| {});
        // SAFETY: the caller's contract; each block is freed once.
        unsafe {
            a.free(self.dict, DICT_STRUCT);
            self.zsl.free(a);
            a.free(self.zs, ZSET);
        }
    }

    /// A new member (`zsetAdd`'s skiplist branch, after `dictFind`): `sdsdup`, `zslInsert`,
    /// `dictAdd`. On an error nothing changed.
    fn insert<A: Allocator>(
        self,
        a: &mut A,
        d: &mut Dict,
        rng: &mut Rng,
        member: &[u8],
        score: f64,
    ) -> Result<(), AllocError> {
        let ele = sds_new(a, member)?;
        let node = match self.zsl.insert(a, rng, score, ele) {
            Ok(n) => n,
            Err(e) => {
                // SAFETY: the SDS was just made and belongs to nothing.
                unsafe { sds_free(a, ele) };
                return Err(e);
            }
        };
        if let Err(e) = d.add_new(a, ele, hash_key(member), node.score_addr()) {
            self.zsl.delete(a, score, member);
            return Err(e);
        }
        Ok(())
    }

    /// `zsetRemoveFromSkiplist` and `zsetDel`'s resize: unlinks the dict entry, frees it, then
    /// the node and its SDS (`zslDelete`); shrinks the dict if under 10% full.
    fn delete<A: Allocator>(self, a: &mut A, member: &[u8]) -> bool {
        let mut d = self.load();
        let found = match d.unlink(a, member, hash_key(member)) {
            Some(e) => {
                let score = score_at(e);
                // SAFETY: unlinked; its key and value belong to the skiplist.
                unsafe { free_entry(a, e) };
                let deleted = self.zsl.delete(a, score, member);
                debug_assert!(deleted, "the dict and the skiplist agree");
                d.resize_if_needed(a);
                true
            }
            None => false,
        };
        self.store(&d);
        found
    }
}

/// The score a zset dict entry's value points at (the node's).
fn score_at(e: NonNull<u8>) -> f64 {
    // SAFETY: a live entry whose value is the address of a live node's score.
    unsafe { (entry_val(e) as *const f64).read_unaligned() }
}

enum Repr {
    Lp(Listpack),
    Sl(Sl),
}

fn repr(o: NonNull<u8>) -> Repr {
    let p = robj_ptr(o);
    if robj_encoding(o) == ENC_LISTPACK {
        // SAFETY: `o` is a live zset robj; its pointer is the listpack.
        Repr::Lp(unsafe { Listpack::from_ptr(p) })
    } else {
        Repr::Sl(Sl::at(p))
    }
}

/// Points the robj at its listpack again (it moves on every resize).
fn put_lp(o: NonNull<u8>, lp: Listpack) {
    set_robj(o, ENC_LISTPACK, lp.ptr());
}

/// `zsetConvert(zobj, OBJ_ENCODING_SKIPLIST)`: builds the skiplist encoding from the listpack,
/// frees the listpack and points the robj at the new struct. Returns the listpack's bytes, to
/// undo the conversion if the command fails later. On an error nothing changed.
fn convert<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    lp: Listpack,
    rng: &mut Rng,
) -> Result<Vec<u8>, AllocError> {
    let sl = Sl::create(a)?;
    let mut d = sl.load();
    let mut at = lp.first();
    while let Some(e) = at {
        let s = lp.next(e).expect("a score follows its member");
        let member = lp.get(e).to_vec();
        if let Err(err) = sl.insert(a, &mut d, rng, &member, lp_score(lp.get(s))) {
            sl.store(&d);
            // SAFETY: the new parts belong to nothing yet.
            unsafe { sl.free(a) };
            return Err(err);
        }
        at = lp.next(s);
    }
    sl.store(&d);
    let saved = snapshot(lp);
    // SAFETY: the listpack is replaced by the skiplist encoding; freed once.
    unsafe {
        lp.free(a);
        set_robj(o, ENC_SKIPLIST, sl.zs);
    }
    Ok(saved)
}

/// Undoes [`convert`]: the listpack rebuilt from its bytes, the skiplist freed. If the
/// listpack cannot be had, the skiplist stays (the same members and scores).
fn unconvert<A: Allocator>(a: &mut A, o: NonNull<u8>, sl: Sl, saved: &[u8]) {
    let Ok(b) = a.alloc(saved.len()) else { return };
    // SAFETY: a fresh block of `saved.len()` bytes becomes the listpack again; the skiplist
    // parts are freed once.
    unsafe {
        std::ptr::copy_nonoverlapping(saved.as_ptr(), b.ptr.as_ptr(), saved.len());
        set_robj(o, ENC_LISTPACK, b.ptr);
        sl.free(a);
    }
}

/// `zsetAdd` with no flags or `ZADD_IN_INCR`: returns whether the member is new, and its
/// score now.
fn zset_add<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    cfg: &AggConfig,
    rng: &mut Rng,
    member: &[u8],
    mut score: f64,
    incr: bool,
) -> Result<(bool, f64), AggError> {
    if score.is_nan() {
        return Err(AggError::NotANumber);
    }
    let mut converted = None;
    if let Repr::Lp(mut lp) = repr(o) {
        if let Some((e, cur)) = zzl_find(lp, member) {
            if incr {
                score += cur;
                if score.is_nan() {
                    return Err(AggError::NotANumber);
                }
            }
            if score != cur {
                // `zzlDelete` then `zzlInsert`.
                let saved = snapshot(lp);
                let changed = lp.delete_range(a, e, 2).and_then(|()| {
                    zzl_insert(a, &mut lp, member, score).inspect_err(|_| {
                        restore(a, &mut lp, &saved);
                    })
                });
                put_lp(o, lp);
                changed?;
            }
            return Ok((false, score));
        }
        if lp.len() / 2 + 1 > cfg.zset_max_listpack_entries
            || member.len() > cfg.zset_max_listpack_value
            || lp.bytes() + member.len() > LISTPACK_MAX_SAFETY_SIZE
        {
            converted = Some(convert(a, o, lp, rng)?);
        } else {
            let added = zzl_insert(a, &mut lp, member, score);
            put_lp(o, lp);
            added?;
            return Ok((true, score));
        }
    }
    let Repr::Sl(sl) = repr(o) else {
        unreachable!("converted above")
    };
    let mut d = sl.load();
    let result = match d.lookup(a, member, hash_key(member)) {
        Some(e) => {
            let cur = score_at(e);
            if incr {
                score += cur;
            }
            if score.is_nan() {
                Err(AggError::NotANumber)
            } else if score != cur {
                sl.zsl
                    .update_score(a, rng, cur, member, score)
                    .map(|node| set_val(e, node.score_addr()))
                    .map(|()| (false, score))
                    .map_err(AggError::from)
            } else {
                Ok((false, score))
            }
        }
        None => sl
            .insert(a, &mut d, rng, member, score)
            .map(|()| (true, score))
            .map_err(AggError::from),
    };
    sl.store(&d);
    if let (Err(_), Some(saved)) = (&result, converted) {
        unconvert(a, o, sl, &saved);
    }
    result
}

/// `zsetDel`: whether the member was there.
fn zset_del<A: Allocator>(a: &mut A, o: NonNull<u8>, member: &[u8]) -> Result<bool, AllocError> {
    match repr(o) {
        Repr::Lp(mut lp) => {
            let Some((e, _)) = zzl_find(lp, member) else {
                return Ok(false);
            };
            let deleted = lp.delete_range(a, e, 2);
            put_lp(o, lp);
            deleted.map(|()| true)
        }
        Repr::Sl(sl) => Ok(sl.delete(a, member)),
    }
}

/// Creates the empty object Redis creates for `cmd`'s first write (`zaddGenericCommand`: a
/// listpack, or the skiplist encoding when `zset-max-listpack-entries` is 0 or the member is
/// longer than `zset-max-listpack-value`); returns the robj.
pub(super) fn create<A: Allocator>(
    a: &mut A,
    cfg: &AggConfig,
    cmd: &AggCmd<'_>,
) -> Result<NonNull<u8>, AllocError> {
    let member_len = match *cmd {
        AggCmd::ZAdd { member, .. } | AggCmd::ZIncrBy { member, .. } => member.len(),
        _ => 0,
    };
    if cfg.zset_max_listpack_entries == 0 || cfg.zset_max_listpack_value < member_len {
        let sl = Sl::create(a)?;
        new_robj(a, OBJ_ZSET, ENC_SKIPLIST, sl.zs).inspect_err(|_| {
            // SAFETY: the parts were just made and belong to nothing.
            unsafe { sl.free(a) }
        })
    } else {
        let lp = Listpack::new(a)?;
        new_robj(a, OBJ_ZSET, ENC_LISTPACK, lp.ptr()).inspect_err(|_| {
            // SAFETY: just made; belongs to nothing.
            unsafe { lp.free(a) }
        })
    }
}

/// Runs one command; appends reply bytes to `out` (see `Reply`'s docs); returns the reply and
/// the change in payload bytes (sum of member lengths as the client sent them).
pub(super) fn apply<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    cfg: &AggConfig,
    cmd: &AggCmd<'_>,
    rng: &mut Rng,
    out: &mut Vec<u8>,
) -> Result<(Reply, i64), AggError> {
    let n = |m: &[u8]| m.len() as i64;
    Ok(match *cmd {
        AggCmd::ZAdd { member, score } => {
            let (added, _) = zset_add(a, o, cfg, rng, member, score, false)?;
            (
                Reply::Int(i64::from(added)),
                if added { n(member) } else { 0 },
            )
        }
        AggCmd::ZIncrBy { member, delta } => {
            let (added, score) = zset_add(a, o, cfg, rng, member, delta, true)?;
            (Reply::Score(score), if added { n(member) } else { 0 })
        }
        AggCmd::ZRem { member } => match zset_del(a, o, member)? {
            true => (Reply::Int(1), -n(member)),
            false => (Reply::Int(0), 0),
        },
        AggCmd::ZScore { member } => {
            let found = match repr(o) {
                Repr::Lp(lp) => zzl_find(lp, member).map(|(_, s)| s),
                Repr::Sl(sl) => {
                    let mut d = sl.load();
                    let e = d.lookup(a, member, hash_key(member));
                    sl.store(&d);
                    e.map(score_at)
                }
            };
            (found.map_or(Reply::Nil, Reply::Score), 0)
        }
        AggCmd::ZRange { start, stop } => {
            let (from, to) = range(start, stop, len(o));
            match repr(o) {
                Repr::Lp(lp) => {
                    let mut e = lp.seek(2 * from as i64);
                    for _ in from..to {
                        let at = e.expect("a member in range");
                        push_value(out, lp.get(at));
                        e = lp.next(at).and_then(|s| lp.next(s));
                    }
                }
                Repr::Sl(sl) => {
                    let mut node = if from > 0 {
                        sl.zsl.by_rank(from + 1)
                    } else {
                        sl.zsl.first()
                    };
                    for _ in from..to {
                        let at = node.expect("a member in range");
                        push_elem(out, at.member());
                        node = at.next();
                    }
                }
            }
            (Reply::Array(to - from), 0)
        }
        AggCmd::ZPopMin => {
            let first = match repr(o) {
                Repr::Lp(lp) => lp.first().map(|e| {
                    let s = lp.next(e).expect("a score follows its member");
                    (lp.get(e).to_vec(), lp_score(lp.get(s)))
                }),
                Repr::Sl(sl) => sl.zsl.first().map(|x| (x.member().to_vec(), x.score())),
            };
            let Some((member, score)) = first else {
                return Ok((Reply::Array(0), 0));
            };
            zset_del(a, o, &member)?;
            push_elem(out, &member);
            let mut text = Vec::new();
            format_score(score, &mut text);
            push_elem(out, &text);
            (Reply::Array(2), -n(&member))
        }
        _ => unreachable!("{} is not a sorted-set command", cmd.name()),
    })
}

/// The number of members.
pub(super) fn len(o: NonNull<u8>) -> usize {
    match repr(o) {
        Repr::Lp(lp) => lp.len() / 2,
        Repr::Sl(sl) => sl.zsl.len(),
    }
}

/// `listpack` or `skiplist`.
pub(super) fn encoding(o: NonNull<u8>) -> Encoding {
    match repr(o) {
        Repr::Lp(_) => Encoding::Listpack,
        Repr::Sl(_) => Encoding::Skiplist,
    }
}

/// Frees every allocation, the robj included (`decrRefCount`: `freeZsetObject`, then the
/// robj).
///
/// # Safety
/// `o` is a live zset robj of `a`, not used afterwards.
pub(super) unsafe fn free<A: Allocator>(a: &mut A, o: NonNull<u8>) {
    // SAFETY: the caller's contract; every part is freed once.
    unsafe {
        match repr(o) {
            Repr::Lp(lp) => lp.free(a),
            Repr::Sl(sl) => sl.free(a),
        }
        a.free(o, ROBJ);
    }
}

/// Calls f(start address, requested size) for every allocation the object holds, robj
/// included.
pub(super) fn blocks(o: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
    f(o.as_ptr() as usize, ROBJ);
    match repr(o) {
        Repr::Lp(lp) => f(lp.ptr().as_ptr() as usize, lp.bytes()),
        Repr::Sl(sl) => {
            f(sl.zs.as_ptr() as usize, ZSET);
            f(sl.dict.as_ptr() as usize, DICT_STRUCT);
            sl.load().table_and_entry_blocks(f);
            sl.zsl.blocks(f);
        }
    }
}

#[path = "zset_listpack.rs"]
mod zzl;

#[cfg(test)]
#[path = "zset_tests.rs"]
mod tests;
