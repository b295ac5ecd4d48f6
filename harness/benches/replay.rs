//! Replay throughput of the runner: a fixed `etc` workload (100,000 keys loaded, then
//! 1,000,000 requests: 1,100,000 ops) replayed through `fraglab_harness::run::run` into slab
//! with the compact and the memcached layouts, into jemalloc with the compact layout, and into
//! the log allocator (8 MiB and 1 MiB segments, its cleaner running inline) with the compact
//! layout and, with 1 MiB segments, the segcache layout.
//!
//! Each iteration is a whole run (building the store, the replay through the one driver,
//! `fraglab_harness::driver`), but the time reported to criterion is the run's own replay time
//! (`summary.elapsed_s`: the replay loop with sampling excluded), so the throughput criterion
//! prints is the runner's ops/s.
//! Latency sampling is off (`latency_every` 0) in these but for a second slab/compact case with
//! the CLI's default, 64.
//!
//! The cases run with the default lookahead window (`--batch 16`) but for one with `--batch 1`
//! (one op at a time, no prefetch hints) and one sharded over two engines (`--threads 2`).
//!
//! After them, the full-size goal cases, `etc` as the preset defines it (1,000,000 keys loaded,
//! then 2,000,000 requests), `latency_every` 0, three runs each (see [`goal_case`]). They run
//! under `cargo bench` when no filter is given or a filter matches `goal`.
//!
//! ```text
//! cargo bench -p fraglab --bench replay
//! ```

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use fraglab_allocators::AllocSpec;
use fraglab_engine::LayoutKind;
use fraglab_harness::driver::lookahead::DEFAULT_BATCH;
use fraglab_harness::run::run;
use fraglab_harness::spec::TargetKind;
use fraglab_harness::spec::{defaults_for, RunSpec};
use fraglab_workloads::{PresetParams, Workload};

// The binary's global allocator, so the harness's own allocations cost what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The runner's spec for `workload` on `alloc` with `layout`, with its default eviction policy,
/// seed 1 (the CLI's default), no memory limit, a lookahead window (`--batch`) and shards
/// (`--threads`).
fn spec_with(
    workload: Workload,
    name: &str,
    alloc: &str,
    layout: LayoutKind,
    latency: u64,
    batch: usize,
    threads: Option<usize>,
) -> RunSpec {
    let alloc: AllocSpec = alloc.parse().expect("a valid allocator spec");
    let (_, policy) = defaults_for(&alloc);
    RunSpec {
        workload_arg: name.to_string(),
        workload,
        alloc,
        layout,
        agg: Default::default(),
        policy,
        memory: None,
        seed: 1,
        sample_every: None,
        latency_every: latency,
        batch,
        threads,
        command: Vec::new(),
        values: Default::default(),
        defrag: None,
        pace: false,
        persist: Default::default(),
    }
}

/// `etc` with 100,000 keys and 1,000,000 requests.
fn small_etc() -> Workload {
    Workload::preset(
        "etc",
        &PresetParams {
            records: Some(100_000),
            ops: Some(1_000_000),
            ..PresetParams::default()
        },
    )
    .expect("the etc preset")
}

/// The ops a run of `etc` with 100,000 keys and 1,000,000 requests replays.
const SMALL_ETC_OPS: u64 = 1_100_000;

