//! Weighted choices among a few items ([`Weighted`]): the op mix, and TTLs ([`TtlDist`]).

use serde::{Deserialize, Serialize};

use crate::error::WorkloadSpecError;
use crate::rng::Rng;

/// Time to live of written keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum TtlDist {
    /// No TTL.
    None,
    /// Always `seconds`.
    Fixed {
        /// The TTL in seconds.
        seconds: u32,
    },
    /// One of several TTLs, by weight (weights are normalized).
    Mixture {
        /// The choices.
        choices: Vec<TtlChoice>,
    },
}

/// One TTL of a mixture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtlChoice {
    /// TTL in seconds (0: none).
    pub seconds: u32,
    /// Relative weight.
    pub weight: f64,
}

impl TtlDist {
    /// Compiles to a weighted choice.
    pub fn compile(&self, what: &str) -> Result<Weighted<u32>, WorkloadSpecError> {
        match self {
            TtlDist::None => Weighted::new(&[(0, 1.0)], what),
            TtlDist::Fixed { seconds } => Weighted::new(&[(*seconds, 1.0)], what),
            TtlDist::Mixture { choices } => Weighted::new(
                &choices
                    .iter()
                    .map(|c| (c.seconds, c.weight))
                    .collect::<Vec<_>>(),
                what,
            ),
        }
    }
}

/// A weighted choice among a few items, by cumulative 64-bit thresholds.
#[derive(Clone, Debug)]
pub struct Weighted<T> {
    items: Vec<T>,
    thresholds: Vec<u64>,
}

impl<T: Copy> Weighted<T> {
    /// Builds a choice; weights must be non-negative with a positive sum.
    pub fn new(items: &[(T, f64)], what: &str) -> Result<Weighted<T>, WorkloadSpecError> {
        let total: f64 = items.iter().map(|i| i.1).sum();
        if items.iter().any(|i| !(i.1 >= 0.0 && i.1.is_finite()))
            || !total.is_finite()
            || total <= 0.0
        {
            return Err(WorkloadSpecError::Invalid(format!(
                "{what}: weights must be non-negative numbers with a positive sum"
            )));
        }
        let mut acc = 0.0;
        let mut out = Weighted {
            items: Vec::new(),
            thresholds: Vec::new(),
        };
        for &(item, w) in items {
            if w == 0.0 {
                continue;
            }
            acc += w / total;
            out.items.push(item);
            out.thresholds.push(if acc >= 1.0 {
                u64::MAX
            } else {
                (acc * 2f64.powi(64)) as u64
            });
        }
        *out.thresholds.last_mut().expect("a positive weight exists") = u64::MAX;
        Ok(out)
    }

    /// An item, by weight.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> T {
        if self.items.len() == 1 {
            return self.items[0];
        }
        let r = rng.next_u64();
        let i = self
            .thresholds
            .iter()
            .position(|&t| r < t)
            .unwrap_or(self.items.len() - 1);
        self.items[i]
    }

    /// The items that can be drawn (those of positive weight), in order.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// The items and their probabilities.
    pub fn probabilities(&self) -> Vec<(T, f64)> {
        let mut prev = 0.0;
        self.items
            .iter()
            .zip(&self.thresholds)
            .map(|(&i, &t)| {
                let c = t as f64 / 2f64.powi(64);
                let p = c - prev;
                prev = c;
                (i, p)
            })
            .collect()
    }
}
