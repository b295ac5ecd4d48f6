//! `Store<A, L>`: the commands, expiry, eviction and statistics, over any allocator and layout.
//!
//! This module holds the store's configuration, its errors, construction, lookup and removal,
//! and its statistics; `commands` the commands, `access` the access fields (LRU clock, LFU
//! counter) and the eviction lists, `evict` making room by the policy, `expire` expiry.

mod access;
mod aggregate;
mod commands;
mod compaction;
mod defrag;
mod evict;
mod expire;
mod pages;
mod restart;
mod snapshot;

use fraglab_allocators::{AllocError, Allocator, LimitKind, MemStats};

use crate::agg::AggConfig;
use crate::layout::{Layout, LayoutKind, LayoutOptions};
use crate::list::Lists;
use crate::policy::Policy;
use crate::stats::{StoreCounters, StoreStats};
use crate::util::Rng;

pub use aggregate::{AggBook, AggCount};
use evict::Candidate;
pub use pages::ReassignError;
pub use restart::Restarted;

/// memcached's `KEY_MAX_LENGTH`, applied by the memcached and compact layouts.
pub const KEY_MAX: usize = 250;
/// Redis's `maxmemory-samples`.
pub const SAMPLES: usize = 5;
/// Redis's `EVPOOL_SIZE`.
pub const POOL_SIZE: usize = 16;
/// Redis's `LFU_INIT_VAL`.
pub const LFU_INIT: u32 = 5;
/// Redis's `lfu-log-factor`.
pub const LFU_LOG_FACTOR: f64 = 10.0;
/// Redis's `lfu-decay-time`, in minutes.
pub const LFU_DECAY_MINUTES: u32 = 1;
/// memcached's `ITEM_UPDATE_INTERVAL`: an item's time and LRU position move at most this often.
pub const ITEM_UPDATE_INTERVAL: u64 = 60;

/// How a store is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The eviction policy.
    pub policy: Policy,
    /// The seed of the store's generator (sampling, LFU).
    pub seed: u64,
    /// The largest item (memcached's `-I`): memcached layout `ntotal` limit.
    pub item_max: usize,
    /// Whether a memory limit is set (Redis stops sharing integers under LRU/LFU policies
    /// only when `maxmemory` is set).
    pub limited: bool,
    /// The aggregates' encoding thresholds (the redis layout's parameters).
    pub agg: AggConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            policy: Policy::Noeviction,
            seed: 0,
            item_max: 1 << 20,
            limited: false,
            agg: AggConfig::default(),
        }
    }
}

/// Why a command failed. The store is unchanged by a failed command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    /// A key longer than the layout allows (memcached: 250 bytes).
    #[error("key of {len} bytes is longer than {max}")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An item larger than the layout or allocator can ever hold.
    #[error("value of {len} bytes is too large for this store (at most {max} bytes of item)")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit, in item bytes.
        max: usize,
    },
    /// INCR/DECR on a value that is not an integer.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// INCR/DECR would overflow (Redis).
    #[error("increment or decrement would overflow")]
    Overflow,
    /// A TTL of zero or less on a write.
    #[error("invalid expire time {0}: a TTL must be positive")]
    InvalidTtl(i64),
    /// The memory limit is reached and the policy could not (or may not) make room.
    #[error("out of memory: the write does not fit under the memory limit")]
    OutOfMemory,
    /// A command of one type on a key of another (Redis's `WRONGTYPE`; in the blob layouts,
    /// APPEND, PREPEND, INCR or DECR of an aggregate's blob).
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// ZINCRBY to NaN.
    #[error("resulting score is not a number (NaN)")]
    NotANumber,
}

/// A key's remaining time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// No such key.
    Missing,
    /// The key does not expire.
    Persistent,
    /// Seconds left.
    Seconds(u64),
}

/// Options of a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Seconds to live; `None`: no expiry (a SET also clears an existing one).
    pub ttl: Option<i64>,
    /// memcached's client flags (the redis layout does not keep them).
    pub flags: u32,
}

