use proptest::prelude::*;

use super::super::testkit::Faulty;
use super::*;

fn raw(lp: Listpack) -> Vec<u8> {
    // SAFETY: the listpack is live with `bytes()` bytes.
    unsafe { std::slice::from_raw_parts(lp.ptr().as_ptr(), lp.bytes()) }.to_vec()
}

fn texts(lp: &Listpack) -> Vec<Vec<u8>> {
    lp.iter().map(|v| v.to_vec()).collect()
}

fn size_of(s: &[u8]) -> usize {
    entry_size(LpValue::Str(s))
}

#[test]
fn empty_is_seven_bytes() {
    let mut a = Faulty::new();
    let lp = Listpack::new(&mut a).unwrap();
    assert_eq!(raw(lp), [7, 0, 0, 0, 0, 0, 0xFF]);
    assert_eq!(lp.len(), 0);
    assert_eq!(lp.first(), None);
    assert_eq!(a.requested(), 7);
    // SAFETY: live, freed once.
    unsafe { lp.free(&mut a) };
    assert_eq!(a.requested(), 0);
}

#[test]
fn entry_sizes_follow_lp_encode_get_type() {
    assert_eq!(size_of(b"hello"), 1 + 5 + 1);
    assert_eq!(size_of(b""), 2);
    // Integers: 7-bit, 13-bit, 16-, 24-, 32-, 64-bit, plus a 1-byte backlen.
    for (s, n) in [
        ("0", 2),
        ("127", 2),
        ("128", 3),
        ("1000", 3),
        ("4095", 3),
        ("4096", 4),
        ("-1", 3),
        ("-4096", 3),
        ("-4097", 4),
        ("32767", 4),
        ("-32768", 4),
        ("32768", 5),
        ("8388607", 5),
        ("-8388608", 5),
        ("8388608", 6),
        ("2147483647", 6),
        ("-2147483648", 6),
        ("2147483648", 10),
        ("-9223372036854775808", 10),
        ("9223372036854775807", 10),
    ] {
        assert_eq!(size_of(s.as_bytes()), n, "{s}");
    }
    // Not canonical: strings.
    for s in ["01", "-0", "+1", " 1", "1 ", "9223372036854775808"] {
        assert_eq!(size_of(s.as_bytes()), 1 + s.len() + 1, "{s}");
    }
    // String headers at 63/64 and 4095/4096 bytes; backlen at 127/128 and 16382/16383.
    let s = |n: usize| vec![b'x'; n];
    assert_eq!(size_of(&s(63)), 1 + 63 + 1);
    assert_eq!(size_of(&s(64)), 2 + 64 + 1);
    assert_eq!(size_of(&s(125)), 2 + 125 + 1); // 127-byte entry: 1-byte backlen
    assert_eq!(size_of(&s(126)), 2 + 126 + 2); // 128-byte entry: 2-byte backlen
    assert_eq!(size_of(&s(4095)), 2 + 4095 + 2);
    assert_eq!(size_of(&s(4096)), 5 + 4096 + 2);
    assert_eq!(size_of(&s(16377)), 5 + 16377 + 2); // 16382
    assert_eq!(size_of(&s(16378)), 5 + 16378 + 3); // 16383
    assert_eq!(backlen_size(2_097_150), 3);
    assert_eq!(backlen_size(2_097_151), 4);
    assert_eq!(backlen_size(268_435_454), 4);
    assert_eq!(backlen_size(268_435_455), 5);
}

#[test]
fn bytes_are_redis_bytes() {
    let mut a = Faulty::new();
    let mut lp = Listpack::new(&mut a).unwrap();
    lp.append(&mut a, LpValue::Str(b"hello")).unwrap();
    lp.append(&mut a, LpValue::Str(b"1000")).unwrap();
    lp.append(&mut a, LpValue::Int(-1)).unwrap();
    let mut want = vec![7 + 7 + 3 + 3, 0, 0, 0, 3, 0];
    want.extend_from_slice(&[0x85, b'h', b'e', b'l', b'l', b'o', 6]);
    want.extend_from_slice(&[0xC3, 0xE8, 2]);
    want.extend_from_slice(&[0xDF, 0xFF, 2]); // -1 as 13 bits: 0x1FFF
    want.push(0xFF);
    assert_eq!(raw(lp), want);
    assert_eq!(a.requested(), want.len() as u64);
    let long = vec![b'y'; 200];
    lp.append(&mut a, LpValue::Str(&long)).unwrap();
    let tail = &raw(lp)[want.len() - 1..];
    // 12-bit string: 0xE0 | 0, 200; backlen of 202 = [1, 128 | 74].
    assert_eq!(&tail[..2], &[0xE0, 200]);
    assert_eq!(&tail[202..], &[1, 128 | 74, 0xFF]);
    assert_eq!(
        texts(&lp),
        vec![b"hello".to_vec(), b"1000".to_vec(), b"-1".to_vec(), long]
    );
    lp.check();
    // SAFETY: live, freed once.
    unsafe { lp.free(&mut a) };
}

