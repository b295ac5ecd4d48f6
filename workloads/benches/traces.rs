//! Trace reading throughput: the real oracleGeneral sample (binary), and fraglab CSV of 100k
//! ops, plain and zstd-compressed, written to a temporary directory first.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fraglab_workloads::rng::mix64;
use fraglab_workloads::trace::{FraglabCsvWriter, TraceOptions, TraceReader};
use fraglab_workloads::{Key, Op, OpKind};

const CSV_OPS: u64 = 100_000;

/// `$FRAGLAB_DATA/cloudPhysicsIO.oracleGeneral.bin`, by default in the shared data folder.
fn real_trace() -> PathBuf {
    let dir = std::env::var_os("FRAGLAB_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
        PathBuf::from,
    );
    dir.join("cloudPhysicsIO.oracleGeneral.bin")
}

/// Reads a whole trace, returning the op count and a checksum so nothing is optimized away.
fn read(path: &Path) -> (u64, u64) {
    let reader = TraceReader::open(path, &TraceOptions::default()).unwrap();
    let mut n = 0u64;
    let mut sum = 0u64;
    for op in reader {
        let op = op.unwrap();
        n += 1;
        sum = sum.wrapping_add(op.key.id ^ op.time_us ^ u64::from(op.value_len));
    }
    (n, sum)
}

/// A memcached-like mix: mostly gets, some sets with TTLs, the odd delete.
fn csv_ops() -> impl Iterator<Item = Op> {
    (0..CSV_OPS).map(|i| {
        let r = mix64(i);
        let kind = match r % 20 {
            0..=15 => OpKind::Get,
            16..=18 => OpKind::Set,
            _ => OpKind::Delete,
        };
        Op {
            time_us: i * 37,
            kind,
            key: Key {
                id: (r >> 8) % 1_000_000,
                len: 10 + (r >> 40) as u16 % 40,
            },
            value_len: ((r >> 16) % 4000) as u32,
            ttl: if kind == OpKind::Set { 3600 } else { 0 },
            fill: kind == OpKind::Get,
            phase: 0,
            member: Key::NONE,
        }
    })
}

fn bench_read(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("fraglab-trace-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut csvs = Vec::new();
    for name in ["ops.csv", "ops.csv.zst"] {
        let path = dir.join(name);
        let mut w = FraglabCsvWriter::create(&path).unwrap();
        for op in csv_ops() {
            w.write(&op).unwrap();
        }
        assert_eq!(w.finish().unwrap(), CSV_OPS);
        csvs.push((name, path));
    }

    let mut g = c.benchmark_group("trace-read");
    let real = real_trace();
    if real.exists() {
        let (n, _) = read(&real);
        g.throughput(Throughput::Elements(n));
        g.bench_function("oracle-general", |b| b.iter(|| black_box(read(&real))));
    } else {
        eprintln!("{} is missing (set FRAGLAB_DATA); skipping", real.display());
    }
    g.throughput(Throughput::Elements(CSV_OPS));
    for (name, path) in &csvs {
        let id = if name.ends_with(".zst") {
            "fraglab-csv-zst"
        } else {
            "fraglab-csv"
        };
        g.bench_function(id, |b| b.iter(|| black_box(read(path))));
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_read);
criterion_main!(benches);
