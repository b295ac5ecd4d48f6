//! Tests of the skiplist (`skiplist.rs`) against Redis 7.0's sizes and a sorted `Vec`.

use std::ptr::NonNull;

use proptest::prelude::*;

use super::super::sds::{new_sds, sds_header};
use super::super::testalloc::Tracked;
use super::*;
use crate::util::Rng;

fn sds(a: &mut Tracked, bytes: &[u8]) -> NonNull<u8> {
    let hdr = sds_header(bytes.len());
    let s = new_sds(a, bytes, hdr, bytes.len()).unwrap();
    // SAFETY: the string starts after its header.
    unsafe { s.base.add(hdr) }
}

fn contents(zsl: Zsl) -> Vec<(f64, Vec<u8>)> {
    let mut out = Vec::new();
    zsl.for_each_node(&mut |n, _| out.push((n.score(), n.member().to_vec())));
    out
}

/// Every invariant a reader relies on: order, ranks and spans, backward links, the tail.
fn check(a: &Tracked, zsl: Zsl, model: &[(f64, Vec<u8>)]) {
    assert_eq!(contents(zsl), model);
    assert_eq!(zsl.len(), model.len());
    let mut prev: Option<Node> = None;
    for (r, (score, member)) in model.iter().enumerate() {
        let n = zsl.by_rank(r + 1).expect("a node at every rank");
        assert_eq!((n.score(), n.member()), (*score, &member[..]));
        assert_eq!(n.backward(), prev);
        prev = Some(n);
    }
    assert_eq!(zsl.tail(), prev);
    assert_eq!(zsl.by_rank(model.len() + 1), None);
    assert_eq!(zsl.by_rank(0), None);
    a.assert_blocks(|f| zsl.blocks(f));
}

#[test]
fn struct_and_header_are_32_and_536_bytes() {
    let mut a = Tracked::new();
    let zsl = Zsl::create(&mut a).unwrap();
    let mut sizes: Vec<usize> = a.live.values().copied().collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![32, 536]);
    assert_eq!((zsl.len(), zsl.level(), zsl.first()), (0, 1, None));
    // SAFETY: the skiplist is live and dropped here.
    unsafe { zsl.free(&mut a) };
    assert!(a.live.is_empty());
}

#[test]
fn nodes_are_24_plus_16_per_level() {
    let mut a = Tracked::new();
    let zsl = Zsl::create(&mut a).unwrap();
    let mut rng = Rng::new(42);
    let mut replay = Rng::new(42);
    for i in 0..500u32 {
        let member = format!("m{i}");
        let s = sds(&mut a, member.as_bytes());
        let before = a.live.clone();
        let n = zsl.insert(&mut a, &mut rng, f64::from(i % 7), s).unwrap();
        let level = random_level(&mut replay);
        let added: Vec<_> = a
            .live
            .iter()
            .filter(|(p, _)| !before.contains_key(p))
            .collect();
        assert_eq!(
            added,
            vec![(&(n.ptr().as_ptr() as usize), &node_size(level))]
        );
    }
    let mut levels = Vec::new();
    zsl.for_each_node(&mut |_, l| levels.push(l));
    assert!(levels.iter().any(|&l| l >= 3), "{levels:?}");
    assert_eq!(node_size(1), 40);
    assert_eq!(node_size(4), 88);
    a.assert_blocks(|f| zsl.blocks(f));
    // SAFETY: live, dropped here.
    unsafe { zsl.free(&mut a) };
    assert!(a.live.is_empty());
}

#[test]
fn levels_average_four_thirds() {
    let mut rng = Rng::new(7);
    let n = 1_000_000;
    let mut hist = [0usize; MAX_LEVEL + 1];
    for _ in 0..n {
        hist[random_level(&mut rng)] += 1;
    }
    let mean = hist.iter().enumerate().map(|(l, c)| l * c).sum::<usize>() as f64 / n as f64;
    assert!((mean - 4.0 / 3.0).abs() < 0.005, "mean level {mean}");
    // P(level = 1) = 3/4, P(level = 2) = 3/16.
    assert!((hist[1] as f64 / n as f64 - 0.75).abs() < 0.003);
    assert!((hist[2] as f64 / n as f64 - 0.1875).abs() < 0.003);
    assert_eq!(hist[0], 0);
}

