//! What a run's aggregates (hashes, sets, lists, sorted sets) cost, by type and encoding:
//! the `aggregates` section of a result, and its lines in the summary.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One type in one encoding, at the end of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregateRow {
    /// `hash`, `set`, `list` or `zset`.
    #[serde(rename = "type")]
    pub agg_type: String,
    /// `listpack`, `hashtable`, `intset`, `quicklist`, `skiplist` (Redis's `OBJECT ENCODING`)
    /// or `blob` (one serialized item: the memcached and compact layouts).
    pub encoding: String,
    /// Keys.
    pub keys: u64,
    /// Elements (hash fields, members, list elements).
    pub elements: u64,
    /// Bytes the store asked the allocator for, for these keys: every allocation of the key
    /// (Redis: dict entry, key, object, encoding, expires entry; memcached: the item).
    pub requested_bytes: u64,
    /// What those allocations cost in the allocator (its usable sizes, chunk sizes).
    pub allocated_bytes: u64,
}

impl AggregateRow {
    /// Allocated bytes per element (0 with no elements).
    pub fn bytes_per_element(&self) -> f64 {
        if self.elements == 0 {
            0.0
        } else {
            self.allocated_bytes as f64 / self.elements as f64
        }
    }
}

/// Encoding conversions during a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// The type.
    #[serde(rename = "type")]
    pub agg_type: String,
    /// From this encoding.
    pub from: String,
    /// To this one.
    pub to: String,
    /// How many keys converted.
    pub count: u64,
}

/// The `aggregates` section of a result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregates {
    /// By type and encoding, at the end.
    pub held: Vec<AggregateRow>,
    /// Conversions (a hash's listpack to a hashtable: Redis never converts back).
    pub conversions: Vec<Conversion>,
    /// Aggregate commands run.
    pub commands: u64,
}

impl Aggregates {
    /// Whether there is nothing to say (no aggregate command ran).
    pub fn is_empty(&self) -> bool {
        self.commands == 0
    }

    /// The summary's lines: one per type and encoding with bytes per element, then the
    /// conversions.
    pub fn summary_lines(&self) -> String {
        let mut t = String::new();
        if self.is_empty() {
            return t;
        }
        let _ = writeln!(t, "aggregates ({} commands):", self.commands);
        for r in &self.held {
            let _ = writeln!(
                t,
                "  {:<5} {:<9} {:>9} keys {:>11} elements {:>12} B allocated  {:>8.1} B/element",
                r.agg_type,
                r.encoding,
                r.keys,
                r.elements,
                r.allocated_bytes,
                r.bytes_per_element()
            );
        }
        for c in &self.conversions {
            let _ = writeln!(
                t,
                "  converted {} {} -> {}: {} keys",
                c.agg_type, c.from, c.to, c.count
            );
        }
        t
    }
}
