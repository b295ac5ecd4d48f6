//! A spec's `[aggregate]` table: plain data, checked by [`AggregateSpec::validate`]. How the
//! generator uses it is in [`crate::agg`].

use serde::{Deserialize, Serialize};

use crate::dist::SizeDist;
use crate::error::WorkloadSpecError;

/// The largest size an aggregate key is given: 2^24 elements.
pub const ELEMENTS_MAX: u32 = 1 << 24;

/// A spec's `[aggregate]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    /// Elements per aggregate key (its size).
    #[serde(default = "default_elements")]
    pub elements: SizeDist,
    /// A population of members shared by every key, instead of each key's own `0..size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<u64>,
    /// Lengths of string members and fields.
    #[serde(default = "default_member_size")]
    pub member_size: SizeDist,
    /// The fraction of member ids that are integers.
    #[serde(default)]
    pub integer_members: f64,
    /// How many elements LRANGE and ZRANGE read.
    #[serde(default = "default_range")]
    pub range: SizeDist,
    /// Counter fields per hash: HINCRBY's fields are these, numbered after the fields the
    /// key's size covers (so a counter never lands on a string field written by HSET).
    #[serde(default = "default_counters")]
    pub counters: u64,
    /// YCSB's Redis binding: every preloaded record is also added to one sorted set (the key
    /// after the last record) with its key as the member and a 32-bit hash as the score.
    #[serde(default)]
    pub index: bool,
}

fn default_elements() -> SizeDist {
    SizeDist::Fixed { size: 10.0 }
}
fn default_member_size() -> SizeDist {
    SizeDist::Fixed { size: 8.0 }
}
fn default_counters() -> u64 {
    2
}
fn default_range() -> SizeDist {
    SizeDist::Fixed { size: 10.0 }
}

impl Default for AggregateSpec {
    fn default() -> Self {
        AggregateSpec {
            elements: default_elements(),
            members: None,
            member_size: default_member_size(),
            integer_members: 0.0,
            range: default_range(),
            counters: default_counters(),
            index: false,
        }
    }
}

impl AggregateSpec {
    /// Checks what the schema cannot.
    pub fn validate(&self) -> Result<(), WorkloadSpecError> {
        let bad = |m: String| Err(WorkloadSpecError::Invalid(m));
        if !(0.0..=1.0).contains(&self.integer_members) {
            return bad(format!(
                "aggregate.integer_members {} is not in 0..=1",
                self.integer_members
            ));
        }
        if self.counters == 0 {
            return bad("aggregate.counters must be at least 1".into());
        }
        if self.members == Some(0) {
            return bad("aggregate.members must be at least 1".into());
        }
        Ok(())
    }
}
