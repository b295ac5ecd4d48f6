//! What a run is: the workload, the allocator and layout, the target and the settings, before
//! anything runs. Every command builds a [`RunSpec`]; [`crate::run::run`] runs it.

use std::fmt;
use std::str::FromStr;

use fraglab_allocators::AllocSpec;
use fraglab_engine::defrag::DefragConfig;
use fraglab_engine::{LayoutKind, Policy};
use fraglab_workloads::Workload;

use crate::values::ValueBytes;

/// Everything a run needs.
#[derive(Debug)]
pub struct RunSpec {
    /// The workload as given on the command line.
    pub workload_arg: String,
    /// The resolved workload.
    pub workload: Workload,
    /// The allocator.
    pub alloc: AllocSpec,
    /// The layout.
    pub layout: LayoutKind,
    /// The aggregates' encoding thresholds (`--layout redis:hash-max-listpack-entries=...`).
    pub agg: fraglab_engine::agg::AggConfig,
    /// The eviction policy.
    pub policy: Policy,
    /// The memory limit, bytes.
    pub memory: Option<u64>,
    /// The seed (workload and store).
    pub seed: u64,
    /// Ops between samples (default: the run's ops / 200).
    pub sample_every: Option<u64>,
    /// One op in this many is timed (0: none).
    pub latency_every: u64,
    /// Ops the driver reads ahead for the engine to prefetch (1: none).
    pub batch: usize,
    /// Shards of a sharded engine replay (`--threads`); `None` for one engine.
    pub threads: Option<usize>,
    /// The command line, for the record.
    pub command: Vec<String>,
    /// What value bytes look like.
    pub values: ValueBytes,
    /// Active defrag (`--defrag`), off when `None`.
    pub defrag: Option<DefragConfig>,
    /// A real server is driven at the trace's pace: each op is sent no earlier than its time
    /// after the first op's (`--pace`), so the server's once-a-second work (memcached's slab
    /// automover) sees the seconds the engine's maintainer sees.
    pub pace: bool,
    /// Snapshots and the append-only file (`--snapshot-at`, `--aof`).
    pub persist: crate::persist::PersistConfig,
}

/// Parses `--defrag`: `on` (or an empty value) for Redis 7.0's defaults, or
/// `key=value,...` over [`DefragConfig::KEYS`], each defaulting to Redis 7.0's value;
/// `ignore-bytes` takes the lab's sizes (`100m`).
pub fn parse_defrag(s: &str) -> Result<DefragConfig, String> {
    let mut c = DefragConfig::default();
    let s = s.trim();
    if s.is_empty() || s == "on" || s == "yes" {
        return Ok(c);
    }
    let keys = DefragConfig::KEYS.join(", ");
    for kv in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("`{kv}` is not KEY=VALUE (keys: {keys})"))?;
        let (k, v) = (k.trim(), v.trim());
        let pct = |max: u32| -> Result<u32, String> {
            v.parse::<u32>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("{k}={v}: expected a whole percentage 0..={max}"))
        };
        match k {
            "ignore-bytes" => {
                c.ignore_bytes =
                    fraglab_units::parse_size(v).map_err(|e| format!("{k}={v}: {e}"))?
            }
            "threshold-lower" => c.threshold_lower = pct(1000)?,
            "threshold-upper" => c.threshold_upper = pct(1000)?,
            "cycle-min" => c.cycle_min = pct(100)?,
            "cycle-max" => c.cycle_max = pct(100)?,
            "max-scan-fields" => {
                c.max_scan_fields = v
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| format!("{k}={v}: expected a whole number >= 1"))?
            }
            _ => return Err(format!("unknown key `{k}` (keys: {keys})")),
        }
    }
    if c.cycle_min > c.cycle_max {
        return Err(format!(
            "cycle-min={} is above cycle-max={}",
            c.cycle_min, c.cycle_max
        ));
    }
    if c.threshold_lower >= c.threshold_upper {
        return Err(format!(
            "threshold-lower={} must be below threshold-upper={}",
            c.threshold_lower, c.threshold_upper
        ));
    }
    Ok(c)
}

/// Refuses a memory limit too small for `slab:file`'s first pages: memcached with `-e`
/// takes one page of every class at the start from a file of `-m` bytes, and exits when they
/// do not fit (`slabs.c`, `slabs_preallocate`).
pub fn check_file_memory(alloc: &AllocSpec, memory: Option<u64>) -> Result<(), String> {
    let (AllocSpec::Slab(c), Some(limit)) = (alloc, memory) else {
        return Ok(());
    };
    if c.file.is_none() {
        return Ok(());
    }
    let classes = c.classes().map_err(|e| format!("--alloc: {e}"))?.len() as u64;
    let page = fraglab_allocators::slab::PAGE_SIZE as u64;
    if limit < classes * page {
        return Err(format!(
            "--memory {limit}: slab:file takes one 1 MiB page for each of its {classes} classes at \
             the start, as memcached's -e does (slabs.c, slabs_preallocate); give at least \
             --memory {classes}m"
        ));
    }
    Ok(())
}

