//! Active defrag in a result: the settings a run used (in its run spec) and what the cycle
//! did (Redis 7.0's `INFO stats` names, `src/defrag.c`). Documented in
//! `docs/results-schema.md`.

use serde::{Deserialize, Serialize};

/// The `--defrag` settings of a run (`redis.conf`'s `active-defrag-*`), and the model's
/// effort constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefragSettings {
    /// `active-defrag-ignore-bytes`.
    pub ignore_bytes: u64,
    /// `active-defrag-threshold-lower`, percent.
    pub threshold_lower: u32,
    /// `active-defrag-threshold-upper`, percent.
    pub threshold_upper: u32,
    /// `active-defrag-cycle-min`, percent of CPU.
    pub cycle_min: u32,
    /// `active-defrag-cycle-max`, percent of CPU.
    pub cycle_max: u32,
    /// `active-defrag-max-scan-fields`.
    pub max_scan_fields: u64,
    /// Keys the model visits per millisecond of CPU share.
    pub keys_per_cpu_ms: u64,
}

/// What active defrag did over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefragStats {
    /// Blocks moved.
    pub active_defrag_hits: u64,
    /// Blocks the hint said to leave in place.
    pub active_defrag_misses: u64,
    /// Keys with at least one block moved.
    pub active_defrag_key_hits: u64,
    /// Keys visited with nothing moved.
    pub active_defrag_key_misses: u64,
    /// Bytes of the blocks moved (requested sizes).
    pub bytes_moved: u64,
    /// Ticks (100 ms of logical time) in which the cycle ran.
    pub defrag_cycles: u64,
    /// Full scans of the keyspace completed.
    pub scans_completed: u64,
    /// Blocks visited that the layout does not move (aggregate internals, chunked items).
    pub skipped_blocks: u64,
}

impl DefragSettings {
    /// The settings as `fraglab run --defrag` takes them (Redis's `active-defrag-*` names
    /// without the prefix), every key written: `ignore-bytes=2097152,threshold-lower=5,...`.
    /// Runs with equal settings are repeats of one another; the report names them by it.
    pub fn spec(&self) -> String {
        format!(
            "ignore-bytes={},threshold-lower={},threshold-upper={},cycle-min={},cycle-max={},\
             max-scan-fields={}",
            self.ignore_bytes,
            self.threshold_lower,
            self.threshold_upper,
            self.cycle_min,
            self.cycle_max,
            self.max_scan_fields
        )
    }
}
