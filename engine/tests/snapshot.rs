//! A snapshot reloads into an equal store: every layout, over allocators of each kind, after
//! deletes, expiry and eviction, with strings and every aggregate type.

use fraglab_allocators::{AllocSpec, Allocator};
use fraglab_engine::agg::model::AggData;
use fraglab_engine::agg::AggCmd;
use fraglab_engine::snapshot::{Reader, Record, Value, Writer};
use fraglab_engine::{
    with_store, Layout, LayoutKind, Policy, SetOptions, Store, StoreConfig, WithStore,
};

/// Fills a store, dumps it, restores the dump into a fresh store of the same kind, and
/// returns both stores' records (sorted by key) and the keys the first one held.
struct RoundTrip {
    limit: Option<u64>,
    spec: AllocSpec,
    layout: LayoutKind,
}

fn records(file: &[u8]) -> Vec<Record> {
    let mut r = Reader::new(file).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        out.push(rec);
    }
    // A hash's fields and a set's members have no order to keep (Redis's dict encodings
    // iterate by hash bucket): compare them sorted.
    for rec in &mut out {
        match &mut rec.value {
            Value::Agg(AggData::Hash(h)) => h.sort(),
            Value::Agg(AggData::Set(m)) => m.sort(),
            _ => {}
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn dump<A: Allocator, L: Layout>(store: &mut Store<A, L>, now: u64) -> Vec<u8> {
    let mut w = Writer::new(Vec::new()).unwrap();
    assert!(store
        .dump(now, &mut |k, f, e, v| w.record(k, f, e, v).map(|_| true))
        .unwrap());
    let (file, keys, bytes) = w.finish().unwrap();
    assert_eq!(bytes, file.len() as u64);
    assert_eq!(keys, records(&file).len() as u64);
    file
}

impl WithStore for &RoundTrip {
    type Output = (Vec<u8>, usize);
    fn run<A: Allocator, L: Layout>(self, mut store: Store<A, L>) -> Self::Output {
        let agg = L::KIND == LayoutKind::Redis || L::KIND == LayoutKind::Compact;
        let mut out = Vec::new();
        for i in 0..4000u64 {
            let key = format!("key:{i}");
            let value = vec![b'a' + (i % 26) as u8; 10 + (i as usize * 37) % 900];
            let ttl = (i % 5 == 0).then_some(10 + (i % 3) as i64 * 100);
            let _ = store.set(
                key.as_bytes(),
                &value,
                SetOptions {
                    ttl,
                    flags: i as u32 % 3,
                },
                1,
            );
            if i % 7 == 0 {
                store.delete(format!("key:{}", i / 2).as_bytes(), 1);
            }
            if agg && i % 50 == 0 {
                let k = format!("agg:{i}");
                for j in 0..(i % 300) {
                    let m = format!("m{j}");
                    let cmd = match (i / 50) % 4 {
                        0 => AggCmd::HSet {
                            field: m.as_bytes(),
                            value: b"v",
                        },
                        1 => AggCmd::SAdd {
                            member: m.as_bytes(),
                        },
                        2 => AggCmd::RPush { elem: m.as_bytes() },
                        _ => AggCmd::ZAdd {
                            member: m.as_bytes(),
                            score: j as f64 / 3.0,
                        },
                    };
                    out.clear();
                    let _ = store.agg(k.as_bytes(), &cmd, 1, &mut out);
                }
            }
        }
        // At 50 s the 10-second TTLs have passed: the dump skips them.
        let now = 50;
        let held = store.len();
        (dump(&mut store, now), held)
    }
}

/// Restores a snapshot into a fresh store and dumps that store again.
struct Reload<'a>(&'a [u8]);

impl WithStore for Reload<'_> {
    type Output = Vec<u8>;
    fn run<A: Allocator, L: Layout>(self, mut fresh: Store<A, L>) -> Self::Output {
        let now = 50;
        let mut r = Reader::new(self.0).unwrap();
        while let Some(rec) = r.next_record().unwrap() {
            assert!(fresh.restore(&rec, now).unwrap(), "{:?}", rec.key);
        }
        dump(&mut fresh, now)
    }
}

