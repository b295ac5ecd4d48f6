//! The Segcache layout: under a memory limit it evicts by merging segments, keeps the items
//! that are read, never returns a wrong value, and gives merged segments back; its per-item
//! metadata is Segcache's 5-byte header plus one 8-byte slot; whole segments expire together.

use std::collections::HashMap;

use fraglab_allocators::AllocSpec;
use fraglab_engine::layout::segcache::HEADER;
use fraglab_engine::{
    with_store, ActiveExpire, CmdError, Layout, LayoutKind, Policy, SetOptions, Store, StoreConfig,
    WithStore,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{value, Xs};

fn key(k: u64) -> Vec<u8> {
    format!("key:{k:08}").into_bytes()
}

/// Writes 40,000 keys into room for far fewer, reading the first 500 keys after every write;
/// returns (hot keys kept, cold keys kept among the first 5000, evictions, footprint).
struct Hot;

impl WithStore for Hot {
    type Output = (usize, usize, u64, u64);
    fn run<A: fraglab_allocators::Allocator, L: Layout>(self, mut s: Store<A, L>) -> Self::Output {
        let mut model = HashMap::new();
        let mut rng = Xs(99);
        for k in 0..40_000u64 {
            let v = value(k, 0, 100);
            match s.set(&key(k), &v, SetOptions::default(), k / 100) {
                Ok(()) => {
                    model.insert(k, v);
                }
                Err(CmdError::OutOfMemory) => panic!("{}: a write was refused", L::KIND),
                Err(e) => panic!("{e}"),
            }
            for _ in 0..2 {
                let h = rng.next() % 500;
                if let Some(got) = s.get(&key(h), k / 100) {
                    assert_eq!(Some(&got), model.get(&h), "hot key {h}");
                }
            }
        }
        let kept = |range: std::ops::Range<u64>, s: &mut Store<A, L>| {
            range
                .filter(|&k| match s.get(&key(k), 400) {
                    Some(v) => {
                        assert_eq!(Some(&v), model.get(&k), "key {k}");
                        true
                    }
                    None => false,
                })
                .count()
        };
        let hot = kept(0..500, &mut s);
        let cold = kept(500..5000, &mut s);
        let st = s.stats();
        (hot, cold, st.counters.evictions, st.mem.footprint_bytes)
    }
}

#[test]
fn merge_eviction_keeps_the_items_that_are_read() {
    for spec in ["log:segment=64k", "jemalloc"] {
        let spec: AllocSpec = spec.parse().unwrap();
        let config = StoreConfig {
            policy: Policy::SampledLru,
            ..StoreConfig::default()
        };
        let limit = 1 << 20;
        let (hot, cold, evictions, footprint) =
            with_store(&spec, LayoutKind::Segcache, Some(limit), config, Hot).unwrap();
        assert!(evictions > 20_000, "{spec}: {evictions} evictions");
        if matches!(spec, AllocSpec::Log(_)) {
            assert!(footprint <= limit, "{spec}: footprint {footprint}");
        }
        // Hot keys were written first, so without frequency they would be the first to go.
        assert!(
            hot >= 450,
            "{spec}: only {hot} of 500 hot keys kept ({cold} of 4500 cold)"
        );
        assert!(cold < 450, "{spec}: {cold} of 4500 cold keys kept");
    }
}

/// Random sets, deletes and reads under a limit: every key held reads its last value.
struct Churn;

impl WithStore for Churn {
    type Output = u64;
    fn run<A: fraglab_allocators::Allocator, L: Layout>(self, mut s: Store<A, L>) -> u64 {
        let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut rng = Xs(7);
        for op in 0..50_000u64 {
            let r = rng.next();
            let k = (r >> 8) % 4000;
            let now = op / 50;
            match r % 8 {
                0..=3 => {
                    let ttl = (r % 5 == 0).then_some(60 + (r >> 40) as i64 % 3000);
                    let v = value(k, op, 10 + (r >> 20) as usize % 900);
                    let opts = SetOptions {
                        ttl,
                        flags: (r >> 50) as u32 % 3,
                    };
                    s.set(&key(k), &v, opts, now).unwrap();
                    model.insert(k, v);
                }
                4 => {
                    s.delete(&key(k), now);
                    model.remove(&k);
                }
                _ => {
                    if let Some(v) = s.get(&key(k), now) {
                        assert_eq!(Some(&v), model.get(&k), "key {k} at op {op}");
                    }
                }
            }
        }
        s.stats().counters.evictions
    }
}

#[test]
fn values_survive_merges_in_every_ttl_bucket() {
    for spec in ["log:segment=64k", "glibc", "slab"] {
        let spec: AllocSpec = spec.parse().unwrap();
        let limit = if matches!(spec, AllocSpec::Log(_)) {
            512 << 10
        } else {
            4 << 20
        };
        let evictions = with_store(
            &spec,
            LayoutKind::Segcache,
            Some(limit),
            StoreConfig {
                policy: Policy::Random,
                ..StoreConfig::default()
            },
            Churn,
        )
        .unwrap();
        assert!(evictions > 0, "{spec}: nothing was evicted");
    }
}

#[test]
fn list_policies_are_refused() {
    struct Nothing;
    impl WithStore for Nothing {
        type Output = ();
        fn run<A: fraglab_allocators::Allocator, L: Layout>(self, _s: Store<A, L>) {}
    }
    let spec: AllocSpec = "log".parse().unwrap();
    let config = StoreConfig {
        policy: Policy::Lru,
        ..StoreConfig::default()
    };
    let err = with_store(&spec, LayoutKind::Segcache, None, config, Nothing).unwrap_err();
    assert!(
        err.to_string().contains("segcache layout does not keep"),
        "{err}"
    );
}

/// 100,000 items of a 10-byte key and a 20-byte value: 5 bytes of header, the rest padding
/// to 8, and the table's share.
struct Small;

impl WithStore for Small {
    type Output = (u64, u64, u64);
    fn run<A: fraglab_allocators::Allocator, L: Layout>(self, mut s: Store<A, L>) -> Self::Output {
        for k in 0..100_000u64 {
            s.set(
                format!("k{k:09}").as_bytes(),
                &[7u8; 20],
                SetOptions::default(),
                0,
            )
            .unwrap();
        }
        let st = s.stats();
        (st.items, st.index_bytes, st.mem.requested_bytes)
    }
}

#[test]
fn metadata_is_a_five_byte_header_and_an_eight_byte_slot() {
    assert_eq!(HEADER, 5);
    let spec: AllocSpec = "log:segment=1m".parse().unwrap();
    let (items, index, requested) = with_store(
        &spec,
        LayoutKind::Segcache,
        None,
        StoreConfig::default(),
        Small,
    )
    .unwrap();
    assert_eq!(items, 100_000);
    // 5 + 10 + 20 = 35 bytes, 40 with padding.
    // Segments are the log's largest block rounded down to 8 bytes.
    let seg = ((1u64 << 20) - 4) / 8 * 8;
    assert_eq!(requested % seg, 0);
    assert_eq!(requested / seg, 100_000u64.div_ceil(seg / 40));
    // The table: 64-byte buckets of 7 items, at most 6 per primary bucket on average before it
    // doubles, so between 10.7 and 21.4 bytes per item, plus the segment table.
    let per_item = index as f64 / items as f64;
    assert!(
        (9.0..22.0).contains(&per_item),
        "{per_item} index bytes per item"
    );
}

/// 5000 keys with a 10-second TTL and 5000 without, then one TTL extended by TOUCH.
struct Expiry;

impl WithStore for Expiry {
    type Output = ();
    fn run<A: fraglab_allocators::Allocator, L: Layout>(self, mut s: Store<A, L>) {
        let ttl = SetOptions {
            ttl: Some(10),
            flags: 0,
        };
        for k in 0..5000u64 {
            s.set(&key(k), &[1u8; 20], ttl, 0).unwrap();
            s.set(&key(100_000 + k), &[2u8; 20], SetOptions::default(), 0)
                .unwrap();
        }
        assert!(s.touch(&key(4999), Some(100), 5).unwrap());
        let before = s.stats().mem.footprint_bytes;
        assert_eq!(
            s.active_expire(9, ActiveExpire::Segments),
            0,
            "nothing has expired at 9 s"
        );
        let expired = s.active_expire(20, ActiveExpire::Segments);
        let st = s.stats();
        // Every segment of the 10-second bucket but the one holding the touched key goes.
        let per_segment = (65528 / 40) as u64;
        assert!(
            expired >= 5000 - per_segment && expired < 5000,
            "{expired} expired"
        );
        assert_eq!(st.counters.expired_active, expired);
        assert!(
            st.mem.footprint_bytes + 2 * (64 << 10) <= before,
            "footprint {} -> {}",
            before,
            st.mem.footprint_bytes
        );
        assert_eq!(
            s.get(&key(4999), 20),
            Some(vec![1u8; 20]),
            "the touched key"
        );
        assert_eq!(s.get(&key(100_000), 20), Some(vec![2u8; 20]));
        assert_eq!(s.get(&key(0), 20), None);
        assert_eq!(st.items, 10_000 - expired);
    }
}

#[test]
fn whole_segments_expire_together_unless_a_key_in_them_lives_on() {
    let spec: AllocSpec = "log:segment=64k".parse().unwrap();
    with_store(
        &spec,
        LayoutKind::Segcache,
        None,
        StoreConfig::default(),
        Expiry,
    )
    .unwrap();
}
