//! Generation throughput: how fast presets produce ops, so that the generator never limits a
//! replay (goal: at least 20 M ops/s for every preset). Each iteration draws a batch of ops
//! from a running stream; throughput is in ops.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use fraglab_workloads::presets::NAMES;
use fraglab_workloads::{Generator, PresetParams, Workload};

const BATCH: u64 = 100_000;

/// The steady state of preset `name`: no preload, and phases long enough never to end inside
/// the measurement.
fn steady(name: &str) -> Generator {
    let params = PresetParams {
        // `size-sweep` needs an allocator's class boundaries: a few of a slab allocator's.
        boundaries: Some(vec![96, 120, 152, 192, 240, 304, 384, 480, 600, 752, 944]),
        overhead: 48,
        ..PresetParams::default()
    };
    let w = Workload::preset(name, &params).expect("preset");
    let Workload::Spec { mut spec, base } = w else {
        unreachable!("presets are generated")
    };
    spec.preload = None;
    for p in &mut spec.phases {
        p.ops = p.ops.map(|_| u64::MAX / 4);
        p.bytes = p.bytes.map(|b| fraglab_workloads::spec::Bytes(b.0 * 1000));
    }
    Generator::new(&spec, &base, 7).expect("generator")
}

fn generation(c: &mut Criterion) {
    let mut g = c.benchmark_group("generate");
    g.throughput(Throughput::Elements(BATCH));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    for &name in NAMES {
        let mut gen = steady(name);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for _ in 0..BATCH {
                    let op = gen.next().expect("stream long enough");
                    acc = acc.wrapping_add(op.key.id ^ u64::from(op.value_len));
                }
                black_box(acc)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, generation);
criterion_main!(benches);
