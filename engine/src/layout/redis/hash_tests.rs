use proptest::prelude::*;

use super::super::sds::sds_header;
use super::super::testkit::Faulty;
use super::*;
use crate::agg::model::AggData;
use crate::agg::split_elems;
use crate::util::Rng;

fn sum_blocks(o: NonNull<u8>) -> u64 {
    let mut n = 0;
    blocks(o, &mut |_, s| n += s as u64);
    n
}

fn run(a: &mut Faulty, o: NonNull<u8>, cfg: &AggConfig, cmd: AggCmd<'_>) -> (Reply, i64, Vec<u8>) {
    let mut out = Vec::new();
    let (r, d) = apply(a, o, cfg, &cmd, &mut Rng::new(1), &mut out).unwrap();
    assert_eq!(a.requested(), sum_blocks(o), "{cmd:?}");
    (r, d, out)
}

fn hset(a: &mut Faulty, o: NonNull<u8>, cfg: &AggConfig, f: &[u8], v: &[u8]) -> Reply {
    run(a, o, cfg, AggCmd::HSet { field: f, value: v }).0
}

/// Fields and values, sorted by field.
fn contents(a: &mut Faulty, o: NonNull<u8>, cfg: &AggConfig) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (r, _, out) = run(a, o, cfg, AggCmd::HGetAll);
    let e = split_elems(&out);
    assert_eq!(r, Reply::Array(e.len()));
    let mut v: Vec<_> = e
        .chunks(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect();
    v.sort();
    v
}

/// An SDS of `n` bytes made by `sdsnewlen`.
fn sds(n: usize) -> usize {
    sds_header(n) + n + 1
}

fn free_all(a: &mut Faulty, o: NonNull<u8>) {
    // SAFETY: a live hash, freed once.
    unsafe { free(a, o) };
    assert_eq!(a.requested(), 0);
}

#[test]
fn listpack_hash_bytes() {
    let (mut a, cfg) = (Faulty::new(), AggConfig::default());
    let o = create(&mut a, &cfg, &AggCmd::HGetAll).unwrap();
    assert_eq!(a.requested(), 16 + 7);
    assert_eq!(encoding(o), Encoding::Listpack);
    assert_eq!(hset(&mut a, o, &cfg, b"f", b"v"), Reply::Int(1));
    assert_eq!(a.requested(), 16 + 7 + 3 + 3);
    assert_eq!(hset(&mut a, o, &cfg, b"count", b"1000"), Reply::Int(1));
    assert_eq!(a.requested(), 16 + 7 + 3 + 3 + 7 + 3);
    assert_eq!(hset(&mut a, o, &cfg, b"f", b"hello"), Reply::Int(0));
    assert_eq!(a.requested(), 16 + 7 + 7 + 3 + 7 + 3);
    let (r, d, out) = run(
        &mut a,
        o,
        &cfg,
        AggCmd::HIncrBy {
            field: b"count",
            delta: 5,
        },
    );
    assert_eq!((r, d, out.len()), (Reply::Int(1005), 0, 0));
    let (r, d, out) = run(&mut a, o, &cfg, AggCmd::HGet { field: b"count" });
    assert_eq!((r, d, out), (Reply::Bulk, 0, b"1005".to_vec()));
    let (r, d, _) = run(&mut a, o, &cfg, AggCmd::HDel { field: b"f" });
    assert_eq!((r, d), (Reply::Int(1), -6));
    assert_eq!(a.requested(), 16 + 7 + 7 + 3);
    assert_eq!(len(o), 1);
    free_all(&mut a, o);
}

#[test]
fn converts_after_the_insert_past_the_entry_limit() {
    for entries in [512, 3] {
        let mut a = Faulty::new();
        let cfg = AggConfig {
            hash_max_listpack_entries: entries,
            ..AggConfig::default()
        };
        let o = create(&mut a, &cfg, &AggCmd::HGetAll).unwrap();
        for i in 0..entries {
            hset(&mut a, o, &cfg, format!("field:{i}").as_bytes(), b"v");
        }
        assert_eq!((encoding(o), len(o)), (Encoding::Listpack, entries));
        hset(&mut a, o, &cfg, b"one-more", b"v");
        assert_eq!((encoding(o), len(o)), (Encoding::Hashtable, entries + 1));
        // Pre-sized to the field count: the next power of two (1024 for 513, 4 for 4).
        let slots = (entries + 1).next_power_of_two();
        let fields: usize = (0..entries).map(|i| sds(format!("field:{i}").len())).sum();
        let want = 16 + 56 + 8 * slots + (entries + 1) * (24 + sds(1)) + fields + sds(8);
        assert_eq!(a.requested(), want as u64);
        // SAFETY: the dict block of a converted hash.
        let d = unsafe { Dict::load(robj_ptr(o)) };
        assert_eq!((d.ht[0].size, d.rehashidx), (slots, None));
        free_all(&mut a, o);
    }
}

