//! The layouts against the real servers: the redis layout's `used_memory` growth against
//! Redis 7.0's, and the memcached layout's slab classes against memcached 1.6.18's. Each test
//! starts its server on 127.0.0.1 and a free port, and stops it by its pid.

#[path = "../../allocators/tests/common/mod.rs"]
mod common;

use common::{memcached_available, redis_available, Memcached, RedisServer, Reply};
use fraglab_allocators::jemalloc::Jemalloc;
use fraglab_allocators::slab::{Slab, SlabConfig};
use fraglab_allocators::zmalloc::Zmalloc;
use fraglab_allocators::{Allocator, Detail};
use fraglab_engine::layout::{Memcached as McLayout, Redis};
use fraglab_engine::{Policy, SetOptions, Store, StoreConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One case: keys written with SET (optionally EX), then some deleted.
struct Case {
    name: &'static str,
    keys: usize,
    key: fn(usize) -> String,
    value: fn(usize) -> Vec<u8>,
    ttl: Option<i64>,
    delete_every: Option<usize>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "16-byte keys, 100-byte values",
            keys: 2000,
            key: |i| format!("k{i:015}"),
            value: |_| vec![b'v'; 100],
            ttl: None,
            delete_every: None,
        },
        Case {
            name: "short keys, embedded strings",
            keys: 3000,
            key: |i| format!("key:{i}"),
            value: |i| vec![b'e'; 1 + i % 44],
            ttl: None,
            delete_every: None,
        },
        Case {
            name: "40-byte keys, 1000-byte values",
            keys: 1000,
            key: |i| format!("{i:040}"),
            value: |i| vec![b'r'; 1000 + i % 100],
            ttl: None,
            delete_every: None,
        },
        Case {
            name: "integers, shared and not",
            keys: 3000,
            key: |i| format!("n{i}"),
            value: |i| (i as i64 * 7 - 1000).to_string().into_bytes(),
            ttl: None,
            delete_every: None,
        },
        Case {
            name: "TTLs",
            keys: 2000,
            key: |i| format!("t{i}"),
            value: |_| vec![b't'; 60],
            ttl: Some(3600),
            delete_every: None,
        },
        Case {
            name: "half deleted",
            keys: 4000,
            key: |i| format!("d{i}"),
            value: |i| vec![b'd'; 20 + i % 300],
            ttl: None,
            delete_every: Some(2),
        },
    ]
}

#[test]
fn redis_layout_used_memory_growth_matches_redis() {
    if !redis_available() {
        return;
    }
    for case in cases() {
        let server = RedisServer::start(&[]);
        let mut r = server.connect();
        // Redis allocates a latency histogram on each command's first use: warm them up.
        for cmd in [
            &[&b"SET"[..], b"warm", b"1", b"EX", b"100"][..],
            &[b"DEL", b"warm"],
            &[b"SET", b"warm", b"1"],
            &[b"DEL", b"warm"],
        ] {
            r.cmd(cmd);
        }
        r.used_memory();
        let real_before = r.used_memory();
        let mut store: Store<_, Redis> = Store::new(
            Zmalloc::new(Jemalloc::new().unwrap(), false),
            StoreConfig::default(),
        )
        .unwrap();
        store
            .set(
                b"warm",
                b"1",
                SetOptions {
                    ttl: Some(100),
                    flags: 0,
                },
                0,
            )
            .unwrap();
        store.delete(b"warm", 0);
        let model_before = store.stats().mem.allocated_bytes;
        for i in 0..case.keys {
            let (k, v) = ((case.key)(i), (case.value)(i));
            match case.ttl {
                Some(t) => r.send(&[b"SET", k.as_bytes(), &v, b"EX", t.to_string().as_bytes()]),
                None => r.send(&[b"SET", k.as_bytes(), &v]),
            }
            store
                .set(
                    k.as_bytes(),
                    &v,
                    SetOptions {
                        ttl: case.ttl,
                        flags: 0,
                    },
                    0,
                )
                .unwrap();
        }
        for _ in 0..case.keys {
            assert_eq!(r.read(), Reply::Status("OK".into()));
        }
        if let Some(every) = case.delete_every {
            for i in (0..case.keys).step_by(every) {
                let k = (case.key)(i);
                r.send(&[b"DEL", k.as_bytes()]);
                assert!(store.delete(k.as_bytes(), 0));
            }
            for _ in (0..case.keys).step_by(every) {
                assert_eq!(r.read(), Reply::Int(1));
            }
        }
        let real = r.used_memory() - real_before;
        let model = store.stats().mem.allocated_bytes - model_before;
        let diff = (model as f64 - real as f64).abs() / real as f64;
        eprintln!(
            "{}: redis {real} B, model {model} B, {:.3}%",
            case.name,
            diff * 100.0
        );
        assert!(
            diff <= 0.01,
            "{}: redis grew {real} B, the model {model} B",
            case.name
        );
    }
}

#[test]
fn memcached_layout_takes_the_chunks_memcached_takes() {
    if !memcached_available() {
        return;
    }
    let server = Memcached::start(&["-m", "64", "-o", "slab_automove=0"]);
    let mut client = server.connect();
    let mut store: Store<_, McLayout> = Store::new(
        Slab::new(SlabConfig::default()).unwrap(),
        StoreConfig {
            policy: Policy::SlabLru,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    store.allocator_mut().set_limit(Some(64 << 20));
    for i in 0..6000usize {
        let key = format!("item:{i}");
        let len = [10, 90, 300, 1200, 5000, 20_000, 100_000, 700_000][i % 8]
            .min(if i % 8 == 7 && i > 200 { 0 } else { usize::MAX });
        let flags = if i % 3 == 0 { 7 } else { 0 };
        assert_eq!(client.set(&key, flags, len), "STORED");
        store
            .set(
                key.as_bytes(),
                &vec![b'v'; len],
                SetOptions { ttl: None, flags },
                0,
            )
            .unwrap();
    }
    let real = client.stats("slabs");
    let Detail::Slab(d) = store.stats().mem.detail else {
        unreachable!()
    };
    for c in d.classes.iter().filter(|c| c.total_pages > 0) {
        let get = |f: &str| {
            real.get(&format!("{}:{f}", c.class))
                .map(|v| v.parse::<u64>().unwrap())
                .unwrap_or(0)
        };
        assert_eq!(
            get("used_chunks"),
            c.used_chunks,
            "class {} used chunks",
            c.class
        );
        assert_eq!(
            get("total_pages"),
            u64::from(c.total_pages),
            "class {} pages",
            c.class
        );
    }
    assert_eq!(
        real["total_malloced"].parse::<u64>().unwrap(),
        d.total_malloced
    );
    let general = client.stats("");
    assert_eq!(
        general["curr_items"].parse::<u64>().unwrap(),
        store.stats().items
    );
}