/// How the active expiry pass works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveExpire {
    /// Redis's cycle: sample 20 keys with a TTL, delete the expired, repeat while more than 10%
    /// of a sample was expired (at most 16 rounds).
    Sample,
    /// memcached's LRU crawler: visit every item, delete the expired.
    Crawl,
    /// Segcache's proactive expiry: drop every segment whose items have all expired, oldest
    /// first in each TTL bucket ([`Layout::expired_segments`]); a layout without segments has
    /// none.
    Segments,
}

/// The key-value store. See the [crate docs](crate).
#[derive(Debug)]
pub struct Store<A: Allocator, L: Layout> {
    alloc: A,
    layout: L,
    policy: Policy,
    rng: Rng,
    lists: Option<Lists>,
    /// One list per size class (slab-lru; and lru/fifo over a page-limited allocator, where
    /// only a victim of the needed class makes room, as in memcached).
    lists_per_class: bool,
    pool: Vec<Candidate>,
    counters: StoreCounters,
    payload: u64,
    item_max: usize,
    agg_config: AggConfig,
    aggs: AggBook,
    /// The slab automover's counters and clock, when the allocator has an automover.
    maintainer: Option<pages::Maintainer>,
    /// Active defrag's scan state (`store/defrag.rs`).
    defrag: defrag::DefragState,
    /// A forked child is saving the store ([`Store::set_child_active`]).
    child_active: bool,
    /// What the layout was built with (a restart builds it again).
    layout_opts: LayoutOptions,
}

/// A combination the store cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// A policy that needs list links the layout does not keep.
    #[error("policy `{policy}` needs per-item list links, which the {layout} layout does not keep; use sampled-lru, lfu, random, volatile-* or noeviction")]
    Policy {
        /// The policy.
        policy: Policy,
        /// The layout.
        layout: LayoutKind,
    },
    /// The slab automover under a layout or policy it cannot work with.
    #[error("{0}")]
    Automove(&'static str),
    /// An allocator that moves blocks under a layout whose keys are several blocks pointing at
    /// each other.
    #[error("the {alloc} allocator moves live blocks (its cleaner), and the {layout} layout cannot follow a move (a key is several blocks that point at each other); use the compact or memcached layout")]
    Moves {
        /// The allocator.
        alloc: &'static str,
        /// The layout.
        layout: LayoutKind,
    },
}

impl<A: Allocator, L: Layout> Store<A, L> {
    /// A store over `alloc` (whose memory limit, if any, is already set).
    pub fn new(alloc: A, config: StoreConfig) -> Result<Self, Unsupported> {
        let policy = config.policy;
        if policy.needs_links() && !L::HAS_LINKS {
            return Err(Unsupported::Policy {
                policy,
                layout: L::KIND,
            });
        }
        if A::MOVES_BLOCKS && !L::FOLLOWS_MOVES {
            return Err(Unsupported::Moves {
                alloc: alloc.name(),
                layout: L::KIND,
            });
        }
        let opts = LayoutOptions {
            links: policy.needs_links(),
            shared_integers: !((config.limited || alloc.limit().is_some())
                && policy.disables_shared_integers()),
        };
        let layout = L::new(opts);
        let lists = policy.needs_links().then(|| Lists::new(0));
        let lists_per_class = policy == Policy::SlabLru
            || (alloc.limit().is_some() && alloc.limit_kind() == LimitKind::Pages);
        pages::check_automove::<A, L>(&alloc, lists_per_class && policy.needs_links())
            .map_err(Unsupported::Automove)?;
        let mut alloc = alloc;
        let maintainer = match alloc.automove_mode() {
            0 => None,
            mode => alloc
                .page_mover()
                .map(|pm| pages::Maintainer::new(mode, pm.class_count(), pm.move_us())),
        };
        Ok(Store {
            alloc,
            layout,
            policy,
            rng: Rng::new(config.seed),
            lists,
            lists_per_class,
            pool: Vec::with_capacity(POOL_SIZE),
            counters: StoreCounters::default(),
            payload: 0,
            item_max: config.item_max,
            agg_config: config.agg,
            aggs: AggBook::default(),
            maintainer,
            defrag: defrag::DefragState::default(),
            child_active: false,
            layout_opts: opts,
        })
    }

