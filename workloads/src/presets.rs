//! Presets: published workloads by name. Each is a [`WorkloadSpec`] built here, so
//! `fraglab describe PRESET --format json` shows every parameter it resolves to, and a spec
//! file can start from any of them.
//!
//! | preset | source | shape |
//! |---|---|---|
//! | `ycsb-a` ... `ycsb-f` | YCSB core workloads (Cooper et al., SoCC 2010; `workloads/workload[a-f]`) | load every record, then A 50% read / 50% update, B 95/5, C 100% read, D 95% read / 5% insert over "latest", E 95% scan (1..=100 keys) / 5% insert, F 50% read / 50% read-modify-write; scrambled Zipf 0.99; 1,000-byte records (10 fields x 100 B); 23-byte keys (`user` + 19 digits) |
//! | `etc` | Facebook ETC (Atikoglu et al., SIGMETRICS 2012, as mutilate implements it) | GEV key sizes, ETC value sizes, 30 gets per set, uniform keys, GPD inter-arrival gaps, demand fill; load every key, then run |
//! | `ramcloud-w1` ... `ramcloud-w8` | RAMCloud, Rumble et al., FAST 2014, Table 1 | write "before"-size objects until 5x the live cap is written, deleting random objects to stay under the cap; delete the table's fraction; the same with the "after" size |
//! | `memefficiency-32` ... `-16384` | Redis `tests/unit/memefficiency.tcl` | 10,000 sets of `key:N` with values of `int(rand()*RANGE)` bytes |
//! | `twitter-52`, `-12`, `-14`, `-37` | Yang et al., OSDI 2020, per-cluster statistics | Zipf keys with the cluster's alpha, its op mix, TTL mix and mean key and value sizes; demand fill |
//! | `calcification` | fraglab | memory filled with 64-128 B values, then only 512-1,024 B values written: the slab-calcification case |
//! | `calcification-reads` | fraglab | `calcification` whose large phase reads: 80% gets (a miss fills the key with a 512-1,024 B value) / 20% sets, so the hit ratio shows what the items a slab automover keeps are worth |
//! | `size-sweep` | fraglab | for each size-class boundary `b` of an allocator, fixed values of `b - overhead` and `b - overhead + 1` bytes, one phase each |
//!
//! Every preset scales: `scale` multiplies its records, op counts and live cap; `records`,
//! `ops` and `live_cap` set them outright (after scaling).

use std::collections::BTreeMap;

use crate::dist::{
    Arrival, Popularity, SizeDist, TtlChoice, TtlDist, ETC_INTERARRIVAL_US, ETC_KEY,
};
use crate::spec::{Bytes, PhaseSpec, Preload, WorkloadSpec, WorkloadSpecError};

/// Every preset name, in the order `fraglab list workloads` prints them.
pub const NAMES: &[&str] = &[
    "ycsb-a",
    "ycsb-b",
    "ycsb-c",
    "ycsb-d",
    "ycsb-e",
    "ycsb-f",
    "etc",
    "ramcloud-w1",
    "ramcloud-w2",
    "ramcloud-w3",
    "ramcloud-w4",
    "ramcloud-w5",
    "ramcloud-w6",
    "ramcloud-w7",
    "ramcloud-w8",
    "memefficiency-32",
    "memefficiency-64",
    "memefficiency-128",
    "memefficiency-1024",
    "memefficiency-16384",
    "twitter-52",
    "twitter-12",
    "twitter-14",
    "twitter-37",
    "calcification",
    "calcification-reads",
    "delete-half",
    "size-sweep",
    "ycsb-hash",
    "sessions",
    "leaderboard",
    "followers",
    "timeline",
];

/// How to size a preset.
#[derive(Clone, Debug, PartialEq)]
pub struct PresetParams {
    /// Multiplies records, op counts and live caps.
    pub scale: f64,
    /// Number of records (keyspace), after scaling.
    pub records: Option<u64>,
    /// Requests per run phase, after scaling.
    pub ops: Option<u64>,
    /// Live-data cap of RAMCloud presets, after scaling.
    pub live_cap: Option<u64>,
    /// `size-sweep`: the allocator's class boundaries (allocation sizes in bytes).
    pub boundaries: Option<Vec<u64>>,
    /// `size-sweep`: bytes an item spends beside its value (header and key), subtracted from
    /// each boundary to get the value size that fills the class exactly.
    pub overhead: u64,
}

