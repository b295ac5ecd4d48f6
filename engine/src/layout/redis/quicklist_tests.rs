//! Tests of the quicklist (`quicklist.rs`): node sizes at Redis 7.0's insert rule, and random
//! programs against a `VecDeque`.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::super::listpack::entry_size;
use super::super::testalloc::Tracked;
use super::*;

impl Quicklist {
    /// Checks the links, counts and sizes (tests).
    pub(in super::super) fn check(self) {
        let (mut count, mut nodes, mut prev) = (0, 0, None);
        let mut node = self.head();
        while let Some(n) = node {
            assert_eq!(n.prev(), prev);
            assert!(n.count() > 0, "no empty node");
            if !n.plain() {
                n.lp().check();
                assert_eq!((n.sz(), n.count()), (n.lp().bytes(), n.lp().len()));
            }
            count += n.count();
            nodes += 1;
            prev = Some(n);
            node = n.next();
        }
        assert_eq!(self.tail(), prev);
        assert_eq!((self.count(), self.nodes()), (count, nodes));
    }
}

fn contents(ql: Quicklist) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    ql.for_range(0, ql.count(), &mut |v| out.push(v.to_vec()));
    out
}

/// The nodes' element counts and listpack sizes, head first.
fn shape(ql: Quicklist) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut node = ql.head();
    while let Some(n) = node {
        out.push((n.count(), n.entry_size()));
        node = n.next();
    }
    out
}

fn check(a: &Tracked, ql: Quicklist, model: &VecDeque<Vec<u8>>) {
    ql.check();
    assert_eq!(contents(ql), Vec::from(model.clone()));
    a.assert_blocks(|f| ql.blocks(f));
}

fn release(mut a: Tracked, ql: Quicklist) {
    // SAFETY: live, dropped here.
    unsafe { ql.free(&mut a) };
    assert!(a.live.is_empty());
}

#[test]
fn struct_and_nodes_are_40_bytes() {
    let mut a = Tracked::new();
    let ql = Quicklist::create(&mut a, -2).unwrap();
    assert_eq!(a.live.values().copied().collect::<Vec<_>>(), vec![40]);
    assert_eq!(ql.fill(), -2);
    ql.push(&mut a, b"x", false).unwrap();
    let mut sizes: Vec<usize> = a.live.values().copied().collect();
    sizes.sort_unstable();
    // The struct, the node, and a listpack of 7 + "x" (1 + 1 + 1 backlen).
    assert_eq!(sizes, vec![10, 40, 40]);
    release(a, ql);
}

#[test]
fn fill_minus_two_splits_at_8_kib() {
    let mut a = Tracked::new();
    let ql = Quicklist::create(&mut a, -2).unwrap();
    let elem = [b'x'; 100];
    assert_eq!(entry_size(LpValue::Str(&elem)), 103);
    for _ in 0..200 {
        ql.push(&mut a, &elem, false).unwrap();
    }
    // 7 + 103 x 78 + 100 + 8 = 8149 fits 8192; with 79 elements, 8252 does not.
    assert_eq!(
        shape(ql),
        vec![(79, 7 + 79 * 103), (79, 7 + 79 * 103), (42, 7 + 42 * 103)]
    );
    check(&a, ql, &vec![elem.to_vec(); 200].into());
    release(a, ql);
}

#[test]
fn the_estimate_may_reach_the_limit_exactly() {
    let mut a = Tracked::new();
    let ql = Quicklist::create(&mut a, -2).unwrap();
    ql.push(&mut a, &[b'y'; 8000], false).unwrap();
    let sz = 7 + 5 + 8000 + 2;
    assert_eq!(shape(ql), vec![(1, sz)]);
    // sz + 170 + 8 == 8192: allowed (`<=`).
    ql.push(&mut a, &[b'z'; 170], false).unwrap();
    assert_eq!(shape(ql).len(), 1);
    // One byte more: a new node.
    let mut b = Tracked::new();
    let other = Quicklist::create(&mut b, -2).unwrap();
    other.push(&mut b, &[b'y'; 8000], false).unwrap();
    other.push(&mut b, &[b'z'; 171], false).unwrap();
    assert_eq!(shape(other), vec![(1, sz), (1, 7 + 2 + 171 + 2)]);
    release(b, other);
    // An element larger than the limit lives alone, and the next one gets a node too.
    ql.push(&mut a, &[b'w'; 10_000], false).unwrap();
    ql.push(&mut a, b"1", false).unwrap();
    assert_eq!(
        shape(ql).iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![2, 1, 1]
    );
    release(a, ql);
}

#[test]
fn other_negative_fills_use_their_byte_limits() {
    for (fill, per_node) in [(-1, 39), (-3, 158), (-5, 636)] {
        let mut a = Tracked::new();
        let ql = Quicklist::create(&mut a, fill).unwrap();
        for _ in 0..per_node + 1 {
            ql.push(&mut a, &[b'x'; 100], true).unwrap();
        }
        let limit = [4096, 8192, 16384, 32768, 65536][(-fill - 1) as usize];
        assert!(7 + 103 * (per_node - 1) + 108 <= limit);
        assert!(7 + 103 * per_node + 108 > limit);
        // LPUSH fills the head node; the new head holds the newest element.
        assert_eq!(
            shape(ql),
            vec![(1, 7 + 103), (per_node, 7 + per_node * 103)],
            "fill {fill}"
        );
        release(a, ql);
    }
}

