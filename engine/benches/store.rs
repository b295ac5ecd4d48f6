//! The store's hot paths, per layout over slab and jemalloc, with a bare
//! `HashMap<Vec<u8>, Vec<u8>>` doing the same as the floor:
//!
//! - `get_hit`: GET of a present key (100-byte values, 16-byte keys, 100,000 keys);
//! - `get_miss`: GET of an absent key;
//! - `set_overwrite`: SET of a present key with a value of the same size;
//! - `set_new`: SET of a new key (the store is rebuilt outside the timer every 50,000 keys).
//!
//! Run with `cargo bench -p fraglab-engine --bench store`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use fraglab_allocators::{AllocSpec, Allocator};
use fraglab_engine::{
    with_store, Layout, LayoutKind, Policy, SetOptions, Store, StoreConfig, WithStore,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEYS: usize = 100_000;
const NEW_PER_BUILD: u64 = 50_000;
const VALUE: [u8; 100] = [b'v'; 100];

fn key(i: usize) -> [u8; 16] {
    let mut k = *b"key:000000000000";
    let digits = format!("{i:012}");
    k[4..].copy_from_slice(digits.as_bytes());
    k
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    GetHit,
    GetMiss,
    SetOverwrite,
    SetNew,
}

struct Timed {
    op: Op,
    iters: u64,
}

impl WithStore for Timed {
    type Output = Duration;

    fn run<A: Allocator, L: Layout>(self, mut s: Store<A, L>) -> Duration {
        let preload = if self.op == Op::SetNew { 0 } else { KEYS };
        for i in 0..preload {
            s.set(&key(i), &VALUE, SetOptions::default(), 0).unwrap();
        }
        let keys: Vec<[u8; 16]> = (0..KEYS).map(key).collect();
        let misses: Vec<[u8; 16]> = (0..KEYS).map(|i| key(i + KEYS)).collect();
        let mut out = Vec::with_capacity(128);
        let start = Instant::now();
        for i in 0..self.iters as usize {
            match self.op {
                Op::GetHit => {
                    out.clear();
                    black_box(s.get_into(&keys[i % KEYS], 0, &mut out));
                }
                Op::GetMiss => {
                    black_box(s.get_into(&misses[i % KEYS], 0, &mut out));
                }
                Op::SetOverwrite => s
                    .set(&keys[i % KEYS], &VALUE, SetOptions::default(), 0)
                    .unwrap(),
                Op::SetNew => s
                    .set(&key(i + 1_000_000), &VALUE, SetOptions::default(), 0)
                    .unwrap(),
            }
        }
        start.elapsed()
    }
}

fn hashmap(op: Op, iters: u64) -> Duration {
    let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    if op != Op::SetNew {
        for i in 0..KEYS {
            m.insert(key(i).to_vec(), VALUE.to_vec());
        }
    }
    let keys: Vec<[u8; 16]> = (0..KEYS).map(key).collect();
    let misses: Vec<[u8; 16]> = (0..KEYS).map(|i| key(i + KEYS)).collect();
    let mut out = Vec::with_capacity(128);
    let start = Instant::now();
    for i in 0..iters as usize {
        match op {
            Op::GetHit => {
                out.clear();
                if let Some(v) = m.get(&keys[i % KEYS][..]) {
                    out.extend_from_slice(v);
                }
                black_box(&out);
            }
            Op::GetMiss => {
                black_box(m.get(&misses[i % KEYS][..]));
            }
            Op::SetOverwrite => {
                m.insert(keys[i % KEYS].to_vec(), VALUE.to_vec());
            }
            Op::SetNew => {
                m.insert(key(i + 1_000_000).to_vec(), VALUE.to_vec());
            }
        }
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    for (op, name) in [
        (Op::GetHit, "get_hit"),
        (Op::GetMiss, "get_miss"),
        (Op::SetOverwrite, "set_overwrite"),
        (Op::SetNew, "set_new"),
    ] {
        let mut group = c.benchmark_group(name);
        group.bench_function(BenchmarkId::from_parameter("hashmap"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(NEW_PER_BUILD);
                    total += hashmap(op, n);
                    done += n;
                }
                total
            })
        });
        for layout in LayoutKind::ALL {
            for spec in ["slab", "jemalloc"] {
                let alloc: AllocSpec = spec.parse().unwrap();
                let id = format!("{layout}/{spec}");
                group.bench_function(BenchmarkId::from_parameter(id), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        let mut done = 0;
                        while done < iters {
                            let n = (iters - done).min(NEW_PER_BUILD);
                            let config = StoreConfig {
                                policy: Policy::Noeviction,
                                ..StoreConfig::default()
                            };
                            total +=
                                with_store(&alloc, layout, None, config, Timed { op, iters: n })
                                    .unwrap();
                            done += n;
                        }
                        total
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = bench
}
criterion_main!(benches);
