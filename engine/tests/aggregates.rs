//! Aggregates through the store, in every layout: random command programs agree with the
//! plain model element by element, the byte accounting stays equal to the live allocations,
//! and types are kept apart (`WRONGTYPE`).

use std::collections::HashMap;

use fraglab_allocators::slab::{Slab, SlabConfig};
use fraglab_allocators::Allocator;
use fraglab_engine::agg::model::AggData;
use fraglab_engine::agg::{split_elems, AggCmd, AggType, Encoding, Reply};
use fraglab_engine::layout::{Compact, Memcached, Redis};
use fraglab_engine::{CmdError, Layout, SetOptions, Store, StoreConfig};
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn store<L: Layout>() -> Store<Slab, L> {
    Store::new(
        Slab::new(SlabConfig::default()).unwrap(),
        StoreConfig::default(),
    )
    .unwrap()
}

/// The sum of the requested sizes of every block the layout says its keys hold.
fn blocks_total<A: Allocator, L: Layout>(s: &Store<A, L>) -> u64 {
    let mut total = 0u64;
    for h in s.layout().handles() {
        s.layout()
            .blocks(s.allocator(), h, &mut |_, n| total += n as u64);
    }
    total + s.stats().index_in_allocator_bytes
}

/// One generated command: which key, which command, small ids for members.
#[derive(Debug, Clone)]
struct Step {
    key: u8,
    kind: u8,
    member: u16,
    long: bool,
    n: i64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0u8..4,
        0u8..22,
        0u16..40,
        prop::bool::weighted(0.05),
        -3i64..12,
    )
        .prop_map(|(key, kind, member, long, n)| Step {
            key,
            kind,
            member,
            long,
            n,
        })
}

/// Member bytes: an integer for even ids (so sets start as intsets), a string for odd ones; a
/// long one past the listpack limits when asked.
fn member(id: u16, long: bool) -> Vec<u8> {
    if long {
        format!("long-member-{id:-<70}").into_bytes()
    } else if id % 2 == 0 {
        (u64::from(id) * 1_000_003).to_string().into_bytes()
    } else {
        format!("m{id}").into_bytes()
    }
}

fn command<'a>(st: &Step, m: &'a [u8], v: &'a [u8]) -> AggCmd<'a> {
    use AggCmd::*;
    // Keys 0..4 hold a hash, a set, a list and a zset.
    let index = match st.key {
        0 => st.kind % 5,
        1 => 5 + st.kind % 5,
        2 => 10 + st.kind % 6,
        _ => 16 + st.kind % 6,
    };
    match index {
        0 => HSet { field: m, value: v },
        1 => HGet { field: m },
        2 => HDel { field: m },
        3 => HGetAll,
        4 => HIncrBy {
            field: m,
            delta: st.n,
        },
        5 => SAdd { member: m },
        6 => SRem { member: m },
        7 => SIsMember { member: m },
        8 => SPop,
        9 if st.n % 2 == 0 => SCard,
        9 => SMembers,
        10 => LPush { elem: m },
        11 => RPush { elem: m },
        12 => LPop,
        13 => RPop,
        14 => LRange {
            start: st.n - 3,
            stop: st.n,
        },
        15 => LTrim {
            start: 0,
            stop: st.n.max(2) * 3,
        },
        16 => ZAdd {
            member: m,
            score: st.n as f64,
        },
        17 => ZRem { member: m },
        18 => ZScore { member: m },
        19 => ZIncrBy {
            member: m,
            delta: st.n as f64 / 2.0,
        },
        20 => ZRange {
            start: 0,
            stop: st.n,
        },
        _ => ZPopMin,
    }
}

fn elems(r: Reply, out: &[u8]) -> Vec<Vec<u8>> {
    match r {
        Reply::Array(_) => split_elems(out).into_iter().map(<[u8]>::to_vec).collect(),
        Reply::Bulk => vec![out.to_vec()],
        _ => Vec::new(),
    }
}

/// Replies that may differ by encoding: hash and set orders, SPOP's choice.
fn unordered(cmd: &AggCmd<'_>) -> bool {
    matches!(cmd, AggCmd::HGetAll | AggCmd::SMembers)
}

