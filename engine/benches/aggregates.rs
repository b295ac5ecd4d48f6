//! Aggregate commands per layout, over `zmalloc:backend=jemalloc,prefix=0` (the redis layout's
//! model of Redis) and over `slab` for the memcached layout's blobs:
//!
//! - `hset_listpack`: HSET of an existing field in 1,000 hashes of 16 fields (10-byte values);
//! - `hget_listpack`: HGET of those fields;
//! - `sadd_intset`: SADD of an integer already present in 1,000 sets of 100 integers;
//! - `zincrby_skiplist`: ZINCRBY of a member of one sorted set of 10,000 members;
//! - `lpush_ltrim`: LPUSH to one of 1,000 lists, then LTRIM it back to 100 elements (two
//!   commands per iteration).
//!
//! Run with `cargo bench -p fraglab-engine --bench aggregates`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use fraglab_allocators::AllocSpec;
use fraglab_engine::agg::AggCmd;
use fraglab_engine::{with_store, Layout, LayoutKind, Store, StoreConfig, WithStore};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEYS: usize = 1000;

#[derive(Clone, Copy)]
enum Case {
    HsetListpack,
    HgetListpack,
    SaddIntset,
    ZincrbySkiplist,
    LpushLtrim,
}

impl Case {
    const ALL: [Case; 5] = [
        Case::HsetListpack,
        Case::HgetListpack,
        Case::SaddIntset,
        Case::ZincrbySkiplist,
        Case::LpushLtrim,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::HsetListpack => "hset_listpack",
            Case::HgetListpack => "hget_listpack",
            Case::SaddIntset => "sadd_intset",
            Case::ZincrbySkiplist => "zincrby_skiplist",
            Case::LpushLtrim => "lpush_ltrim",
        }
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("agg:{i:08}").into_bytes()
}

struct Bench<'a, 'b> {
    c: &'a mut criterion::BenchmarkGroup<'b, criterion::measurement::WallTime>,
    case: Case,
    id: String,
}

impl WithStore for Bench<'_, '_> {
    type Output = ();

    fn run<A: fraglab_allocators::Allocator, L: Layout>(self, mut s: Store<A, L>) {
        let mut out = Vec::new();
        let fields: Vec<Vec<u8>> = (0..16)
            .map(|f| format!("field{f:02}").into_bytes())
            .collect();
        let members: Vec<Vec<u8>> = (0..10_000)
            .map(|m| format!("player:{m:06}").into_bytes())
            .collect();
        let mut run = |s: &mut Store<A, L>, k: &[u8], cmd: AggCmd<'_>| {
            out.clear();
            black_box(s.agg(k, &cmd, 0, &mut out).expect("the command runs"));
        };
        match self.case {
            Case::HsetListpack | Case::HgetListpack => {
                for i in 0..KEYS {
                    for f in &fields {
                        run(
                            &mut s,
                            &key(i),
                            AggCmd::HSet {
                                field: f,
                                value: b"0123456789",
                            },
                        );
                    }
                }
            }
            Case::SaddIntset => {
                for i in 0..KEYS {
                    for m in 0..100 {
                        let m = (m * 37).to_string();
                        run(
                            &mut s,
                            &key(i),
                            AggCmd::SAdd {
                                member: m.as_bytes(),
                            },
                        );
                    }
                }
            }
            Case::ZincrbySkiplist => {
                for (j, m) in members.iter().enumerate() {
                    run(
                        &mut s,
                        b"board",
                        AggCmd::ZAdd {
                            member: m,
                            score: j as f64,
                        },
                    );
                }
            }
            Case::LpushLtrim => {
                for i in 0..KEYS {
                    for e in 0..100 {
                        run(
                            &mut s,
                            &key(i),
                            AggCmd::RPush {
                                elem: e.to_string().as_bytes(),
                            },
                        );
                    }
                }
            }
        }
        let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
        let mut n = 0usize;
        self.c
            .bench_function(BenchmarkId::from_parameter(&self.id), |b| {
                b.iter(|| {
                    n = n.wrapping_add(7919);
                    let k = &keys[n % KEYS];
                    match self.case {
                        Case::HsetListpack => run(
                            &mut s,
                            k,
                            AggCmd::HSet {
                                field: &fields[n % 16],
                                value: b"9876543210",
                            },
                        ),
                        Case::HgetListpack => run(
                            &mut s,
                            k,
                            AggCmd::HGet {
                                field: &fields[n % 16],
                            },
                        ),
                        Case::SaddIntset => {
                            let m = ((n % 100) * 37).to_string();
                            run(
                                &mut s,
                                k,
                                AggCmd::SAdd {
                                    member: m.as_bytes(),
                                },
                            )
                        }
                        Case::ZincrbySkiplist => run(
                            &mut s,
                            b"board",
                            AggCmd::ZIncrBy {
                                member: &members[n % members.len()],
                                delta: 1.0,
                            },
                        ),
                        Case::LpushLtrim => {
                            run(&mut s, k, AggCmd::LPush { elem: b"12345" });
                            run(&mut s, k, AggCmd::LTrim { start: 0, stop: 99 });
                        }
                    }
                })
            });
    }
}

fn aggregates(c: &mut Criterion) {
    let configs = [
        ("zmalloc:backend=jemalloc,prefix=0", LayoutKind::Redis),
        ("slab", LayoutKind::Memcached),
    ];
    for case in Case::ALL {
        let mut group = c.benchmark_group(case.name());
        for (alloc, layout) in configs {
            let spec: AllocSpec = alloc.parse().expect("a valid allocator spec");
            let bench = Bench {
                c: &mut group,
                case,
                id: format!("{layout}/{}", spec.name()),
            };
            with_store(&spec, layout, None, StoreConfig::default(), bench)
                .expect("the store builds");
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = aggregates
}
criterion_main!(benches);
