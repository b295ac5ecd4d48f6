//! A set against a baseline set (`fraglab report DIR --baseline DIR2`): the ratios of
//! throughput and memory, and every memory counter that changed. The second is what a change
//! that is not meant to change results is checked with: it lists, cell by cell, each counter
//! whose median differs at the end of the run, at a phase end, or at its peak.

use crate::tabular::{headers, row_head, Table};
use crate::{Cell, Memory, ResultSet, RunResult};

/// After/before ratios cell by cell against a baseline set (cells matched by key).
pub fn ratios(set: &ResultSet, base: &ResultSet) -> Table {
    let mut rows = Vec::new();
    for c in &set.cells {
        let Some(b) = base.cells.iter().find(|b| b.key == c.key) else {
            let mut row = row_head(c);
            row.extend([
                "not in baseline".to_string(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            rows.push(row);
            continue;
        };
        let ratio = |f: fn(&RunResult) -> f64| {
            let before = b.spread(f).median;
            let after = c.spread(f).median;
            if before == 0.0 {
                if after == 0.0 {
                    "1.000".to_string()
                } else {
                    "n/a".to_string()
                }
            } else {
                format!("{:.3}", after / before)
            }
        };
        let mut row = row_head(c);
        row.extend([
            ratio(|r| r.summary.ops_per_sec),
            ratio(|r| r.summary.footprint_bytes as f64),
            ratio(|r| (r.summary.footprint_bytes + r.summary.index_bytes) as f64),
            ratio(|r| r.summary.efficiency),
        ]);
        rows.push(row);
    }
    for b in &base.cells {
        if !set.cells.iter().any(|c| c.key == b.key) {
            let mut row = row_head(b);
            row.extend([
                "only in baseline".to_string(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            rows.push(row);
        }
    }
    Table {
        id: "baseline".into(),
        title: "Against the baseline".into(),
        note: format!(
            "Ratios of medians, this set / the baseline ({}): above 1 means more throughput, \
             more memory, or better efficiency than before.",
            base.dir.display()
        ),
        headers: headers(&[
            "M ops/s ratio",
            "footprint ratio",
            "memory needed ratio",
            "efficiency ratio",
        ]),
        rows,
    }
}

/// The memory counters a sample holds, by name.
fn memory_counters(m: &Memory) -> [(&'static str, u64); 6] {
    [
        ("items", m.items),
        ("payload_bytes", m.payload_bytes),
        ("requested_bytes", m.requested_bytes),
        ("allocated_bytes", m.allocated_bytes),
        ("footprint_bytes", m.footprint_bytes),
        ("index_bytes", m.index_bytes),
    ]
}

/// Every counter of a run at its end, at each phase end and at its peaks, as
/// (`where.name`, value).
fn counters_of(r: &RunResult) -> Vec<(String, u64)> {
    let s = &r.summary;
    let mut out: Vec<(String, u64)> = memory_counters(&s.peak)
        .into_iter()
        .map(|(k, v)| (format!("peak.{k}"), v))
        .collect();
    out.extend([
        ("end.items".to_string(), s.items),
        ("end.payload_bytes".to_string(), s.payload_bytes),
        ("end.requested_bytes".to_string(), s.requested_bytes),
        ("end.allocated_bytes".to_string(), s.allocated_bytes),
        ("end.footprint_bytes".to_string(), s.footprint_bytes),
        ("end.index_bytes".to_string(), s.index_bytes),
        ("end.hits".to_string(), s.hits),
        ("end.misses".to_string(), s.misses),
        ("end.evictions".to_string(), s.evictions),
        ("end.expired".to_string(), s.expired),
        ("end.oom_errors".to_string(), s.oom_errors),
    ]);
    for (i, p) in r.phases.iter().enumerate() {
        let e = &p.end;
        out.extend(
            memory_counters(&e.memory)
                .into_iter()
                .chain([("hits", e.hits), ("evictions", e.evictions)])
                .map(|(k, v)| (format!("phase {i} ({}).{k}", p.name), v)),
        );
    }
    out
}

/// The median of every counter over a cell's runs (runs with another number of phases are
/// compared by the counters they share).
fn cell_counters(c: &Cell) -> Vec<(String, f64)> {
    let per_run: Vec<Vec<(String, u64)>> = c.runs.iter().map(counters_of).collect();
    let Some(first) = per_run.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|(name, _)| {
            let values: Vec<f64> = per_run
                .iter()
                .filter_map(|run| run.iter().find(|(n, _)| n == name).map(|(_, v)| *v as f64))
                .collect();
            (name.clone(), crate::Spread::of(values).median)
        })
        .collect()
}

/// Every memory counter that differs from the baseline, cell by cell.
pub fn counters(set: &ResultSet, base: &ResultSet) -> Table {
    let mut rows = Vec::new();
    let (mut same, mut peaks_only) = (0, 0);
    for c in &set.cells {
        let Some(b) = base.cells.iter().find(|b| b.key == c.key) else {
            continue;
        };
        let before = cell_counters(b);
        let after = cell_counters(c);
        let mut changed = Vec::new();
        for (name, a) in &after {
            match before.iter().find(|(n, _)| n == name) {
                Some((_, x)) if x == a => {}
                Some((_, x)) => changed.push(format!("{name} {x} -> {a}")),
                None => changed.push(format!("{name}: not in the baseline")),
            }
        }
        if before.len() != after.len() {
            changed.push(format!(
                "{} counters before, {} after (the phases differ)",
                before.len(),
                after.len()
            ));
        }
        if changed.is_empty() {
            same += 1;
            continue;
        }
        let only_peaks = changed.iter().all(|c| c.starts_with("peak."));
        peaks_only += usize::from(only_peaks);
        let mut row = row_head(c);
        row.extend([
            changed.len().to_string(),
            if only_peaks {
                "peaks only"
            } else {
                "end or phase end"
            }
            .to_string(),
            changed.join("; "),
        ]);
        rows.push(row);
    }
    Table {
        id: "baseline-counters".into(),
        title: "Memory counters against the baseline".into(),
        note: format!(
            "Every memory counter (items, payload, requested, allocated, footprint and index \
             bytes at the end, at each phase end and at the peaks; hits, misses, evictions, \
             expired and out-of-memory errors) whose median differs from the baseline's. {same} \
             of the cells in both sets have every counter equal; the {} below do not, {peaks_only} \
             of them in their peaks only. Peaks are \
             maxima over the samples taken, so they move when the sampling points move; \
             mimalloc's and jemalloc's footprints can move by a few pages from run to run.",
            rows.len()
        ),
        headers: headers(&[
            "counters changed",
            "where",
            "what changed (before -> after)",
        ]),
        rows,
    }
}
