//! The LIST type of Redis 7.0 (`src/t_list.c`): a 16-byte robj (`OBJ_LIST`,
//! `OBJ_ENCODING_QUICKLIST`) over a quicklist (`quicklist.rs`), whatever the list's size.
//!
//! LPUSH of a missing key makes the quicklist (40 bytes), then the robj
//! (`createQuicklistObject`), with the fill of `list-max-listpack-size` at that moment; the
//! list keeps it. LRANGE and LTRIM take Redis's `start stop` (negative from the end, clamped;
//! `addListRangeReply`, `ltrimCommand`); LTRIM removes `start` elements from the head and the
//! rest past `stop` from the tail, as two `quicklistDelRange` calls.
//!
//! Allocations that live only during a command (the popped element's string object, the
//! iterators, the client's argument vector and reply) are not made: they are freed before the
//! command returns, and the other layouts do not make theirs either.

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::aggobj::{new_robj, robj_ptr, ENC_QUICKLIST, OBJ_LIST};
use super::listpack::LpValue;
use super::object::ROBJ;
use super::quicklist::Quicklist;
use crate::agg::model::range;
use crate::agg::{AggCmd, AggConfig, AggError, Encoding, Reply};
use crate::util::Rng;

fn quicklist(o: NonNull<u8>) -> Quicklist {
    // `o` is a live list robj; its pointer is the quicklist.
    Quicklist(robj_ptr(o))
}

/// Appends one array element (see [`Reply`]) from a listpack value, its text written in place.
pub(super) fn push_value(out: &mut Vec<u8>, v: LpValue<'_>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    v.write_text(out);
    let n = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&n.to_le_bytes());
}

/// Creates the empty object Redis creates for `cmd`'s first write; returns the robj.
pub(super) fn create<A: Allocator>(
    a: &mut A,
    cfg: &AggConfig,
    _cmd: &AggCmd<'_>,
) -> Result<NonNull<u8>, AllocError> {
    let ql = Quicklist::create(a, cfg.list_max_listpack_size)?;
    new_robj(a, OBJ_LIST, ENC_QUICKLIST, ql.0).inspect_err(|_| {
        // SAFETY: the quicklist was just made and belongs to nothing.
        unsafe { ql.free(a) }
    })
}

/// Runs one command; appends reply bytes to `out` (see `Reply`'s docs); returns the reply and
/// the change in payload bytes (sum of element lengths as the client sent them).
pub(super) fn apply<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    _cfg: &AggConfig,
    cmd: &AggCmd<'_>,
    _rng: &mut Rng,
    out: &mut Vec<u8>,
) -> Result<(Reply, i64), AggError> {
    let ql = quicklist(o);
    Ok(match *cmd {
        AggCmd::LPush { elem } | AggCmd::RPush { elem } => {
            ql.push(a, elem, matches!(cmd, AggCmd::LPush { .. }))?;
            (Reply::Int(ql.count() as i64), elem.len() as i64)
        }
        AggCmd::LPop | AggCmd::RPop => match ql.pop(a, matches!(cmd, AggCmd::LPop), out)? {
            Some(n) => (Reply::Bulk, -(n as i64)),
            None => (Reply::Nil, 0),
        },
        AggCmd::LRange { start, stop } => {
            let (from, to) = range(start, stop, ql.count());
            ql.for_range(from, to - from, &mut |v| push_value(out, v));
            (Reply::Array(to - from), 0)
        }
        AggCmd::LTrim { start, stop } => {
            let n = ql.count();
            let (from, to) = match range(start, stop, n) {
                (0, 0) => (n, n),
                r => r,
            };
            let mut gone = 0;
            let mut count = |v: LpValue<'_>| gone += v.text_len() as i64;
            ql.for_range(0, from, &mut count);
            ql.for_range(to, n - to, &mut count);
            ql.trim(a, from, n - to)?;
            (Reply::Ok, -gone)
        }
        _ => unreachable!("{} is not a list command", cmd.name()),
    })
}

/// The number of elements.
pub(super) fn len(o: NonNull<u8>) -> usize {
    quicklist(o).count()
}

/// Always `quicklist` in Redis 7.0.
pub(super) fn encoding(_o: NonNull<u8>) -> Encoding {
    Encoding::Quicklist
}

/// Frees every allocation, the robj included (`decrRefCount`: `quicklistRelease`, then the
/// robj).
///
/// # Safety
/// `o` is a live list robj of `a`, not used afterwards.
pub(super) unsafe fn free<A: Allocator>(a: &mut A, o: NonNull<u8>) {
    // SAFETY: the caller's contract.
    unsafe {
        quicklist(o).free(a);
        a.free(o, ROBJ);
    }
}

/// Calls f(start address, requested size) for every allocation the object holds, robj
/// included.
pub(super) fn blocks(o: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
    f(o.as_ptr() as usize, ROBJ);
    quicklist(o).blocks(f);
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