fn replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay-etc-100k");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(SMALL_ETC_OPS));
    for (alloc, layout, latency, batch, threads) in [
        ("slab", LayoutKind::Compact, 0, DEFAULT_BATCH, None),
        ("slab", LayoutKind::Compact, 0, 1, None),
        ("slab", LayoutKind::Compact, 0, DEFAULT_BATCH, Some(2)),
        ("slab", LayoutKind::Memcached, 0, DEFAULT_BATCH, None),
        (
            "zmalloc:backend=jemalloc",
            LayoutKind::Redis,
            0,
            DEFAULT_BATCH,
            None,
        ),
        ("jemalloc", LayoutKind::Compact, 0, DEFAULT_BATCH, None),
        ("log", LayoutKind::Compact, 0, DEFAULT_BATCH, None),
        (
            "log:segment=1m",
            LayoutKind::Compact,
            0,
            DEFAULT_BATCH,
            None,
        ),
        (
            "log:segment=1m",
            LayoutKind::Segcache,
            0,
            DEFAULT_BATCH,
            None,
        ),
        ("slab", LayoutKind::Compact, 64, DEFAULT_BATCH, None),
    ] {
        let s = spec_with(small_etc(), "etc", alloc, layout, latency, batch, threads);
        let mut id = layout.name().to_string();
        if latency != 0 {
            id += &format!("+latency_every={latency}");
        }
        if batch != DEFAULT_BATCH {
            id += &format!("+batch={batch}");
        }
        if let Some(n) = threads {
            id += &format!("+threads={n}");
        }
        let id = BenchmarkId::new(alloc, id);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut replay = Duration::ZERO;
                for _ in 0..iters {
                    let r =
                        run(&s, TargetKind::Engine, &AtomicBool::new(false), &()).expect("the run");
                    assert!(r.complete, "{:?}", r.incomplete_reason);
                    assert_eq!(r.summary.ops, SMALL_ETC_OPS);
                    replay += Duration::from_secs_f64(r.summary.elapsed_s);
                }
                replay
            })
        });
    }
    group.finish();
}

/// The full-size goal cases: `etc` as the preset defines it, three runs each, alternating, of
/// slab/compact (one op at a time, `--batch 1`, then the default window, then two shards),
/// slab/memcached and zmalloc/redis; prints each run's ops/s and each case's best and median.
/// Then it times generating the workload's ops alone.
fn goal_case() {
    let etc = || Workload::preset("etc", &PresetParams::default()).expect("the etc preset");
    let cases: [(&str, &str, LayoutKind, usize, Option<usize>); 5] = [
        (
            "slab/compact --batch 1",
            "slab",
            LayoutKind::Compact,
            1,
            None,
        ),
        (
            "slab/compact",
            "slab",
            LayoutKind::Compact,
            DEFAULT_BATCH,
            None,
        ),
        (
            "slab/compact --threads 2",
            "slab",
            LayoutKind::Compact,
            DEFAULT_BATCH,
            Some(2),
        ),
        (
            "slab/memcached",
            "slab",
            LayoutKind::Memcached,
            DEFAULT_BATCH,
            None,
        ),
        (
            "zmalloc/redis",
            "zmalloc",
            LayoutKind::Redis,
            DEFAULT_BATCH,
            None,
        ),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for round in 0..3 {
        for (i, (name, alloc, layout, batch, threads)) in cases.iter().enumerate() {
            let s = spec_with(etc(), "etc", alloc, *layout, 0, *batch, *threads);
            let r = run(&s, TargetKind::Engine, &AtomicBool::new(false), &()).expect("the run");
            assert!(r.complete, "{:?}", r.incomplete_reason);
            eprintln!(
                "goal etc (1M keys, {} ops) {name}, round {}: {:.3} M ops/s ({:.3} s replay)",
                r.summary.ops,
                round + 1,
                r.summary.ops_per_sec / 1e6,
                r.summary.elapsed_s
            );
            rates[i].push(r.summary.ops_per_sec);
        }
    }
    for ((name, ..), v) in cases.iter().zip(&mut rates) {
        v.sort_by(f64::total_cmp);
        eprintln!(
            "goal etc {name}: best of 3 {:.3} M ops/s, median {:.3}",
            v[v.len() - 1] / 1e6,
            v[v.len() / 2] / 1e6
        );
    }
    // Generation alone: what drawing the ops costs (on the producer thread in a replay).
    let mut gen = Vec::new();
    let mut ops = 0u64;
    for _ in 0..3 {
        let start = Instant::now();
        ops = 0;
        for op in etc().stream(1).expect("the stream") {
            std::hint::black_box(op.expect("an op"));
            ops += 1;
        }
        gen.push(start.elapsed().as_secs_f64());
    }
    gen.sort_by(f64::total_cmp);
    let gen = gen[1];
    eprintln!(
        "goal etc: generating its {ops} ops alone takes {gen:.3} s, {:.0} ns an op",
        gen / ops as f64 * 1e9
    );
}

/// Whether the goal case runs: under `cargo bench` (not `cargo test --benches`), with no
/// filter or a filter that `goal` contains.
fn goal_wanted() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return false;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| "goal".contains(f.as_str()))
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    replay(&mut c);
    c.final_summary();
    if goal_wanted() {
        goal_case();
    }
}
