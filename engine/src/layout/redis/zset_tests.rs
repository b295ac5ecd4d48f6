//! Tests of the ZSET type (`zset.rs`): sizes and conversions at Redis 7.0's thresholds, the
//! listpack's score text, and random programs against the plain model (`agg::model`).

use proptest::prelude::*;

use super::super::testalloc::Tracked;
use super::zzl::{double2ll, g17};
use super::*;
use crate::agg::model::AggData;
use crate::agg::AggType;
use crate::util::Rng;

fn g(d: f64) -> String {
    let mut v = Vec::new();
    g17(d, &mut v);
    String::from_utf8(v).unwrap()
}

#[test]
fn scores_are_stored_as_d2string_writes_them() {
    // Expected values from C's `printf("%.17g")`.
    for (d, s) in [
        (0.1, "0.10000000000000001"),
        (1.5, "1.5"),
        (-2.5, "-2.5"),
        (1e300, "1.0000000000000001e+300"),
        (1e-5, "1.0000000000000001e-05"),
        (0.0001, "0.0001"),
        (123.456, "123.456"),
        (2f64.powi(63), "9.2233720368547758e+18"),
        (1.0 / 3.0, "0.33333333333333331"),
        (-1e-300, "-1e-300"),
        (5e-324, "4.9406564584124654e-324"),
        (f64::MAX, "1.7976931348623157e+308"),
        // Exactly 1234567890123456.25: a tie, rounded to even as printf does.
        (1234567890123456.2, "1234567890123456.2"),
        (1e17, "1e+17"),
        (-0.00012345, "-0.00012344999999999999"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        assert_eq!(g(d), s);
        assert_eq!(lp_score(LpValue::Str(s.as_bytes())), d, "{s} reads back");
    }
    // `double2ll`: integral and within +-2^62.
    assert_eq!(double2ll(3.0), Some(3));
    assert_eq!(double2ll(-0.0), Some(0));
    assert_eq!(double2ll(2f64.powi(62)), Some(1 << 62));
    assert_eq!(double2ll(2f64.powi(62) * 2.0), None);
    assert_eq!(double2ll(0.5), None);
    assert_eq!(double2ll(f64::INFINITY), None);
}

fn sizes(a: &Tracked) -> Vec<usize> {
    let mut v: Vec<usize> = a.live.values().copied().collect();
    v.sort_unstable();
    v
}

fn zadd(a: &mut Tracked, o: NonNull<u8>, cfg: &AggConfig, member: &[u8], score: f64) -> Reply {
    let cmd = AggCmd::ZAdd { member, score };
    apply(a, o, cfg, &cmd, &mut Rng::new(1), &mut Vec::new())
        .unwrap()
        .0
}

#[test]
fn new_keys_are_listpacks_unless_the_first_member_is_too_long() {
    let cfg = AggConfig::default();
    let mut a = Tracked::new();
    let o = create(
        &mut a,
        &cfg,
        &AggCmd::ZAdd {
            member: &[b'm'; 64],
            score: 1.0,
        },
    )
    .unwrap();
    assert_eq!((encoding(o), sizes(&a)), (Encoding::Listpack, vec![7, 16]));
    // SAFETY: a live robj: `OBJ_ZSET` (3), `OBJ_ENCODING_LISTPACK` (11).
    assert_eq!(unsafe { read_at::<u8>(o, 0) }, 3 | 11 << 4);
    assert_eq!(zadd(&mut a, o, &cfg, b"a", 1.0), Reply::Int(1));
    assert_eq!(zadd(&mut a, o, &cfg, b"b", 2.5), Reply::Int(1));
    // 6 + "a" 3 + int 1 2 + "b" 3 + "2.5" 5 + end 1.
    assert_eq!(sizes(&a), vec![16, 20]);
    // SAFETY: live, freed once.
    unsafe { free(&mut a, o) };
    assert!(a.live.is_empty());

    let o = create(
        &mut a,
        &cfg,
        &AggCmd::ZIncrBy {
            member: &[b'm'; 65],
            delta: 1.0,
        },
    )
    .unwrap();
    // robj, zset, zskiplist, dict, header node.
    assert_eq!(
        (encoding(o), sizes(&a)),
        (Encoding::Skiplist, vec![16, 16, 32, 56, 536])
    );
    // SAFETY: `OBJ_ENCODING_SKIPLIST` (7).
    assert_eq!(unsafe { read_at::<u8>(o, 0) }, 3 | 7 << 4);
    // SAFETY: live, freed once.
    unsafe { free(&mut a, o) };
    let none = AggConfig {
        zset_max_listpack_entries: 0,
        ..cfg
    };
    let o = create(
        &mut a,
        &none,
        &AggCmd::ZAdd {
            member: b"m",
            score: 1.0,
        },
    )
    .unwrap();
    assert_eq!(encoding(o), Encoding::Skiplist);
    zadd(&mut a, o, &none, b"m", 1.0);
    // A member of 1 byte: a 1 + 1 + 1 SDS, a level-L node, a 4-slot table and an entry.
    assert_eq!(a.live.values().filter(|&&s| s == 3).count(), 1);
    assert_eq!(
        a.live.values().filter(|&&s| s == 32).count(),
        2,
        "zskiplist, table"
    );
    a.assert_blocks(|f| blocks(o, f));
    // SAFETY: live, freed once.
    unsafe { free(&mut a, o) };
    assert!(a.live.is_empty());
}

/// Adds `n` members to a new key under `cfg`; returns the robj and the encoding after each.
fn fill(a: &mut Tracked, cfg: &AggConfig, n: usize, len: usize) -> (NonNull<u8>, Vec<Encoding>) {
    let member = |i: usize| {
        let mut m = format!("m{i:05}").into_bytes();
        m.resize(len.max(6), b'.');
        m
    };
    let o = create(
        a,
        cfg,
        &AggCmd::ZAdd {
            member: &member(0),
            score: 0.0,
        },
    )
    .unwrap();
    let mut encs = Vec::new();
    for i in 0..n {
        assert_eq!(zadd(a, o, cfg, &member(i), i as f64 / 4.0), Reply::Int(1));
        encs.push(encoding(o));
        a.assert_blocks(|f| blocks(o, f));
    }
    (o, encs)
}

#[test]
fn listpacks_convert_past_128_members_and_never_back() {
    for (cfg, limit) in [
        (AggConfig::default(), 128),
        (
            AggConfig {
                zset_max_listpack_entries: 5,
                ..AggConfig::default()
            },
            5,
        ),
    ] {
        let mut a = Tracked::new();
        let (o, encs) = fill(&mut a, &cfg, limit + 1, 8);
        assert!(encs[..limit].iter().all(|&e| e == Encoding::Listpack));
        assert_eq!(encs[limit], Encoding::Skiplist);
        // One SDS of 1 + 8 + 1 and one node per member.
        assert_eq!(a.live.values().filter(|&&s| s == 10).count(), limit + 1);
        let mut out = Vec::new();
        for i in 0..limit {
            let member = format!("m{i:05}..").into_bytes();
            let cmd = AggCmd::ZRem { member: &member };
            let r = apply(&mut a, o, &cfg, &cmd, &mut Rng::new(0), &mut out).unwrap();
            assert_eq!(r, (Reply::Int(1), -8));
            assert_eq!(encoding(o), Encoding::Skiplist);
            a.assert_blocks(|f| blocks(o, f));
        }
        assert_eq!(len(o), 1);
        // SAFETY: live, freed once.
        unsafe { free(&mut a, o) };
        assert!(a.live.is_empty());
    }
}

#[test]
fn a_member_past_the_value_limit_converts() {
    for (cfg, limit) in [
        (AggConfig::default(), 64),
        (
            AggConfig {
                zset_max_listpack_value: 10,
                ..AggConfig::default()
            },
            10,
        ),
    ] {
        let mut a = Tracked::new();
        let o = create(
            &mut a,
            &cfg,
            &AggCmd::ZAdd {
                member: b"a",
                score: 0.0,
            },
        )
        .unwrap();
        zadd(&mut a, o, &cfg, b"a", 0.0);
        zadd(&mut a, o, &cfg, &vec![b'x'; limit], 1.0);
        assert_eq!(encoding(o), Encoding::Listpack);
        zadd(&mut a, o, &cfg, &vec![b'y'; limit + 1], 2.0);
        assert_eq!((encoding(o), len(o)), (Encoding::Skiplist, 3));
        a.assert_blocks(|f| blocks(o, f));
        // SAFETY: live, freed once.
        unsafe { free(&mut a, o) };
        assert!(a.live.is_empty());
    }
}

#[test]
fn a_refused_conversion_changes_nothing() {
    let cfg = AggConfig {
        zset_max_listpack_entries: 3,
        ..AggConfig::default()
    };
    for n in 0..40 {
        let mut a = Tracked::new();
        let (o, _) = fill(&mut a, &cfg, 3, 8);
        let before = a.live.values().copied().collect::<Vec<_>>();
        let before_bytes = match repr(o) {
            Repr::Lp(lp) => snapshot(lp),
            Repr::Sl(_) => unreachable!(),
        };
        a.fail_in(n);
        let cmd = AggCmd::ZAdd {
            member: b"new one",
            score: 0.5,
        };
        match apply(&mut a, o, &cfg, &cmd, &mut Rng::new(3), &mut Vec::new()) {
            Ok(r) => {
                assert_eq!(r, (Reply::Int(1), 7));
                assert_eq!((encoding(o), len(o)), (Encoding::Skiplist, 4));
            }
            Err(_) => {
                assert!(a.failed());
                let Repr::Lp(lp) = repr(o) else {
                    panic!("still a listpack")
                };
                assert_eq!(snapshot(lp), before_bytes);
                let mut now = a.live.values().copied().collect::<Vec<_>>();
                now.sort_unstable();
                let mut was = before.clone();
                was.sort_unstable();
                assert_eq!(now, was);
            }
        }
        a.assert_blocks(|f| blocks(o, f));
        // SAFETY: live, freed once.
        unsafe { free(&mut a, o) };
        assert!(a.live.is_empty());
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8, f64),
    Rem(u8),
    Score(u8),
    Incr(u8, f64),
    Range(i64, i64),
    PopMin,
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (-8i32..8).prop_map(f64::from),
        2 => (-40i32..40).prop_map(|i| f64::from(i) / 8.0),
        1 => prop_oneof![
            Just(0.1),
            Just(-0.0),
            Just(1e300),
            Just(2f64.powi(63)),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
        ],
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), score()).prop_map(|(m, s)| Op::Add(m, s)),
        2 => any::<u8>().prop_map(Op::Rem),
        1 => any::<u8>().prop_map(Op::Score),
        2 => (any::<u8>(), score()).prop_map(|(m, s)| Op::Incr(m, s)),
        1 => (-12i64..12, -12i64..12).prop_map(|(s, e)| Op::Range(s, e)),
        1 => Just(Op::PopMin),
    ]
}

