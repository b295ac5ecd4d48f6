//! Generation throughput: how fast presets produce ops, so that the generator never limits a
//! replay (goal: at least 20 M ops/s). Each iteration draws a batch of ops from a running
//! stream; throughput is in ops.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use fraglab_workloads::{Generator, PresetParams, Workload};

const BATCH: u64 = 100_000;

fn generation(c: &mut Criterion) {
    let mut g = c.benchmark_group("generate");
    g.throughput(Throughput::Elements(BATCH));
    for name in [
        "etc",
        "ycsb-a",
        "ramcloud-w8",
        "twitter-52",
        "memefficiency-1024",
    ] {
        // The steady state: no preload, and phases long enough never to end inside the
        // measurement.
        let w = Workload::preset(name, &PresetParams::default()).expect("preset");
        let Workload::Spec { mut spec, base } = w else {
            unreachable!("presets are generated")
        };
        spec.preload = None;
        for p in &mut spec.phases {
            p.ops = p.ops.map(|_| u64::MAX / 4);
            p.bytes = p.bytes.map(|b| fraglab_workloads::spec::Bytes(b.0 * 1000));
        }
        let mut gen = Generator::new(&spec, &base, 7).expect("generator");
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
