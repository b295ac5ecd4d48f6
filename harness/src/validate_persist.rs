//! `fraglab validate`'s persistence cases: the model's forked snapshot against the real
//! Redis's BGSAVE ([`crate::peer::redis_bgsave`]), with the same writes during a save slowed
//! by the same `rdb-key-save-delay`: the child's copy-on-write at its end, the model's
//! `snapshot.cow_bytes` against Redis's `rdb_last_cow_size`; and the model's warm restart
//! (`slab:file=PATH`, `--restart-at`) against the real memcached's (`-e FILE`, stopped with
//! SIGUSR1 and started again, [`crate::peer::memcached_warm_restart`]).

use std::sync::atomic::AtomicBool;

use fraglab_allocators::AllocSpec;
use fraglab_workloads::dist::Popularity;
use fraglab_workloads::spec::PhaseSpec;

use super::{classes, fixed, relative, sets, uniform, Case, CaseResult, Kind};
use crate::persist::{PersistConfig, RestartConfig, SnapshotConfig};
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
    .chain(std::iter::once(warm_case()))
    .collect()
}

/// Keys loaded before the warm restart, and ops after it.
const WARM_KEYS: u64 = 30_000;
const WARM_OPS: u64 = 30_000;

/// The warm restart case: 30,000 keys of 16 bytes with values of 50 to 2,000 bytes (classes 5
/// to 24) under 48 MiB, of which the page of each of the 39 classes takes 39: the load
/// already evicts. Then the restart, then 30,000 ops to keys drawn uniformly, half gets and
/// half SETs of the same sizes: which items the restarted server evicts, and so which gets
/// hit, follow its LRU order after the restart. Items up to 512 KiB: the model's page file
/// holds no chunked items.
fn warm_case() -> Case {
    let mut w = sets(
        "warm-restart",
        WARM_KEYS,
        fixed(16.0),
        uniform(50.0, 2000.0),
    );
    w.phases.push(PhaseSpec {
        popularity: Some(Popularity::Uniform),
        mix: Some([("get".to_string(), 0.5), ("set".to_string(), 0.5)].into()),
        ..PhaseSpec::ops("get-and-set", WARM_OPS)
    });
    Case {
        name: "memcached: warm restart (-e FILE)".into(),
        agg: Default::default(),
        workload: w,
        alloc: "slab:item_max=524288",
        memory: Some(48 << 20),
        values: ValueBytes::Letters,
        kind: Kind::WarmRestart,
    }
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
    let row = |metric: &str, m: f64, r: f64, diff: f64, tol: f64| {
        CaseResult::within(case, metric, m, r, diff, tol)
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

/// Puts `spec`'s slab pages in `file`.
fn set_file(spec: &mut RunSpec, file: std::path::PathBuf) -> Result<(), String> {
    let AllocSpec::Slab(c) = &mut spec.alloc else {
        return Err("the warm restart case needs the slab allocator".into());
    };
    c.file = Some(file);
    Ok(())
}

/// The warm restart on both sides, and the rows: items before and after the restart, and the
/// items, pages and used chunks of every class at the end, all exact.
pub(crate) fn check_warm(
    case: &Case,
    mut spec: RunSpec,
    stop: &AtomicBool,
) -> Result<Vec<CaseResult>, String> {
    // Both memory files and their `.meta`, removed with the directory.
    let dir = tempfile::Builder::new()
        .prefix("fraglab-warm-")
        .tempdir()
        .map_err(|e| format!("a directory for the memory files: {e}"))?;
    let model_file = dir.path().join("model.mem");
    set_file(&mut spec, model_file.clone())?;
    // Half an op past the load: the restart comes before the first overwrite.
    spec.persist.restart = Some(RestartConfig {
        at: (WARM_KEYS as f64 + 0.5) / (WARM_KEYS + WARM_OPS) as f64,
        file: model_file,
    });
    let model = run(&spec, TargetKind::Engine, stop, &())?;
    spec.persist = PersistConfig::default();
    let restart = model.restart.as_ref().ok_or("the model did not restart")?;
    if let Some(e) = &restart.error {
        return Err(format!("the model's restart failed: {e}"));
    }
    if !model.complete || restart.at_op != WARM_KEYS {
        return Err(format!(
            "the model's run restarted at op {} (not {WARM_KEYS}) or is incomplete: {}",
            restart.at_op,
            model.incomplete_reason.as_deref().unwrap_or("complete")
        ));
    }
    set_file(&mut spec, dir.path().join("memcached.mem"))?;
    let stream = spec.workload.stream(spec.seed).map_err(|e| e.to_string())?;
    let real = crate::peer::memcached_warm_restart(&spec, stream, WARM_KEYS)?;
    let row = |metric: &str, m: u64, r: u64| CaseResult::exact(case, metric, m, r);
    // memcached's segmented LRU (HOT, WARM, COLD) against the model's one list per class:
    // within 2%, as the evicting case.
    let near = |metric: &str, m: u64, r: u64| {
        let (m, r) = (m as f64, r as f64);
        CaseResult::within(case, metric, m, r, relative(m, r), 0.02)
    };
    let section = |v: &[[u64; 2]]| v.iter().map(|&[c, p]| (c as u32, p)).collect();
    let ((mp, mc), (rp, rc)) = (classes(&model.allocator_detail), classes(&real.end));
    Ok(vec![
        row(
            "items before the restart",
            restart.items_before,
            real.items_before,
        ),
        row(
            "items after the restart",
            restart.items_after,
            real.items_after,
        ),
        row("items at the end", model.summary.items, real.items_end),
        near(
            "evictions (before and after the restart)",
            model.summary.evictions,
            real.evictions_before + real.evictions_after,
        ),
        near(
            "get hits after the restart",
            model.summary.hits,
            real.hits_after,
        ),
        CaseResult::per_class(
            case,
            "pages before the restart (classes that differ)",
            &section(&restart.class_pages_before),
            &real.pages_before,
        ),
        CaseResult::per_class(
            case,
            "pages after the restart (classes that differ)",
            &section(&restart.class_pages_after),
            &real.pages_after,
        ),
        CaseResult::per_class(case, "pages at the end (classes that differ)", &mp, &rp),
        CaseResult::per_class(
            case,
            "used chunks at the end (classes that differ)",
            &mc,
            &rc,
        ),
    ])
}
