//! Active defrag over jemalloc and zmalloc over jemalloc: moves never change a value, and
//! after deleting every other key (Redis's `tests/unit/memefficiency.tcl` pattern) the cycle
//! brings active / allocated under 1.15.

use std::collections::BTreeMap;

use fraglab_allocators::jemalloc::Jemalloc;
use fraglab_allocators::zmalloc::Zmalloc;
use fraglab_allocators::Allocator;
use fraglab_engine::defrag::DefragConfig;
use fraglab_engine::layout::{Compact, Redis};
use fraglab_engine::{Layout, SetOptions, Store, StoreConfig};
use proptest::prelude::*;

/// Settings that run whenever there is any fragmentation (the test's, like Redis's test
/// lowers them).
fn eager() -> DefragConfig {
    DefragConfig {
        ignore_bytes: 0,
        threshold_lower: 0,
        threshold_upper: 10,
        cycle_min: 75,
        cycle_max: 75,
        ..DefragConfig::default()
    }
}

fn value(i: u64, len: usize) -> Vec<u8> {
    match i % 5 {
        // Integers (robj with the integer in the pointer, or shared), short (embedded) and
        // long (raw SDS) strings.
        0 => (i * 7919).to_string().into_bytes(),
        _ => (0..len)
            .map(|j| b'a' + ((i as usize + j) % 26) as u8)
            .collect(),
    }
}

fn check<A: Allocator, L: Layout>(store: &mut Store<A, L>, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    assert_eq!(store.len(), model.len());
    let mut out = Vec::new();
    for (k, v) in model {
        out.clear();
        assert!(store.get_into(k, 1, &mut out).is_some(), "key {k:?} lost");
        assert_eq!(&out, v, "value of {:?} changed", String::from_utf8_lossy(k));
    }
}

/// Fills `n` keys, deletes every other one, runs defrag ticks; returns footprint / allocated
/// before and after, and the hits.
fn delete_half<A: Allocator, L: Layout>(alloc: A, n: u64) -> (f64, f64, u64) {
    let mut store: Store<A, L> = Store::new(alloc, StoreConfig::default()).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..n {
        let k = format!("key:{i:08}").into_bytes();
        let v = vec![b'a' + (i % 26) as u8; 151];
        store.set(&k, &v, SetOptions::default(), 0).unwrap();
        model.insert(k, v);
    }
    for i in (0..n).step_by(2) {
        let k = format!("key:{i:08}").into_bytes();
        assert!(store.delete(&k, 0));
        model.remove(&k);
    }
    let ratio = |s: &Store<A, L>| {
        let m = s.mem_stats();
        m.footprint_bytes as f64 / m.allocated_bytes as f64
    };
    let before = ratio(&store);
    let cfg = DefragConfig {
        ignore_bytes: 1 << 20,
        threshold_lower: 5,
        cycle_min: 65,
        cycle_max: 75,
        ..DefragConfig::default()
    };
    for _ in 0..100 {
        store.defrag_cycle(&cfg);
    }
    let after = ratio(&store);
    check(&mut store, &model);
    (
        before,
        after,
        store.stats().counters.defrag.active_defrag_hits,
    )
}

#[test]
fn defrag_brings_delete_half_under_1_15_redis_layout_zmalloc_jemalloc() {
    let (before, after, hits) =
        delete_half::<_, Redis>(Zmalloc::new(Jemalloc::new().unwrap(), false), 60_000);
    assert!(before > 1.7, "before {before}");
    assert!(
        after <= 1.15,
        "after {after} ({hits} hits, before {before})"
    );
    assert!(hits > 0);
}

#[test]
fn defrag_brings_delete_half_under_1_15_compact_layout_jemalloc() {
    let (before, after, hits) = delete_half::<_, Compact>(Jemalloc::new().unwrap(), 60_000);
    assert!(before > 1.7, "before {before}");
    assert!(
        after <= 1.15,
        "after {after} ({hits} hits, before {before})"
    );
}

#[test]
fn defrag_does_not_start_under_the_thresholds() {
    let mut store: Store<_, Redis> =
        Store::new(Jemalloc::new().unwrap(), StoreConfig::default()).unwrap();
    for i in 0..20_000u64 {
        store
            .set(
                format!("k{i}").as_bytes(),
                &[b'x'; 100],
                SetOptions::default(),
                0,
            )
            .unwrap();
    }
    // No deletes: little fragmentation, and Redis's 100 MiB ignore-bytes.
    for _ in 0..50 {
        store.defrag_cycle(&DefragConfig::default());
    }
    let d = store.stats().counters.defrag;
    assert_eq!((d.defrag_cycles, d.active_defrag_hits), (0, 0));
}

#[derive(Debug, Clone)]
enum Op {
    Set(u16, u16),
    Del(u16),
    Expire(u16),
    Defrag,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            6 => (0u16..600, 0u16..400).prop_map(|(k, l)| Op::Set(k, l)),
            3 => (0u16..600).prop_map(Op::Del),
            1 => (0u16..600).prop_map(Op::Expire),
            1 => Just(Op::Defrag),
        ],
        1..400,
    )
}

fn run_program<A: Allocator, L: Layout>(alloc: A, program: &[Op]) {
    let mut store: Store<A, L> = Store::new(alloc, StoreConfig::default()).unwrap();
    let mut model = BTreeMap::new();
    let cfg = eager();
    for op in program {
        match *op {
            Op::Set(k, l) => {
                let key = format!("k{k}").into_bytes();
                let v = value(u64::from(k) * 1000 + u64::from(l), usize::from(l));
                store.set(&key, &v, SetOptions::default(), 0).unwrap();
                model.insert(key, v);
            }
            Op::Del(k) => {
                let key = format!("k{k}").into_bytes();
                assert_eq!(store.delete(&key, 0), model.remove(&key).is_some());
            }
            Op::Expire(k) => {
                // A TTL far in the future: the key gets an expires entry (the redis layout's
                // second reference to the key SDS), and stays.
                let key = format!("k{k}").into_bytes();
                let _ = store.touch(&key, Some(1_000_000), 0);
            }
            Op::Defrag => {
                for _ in 0..3 {
                    store.defrag_cycle(&cfg);
                }
                check(&mut store, &model);
            }
        }
    }
    for _ in 0..20 {
        store.defrag_cycle(&cfg);
    }
    check(&mut store, &model);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn defrag_moves_never_change_a_value(program in ops()) {
        run_program::<_, Redis>(Jemalloc::new().unwrap(), &program);
        run_program::<_, Redis>(Zmalloc::new(Jemalloc::new().unwrap(), false), &program);
        run_program::<_, Redis>(Zmalloc::new(Jemalloc::new().unwrap(), true), &program);
        run_program::<_, Compact>(Jemalloc::new().unwrap(), &program);
        run_program::<_, Compact>(Zmalloc::new(Jemalloc::new().unwrap(), true), &program);
    }
}
