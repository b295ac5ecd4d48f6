//! Presets of hashes, sets, lists and sorted sets, each with its source.

use std::collections::BTreeMap;

use crate::agg::AggregateSpec;
use crate::dist::{Arrival, Popularity, SizeDist, TtlDist};
use crate::spec::{PhaseSpec, Preload, WorkloadSpec};

fn mix(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
    entries.iter().map(|&(k, w)| (k.to_string(), w)).collect()
}

fn fixed(size: f64) -> SizeDist {
    SizeDist::Fixed { size }
}

fn uniform(min: f64, max: f64) -> SizeDist {
    SizeDist::Uniform { min, max }
}

fn spec(
    name: &str,
    description: &str,
    keyspace: u64,
    value_size: SizeDist,
    ops: &[(&str, f64)],
    aggregate: AggregateSpec,
) -> WorkloadSpec {
    WorkloadSpec {
        name: name.to_string(),
        description: description.to_string(),
        keyspace,
        key_size: fixed(16.0),
        popularity: Popularity::Zipf {
            exponent: 0.99,
            scrambled: true,
        },
        value_size,
        mix: mix(ops),
        ttl: TtlDist::None,
        arrival: Arrival::default(),
        demand_fill: false,
        preload: Some(Preload {
            keys: None,
            value_size: None,
        }),
        phases: vec![PhaseSpec::ops("run", 1_000_000)],
        aggregate: Some(aggregate),
    }
}

/// The preset `name`, if it is an aggregate preset.
pub fn build(name: &str) -> Option<WorkloadSpec> {
    Some(match name {
        "ycsb-hash" => {
            let mut s = spec(
                name,
                "YCSB workload A through YCSB's Redis binding (`site.ycsb.db.RedisClient`): a \
                 record is a hash of 10 fields x 100 B written with HMSET (here one HSET per \
                 field), every insert also ZADDs the key to the `_indices` sorted set with a \
                 32-bit hash as its score; reads are HGETALL, updates HSET one field \
                 (writeallfields=false). 100,000 records of 23-byte keys, then 1,000,000 \
                 requests, 50% read, 50% update, zipfian 0.99.",
                100_000,
                fixed(100.0),
                &[("hgetall", 0.5), ("hset", 0.5)],
                AggregateSpec {
                    elements: fixed(10.0),
                    member_size: fixed(6.0),
                    index: true,
                    ..AggregateSpec::default()
                },
            );
            s.key_size = fixed(23.0);
            s
        }
        "sessions" => {
            let mut s = spec(
                name,
                "A web session store, the pattern Redis's documentation teaches for sessions: \
                 one small hash per session (8 fields of 6-12 B, values of 8-40 B) updated \
                 with HSET and HINCRBY counters, read with HGET and HGETALL, and its TTL \
                 renewed with EXPIRE (30 minutes). Every hash stays a listpack under Redis's \
                 defaults. 100,000 sessions, then 1,000,000 requests.",
                100_000,
                uniform(8.0, 40.0),
                &[
                    ("hget", 0.35),
                    ("hset", 0.2),
                    ("hincrby", 0.2),
                    ("hgetall", 0.1),
                    ("touch", 0.15),
                ],
                AggregateSpec {
                    elements: fixed(8.0),
                    member_size: uniform(6.0, 12.0),
                    ..AggregateSpec::default()
                },
            );
            s.ttl = TtlDist::Fixed { seconds: 1800 };
            s
        }
        "leaderboard" => spec(
            name,
            "Game leaderboards, Redis's sorted-set example: 10 boards over a population of \
             100,000 players (12-byte member names), each loaded with 5,000 players, then \
             1,000,000 requests: ZINCRBY of 1-100 points (80%), ZSCORE (10%) and a ZRANGE of \
             the first 10 ranks (10%). Every board is past the 128-entry listpack limit: a \
             skiplist and a dict.",
            10,
            uniform(1.0, 100.0),
            &[("zincrby", 0.8), ("zscore", 0.1), ("zrange", 0.1)],
            AggregateSpec {
                elements: fixed(5000.0),
                members: Some(100_000),
                member_size: fixed(12.0),
                ..AggregateSpec::default()
            },
        ),
        "followers" => spec(
            name,
            "A follower graph: one set of integer user ids per user (ids below 1,000,000: a \
             32-bit intset), sizes log-normal with a median of 150, so most sets stay intsets \
             and the tail crosses the 512-entry limit to a hashtable; then 1,000,000 requests: \
             SADD (60%), SISMEMBER (30%), SREM (5%), SCARD (5%). 10,000 users.",
            10_000,
            fixed(0.0),
            &[
                ("sadd", 0.6),
                ("sismember", 0.3),
                ("srem", 0.05),
                ("scard", 0.05),
            ],
            AggregateSpec {
                elements: SizeDist::Lognormal {
                    mu: 150f64.ln(),
                    sigma: 1.0,
                },
                members: Some(1_000_000),
                integer_members: 1.0,
                ..AggregateSpec::default()
            },
        ),
        "timeline" => spec(
            name,
            "Home timelines capped as Twitter's were (Redis lists of post ids, LPUSH then LTRIM \
             to 800): 10,000 users loaded with 800 integer post ids each, then 1,000,000 \
             requests: LPUSH (45%), LTRIM to 800 (5%), LRANGE of the first 20 (50%).",
            10_000,
            fixed(0.0),
            &[("lpush", 0.45), ("ltrim", 0.05), ("lrange", 0.5)],
            AggregateSpec {
                elements: fixed(800.0),
                integer_members: 1.0,
                range: fixed(20.0),
                ..AggregateSpec::default()
            },
        ),
        _ => return None,
    })
}