impl Default for PresetParams {
    fn default() -> Self {
        PresetParams {
            scale: 1.0,
            records: None,
            ops: None,
            live_cap: None,
            boundaries: None,
            overhead: 0,
        }
    }
}

/// The RAMCloud presets' default live cap: 32 MiB (the paper used 10 GB), so that each runs
/// in seconds; its phases write 5x the cap each.
pub const RAMCLOUD_LIVE_CAP: u64 = 32 << 20;

fn mix(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
    entries.iter().map(|&(k, w)| (k.to_string(), w)).collect()
}

fn fixed(size: f64) -> SizeDist {
    SizeDist::Fixed { size }
}

fn uniform(min: f64, max: f64) -> SizeDist {
    SizeDist::Uniform { min, max }
}

fn base(name: &str, description: &str, keyspace: u64, value_size: SizeDist) -> WorkloadSpec {
    WorkloadSpec {
        name: name.to_string(),
        description: description.to_string(),
        keyspace,
        key_size: fixed(16.0),
        popularity: Popularity::Uniform,
        value_size,
        mix: mix(&[("set", 1.0)]),
        ttl: TtlDist::None,
        arrival: Arrival::default(),
        demand_fill: false,
        preload: None,
        phases: Vec::new(),
        aggregate: None,
    }
}

/// The most records (`--records`) a preset takes: 2^32. Every record is loaded before the
/// run (a key, a value and an index slot each), so a count past this can only end in an
/// out-of-memory abort partway; memcached's hash table also stops growing at 2^32 buckets.
pub const RECORDS_MAX: u64 = 1 << 32;

/// The spec of preset `name`, sized by `params`.
pub fn preset(name: &str, params: &PresetParams) -> Result<WorkloadSpec, WorkloadSpecError> {
    if !(params.scale > 0.0 && params.scale.is_finite()) {
        return Err(WorkloadSpecError::Invalid(format!(
            "scale {} must be a positive number",
            params.scale
        )));
    }
    let mut spec = build(name, params)?;
    spec.scale(params.scale);
    if let Some(r) = params.records {
        if r == 0 {
            return Err(WorkloadSpecError::Invalid(
                "records must be at least 1".into(),
            ));
        }
        if r > RECORDS_MAX {
            return Err(WorkloadSpecError::Invalid(format!(
                "records {r} is more than {RECORDS_MAX} (2^32), the most a preset loads"
            )));
        }
        if is_ramcloud(name) || name == "size-sweep" {
            return Err(WorkloadSpecError::Invalid(format!(
                "{name} writes new keys until its byte budget is spent; it has no record count (use --live-cap or --scale)"
            )));
        }
        spec.keyspace = r;
        if let Some(p) = &mut spec.preload {
            p.keys = Some(r);
        }
        if name.starts_with("memefficiency") {
            spec.phases[0].ops = Some(r);
        }
    }
    if let Some(n) = params.ops {
        let mut any = false;
        for p in spec.phases.iter_mut().filter(|p| p.ops.is_some()) {
            p.ops = Some(n);
            any = true;
        }
        if !any {
            return Err(WorkloadSpecError::Invalid(format!(
                "{name} has no phase measured in requests; size it with --live-cap or --scale"
            )));
        }
    }
    if let Some(cap) = params.live_cap {
        if !is_ramcloud(name) {
            return Err(WorkloadSpecError::Invalid(format!(
                "{name} has no live-data cap (only the ramcloud-* presets do)"
            )));
        }
        if cap == 0 {
            return Err(WorkloadSpecError::Invalid(
                "live cap must be positive".into(),
            ));
        }
        for p in spec.phases.iter_mut() {
            if p.live_cap.is_some() {
                p.live_cap = Some(Bytes(cap));
                p.bytes = Some(Bytes(cap.saturating_mul(5)));
            }
        }
    }
    spec.validate()?;
    Ok(spec)
}

