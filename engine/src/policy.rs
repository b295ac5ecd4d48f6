//! Eviction policies, as named on the command line.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the store evicts when the allocator answers `OutOfMemory`.
///
/// Over a slab allocator with a page limit (memcached's `-m`), pages never change class by
/// themselves, so every policy evicts only keys of the size class the failing write needs
/// (the sampling policies keep sampling, up to 1024 keys, until they find some): evicting
/// another class's key would free a chunk the write cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// memcached: the tail of the LRU of the size class the write needs (so a class can evict
    /// while others have free chunks: calcification). One LRU per class, without memcached's
    /// HOT/WARM/COLD segments.
    SlabLru,
    /// Exact LRU over all keys.
    Lru,
    /// Redis `allkeys-lru`: 5 samples into a 16-entry pool, evict the idlest.
    SampledLru,
    /// Redis `allkeys-lfu`: as `sampled-lru`, ranked by the logarithmic counter (factor 10,
    /// decay 1 per minute).
    Lfu,
    /// Redis `allkeys-random`.
    Random,
    /// Redis `volatile-lru`: `sampled-lru` among keys with a TTL.
    VolatileLru,
    /// Redis `volatile-ttl`: among sampled keys with a TTL, the one expiring soonest.
    VolatileTtl,
    /// Redis `volatile-random`.
    VolatileRandom,
    /// First in, first out (insertion order; access does not move an item).
    Fifo,
    /// The write fails with an out-of-memory error; nothing is evicted.
    Noeviction,
}

impl Policy {
    /// Every policy, in the order `fraglab list policies` shows them.
    pub const ALL: [Policy; 10] = [
        Policy::SlabLru,
        Policy::Lru,
        Policy::SampledLru,
        Policy::Lfu,
        Policy::Random,
        Policy::VolatileLru,
        Policy::VolatileTtl,
        Policy::VolatileRandom,
        Policy::Fifo,
        Policy::Noeviction,
    ];

    /// The policy's name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::SlabLru => "slab-lru",
            Policy::Lru => "lru",
            Policy::SampledLru => "sampled-lru",
            Policy::Lfu => "lfu",
            Policy::Random => "random",
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileTtl => "volatile-ttl",
            Policy::VolatileRandom => "volatile-random",
            Policy::Fifo => "fifo",
            Policy::Noeviction => "noeviction",
        }
    }

    /// Whether the policy needs per-item list links (an exact order).
    pub fn needs_links(self) -> bool {
        matches!(self, Policy::SlabLru | Policy::Lru | Policy::Fifo)
    }

    /// Whether the policy keeps Redis's LFU counter in the access field (instead of the LRU
    /// clock).
    pub fn uses_lfu(self) -> bool {
        self == Policy::Lfu
    }

    /// Whether Redis would stop sharing small integers under this policy (it does for the LRU
    /// and LFU policies, which need a per-key access field).
    pub fn disables_shared_integers(self) -> bool {
        matches!(
            self,
            Policy::SampledLru | Policy::Lfu | Policy::VolatileLru | Policy::Lru
        )
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown eviction policy `{0}`; valid: slab-lru, lru, sampled-lru, lfu, random, volatile-lru, volatile-ttl, volatile-random, fifo, noeviction")]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, UnknownPolicy> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPolicy(s.to_string()))
    }
}