#[test]
fn update_score_stays_in_place_only_between_its_neighbours() {
    let mut a = Tracked::new();
    let zsl = Zsl::create(&mut a).unwrap();
    let mut rng = Rng::new(1);
    for (score, m) in [(1.0, "a"), (2.0, "b"), (3.0, "c")] {
        let s = sds(&mut a, m.as_bytes());
        zsl.insert(&mut a, &mut rng, score, s).unwrap();
    }
    let b = zsl.by_rank(2).unwrap();
    let allocs = a.stats().counters.allocs;
    // Strictly between the neighbours: the same node, no allocation.
    let same = zsl.update_score(&mut a, &mut rng, 2.0, b"b", 2.5).unwrap();
    assert_eq!((same, a.stats().counters.allocs), (b, allocs));
    // Equal to a neighbour's score: moved (Redis's rule is strict), a new node.
    let moved = zsl.update_score(&mut a, &mut rng, 2.5, b"b", 3.0).unwrap();
    assert_eq!(a.stats().counters.allocs, allocs + 1);
    assert_eq!(moved.member(), b"b");
    check(
        &a,
        zsl,
        &[
            (1.0, b"a".to_vec()),
            (3.0, b"b".to_vec()),
            (3.0, b"c".to_vec()),
        ],
    );
    // A refused allocation changes nothing.
    a.fail_in(0);
    assert!(zsl.update_score(&mut a, &mut rng, 3.0, b"b", -1.0).is_err());
    check(
        &a,
        zsl,
        &[
            (1.0, b"a".to_vec()),
            (3.0, b"b".to_vec()),
            (3.0, b"c".to_vec()),
        ],
    );
    // SAFETY: live, dropped here.
    unsafe { zsl.free(&mut a) };
    assert!(a.live.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, i8),
    Delete(u8),
    Update(u8, i8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..40, -5i8..5).prop_map(|(m, s)| Op::Insert(m, s)),
        2 => (0u8..40).prop_map(Op::Delete),
        2 => (0u8..40, -5i8..5).prop_map(|(m, s)| Op::Update(m, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn skiplist_matches_a_sorted_vec(ops in prop::collection::vec(op(), 1..300), seed in any::<u64>()) {
        let mut a = Tracked::new();
        let mut rng = Rng::new(seed);
        let zsl = Zsl::create(&mut a).unwrap();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        let key = |x: &(f64, Vec<u8>), y: &(f64, Vec<u8>)| {
            x.0.partial_cmp(&y.0).unwrap().then_with(|| x.1.cmp(&y.1))
        };
        for op in ops {
            match op {
                Op::Insert(m, s) => {
                    let member = format!("member:{m}").into_bytes();
                    if model.iter().all(|(_, x)| *x != member) {
                        let ele = sds(&mut a, &member);
                        zsl.insert(&mut a, &mut rng, f64::from(s) / 2.0, ele).unwrap();
                        model.push((f64::from(s) / 2.0, member));
                        model.sort_by(key);
                    }
                }
                Op::Delete(m) => {
                    let member = format!("member:{m}").into_bytes();
                    let at = model.iter().position(|(_, x)| *x == member);
                    let score = at.map_or(0.0, |i| model[i].0);
                    prop_assert_eq!(zsl.delete(&mut a, score, &member), at.is_some());
                    if let Some(i) = at {
                        model.remove(i);
                    }
                }
                Op::Update(m, s) => {
                    let member = format!("member:{m}").into_bytes();
                    if let Some(i) = model.iter().position(|(_, x)| *x == member) {
                        let new = f64::from(s) / 2.0;
                        let n = zsl.update_score(&mut a, &mut rng, model[i].0, &member, new).unwrap();
                        prop_assert_eq!((n.score(), n.member()), (new, &member[..]));
                        model[i].0 = new;
                        model.sort_by(key);
                    }
                }
            }
            check(&a, zsl, &model);
        }
        // SAFETY: live, dropped here.
        unsafe { zsl.free(&mut a) };
        prop_assert!(a.live.is_empty());
    }
}
