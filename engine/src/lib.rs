//! `fraglab-engine`: the key-value store fraglab replays workloads into.
//!
//! [`Store<A, L>`](Store) is generic over the allocator `A` (any
//! [`fraglab_allocators::Allocator`]) and the layout `L` ([`layout::Compact`],
//! [`layout::Memcached`], [`layout::Redis`]); both are chosen once, at run time, by
//! [`with_store`], so every operation is statically dispatched. The layout decides what is
//! asked of the allocator (memcached's items, Redis's objects, or the lab's compact item); the
//! allocator decides what it costs. Separating the two is what lets the lab say whether a
//! difference comes from the object model or from the allocator.
//!
//! Time is logical: every command takes `now` in seconds, so replays are deterministic and
//! never sleep.
//!
//! # Semantics
//!
//! The memcached and compact layouts follow memcached; the redis layout follows Redis:
//!
//! | command | memcached / compact | redis |
//! |---|---|---|
//! | APPEND, PREPEND on a missing key | not stored (`false`) | creates it (PREPEND is APPEND's mirror) |
//! | INCR/DECR on a missing key | `None` | counts from 0 |
//! | INCR/DECR values | unsigned 64-bit; INCR wraps, DECR stops at 0; in place padded with spaces when the result is not longer | signed 64-bit; overflow is an error; integer encodings |
//! | client flags | kept (4 bytes when non-zero) | not kept (read as 0) |
//! | keys | at most 250 bytes | any length |
//! | expiry instant | `exptime <= now` is expired | `now > exptime` is expired |
//! | SET with a TTL of 0 or less | error (memcached would store and expire at once) | error, as Redis |
//! | TOUCH/EXPIRE with a TTL of 0 or less | deletes | deletes, as Redis's EXPIRE |
//! | EXISTS, TTL | lab extensions over the item's fields | as Redis |
//!
//! # Example
//!
//! ```
//! use fraglab_allocators::slab::{Slab, SlabConfig};
//! use fraglab_engine::{layout::Memcached, Policy, SetOptions, Store, StoreConfig};
//!
//! let slab = Slab::new(SlabConfig::default()).unwrap();
//! let config = StoreConfig { policy: Policy::SlabLru, ..StoreConfig::default() };
//! let mut store: Store<_, Memcached> = Store::new(slab, config).unwrap();
//! store.set(b"greeting", b"hello", SetOptions::default(), 0).unwrap();
//! assert_eq!(store.get(b"greeting", 1).as_deref(), Some(&b"hello"[..]));
//! // 48 + 8 + (8 + 1) + (5 + 2) = 72 bytes: memcached's first class, 96-byte chunks.
//! assert_eq!(store.stats().mem.allocated_bytes, 96);
//! ```

pub mod agg;
pub mod defrag;
pub mod layout;
mod list;
mod policy;
pub mod snapshot;
mod stats;
mod store;
mod util;

use fraglab_allocators::{AllocSpec, AllocSpecError, Allocator, WithAllocator};

pub use layout::{Layout, LayoutKind, PrefetchStage};
pub use policy::{Policy, UnknownPolicy};
pub use stats::{StoreCounters, StoreStats, METRICS};
pub use store::{
    ActiveExpire, AggBook, AggCount, CmdError, ReassignError, Restarted, SetOptions, Store,
    StoreConfig, Ttl, Unsupported, KEY_MAX,
};
pub use util::hash_key;

/// Code to run with a concrete store: [`with_store`] picks the allocator and layout types once.
pub trait WithStore {
    /// What the code returns.
    type Output;
    /// Runs with the store.
    fn run<A: Allocator, L: Layout>(self, store: Store<A, L>) -> Self::Output;
}

/// Why a store could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The allocator spec.
    #[error(transparent)]
    Spec(#[from] AllocSpecError),
    /// The policy and layout do not go together.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
}

struct Builder<W> {
    layout: LayoutKind,
    limit: Option<u64>,
    config: StoreConfig,
    code: W,
}

impl<W: WithStore> WithAllocator for Builder<W> {
    type Output = Result<W::Output, Unsupported>;

    fn run<A: Allocator>(self, mut alloc: A) -> Self::Output {
        alloc.set_limit(self.limit);
        let config = StoreConfig {
            limited: self.limit.is_some(),
            ..self.config
        };
        Ok(match self.layout {
            LayoutKind::Compact => self
                .code
                .run(Store::<A, layout::Compact>::new(alloc, config)?),
            LayoutKind::Memcached => self
                .code
                .run(Store::<A, layout::Memcached>::new(alloc, config)?),
            LayoutKind::Redis => self
                .code
                .run(Store::<A, layout::Redis>::new(alloc, config)?),
            LayoutKind::Segcache => self
                .code
                .run(Store::<A, layout::Segcache>::new(alloc, config)?),
        })
    }
}

/// Builds the allocator a spec names, with a memory limit, and a store with a layout over it,
/// and runs `code` with the store (static dispatch inside).
pub fn with_store<W: WithStore>(
    spec: &AllocSpec,
    layout: LayoutKind,
    limit: Option<u64>,
    config: StoreConfig,
    code: W,
) -> Result<W::Output, BuildError> {
    Ok(spec.build(Builder {
        layout,
        limit,
        config,
        code,
    })??)
}
