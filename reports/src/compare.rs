//! `compare.json`: the index a matrix of runs (`fraglab compare`) keeps beside its cells, its
//! groups (one workload x allocator x layout x target x memory limit, with the median, min and
//! max of each figure over the repeats), and the summary table printed from it.
//!
//! Version 2 of the file ([`COMPARE_SCHEMA`]): version 1 had one `settings.memory` (a size or
//! null); version 2 has the list `settings.memory_limits` (a size, or null for no limit), a
//! `memory_limit` in every cell and group, since a matrix may sweep the limit, and the hits,
//! misses and hit ratio behind a miss-ratio curve.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{Env, RunResult, Spread};

/// The compare.json schema version.
pub const COMPARE_SCHEMA: u32 = 2;

/// What one cell measured (from its result file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellFigures {
    /// The run completed.
    pub complete: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// Ops replayed.
    pub ops: u64,
    /// Replay time, s.
    pub elapsed_s: f64,
    /// Throughput.
    pub ops_per_sec: f64,
    /// Footprint at the end.
    pub footprint_bytes: u64,
    /// Peak footprint.
    pub peak_footprint_bytes: u64,
    /// Payload at the end.
    pub payload_bytes: u64,
    /// Index at the end.
    pub index_bytes: u64,
    /// payload / (footprint + index).
    pub efficiency: f64,
    /// Evictions.
    pub evictions: u64,
    /// Reads that found their key.
    #[serde(default)]
    pub hits: u64,
    /// Reads that did not.
    #[serde(default)]
    pub misses: u64,
    /// The eviction policy.
    pub eviction: String,
    /// Malformed trace records skipped by `--lenient` (absent: 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_records: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CellFigures {
    /// The figures of a result.
    pub fn of(r: &RunResult) -> CellFigures {
        let s = &r.summary;
        CellFigures {
            complete: r.complete,
            incomplete_reason: r.incomplete_reason.clone(),
            ops: s.ops,
            elapsed_s: s.elapsed_s,
            ops_per_sec: s.ops_per_sec,
            footprint_bytes: s.footprint_bytes,
            peak_footprint_bytes: s.peak.footprint_bytes,
            payload_bytes: s.payload_bytes,
            index_bytes: s.index_bytes,
            efficiency: s.efficiency,
            evictions: s.evictions,
            hits: s.hits,
            misses: s.misses,
            eviction: r.run.eviction.clone(),
            skipped_records: r.run.skipped_records,
        }
    }

    /// hits / (hits + misses); none without reads.
    pub fn hit_ratio(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

/// A cell's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellStatus {
    /// Not run yet.
    Pending,
    /// Ran and completed.
    Ok,
    /// A complete result was already there (an earlier compare, or a plan line run elsewhere).
    Resumed,
    /// The combination is refused.
    Skipped,
    /// The child exited non-zero, or its result is unreadable or incomplete.
    Failed,
    /// Ctrl-C stopped it, or stdout was closed before its table was printed.
    Interrupted,
    /// compare stopped before it.
    NotRun,
}

/// One cell of compare.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// `WORKLOAD__ALLOC__LAYOUT[__TARGET]__HASH-rN`.
    pub id: String,
    /// The workload as given.
    pub workload: String,
    /// Its scale (none for traces).
    pub scale: Option<f64>,
    /// The canonical allocator spec.
    pub alloc: String,
    /// The layout.
    pub layout: String,
    /// Whether the layout is the allocator's own (no `--layout` given).
    pub default_layout: bool,
    /// engine, memcached or redis.
    pub target: String,
    /// The memory limit, bytes (none: unlimited).
    #[serde(default)]
    pub memory_limit: Option<u64>,
    /// Which repeat.
    pub repeat: u32,
    /// `--defrag` as the cell runs it (compare's `--defrag`); absent: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defrag: Option<String>,
    /// The result file, relative to the compare directory.
    pub file: String,
    /// Its state.
    pub status: CellStatus,
    /// Why skipped, the tail of a failed child's stderr, or why it is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The child's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The child's wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// What it measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<CellFigures>,
}

/// A group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupStatus {
    /// Every repeat completed.
    Ok,
    /// Some repeat did not complete.
    Incomplete,
    /// A repeat failed.
    Failed,
    /// The combination is refused.
    Skipped,
    /// Nothing ran.
    NotRun,
}

