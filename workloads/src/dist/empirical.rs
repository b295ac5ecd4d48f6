//! Empirical size distributions: a table of `(size, weight)` points, read from a `size,weight`
//! CSV file or built in code, sampled by inverting its cumulative weights.

use std::io::Read;
use std::path::Path;

use crate::error::WorkloadSpecError;

/// The largest empirical table file read: 16 MiB (a million `size,weight` rows of up to 16
/// bytes each fit).
pub const EMPIRICAL_FILE_MAX: u64 = 16 << 20;

/// The most rows an empirical table holds: 1,000,000 (a distribution of that many distinct
/// sizes is already finer than any published one).
pub const EMPIRICAL_ROWS_MAX: usize = 1_000_000;

/// A cumulative table of sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct EmpiricalTable {
    sizes: Vec<f64>,
    cum: Vec<f64>,
}

impl EmpiricalTable {
    /// Builds a table from `(size, weight)` pairs; weights need not sum to one.
    pub fn new(points: &[(f64, f64)], what: &str) -> Result<EmpiricalTable, WorkloadSpecError> {
        let total: f64 = points.iter().map(|p| p.1).sum();
        if points.is_empty() || total.is_nan() || total <= 0.0 || !total.is_finite() {
            return Err(WorkloadSpecError::Invalid(format!(
                "{what}: the table needs at least one positive weight"
            )));
        }
        let mut acc = 0.0;
        let mut sizes = Vec::with_capacity(points.len());
        let mut cum = Vec::with_capacity(points.len());
        for &(s, w) in points {
            if w.is_nan() || w < 0.0 || s.is_nan() || s < 0.0 || !s.is_finite() {
                return Err(WorkloadSpecError::Invalid(format!(
                    "{what}: size {s} with weight {w}: sizes and weights must be non-negative"
                )));
            }
            acc += w / total;
            sizes.push(s);
            cum.push(acc);
        }
        Ok(EmpiricalTable { sizes, cum })
    }

    /// Reads a `size,weight` CSV. Blank lines and `#` comments are skipped; a first line that
    /// is not numeric is taken as a header.
    ///
    /// The file is read through a bound, checked before the table grows: at most
    /// [`EMPIRICAL_FILE_MAX`] bytes and [`EMPIRICAL_ROWS_MAX`] rows, so `path = "/dev/zero"` or
    /// a huge file is an error naming the file and the limit, not a process that grows
    /// without end.
    pub fn load(path: &Path) -> Result<EmpiricalTable, WorkloadSpecError> {
        let io_err = |e: std::io::Error| WorkloadSpecError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(EMPIRICAL_FILE_MAX + 1).read_to_end(&mut bytes))
            .map_err(io_err)?;
        if bytes.len() as u64 > EMPIRICAL_FILE_MAX {
            return Err(WorkloadSpecError::Parse {
                path: path.to_path_buf(),
                message: format!(
                    "the table is larger than {EMPIRICAL_FILE_MAX} bytes (16 MiB), the most \
                     an empirical distribution reads"
                ),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| WorkloadSpecError::Parse {
            path: path.to_path_buf(),
            message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        })?;
        let mut points = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if points.len() >= EMPIRICAL_ROWS_MAX {
                return Err(WorkloadSpecError::Parse {
                    path: path.to_path_buf(),
                    message: format!(
                        "line {}: more than {EMPIRICAL_ROWS_MAX} rows, the most an empirical \
                         distribution holds",
                        i + 1
                    ),
                });
            }
            let at = |msg: String| WorkloadSpecError::Parse {
                path: path.to_path_buf(),
                message: format!("line {}: {msg}", i + 1),
            };
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            if cols.len() != 2 {
                return Err(at(format!(
                    "expected 2 columns (size,weight), found {}",
                    cols.len()
                )));
            }
            let (s, w) = match (cols[0].parse::<f64>(), cols[1].parse::<f64>()) {
                (Ok(s), Ok(w)) => (s, w),
                _ if i == 0 => continue,
                (Err(_), _) => return Err(at(format!("size `{}` is not a number", cols[0]))),
                (_, Err(_)) => return Err(at(format!("weight `{}` is not a number", cols[1]))),
            };
            points.push((s, w));
        }
        EmpiricalTable::new(&points, &path.display().to_string())
    }

    /// The smallest size whose cumulative weight exceeds `u`.
    #[inline]
    pub fn quantile(&self, u: f64) -> f64 {
        let i = self.cum.partition_point(|&c| c <= u);
        self.sizes[i.min(self.sizes.len() - 1)]
    }
}