fn run_program<L: Layout>(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut s: Store<Slab, L> = store();
    let mut model: HashMap<u8, AggData> = HashMap::new();
    for st in steps {
        let m = member(st.member, st.long);
        let v = if st.long {
            vec![b'x'; 80]
        } else {
            b"val".to_vec()
        };
        let cmd = command(st, &m, &v);
        let key = [b'k', st.key];
        let mut out = Vec::new();
        let got = s.agg(&key, &cmd, 0, &mut out);
        let data = model
            .entry(st.key)
            .or_insert_with(|| AggData::new(cmd.agg_type()));
        let mut want_out = Vec::new();
        let want = if let (AggCmd::SPop, Ok(Reply::Bulk)) = (&cmd, &got) {
            // The popped member is the store's choice: take the same one from the model.
            want_out = out.clone();
            data.apply(&AggCmd::SRem { member: &out }, &mut |_| 0, &mut Vec::new())
                .map(|_| (Reply::Bulk, 0))
        } else {
            data.apply(&cmd, &mut |_| 0, &mut want_out)
        };
        match (got, want) {
            (Ok(g), Ok((w, _))) => {
                prop_assert_eq!(g, w, "{:?}", cmd);
                let (mut ge, mut we) = (elems(g, &out), elems(w, &want_out));
                if unordered(&cmd) {
                    let width = if matches!(cmd, AggCmd::HGetAll) { 2 } else { 1 };
                    let pairs = |e: &[Vec<u8>]| {
                        let mut p: Vec<_> = e.chunks(width).map(<[Vec<u8>]>::to_vec).collect();
                        p.sort();
                        p
                    };
                    prop_assert_eq!(pairs(&ge), pairs(&we), "{:?}", cmd);
                    ge.clear();
                    we.clear();
                }
                prop_assert_eq!(ge, we, "{:?}", cmd);
            }
            (Err(CmdError::NotAnInteger), Err(_)) | (Err(CmdError::Overflow), Err(_)) => {}
            (g, w) => prop_assert!(false, "{:?}: store {:?}, model {:?}", cmd, g, w),
        }
        if data.is_empty() {
            model.remove(&st.key);
            prop_assert_eq!(s.agg_type_of(&key, 0), None);
        } else {
            let (_, n) = s.agg_shape_of(&key, 0).expect("a live aggregate");
            prop_assert_eq!(n, data.len());
        }
        prop_assert_eq!(s.stats().mem.requested_bytes, blocks_total(&s));
    }
    // The book agrees with the keys.
    let book = s.agg_book();
    let keys: u64 = book.held().values().map(|c| c.keys).sum();
    let elements: u64 = book.held().values().map(|c| c.elements).sum();
    prop_assert_eq!(keys, model.len() as u64);
    prop_assert_eq!(
        elements,
        model.values().map(|d| d.len() as u64).sum::<u64>()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn memcached_blobs_agree_with_the_model(steps in prop::collection::vec(step(), 1..300)) {
        run_program::<Memcached>(&steps)?;
    }

    #[test]
    fn redis_encodings_agree_with_the_model(steps in prop::collection::vec(step(), 1..300)) {
        run_program::<Redis>(&steps)?;
    }

    #[test]
    fn compact_blobs_agree_with_the_model(steps in prop::collection::vec(step(), 1..300)) {
        run_program::<Compact>(&steps)?;
    }
}

#[test]
fn types_are_kept_apart_and_set_replaces_any() {
    fn check<L: Layout>() {
        let mut s: Store<Slab, L> = store();
        let mut out = Vec::new();
        let hset = AggCmd::HSet {
            field: b"f",
            value: b"v",
        };
        assert_eq!(s.agg(b"h", &hset, 0, &mut out), Ok(Reply::Int(1)));
        assert_eq!(
            s.agg(b"h", &AggCmd::SAdd { member: b"1" }, 0, &mut out),
            Err(CmdError::WrongType)
        );
        assert_eq!(s.append(b"h", b"x", 0), Err(CmdError::WrongType));
        assert_eq!(s.incr(b"h", 1, 0), Err(CmdError::WrongType));
        assert_eq!(s.agg_book().wrong_type, 3);
        // SET replaces the hash with a string; the book lets it go.
        s.set(b"h", b"plain", SetOptions::default(), 0).unwrap();
        assert_eq!(s.agg_type_of(b"h", 0), None);
        assert!(s.agg_book().is_empty());
        assert_eq!(s.get(b"h", 0).as_deref(), Some(&b"plain"[..]));
        // Deleting an aggregate frees all of it.
        s.agg(b"s", &AggCmd::SAdd { member: b"7" }, 0, &mut out)
            .unwrap();
        assert!(s.delete(b"s", 0));
        s.delete(b"h", 0);
        // Only the index is left (Redis's bucket array lives in the allocator).
        let st = s.stats();
        assert_eq!(st.mem.requested_bytes, st.index_in_allocator_bytes);
        assert_eq!(st.payload_bytes, 0);
    }
    check::<Memcached>();
    check::<Compact>();
    check::<Redis>();
}

#[test]
fn a_blob_is_rewritten_whole_on_every_field_change() {
    // memcached users' HSET: every field change writes the whole serialized hash again.
    let mut s: Store<Slab, Memcached> = store();
    let mut out = Vec::new();
    for i in 0..10 {
        let f = format!("field{i}");
        let set = AggCmd::HSet {
            field: f.as_bytes(),
            value: &[b'x'; 100],
        };
        s.agg(b"user:1", &set, 0, &mut out).unwrap();
    }
    let before = s.stats().mem.counters;
    let set = AggCmd::HSet {
        field: b"field3",
        value: &[b'y'; 100],
    };
    assert_eq!(s.agg(b"user:1", &set, 0, &mut out), Ok(Reply::Int(0)));
    let after = s.stats().mem.counters;
    // One new item of the whole blob (10 x (1 + 6 + 1 + 100) + 2 bytes) and the old one freed.
    assert_eq!(after.allocs - before.allocs, 1);
    assert_eq!(after.frees - before.frees, 1);
    assert_eq!(s.agg_shape_of(b"user:1", 0), Some((Encoding::Blob, 10)));
    assert_eq!(s.stats().payload_bytes, 6 + 10 * 108 + 2);
    assert_eq!(
        s.agg_book().held()[&(AggType::Hash, Encoding::Blob)].elements,
        10
    );
}
