//! Distributions: of sizes (key and value bytes, inter-arrival microseconds), of popularity
//! (which key a request names), of TTLs and of op kinds.
//!
//! Every size distribution is sampled by inversion: [`SizeSampler::quantile`] maps a uniform
//! draw to a size, so one draw gives one size and a key's length can be a pure function of
//! the key (its hashed id supplies the draw, as mutilate's `KeyGenerator` does). Formulas:
//!
//! | `dist` | parameters | quantile `Q(u)` |
//! |---|---|---|
//! | `fixed` | `size` | `size` |
//! | `uniform` | `min`, `max` (inclusive integers) | `min + u (max - min + 1)` |
//! | `normal` | `mean`, `stddev` | `mean + stddev Φ⁻¹(u)` (Acklam's approximation, rel. error < 1.2e-9) |
//! | `lognormal` | `mu`, `sigma` (of the log) | `exp(mu + sigma Φ⁻¹(u))` |
//! | `gev` | `location` μ, `scale` σ, `shape` ξ | `μ + σ ((−ln u)^(−ξ) − 1) / ξ` |
//! | `gpd` | `location` μ, `scale` σ, `shape` ξ | `μ + σ ((1 − u)^(−ξ) − 1) / ξ` |
//! | `etc` | none | Facebook ETC values: 0..14 bytes with fixed probabilities summing to 0.44155, otherwise `gpd(15, 214.476, 0.348238)` |
//! | `empirical` | `path` of a `size,weight` CSV | the smallest size whose cumulative weight exceeds `u` |
//! | `decimal` | `prefix` | keys only: `prefix` + the decimal digits of the key id (Redis's `key:N`) |
//!
//! Sizes are truncated to integers and clamped by the user (values to `[0, 2^30)`, keys to
//! `[digits, 250]`).
//!
//! mutilate (the load generator that made ETC common) passes its arguments to `GPareto` one
//! place off, so its "fb_value" tail is `gpd(214.476, 0.348238, 1)` and its inter-arrival is
//! `gpd(16.0292, 0.154971, 1)`. fraglab uses the paper's
//! parameters (Atikoglu et al., "Workload Analysis of a Large-Scale Key-Value Store",
//! SIGMETRICS 2012, section 5).
//!
//! One module per family: [`continuous`] (normal, log-normal, GEV, GPD quantiles), [`etc`]
//! (Facebook ETC's value mixture), [`empirical`] (tables read from CSV), [`keys`] (key lengths
//! as a function of the key id), [`zipf`] (the rejection-inversion Zipf sampler),
//! [`popularity`] (which key a request names), [`weighted`] (TTLs and op mixes), [`arrival`]
//! (logical time) and [`histogram`] (exact quantiles of streamed sizes). This module holds the
//! spec-facing [`SizeDist`] and its compiled form, [`SizeSampler`].
//!
//! The module depends only on [`crate::error`], [`crate::rng`] and the op types
//! ([`crate::Key`]): specs hold its parameter types, never the other way round.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::WorkloadSpecError;
use crate::rng::Rng;

pub mod arrival;
pub mod continuous;
pub mod empirical;
pub mod etc;
pub mod histogram;
pub mod keys;
pub mod popularity;
pub mod weighted;
pub mod zipf;

pub use arrival::{Arrival, Clock};
pub use continuous::normal_quantile;
pub use empirical::EmpiricalTable;
pub use etc::{ETC_INTERARRIVAL_US, ETC_KEY, ETC_VALUE_HEAD, ETC_VALUE_TAIL};
pub use histogram::SizeHistogram;
pub use keys::{decimal_digits, KeyLengths};
pub use popularity::{KeyChooser, Popularity};
pub use weighted::{TtlChoice, TtlDist, Weighted};
pub use zipf::Zipf;

use continuous::{gev_quantile, gpd_quantile};