    /// The allocator (for its statistics, or page moves on a slab).
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// The allocator, mutably (a slab's `move_page` after `evict_range`).
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.alloc
    }

    /// The layout.
    pub fn layout(&self) -> &L {
        &self.layout
    }

    /// The eviction policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Keys stored (expired ones included until they are found).
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    fn check_key(&self, key: &[u8]) -> Result<(), CmdError> {
        if !L::KIND.redis_semantics() && key.len() > KEY_MAX {
            return Err(CmdError::KeyTooLong {
                len: key.len(),
                max: KEY_MAX,
            });
        }
        Ok(())
    }

    fn check_value(&self, key: &[u8], value_len: usize, flags: u32) -> Result<(), CmdError> {
        let (size, max) = match L::KIND {
            LayoutKind::Memcached => (
                crate::layout::memcached::ntotal(key.len(), value_len, flags),
                self.item_max,
            ),
            LayoutKind::Compact => (value_len, crate::layout::compact::MAX_VALUE),
            LayoutKind::Redis => (value_len, 512 << 20),
            LayoutKind::Segcache => (value_len, crate::layout::segcache::MAX_VALUE),
        };
        if size > max {
            return Err(CmdError::ValueTooLarge {
                len: value_len,
                max,
            });
        }
        Ok(())
    }

    /// Finds a live key, deleting it if it has expired (lazy expiry).
    fn lookup(&mut self, key: &[u8], hash: u64, now: u64) -> Option<L::Handle> {
        let h = self.layout.find(&mut self.alloc, key, hash)?;
        let exptime = self.layout.exptime(&self.alloc, h);
        if self.is_expired(exptime, now) {
            self.remove(h);
            self.counters.expired_lazy += 1;
            return None;
        }
        Some(h)
    }

    fn remove(&mut self, h: L::Handle) {
        self.agg_forget(h);
        self.list_remove(h);
        let payload = self.layout.key_len(h) + self.layout.value_len(&self.alloc, h);
        self.payload -= payload as u64;
        self.layout.remove(&mut self.alloc, h);
    }

    /// Runs a step that rewrites key `h` (and may move it), keeping list membership right:
    /// `h` leaves its list while the step allocates (so it is never its own victim), and the
    /// result (or `h` again, on error) goes back at the head.
    fn rewrite(
        &mut self,
        h: L::Handle,
        now: u64,
        step: impl FnMut(&mut A, &mut L) -> Result<L::Handle, AllocError>,
    ) -> Result<L::Handle, CmdError> {
        self.list_remove(h);
        let r = self.with_room(Some(h), now, step);
        self.list_add(*r.as_ref().unwrap_or(&h));
        r
    }

    /// Says whether a forked child is saving the store (a snapshot or an AOF rewrite): the
    /// redis layout then leaves access times alone, as Redis does while it has a child.
    pub fn set_child_active(&mut self, active: bool) {
        self.child_active = active;
    }

    /// The store's statistics.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            items: self.layout.len() as u64,
            counters: self.counters,
            payload_bytes: self.payload,
            index_bytes: self.layout.index_bytes(),
            index_in_allocator_bytes: self.layout.index_in_allocator_bytes(),
            mem: self.alloc.stats(),
        }
    }

    /// The allocator's statistics alone.
    pub fn mem_stats(&self) -> MemStats {
        self.alloc.stats()
    }
}

impl<A: Allocator, L: Layout> Drop for Store<A, L> {
    fn drop(&mut self) {
        // Give every block back before the allocator goes (glibc's books are process-wide).
        for h in self.layout.handles() {
            self.layout.remove(&mut self.alloc, h);
        }
        self.layout.release(&mut self.alloc);
    }
}
