//! Persistence speed: what a save's child spends walking the store, and what a warm restart
//! takes.
//!
//! - `dump/<alloc>_<layout>`: `Store::dump` of 100,000 keys (16-byte keys, 100 to 1,000-byte
//!   values) into a snapshot file's writer over `io::sink` (the save's CPU, no disk);
//! - `restart/slab_file`: `Store::restart` of 100,000 items on `slab:file` (metadata written,
//!   the file mapped again, every item checked and indexed, the LRU links moved).
//!
//! Run with `cargo bench -p fraglab-engine --bench persist`. Throughput is in keys.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fraglab_allocators::slab::{Slab, SlabConfig};
use fraglab_allocators::{AllocSpec, Allocator};
use fraglab_engine::layout::Memcached;
use fraglab_engine::snapshot::Writer;
use fraglab_engine::{
    with_store, Layout, LayoutKind, Policy, SetOptions, Store, StoreConfig, WithStore,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEYS: u64 = 100_000;

fn fill<A: Allocator, L: Layout>(store: &mut Store<A, L>) {
    let value = vec![b'v'; 1000];
    for i in 0..KEYS {
        let len = 100 + (i * 7919 % 901) as usize;
        store
            .set(
                format!("key:{i:012}").as_bytes(),
                &value[..len],
                SetOptions::default(),
                1,
            )
            .expect("the store takes every key");
    }
}

struct Dump<'a, 'b> {
    group: &'a mut criterion::BenchmarkGroup<'b, criterion::measurement::WallTime>,
    name: &'a str,
}

impl WithStore for Dump<'_, '_> {
    type Output = ();
    fn run<A: Allocator, L: Layout>(self, mut store: Store<A, L>) {
        fill(&mut store);
        self.group.bench_function(self.name, |b| {
            b.iter(|| {
                let mut w = Writer::new(std::io::sink()).expect("a sink takes the header");
                store
                    .dump(1, &mut |key, flags, exptime, value| {
                        w.record(key, flags, exptime, value)?;
                        Ok(true)
                    })
                    .expect("a sink takes every record");
                black_box(w.finish().expect("a sink takes the end"))
            })
        });
    }
}

fn dump(c: &mut Criterion) {
    let mut group = c.benchmark_group("dump");
    group.throughput(Throughput::Elements(KEYS));
    group.sample_size(20);
    for (alloc, layout, name) in [
        ("slab", LayoutKind::Memcached, "slab_memcached"),
        (
            "zmalloc:backend=jemalloc,prefix=0",
            LayoutKind::Redis,
            "zmalloc_redis",
        ),
        ("jemalloc", LayoutKind::Compact, "jemalloc_compact"),
    ] {
        let spec: AllocSpec = alloc.parse().expect("a valid spec");
        let config = StoreConfig {
            policy: Policy::Noeviction,
            ..StoreConfig::default()
        };
        let bench = Dump {
            group: &mut group,
            name,
        };
        with_store(&spec, layout, None, config, bench).expect("a store");
    }
    group.finish();
}

fn restart(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("fraglab-bench-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("slabs");
    let config = SlabConfig {
        item_max: 512 << 10,
        file: Some(path),
        ..SlabConfig::default()
    };
    let slab = Slab::new(config).expect("a file-backed slab");
    let store_config = StoreConfig {
        policy: Policy::SlabLru,
        ..StoreConfig::default()
    };
    let mut store: Store<_, Memcached> = Store::new(slab, store_config).expect("a store");
    fill(&mut store);
    let mut group = c.benchmark_group("restart");
    group.throughput(Throughput::Elements(KEYS));
    group.sample_size(10);
    group.bench_function("slab_file", |b| {
        b.iter(|| {
            let r = store.restart().expect("a restart");
            assert_eq!(r.items_after, KEYS);
            black_box(r)
        })
    });
    group.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, dump, restart);
criterion_main!(benches);