/// A distribution of sizes, as written in a spec file (`{ dist = "gpd", location = 15, ... }`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum SizeDist {
    /// Always `size`.
    Fixed {
        /// The size.
        size: f64,
    },
    /// Integers `min..=max`, equally likely.
    Uniform {
        /// Smallest size.
        min: f64,
        /// Largest size.
        max: f64,
    },
    /// Normal.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
    },
    /// Log-normal: `exp(N(mu, sigma))`.
    Lognormal {
        /// Mean of the logarithm.
        mu: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
    },
    /// Generalized extreme value.
    Gev {
        /// μ.
        location: f64,
        /// σ > 0.
        scale: f64,
        /// ξ.
        shape: f64,
    },
    /// Generalized Pareto.
    Gpd {
        /// μ.
        location: f64,
        /// σ > 0.
        scale: f64,
        /// ξ.
        shape: f64,
    },
    /// Facebook ETC's value sizes.
    Etc,
    /// A table read from a `size,weight` CSV (a header line is allowed); the path is relative
    /// to the spec file.
    Empirical {
        /// The CSV file.
        path: PathBuf,
    },
    /// Key sizes only: `prefix` plus the number of decimal digits of the key id.
    Decimal {
        /// Bytes before the digits (4 for Redis's `key:`).
        prefix: u16,
    },
}

impl SizeDist {
    /// Log-normal with the given mean and log standard deviation.
    pub fn lognormal_with_mean(mean: f64, sigma: f64) -> SizeDist {
        SizeDist::Lognormal {
            mu: mean.ln() - sigma * sigma / 2.0,
            sigma,
        }
    }

    /// Checks the parameters and loads tables; `base` is the directory relative paths start
    /// from; `what` names the field in errors.
    pub fn compile(&self, base: &Path, what: &str) -> Result<SizeSampler, WorkloadSpecError> {
        let bad = |msg: String| Err(WorkloadSpecError::Invalid(format!("{what}: {msg}")));
        let finite = |x: f64, name: &str| -> Result<(), WorkloadSpecError> {
            if x.is_finite() {
                Ok(())
            } else {
                Err(WorkloadSpecError::Invalid(format!(
                    "{what}: {name} must be a finite number"
                )))
            }
        };
        Ok(match *self {
            SizeDist::Fixed { size } => {
                finite(size, "size")?;
                if size < 0.0 {
                    return bad(format!("size {size} is negative"));
                }
                SizeSampler::Fixed(size)
            }
            SizeDist::Uniform { min, max } => {
                finite(min, "min")?;
                finite(max, "max")?;
                if min < 0.0 || max < min {
                    return bad(format!(
                        "uniform needs 0 <= min <= max, got min {min}, max {max}"
                    ));
                }
                SizeSampler::Uniform {
                    min: min.floor(),
                    width: max.floor() - min.floor() + 1.0,
                }
            }
            SizeDist::Normal { mean, stddev } => {
                finite(mean, "mean")?;
                finite(stddev, "stddev")?;
                if stddev < 0.0 {
                    return bad(format!("stddev {stddev} is negative"));
                }
                SizeSampler::Normal { mean, stddev }
            }
            SizeDist::Lognormal { mu, sigma } => {
                finite(mu, "mu")?;
                finite(sigma, "sigma")?;
                if sigma < 0.0 {
                    return bad(format!("sigma {sigma} is negative"));
                }
                SizeSampler::Lognormal { mu, sigma }
            }
            SizeDist::Gev {
                location,
                scale,
                shape,
            } => {
                for (x, n) in [(location, "location"), (scale, "scale"), (shape, "shape")] {
                    finite(x, n)?;
                }
                if scale <= 0.0 {
                    return bad(format!("scale {scale} must be positive"));
                }
                SizeSampler::Gev {
                    location,
                    scale,
                    shape,
                }
            }
            SizeDist::Gpd {
                location,
                scale,
                shape,
            } => {
                for (x, n) in [(location, "location"), (scale, "scale"), (shape, "shape")] {
                    finite(x, n)?;
                }
                if scale <= 0.0 {
                    return bad(format!("scale {scale} must be positive"));
                }
                SizeSampler::Gpd {
                    location,
                    scale,
                    shape,
                }
            }
            SizeDist::Etc => SizeSampler::Etc {
                cum: etc::head_cumulative(),
            },
            SizeDist::Empirical { ref path } => {
                let full = if path.is_absolute() {
                    path.clone()
                } else {
                    base.join(path)
                };
                SizeSampler::Empirical(EmpiricalTable::load(&full)?)
            }
            SizeDist::Decimal { prefix } => {
                if what != "key_size" {
                    return bad("`decimal` describes key sizes only".into());
                }
                if prefix > crate::KEY_MAX {
                    return bad(format!("prefix {prefix} is longer than a key may be (250)"));
                }
                SizeSampler::Decimal(prefix)
            }
        })
    }
}