/// Refuses `--defrag` where it cannot run: Redis's active defrag asks jemalloc, pointer by
/// pointer, whether a block is worth moving (`je_get_defrag_hint`); only jemalloc and zmalloc
/// over jemalloc give that hint here. And only the redis and compact layouts scan their keys
/// for it.
pub fn check_defrag(
    alloc: &AllocSpec,
    layout: LayoutKind,
    target: TargetKind,
) -> Result<(), String> {
    let hint = match alloc {
        AllocSpec::Jemalloc => true,
        AllocSpec::Zmalloc(z) => z.backend == fraglab_allocators::spec::Backend::Jemalloc,
        _ => false,
    };
    if !hint {
        return Err(format!(
            "--defrag needs jemalloc or zmalloc:backend=jemalloc, not `{alloc}`: Redis's active \
             defrag moves a block only when jemalloc's per-pointer utilization hint says so \
             (je_get_defrag_hint, here from experimental.utilization.query), and {} gives no such hint",
            alloc.name()
        ));
    }
    if !matches!(layout, LayoutKind::Redis | LayoutKind::Compact) {
        return Err(format!(
            "--defrag runs with the redis or compact layout, not {layout}: the {layout} layout \
             does not scan its keys for active defrag"
        ));
    }
    if target != TargetKind::Engine {
        return Err(format!(
            "--defrag models active defrag in the engine; for --target {target} configure the server itself"
        ));
    }
    Ok(())
}

/// Whether the allocator's figures are glibc's process-wide ones (`glibc`, and `zmalloc` over
/// glibc: `mallinfo2` counts every arena of the process). Another thread that touches glibc's
/// malloc changes them: a new thread's first allocation (Rust's thread start calls
/// `pthread_getattr_np`, which reallocs) makes it an arena of its own. Such runs draw their ops
/// on the replay's thread, and cannot be sharded.
pub fn process_wide(alloc: &AllocSpec) -> bool {
    match alloc {
        AllocSpec::Glibc => true,
        AllocSpec::Zmalloc(z) => z.backend == fraglab_allocators::spec::Backend::Glibc,
        _ => false,
    }
}

/// The default layout and eviction policy for an allocator: the system it models.
pub fn defaults_for(alloc: &AllocSpec) -> (LayoutKind, Policy) {
    match alloc {
        AllocSpec::Slab(_) => (LayoutKind::Memcached, Policy::SlabLru),
        AllocSpec::Zmalloc(_) => (LayoutKind::Redis, Policy::SampledLru),
        _ => (LayoutKind::Compact, Policy::SampledLru),
    }
}

/// What a run measures: the engine in this process, or a real server.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// The in-process engine ([`crate::engine_target`]).
    Engine,
    /// A real memcached.
    Memcached,
    /// A real redis-server.
    Redis,
}

impl TargetKind {
    /// Every target.
    pub const ALL: [TargetKind; 3] = [TargetKind::Engine, TargetKind::Memcached, TargetKind::Redis];

    /// The name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Engine => "engine",
            TargetKind::Memcached => "memcached",
            TargetKind::Redis => "redis",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TargetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        TargetKind::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown target `{s}`; valid: engine, memcached, redis"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defrag_is_refused_without_jemalloc_s_hint() {
        for alloc in ["slab", "glibc", "mimalloc", "zmalloc:backend=glibc"] {
            let spec: AllocSpec = alloc.parse().unwrap();
            let e = check_defrag(&spec, LayoutKind::Redis, TargetKind::Engine).unwrap_err();
            assert!(
                e.contains("--defrag needs jemalloc or zmalloc:backend=jemalloc"),
                "{e}"
            );
            assert!(e.contains("utilization hint"), "{e}");
        }
        for alloc in ["jemalloc", "zmalloc:backend=jemalloc,prefix=0"] {
            let spec: AllocSpec = alloc.parse().unwrap();
            check_defrag(&spec, LayoutKind::Redis, TargetKind::Engine).unwrap();
        }
    }

    #[test]
    fn defrag_settings_parse_with_redis_defaults() {
        assert_eq!(parse_defrag("on").unwrap(), DefragConfig::default());
        let c = parse_defrag("ignore-bytes=2m,threshold-lower=5,cycle-max=75").unwrap();
        assert_eq!(
            (c.ignore_bytes, c.threshold_lower, c.cycle_max),
            (2 << 20, 5, 75)
        );
        assert_eq!(
            (c.threshold_upper, c.cycle_min, c.max_scan_fields),
            (100, 1, 1000)
        );
        for (bad, key) in [
            ("cycle-min=101", "cycle-min"),
            ("ignore-bytes=lots", "ignore-bytes"),
            ("threshold-lower=100", "threshold-lower"),
            ("speed=3", "speed"),
            ("max-scan-fields=0", "max-scan-fields"),
        ] {
            let e = parse_defrag(bad).unwrap_err();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn targets_parse_and_print() {
        for t in TargetKind::ALL {
            assert_eq!(t.to_string().parse::<TargetKind>().unwrap(), t);
        }
        let e = "valkey".parse::<TargetKind>().unwrap_err();
        assert!(e.contains("engine, memcached, redis"), "{e}");
    }
}