#[test]
fn converts_before_the_insert_past_the_value_limit() {
    for max in [64, 5] {
        let mut a = Faulty::new();
        let cfg = AggConfig {
            hash_max_listpack_value: max,
            ..AggConfig::default()
        };
        let o = create(&mut a, &cfg, &AggCmd::HGetAll).unwrap();
        hset(&mut a, o, &cfg, b"a", &vec![b'x'; max]);
        hset(&mut a, o, &cfg, &vec![b'k'; max], b"1");
        assert_eq!(encoding(o), Encoding::Listpack);
        hset(&mut a, o, &cfg, b"b", &vec![b'y'; max + 1]);
        assert_eq!(encoding(o), Encoding::Hashtable);
        // Two pairs converted into a 4-slot table, then the third added.
        let want = 16 + 56 + 32 + 3 * 24 + sds(1) + sds(max) + sds(max) + sds(1);
        assert_eq!(a.requested(), (want + sds(1) + sds(max + 1)) as u64);
        free_all(&mut a, o);
        // A long field converts as well; an empty hash converts to a 4-slot table.
        let o = create(&mut a, &cfg, &AggCmd::HGetAll).unwrap();
        hset(&mut a, o, &cfg, &vec![b'k'; max + 1], b"v");
        assert_eq!(encoding(o), Encoding::Hashtable);
        assert_eq!(
            a.requested(),
            (16 + 56 + 32 + 24 + sds(max + 1) + sds(1)) as u64
        );
        free_all(&mut a, o);
    }
}

#[test]
fn hincrby_converts_on_a_long_field_or_result() {
    let mut a = Faulty::new();
    let cfg = AggConfig {
        hash_max_listpack_value: 3,
        ..AggConfig::default()
    };
    let o = create(&mut a, &cfg, &AggCmd::HGetAll).unwrap();
    let (r, d, _) = run(
        &mut a,
        o,
        &cfg,
        AggCmd::HIncrBy {
            field: b"n",
            delta: 999,
        },
    );
    assert_eq!(
        (r, d, encoding(o)),
        (Reply::Int(999), 4, Encoding::Listpack)
    );
    let (r, d, _) = run(
        &mut a,
        o,
        &cfg,
        AggCmd::HIncrBy {
            field: b"n",
            delta: 1,
        },
    );
    assert_eq!(
        (r, d, encoding(o)),
        (Reply::Int(1000), 1, Encoding::Hashtable)
    );
    free_all(&mut a, o);
    let o = create(&mut a, &cfg, &AggCmd::HGetAll).unwrap();
    run(
        &mut a,
        o,
        &cfg,
        AggCmd::HIncrBy {
            field: b"long",
            delta: 1,
        },
    );
    assert_eq!(encoding(o), Encoding::Hashtable);
    free_all(&mut a, o);
}

#[test]
fn hincrby_errors_change_nothing() {
    for max in [64, 0] {
        let mut a = Faulty::new();
        let cfg = AggConfig {
            hash_max_listpack_value: max,
            ..AggConfig::default()
        };
        let o = create(&mut a, &cfg, &AggCmd::HGetAll).unwrap();
        hset(&mut a, o, &cfg, b"s", b"abc");
        hset(&mut a, o, &cfg, b"big", i64::MAX.to_string().as_bytes());
        hset(&mut a, o, &cfg, b"pad", b" 1");
        let before = (contents(&mut a, o, &cfg), a.requested(), encoding(o));
        let mut out = Vec::new();
        let mut rng = Rng::new(1);
        for (f, d, want) in [
            (&b"s"[..], 1, AggError::NotAnInteger),
            (b"pad", 1, AggError::NotAnInteger),
            (b"big", 1, AggError::Overflow),
        ] {
            let cmd = AggCmd::HIncrBy { field: f, delta: d };
            assert_eq!(apply(&mut a, o, &cfg, &cmd, &mut rng, &mut out), Err(want));
        }
        assert!(out.is_empty());
        assert_eq!(
            (contents(&mut a, o, &cfg), a.requested(), encoding(o)),
            before
        );
        free_all(&mut a, o);
    }
}

