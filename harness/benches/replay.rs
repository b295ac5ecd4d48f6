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
//! After them, the full-size goal case, `etc` as the preset defines it (1,000,000 keys loaded,
//! then 2,000,000 requests) on slab with the compact layout, runs three times with
//! `latency_every` 0 and three times with 64 (the CLI's default), alternately, and prints the
//! runner's `summary.ops_per_sec` for each and the cost of latency sampling, and then times
//! generating the workload's ops alone (the part of the replay spent drawing ops). It runs under
//! `cargo bench` when no filter is given or a filter matches `goal`.
//!
//! ```text
//! cargo bench -p fraglab --bench replay
//! ```

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use fraglab_allocators::AllocSpec;
use fraglab_engine::LayoutKind;
use fraglab_harness::run::run;
use fraglab_harness::spec::TargetKind;
use fraglab_harness::spec::{defaults_for, RunSpec};
use fraglab_workloads::{PresetParams, Workload};

// The binary's global allocator, so the harness's own allocations cost what they cost there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The runner's spec for `workload` on `alloc` with `layout`, with its default eviction policy,
/// seed 1 (the CLI's default) and no memory limit.
fn spec(workload: Workload, name: &str, alloc: &str, layout: LayoutKind, latency: u64) -> RunSpec {
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
        batch: fraglab_harness::driver::lookahead::DEFAULT_BATCH,
        threads: None,
        command: Vec::new(),
        values: Default::default(),
        defrag: None,
        pace: false,
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
    for (alloc, layout, latency) in [
        ("slab", LayoutKind::Compact, 0),
        ("slab", LayoutKind::Memcached, 0),
        ("jemalloc", LayoutKind::Compact, 0),
        ("log", LayoutKind::Compact, 0),
        ("log:segment=1m", LayoutKind::Compact, 0),
        ("log:segment=1m", LayoutKind::Segcache, 0),
        ("slab", LayoutKind::Compact, 64),
    ] {
        let s = spec(small_etc(), "etc", alloc, layout, latency);
        let id = if latency == 0 {
            BenchmarkId::new(alloc, layout.name())
        } else {
            BenchmarkId::new(alloc, format!("{}+latency_every={latency}", layout.name()))
        };
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

/// The full-size goal case: prints the runner's ops/s with latency sampling off and on.
fn goal_case() {
    let etc = || Workload::preset("etc", &PresetParams::default()).expect("the etc preset");
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..3 {
        for (i, latency) in [0u64, 64].into_iter().enumerate() {
            let s = spec(etc(), "etc", "slab", LayoutKind::Compact, latency);
            let r = run(&s, TargetKind::Engine, &AtomicBool::new(false), &()).expect("the run");
            assert!(r.complete, "{:?}", r.incomplete_reason);
            eprintln!(
                "goal etc (1M keys, {} ops) slab/compact latency_every {latency:>2}, round {}: \
                 {:.3} M ops/s ({:.3} s replay)",
                r.summary.ops,
                round + 1,
                r.summary.ops_per_sec / 1e6,
                r.summary.elapsed_s
            );
            rates[i].push(r.summary.ops_per_sec);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (off, on) = (median(&mut rates[0]), median(&mut rates[1]));
    // Generation alone: what drawing the ops costs inside the replay.
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
    let gen = median(&mut gen);
    eprintln!(
        "goal etc: generating its {ops} ops alone takes {gen:.3} s, \
         {:.0} ns an op: {:.1}% of the replay time at latency_every 0",
        gen / ops as f64 * 1e9,
        gen * off / ops as f64 * 100.0
    );
    eprintln!(
        "goal etc slab/compact, median of 3: latency_every 0 {:.3} M ops/s, latency_every 64 \
         {:.3} M ops/s: sampling costs {:.1}% of throughput",
        off / 1e6,
        on / 1e6,
        (off - on) / off * 100.0
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