fn is_ramcloud(name: &str) -> bool {
    name.starts_with("ramcloud-")
}

fn build(name: &str, params: &PresetParams) -> Result<WorkloadSpec, WorkloadSpecError> {
    if let Some(spec) = crate::agg_presets::build(name) {
        return Ok(spec);
    }
    if let Some(letter) = name.strip_prefix("ycsb-") {
        return ycsb(letter);
    }
    if let Some(w) = name.strip_prefix("ramcloud-w") {
        return ramcloud(name, w);
    }
    if let Some(range) = name.strip_prefix("memefficiency-") {
        return memefficiency(name, range);
    }
    if let Some(cluster) = name.strip_prefix("twitter-") {
        return twitter(name, cluster);
    }
    match name {
        "etc" => Ok(etc()),
        "calcification" => Ok(calcification()),
        "calcification-reads" => Ok(calcification_reads()),
        "delete-half" => Ok(delete_half()),
        "size-sweep" => size_sweep(params),
        _ => Err(unknown(name)),
    }
}

fn unknown(name: &str) -> WorkloadSpecError {
    WorkloadSpecError::Invalid(format!(
        "unknown workload `{name}`; presets are: {} (or use file:PATH for a spec, trace:PATH for a trace)",
        NAMES.join(", ")
    ))
}

fn ycsb(letter: &str) -> Result<WorkloadSpec, WorkloadSpecError> {
    let (m, pop, what): (&[(&str, f64)], Popularity, &str) = match letter {
        "a" => (
            &[("get", 0.5), ("set", 0.5)],
            zipf(0.99),
            "update heavy: 50% read, 50% update",
        ),
        "b" => (
            &[("get", 0.95), ("set", 0.05)],
            zipf(0.99),
            "read mostly: 95% read, 5% update",
        ),
        "c" => (&[("get", 1.0)], zipf(0.99), "read only"),
        "d" => (
            &[("get", 0.95), ("insert", 0.05)],
            Popularity::Latest { exponent: 0.99 },
            "read latest: 95% read, 5% insert, reads favour recent inserts",
        ),
        "e" => (
            &[("scan", 0.95), ("insert", 0.05)],
            zipf(0.99),
            "short ranges: 95% scan of 1..=100 records, 5% insert",
        ),
        "f" => (
            &[("get", 0.5), ("rmw", 0.5)],
            zipf(0.99),
            "read-modify-write: 50% read, 50% read-modify-write",
        ),
        _ => return Err(unknown(&format!("ycsb-{letter}"))),
    };
    let name = format!("ycsb-{letter}");
    let mut s = base(
        &name,
        &format!(
            "YCSB core workload {} ({what}); Cooper et al., SoCC 2010, workloads/workload{letter}. \
             Records of 10 fields x 100 B stored as one 1,000-byte value; 23-byte keys (`user` + 19 \
             digits); zipfian constant 0.99, ranks scrambled over the keyspace by a hash as \
             ScrambledZipfianGenerator does. \
             100,000 records (YCSB's default is 1,000) loaded first, then 1,000,000 requests.",
            letter.to_uppercase()
        ),
        100_000,
        fixed(1000.0),
    );
    s.key_size = fixed(23.0);
    s.popularity = pop;
    s.mix = mix(m);
    s.preload = Some(Preload {
        keys: None,
        value_size: None,
    });
    s.phases = vec![PhaseSpec::ops("run", 1_000_000)];
    Ok(s)
}

fn zipf(exponent: f64) -> Popularity {
    Popularity::Zipf {
        exponent,
        scrambled: true,
    }
}

