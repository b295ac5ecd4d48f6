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
}

impl Arrival {
    /// Compiles the process.
    pub fn compile(&self, base: &Path, what: &str) -> Result<Clock, WorkloadSpecError> {
        match self {
            Arrival::Fixed { rate } => {
                if !(*rate > 0.0 && rate.is_finite()) {
                    return Err(WorkloadSpecError::Invalid(format!(
                        "{what}: rate {rate} must be a positive number of requests per second"
                    )));
                }
                Ok(Clock::Fixed(1e6 / rate))
            }
            Arrival::Interarrival { gap_us } => Ok(Clock::Gaps(gap_us.compile(base, what)?)),
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
        }
    }
}
