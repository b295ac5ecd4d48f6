//! `fraglab validate`'s cases for hashes, sets, lists and sorted sets: one workload per Redis
//! 7.0 encoding, at and past each conversion threshold, replayed into the redis layout over
//! `zmalloc:backend=jemalloc,prefix=0` and into the real Redis. Two figures per case:
//! `used_memory` growth (within 1%), and the keys of each type and encoding (the model's
//! against `OBJECT ENCODING` of every key on the server: they must be equal).

use fraglab_reports::RunResult;
use fraglab_workloads::agg::AggregateSpec;
use fraglab_workloads::dist::{Arrival, Popularity, SizeDist, TtlDist};
use fraglab_workloads::spec::{PhaseSpec, Preload, WorkloadSpec};

use super::{Case, CaseResult, Kind};
use crate::values::ValueBytes;

fn fixed(size: f64) -> SizeDist {
    SizeDist::Fixed { size }
}

/// `keys` aggregate keys filled to their size by the preload, then one read per key.
fn filled(
    name: &str,
    keys: u64,
    read: &str,
    value_size: SizeDist,
    a: AggregateSpec,
) -> WorkloadSpec {
    WorkloadSpec {
        name: name.to_string(),
        description: format!("fraglab validate: {name}"),
        keyspace: keys,
        key_size: fixed(16.0),
        popularity: Popularity::Sequential,
        value_size,
        mix: [(read.to_string(), 1.0)].into(),
        ttl: TtlDist::None,
        arrival: Arrival::default(),
        demand_fill: false,
        preload: Some(Preload {
            keys: None,
            value_size: None,
        }),
        phases: vec![PhaseSpec::ops("read", keys)],
        aggregate: Some(a),
    }
}

fn elements(n: f64) -> AggregateSpec {
    AggregateSpec {
        elements: fixed(n),
        ..AggregateSpec::default()
    }
}

fn integers(n: f64, members: Option<u64>) -> AggregateSpec {
    AggregateSpec {
        elements: fixed(n),
        members,
        integer_members: 1.0,
        ..AggregateSpec::default()
    }
}

/// The cases, named by what they hold and the encoding Redis should pick.
pub(crate) fn cases() -> Vec<Case> {
    let case = |name: &str, w: WorkloadSpec| Case {
        name: format!("redis: {name}"),
        agg: Default::default(),
        workload: w,
        alloc: "zmalloc:backend=jemalloc,prefix=0",
        memory: None,
        values: ValueBytes::Letters,
        kind: Kind::Aggregates,
    };
    let uniform = |min: f64, max: f64| SizeDist::Uniform { min, max };
    vec![
        case(
            "hash listpack, 16 fields of 10..60 B",
            filled(
                "hash-listpack",
                1000,
                "hget",
                uniform(10.0, 60.0),
                elements(16.0),
            ),
        ),
        case(
            "hash listpack at 512 fields",
            filled("hash-512", 30, "hget", fixed(8.0), elements(512.0)),
        ),
        case(
            "hash hashtable at 513 fields",
            filled("hash-513", 30, "hget", fixed(8.0), elements(513.0)),
        ),
        case(
            "hash listpack, 64-byte values",
            filled("hash-v64", 300, "hget", fixed(64.0), elements(4.0)),
        ),
        case(
            "hash hashtable, 65-byte values",
            filled("hash-v65", 300, "hget", fixed(65.0), elements(4.0)),
        ),
        case(
            "set intset 16-bit, 100 members",
            filled(
                "set-int16",
                500,
                "sismember",
                fixed(0.0),
                integers(100.0, Some(30_000)),
            ),
        ),
        case(
            "set intset 64-bit, 100 members",
            filled(
                "set-int64",
                500,
                "sismember",
                fixed(0.0),
                integers(100.0, Some(1 << 40)),
            ),
        ),
        case(
            "set intset at 512 integers",
            filled(
                "set-512",
                30,
                "sismember",
                fixed(0.0),
                integers(512.0, None),
            ),
        ),
        case(
            "set hashtable of 513 integers",
            filled(
                "set-513",
                30,
                "sismember",
                fixed(0.0),
                integers(513.0, None),
            ),
        ),
        // Members drawn from a large population, so that every set hashes differently: Redis
        // seeds its dict hash at random on every start, and how far a dict's rehash has got
        // after its last insert depends on where its members hash. Sets of the same 50
        // members would all finish or all not, by the server's seed alone (an 8% swing).
        case(
            "set hashtable of strings, 50 members",
            filled(
                "set-strings",
                300,
                "sismember",
                fixed(0.0),
                AggregateSpec {
                    members: Some(1_000_000),
                    ..elements(50.0)
                },
            ),
        ),
        case(
            "list quicklist, 10 small elements",
            filled(
                "list-small",
                2000,
                "lrange",
                fixed(0.0),
                integers(10.0, None),
            ),
        ),
        case(
            "list quicklist, 5000 elements of 20 B",
            filled(
                "list-long",
                20,
                "lrange",
                fixed(0.0),
                AggregateSpec {
                    member_size: fixed(20.0),
                    ..elements(5000.0)
                },
            ),
        ),
        case(
            "zset listpack at 128 members",
            filled(
                "zset-128",
                200,
                "zscore",
                uniform(1.0, 1000.0),
                elements(128.0),
            ),
        ),
        case(
            "zset skiplist at 129 members",
            filled(
                "zset-129",
                200,
                "zscore",
                uniform(1.0, 1000.0),
                elements(129.0),
            ),
        ),
        case(
            "zset skiplist, 65-byte members",
            filled(
                "zset-m65",
                300,
                "zscore",
                uniform(1.0, 1000.0),
                AggregateSpec {
                    member_size: fixed(65.0),
                    ..elements(8.0)
                },
            ),
        ),
    ]
}

/// Keys per type and encoding, as `type encoding` -> keys.
fn encodings(r: &RunResult) -> std::collections::BTreeMap<String, u64> {
    r.aggregates
        .held
        .iter()
        .map(|row| (format!("{} {}", row.agg_type, row.encoding), row.keys))
        .collect()
}

/// The encoding rows: for every type and encoding either side holds, its keys, which must be
/// equal.
pub(crate) fn encoding_rows(case: &Case, model: &RunResult, real: &RunResult) -> Vec<CaseResult> {
    let (m, r) = (encodings(model), encodings(real));
    let names: std::collections::BTreeSet<&String> = m.keys().chain(r.keys()).collect();
    names
        .into_iter()
        .map(|n| {
            CaseResult::exact(
                case,
                &format!("keys encoded {n}"),
                m.get(n).copied().unwrap_or(0),
                r.get(n).copied().unwrap_or(0),
            )
        })
        .collect()
}
