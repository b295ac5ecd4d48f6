//! `describe`: a summary of a workload from one pass over its stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::dist::SizeHistogram;
use crate::source::{OpStream, WorkloadError};
use crate::OpKind;

/// Mean and quantiles of a size, in bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeStats {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl From<&SizeHistogram> for SizeStats {
    fn from(h: &SizeHistogram) -> Self {
        SizeStats {
            mean: h.mean(),
            p50: h.quantile(0.5),
            p90: h.quantile(0.9),
            p99: h.quantile(0.99),
            max: h.max(),
        }
    }
}

/// One TTL's share.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TtlShare {
    /// TTL in seconds (0: none).
    pub ttl: u32,
    /// Share of the requests that set a TTL (writes and demand-fill gets).
    pub share: f64,
}

/// One phase's extent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseSummary {
    /// The phase's name.
    pub name: String,
    /// Requests in it.
    pub requests: u64,
    /// Key + value bytes its writes carry.
    pub bytes_written: u64,
}

/// What `fraglab describe` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadSummary {
    /// Requests in the stream.
    pub requests: u64,
    /// Distinct key ids.
    pub distinct_keys: u64,
    /// Requests per op kind.
    pub ops: BTreeMap<String, u64>,
    /// Key length over requests.
    pub key_size: SizeStats,
    /// Value size over the requests that carry one: writes, and gets whose size is known
    /// (demand fill, or recorded in a trace).
    pub value_size: SizeStats,
    /// Sum over distinct keys of key length + the last value size seen for the key.
    pub working_set_bytes: u64,
    /// Shares of the ten most common TTLs.
    pub ttl: Vec<TtlShare>,
    /// Logical time of the last request, seconds.
    pub duration_s: f64,
    /// Phases in order.
    pub phases: Vec<PhaseSummary>,
    /// Malformed trace records skipped (lenient reading).
    pub skipped_records: u64,
}

/// Requests between two reads of the stop flag in [`describe_until`]; a power of two, so
/// the check is a mask. Even the slowest stream (a debug build decoding a compressed trace)
/// reads this many requests in well under a millisecond.
pub const STOP_CHECK_REQUESTS: u64 = 1024;

/// Streams `stream` once and summarizes it. Memory grows with the distinct keys (one entry
/// each), never with the requests.
///
/// ```
/// use fraglab_workloads::{describe, PresetParams, Workload};
/// let params = PresetParams { scale: 0.001, ..PresetParams::default() };
/// let w = Workload::parse("ycsb-a", &params, &Default::default()).unwrap();
/// let summary = describe(w.stream(1).unwrap()).unwrap();
/// assert!(summary.requests > 0);
/// ```
pub fn describe(stream: OpStream) -> Result<WorkloadSummary, WorkloadError> {
    summarize(stream, &AtomicBool::new(false)).map(|(summary, _)| summary)
}

/// [`describe`], reading `stop` every [`STOP_CHECK_REQUESTS`] requests: `Ok(None)` when it
/// was set before the stream ended (Ctrl-C), so that a long stream ends at once.
pub fn describe_until(
    stream: OpStream,
    stop: &AtomicBool,
) -> Result<Option<WorkloadSummary>, WorkloadError> {
    summarize(stream, stop).map(|(summary, stopped)| (!stopped).then_some(summary))
}