#[test]
fn integers_round_trip() {
    let mut a = Faulty::new();
    let mut lp = Listpack::new(&mut a).unwrap();
    let vals = [
        0,
        127,
        128,
        -1,
        -4096,
        4095,
        -4097,
        32767,
        -32768,
        8_388_607,
        -8_388_608,
        i32::MAX as i64,
        i32::MIN as i64,
        i64::MAX,
        i64::MIN,
    ];
    for v in vals {
        lp.append(&mut a, LpValue::Int(v)).unwrap();
    }
    let got: Vec<LpValue<'_>> = lp.iter().collect();
    assert_eq!(got, vals.map(LpValue::Int).to_vec());
    lp.check();
    // SAFETY: live, freed once.
    unsafe { lp.free(&mut a) };
}

#[test]
fn find_compares_as_lp_compare() {
    let mut a = Faulty::new();
    let mut lp = Listpack::new(&mut a).unwrap();
    for s in ["f1", "1000", "1000", "v2", "x", "-5"] {
        lp.append(&mut a, LpValue::Str(s.as_bytes())).unwrap();
    }
    let first = lp.first().unwrap();
    // Fields only (skip 1): "1000" as a value is not found as a field.
    assert_eq!(lp.find(first, b"1000", 1), lp.seek(2));
    assert_eq!(lp.find(first, b"v2", 1), None);
    assert_eq!(lp.find(first, b"v2", 0), lp.seek(3));
    assert_eq!(lp.find(first, b"-5", 0), lp.seek(5));
    assert_eq!(lp.find(first, b"01000", 0), None);
    assert_eq!(lp.find(first, b"-05", 0), None);
    assert_eq!(lp.seek(-1), lp.seek(5));
    assert_eq!(lp.seek(6), None);
    assert_eq!(lp.seek(-7), None);
    // SAFETY: live, freed once.
    unsafe { lp.free(&mut a) };
}

#[test]
fn edits_realloc_to_the_exact_size() {
    let mut a = Faulty::new();
    let mut lp = Listpack::new(&mut a).unwrap();
    lp.append(&mut a, LpValue::Str(b"b")).unwrap();
    lp.prepend(&mut a, LpValue::Str(b"a")).unwrap();
    lp.insert(&mut a, 2, LpValue::Str(b"d")).unwrap();
    lp.insert(&mut a, 2, LpValue::Str(b"c")).unwrap();
    assert_eq!(texts(&lp), [b"a", b"b", b"c", b"d"].map(|s| s.to_vec()));
    assert_eq!(a.requested(), lp.bytes() as u64);
    assert_eq!(lp.bytes(), 7 + 4 * 3);
    let off = lp.seek(1).unwrap();
    lp.replace(&mut a, off, LpValue::Str(&[b'z'; 100])).unwrap();
    assert_eq!(lp.bytes(), 7 + 3 * 3 + 2 + 100 + 1);
    assert_eq!(a.requested(), lp.bytes() as u64);
    let off = lp.seek(1).unwrap();
    lp.replace(&mut a, off, LpValue::Str(b"7")).unwrap();
    assert_eq!(lp.bytes(), 7 + 4 * 3 - 1);
    assert_eq!(lp.get(off), LpValue::Int(7));
    let next = lp.delete(&mut a, off).unwrap();
    assert_eq!(next, lp.seek(1));
    assert_eq!(texts(&lp), [b"a", b"c", b"d"].map(|s| s.to_vec()));
    lp.replace_at(&mut a, -1, LpValue::Int(-300)).unwrap();
    assert_eq!(lp.get(lp.seek(2).unwrap()), LpValue::Int(-300));
    lp.insert(&mut a, 0, LpValue::Str(b"x")).unwrap();
    lp.delete_at(&mut a, 0).unwrap();
    assert_eq!(a.requested(), lp.bytes() as u64);
    let last = lp.seek(-1).unwrap();
    assert_eq!(lp.delete(&mut a, last).unwrap(), None);
    lp.delete_range_index(&mut a, 0, 5).unwrap();
    assert_eq!(lp.len(), 0);
    assert_eq!(raw(lp), [7, 0, 0, 0, 0, 0, 0xFF]);
    assert_eq!(a.requested(), 7);
    // SAFETY: live, freed once.
    unsafe { lp.free(&mut a) };
}

#[test]
fn count_past_65534_is_unknown_then_counted() {
    let mut a = Faulty::new();
    let mut lp = Listpack::new(&mut a).unwrap();
    for i in 0..65536 {
        lp.append(&mut a, LpValue::Int(i % 100)).unwrap();
    }
    assert_eq!(lp.numele(), NUMELE_UNKNOWN);
    assert_eq!(lp.len(), 65536);
    lp.delete_range_index(&mut a, 0, 2).unwrap();
    assert_eq!(lp.numele(), NUMELE_UNKNOWN);
    // `lpLength` counts and, as the count fits again, caches it.
    assert_eq!(lp.len(), 65534);
    assert_eq!(lp.numele(), 65534);
    assert_eq!(a.requested(), lp.bytes() as u64);
    // SAFETY: live, freed once.
    unsafe { lp.free(&mut a) };
}

