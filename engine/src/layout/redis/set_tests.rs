use proptest::prelude::*;

use super::super::sds::sds_header;
use super::super::testkit::Faulty;
use super::*;
use crate::agg::model::AggData;
use crate::util::Rng;

fn sum_blocks(o: NonNull<u8>) -> u64 {
    let mut n = 0;
    blocks(o, &mut |_, s| n += s as u64);
    n
}

fn sadd(a: &mut Faulty, o: NonNull<u8>, cfg: &AggConfig, m: &[u8]) -> Reply {
    let mut out = Vec::new();
    let cmd = AggCmd::SAdd { member: m };
    let (r, _) = apply(a, o, cfg, &cmd, &mut Rng::new(1), &mut out).unwrap();
    assert_eq!(a.requested(), sum_blocks(o));
    r
}

fn new_set(a: &mut Faulty, cfg: &AggConfig, first: &[u8]) -> NonNull<u8> {
    let o = create(a, cfg, &AggCmd::SAdd { member: first }).unwrap();
    sadd(a, o, cfg, first);
    o
}

/// The members, sorted, read without changing anything (no rehash step).
fn members(o: NonNull<u8>) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = match robj_encoding(o) {
        ENC_INTSET => is_of(o)
            .iter()
            .map(|v| v.to_string().into_bytes())
            .collect(),
        _ => {
            // SAFETY: a dict-encoded set's `ptr` is its dict block.
            let d = unsafe { Dict::load(robj_ptr(o)) };
            // SAFETY: live entries; keys are live SDS strings.
            d.entries()
                .into_iter()
                .map(|e| sds_bytes(unsafe { entry_key(e) }).to_vec())
                .collect()
        }
    };
    v.sort();
    v
}

fn sds(n: usize) -> usize {
    sds_header(n) + n + 1
}

fn free_all(a: &mut Faulty, o: NonNull<u8>) {
    // SAFETY: a live set, freed once.
    unsafe { free(a, o) };
    assert_eq!(a.requested(), 0);
}

#[test]
fn created_as_set_type_create_does() {
    let (mut a, cfg) = (Faulty::new(), AggConfig::default());
    let o = create(&mut a, &cfg, &AggCmd::SAdd { member: b"12" }).unwrap();
    assert_eq!((encoding(o), a.requested()), (Encoding::Intset, 16 + 8));
    assert_eq!(sadd(&mut a, o, &cfg, b"12"), Reply::Int(1));
    assert_eq!(a.requested(), 16 + 8 + 2);
    free_all(&mut a, o);
    let o = create(&mut a, &cfg, &AggCmd::SAdd { member: b"012" }).unwrap();
    assert_eq!((encoding(o), a.requested()), (Encoding::Hashtable, 16 + 56));
    assert_eq!(sadd(&mut a, o, &cfg, b"012"), Reply::Int(1));
    assert_eq!(a.requested(), (16 + 56 + 32 + 24 + sds(3)) as u64);
    assert_eq!(sadd(&mut a, o, &cfg, b"012"), Reply::Int(0));
    free_all(&mut a, o);
    for n in 0..2 {
        a.fail_in(n);
        assert!(create(&mut a, &cfg, &AggCmd::SAdd { member: b"1" }).is_err());
        a.fail_in(n);
        assert!(create(&mut a, &cfg, &AggCmd::SAdd { member: b"x" }).is_err());
        a.heal();
        assert_eq!(a.requested(), 0);
    }
}

#[test]
fn intset_widths_in_a_set() {
    let (mut a, cfg) = (Faulty::new(), AggConfig::default());
    let o = new_set(&mut a, &cfg, b"1");
    sadd(&mut a, o, &cfg, b"-2");
    assert_eq!(a.requested(), 16 + 8 + 2 * 2);
    sadd(&mut a, o, &cfg, b"100000");
    assert_eq!(a.requested(), 16 + 8 + 3 * 4);
    sadd(&mut a, o, &cfg, b"-10000000000");
    assert_eq!(a.requested(), 16 + 8 + 4 * 8);
    assert_eq!(encoding(o), Encoding::Intset);
    free_all(&mut a, o);
}

#[test]
fn converts_past_the_intset_limit() {
    for max in [512, 2] {
        let mut a = Faulty::new();
        let cfg = AggConfig {
            set_max_intset_entries: max,
            ..AggConfig::default()
        };
        let o = new_set(&mut a, &cfg, b"0");
        for i in 1..max {
            sadd(&mut a, o, &cfg, i.to_string().as_bytes());
        }
        assert_eq!((encoding(o), len(o)), (Encoding::Intset, max));
        assert_eq!(a.requested(), (16 + 8 + 2 * max) as u64);
        sadd(&mut a, o, &cfg, max.to_string().as_bytes());
        assert_eq!((encoding(o), len(o)), (Encoding::Hashtable, max + 1));
        let slots = (max + 1).next_power_of_two();
        let keys: usize = (0..=max).map(|i| 24 + sds(i.to_string().len())).sum();
        assert_eq!(a.requested(), (16 + 56 + 8 * slots + keys) as u64);
        free_all(&mut a, o);
    }
}

