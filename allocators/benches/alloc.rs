//! Every allocator in the same run: alloc+free pairs and a steady churn at 64, 100, 1000 and
//! 10,000 bytes.
//!
//! - `pair/SIZE/ALLOC`: `alloc(SIZE)`, touch the first byte, `free`.
//! - `churn/SIZE/ALLOC`: 1024 live blocks; each op frees the oldest and allocates a new one.
//!
//! Each criterion sample runs on fresh allocators, rebuilt (outside the timed region) every
//! 16,384 ops, so the bump arena's never-reused memory stays bounded and every allocator starts
//! a sample in the same state. Run with `cargo bench -p fraglab-allocators --bench alloc`.

use std::hint::black_box;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use fraglab_allocators::{AllocSpec, Allocator, WithAllocator};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: [usize; 4] = [64, 100, 1000, 10_000];
const SPECS: [&str; 7] = [
    "slab",
    "zmalloc:backend=glibc,prefix=8",
    "zmalloc:backend=jemalloc,prefix=0",
    "glibc",
    "jemalloc",
    "mimalloc",
    "bump",
];
/// Ops per freshly built allocator.
const OPS_PER_BUILD: u64 = 1 << 14;
/// Live blocks in the churn.
const RING: usize = 1024;

#[derive(Clone, Copy)]
enum Pattern {
    Pair,
    Churn,
}

struct Timed {
    pattern: Pattern,
    size: usize,
    ops: u64,
}

impl WithAllocator for Timed {
    type Output = Duration;

    fn run<A: Allocator>(self, mut a: A) -> Duration {
        let size = self.size;
        let touch = |p: NonNull<u8>| {
            // SAFETY: `p` is a live block of at least `size` >= 1 bytes.
            unsafe { p.as_ptr().write_volatile(1) }
        };
        match self.pattern {
            Pattern::Pair => {
                // Warm up: the first page (slab), chunk or arena run is taken outside the timer.
                let b = a.alloc(size).expect("no limit is set");
                // SAFETY: `b` is live with `size` requested bytes.
                unsafe { a.free(b.ptr, size) };
                let start = Instant::now();
                for _ in 0..self.ops {
                    let b = a.alloc(black_box(size)).expect("no limit is set");
                    touch(b.ptr);
                    // SAFETY: `b` is live with `size` requested bytes.
                    unsafe { a.free(b.ptr, size) };
                }
                start.elapsed()
            }
            Pattern::Churn => {
                let mut ring: Vec<NonNull<u8>> = (0..RING)
                    .map(|_| a.alloc(size).expect("no limit").ptr)
                    .collect();
                let start = Instant::now();
                for i in 0..self.ops as usize {
                    let slot = i % RING;
                    // SAFETY: every ring entry is live with `size` requested bytes.
                    unsafe { a.free(ring[slot], size) };
                    let b = a.alloc(black_box(size)).expect("no limit is set");
                    touch(b.ptr);
                    ring[slot] = b.ptr;
                }
                let elapsed = start.elapsed();
                for p in ring {
                    // SAFETY: as above.
                    unsafe { a.free(p, size) };
                }
                elapsed
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    for (pattern, name) in [(Pattern::Pair, "pair"), (Pattern::Churn, "churn")] {
        for size in SIZES {
            let mut group = c.benchmark_group(format!("{name}/{size}"));
            for spec_text in SPECS {
                let spec: AllocSpec = spec_text.parse().expect("a valid spec");
                group.bench_function(BenchmarkId::from_parameter(spec_text), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        let mut done = 0;
                        while done < iters {
                            let ops = (iters - done).min(OPS_PER_BUILD);
                            total += spec
                                .build(Timed { pattern, size, ops })
                                .expect("the allocator builds");
                            done += ops;
                        }
                        total
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
