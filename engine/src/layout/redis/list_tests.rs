//! Tests of the LIST type (`list.rs`) against the plain model (`agg::model`).

use proptest::prelude::*;

use super::super::testalloc::Tracked;
use super::*;
use crate::agg::model::AggData;
use crate::agg::{split_elems, AggType};
use crate::util::Rng;

/// Runs `cmd` on both the object and the model; on a refusal, checks the object is unchanged.
fn run(
    a: &mut Tracked,
    o: NonNull<u8>,
    cfg: &AggConfig,
    model: &mut AggData,
    cmd: AggCmd<'_>,
) -> Result<(), TestCaseError> {
    let mut rng = Rng::new(0);
    let (mut got, mut want) = (vec![b'-'], vec![b'-']);
    match apply(a, o, cfg, &cmd, &mut rng, &mut got) {
        Ok(r) => {
            let w = model.apply(&cmd, &mut |_| 0, &mut want).unwrap();
            prop_assert_eq!(r, w, "{:?}", cmd);
            prop_assert_eq!(&got, &want, "{:?}", cmd);
            if let Reply::Array(n) = r.0 {
                prop_assert_eq!(split_elems(&got[1..]).len(), n);
            }
        }
        Err(e) => {
            prop_assert!(a.failed(), "{:?} failed with {:?} unasked", cmd, e);
            prop_assert_eq!(got, vec![b'-']);
        }
    }
    prop_assert_eq!(len(o), model.len());
    let mut all = Vec::new();
    apply(
        a,
        o,
        cfg,
        &AggCmd::LRange { start: 0, stop: -1 },
        &mut rng,
        &mut all,
    )
    .unwrap();
    let mut expect = Vec::new();
    model
        .clone()
        .apply(
            &AggCmd::LRange { start: 0, stop: -1 },
            &mut |_| 0,
            &mut expect,
        )
        .unwrap();
    prop_assert_eq!(all, expect);
    quicklist(o).check();
    a.assert_blocks(|f| blocks(o, f));
    Ok(())
}

#[test]
fn a_new_list_is_a_quicklist_and_a_robj() {
    let mut a = Tracked::new();
    let cfg = AggConfig::default();
    let o = create(&mut a, &cfg, &AggCmd::LPush { elem: b"x" }).unwrap();
    let mut sizes: Vec<usize> = a.live.values().copied().collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![16, 40]);
    assert_eq!(encoding(o), Encoding::Quicklist);
    // SAFETY: a live robj: type 1 (`OBJ_LIST`), encoding 9, refcount 1.
    unsafe {
        assert_eq!(crate::util::read_at::<u8>(o, 0), 1 | 9 << 4);
        assert_eq!(crate::util::read_at::<i32>(o, 4), 1);
    }
    let mut out = Vec::new();
    let r = apply(
        &mut a,
        o,
        &cfg,
        &AggCmd::LPush { elem: b"x" },
        &mut Rng::new(0),
        &mut out,
    );
    assert_eq!(r, Ok((Reply::Int(1), 1)));
    // SAFETY: live, freed once.
    unsafe { free(&mut a, o) };
    assert!(a.live.is_empty());
}

#[test]
fn ltrim_of_everything_leaves_an_empty_list() {
    let mut a = Tracked::new();
    let cfg = AggConfig::default();
    let o = create(&mut a, &cfg, &AggCmd::RPush { elem: b"a" }).unwrap();
    let mut out = Vec::new();
    let mut rng = Rng::new(0);
    for e in [&b"a"[..], b"bb", b"123"] {
        apply(
            &mut a,
            o,
            &cfg,
            &AggCmd::RPush { elem: e },
            &mut rng,
            &mut out,
        )
        .unwrap();
    }
    let r = apply(
        &mut a,
        o,
        &cfg,
        &AggCmd::LTrim { start: 5, stop: 10 },
        &mut rng,
        &mut out,
    );
    assert_eq!(r, Ok((Reply::Ok, -6)));
    assert_eq!(len(o), 0);
    // The quicklist struct and the robj remain, for the caller to delete.
    a.assert_blocks(|f| blocks(o, f));
    assert_eq!(a.live.len(), 2);
    // SAFETY: live, freed once.
    unsafe { free(&mut a, o) };
    assert!(a.live.is_empty());
}

fn elem() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (-20000i64..20000).prop_map(|i| i.to_string().into_bytes()),
        1 => Just(b"007".to_vec()),
        4 => prop::collection::vec(any::<u8>(), 0..70),
        1 => (200usize..5000).prop_map(|n| vec![b'L'; n]),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Push(bool, Vec<u8>),
    Pop(bool),
    Range(i64, i64),
    Trim(i64, i64),
}

fn index() -> impl Strategy<Value = i64> {
    prop_oneof![-30i64..30, Just(i64::MIN), Just(i64::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<bool>(), elem()).prop_map(|(h, e)| Op::Push(h, e)),
        3 => any::<bool>().prop_map(Op::Pop),
        2 => (index(), index()).prop_map(|(s, e)| Op::Range(s, e)),
        1 => (index(), index()).prop_map(|(s, e)| Op::Trim(s, e)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn lists_match_the_model(
        fill in prop_oneof![Just(-2i64), Just(-1), Just(2), Just(7)],
        ops in prop::collection::vec((op(), prop::option::weighted(0.15, 0u64..4)), 1..150),
    ) {
        let mut a = Tracked::new();
        let cfg = AggConfig { list_max_listpack_size: fill, ..AggConfig::default() };
        let o = create(&mut a, &cfg, &AggCmd::LPush { elem: b"" }).unwrap();
        let mut model = AggData::new(AggType::List);
        for (op, fail) in ops {
            if let Some(n) = fail {
                a.fail_in(n);
            }
            let cmd = match &op {
                Op::Push(true, e) => AggCmd::LPush { elem: e },
                Op::Push(false, e) => AggCmd::RPush { elem: e },
                Op::Pop(true) => AggCmd::LPop,
                Op::Pop(false) => AggCmd::RPop,
                Op::Range(start, stop) => AggCmd::LRange { start: *start, stop: *stop },
                Op::Trim(start, stop) => AggCmd::LTrim { start: *start, stop: *stop },
            };
            run(&mut a, o, &cfg, &mut model, cmd)?;
        }
        // SAFETY: live, freed once.
        unsafe { free(&mut a, o) };
        prop_assert!(a.live.is_empty());
    }
}
