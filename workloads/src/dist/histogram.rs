//! Exact quantiles of streamed sizes.

use std::collections::BTreeMap;

/// Counts per size, for exact quantiles of streamed sizes (bounded by the distinct sizes).
#[derive(Clone, Debug, Default)]
pub struct SizeHistogram {
    counts: BTreeMap<u64, u64>,
    n: u64,
    sum: u128,
}

impl SizeHistogram {
    /// Records one size.
    #[inline]
    pub fn record(&mut self, size: u64) {
        *self.counts.entry(size).or_insert(0) += 1;
        self.n += 1;
        self.sum += u128::from(size);
    }

    /// Number of sizes recorded.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum as f64 / self.n as f64
        }
    }

    /// The smallest size with at least `q` of the recorded sizes at or below it.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut acc = 0;
        for (&s, &c) in &self.counts {
            acc += c;
            if acc >= rank {
                return s;
            }
        }
        *self.counts.keys().next_back().unwrap_or(&0)
    }

    /// The largest size.
    pub fn max(&self) -> u64 {
        self.counts.keys().next_back().copied().unwrap_or(0)
    }
}