/// One workload x alloc x layout x target x memory limit: the figures over its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The workload.
    pub workload: String,
    /// Its scale.
    pub scale: Option<f64>,
    /// The allocator spec.
    pub alloc: String,
    /// The layout.
    pub layout: String,
    /// The target.
    pub target: String,
    /// The memory limit.
    #[serde(default)]
    pub memory_limit: Option<u64>,
    /// `--defrag` as the group runs it; absent: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defrag: Option<String>,
    /// The state.
    pub status: GroupStatus,
    /// Runs the figures are taken from: the complete ones, or the partial ones when none
    /// completed.
    pub runs: usize,
    /// Runs that completed.
    pub complete_runs: usize,
    /// Why skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Throughput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_per_sec: Option<Spread>,
    /// Footprint at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footprint_bytes: Option<Spread>,
    /// Payload at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_bytes: Option<Spread>,
    /// Efficiency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<Spread>,
    /// Evictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evictions: Option<Spread>,
    /// Hit ratio (with reads only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit_ratio: Option<Spread>,
    /// The most malformed trace records a run of the group skipped (`--lenient`; absent: 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_records: u64,
    /// The ids of its cells.
    pub cells: Vec<String>,
}

/// Median, min and max over a group's runs; none without runs.
fn spread_of(v: Vec<f64>) -> Option<Spread> {
    (!v.is_empty()).then(|| Spread::of(v))
}

impl GroupRecord {
    /// The group of `cells` (the repeats of one configuration; at least one), with `refused`
    /// the reason the configuration is skipped, if it is.
    pub fn of(cells: &[&CellRecord], refused: Option<&str>) -> GroupRecord {
        let first = cells[0];
        let complete: Vec<&CellFigures> = cells
            .iter()
            .filter_map(|r| r.figures.as_ref())
            .filter(|f| f.complete)
            .collect();
        let figures: Vec<&CellFigures> = if complete.is_empty() {
            cells.iter().filter_map(|r| r.figures.as_ref()).collect()
        } else {
            complete.clone()
        };
        let has = |s: CellStatus| cells.iter().any(|r| r.status == s);
        let (status, reason) = if cells.iter().all(|r| r.status == CellStatus::Skipped) {
            (GroupStatus::Skipped, refused.map(str::to_string))
        } else if cells.iter().all(|r| {
            matches!(
                r.status,
                CellStatus::NotRun | CellStatus::Pending | CellStatus::Skipped
            )
        }) {
            (GroupStatus::NotRun, None)
        } else if has(CellStatus::Failed) {
            let why = cells
                .iter()
                .find(|r| r.status == CellStatus::Failed)
                .and_then(|r| r.reason.clone());
            (GroupStatus::Failed, why)
        } else if complete.len() < cells.len() {
            (GroupStatus::Incomplete, None)
        } else {
            (GroupStatus::Ok, None)
        };
        let spread = |f: fn(&CellFigures) -> f64| spread_of(figures.iter().map(|x| f(x)).collect());
        GroupRecord {
            workload: first.workload.clone(),
            scale: first.scale,
            alloc: first.alloc.clone(),
            layout: first.layout.clone(),
            target: first.target.clone(),
            memory_limit: first.memory_limit,
            defrag: first.defrag.clone(),
            status,
            runs: figures.len(),
            complete_runs: complete.len(),
            reason,
            ops_per_sec: spread(|f| f.ops_per_sec),
            footprint_bytes: spread(|f| f.footprint_bytes as f64),
            payload_bytes: spread(|f| f.payload_bytes as f64),
            efficiency: spread(|f| f.efficiency),
            evictions: spread(|f| f.evictions as f64),
            hit_ratio: spread_of(figures.iter().filter_map(|f| f.hit_ratio()).collect()),
            skipped_records: figures.iter().map(|f| f.skipped_records).max().unwrap_or(0),
            cells: cells.iter().map(|r| r.id.clone()).collect(),
        }
    }
}

/// The settings of a compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareSettings {
    /// Workloads.
    pub workloads: Vec<String>,
    /// Canonical allocator specs.
    pub allocs: Vec<String>,
    /// Layouts (`default`: each allocator's own).
    pub layouts: Vec<String>,
    /// Targets.
    pub targets: Vec<String>,
    /// Memory limits swept, bytes (null: no limit).
    pub memory_limits: Vec<Option<u64>>,
    /// Runs per cell.
    pub repeat: u32,
    /// Cells at once.
    pub jobs: usize,
    /// The seed of every cell.
    pub seed: u64,
    /// `--scale`, if given.
    pub scale: Option<f64>,
    /// The scale of presets when `--scale` is not given.
    pub default_scale: f64,
    /// `--defrag`: the cells whose allocator and layout support active defrag run with it
    /// too; absent: not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defrag: Option<String>,
}

