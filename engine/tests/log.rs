//! The store over the log allocator, whose cleaner moves items while the store runs: with the
//! compact and memcached layouts, every list policy and sampling, with and without a memory
//! limit, every key the store still holds reads back the value last written, the cleaner did
//! run, and the redis layout is refused with the reason.

use std::collections::HashMap;

use fraglab_allocators::{AllocSpec, Detail};
use fraglab_engine::{
    with_store, BuildError, CmdError, Layout, LayoutKind, Policy, SetOptions, Store, StoreConfig,
    WithStore,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{value, Xs};

/// Sets, appends, deletes and reads on 3000 keys; checks every key against the model.
struct Churn {
    limited: bool,
}

impl WithStore for Churn {
    type Output = ();
    fn run<A: fraglab_allocators::Allocator, L: Layout>(self, mut s: Store<A, L>) {
        let what = format!("{} / {}", L::KIND, s.policy());
        let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut rng = Xs(0x5EED);
        let key = |k: u64| format!("key:{k}").into_bytes();
        for op in 0..60_000u64 {
            let r = rng.next();
            let k = (r >> 8) % 3000;
            match r % 10 {
                0..=4 => {
                    let v = value(k, op, 20 + (r >> 24) as usize % 1500);
                    match s.set(&key(k), &v, SetOptions::default(), 1) {
                        Ok(()) => {
                            model.insert(k, v);
                        }
                        Err(CmdError::OutOfMemory) => assert!(self.limited, "{what}: OOM"),
                        Err(e) => panic!("{what}: {e}"),
                    }
                }
                5 => {
                    let extra = value(k, op, 1 + (r >> 24) as usize % 200);
                    match s.append(&key(k), &extra, 1) {
                        Ok(true) => model.get_mut(&k).unwrap().extend_from_slice(&extra),
                        Ok(false) => {}
                        Err(CmdError::OutOfMemory) => assert!(self.limited),
                        Err(e) => panic!("{what}: {e}"),
                    }
                }
                6 | 7 => {
                    s.delete(&key(k), 1);
                    model.remove(&k);
                }
                _ => {
                    let got = s.get(&key(k), 1);
                    if let Some(v) = &got {
                        assert_eq!(Some(v), model.get(&k), "{what}: key {k} at op {op}");
                    } else if !self.limited {
                        assert!(!model.contains_key(&k), "{what}: lost key {k} at op {op}");
                    }
                }
            }
        }
        // Evicted keys are gone from the store; every key still there has its last value.
        let mut held = 0;
        for (k, v) in &model {
            match s.get(&key(*k), 1) {
                Some(got) => {
                    assert_eq!(&got, v, "{what}: key {k}");
                    held += 1;
                }
                None => assert!(self.limited, "{what}: lost key {k}"),
            }
        }
        assert_eq!(s.stats().items, held);
        let Detail::Log(d) = s.stats().mem.detail else {
            panic!("not a log")
        };
        assert!(
            d.segments_cleaned > 0 && d.bytes_copied > 0,
            "{what}: the cleaner never ran: {d:?}"
        );
    }
}

#[test]
fn items_survive_the_cleaner_in_every_layout_that_follows_moves() {
    let spec: AllocSpec = "log:segment=64k,utilization=0.8".parse().unwrap();
    for layout in [LayoutKind::Compact, LayoutKind::Memcached] {
        for policy in [
            Policy::Lru,
            Policy::Fifo,
            Policy::SampledLru,
            Policy::Random,
        ] {
            for limit in [None, Some(2 << 20)] {
                let config = StoreConfig {
                    policy,
                    ..StoreConfig::default()
                };
                let churn = Churn {
                    limited: limit.is_some(),
                };
                with_store(&spec, layout, limit, config, churn).unwrap();
            }
        }
    }
}

#[test]
fn the_redis_layout_is_refused_with_the_reason() {
    struct Nothing;
    impl WithStore for Nothing {
        type Output = ();
        fn run<A: fraglab_allocators::Allocator, L: Layout>(self, _s: Store<A, L>) {}
    }
    let spec: AllocSpec = "log".parse().unwrap();
    let err = with_store(
        &spec,
        LayoutKind::Redis,
        None,
        StoreConfig::default(),
        Nothing,
    )
    .unwrap_err();
    assert!(matches!(err, BuildError::Unsupported(_)));
    assert!(
        err.to_string()
            .contains("the log allocator moves live blocks"),
        "{err}"
    );
}
