//! Arrivals: how logical time advances between requests.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{SizeDist, SizeSampler};
use crate::error::WorkloadSpecError;
use crate::rng::Rng;

/// How logical time advances between requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "process", rename_all = "snake_case", deny_unknown_fields)]
pub enum Arrival {
    /// A fixed rate in requests per second.
    Fixed {
        /// Requests per second.
        rate: f64,
    },
    /// Gaps drawn from a distribution, in microseconds (ETC's generalized Pareto).
    Interarrival {
        /// The gap distribution, microseconds.
        gap_us: SizeDist,
    },
    /// A fixed rate in place of drawn gaps (`--rate` over an `interarrival` workload): each
    /// gap is still drawn, and set aside, so every other random choice (keys, sizes, TTLs) is
    /// the one the workload makes at its own pace; only the ops' times change.
    Retimed {
        /// Requests per second.
        rate: f64,
        /// The gap distribution that is drawn and set aside, microseconds.
        gap_us: SizeDist,
    },
}

impl Default for Arrival {
    fn default() -> Self {
        Arrival::Fixed { rate: 100_000.0 }
    }
}

/// A compiled arrival process.
#[derive(Clone, Debug)]
pub enum Clock {
    /// A constant gap, microseconds.
    Fixed(f64),
    /// Drawn gaps, microseconds.
    Gaps(SizeSampler),
    /// A constant gap, microseconds, with a drawn gap set aside for each.
    Retimed(f64, SizeSampler),
}

fn gap_of(rate: f64, what: &str) -> Result<f64, WorkloadSpecError> {
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(WorkloadSpecError::Invalid(format!(
            "{what}: rate {rate} must be a positive number of requests per second"
        )));
    }
    Ok(1e6 / rate)
}

impl Arrival {
    /// Compiles the process.
    pub fn compile(&self, base: &Path, what: &str) -> Result<Clock, WorkloadSpecError> {
        match self {
            Arrival::Fixed { rate } => Ok(Clock::Fixed(gap_of(*rate, what)?)),
            Arrival::Interarrival { gap_us } => Ok(Clock::Gaps(gap_us.compile(base, what)?)),
            Arrival::Retimed { rate, gap_us } => Ok(Clock::Retimed(
                gap_of(*rate, what)?,
                gap_us.compile(base, what)?,
            )),
        }
    }

    /// The same process at a fixed `rate` (requests per second), drawing what it drew before:
    /// a fixed rate becomes `rate`, drawn gaps become [`Arrival::Retimed`].
    pub fn at_rate(&self, rate: f64) -> Arrival {
        match self {
            Arrival::Fixed { .. } => Arrival::Fixed { rate },
            Arrival::Interarrival { gap_us } | Arrival::Retimed { gap_us, .. } => {
                Arrival::Retimed {
                    rate,
                    gap_us: gap_us.clone(),
                }
            }
        }
    }
}

impl Clock {
    /// The next gap in microseconds (never negative).
    #[inline]
    pub fn gap(&self, rng: &mut Rng) -> f64 {
        match self {
            Clock::Fixed(g) => *g,
            Clock::Gaps(s) => s.quantile(rng.next_f64()).max(0.0),
            Clock::Retimed(g, s) => {
                let _ = s.quantile(rng.next_f64());
                *g
            }
        }
    }
}
