//! Workload spec files (TOML). `workloads/examples/workload.toml` shows and explains every
//! field; presets are built as the same [`WorkloadSpec`] values.
//!
//! This module holds plain data and checks what the schema cannot ([`WorkloadSpec::validate`]);
//! it uses the distributions' parameter types from [`crate::dist`] and nothing downstream.
//! Reading a spec file and checking that it compiles ([`WorkloadSpec::from_file`]) lives with
//! the generator's callers, in [`crate::source`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::agg_spec::AggregateSpec;
use crate::dist::{Arrival, Popularity, SizeDist, TtlDist};
pub use crate::error::WorkloadSpecError;
use crate::OpKind;

/// A byte count written as an integer or as a size string (`512`, `64k`, `1.5m`, `1GiB`; powers
/// of 1024, by [`fraglab_units::parse_size`]'s rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

/// Parses a size by [`fraglab_units::parse_size`]'s rule (`512`, `64k`, `64KiB`, `1.5m`,
/// `1g`), refusing sizes above `i64::MAX`: TOML integers are signed 64-bit, so a larger size
/// could not be written back.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let n = fraglab_units::parse_size(s)?;
    if n > i64::MAX as u64 {
        return Err(format!(
            "`{}` is too large (at most {} bytes)",
            s.trim(),
            i64::MAX
        ));
    }
    Ok(n)
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count: an integer or a string like \"64m\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Bytes, E> {
                if v > i64::MAX as u64 {
                    return Err(E::custom(format!("{v} is too large")));
                }
                Ok(Bytes(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Bytes, E> {
                u64::try_from(v)
                    .map(Bytes)
                    .map_err(|_| E::custom(format!("{v} is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bytes, E> {
                parse_bytes(v).map(Bytes).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// What a weighted op-mix entry does. Besides the [`OpKind`]s: `insert` (a set of a new key,
/// growing the keyspace, YCSB D and E) and `rmw` (a get then a set of the same key, YCSB F).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixOp {
    /// One op of this kind on a chosen key.
    Kind(OpKind),
    /// A set of a new key.
    Insert,
    /// A get and a set of the same key.
    ReadModifyWrite,
}

impl MixOp {
    /// Parses a mix entry's name.
    pub fn parse(name: &str) -> Result<MixOp, WorkloadSpecError> {
        match name {
            "insert" => Ok(MixOp::Insert),
            "rmw" => Ok(MixOp::ReadModifyWrite),
            "slabs-reassign" => Err(WorkloadSpecError::Invalid(
                "mix: `slabs-reassign` names two slab classes, which a mix cannot draw; put \
                 the command in a fraglab CSV trace (op slabs-reassign, key_id the source class \
                 or -1, value_len the destination)"
                    .into(),
            )),
            _ => name.parse::<OpKind>().map(MixOp::Kind).map_err(|_| {
                WorkloadSpecError::Invalid(format!(
                    "mix: unknown op `{name}` (expected get, gets, set, add, replace, cas, append, prepend, incr, decr, delete, touch, scan, insert, rmw, or a hash, set, list or sorted-set op: hset, hget, hdel, hgetall, hincrby, sadd, srem, sismember, spop, scard, lpush, rpush, lpop, rpop, lrange, ltrim, zadd, zrem, zscore, zincrby, zrange, zpopmin)"
                ))
            }),
        }
    }
}

/// A workload: what the keys look like, how requests choose them, and what they do, in
/// phases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// A short name (presets use their preset name).
    #[serde(default = "default_name")]
    pub name: String,
    /// What the workload models and where its parameters come from.
    #[serde(default)]
    pub description: String,
    /// Number of keys requests choose from (ids `0..keyspace`; inserts add more).
    pub keyspace: u64,
    /// Key lengths in bytes; each key's length is a fixed function of its id.
    #[serde(default = "default_key_size")]
    pub key_size: SizeDist,
    /// Which keys requests choose.
    #[serde(default = "default_popularity")]
    pub popularity: Popularity,
    /// Value sizes of writes (drawn afresh for every write).
    pub value_size: SizeDist,
    /// Op mix by weight: op name -> weight.
    pub mix: BTreeMap<String, f64>,
    /// TTLs of writes.
    #[serde(default = "default_ttl")]
    pub ttl: TtlDist,
    /// How logical time advances.
    #[serde(default)]
    pub arrival: Arrival,
    /// A get marked for demand fill is followed, on a miss, by a set of the drawn value size.
    #[serde(default)]
    pub demand_fill: bool,
    /// Keys written in order before the phases (phase `load`).
    #[serde(default)]
    pub preload: Option<Preload>,
    /// The phases, in order.
    pub phases: Vec<PhaseSpec>,
    /// Hashes, sets, lists and sorted sets: sizes and members ([`AggregateSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<AggregateSpec>,
}

fn default_name() -> String {
    "custom".to_string()
}
fn default_key_size() -> SizeDist {
    SizeDist::Fixed { size: 16.0 }
}
fn default_popularity() -> Popularity {
    Popularity::Uniform
}
fn default_ttl() -> TtlDist {
    TtlDist::None
}

/// Keys written before the phases: a set of every key `0..keys`, in order, at time 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preload {
    /// How many keys (default: the whole keyspace).
    #[serde(default)]
    pub keys: Option<u64>,
    /// Their value sizes (default: the workload's).
    #[serde(default)]
    pub value_size: Option<SizeDist>,
}

/// One phase. A run phase draws requests from the mix until it has issued `ops` requests or
/// written `bytes` (key + value bytes of writes); a `delete_fraction` phase deletes that
/// fraction of the live keys, chosen at random, and ends. Unset fields inherit the
/// workload's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// The phase's name, shown in results at its end.
    pub name: String,
    /// Length in requests drawn from the mix (an `rmw` counts once; the deletes a live cap
    /// adds do not count).
    #[serde(default)]
    pub ops: Option<u64>,
    /// Length in bytes written.
    #[serde(default)]
    pub bytes: Option<Bytes>,
    /// Delete this fraction (0..=1) of the live keys at random, then end.
    #[serde(default)]
    pub delete_fraction: Option<f64>,
    /// Keep live data (key + value bytes of keys written and not deleted) at or under this
    /// cap by deleting random live keys before a write that would pass it (RAMCloud).
    #[serde(default)]
    pub live_cap: Option<Bytes>,
    /// Value sizes in this phase.
    #[serde(default)]
    pub value_size: Option<SizeDist>,
    /// Popularity in this phase.
    #[serde(default)]
    pub popularity: Option<Popularity>,
    /// Op mix in this phase.
    #[serde(default)]
    pub mix: Option<BTreeMap<String, f64>>,
    /// TTLs in this phase.
    #[serde(default)]
    pub ttl: Option<TtlDist>,
    /// Arrivals in this phase.
    #[serde(default)]
    pub arrival: Option<Arrival>,
}

impl PhaseSpec {
    /// A run phase of `ops` requests with everything inherited.
    pub fn ops(name: &str, ops: u64) -> PhaseSpec {
        PhaseSpec {
            name: name.to_string(),
            ops: Some(ops),
            ..PhaseSpec::default()
        }
    }

    /// A run phase that ends after `bytes` written.
    pub fn bytes(name: &str, bytes: u64) -> PhaseSpec {
        PhaseSpec {
            name: name.to_string(),
            bytes: Some(Bytes(bytes)),
            ..PhaseSpec::default()
        }
    }

    /// A phase that deletes `fraction` of the live keys.
    pub fn delete_fraction(name: &str, fraction: f64) -> PhaseSpec {
        PhaseSpec {
            name: name.to_string(),
            delete_fraction: Some(fraction),
            ..PhaseSpec::default()
        }
    }
}

impl WorkloadSpec {
    /// Parses TOML text (no validation beyond the schema).
    ///
    /// Bounded before parsing: text over [`SPEC_FILE_MAX`] bytes or with more than
    /// [`PHASES_MAX`] `[[phases]]` tables is refused before the parser allocates anything for
    /// it (a 50 MB phases file cost the parser 3.35 GB), and the parsed phases are counted
    /// again, whatever syntax wrote them. Parse errors quote the offending line cut at
    /// [`ERROR_LINE_MAX`] characters. Duplicate keys are refused (the `toml` crate's rule).
    pub fn from_toml(text: &str) -> Result<WorkloadSpec, String> {
        if text.len() as u64 > SPEC_FILE_MAX {
            return Err(format!(
                "the spec is {} bytes, more than {SPEC_FILE_MAX} (1 MiB), the largest spec read",
                text.len()
            ));
        }
        let tables = text
            .lines()
            .filter(|l| l.trim_start().starts_with("[[phases]]"))
            .count();
        let too_many = |n: usize| {
            format!("the spec has {n} phases, more than {PHASES_MAX}, the most a spec may have")
        };
        if tables > PHASES_MAX {
            return Err(too_many(tables));
        }
        let spec: WorkloadSpec = toml::from_str(text).map_err(|e| cut_lines(&e.to_string()))?;
        if spec.phases.len() > PHASES_MAX {
            return Err(too_many(spec.phases.len()));
        }
        Ok(spec)
    }

    /// The spec as TOML: a preset written out as a starting point for a spec file.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# not representable as TOML: {e}"))
    }

    /// Checks every field that the schema cannot: ranges, phase lengths, op names.
    pub fn validate(&self) -> Result<(), WorkloadSpecError> {
        let bad = |m: String| Err(WorkloadSpecError::Invalid(m));
        if self.keyspace == 0 {
            return bad("keyspace must be at least 1".into());
        }
        if self.keyspace > KEYSPACE_MAX {
            return bad(format!(
                "keyspace {} is larger than 2^53, the largest the samplers draw from exactly",
                self.keyspace
            ));
        }
        if let Some(keys) = self.preload.as_ref().and_then(|p| p.keys) {
            if keys > self.keyspace {
                return bad(format!(
                    "preload.keys {keys} is larger than the keyspace {}",
                    self.keyspace
                ));
            }
        }
        if self.phases.is_empty() {
            return bad("a workload needs at least one phase ([[phases]])".into());
        }
        self.popularity.validate("popularity")?;
        check_mix(&self.mix, "mix")?;
        if let Some(a) = &self.aggregate {
            a.validate()?;
        }
        let aggregate_ops = std::iter::once(&self.mix)
            .chain(self.phases.iter().filter_map(|p| p.mix.as_ref()))
            .flat_map(|m| m.keys())
            .any(|n| matches!(MixOp::parse(n), Ok(MixOp::Kind(k)) if k.is_aggregate()));
        if aggregate_ops && self.tracks_live() {
            return bad(
                "live_cap and delete_fraction count string keys and values; they cannot be \
                 used with hash, set, list or sorted-set ops"
                    .into(),
            );
        }
        for (i, p) in self.phases.iter().enumerate() {
            let at = format!("phases[{i}] `{}`", p.name);
            if let Some(j) = self.phases[..i].iter().position(|q| q.name == p.name) {
                return bad(format!(
                    "{at}: phases[{j}] has the same name; results name phases, so each needs \
                     its own"
                ));
            }
            let lengths = [
                p.ops.is_some(),
                p.bytes.is_some(),
                p.delete_fraction.is_some(),
            ];
            if lengths.iter().filter(|&&x| x).count() != 1 {
                return bad(format!(
                    "{at}: give exactly one of `ops`, `bytes` or `delete_fraction`"
                ));
            }
            if p.ops == Some(0) || p.bytes == Some(Bytes(0)) {
                return bad(format!(
                    "{at}: a phase of length 0 has nothing to replay: give at least 1 (or \
                     leave the phase out)"
                ));
            }
            if let Some(f) = p.delete_fraction {
                if !(0.0..=1.0).contains(&f) {
                    return bad(format!("{at}: delete_fraction {f} is not in 0..=1"));
                }
            }
            if let Some(m) = &p.mix {
                check_mix(m, &format!("{at}: mix"))?;
            }
            if let Some(pop) = &p.popularity {
                pop.validate(&format!("{at}: popularity"))?;
            }
            if p.bytes.is_some() && !writes(p.mix.as_ref().unwrap_or(&self.mix)) {
                return bad(format!(
                    "{at}: a phase measured in bytes written needs writes in its mix \
                     (set, add, replace, cas, append, prepend, insert or rmw)"
                ));
            }
            if p.live_cap == Some(Bytes(0)) {
                return bad(format!("{at}: live_cap must be positive"));
            }
        }
        Ok(())
    }

    /// Multiplies the keyspace, preload, phase lengths and live caps by `x` (at least 1 of
    /// each), leaving distributions alone.
    pub fn scale(&mut self, x: f64) {
        let s = |n: u64| ((n as f64 * x).round() as u64).clamp(1, i64::MAX as u64);
        self.keyspace = s(self.keyspace);
        if let Some(p) = &mut self.preload {
            p.keys = p.keys.map(s);
        }
        for p in &mut self.phases {
            p.ops = p.ops.map(s);
            p.bytes = p.bytes.map(|b| Bytes(s(b.0)));
            p.live_cap = p.live_cap.map(|b| Bytes(s(b.0)));
        }
    }

    /// Sets every phase to a fixed arrival rate of `rate` requests per second
    /// ([`Arrival::at_rate`]): only the ops' times change, every other draw stays the same.
    pub fn set_rate(&mut self, rate: f64) {
        self.arrival = self.arrival.at_rate(rate);
        for p in &mut self.phases {
            p.arrival = p.arrival.as_ref().map(|a| a.at_rate(rate));
        }
    }

    /// Whether any phase needs the set of live keys (a live cap or a delete fraction).
    pub fn tracks_live(&self) -> bool {
        self.phases
            .iter()
            .any(|p| p.live_cap.is_some() || p.delete_fraction.is_some())
    }
}

/// The largest keyspace: 2^53, below which every id is exact as an `f64` (the Zipf samplers
/// draw in floating point).
pub const KEYSPACE_MAX: u64 = 1 << 53;

/// Whether a mix has a positive weight on some write.
fn writes(mix: &BTreeMap<String, f64>) -> bool {
    mix.iter().any(|(name, &w)| {
        w > 0.0
            && match MixOp::parse(name) {
                Ok(MixOp::Kind(k)) => k.writes_value() || k.adds_element(),
                Ok(_) => true,
                Err(_) => false,
            }
    })
}

fn check_mix(mix: &BTreeMap<String, f64>, what: &str) -> Result<(), WorkloadSpecError> {
    if mix.is_empty() {
        return Err(WorkloadSpecError::Invalid(format!(
            "{what}: the op mix is empty"
        )));
    }
    for (name, &w) in mix {
        MixOp::parse(name).map_err(|e| WorkloadSpecError::Invalid(format!("{what}: {e}")))?;
        if !(w >= 0.0 && w.is_finite()) {
            return Err(WorkloadSpecError::Invalid(format!(
                "{what}: weight of `{name}` is {w}; weights must be non-negative"
            )));
        }
    }
    if mix.values().sum::<f64>() <= 0.0 {
        return Err(WorkloadSpecError::Invalid(format!(
            "{what}: all weights are zero"
        )));
    }
    Ok(())
}

/// The largest spec file (TOML) read: 1 MiB. Real specs are a few KiB.
pub const SPEC_FILE_MAX: u64 = 1 << 20;

/// The most phases a spec may have: 10,000.
pub const PHASES_MAX: usize = 10_000;

/// The longest line an error message quotes from a spec, in characters; longer ones are cut
/// and end in `...`, so that a 10 MB line is not echoed back.
pub const ERROR_LINE_MAX: usize = 200;

/// `message` with every line cut at [`ERROR_LINE_MAX`] characters, without trailing space.
fn cut_lines(message: &str) -> String {
    let lines: Vec<String> = message
        .trim_end()
        .lines()
        .map(|line| match line.char_indices().nth(ERROR_LINE_MAX) {
            Some((i, _)) => format!("{}...", &line[..i]),
            None => line.to_string(),
        })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert!(parse_bytes("12q").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("lots").unwrap_err().contains("not a size"));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_bytes("64 KiB"), Ok(65536));
        assert_eq!(
            parse_bytes("8191p").unwrap_err(),
            fraglab_units::parse_size("8191p").unwrap_err()
        );
        assert_eq!(parse_bytes("8388607t"), Ok(8_388_607 << 40));
        assert!(parse_bytes("8388608t").unwrap_err().contains("too large"));
    }
}