fn etc() -> WorkloadSpec {
    let mut s = base(
        "etc",
        "Facebook ETC (Atikoglu et al., SIGMETRICS 2012) as mutilate models it, with the paper's \
         parameters (mutilate passes two of its generalized Pareto arguments one place off): \
         key sizes GEV(30.7984, 8.20449, 0.078688); value sizes 0..14 B with fixed probabilities \
         summing to 0.44155, else generalized Pareto(15, 214.476, 0.348238); inter-arrival \
         generalized Pareto(0, 16.0292, 0.154971) us; 30 gets per set; uniform keys; a new value \
         size on every set; demand fill on misses. 1,000,000 keys loaded first, then 2,000,000 \
         requests.",
        1_000_000,
        SizeDist::Etc,
    );
    let (l, sc, sh) = ETC_KEY;
    s.key_size = SizeDist::Gev {
        location: l,
        scale: sc,
        shape: sh,
    };
    s.mix = mix(&[("get", 30.0), ("set", 1.0)]);
    let (l, sc, sh) = ETC_INTERARRIVAL_US;
    s.arrival = Arrival::Interarrival {
        gap_us: SizeDist::Gpd {
            location: l,
            scale: sc,
            shape: sh,
        },
    };
    s.demand_fill = true;
    s.preload = Some(Preload {
        keys: None,
        value_size: None,
    });
    s.phases = vec![PhaseSpec::ops("run", 2_000_000)];
    s
}

fn ramcloud(name: &str, w: &str) -> Result<WorkloadSpec, WorkloadSpecError> {
    let (before, after, deleted) = match w {
        "1" => (fixed(100.0), fixed(100.0), 0.0),
        "2" => (fixed(100.0), fixed(130.0), 0.0),
        "3" => (fixed(100.0), fixed(130.0), 0.9),
        "4" => (uniform(100.0, 150.0), uniform(200.0, 250.0), 0.0),
        "5" => (uniform(100.0, 150.0), uniform(200.0, 250.0), 0.9),
        "6" => (uniform(100.0, 200.0), uniform(1000.0, 2000.0), 0.5),
        "7" => (uniform(1000.0, 2000.0), uniform(1500.0, 2500.0), 0.9),
        "8" => (uniform(50.0, 150.0), uniform(5000.0, 15000.0), 0.9),
        _ => return Err(unknown(name)),
    };
    let describe = |d: &SizeDist| match d {
        SizeDist::Fixed { size } => format!("fixed {size} B"),
        SizeDist::Uniform { min, max } => format!("uniform {min}-{max} B"),
        _ => unreachable!("RAMCloud sizes are fixed or uniform"),
    };
    let mut s = base(
        name,
        &format!(
            "RAMCloud workload W{w} (Rumble et al., \"Log-structured Memory for DRAM-based \
             Storage\", FAST 2014, Table 1, the original table: 0% deletes for W2 and W4, \
             1000-2000/5000-15000 B sizes): objects of {} written until 5x the live cap, deleting \
             random objects to stay under it; then {}% of live objects deleted at random; then \
             objects of {} the same way. Live cap 32 MiB (the paper: 10 GB); live data counts key \
             (16 B) + value bytes. Every write is a new key.",
            describe(&before),
            deleted * 100.0,
            describe(&after)
        ),
        1 << 40,
        before.clone(),
    );
    s.popularity = Popularity::Sequential;
    let cap = RAMCLOUD_LIVE_CAP;
    let fill = |name: &str, size: SizeDist| PhaseSpec {
        live_cap: Some(Bytes(cap)),
        value_size: Some(size),
        ..PhaseSpec::bytes(name, 5 * cap)
    };
    s.phases = vec![
        fill("before", before),
        PhaseSpec::delete_fraction("delete", deleted),
        fill("after", after),
    ];
    Ok(s)
}

