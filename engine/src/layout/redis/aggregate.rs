//! The layout's aggregate keys: a main-dict entry whose value is an aggregate's `robj`, and the
//! dispatch of every aggregate command to its type's module by the robj's type nibble
//! (`OBJ_LIST`, `OBJ_SET`, `OBJ_ZSET`, `OBJ_HASH` in Redis's `server.h`).

use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::aggobj::{
    digits, robj_encoding, robj_ptr, robj_type, with_dict, ENC_HT, ENC_INTSET, ENC_LISTPACK,
    OBJ_HASH, OBJ_LIST, OBJ_SET, OBJ_ZSET,
};
use super::dict::{entry_key, entry_val};
use super::intset::Intset;
use super::listpack::{Listpack, LpValue};
use super::quicklist::Quicklist;
use super::sds::sds_at;
use super::skiplist::Zsl;
use super::{hash, list, set, zset};
use crate::agg::model::AggData;
use crate::agg::{split_elems, AggCmd, AggConfig, AggError, AggType, Encoding, Reply};
use crate::util::{read_at, Rng};

/// The aggregate type of robj `o`, `None` for a string.
pub(super) fn agg_type(o: NonNull<u8>) -> Option<AggType> {
    match robj_type(o) {
        OBJ_LIST => Some(AggType::List),
        OBJ_SET => Some(AggType::Set),
        OBJ_ZSET => Some(AggType::Zset),
        OBJ_HASH => Some(AggType::Hash),
        _ => None,
    }
}

fn type_of(o: NonNull<u8>) -> AggType {
    agg_type(o).expect("an aggregate robj")
}

/// The empty object `cmd`'s first write creates.
pub(super) fn create<A: Allocator>(
    a: &mut A,
    cfg: &AggConfig,
    cmd: &AggCmd<'_>,
) -> Result<NonNull<u8>, AllocError> {
    match cmd.agg_type() {
        AggType::Hash => hash::create(a, cfg, cmd),
        AggType::Set => set::create(a, cfg, cmd),
        AggType::List => list::create(a, cfg, cmd),
        AggType::Zset => zset::create(a, cfg, cmd),
    }
}

/// Runs `cmd` on aggregate `o` (of `cmd`'s type).
pub(super) fn apply<A: Allocator>(
    a: &mut A,
    o: NonNull<u8>,
    cfg: &AggConfig,
    cmd: &AggCmd<'_>,
    rng: &mut Rng,
    out: &mut Vec<u8>,
) -> Result<(Reply, i64), AggError> {
    match type_of(o) {
        AggType::Hash => hash::apply(a, o, cfg, cmd, rng, out),
        AggType::Set => set::apply(a, o, cfg, cmd, rng, out),
        AggType::List => list::apply(a, o, cfg, cmd, rng, out),
        AggType::Zset => zset::apply(a, o, cfg, cmd, rng, out),
    }
}

/// Elements.
pub(super) fn len(o: NonNull<u8>) -> usize {
    match type_of(o) {
        AggType::Hash => hash::len(o),
        AggType::Set => set::len(o),
        AggType::List => list::len(o),
        AggType::Zset => zset::len(o),
    }
}

/// The encoding (`OBJECT ENCODING`).
pub(super) fn encoding(o: NonNull<u8>) -> Encoding {
    match type_of(o) {
        AggType::Hash => hash::encoding(o),
        AggType::Set => set::encoding(o),
        AggType::List => list::encoding(o),
        AggType::Zset => zset::encoding(o),
    }
}

/// Frees the aggregate, its robj included.
///
/// # Safety
/// `o` is a live aggregate robj of `a`, freed once.
pub(super) unsafe fn free<A: Allocator>(a: &mut A, o: NonNull<u8>) {
    // SAFETY: the caller's contract.
    unsafe {
        match type_of(o) {
            AggType::Hash => hash::free(a, o),
            AggType::Set => set::free(a, o),
            AggType::List => list::free(a, o),
            AggType::Zset => zset::free(a, o),
        }
    }
}

/// Every allocation the aggregate holds, its robj included.
pub(super) fn blocks(o: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
    match type_of(o) {
        AggType::Hash => hash::blocks(o, f),
        AggType::Set => set::blocks(o, f),
        AggType::List => list::blocks(o, f),
        AggType::Zset => zset::blocks(o, f),
    }
}

fn value_len(v: LpValue<'_>) -> usize {
    match v {
        LpValue::Int(i) => digits(i),
        LpValue::Str(s) => s.len(),
    }
}

fn sds_len(p: usize) -> usize {
    match NonNull::new(p as *mut u8) {
        // SAFETY: a live SDS string of a live entry.
        Some(s) => unsafe { sds_at(s).len() },
        None => 0,
    }
}

