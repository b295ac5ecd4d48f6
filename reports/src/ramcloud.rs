//! RAMCloud's log-structured memory beside the other allocators: the figures of "Log-structured
//! Memory for DRAM-based Storage" (Rumble, Kejriwal, Ousterhout, FAST 2014, Figure 1 and
//! Table 1) that a set of results can be compared with, and the report's table "RAMCloud's
//! Figure 1": memory needed per byte of live data on `ramcloud-w1` ... `ramcloud-w8`, per
//! configuration, with the log's write amplification.
//!
//! The charts read the same figures ([`LogFigures`]): the log's write amplification against
//! its utilization, beside the paper's cleaning cost ([`cleaning_write_amplification`]).

use crate::schema::RunResult;
use crate::set::{Cell, ResultSet, Spread};
use crate::tabular::Table;

/// The paper, as the report cites it.
pub const PAPER: &str = "Rumble, Kejriwal, Ousterhout, Log-structured Memory for DRAM-based \
                         Storage, FAST 2014, Figure 1 and Table 1";

/// The memory utilization the paper's log-structured memory runs at on W1-W8: 80% to 90%.
pub const PAPER_UTILIZATION: (f64, f64) = (0.8, 0.9);

/// Whether `w` is one of RAMCloud's workloads (`ramcloud-w1` ... `ramcloud-w8`).
pub fn is_ramcloud(w: &str) -> bool {
    w.strip_prefix("ramcloud-w")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Write amplification of cleaning segments at utilization `u` in RAMCloud's model: every
/// byte freed costs `u / (1 - u)` bytes copied, so a byte written costs
/// `1 + u / (1 - u) = 1 / (1 - u)` bytes of log writes. Infinite at `u >= 1`.
pub fn cleaning_write_amplification(u: f64) -> f64 {
    if u >= 1.0 {
        f64::INFINITY
    } else {
        1.0 / (1.0 - u)
    }
}

/// `allocated / footprint` of a memory figure, None without footprint: the share of the
/// memory held that holds blocks (for the log: live entries with their headers / segments).
pub fn utilization_of(allocated: u64, footprint: u64) -> Option<f64> {
    (footprint > 0).then(|| allocated as f64 / footprint as f64)
}

/// A run's write amplification, when its detail is the log's:
/// `(bytes_written + bytes_copied) / bytes_written`, or the recorded figure (1) before
/// anything was written.
pub fn write_amplification(r: &RunResult) -> Option<f64> {
    let l = r.allocator_detail.log()?;
    Some(if l.bytes_written > 0 {
        (l.bytes_written + l.bytes_copied) as f64 / l.bytes_written as f64
    } else {
        l.write_amplification
    })
}

/// A log cell's figures, medians over its runs that have a log detail.
#[derive(Clone, Debug, PartialEq)]
pub struct LogFigures {
    /// Summary `allocated / footprint` at the end of the run (None: no footprint).
    pub utilization: Option<f64>,
    /// `(bytes_written + bytes_copied) / bytes_written`.
    pub write_amplification: f64,
    /// The cleaner's policy (of the representative run).
    pub cleaner: String,
    /// The target utilization the cleaner keeps.
    pub utilization_target: f64,
    /// Bytes per segment.
    pub segment_size: u64,
}

/// The log figures of a cell, None when none of its runs has a log detail.
pub fn log_figures(c: &Cell) -> Option<LogFigures> {
    let runs: Vec<&RunResult> = c
        .runs
        .iter()
        .filter(|r| r.allocator_detail.log().is_some())
        .collect();
    let first = runs.first()?;
    let detail = c
        .representative()
        .allocator_detail
        .log()
        .or(first.allocator_detail.log())?;
    let median = |v: Vec<f64>| (!v.is_empty()).then(|| Spread::of(v).median);
    let utilization = median(
        runs.iter()
            .filter_map(|r| utilization_of(r.summary.allocated_bytes, r.summary.footprint_bytes))
            .collect(),
    );
    let wa = median(runs.iter().filter_map(|r| write_amplification(r)).collect())?;
    Some(LogFigures {
        utilization,
        write_amplification: wa,
        cleaner: detail.cleaner.clone(),
        utilization_target: detail.utilization_target,
        segment_size: detail.segment_size,
    })
}

/// The median over a cell's runs of footprint / payload, None when no run has payload.
pub fn footprint_per_payload(c: &Cell) -> Option<f64> {
    let v: Vec<f64> = c
        .runs
        .iter()
        .filter(|r| r.summary.payload_bytes > 0)
        .map(|r| r.summary.footprint_bytes as f64 / r.summary.payload_bytes as f64)
        .collect();
    (!v.is_empty()).then(|| Spread::of(v).median)
}

/// The paragraph beside the table: the paper's published figures to compare with.
pub fn paper_note() -> String {
    format!(
        "Memory needed per byte of live data at the end of each run: the allocator's footprint / \
         the payload (key + value bytes), the median over repeats, for every configuration run \
         without a memory limit (rows) on each of RAMCloud's workloads present (columns); the \
         live data itself is 1.00, and 2.00 means half the memory is waste. A log cell also \
         gives the log's write amplification, (bytes written + bytes the cleaner copied) / \
         bytes written (WA). The paper's figures to compare with ({PAPER}): on W1-W8, \
         RAMCloud's log-structured memory runs at 80-90% memory utilization (1.11 to 1.25 \
         bytes per live byte), where the malloc family (glibc 2.12 malloc in the paper) and \
         memcached's slabs need up to about 2x the live data (up to 50% of memory wasted). \
         Cleaning segments at utilization u copies u/(1-u) bytes per byte freed: a write \
         amplification of 1/(1-u), 5 at 80% and 10 at 90% for segments cleaned at the log's \
         average utilization (a cost-benefit cleaner picks emptier segments and copies less). \
         The paper measured 10 GB of live data; these runs hold what their scale gives, and \
         the engine's index is not counted (the table \"Where the bytes go\" has it)."
    )
}

/// The table "RAMCloud's Figure 1", None when the set has no `ramcloud-w*` workload.
pub fn figure_1(set: &ResultSet) -> Option<Table> {
    let workloads: Vec<String> = set
        .workloads()
        .into_iter()
        .filter(|w| is_ramcloud(w))
        .collect();
    if workloads.is_empty() {
        return None;
    }
    // Rows: allocator x layout x target, in the order the set first has them.
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for c in set.cells.iter().filter(|c| is_ramcloud(&c.key.workload)) {
        let id = (
            c.key.alloc.clone(),
            c.key.layout.clone(),
            c.key.target.clone(),
        );
        if c.key.memory_limit.is_none() && !rows.contains(&id) {
            rows.push(id);
        }
    }
    let body = rows
        .iter()
        .map(|(alloc, layout, target)| {
            let mut row = vec![alloc.clone(), layout.clone(), target.clone()];
            for w in &workloads {
                let cells: Vec<&Cell> = set
                    .cells_of(w)
                    .filter(|c| {
                        c.key.memory_limit.is_none()
                            && c.key.alloc == *alloc
                            && c.key.layout == *layout
                            && c.key.target == *target
                    })
                    .collect();
                let figures: Vec<String> = cells.iter().map(|c| cell_text(c)).collect();
                row.push(if figures.is_empty() {
                    "–".to_string()
                } else {
                    figures.join("; ")
                });
            }
            row
        })
        .collect();
    let mut headers: Vec<String> = ["allocator", "layout", "target"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    headers.extend(workloads.iter().cloned());
    Some(Table {
        id: "ramcloud-figure-1".into(),
        title: "RAMCloud's Figure 1".into(),
        note: paper_note(),
        headers,
        rows: body,
    })
}

/// One cell of the table: footprint / payload, and the write amplification of a log cell.
fn cell_text(c: &Cell) -> String {
    let mut s = match footprint_per_payload(c) {
        Some(r) => format!("{r:.2}"),
        None => "n/a".to_string(),
    };
    if let Some(l) = log_figures(c) {
        s.push_str(&format!(" (WA {:.2})", l.write_amplification));
    }
    if !c.complete() {
        s.push_str(" (incomplete)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramcloud_workloads_and_the_cleaning_cost() {
        assert!(is_ramcloud("ramcloud-w1") && is_ramcloud("ramcloud-w8"));
        assert!(!is_ramcloud("ramcloud-w") && !is_ramcloud("etc"));
        assert!(!is_ramcloud("ramcloud-wx") && !is_ramcloud("file:ramcloud-w1"));
        assert!((cleaning_write_amplification(0.8) - 5.0).abs() < 1e-9);
        assert!((cleaning_write_amplification(0.9) - 10.0).abs() < 1e-9);
        assert!((cleaning_write_amplification(0.5) - (1.0 + 0.5 / 0.5)).abs() < 1e-12);
        assert!(cleaning_write_amplification(1.0).is_infinite());
        assert_eq!(utilization_of(3, 4), Some(0.75));
        assert_eq!(utilization_of(3, 0), None);
    }
}