#[test]
fn positive_fills_count_elements_within_the_safety_limit() {
    let mut a = Tracked::new();
    let ql = Quicklist::create(&mut a, 5).unwrap();
    for i in 0..12 {
        ql.push(&mut a, i.to_string().as_bytes(), false).unwrap();
    }
    // Small integers take 2 bytes each.
    assert_eq!(shape(ql), vec![(5, 17), (5, 17), (2, 11)]);
    release(a, ql);
    // A count the bytes reach first: `SIZE_SAFETY_LIMIT`. 1000-byte strings take 1004 bytes;
    // 7 + 1004 x 7 + 1000 + 8 = 8043 fits, 9047 does not.
    let mut a = Tracked::new();
    let ql = Quicklist::create(&mut a, 100).unwrap();
    for _ in 0..9 {
        ql.push(&mut a, &[b'q'; 1000], false).unwrap();
    }
    assert_eq!(shape(ql), vec![(8, 7 + 8 * 1004), (1, 7 + 1004)]);
    release(a, ql);
    // Fills above 32767 are clamped (`FILL_MAX`).
    let mut a = Tracked::new();
    let ql = Quicklist::create(&mut a, 65535).unwrap();
    assert_eq!(ql.fill(), 32767);
    release(a, ql);
}

#[test]
fn emptied_nodes_are_freed() {
    let mut a = Tracked::new();
    let ql = Quicklist::create(&mut a, 2).unwrap();
    let mut model = VecDeque::new();
    for i in 0..5 {
        let e = format!("e{i}").into_bytes();
        ql.push(&mut a, &e, false).unwrap();
        model.push_back(e);
    }
    assert_eq!(ql.nodes(), 3);
    let mut out = Vec::new();
    assert_eq!(ql.pop(&mut a, false, &mut out).unwrap(), Some(2));
    assert_eq!(out, b"e4");
    model.pop_back();
    assert_eq!(ql.nodes(), 2);
    check(&a, ql, &model);
    ql.trim(&mut a, 1, 1).unwrap();
    assert_eq!(
        (ql.nodes(), contents(ql)),
        (2, vec![b"e1".to_vec(), b"e2".to_vec()])
    );
    ql.trim(&mut a, 2, 0).unwrap();
    assert_eq!((ql.nodes(), ql.count()), (0, 0));
    a.assert_blocks(|f| ql.blocks(f));
    release(a, ql);
}

#[test]
fn a_refused_ltrim_changes_nothing() {
    for n in 0..8 {
        let mut a = Tracked::new();
        let ql = Quicklist::create(&mut a, 2).unwrap();
        let mut model = VecDeque::new();
        for i in 0..10 {
            let e = format!("element:{i}").into_bytes();
            ql.push(&mut a, &e, false).unwrap();
            model.push_back(e);
        }
        let before = a.live.clone();
        // Nodes of 2: the head node goes, the second is cut, the fourth is cut, the last goes.
        a.fail_in(n);
        match ql.trim(&mut a, 3, 3) {
            Ok(()) => {
                assert!(n >= 2, "the two cuts are the first two requests");
                model.drain(..3);
                model.truncate(4);
            }
            Err(_) => {
                assert!(n < 2);
                assert_eq!(ql.nodes(), 5);
                assert_eq!(
                    a.live.values().collect::<Vec<_>>().len(),
                    before.len(),
                    "as many blocks as before"
                );
            }
        }
        check(&a, ql, &model);
        release(a, ql);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Push(bool, Vec<u8>),
    Pop(bool),
    Trim(usize, usize),
}

fn elem() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (-300i64..300).prop_map(|i| i.to_string().into_bytes()),
        4 => prop::collection::vec(b'a'..=b'z', 0..80),
        1 => (100usize..3000).prop_map(|n| vec![b'L'; n]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), elem()).prop_map(|(h, e)| Op::Push(h, e)),
        3 => any::<bool>().prop_map(Op::Pop),
        1 => (0usize..12, 0usize..12).prop_map(|(l, r)| Op::Trim(l, r)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn quicklist_matches_a_deque(
        fill in prop_oneof![Just(-1i64), Just(-2), Just(1), Just(3), Just(16)],
        ops in prop::collection::vec((op(), prop::option::weighted(0.2, 0u64..4)), 1..200),
    ) {
        let mut a = Tracked::new();
        let ql = Quicklist::create(&mut a, fill).unwrap();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for (op, fail) in ops {
            if let Some(n) = fail {
                a.fail_in(n);
            }
            let before = model.clone();
            let ok = match op {
                Op::Push(head, e) => {
                    let r = ql.push(&mut a, &e, head);
                    if r.is_ok() {
                        if head { model.push_front(e) } else { model.push_back(e) }
                    }
                    r.is_ok()
                }
                Op::Pop(head) => {
                    let mut out = vec![b'-'];
                    match ql.pop(&mut a, head, &mut out) {
                        Ok(got) => {
                            let want = if head { model.pop_front() } else { model.pop_back() };
                            prop_assert_eq!(got, want.as_ref().map(Vec::len));
                            let mut expect = vec![b'-'];
                            expect.extend(want.unwrap_or_default());
                            prop_assert_eq!(out, expect);
                            true
                        }
                        Err(_) => {
                            prop_assert_eq!(out, vec![b'-']);
                            false
                        }
                    }
                }
                Op::Trim(l, r) => {
                    let l = l.min(model.len());
                    let r = r.min(model.len() - l);
                    let res = ql.trim(&mut a, l, r);
                    if res.is_ok() {
                        model.drain(..l);
                        model.truncate(model.len() - r);
                    }
                    res.is_ok()
                }
            };
            prop_assert!(ok || a.failed(), "only a refusal fails");
            if !ok {
                prop_assert_eq!(&model, &before);
            }
            check(&a, ql, &model);
        }
        release(a, ql);
    }
}