#[test]
fn refused_edits_leave_the_listpack_unchanged() {
    let mut a = Faulty::new();
    let mut lp = Listpack::new(&mut a).unwrap();
    for s in ["alpha", "2", "gamma", "delta"] {
        lp.append(&mut a, LpValue::Str(s.as_bytes())).unwrap();
    }
    let before = raw(lp);
    type Op = fn(&mut Listpack, &mut Faulty) -> Result<(), AllocError>;
    let ops: [Op; 6] = [
        |lp, a| lp.append(a, LpValue::Str(b"epsilon")),
        |lp, a| lp.prepend(a, LpValue::Int(7)),
        |lp, a| lp.replace(a, lp.seek(0).unwrap(), LpValue::Str(b"a")),
        |lp, a| lp.replace(a, lp.seek(1).unwrap(), LpValue::Str(&[b'q'; 80])),
        |lp, a| lp.delete(a, lp.seek(2).unwrap()).map(|_| ()),
        |lp, a| lp.delete_range(a, lp.seek(1).unwrap(), 2),
    ];
    for (i, op) in ops.iter().enumerate() {
        a.fail_in(0);
        assert!(op(&mut lp, &mut a).is_err(), "op {i}");
        a.heal();
        assert_eq!(raw(lp), before, "op {i}");
        assert_eq!(a.requested(), before.len() as u64);
    }
    // SAFETY: live, freed once.
    unsafe { lp.free(&mut a) };
}

#[derive(Debug, Clone)]
enum Op {
    Insert(usize, Vec<u8>),
    Replace(usize, Vec<u8>),
    Delete(usize),
    DeleteRange(usize, usize),
    Find(Vec<u8>, usize),
}

fn elem() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string().into_bytes()),
        (-5000i64..5000).prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(b'0'..=b'9', 0..4),
        prop::collection::vec(any::<u8>(), 0..80),
        (60usize..70).prop_map(|n| vec![b'x'; n]),
        (120usize..135).prop_map(|n| vec![b'y'; n]),
        Just(vec![b'z'; 4100]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), elem()).prop_map(|(i, e)| Op::Insert(i, e)),
        2 => (any::<usize>(), elem()).prop_map(|(i, e)| Op::Replace(i, e)),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => (any::<usize>(), 0usize..4).prop_map(|(i, n)| Op::DeleteRange(i, n)),
        1 => (elem(), 0usize..3).prop_map(|(e, s)| Op::Find(e, s)),
    ]
}

proptest! {
    #[test]
    fn listpack_matches_a_vec(ops in prop::collection::vec(op(), 1..60), fail in 0u64..40) {
        let mut a = Faulty::new();
        let mut lp = Listpack::new(&mut a).unwrap();
        let mut model: Vec<Vec<u8>> = Vec::new();
        // One request, somewhere in the run, is refused.
        a.fail_in(fail);
        for op in ops {
            let before = raw(lp);
            let r = match &op {
                Op::Insert(i, e) => {
                    let i = i % (model.len() + 1);
                    let r = lp.insert(&mut a, i, LpValue::Str(e));
                    if r.is_ok() { model.insert(i, e.clone()); }
                    r
                }
                Op::Replace(i, e) if !model.is_empty() => {
                    let i = i % model.len();
                    let r = lp.replace(&mut a, lp.seek(i as i64).unwrap(), LpValue::Str(e));
                    if r.is_ok() { model[i] = e.clone(); }
                    r
                }
                Op::Delete(i) if !model.is_empty() => {
                    let i = i % model.len();
                    let r = lp.delete(&mut a, lp.seek(i as i64).unwrap()).map(|_| ());
                    if r.is_ok() { model.remove(i); }
                    r
                }
                Op::DeleteRange(i, n) if !model.is_empty() => {
                    let i = i % model.len();
                    let r = lp.delete_range_index(&mut a, i as i64, *n);
                    if r.is_ok() { model.drain(i..(i + n).min(model.len())); }
                    r
                }
                Op::Find(e, skip) => {
                    let want = model.iter().enumerate()
                        .find(|(i, m)| i % (skip + 1) == 0 && *m == e)
                        .map(|(i, _)| i);
                    let got = lp.first().and_then(|f| lp.find(f, e, *skip));
                    prop_assert_eq!(got, want.map(|i| lp.seek(i as i64).unwrap()));
                    Ok(())
                }
                _ => Ok(()),
            };
            if r.is_err() {
                prop_assert_eq!(raw(lp), before);
            }
            lp.check();
            prop_assert_eq!(lp.len(), model.len());
            prop_assert_eq!(texts(&lp), model.clone());
            prop_assert_eq!(a.requested(), lp.bytes() as u64);
            prop_assert_eq!(a.live_blocks(), 1);
        }
        // SAFETY: live, freed once.
        unsafe { lp.free(&mut a) };
        prop_assert_eq!(a.requested(), 0);
    }
}