fn memefficiency(name: &str, range: &str) -> Result<WorkloadSpec, WorkloadSpecError> {
    let range: u64 = match range {
        "32" | "64" | "128" | "1024" | "16384" => range.parse().expect("listed ranges parse"),
        _ => return Err(unknown(name)),
    };
    let mut s = base(
        name,
        &format!(
            "Redis's memory efficiency test (tests/unit/memefficiency.tcl): 10,000 sets of keys \
             `key:0` .. `key:9999` with values of int(rand()*{range}) bytes, i.e. uniform 0..{} B. \
             The test computes efficiency = (key + value + 2 bytes per entry) / used_memory growth \
             and expects at least 0.15 / 0.25 / 0.35 / 0.75 / 0.82 for ranges 32 / 64 / 128 / 1024 / \
             16384.",
            range - 1
        ),
        10_000,
        uniform(0.0, (range - 1) as f64),
    );
    s.key_size = SizeDist::Decimal { prefix: 4 };
    s.popularity = Popularity::Sequential;
    s.phases = vec![PhaseSpec::ops("write", 10_000)];
    Ok(s)
}

/// The memory efficiency Redis's test expects at least, per value range.
pub fn memefficiency_threshold(range: u64) -> Option<f64> {
    match range {
        32 => Some(0.15),
        64 => Some(0.25),
        128 => Some(0.35),
        1024 => Some(0.75),
        16384 => Some(0.82),
        _ => None,
    }
}

/// The lognormal sigma the Twitter presets assume for value sizes: the published statistics
/// give only means, so the spread is fraglab's assumption (override it in a spec file).
pub const TWITTER_VALUE_SIGMA: f64 = 1.0;

fn twitter(name: &str, cluster: &str) -> Result<WorkloadSpec, WorkloadSpecError> {
    const DAY: u32 = 86_400;
    type Cluster = (
        f64,
        f64,
        &'static [(&'static str, f64)],
        &'static [(u32, f64)],
        f64,
    );
    let (key, value, m, ttls, alpha): Cluster = match cluster {
        "52" => (
            20.0,
            273.0,
            &[("get", 0.91), ("add", 0.04), ("gets", 0.02), ("cas", 0.02)],
            &[(DAY, 0.65), (14 * DAY, 0.27), (DAY / 2, 0.07)],
            1.21,
        ),
        "12" => (
            44.0,
            1030.0,
            &[("set", 0.80), ("get", 0.20)],
            &[(300, 0.98)],
            0.30,
        ),
        "14" => (
            96.0,
            414.0,
            &[("get", 0.65), ("delete", 0.22), ("set", 0.13)],
            &[(DAY, 1.0)],
            1.30,
        ),
        "37" => (
            72.0,
            20134.0,
            &[("set", 0.37), ("get", 0.63)],
            &[(20, 0.91), (300, 0.06)],
            0.43,
        ),
        _ => return Err(unknown(name)),
    };
    let mut s = base(
        name,
        &format!(
            "Twitter cluster {cluster} (Yang et al., \"A large scale analysis of hundreds of \
             in-memory cache clusters at Twitter\", OSDI 2020; public per-cluster statistics): \
             mean key {key} B (fixed), mean value {value} B (lognormal with that mean; sigma \
             {TWITTER_VALUE_SIGMA} is fraglab's assumption, the statistics give only means), op \
             mix {m:?}, TTL mix {ttls:?} (seconds; shares renormalized), Zipf alpha {alpha}. \
             Look-aside: gets fill on a miss. 1,000,000 keys, 2,000,000 requests at 100,000/s."
        ),
        1_000_000,
        SizeDist::lognormal_with_mean(value, TWITTER_VALUE_SIGMA),
    );
    s.key_size = fixed(key);
    s.popularity = zipf(alpha);
    s.mix = mix(m);
    s.ttl = TtlDist::Mixture {
        choices: ttls
            .iter()
            .map(|&(seconds, weight)| TtlChoice { seconds, weight })
            .collect(),
    };
    s.demand_fill = true;
    s.phases = vec![PhaseSpec::ops("run", 2_000_000)];
    Ok(s)
}

fn calcification() -> WorkloadSpec {
    let mut s = base(
        "calcification",
        "Slab calcification: 200,000 keys written with 64-128 B values (phase `small`, 400,000 \
         sets), then the same keys rewritten with 512-1,024 B values (phase `large`, 800,000 \
         sets, uniform keys). The small phase needs about 40 MiB with the memcached layout; \
         run it under a smaller limit (e.g. --memory 24m) so the memory is full when the sizes \
         shift, and pages stay with the small classes unless something moves them.",
        200_000,
        uniform(64.0, 128.0),
    );
    s.popularity = Popularity::Sequential;
    s.phases = vec![
        PhaseSpec::ops("small", 400_000),
        PhaseSpec {
            value_size: Some(uniform(512.0, 1024.0)),
            popularity: Some(Popularity::Uniform),
            ..PhaseSpec::ops("large", 800_000)
        },
    ];
    s
}

