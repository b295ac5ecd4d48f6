//! `fraglab validate`'s persistence cases: the model's forked snapshot against the real
//! Redis's BGSAVE ([`crate::peer::redis_bgsave`]), with the same writes during a save slowed
//! by the same `rdb-key-save-delay`: the child's copy-on-write at its end, the model's
//! `snapshot.cow_bytes` against Redis's `rdb_last_cow_size`.

use std::sync::atomic::AtomicBool;

use fraglab_workloads::dist::Popularity;
use fraglab_workloads::spec::PhaseSpec;

use super::{fixed, relative, sets, Case, CaseResult, Kind};
use crate::persist::{PersistConfig, SnapshotConfig};
use crate::run::run;
use crate::spec::{RunSpec, TargetKind};
use crate::values::ValueBytes;

/// Keys loaded before the save, and writes during it.
const KEYS: u64 = 20_000;
const WRITES: u64 = 4_000;
/// Microseconds per key saved: the save lasts about `KEYS` x this (Redis sleeps with
/// `debugDelay`, the model's child with `thread::sleep`), well past the writes.
const KEY_DELAY_US: u64 = 200;

/// The case: 20,000 keys of 16 bytes with 1,000-byte values, then a BGSAVE slowed to 200 us a
/// key, and 4,000 SETs of 1,000 bytes to keys drawn uniformly while it runs; the redis layout
/// over zmalloc (jemalloc with Redis's size header accounting) and over jemalloc alone.
pub(crate) fn cases() -> Vec<Case> {
    let mut w = sets("bgsave-cow", KEYS, fixed(16.0), fixed(1000.0));
    w.phases.push(PhaseSpec {
        popularity: Some(Popularity::Uniform),
        ..PhaseSpec::ops("overwrite", WRITES)
    });
    [
        ("zmalloc:backend=jemalloc,prefix=0", "zmalloc over jemalloc"),
        ("jemalloc", "jemalloc"),
    ]
    .into_iter()
    .map(|(alloc, label)| Case {
        name: format!("redis: bgsave copy-on-write, {label}"),
        agg: Default::default(),
        workload: w.clone(),
        alloc,
        memory: None,
        values: ValueBytes::Letters,
        kind: Kind::Bgsave,
    })
    .collect()
}

/// Both sides, and the rows.
pub(crate) fn check(
    case: &Case,
    mut spec: RunSpec,
    stop: &AtomicBool,
) -> Result<Vec<CaseResult>, String> {
    // Half an op past the load: the fraction lands on the first write.
    let total = (KEYS + WRITES) as f64;
    spec.persist = PersistConfig {
        snapshot: Some(SnapshotConfig {
            at: vec![(KEYS as f64 + 0.5) / total],
            to: None,
            key_delay_us: KEY_DELAY_US,
        }),
        aof: None,
        restart: None,
    };
    let model = run(&spec, TargetKind::Engine, stop, &())?;
    spec.persist = PersistConfig::default();
    let save = model
        .snapshot
        .as_ref()
        .and_then(|s| s.saves.first())
        .ok_or("the model took no snapshot")?;
    if !save.complete || save.at_op != KEYS || save.writes_during != WRITES {
        return Err(format!(
            "the model's snapshot did not overlap every write: at op {}, {} writes during it, {}",
            save.at_op,
            save.writes_during,
            save.error.as_deref().unwrap_or("complete")
        ));
    }
    let stream = spec.workload.stream(spec.seed).map_err(|e| e.to_string())?;
    let real = crate::peer::redis_bgsave(&spec, stream, KEYS, KEY_DELAY_US)?;
    if !real.overlapped {
        return Err("the real BGSAVE ended before the writes did".into());
    }
    let (m, r) = (save.cow_bytes as f64, real.cow_bytes as f64);
    let row = |metric: &str, m: f64, r: f64, diff: f64, tol: f64| CaseResult {
        case: case.name.clone(),
        metric: metric.to_string(),
        model: m,
        real: r,
        diff,
        tolerance: tol,
        pass: diff.abs() <= tol,
    };
    Ok(vec![
        row(
            "keys saved",
            save.keys as f64,
            real.keys as f64,
            save.keys as f64 - real.keys as f64,
            0.0,
        ),
        row(
            "rdb_last_cow_size (child's Private_Dirty)",
            m,
            r,
            relative(m, r),
            0.25,
        ),
    ])
}
