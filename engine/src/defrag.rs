//! Redis 7.0's active defrag: its configuration (`redis.conf`'s `active-defrag-*` settings),
//! its counters (`INFO stats`' `active_defrag_*`), and the model's effort constant.
//!
//! The cycle itself is [`Store::defrag_cycle`](crate::Store::defrag_cycle)
//! (`engine/src/store/defrag.rs`); how a key's blocks move is each layout's
//! ([`Layout::defrag_key`](crate::Layout::defrag_key), and for the redis layout
//! `engine/src/layout/redis/defrag.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Keys the model's defrag visits per millisecond of CPU share. Redis gives each cycle
/// `cpu_pct` percent of a 100 ms cron tick of wall time (`activeDefragCycle` in Redis 7.0's
/// `src/defrag.c`: `timelimit = 1000000 * cpu_pct / hz / 100` microseconds); the model turns
/// that time into keys. 1,000 keys per ms is 1 microsecond per key: a key of the redis layout
/// is three or four blocks, each a hint (jemalloc's `experimental.utilization.query` takes the
/// bin lock and an extent-map lookup) and for a hit an allocation, a copy and a free with the
/// thread cache off (the alloc+free pair measures about 150 ns on the development machine,
/// `cargo bench -p fraglab-allocators --bench alloc`), plus the dict scan and pointer fixes.
/// At the default 1% to 25% CPU this is 1,000 to 25,000 keys per tick.
pub const KEYS_PER_CPU_MS: u64 = 1_000;

/// Redis's `hz`: cron ticks per second.
pub const HZ: u64 = 10;

/// The `active-defrag-*` settings, with Redis 7.0's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefragConfig {
    /// `active-defrag-ignore-bytes`: no defrag below this many fragmented bytes.
    pub ignore_bytes: u64,
    /// `active-defrag-threshold-lower`: no defrag below this fragmentation percentage.
    pub threshold_lower: u32,
    /// `active-defrag-threshold-upper`: full effort at or above this percentage.
    pub threshold_upper: u32,
    /// `active-defrag-cycle-min`: CPU percent at the lower threshold.
    pub cycle_min: u32,
    /// `active-defrag-cycle-max`: CPU percent at the upper threshold.
    pub cycle_max: u32,
    /// `active-defrag-max-scan-fields`: an aggregate with more elements is handled in steps.
    pub max_scan_fields: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            ignore_bytes: 100 << 20,
            threshold_lower: 10,
            threshold_upper: 100,
            cycle_min: 1,
            cycle_max: 25,
            max_scan_fields: 1000,
        }
    }
}

impl DefragConfig {
    /// The settings' names, as `--defrag` takes them.
    pub const KEYS: [&'static str; 6] = [
        "ignore-bytes",
        "threshold-lower",
        "threshold-upper",
        "cycle-min",
        "cycle-max",
        "max-scan-fields",
    ];

    /// Redis's `computeDefragCycles` interpolation: the CPU percent for a fragmentation of
    /// `frag_pct`, from `cycle_min` at `threshold_lower` to `cycle_max` at `threshold_upper`,
    /// limited to that range (`INTERPOLATE` then `LIMIT`, in integers as Redis casts).
    pub fn cpu_pct(&self, frag_pct: f64) -> u32 {
        let (x1, x2) = (
            f64::from(self.threshold_lower),
            f64::from(self.threshold_upper),
        );
        let (y1, y2) = (f64::from(self.cycle_min), f64::from(self.cycle_max));
        let v = (y1 + (frag_pct - x1) * (y2 - y1) / (x2 - x1)) as i64;
        v.clamp(i64::from(self.cycle_min), i64::from(self.cycle_max)) as u32
    }
}

impl fmt::Display for DefragConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ignore-bytes={},threshold-lower={},threshold-upper={},cycle-min={},cycle-max={},max-scan-fields={}",
            self.ignore_bytes,
            self.threshold_lower,
            self.threshold_upper,
            self.cycle_min,
            self.cycle_max,
            self.max_scan_fields
        )
    }
}

/// Active defrag's counters, named as Redis's `INFO stats` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefragCounters {
    /// `active_defrag_hits`: blocks moved.
    pub active_defrag_hits: u64,
    /// `active_defrag_misses`: blocks the hint said to leave.
    pub active_defrag_misses: u64,
    /// `active_defrag_key_hits`: keys with at least one block moved.
    pub active_defrag_key_hits: u64,
    /// `active_defrag_key_misses`: keys visited with nothing moved.
    pub active_defrag_key_misses: u64,
    /// Bytes of the blocks moved (their requested sizes).
    pub bytes_moved: u64,
    /// Cron ticks in which the defrag cycle ran.
    pub defrag_cycles: u64,
    /// Full scans of the keyspace completed.
    pub scans_completed: u64,
    /// Blocks of aggregates the layout does not move (hashtable, skiplist and quicklist
    /// internals; `engine/src/layout/redis/defrag.rs`), counted when visited.
    pub skipped_blocks: u64,
}