#[test]
fn a_snapshot_reloads_into_an_equal_store() {
    let cases = [
        (
            "slab",
            LayoutKind::Memcached,
            Policy::SlabLru,
            Some(3 << 20),
        ),
        ("slab", LayoutKind::Compact, Policy::Lru, None),
        ("slab", LayoutKind::Compact, Policy::Lru, Some(2 << 20)),
        ("jemalloc", LayoutKind::Redis, Policy::Noeviction, None),
        (
            "zmalloc",
            LayoutKind::Redis,
            Policy::SampledLru,
            Some(3 << 20),
        ),
        ("log", LayoutKind::Compact, Policy::Random, Some(24 << 20)),
        ("bump", LayoutKind::Segcache, Policy::Noeviction, None),
    ];
    for (alloc, layout, policy, limit) in cases {
        let rt = RoundTrip {
            limit,
            spec: alloc.parse().unwrap(),
            layout,
        };
        let config = StoreConfig {
            policy,
            limited: limit.is_some(),
            ..StoreConfig::default()
        };
        let (file, held) = with_store(&rt.spec, rt.layout, rt.limit, config, &rt).unwrap();
        // The reloaded store has no limit: what was saved fits, whatever the placement.
        let config = StoreConfig {
            policy,
            ..StoreConfig::default()
        };
        let again = with_store(&rt.spec, rt.layout, None, config, Reload(&file)).unwrap();
        let (before, after) = (records(&file), records(&again));
        let what = format!("{alloc}/{layout}/{limit:?}");
        assert!(before.len() > 100, "{what}: {} keys saved", before.len());
        assert!(before.len() < held, "{what}: expired keys were saved");
        assert!(
            before.iter().all(|r| r.exptime == 0 || r.exptime > 50),
            "{what}"
        );
        assert_eq!(before.len(), after.len(), "{what}: keys after the reload");
        for (a, b) in before.iter().zip(&after) {
            assert!(
                a == b,
                "{what}: key {:?} differs after the reload",
                String::from_utf8_lossy(&a.key)
            );
        }
    }
}

mod reader_input {
    use fraglab_engine::snapshot::{Reader, Value, Writer, MAGIC};
    use proptest::prelude::*;

    /// Reads `file` to its end or its first error; never panics.
    fn read_all(file: &[u8]) -> Result<usize, String> {
        let mut r = Reader::new(file).map_err(|e| e.to_string())?;
        let mut n = 0;
        while r.next_record().map_err(|e| e.to_string())?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    fn valid() -> Vec<u8> {
        let mut w = Writer::new(Vec::new()).unwrap();
        for i in 0..20u32 {
            let v = Value::Str(vec![b'x'; i as usize * 7]);
            w.record(format!("k{i}").as_bytes(), i, i * 3, &v).unwrap();
        }
        w.finish().unwrap().0
    }

    proptest! {
        #[test]
        fn any_bytes_after_the_header_are_read_or_refused(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut file = MAGIC.to_vec();
            file.extend_from_slice(&1u16.to_le_bytes());
            file.extend_from_slice(&tail);
            // Whatever the bytes say, nothing panics and nothing huge is allocated.
            let _ = read_all(&file);
        }

        #[test]
        fn a_changed_or_cut_file_is_refused(at in 10usize..400, bit in 0u8..8, cut in 0usize..400) {
            let good = valid();
            prop_assert_eq!(read_all(&good), Ok(20));
            let mut bad = good.clone();
            let at = at % bad.len();
            bad[at] ^= 1 << bit;
            // A flipped bit fails the checksum, a length or the structure; never reads back whole.
            prop_assert!(read_all(&bad).is_err());
            let cut = cut % good.len();
            prop_assert!(read_all(&good[..cut]).is_err());
        }
    }
}