/// The bytes of the elements as a client sent them (fields and values, members, list
/// elements; integers as their decimal text): the payload the store counts. Walks the
/// aggregate.
pub(super) fn payload(o: NonNull<u8>) -> usize {
    let p = robj_ptr(o);
    let lp = || {
        // SAFETY: a listpack-encoded object's `ptr` is its live listpack.
        unsafe { Listpack::from_ptr(p) }
    };
    // Keys (and values, for a hash) of a dict-encoded object.
    let dict_sum = |d: NonNull<u8>, vals: bool| {
        with_dict(d, |dict| {
            dict.entries()
                .into_iter()
                .map(|e| {
                    // SAFETY: live entries of a live dict.
                    let (k, v) = unsafe { (entry_key(e).as_ptr() as usize, entry_val(e)) };
                    sds_len(k) + if vals { sds_len(v) } else { 0 }
                })
                .sum::<usize>()
        })
    };
    match (type_of(o), robj_encoding(o)) {
        (AggType::Hash, ENC_LISTPACK) => lp().iter().map(value_len).sum(),
        (AggType::Hash, _) => dict_sum(p, true),
        (AggType::Set, ENC_INTSET) => {
            // SAFETY: an intset-encoded set's `ptr` is its live intset.
            unsafe { Intset::from_ptr(p) }.iter().map(digits).sum()
        }
        (AggType::Set, ENC_HT) => dict_sum(p, false),
        (AggType::Set, _) => unreachable!("a set is an intset or a dict"),
        (AggType::List, _) => {
            let q = Quicklist(p);
            let mut n = 0;
            q.for_range(0, q.count(), &mut |v| n += value_len(v));
            n
        }
        (AggType::Zset, ENC_LISTPACK) => lp().iter().step_by(2).map(value_len).sum(),
        (AggType::Zset, _) => {
            // SAFETY: a skiplist-encoded zset's `ptr` is its 16-byte `zset` struct: the dict,
            // then the skiplist.
            let zsl = Zsl(unsafe { NonNull::new_unchecked(read_at::<*mut u8>(p, 8)) });
            let mut n = 0;
            zsl.for_each_node(&mut |node, _| n += node.member().len());
            n
        }
    }
}

impl super::Redis {
    /// [`Layout::agg_create`](crate::layout::Layout::agg_create): the object is made and the
    /// command run on it before the key exists (`createHashObject` and the rest, then
    /// `dbAdd`'s `dictAddRaw`, one rehash step), so a failure at any step frees what was made
    /// and leaves the dict as it was.
    pub(super) fn agg_create_in<A: Allocator>(
        &mut self,
        a: &mut A,
        item: crate::layout::NewItem<'_>,
        cfg: &AggConfig,
        cmd: &AggCmd<'_>,
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) -> Result<crate::layout::AggDone<NonNull<u8>>, AggError> {
        let o = create(a, cfg, cmd)?;
        let mark = out.len();
        let (reply, delta) = match apply(a, o, cfg, cmd, rng, out) {
            Ok(r) => r,
            Err(e) => {
                // SAFETY: `o` was just made and is referenced by nothing.
                unsafe { free(a, o) };
                return Err(e);
            }
        };
        self.main.rehash_step(a);
        let added = super::sds::new_sds(
            a,
            item.key,
            super::sds_header(item.key.len()),
            item.key.len(),
        )
        .and_then(|key| {
            // SAFETY: the SDS string starts after its header.
            let kptr = unsafe { key.base.add(key.hdr) };
            self.main
                .add(a, kptr, item.hash, o.as_ptr() as usize)
                .inspect_err(|_| {
                    // SAFETY: the key was just allocated and is not in the dict.
                    unsafe { super::sds::free_sds(a, key) }
                })
        });
        let e = match added {
            Ok(e) => e,
            Err(err) => {
                out.truncate(mark);
                // SAFETY: as above: `o` is referenced by nothing.
                unsafe { free(a, o) };
                return Err(err.into());
            }
        };
        crate::layout::Layout::set_access(self, e, item.access);
        Ok(crate::layout::AggDone {
            handle: e,
            reply,
            payload_delta: delta,
            before: None,
            after: (encoding(o), len(o)),
        })
    }
}

/// Every element of aggregate `o`, read with the type's read commands (HGETALL, SMEMBERS,
/// LRANGE 0 -1, ZRANGE 0 -1 and each member's ZSCORE), which change nothing.
pub(super) fn elements<A: Allocator>(a: &mut A, o: NonNull<u8>, cfg: &AggConfig) -> AggData {
    let mut rng = Rng::new(0);
    let mut out = Vec::new();
    let t = type_of(o);
    let all = match t {
        AggType::Hash => AggCmd::HGetAll,
        AggType::Set => AggCmd::SMembers,
        AggType::List => AggCmd::LRange { start: 0, stop: -1 },
        AggType::Zset => AggCmd::ZRange { start: 0, stop: -1 },
    };
    apply(a, o, cfg, &all, &mut rng, &mut out).expect("a read of the aggregate's own type");
    let elems = split_elems(&out);
    let own = |b: &&[u8]| b.to_vec();
    match t {
        AggType::Hash => AggData::Hash(
            elems
                .chunks_exact(2)
                .map(|p| (p[0].to_vec(), p[1].to_vec()))
                .collect(),
        ),
        AggType::Set => AggData::Set(elems.iter().map(own).collect()),
        AggType::List => AggData::List(elems.iter().map(own).collect()),
        AggType::Zset => {
            let mut z = Vec::with_capacity(elems.len());
            let mut none = Vec::new();
            for m in &elems {
                let cmd = AggCmd::ZScore { member: m };
                let score = match apply(a, o, cfg, &cmd, &mut rng, &mut none) {
                    Ok((Reply::Score(s), _)) => s,
                    _ => unreachable!("a member ZRANGE gave has a score"),
                };
                z.push((score, m.to_vec()));
            }
            AggData::Zset(z)
        }
    }
}
