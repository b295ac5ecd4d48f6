//! Popularity: which key a request names, as written in a spec ([`Popularity`]) and compiled
//! for a keyspace ([`KeyChooser`]).

use serde::{Deserialize, Serialize};

use super::zipf::Zipf;
use crate::error::WorkloadSpecError;
use crate::rng::{mix64, Rng};

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
    pub fn validate(&self, what: &str) -> Result<(), WorkloadSpecError> {
        let bad = |m: String| Err(WorkloadSpecError::Invalid(format!("{what}: {m}")));
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
                    *zipf = Zipf::new(n, zipf.exponent());
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