/// `calcification` whose large phase is look-aside reads: 80% gets, a miss filled with a
/// large value (demand fill), 20% sets. The small phase is the same 400,000 sets.
fn calcification_reads() -> WorkloadSpec {
    let mut s = calcification();
    s.name = "calcification-reads".into();
    s.description = "Slab calcification with reads: 200,000 keys written with 64-128 B values \
                     (phase `small`, 400,000 sets), then 800,000 requests over the same keys \
                     (phase `large`, uniform keys): 80% gets, a miss filled with a 512-1,024 B \
                     value (demand fill), and 20% sets of 512-1,024 B values. Under a memory \
                     limit (e.g. --memory 64m) the small classes hold the pages when the sizes \
                     shift; the hit ratio of the large phase shows what the items a slab \
                     automover keeps are worth."
        .into();
    s.demand_fill = true;
    s.phases[1].mix = Some(mix(&[("get", 0.8), ("set", 0.2)]));
    s
}

fn delete_half() -> WorkloadSpec {
    let mut s = base(
        "delete-half",
        "Redis's active-defrag test (`tests/unit/memefficiency.tcl`, \"Active defrag big keys\"): \
         250,000 keys written with 151-byte values (its `setrange $j 150 a`), then half of them \
         deleted (phase `delete-half`, at random; the test deletes every other key), which leaves \
         jemalloc's slabs about half full, then 60 s of reads at 10,000 per second (phase `idle`) \
         in which Redis's cron runs: active expiry, and active defrag with --defrag.",
        250_000,
        fixed(151.0),
    );
    s.preload = Some(Preload {
        keys: None,
        value_size: None,
    });
    s.mix = mix(&[("get", 1.0)]);
    s.arrival = Arrival::Fixed { rate: 10_000.0 };
    s.phases = vec![
        PhaseSpec::delete_fraction("delete-half", 0.5),
        PhaseSpec::ops("idle", 600_000),
    ];
    s
}

/// Writes per size in `size-sweep`.
pub const SIZE_SWEEP_WRITES: u64 = 1000;

fn size_sweep(params: &PresetParams) -> Result<WorkloadSpec, WorkloadSpecError> {
    let Some(bounds) = params.boundaries.as_ref().filter(|b| !b.is_empty()) else {
        return Err(WorkloadSpecError::Invalid(
            "size-sweep needs the class boundaries of an allocator (fraglab passes the chosen \
             allocator's; as a library, set PresetParams::boundaries)"
                .into(),
        ));
    };
    let mut sizes = Vec::new();
    for &b in bounds {
        if let Some(v) = b.checked_sub(params.overhead) {
            sizes.push(v);
            sizes.push(v.saturating_add(1));
        }
    }
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() {
        return Err(WorkloadSpecError::Invalid(format!(
            "size-sweep: every boundary is below the overhead of {} bytes",
            params.overhead
        )));
    }
    let mut s = base(
        "size-sweep",
        &format!(
            "Fixed value sizes at and one byte past each class boundary ({} boundaries, overhead \
             {} B per item), {SIZE_SWEEP_WRITES} new keys per size, one phase per size, to show \
             the internal waste each class boundary costs.",
            bounds.len(),
            params.overhead
        ),
        1 << 40,
        fixed(sizes[0] as f64),
    );
    s.popularity = Popularity::Sequential;
    s.phases = sizes
        .iter()
        .map(|&v| PhaseSpec {
            value_size: Some(fixed(v as f64)),
            ..PhaseSpec::ops(&format!("size={v}"), SIZE_SWEEP_WRITES)
        })
        .collect();
    Ok(s)
}
