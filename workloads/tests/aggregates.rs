//! Aggregate workloads: the `[aggregate]` table, typed keys, the preload that fills each key,
//! the presets, and the streams staying what they were for string workloads.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use fraglab_workloads::presets::{self, PresetParams};
use fraglab_workloads::{Op, OpKind, Workload, WorkloadSpec};

fn ops(w: &Workload, seed: u64) -> Vec<Op> {
    w.stream(seed).unwrap().map(|o| o.unwrap()).collect()
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/aggregates.toml")
}

#[test]
fn the_example_fills_every_key_and_keeps_types_apart() {
    let spec = WorkloadSpec::from_file(&example()).unwrap();
    assert_eq!(WorkloadSpec::from_toml(&spec.to_toml()).unwrap(), spec);
    let w = Workload::parse(
        &format!("file:{}", example().display()),
        &PresetParams::default(),
        &Default::default(),
    )
    .unwrap();
    let all = ops(&w, 7);
    let mut types: HashMap<u64, &str> = HashMap::new();
    let mut fills: HashMap<u64, u64> = HashMap::new();
    for op in &all {
        if op.phase == 0 {
            *fills.entry(op.key.id).or_default() += 1;
        }
        if matches!(op.kind, OpKind::Touch | OpKind::Delete) {
            continue;
        }
        let t = op.kind.data_type();
        assert_eq!(
            *types.entry(op.key.id).or_insert(t),
            t,
            "key {} changed type",
            op.key.id
        );
        assert_eq!(
            op.kind.has_member(),
            op.member.len > 0 || op.kind == OpKind::Hincrby
        );
    }
    // Every key was filled in the load phase, to between 4 and 24 elements.
    assert_eq!(fills.len(), 20_000);
    assert!(fills.values().all(|&n| (4..=24).contains(&n)), "{fills:?}");
    // Hashes are the even ids, sorted sets the odd ones (types sorted by name).
    assert!(types.iter().all(|(id, t)| (*t == "hash") == (id % 2 == 0)));
    assert_eq!(ops(&w, 7), all, "the same seed, the same stream");
}

#[test]
fn counters_never_land_on_string_fields() {
    let w = Workload::preset(
        "sessions",
        &PresetParams {
            scale: 0.01,
            ..Default::default()
        },
    )
    .unwrap();
    let mut fields: HashSet<(u64, u64)> = HashSet::new();
    let mut counters: HashSet<(u64, u64)> = HashSet::new();
    for op in ops(&w, 1) {
        match op.kind {
            OpKind::Hset => fields.insert((op.key.id, op.member.id)),
            OpKind::Hincrby => counters.insert((op.key.id, op.member.id)),
            _ => false,
        };
    }
    assert!(!counters.is_empty());
    assert!(fields.is_disjoint(&counters));
}

#[test]
fn the_presets_hold_what_their_sources_say() {
    let p = PresetParams {
        scale: 0.01,
        ..Default::default()
    };
    let count = |name: &str, kind: OpKind| {
        let w = Workload::preset(name, &p).unwrap();
        ops(&w, 1).iter().filter(|o| o.kind == kind).count()
    };
    // ycsb-hash: 10 fields per record loaded, and one index ZADD per record.
    assert_eq!(count("ycsb-hash", OpKind::Zadd), 1000);
    let w = Workload::preset("ycsb-hash", &p).unwrap();
    let load: Vec<Op> = ops(&w, 1).into_iter().filter(|o| o.phase == 0).collect();
    assert_eq!(
        load.iter().filter(|o| o.kind == OpKind::Hset).count(),
        10_000
    );
    assert!(load
        .iter()
        .filter(|o| o.kind == OpKind::Hset)
        .all(|o| o.value_len == 100));
    // followers: integer members only; timeline: integer post ids, LTRIM keeps 800.
    let w = Workload::preset("followers", &p).unwrap();
    assert!(ops(&w, 1)
        .iter()
        .filter(|o| o.kind.has_member())
        .all(|o| o.member.len == 0 && o.member.id < 1_000_000));
    let w = Workload::preset("timeline", &p).unwrap();
    assert!(ops(&w, 1)
        .iter()
        .filter(|o| o.kind == OpKind::Ltrim)
        .all(|o| o.value_len == 800));
    for name in [
        "ycsb-hash",
        "sessions",
        "leaderboard",
        "followers",
        "timeline",
    ] {
        assert!(presets::NAMES.contains(&name));
    }
}

#[test]
fn aggregate_specs_refuse_what_cannot_run() {
    let base = "keyspace = 10\nvalue_size = { dist = \"fixed\", size = 8 }\n";
    let bad = [
        ("mix = { hset = 1 }\n[aggregate]\ninteger_members = 2.0\n[[phases]]\nname = \"a\"\nops = 1\n", "integer_members"),
        ("mix = { hset = 1 }\n[aggregate]\ncounters = 0\n[[phases]]\nname = \"a\"\nops = 1\n", "counters"),
        ("mix = { sadd = 1 }\n[aggregate]\nmembers = 0\n[[phases]]\nname = \"a\"\nops = 1\n", "members"),
        ("mix = { sadd = 1 }\n[[phases]]\nname = \"a\"\nops = 10\nlive_cap = 100\n", "live_cap"),
        ("mix = { sadd = 1 }\n[aggregate]\nshape = 1\n[[phases]]\nname = \"a\"\nops = 1\n", "shape"),
    ];
    for (text, word) in bad {
        let err = WorkloadSpec::from_toml(&format!("{base}{text}"))
            .map_err(|e| e.to_string())
            .and_then(|s| s.validate().map_err(|e| e.to_string()))
            .unwrap_err();
        assert!(err.contains(word), "{word}: {err}");
    }
}
