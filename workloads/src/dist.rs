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
//! `gpd(16.0292, 0.154971, 1)`. fraglab uses the paper's parameters, as REFERENCE.md gives them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rng::{mix64, Rng};
use crate::spec::SpecError;

/// The discrete head of Facebook ETC's value sizes, bytes 0..=14 (mutilate's
/// `createFacebookValue`, from Atikoglu et al., SIGMETRICS 2012). The weights sum to 0.44155.
pub const ETC_VALUE_HEAD: [f64; 15] = [
    0.00536, 0.00047, 0.17820, 0.09239, 0.00018, 0.02740, 0.00065, 0.00606, 0.00023, 0.00837,
    0.00837, 0.08989, 0.00092, 0.00326, 0.01980,
];
/// ETC's value tail: generalized Pareto (location, scale, shape).
pub const ETC_VALUE_TAIL: (f64, f64, f64) = (15.0, 214.476, 0.348238);
/// ETC's key sizes: GEV (location, scale, shape).
pub const ETC_KEY: (f64, f64, f64) = (30.7984, 8.20449, 0.078688);
/// ETC's inter-arrival gap in microseconds: generalized Pareto (location, scale, shape).
pub const ETC_INTERARRIVAL_US: (f64, f64, f64) = (0.0, 16.0292, 0.154971);

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
    pub fn compile(&self, base: &Path, what: &str) -> Result<SizeSampler, SpecError> {
        let bad = |msg: String| Err(SpecError::Invalid(format!("{what}: {msg}")));
        let finite = |x: f64, name: &str| -> Result<(), SpecError> {
            if x.is_finite() {
                Ok(())
            } else {
                Err(SpecError::Invalid(format!(
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
            SizeDist::Etc => {
                let mut cum = [0.0; 15];
                let mut sum = 0.0;
                for (c, w) in cum.iter_mut().zip(ETC_VALUE_HEAD) {
                    sum += w;
                    *c = sum;
                }
                SizeSampler::Etc { cum }
            }
            SizeDist::Empirical { ref path } => {
                let full = if path.is_absolute() {
                    path.clone()
                } else {
                    base.join(path)
                };
                SizeSampler::Table(Table::load(&full)?)
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

/// A cumulative table of sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    sizes: Vec<f64>,
    cum: Vec<f64>,
}

impl Table {
    /// Builds a table from `(size, weight)` pairs; weights need not sum to one.
    pub fn new(points: &[(f64, f64)], what: &str) -> Result<Table, SpecError> {
        let total: f64 = points.iter().map(|p| p.1).sum();
        if points.is_empty() || total.is_nan() || total <= 0.0 || !total.is_finite() {
            return Err(SpecError::Invalid(format!(
                "{what}: the table needs at least one positive weight"
            )));
        }
        let mut acc = 0.0;
        let mut sizes = Vec::with_capacity(points.len());
        let mut cum = Vec::with_capacity(points.len());
        for &(s, w) in points {
            if w.is_nan() || w < 0.0 || s.is_nan() || s < 0.0 || !s.is_finite() {
                return Err(SpecError::Invalid(format!(
                    "{what}: size {s} with weight {w}: sizes and weights must be non-negative"
                )));
            }
            acc += w / total;
            sizes.push(s);
            cum.push(acc);
        }
        Ok(Table { sizes, cum })
    }

    /// Reads a `size,weight` CSV. Blank lines and `#` comments are skipped; a first line that
    /// is not numeric is taken as a header.
    pub fn load(path: &Path) -> Result<Table, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut points = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |msg: String| SpecError::Parse {
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
        Table::new(&points, &path.display().to_string())
    }

    #[inline]
    fn quantile(&self, u: f64) -> f64 {
        let i = self.cum.partition_point(|&c| c <= u);
        self.sizes[i.min(self.sizes.len() - 1)]
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
    Table(Table),
    /// See [`SizeDist::Decimal`].
    Decimal(u16),
}

impl SizeSampler {
    /// The size at uniform draw `u` in `[0, 1)`. For `decimal`, the prefix alone (the digits
    /// depend on the key id; see [`SizeSampler::key_len`]).
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
            } => {
                // (-ln u)^(-ξ) as exp(-ξ ln(-ln u)): the same value, and cheaper than powf.
                let ln_e = (-u.ln()).ln();
                if shape.abs() < 1e-12 {
                    location - scale * ln_e
                } else {
                    location + scale * ((-shape * ln_e).exp() - 1.0) / shape
                }
            }
            SizeSampler::Gpd {
                location,
                scale,
                shape,
            } => gpd_quantile(location, scale, shape, u),
            SizeSampler::Etc { ref cum } => {
                let head = cum[14];
                if u < head {
                    cum.partition_point(|&c| c <= u) as f64
                } else {
                    let (l, s, k) = ETC_VALUE_TAIL;
                    gpd_quantile(l, s, k, (u - head) / (1.0 - head))
                }
            }
            SizeSampler::Table(ref t) => t.quantile(u),
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

#[inline]
fn gpd_quantile(location: f64, scale: f64, shape: f64, u: f64) -> f64 {
    // (1 - u)^(-ξ) as exp(-ξ ln(1 - u)): glibc's exp and log are several times cheaper than
    // its pow, expm1 and log1p, and sizes need no more precision than they give.
    let ln_tail = (1.0 - u).ln();
    if shape.abs() < 1e-12 {
        location - scale * ln_tail
    } else {
        location + scale * ((-shape * ln_tail).exp() - 1.0) / shape
    }
}

/// Φ⁻¹, the standard normal quantile, by Peter Acklam's rational approximation (relative
/// error below 1.15e-9 over the whole range).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    const LOW: f64 = 0.02425;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// Key lengths as a function of the key id. A key's length is drawn once, from its own hashed
/// id (as mutilate's `KeyGenerator` does), so every request for a key agrees on its length.
/// The quantile function is tabulated at 4,096 evenly spaced draws (the midpoints), which is
/// exact for integer lengths to within 1/4096 of probability mass.
#[derive(Clone, Debug)]
pub struct KeyLengths {
    table: Box<[u16; KEY_TABLE]>,
    decimal: Option<u16>,
    salt: u64,
}

const KEY_TABLE: usize = 4096;

impl KeyLengths {
    /// Tabulates `sampler`; `salt` (from the seed) decides which keys get which lengths.
    pub fn new(sampler: &SizeSampler, salt: u64) -> KeyLengths {
        let mut table = Box::new([0u16; KEY_TABLE]);
        for (i, t) in table.iter_mut().enumerate() {
            let u = (i as f64 + 0.5) / KEY_TABLE as f64;
            // Rounded, as mutilate rounds its GEV key sizes.
            let len = sampler.quantile(u).round();
            *t = clamp_size(len, u32::from(crate::KEY_MAX)) as u16;
        }
        KeyLengths {
            table,
            decimal: sampler.is_decimal(),
            salt,
        }
    }

    /// The key's length: its draw, at least the digits that keep it unique, at most 250.
    #[inline]
    pub fn len(&self, id: u64) -> u16 {
        let len = match self.decimal {
            Some(prefix) => prefix.saturating_add(decimal_digits(id)),
            None => {
                let h = crate::rng::mix64(id ^ self.salt);
                self.table[(h >> 52) as usize]
            }
        };
        len.max(crate::Key::digits(id)).min(crate::KEY_MAX)
    }
}

/// Decimal digits of `id` (1 for 0).
pub fn decimal_digits(id: u64) -> u16 {
    if id == 0 {
        1
    } else {
        id.ilog10() as u16 + 1
    }
}

/// Which key a request names: a popularity distribution over the keyspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Popularity {
    /// Every key equally likely.
    Uniform,
    /// Zipf: rank r (1-based) has probability proportional to r^(−exponent). With `scrambled`
    /// (the default), ranks are spread over the keyspace by a hash, as YCSB's
    /// `ScrambledZipfianGenerator` does, so popular keys are not neighbours. YCSB hashes with
    /// FNV-1a and reduces modulo the keyspace; fraglab hashes with SplitMix64's mixer and
    /// reduces by multiply-high, which is the same idea at a third of the cost (FNV-1a is eight
    /// dependent multiplies).
    Zipf {
        /// The exponent (YCSB's zipfian constant, Twitter's alpha).
        #[serde(default = "default_zipf")]
        exponent: f64,
        /// Spread ranks over the keyspace by hash.
        #[serde(default = "yes")]
        scrambled: bool,
    },
    /// YCSB's "latest": Zipf over recency, so the most recently inserted key is the most
    /// popular.
    Latest {
        /// The Zipf exponent.
        #[serde(default = "default_zipf")]
        exponent: f64,
    },
    /// YCSB's hotspot: `hot_ops` of requests go to the first `hot_keys` of the keyspace,
    /// uniformly; the rest to the others.
    Hotspot {
        /// Fraction of keys that are hot.
        #[serde(default = "default_hot_keys")]
        hot_keys: f64,
        /// Fraction of requests that go to hot keys.
        #[serde(default = "default_hot_ops")]
        hot_ops: f64,
    },
    /// Keys in order, wrapping at the keyspace: 0, 1, 2, ..., or after a preload of `k` keys,
    /// k, k + 1, ...; the counter carries across phases, so a keyspace larger than the run
    /// makes every write a new key.
    Sequential,
}

fn default_zipf() -> f64 {
    0.99
}
fn yes() -> bool {
    true
}
fn default_hot_keys() -> f64 {
    0.2
}
fn default_hot_ops() -> f64 {
    0.8
}

impl Popularity {
    /// Checks parameters.
    pub fn validate(&self, what: &str) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError::Invalid(format!("{what}: {m}")));
        match *self {
            Popularity::Zipf { exponent, .. } | Popularity::Latest { exponent }
                if !(exponent > 0.0 && exponent.is_finite()) =>
            {
                bad(format!("zipf exponent {exponent} must be positive"))
            }
            Popularity::Hotspot { hot_keys, hot_ops }
                if !(hot_keys > 0.0 && hot_keys < 1.0 && (0.0..=1.0).contains(&hot_ops)) =>
            {
                bad(format!(
                    "hotspot needs 0 < hot_keys < 1 and 0 <= hot_ops <= 1, got {hot_keys}, {hot_ops}"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Zipf ranks by rejection-inversion (Hörmann and Derflinger, "Rejection-inversion to generate
/// variates from monotone discrete distributions", 1996; the algorithm of Apache Commons
/// RNG's `RejectionInversionZipfSampler`). Exact for any exponent > 0 and any n, O(1) per
/// draw, no O(n) table of zeta sums.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    s: f64,
    inv_one_minus_s: f64,
    h_x1: f64,
    h_n: f64,
    s_div: f64,
}

impl Zipf {
    /// Ranks `1..=n` with exponent `s`. `n` must be at least 1.
    pub fn new(n: u64, s: f64) -> Zipf {
        let nf = n.max(1) as f64;
        let mut z = Zipf {
            n: nf,
            s,
            inv_one_minus_s: 1.0 / (1.0 - s),
            h_x1: 0.0,
            h_n: 0.0,
            s_div: 0.0,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(nf + 0.5);
        z.s_div = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// The number of ranks.
    pub fn n(&self) -> u64 {
        self.n as u64
    }

    /// A rank, 0-based (0 is the most popular).
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.next_f64() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inverse(u);
            // x >= 0.5, so truncation is floor (and needs no libm call).
            let k = (((x + 0.5) as u64) as f64).clamp(1.0, self.n);
            if k - x <= self.s_div || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64 - 1;
            }
        }
    }

    #[inline]
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    #[inline]
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    #[inline]
    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        if t.abs() > 1e-8 {
            // helper1(t) * x = ln(1 + t) / (1 - s): multiply by the precomputed reciprocal
            // rather than divide by t, which cost a fifth of a draw.
            ((1.0 + t).ln() * self.inv_one_minus_s).exp()
        } else {
            (helper1(t) * x).exp()
        }
    }
}

/// `ln(1 + x) / x`, continuous at 0.
#[inline]
fn helper1(x: f64) -> f64 {
    // ln rather than ln_1p: glibc's log1p is several times slower than log, and at
    // |x| > 1e-8 the difference is below 1e-8 relative, far inside the test's tolerance.
    if x.abs() > 1e-8 {
        (1.0 + x).ln() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x − 1) / x`, continuous at 0.
#[inline]
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// A compiled popularity distribution over `n` keys (ids `0..n`).
#[derive(Clone, Debug)]
pub enum KeyChooser {
    /// Uniform over `0..n`.
    Uniform,
    /// Zipf ranks, optionally scrambled.
    Zipf {
        /// The rank sampler (over the keyspace at compile time).
        zipf: Zipf,
        /// Spread ranks by hash.
        scrambled: bool,
    },
    /// Zipf over recency, resized as the keyspace grows.
    Latest {
        /// The rank sampler over the current keyspace.
        zipf: Zipf,
    },
    /// Hot set first.
    Hotspot {
        /// Fraction of keys that are hot.
        hot_keys: f64,
        /// Fraction of requests to hot keys.
        hot_ops: f64,
    },
    /// In order.
    Sequential,
}

impl KeyChooser {
    /// Compiles `p` for a keyspace of `n` keys.
    pub fn new(p: &Popularity, n: u64) -> KeyChooser {
        match *p {
            Popularity::Uniform => KeyChooser::Uniform,
            Popularity::Zipf {
                exponent,
                scrambled,
            } => KeyChooser::Zipf {
                zipf: Zipf::new(n, exponent),
                scrambled,
            },
            Popularity::Latest { exponent } => KeyChooser::Latest {
                zipf: Zipf::new(n, exponent),
            },
            Popularity::Hotspot { hot_keys, hot_ops } => KeyChooser::Hotspot { hot_keys, hot_ops },
            Popularity::Sequential => KeyChooser::Sequential,
        }
    }

    /// A key id in `0..n`, where `n` is the current number of keys; `seq` is the sequential
    /// counter (advanced here when used).
    #[inline]
    pub fn choose(&mut self, rng: &mut Rng, n: u64, seq: &mut u64) -> u64 {
        match self {
            KeyChooser::Uniform => rng.below(n),
            KeyChooser::Zipf { zipf, scrambled } => {
                let rank = zipf.sample(rng);
                if *scrambled {
                    // Offset first (the mixer maps 0 to 0); multiply-high maps the hash onto
                    // 0..n without a division.
                    let h = mix64(rank.wrapping_add(0x9e37_79b9_7f4a_7c15));
                    ((u128::from(h) * u128::from(n)) >> 64) as u64
                } else {
                    rank % n
                }
            }
            KeyChooser::Latest { zipf } => {
                if zipf.n() != n {
                    *zipf = Zipf::new(n, zipf.s);
                }
                n - 1 - zipf.sample(rng)
            }
            KeyChooser::Hotspot { hot_keys, hot_ops } => {
                let hot = ((n as f64 * *hot_keys) as u64).clamp(1, n);
                if rng.next_f64() < *hot_ops || hot == n {
                    rng.below(hot)
                } else {
                    hot + rng.below(n - hot)
                }
            }
            KeyChooser::Sequential => {
                let id = *seq % n;
                *seq += 1;
                id
            }
        }
    }
}

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
    pub fn compile(&self, what: &str) -> Result<Weighted<u32>, SpecError> {
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
    pub fn new(items: &[(T, f64)], what: &str) -> Result<Weighted<T>, SpecError> {
        let total: f64 = items.iter().map(|i| i.1).sum();
        if items.iter().any(|i| !(i.1 >= 0.0 && i.1.is_finite()))
            || !total.is_finite()
            || total <= 0.0
        {
            return Err(SpecError::Invalid(format!(
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
    pub fn compile(&self, base: &Path, what: &str) -> Result<Clock, SpecError> {
        match self {
            Arrival::Fixed { rate } => {
                if !(*rate > 0.0 && rate.is_finite()) {
                    return Err(SpecError::Invalid(format!(
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
