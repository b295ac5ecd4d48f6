//! What a run is: the workload, the allocator and layout, the target and the settings, before
//! anything runs. Every command builds a [`RunSpec`]; [`crate::run::run`] runs it.

use std::fmt;
use std::str::FromStr;

use fraglab_allocators::AllocSpec;
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
    /// The command line, for the record.
    pub command: Vec<String>,
    /// What value bytes look like.
    pub values: ValueBytes,
    /// A real server is driven at the trace's pace: each op is sent no earlier than its time
    /// after the first op's (`--pace`), so the server's once-a-second work (memcached's slab
    /// automover) sees the seconds the engine's maintainer sees.
    pub pace: bool,
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
    fn targets_parse_and_print() {
        for t in TargetKind::ALL {
            assert_eq!(t.to_string().parse::<TargetKind>().unwrap(), t);
        }
        let e = "valkey".parse::<TargetKind>().unwrap_err();
        assert!(e.contains("engine, memcached, redis"), "{e}");
    }
}