/// A compiled size distribution.
#[derive(Clone, Debug, PartialEq)]
pub enum SizeSampler {
    /// See [`SizeDist::Fixed`].
    Fixed(f64),
    /// See [`SizeDist::Uniform`].
    Uniform {
        /// Smallest size.
        min: f64,
        /// Number of sizes.
        width: f64,
    },
    /// See [`SizeDist::Normal`].
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
    },
    /// See [`SizeDist::Lognormal`].
    Lognormal {
        /// Mean of the log.
        mu: f64,
        /// Standard deviation of the log.
        sigma: f64,
    },
    /// See [`SizeDist::Gev`].
    Gev {
        /// μ.
        location: f64,
        /// σ.
        scale: f64,
        /// ξ.
        shape: f64,
    },
    /// See [`SizeDist::Gpd`].
    Gpd {
        /// μ.
        location: f64,
        /// σ.
        scale: f64,
        /// ξ.
        shape: f64,
    },
    /// See [`SizeDist::Etc`]; `cum` is the cumulative head.
    Etc {
        /// Cumulative probabilities of sizes 0..=14.
        cum: [f64; 15],
    },
    /// See [`SizeDist::Empirical`].
    Empirical(EmpiricalTable),
    /// See [`SizeDist::Decimal`].
    Decimal(u16),
}

impl SizeSampler {
    /// The size at uniform draw `u` in `[0, 1)`. For `decimal`, the prefix alone (the digits
    /// depend on the key id; see [`KeyLengths`]).
    #[inline]
    pub fn quantile(&self, u: f64) -> f64 {
        match *self {
            SizeSampler::Fixed(s) => s,
            // Truncation is floor for these non-negative values, without a libm call.
            SizeSampler::Uniform { min, width } => min + ((u * width) as u64) as f64,
            SizeSampler::Normal { mean, stddev } => mean + stddev * normal_quantile(u),
            SizeSampler::Lognormal { mu, sigma } => (mu + sigma * normal_quantile(u)).exp(),
            SizeSampler::Gev {
                location,
                scale,
                shape,
            } => gev_quantile(location, scale, shape, u),
            SizeSampler::Gpd {
                location,
                scale,
                shape,
            } => gpd_quantile(location, scale, shape, u),
            SizeSampler::Etc { ref cum } => etc::quantile(cum, u),
            SizeSampler::Empirical(ref t) => t.quantile(u),
            SizeSampler::Decimal(prefix) => f64::from(prefix),
        }
    }

    /// A size drawn from `rng`, truncated and clamped to `[0, max]`.
    #[inline]
    pub fn sample(&self, rng: &mut Rng, max: u32) -> u32 {
        clamp_size(self.quantile(rng.next_f64()), max)
    }

    /// The mean, where it has a closed form (used by presets to report what they ask for).
    pub fn mean(&self) -> Option<f64> {
        match *self {
            SizeSampler::Fixed(s) => Some(s),
            SizeSampler::Uniform { min, width } => Some(min + (width - 1.0) / 2.0),
            SizeSampler::Normal { mean, .. } => Some(mean),
            SizeSampler::Lognormal { mu, sigma } => Some((mu + sigma * sigma / 2.0).exp()),
            SizeSampler::Gpd {
                location,
                scale,
                shape,
            } if shape < 1.0 => Some(location + scale / (1.0 - shape)),
            _ => None,
        }
    }

    /// The length of the key with this id: `decimal` counts the id's digits; the others
    /// look up the key's own quantile in `table` (see [`KeyLengths`]).
    pub fn is_decimal(&self) -> Option<u16> {
        match *self {
            SizeSampler::Decimal(p) => Some(p),
            _ => None,
        }
    }
}

/// Truncates a drawn size to an integer in `[0, max]` (NaN becomes 0).
#[inline]
pub fn clamp_size(x: f64, max: u32) -> u32 {
    if x >= f64::from(max) {
        max
    } else if x > 0.0 {
        x as u32
    } else {
        0
    }
}