/// The summary of the stream up to its end, or up to where `stop` was found set (`true`).
fn summarize(
    mut stream: OpStream,
    stop: &AtomicBool,
) -> Result<(WorkloadSummary, bool), WorkloadError> {
    let names = stream.phase_names();
    let mut phases: Vec<PhaseSummary> = names
        .iter()
        .map(|n| PhaseSummary {
            name: n.clone(),
            requests: 0,
            bytes_written: 0,
        })
        .collect();
    let mut requests = 0u64;
    let mut ops = [0u64; OpKind::ALL.len()];
    let mut keys = SizeHistogram::default();
    let mut values = SizeHistogram::default();
    let mut ttls: HashMap<u32, u64> = HashMap::new();
    let mut last: HashMap<u64, (u16, u32), crate::rng::IdBuildHasher> = HashMap::default();
    let mut time = 0u64;
    let mut stopped = false;
    for op in stream.by_ref() {
        let op = op?;
        requests += 1;
        if requests % STOP_CHECK_REQUESTS == 0 && stop.load(Ordering::Relaxed) {
            stopped = true;
            break;
        }
        ops[op.kind as usize] += 1;
        keys.record(u64::from(op.key.len));
        time = time.max(op.time_us);
        let carries = op.kind.writes_value()
            || (matches!(op.kind, OpKind::Get | OpKind::Gets) && (op.fill || op.value_len > 0));
        let entry = last.entry(op.key.id).or_insert((op.key.len, 0));
        if carries {
            values.record(u64::from(op.value_len));
            *entry = (op.key.len, op.value_len);
        }
        if op.kind.writes_value() || op.fill {
            *ttls.entry(op.ttl).or_insert(0) += 1;
        }
        // A fraglab CSV trace keeps the phase numbers of the workload it was saved from, but
        // not their names.
        let at = usize::from(op.phase);
        while phases.len() <= at {
            phases.push(PhaseSummary {
                name: format!("phase {}", phases.len()),
                requests: 0,
                bytes_written: 0,
            });
        }
        phases[at].requests += 1;
        phases[at].bytes_written += op.bytes_written();
    }
    let ttl_total: u64 = ttls.values().sum();
    let mut ttl: Vec<(u32, u64)> = ttls.into_iter().collect();
    ttl.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ttl.truncate(10);
    let summary = WorkloadSummary {
        requests,
        distinct_keys: last.len() as u64,
        ops: OpKind::ALL
            .iter()
            .zip(ops)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.name().to_string(), n))
            .collect(),
        key_size: SizeStats::from(&keys),
        value_size: SizeStats::from(&values),
        working_set_bytes: last
            .values()
            .map(|&(k, v)| u64::from(k) + u64::from(v))
            .sum(),
        ttl: ttl
            .into_iter()
            .map(|(ttl, n)| TtlShare {
                ttl,
                share: n as f64 / ttl_total as f64,
            })
            .collect(),
        duration_s: time as f64 / 1e6,
        phases,
        skipped_records: stream.skipped(),
    };
    Ok((summary, stopped))
}

impl WorkloadSummary {
    /// The summary as readable text.
    pub fn to_text(&self, name: &str) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "workload           {name}");
        let _ = writeln!(s, "requests           {}", self.requests);
        let _ = writeln!(s, "distinct keys      {}", self.distinct_keys);
        let _ = writeln!(s, "working set        {} bytes", self.working_set_bytes);
        let _ = writeln!(s, "logical duration   {:.3} s", self.duration_s);
        if self.skipped_records > 0 {
            let _ = writeln!(s, "skipped records    {}", self.skipped_records);
        }
        let _ = writeln!(s, "ops");
        for (k, n) in &self.ops {
            let _ = writeln!(
                s,
                "  {k:<8} {n:>12}  {:6.2}%",
                100.0 * *n as f64 / self.requests.max(1) as f64
            );
        }
        let _ = writeln!(
            s,
            "sizes (bytes)         mean      p50      p90      p99      max"
        );
        for (label, st) in [("key", &self.key_size), ("value", &self.value_size)] {
            let _ = writeln!(
                s,
                "  {label:<8} {:>13.1} {:>8} {:>8} {:>8} {:>8}",
                st.mean, st.p50, st.p90, st.p99, st.max
            );
        }
        if !self.ttl.is_empty() {
            let _ = writeln!(s, "ttl");
            for t in &self.ttl {
                let label = if t.ttl == 0 {
                    "none".to_string()
                } else {
                    format!("{} s", t.ttl)
                };
                let _ = writeln!(s, "  {label:<10} {:6.2}%", 100.0 * t.share);
            }
        }
        let _ = writeln!(s, "phases");
        for p in &self.phases {
            let _ = writeln!(
                s,
                "  {:<16} {:>12} requests {:>14} bytes written",
                p.name, p.requests, p.bytes_written
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PresetParams, Workload};

    fn stream() -> OpStream {
        let params = PresetParams {
            scale: 0.01,
            ..PresetParams::default()
        };
        let w = Workload::parse("ycsb-a", &params, &Default::default()).unwrap();
        w.stream(1).unwrap()
    }

    #[test]
    fn describe_until_a_set_flag_ends_at_once_and_an_unset_one_is_describe() {
        assert_eq!(
            describe_until(stream(), &AtomicBool::new(true)).unwrap(),
            None
        );
        assert_eq!(
            describe_until(stream(), &AtomicBool::new(false)).unwrap(),
            Some(describe(stream()).unwrap())
        );
    }
}
