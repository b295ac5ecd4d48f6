//! The store's statistics, and the one table that names every metric.

use fraglab_allocators::MemStats;
use serde::{Deserialize, Serialize};

/// The store's event counters since it was created: command outcomes, evictions, expiries.
/// (What the allocator was asked is counted apart, in [`fraglab_allocators::AllocCounters`].)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCounters {
    /// GETs (per key of an MGET) that found a live key.
    pub hits: u64,
    /// GETs that found nothing (or an expired key).
    pub misses: u64,
    /// Successful writes: SET, ADD, REPLACE, APPEND, PREPEND, INCR, DECR.
    pub sets: u64,
    /// Keys removed by DELETE (or by a TOUCH/EXPIRE with a TTL of zero or less).
    pub deletes: u64,
    /// Keys evicted to make room for a write (the policy's doing).
    pub evictions: u64,
    /// Keys evicted to empty a slab page: by `evict_range`, or by the page mover when the
    /// class had no free chunk to rescue them into (`slab_reassign_evictions_nomem`).
    pub evictions_page: u64,
    /// Expired keys found and removed by an access (lazy expiry).
    pub expired_lazy: u64,
    /// Expired keys removed by the active pass.
    pub expired_active: u64,
    /// Writes refused because the memory limit was reached and nothing (more) could be
    /// evicted, or the policy is `noeviction`.
    pub oom_errors: u64,
    /// FLUSH calls.
    pub flushes: u64,
    /// Active defrag's counters (Redis's `active_defrag_*`; `crate::defrag`).
    pub defrag: crate::defrag::DefragCounters,
}

/// A snapshot of the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Keys stored (expired ones count until found).
    pub items: u64,
    /// Event counters.
    pub counters: StoreCounters,
    /// Sum of key + value lengths of stored keys.
    pub payload_bytes: u64,
    /// Bytes of index outside the allocator.
    pub index_bytes: u64,
    /// Bytes of index inside the allocator (Redis's bucket arrays; already in `mem`).
    pub index_in_allocator_bytes: u64,
    /// The allocator's statistics.
    pub mem: MemStats,
}

/// Every metric the store reports, with what it counts: the names used in results files.
pub const METRICS: &[(&str, &str)] = &[
    ("items", "keys stored, expired ones included until an access or the active pass finds them"),
    ("hits", "GETs (per key of an MGET) that found a live key"),
    ("misses", "GETs that found no key or an expired one"),
    ("sets", "successful writes: SET, ADD, REPLACE, APPEND, PREPEND, INCR, DECR"),
    ("deletes", "keys removed by DELETE, or by TOUCH/EXPIRE with a TTL of zero or less"),
    ("evictions", "keys evicted by the policy to make room for a write"),
    ("evictions_page", "keys evicted to empty a slab page for rebalancing"),
    ("expired_lazy", "expired keys removed when an access found them"),
    ("expired_active", "expired keys removed by the active expiry pass"),
    ("oom_errors", "writes refused: memory limit reached and nothing could be evicted, or noeviction"),
    ("flushes", "FLUSH calls"),
    ("payload_bytes", "sum of key length + value length over stored keys"),
    ("index_bytes", "the lookup structure's bytes outside the allocator (bucket or slot arrays)"),
    ("index_in_allocator_bytes", "the lookup structure's bytes inside the allocator (Redis's dict tables), part of allocated_bytes"),
    ("live_blocks", "allocator: blocks allocated and not freed"),
    ("requested_bytes", "allocator: sum of the sizes the store asked for"),
    ("allocated_bytes", "allocator: sum of what live blocks cost (chunk size, usable size, zmalloc used_memory)"),
    ("footprint_bytes", "allocator: memory held from the OS for the blocks it manages"),
];