#[test]
fn create_does_not_leak_when_refused() {
    let cfg = AggConfig::default();
    for n in 0..2 {
        let mut a = Faulty::new();
        a.fail_in(n);
        assert!(create(&mut a, &cfg, &AggCmd::HGetAll).is_err());
        assert_eq!(a.requested(), 0);
    }
}

#[test]
fn every_refusal_leaves_the_hash_unchanged() {
    let cfg = AggConfig {
        hash_max_listpack_entries: 3,
        hash_max_listpack_value: 5,
        ..AggConfig::default()
    };
    let long = [b'L'; 6];
    // (fields before, as a listpack or a dict, the command)
    let cases: Vec<(bool, AggCmd<'_>)> = vec![
        (
            false,
            AggCmd::HSet {
                field: b"new",
                value: b"v",
            },
        ),
        (
            false,
            AggCmd::HSet {
                field: b"f0",
                value: &long,
            },
        ),
        (
            false,
            AggCmd::HSet {
                field: b"f0",
                value: b"vv",
            },
        ),
        (
            false,
            AggCmd::HIncrBy {
                field: b"n",
                delta: 7,
            },
        ),
        (
            false,
            AggCmd::HIncrBy {
                field: &long,
                delta: 7,
            },
        ),
        (
            false,
            AggCmd::HIncrBy {
                field: b"n",
                delta: 100_000,
            },
        ),
        (false, AggCmd::HDel { field: b"f1" }),
        (
            true,
            AggCmd::HSet {
                field: b"new",
                value: b"v",
            },
        ),
        (
            true,
            AggCmd::HSet {
                field: b"f0",
                value: b"vv",
            },
        ),
        (
            true,
            AggCmd::HIncrBy {
                field: b"n",
                delta: 7,
            },
        ),
        (
            true,
            AggCmd::HIncrBy {
                field: b"x",
                delta: 7,
            },
        ),
        (true, AggCmd::HDel { field: b"f1" }),
    ];
    for (ht, cmd) in cases {
        for k in 0.. {
            let mut a = Faulty::new();
            let o = create(&mut a, &cfg, &AggCmd::HGetAll).unwrap();
            hset(&mut a, o, &cfg, b"f0", b"v0");
            hset(&mut a, o, &cfg, b"f1", b"v1");
            hset(&mut a, o, &cfg, b"n", b"1");
            if ht {
                hset(&mut a, o, &cfg, b"f3", b"v3");
                hset(&mut a, o, &cfg, b"f4", b"v4");
                assert_eq!(encoding(o), Encoding::Hashtable);
            }
            // A rehash step a refused command took may finish a rehash (and free the old
            // table), as a lookup would: the bytes are compared only when none is under way.
            // SAFETY: a dict-encoded hash's `ptr` is its dict block.
            let rehashing = ht && unsafe { Dict::load(robj_ptr(o)) }.rehashidx.is_some();
            let before = (contents(&mut a, o, &cfg), a.requested(), encoding(o));
            a.fail_in(k);
            let mut out = Vec::new();
            let r = apply(&mut a, o, &cfg, &cmd, &mut Rng::new(1), &mut out);
            a.heal();
            assert_eq!(a.requested(), sum_blocks(o));
            let done = r.is_ok();
            if !done {
                assert!(
                    matches!(r, Err(AggError::Alloc(_))),
                    "{cmd:?} at {k}: {r:?}"
                );
                let after = (contents(&mut a, o, &cfg), a.requested(), encoding(o));
                assert_eq!((&after.0, after.2), (&before.0, before.2), "{cmd:?} at {k}");
                if !rehashing {
                    assert_eq!(after.1, before.1, "{cmd:?} refused at {k}");
                }
            }
            free_all(&mut a, o);
            if done {
                break;
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, Vec<u8>),
    Get(u8),
    Del(u8),
    Incr(u8, i64),
    All,
}

fn field(i: u8) -> Vec<u8> {
    match i % 4 {
        0 => format!("f{i}").into_bytes(),
        1 => i.to_string().into_bytes(),
        2 => vec![b'F'; 60 + i as usize % 8],
        _ => format!("-{i}").into_bytes(),
    }
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-200i64..200).prop_map(|v| v.to_string().into_bytes()),
        any::<i64>().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(b'a'..=b'z', 0..12),
        (58usize..70).prop_map(|n| vec![b'v'; n]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..40, value()).prop_map(|(f, v)| Op::Set(f, v)),
        2 => (0u8..40).prop_map(Op::Get),
        2 => (0u8..40).prop_map(Op::Del),
        2 => (0u8..40, prop_oneof![-5i64..5, any::<i64>()]).prop_map(|(f, d)| Op::Incr(f, d)),
        1 => Just(Op::All),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn hash_matches_the_model(
        ops in prop::collection::vec(op(), 1..120),
        entries in prop_oneof![Just(512usize), 1usize..12],
        max in prop_oneof![Just(64usize), 0usize..8],
        fail in prop::option::of(0u64..80),
    ) {
        let mut a = Faulty::new();
        let cfg = AggConfig {
            hash_max_listpack_entries: entries,
            hash_max_listpack_value: max,
            ..AggConfig::default()
        };
        let o = create(&mut a, &cfg, &AggCmd::HGetAll).unwrap();
        let mut model = AggData::new(crate::agg::AggType::Hash);
        let mut rng = Rng::new(7);
        if let Some(f) = fail {
            a.fail_in(f);
        }
        let mut was_ht = false;
        for op in ops {
            let (fb, vb);
            let cmd = match &op {
                Op::Set(f, v) => { fb = field(*f); vb = v.clone(); AggCmd::HSet { field: &fb, value: &vb } }
                Op::Get(f) => { fb = field(*f); AggCmd::HGet { field: &fb } }
                Op::Del(f) => { fb = field(*f); AggCmd::HDel { field: &fb } }
                Op::Incr(f, d) => { fb = field(*f); AggCmd::HIncrBy { field: &fb, delta: *d } }
                Op::All => AggCmd::HGetAll,
            };
            let before = model.clone();
            let (mut out, mut want_out) = (Vec::new(), Vec::new());
            let got = apply(&mut a, o, &cfg, &cmd, &mut rng, &mut out);
            let want = model.apply(&cmd, &mut |_| 0, &mut want_out);
            match got {
                Err(AggError::Alloc(_)) => {
                    prop_assert!(out.is_empty());
                    model = before;
                }
                _ => {
                    prop_assert_eq!(got, want);
                    if matches!(cmd, AggCmd::HGetAll) {
                        let mut g: Vec<_> = split_elems(&out).chunks(2).map(<[&[u8]]>::to_vec).collect();
                        let mut w: Vec<_> = split_elems(&want_out).chunks(2).map(<[&[u8]]>::to_vec).collect();
                        g.sort();
                        w.sort();
                        prop_assert_eq!(g, w);
                    } else {
                        prop_assert_eq!(&out, &want_out);
                    }
                }
            }
            prop_assert_eq!(a.requested(), sum_blocks(o));
            prop_assert_eq!(len(o), model.len());
            let AggData::Hash(pairs) = &model else { unreachable!() };
            let mut want: Vec<_> = pairs.clone();
            want.sort();
            // HGETALL allocates nothing: the refusal, if still ahead, stays where it is.
            prop_assert_eq!(contents(&mut a, o, &cfg), want);
            // Encoding: a listpack while every field and value fits and there are few enough;
            // once a dict, always a dict.
            let fits = pairs.len() <= entries && pairs.iter().all(|(f, v)| f.len() <= max && v.len() <= max);
            match encoding(o) {
                Encoding::Listpack => {
                    prop_assert!(fits && !was_ht);
                    lp_of(o).check();
                }
                _ => was_ht = true,
            }
            prop_assert!(fits || was_ht, "over a limit but not converted");
        }
        a.heal();
        free_all(&mut a, o);
    }
}