/// The state of a compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompareState {
    /// Cells are running.
    Running,
    /// `--plan` printed the unfinished cells for another scheduler to run.
    Planned,
    /// Every cell ran.
    Finished,
    /// Ctrl-C stopped it, or stdout was closed before its table was printed.
    Interrupted,
}

/// compare.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareFile {
    /// Always `fraglab-compare`.
    pub kind: String,
    /// [`COMPARE_SCHEMA`].
    pub schema: u32,
    /// The state.
    pub state: CompareState,
    /// When it started, UTC, RFC 3339.
    pub started_at: String,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The command line.
    pub command: Vec<String>,
    /// The settings.
    pub settings: CompareSettings,
    /// The machine.
    pub env: Env,
    /// Every cell.
    pub cells: Vec<CellRecord>,
    /// Every group.
    pub groups: Vec<GroupRecord>,
}

fn mib(b: f64) -> String {
    format!("{:.2}", b / f64::from(1u32 << 20))
}

/// A memory limit as the table shows it.
pub fn limit_label(limit: Option<u64>) -> String {
    match limit {
        None => "-".into(),
        Some(b) if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}g", b >> 30),
        Some(b) if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}m", b >> 20),
        Some(b) if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}k", b >> 10),
        Some(b) => b.to_string(),
    }
}

/// The summary table compare prints: one row per group. The memory and hit-ratio columns
/// appear when some group has a limit.
pub fn table(groups: &[GroupRecord]) -> String {
    let limits = groups.iter().any(|g| g.memory_limit.is_some());
    let mut header = vec!["workload", "scale", "alloc", "layout", "target"];
    if limits {
        header.extend(["memory", "hit ratio"]);
    }
    header.extend([
        "M ops/s median [min-max]",
        "footprint MiB",
        "payload MiB",
        "efficiency",
        "evictions",
        "status",
    ]);
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let ops = g.ops_per_sec.map_or("-".into(), |s| {
                if g.runs > 1 {
                    format!(
                        "{:.2} [{:.2}-{:.2}]",
                        s.median / 1e6,
                        s.min / 1e6,
                        s.max / 1e6
                    )
                } else {
                    format!("{:.2}", s.median / 1e6)
                }
            });
            let status = match g.status {
                GroupStatus::Ok if g.runs > 1 => format!("ok ({} runs)", g.runs),
                GroupStatus::Ok => "ok".into(),
                GroupStatus::Incomplete => format!(
                    "INCOMPLETE ({}/{} complete)",
                    g.complete_runs,
                    g.cells.len()
                ),
                GroupStatus::Failed => "FAILED".into(),
                GroupStatus::NotRun => "not run".into(),
                GroupStatus::Skipped => format!(
                    "skipped: {}",
                    g.reason
                        .as_deref()
                        .map_or("", |r| r.split(';').next().unwrap_or(r))
                ),
            };
            let status = if g.skipped_records > 0 {
                format!("{status}, SKIPPED {} records", g.skipped_records)
            } else {
                status
            };
            let mut row = vec![
                g.workload.clone(),
                g.scale.map_or("-".into(), |s| s.to_string()),
                match &g.defrag {
                    Some(d) => format!("{} + defrag {d}", g.alloc),
                    None => g.alloc.clone(),
                },
                g.layout.clone(),
                g.target.clone(),
            ];
            if limits {
                row.push(limit_label(g.memory_limit));
                row.push(
                    g.hit_ratio
                        .map_or("-".into(), |s| format!("{:.4}", s.median)),
                );
            }
            row.extend([
                ops,
                g.footprint_bytes.map_or("-".into(), |s| mib(s.median)),
                g.payload_bytes.map_or("-".into(), |s| mib(s.median)),
                g.efficiency
                    .map_or("-".into(), |s| format!("{:.3}", s.median)),
                g.evictions.map_or("-".into(), |s| format!("{}", s.median)),
                status,
            ]);
            row
        })
        .collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    // Text columns left-aligned, numbers right-aligned; the last column unpadded.
    let left = |name: &str| matches!(name, "workload" | "alloc" | "layout" | "target");
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i == cells.len() - 1 {
                s.push_str(c);
            } else if left(header[i]) {
                let _ = write!(s, "{c:<w$}", w = width[i]);
            } else {
                let _ = write!(s, "{c:>w$}", w = width[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut t = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in &rows {
        t += &line(r);
    }
    t
}
