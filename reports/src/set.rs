//! A directory of results, loaded and grouped into cells.
//!
//! A cell is one configuration: workload x allocator x layout x memory limit x target. Its
//! runs are repeats; every figure a report shows for a cell is the median over them, with the
//! min and max as its spread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::schema::{ResultError, RunResult};

/// A file that could not be used, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: String,
}

/// What identifies a cell.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    /// The workload as run.
    pub workload: String,
    /// The allocator spec, defaults resolved.
    pub alloc: String,
    /// The layout.
    pub layout: String,
    /// The memory limit, if any.
    pub memory_limit: Option<u64>,
    /// `engine` or a real server.
    pub target: String,
    /// Active defrag's settings ([`crate::DefragSettings::spec`]) when the runs had
    /// `--defrag`; `None`: off. A run with defrag and one without are different cells.
    pub defrag: Option<String>,
    /// What else must agree for runs to be repeats of one another: the seed, the value bytes
    /// and the resolved workload (a hash of its parameters, so a rerun at another scale is a
    /// different cell).
    pub settings: String,
}

impl CellKey {
    /// A short label: the allocator's spec, with the layout when it is not the allocator's
    /// default, and the memory limit when there is one.
    pub fn label(&self) -> String {
        let mut s = self.alloc.clone();
        s.push_str(&format!(" / {}", self.layout));
        if self.defrag.is_some() {
            s.push_str(" + defrag");
        }
        if let Some(m) = self.memory_limit {
            s.push_str(&format!(" / {}", human_bytes(m as f64)));
        }
        if self.target != "engine" {
            s.push_str(&format!(" [{}]", self.target));
        }
        s
    }

    /// The allocator and layout alone (the series a chart draws across workloads), with
    /// active defrag's settings when the runs had `--defrag`.
    pub fn series(&self) -> String {
        match &self.defrag {
            Some(d) => format!("{} / {} + defrag {d}", self.alloc, self.layout),
            None => format!("{} / {}", self.alloc, self.layout),
        }
    }
}