/// Member `m` of a small alphabet: integers (stored as integers), short and long strings.
fn member(m: u8) -> Vec<u8> {
    match m % 4 {
        0 => (i64::from(m) - 100).to_string().into_bytes(),
        1 => vec![b'a' + m % 26; usize::from(m % 7)],
        2 => format!("member-{m}").into_bytes(),
        _ => vec![b'z'; usize::from(m % 13)],
    }
}

fn cmd_of<'a>(op: &Op, m: &'a [u8]) -> AggCmd<'a> {
    match *op {
        Op::Add(_, score) => AggCmd::ZAdd { member: m, score },
        Op::Rem(_) => AggCmd::ZRem { member: m },
        Op::Score(_) => AggCmd::ZScore { member: m },
        Op::Incr(_, delta) => AggCmd::ZIncrBy { member: m, delta },
        Op::Range(start, stop) => AggCmd::ZRange { start, stop },
        Op::PopMin => AggCmd::ZPopMin,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sorted_sets_match_the_model(
        entries in prop_oneof![Just(128usize), 1usize..10],
        value in prop_oneof![Just(64usize), 3usize..12],
        ops in prop::collection::vec((op(), prop::option::weighted(0.15, 0u64..6)), 1..160),
        seed in any::<u64>(),
    ) {
        let cfg = AggConfig {
            zset_max_listpack_entries: entries,
            zset_max_listpack_value: value,
            ..AggConfig::default()
        };
        let mut a = Tracked::new();
        let mut rng = Rng::new(seed);
        let first = member(0);
        let o = create(&mut a, &cfg, &AggCmd::ZAdd { member: &first, score: 0.0 }).unwrap();
        let mut model = AggData::new(AggType::Zset);
        let mut was_skiplist = encoding(o) == Encoding::Skiplist;
        for (op, fail) in ops {
            if let Some(n) = fail {
                a.fail_in(n);
            }
            let m = match op {
                Op::Add(m, _) | Op::Rem(m) | Op::Score(m) | Op::Incr(m, _) => member(m),
                _ => Vec::new(),
            };
            let cmd = cmd_of(&op, &m);
            let (mut got, mut want) = (vec![b'-'], vec![b'-']);
            match apply(&mut a, o, &cfg, &cmd, &mut rng, &mut got) {
                Ok(r) => {
                    let w = model.apply(&cmd, &mut |_| 0, &mut want).unwrap();
                    prop_assert_eq!(r, w, "{:?}", cmd);
                    prop_assert_eq!(&got, &want, "{:?}", cmd);
                }
                Err(AggError::NotANumber) => {
                    let w = model.apply(&cmd, &mut |_| 0, &mut want);
                    prop_assert_eq!(w, Err(AggError::NotANumber));
                }
                Err(e) => {
                    prop_assert!(a.failed(), "{:?} failed with {:?} unasked", cmd, e);
                    prop_assert_eq!(&got, &vec![b'-']);
                }
            }
            // Every member, in order, with its score.
            let AggData::Zset(z) = &model else { unreachable!() };
            let mut all = Vec::new();
            let full = AggCmd::ZRange { start: 0, stop: -1 };
            apply(&mut a, o, &cfg, &full, &mut rng, &mut all).unwrap();
            let mut expect = Vec::new();
            model.clone().apply(&full, &mut |_| 0, &mut expect).unwrap();
            prop_assert_eq!(all, expect);
            for (s, m) in z {
                let r = apply(&mut a, o, &cfg, &AggCmd::ZScore { member: m }, &mut rng, &mut Vec::new());
                prop_assert_eq!(r, Ok((Reply::Score(*s), 0)));
            }
            prop_assert_eq!(len(o), z.len());
            was_skiplist |= encoding(o) == Encoding::Skiplist;
            prop_assert!(!was_skiplist || encoding(o) == Encoding::Skiplist, "never back");
            if encoding(o) == Encoding::Listpack {
                prop_assert!(z.len() <= entries);
                prop_assert!(z.iter().all(|(_, m)| m.len() <= value));
                let Repr::Lp(lp) = repr(o) else { unreachable!() };
                lp.check();
            }
            a.assert_blocks(|f| blocks(o, f));
        }
        // SAFETY: live, freed once.
        unsafe { free(&mut a, o) };
        prop_assert!(a.live.is_empty());
    }
}