#[test]
fn a_non_integer_member_converts() {
    // 3 members: pre-sized to 4 slots, the fourth fits; 4 members: the fifth expands to 8.
    for n in [3, 4] {
        let (mut a, cfg) = (Faulty::new(), AggConfig::default());
        let o = new_set(&mut a, &cfg, b"1");
        for i in 2..=n {
            sadd(&mut a, o, &cfg, i.to_string().as_bytes());
        }
        sadd(&mut a, o, &cfg, b"a");
        assert_eq!(encoding(o), Encoding::Hashtable);
        let tables = if n == 3 { 32 } else { 32 + 64 };
        let want = 16 + 56 + tables + (n + 1) * (24 + sds(1));
        assert_eq!(a.requested(), want as u64);
        let mut want: Vec<Vec<u8>> = (1..=n).map(|i| i.to_string().into_bytes()).collect();
        want.push(b"a".to_vec());
        assert_eq!(members(o), want);
        free_all(&mut a, o);
    }
}

#[test]
fn every_refusal_leaves_the_set_unchanged() {
    let cfg = AggConfig {
        set_max_intset_entries: 4,
        ..AggConfig::default()
    };
    let cases: Vec<(bool, AggCmd<'_>)> = vec![
        (false, AggCmd::SAdd { member: b"9" }),
        (false, AggCmd::SAdd { member: b"99999" }),
        (false, AggCmd::SAdd { member: b"x" }),
        (false, AggCmd::SRem { member: b"2" }),
        (false, AggCmd::SPop),
        (true, AggCmd::SAdd { member: b"y" }),
        (true, AggCmd::SAdd { member: b"7" }),
        (true, AggCmd::SRem { member: b"x" }),
        (true, AggCmd::SPop),
    ];
    for (ht, cmd) in cases {
        for k in 0.. {
            let mut a = Faulty::new();
            let o = new_set(&mut a, &cfg, b"1");
            for m in [&b"2"[..], b"3", b"4"] {
                sadd(&mut a, o, &cfg, m);
            }
            if ht {
                sadd(&mut a, o, &cfg, b"x");
            }
            // A rehash step a refused command took may finish a rehash (and free the old
            // table), as a lookup would: the bytes are compared only when none is under way.
            let rehashing = ht && {
                // SAFETY: a dict-encoded set's `ptr` is its dict block.
                unsafe { Dict::load(robj_ptr(o)) }.rehashidx.is_some()
            };
            let before = (members(o), a.requested(), encoding(o));
            a.fail_in(k);
            let mut out = Vec::new();
            let r = apply(&mut a, o, &cfg, &cmd, &mut Rng::new(5), &mut out);
            a.heal();
            assert_eq!(a.requested(), sum_blocks(o));
            let done = r.is_ok();
            if !done {
                assert!(
                    matches!(r, Err(AggError::Alloc(_))),
                    "{cmd:?} at {k}: {r:?}"
                );
                assert!(out.is_empty());
                let after = (members(o), a.requested(), encoding(o));
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

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (-40i64..40).prop_map(|v| v.to_string().into_bytes()),
        1 => prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(40_000i64),
            Just(-3_000_000_000)
        ]
        .prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(b'a'..=b'e', 0..3),
        1 => prop_oneof![Just(b"01".to_vec()), Just(b"-0".to_vec()), Just(b"+1".to_vec())],
    ]
}

fn cmd() -> impl Strategy<Value = (u8, Vec<u8>)> {
    (0u8..10, member())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn set_matches_the_model(
        first in member(),
        ops in prop::collection::vec(cmd(), 1..150),
        max in prop_oneof![Just(512usize), 0usize..10],
        fail in prop::option::of(0u64..80),
        seed in any::<u64>(),
    ) {
        let mut a = Faulty::new();
        let cfg = AggConfig { set_max_intset_entries: max, ..AggConfig::default() };
        let o = create(&mut a, &cfg, &AggCmd::SAdd { member: &first }).unwrap();
        let mut model = AggData::new(crate::agg::AggType::Set);
        let mut rng = Rng::new(seed);
        if let Some(f) = fail {
            a.fail_in(f);
        }
        let (mut was_ht, mut freed) = (false, false);
        let mut ops = ops;
        ops.insert(0, (0, first.clone()));
        for (k, m) in &ops {
            let cmd = match k {
                0..=4 => AggCmd::SAdd { member: m },
                5 | 6 => AggCmd::SRem { member: m },
                7 => AggCmd::SIsMember { member: m },
                8 => AggCmd::SPop,
                _ => AggCmd::SCard,
            };
            let before = members(o);
            let mut out = Vec::new();
            let got = apply(&mut a, o, &cfg, &cmd, &mut rng, &mut out);
            prop_assert_eq!(a.requested(), sum_blocks(o));
            match got {
                Err(AggError::Alloc(_)) => {
                    prop_assert!(out.is_empty());
                    prop_assert_eq!(members(o), before);
                }
                _ => {
                    let AggData::Set(s) = &model else { unreachable!() };
                    let at = s.iter().position(|x| *x == out);
                    let mut want_out = Vec::new();
                    let want = model.apply(&cmd, &mut |_| at.expect("a member"), &mut want_out);
                    prop_assert_eq!(got, want);
                    prop_assert_eq!(&out, &want_out);
                }
            }
            let AggData::Set(s) = &model else { unreachable!() };
            let mut want = s.clone();
            want.sort();
            prop_assert_eq!(members(o), want);
            prop_assert_eq!(len(o), s.len());
            let ints = s.iter().all(|m| parse_i64(m).is_some());
            match encoding(o) {
                Encoding::Intset => prop_assert!(ints && s.len() <= max && !was_ht),
                _ => was_ht = true,
            }
            prop_assert!((ints && s.len() <= max) || was_ht, "over a limit but an intset");
            if s.is_empty() {
                // The store deletes an emptied set; start over as it would.
                a.heal();
                free_all(&mut a, o);
                freed = true;
                break;
            }
        }
        if !freed {
            a.heal();
            free_all(&mut a, o);
        }
    }
}