/// Median, min and max of one figure over a cell's repeats.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spread {
    /// Median (the mean of the middle two for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (all zero when empty).
    pub fn of(mut values: Vec<f64>) -> Spread {
        if values.is_empty() {
            return Spread {
                median: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        values.sort_by(|a, b| a.total_cmp(b));
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Spread {
            median,
            min: values[0],
            max: values[n - 1],
        }
    }
}

/// One configuration and its repeats.
#[derive(Clone, Debug)]
pub struct Cell {
    /// What it is.
    pub key: CellKey,
    /// Its runs, in file-name order.
    pub runs: Vec<RunResult>,
    /// The files they came from.
    pub files: Vec<PathBuf>,
}

impl Cell {
    /// The spread of a figure over the repeats.
    pub fn spread(&self, f: impl Fn(&RunResult) -> f64) -> Spread {
        Spread::of(self.runs.iter().map(f).collect())
    }

    /// The run whose throughput is the median (for timelines, latency and detail), the first
    /// of two middle ones.
    pub fn representative(&self) -> &RunResult {
        let mut idx: Vec<usize> = (0..self.runs.len()).collect();
        idx.sort_by(|&a, &b| {
            self.runs[a]
                .summary
                .ops_per_sec
                .total_cmp(&self.runs[b].summary.ops_per_sec)
        });
        &self.runs[idx[(idx.len() - 1) / 2]]
    }

    /// Whether every run completed.
    pub fn complete(&self) -> bool {
        self.runs.iter().all(|r| r.complete)
    }
}

/// Every result under a directory.
#[derive(Clone, Debug, Default)]
pub struct ResultSet {
    /// The directory.
    pub dir: PathBuf,
    /// The cells, sorted by workload (in first-seen order of the sorted files), then key.
    pub cells: Vec<Cell>,
    /// Files that were not results or could not be read.
    pub skipped: Vec<Skipped>,
}

/// The workloads of a set, in the order they first appear.
impl ResultSet {
    /// Loads every `*.json` result under `dir` (recursively), skipping `compare.json` and
    /// listing every file that is not a valid result. A missing or unreadable directory is an
    /// error naming it.
    pub fn load(dir: &Path) -> Result<ResultSet, ResultError> {
        let meta = std::fs::metadata(dir).map_err(|e| ResultError {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(ResultError {
                path: dir.to_path_buf(),
                message: "not a directory of results".into(),
            });
        }
        let mut files = Vec::new();
        collect_json(dir, &mut files).map_err(|e| ResultError {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        files.sort();
        let mut set = ResultSet {
            dir: dir.to_path_buf(),
            ..ResultSet::default()
        };
        let mut cells: BTreeMap<CellKey, Cell> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for path in files {
            match RunResult::load(&path) {
                Ok(r) => {
                    let key = CellKey {
                        workload: r.run.workload.clone(),
                        alloc: r.run.alloc.clone(),
                        layout: r.run.layout.clone(),
                        memory_limit: r.run.memory_limit,
                        target: r.run.target.clone(),
                        defrag: r.run.defrag.map(|d| d.spec()),
                        settings: settings(&r),
                    };
                    if !order.contains(&key.workload) {
                        order.push(key.workload.clone());
                    }
                    let cell = cells.entry(key.clone()).or_insert_with(|| Cell {
                        key,
                        runs: Vec::new(),
                        files: Vec::new(),
                    });
                    cell.runs.push(r);
                    cell.files.push(path);
                }
                Err(e) => set.skipped.push(Skipped {
                    path,
                    reason: e.message,
                }),
            }
        }
        let mut cells: Vec<Cell> = cells.into_values().collect();
        cells.sort_by_key(|c| {
            (
                order.iter().position(|w| *w == c.key.workload),
                c.key.memory_limit,
                c.key.clone(),
            )
        });
        set.cells = cells;
        Ok(set)
    }

    /// The workloads, in order.
    pub fn workloads(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.cells {
            if !out.contains(&c.key.workload) {
                out.push(c.key.workload.clone());
            }
        }
        out
    }

    /// The series (allocator / layout), in first-seen order.
    pub fn series(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.cells {
            let s = c.key.series();
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// The cells of one workload.
    pub fn cells_of<'a>(&'a self, workload: &'a str) -> impl Iterator<Item = &'a Cell> + 'a {
        self.cells
            .iter()
            .filter(move |c| c.key.workload == workload)
    }
}

/// The seed, the value bytes and a hash of the resolved workload.
fn settings(r: &RunResult) -> String {
    let params = r.run.workload_parameters.to_string();
    // FNV-1a: stable across runs and builds, unlike the standard library's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in params.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!(
        "seed {}, {} values, workload {:08x}",
        r.run.seed,
        r.run.values,
        h >> 32
    )
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // Not through symbolic links: a link to a parent would loop, and a `latest` link would
        // count every run twice.
        if entry.file_type()?.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json")
            && path.file_name().is_some_and(|n| n != "compare.json")
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Bytes in KiB, MiB or GiB (powers of 1024), whichever reads best.
pub fn human_bytes(b: f64) -> String {
    let (v, unit) = byte_unit(b);
    format!("{:.2} {unit}", b / v)
}

/// The unit a value of `b` bytes reads best in: its size in bytes and its name.
pub fn byte_unit(b: f64) -> (f64, &'static str) {
    const UNITS: [(f64, &str); 4] = [
        (1024.0 * 1024.0 * 1024.0, "GiB"),
        (1024.0 * 1024.0, "MiB"),
        (1024.0, "KiB"),
        (1.0, "B"),
    ];
    for (v, name) in UNITS {
        if b.abs() >= v {
            return (v, name);
        }
    }
    (1.0, "B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        let s = Spread::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(human_bytes(1536.0), "1.50 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0), "3.00 MiB");
        assert_eq!(human_bytes(100.0), "100.00 B");
    }
}
