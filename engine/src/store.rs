//! `Store<A, L>`: the commands, expiry, eviction and statistics, over any allocator and layout.

use fraglab_allocators::{AllocError, Allocator, LimitKind, MemStats};

use crate::layout::{Layout, LayoutKind, LayoutOptions, NewItem};
use crate::list::Lists;
use crate::policy::Policy;
use crate::stats::{StoreCounters, StoreStats};
use crate::util::{hash_key, Rng};

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
/// How far from the tail a list policy looks for a victim that can make room.
const LIST_SEARCH: usize = 1000;
/// The most evictions one write may cause before it gives up with an out-of-memory error.
const MAX_EVICTIONS_PER_WRITE: usize = 10_000;

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
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            policy: Policy::Noeviction,
            seed: 0,
            item_max: 1 << 20,
            limited: false,
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
}

/// A candidate in the eviction pool (Redis's `evictionPoolEntry`).
#[derive(Debug, Clone)]
struct Candidate {
    idle: u64,
    key: Vec<u8>,
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
}

/// A policy that this layout cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy `{policy}` needs per-item list links, which the {layout} layout does not keep; use sampled-lru, lfu, random, volatile-* or noeviction")]
pub struct Unsupported {
    /// The policy.
    pub policy: Policy,
    /// The layout.
    pub layout: LayoutKind,
}

impl<A: Allocator, L: Layout> Store<A, L> {
    /// A store over `alloc` (whose memory limit, if any, is already set).
    pub fn new(alloc: A, config: StoreConfig) -> Result<Self, Unsupported> {
        let policy = config.policy;
        if policy.needs_links() && L::KIND == LayoutKind::Redis {
            return Err(Unsupported {
                policy,
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

    // ---- time, access fields ----

    fn exptime_for(now: u64, ttl: Option<i64>) -> u32 {
        match ttl {
            Some(t) if t > 0 => now.saturating_add(t as u64).min(u32::MAX as u64) as u32,
            _ => 0,
        }
    }

    fn is_expired(&self, exptime: u32, now: u64) -> bool {
        // memcached: `exptime <= current_time`; Redis: `now > when`.
        exptime != 0
            && if L::KIND.redis_semantics() {
                now > u64::from(exptime)
            } else {
                u64::from(exptime) <= now
            }
    }

    fn minutes(now: u64) -> u32 {
        ((now / 60) & 0xFFFF) as u32
    }

    fn initial_access(&self, now: u64) -> u32 {
        if self.policy.uses_lfu() {
            (Self::minutes(now) << 8) | LFU_INIT
        } else {
            Self::clock(now)
        }
    }

    fn clock(now: u64) -> u32 {
        if L::KIND == LayoutKind::Memcached {
            now as u32
        } else {
            (now & 0xFF_FFFF) as u32
        }
    }

    /// `LFUDecrAndReturn`.
    fn lfu_counter(access: u32, now: u64) -> u32 {
        let ldt = access >> 8;
        let counter = access & 0xFF;
        let now_m = Self::minutes(now);
        let elapsed = if now_m >= ldt {
            now_m - ldt
        } else {
            65535 - ldt + now_m
        };
        let periods = elapsed / LFU_DECAY_MINUTES;
        counter.saturating_sub(periods)
    }

    fn touch_access(&mut self, h: L::Handle, now: u64) {
        // memcached bumps an item at most once per ITEM_UPDATE_INTERVAL (60 s).
        if L::KIND == LayoutKind::Memcached
            && !self.policy.uses_lfu()
            && now < u64::from(self.layout.access(h)).saturating_add(ITEM_UPDATE_INTERVAL)
        {
            return;
        }
        if self.policy.uses_lfu() {
            let mut counter = Self::lfu_counter(self.layout.access(h), now);
            if counter < 255 {
                let base = counter.saturating_sub(LFU_INIT) as f64;
                if self.rng.unit() < 1.0 / (base * LFU_LOG_FACTOR + 1.0) {
                    counter += 1;
                }
            }
            self.layout
                .set_access(h, (Self::minutes(now) << 8) | counter);
        } else {
            self.layout.set_access(h, Self::clock(now));
        }
        if self.policy == Policy::Lru || self.policy == Policy::SlabLru {
            let class = self.class_of(h);
            if let (Some(lists), Some(links)) = (self.lists.as_mut(), self.layout.links(h)) {
                // SAFETY: with list links on, every stored item is in exactly one list.
                unsafe { lists.bump(class, links) };
            }
        }
    }

    fn idle(&self, h: L::Handle, now: u64) -> u64 {
        let access = self.layout.access(h);
        match self.policy {
            Policy::Lfu => 255 - u64::from(Self::lfu_counter(access, now)),
            Policy::VolatileTtl => u64::MAX - u64::from(self.layout.exptime(&self.alloc, h)),
            _ => {
                let clock = Self::clock(now);
                if L::KIND == LayoutKind::Memcached {
                    u64::from(clock.wrapping_sub(access))
                } else if clock >= access {
                    u64::from(clock - access)
                } else {
                    u64::from(clock + (0xFF_FFFF - access))
                }
            }
        }
    }

    // ---- lists ----

    fn class_of(&self, h: L::Handle) -> usize {
        if self.lists_per_class {
            let size = self.layout.alloc_size(&self.alloc, h);
            self.alloc.size_class(size).unwrap_or(0) as usize
        } else {
            0
        }
    }

    fn list_add(&mut self, h: L::Handle) {
        let class = self.class_of(h);
        if let (Some(lists), Some(links)) = (self.lists.as_mut(), self.layout.links(h)) {
            // SAFETY: `h` is a live item, in no list.
            unsafe { lists.push_front(class, links) };
        }
    }

    fn list_remove(&mut self, h: L::Handle) {
        let class = self.class_of(h);
        if let (Some(lists), Some(links)) = (self.lists.as_mut(), self.layout.links(h)) {
            // SAFETY: `h` is a live item in its class's list.
            unsafe { lists.unlink(class, links) };
        }
    }

    // ---- lookup, removal ----

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

    // ---- eviction ----

    /// Runs an allocating step, evicting by the policy while the allocator answers
    /// `OutOfMemory`. `protect` is never evicted (the key being written).
    fn with_room<T>(
        &mut self,
        protect: Option<L::Handle>,
        now: u64,
        mut step: impl FnMut(&mut A, &mut L) -> Result<T, AllocError>,
    ) -> Result<T, CmdError> {
        for _ in 0..MAX_EVICTIONS_PER_WRITE {
            match step(&mut self.alloc, &mut self.layout) {
                Ok(t) => return Ok(t),
                Err(AllocError::TooLarge { size, max }) => {
                    return Err(CmdError::ValueTooLarge { len: size, max })
                }
                Err(AllocError::OutOfMemory { size }) => {
                    if self.policy == Policy::Noeviction || !self.evict_one(size, protect, now) {
                        // Nothing to evict for `size`: the allocator may have another way
                        // (a chunked item's tail taking a full-size chunk).
                        if self.alloc.on_no_victim(size) {
                            continue;
                        }
                        self.counters.oom_errors += 1;
                        return Err(CmdError::OutOfMemory);
                    }
                }
            }
        }
        self.counters.oom_errors += 1;
        Err(CmdError::OutOfMemory)
    }

    /// Whether evicting `h` can make room for a request of `size` bytes. Under a page limit
    /// (memcached's `-m`) pages never leave their class, so only a victim of the class the
    /// request needs frees a chunk it can use; evicting others would empty the store for
    /// nothing. (The redis layout spreads a key over several classes: any key will do.)
    fn can_make_room(&self, h: L::Handle, size: usize, protect: Option<L::Handle>) -> bool {
        if Some(h) == protect {
            return false;
        }
        if self.per_class_room() {
            let class = |n: usize| self.alloc.size_class(n);
            return class(self.layout.alloc_size(&self.alloc, h)) == class(size);
        }
        true
    }

    /// Whether victims must come from the class of the failing request (a page limit).
    fn per_class_room(&self) -> bool {
        L::KIND != LayoutKind::Redis
            && self.alloc.limit().is_some()
            && self.alloc.limit_kind() == LimitKind::Pages
    }

    /// How many samples a sampling policy draws before it gives up: many more when only one
    /// class's keys can make room, as they may be a small share of the store.
    fn sample_budget(&self) -> usize {
        if self.per_class_room() {
            1024
        } else {
            32
        }
    }

    /// Evicts one key by the policy to make room for a request of `size` bytes; `false` when
    /// there is nothing to evict.
    fn evict_one(&mut self, size: usize, protect: Option<L::Handle>, now: u64) -> bool {
        let victim = match self.policy {
            Policy::Noeviction => None,
            Policy::SlabLru | Policy::Lru | Policy::Fifo => {
                let class = if self.lists_per_class {
                    self.alloc.size_class(size).unwrap_or(0) as usize
                } else {
                    0
                };
                self.lists
                    .as_ref()
                    .and_then(|lists| {
                        lists.nearest_tail(class, LIST_SEARCH, |links| {
                            self.can_make_room(self.layout.handle_at_links(links), size, protect)
                        })
                    })
                    .map(|links| self.layout.handle_at_links(links))
            }
            Policy::Random | Policy::VolatileRandom => {
                let volatile = self.policy == Policy::VolatileRandom;
                let mut found = None;
                for _ in 0..self.sample_budget() {
                    match self.layout.random(&self.alloc, &mut self.rng, volatile) {
                        Some(h) if self.can_make_room(h, size, protect) => {
                            found = Some(h);
                            break;
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                found
            }
            Policy::SampledLru | Policy::Lfu | Policy::VolatileLru | Policy::VolatileTtl => {
                self.pool_victim(size, protect, now)
            }
        };
        match victim {
            Some(h) => {
                self.remove(h);
                self.counters.evictions += 1;
                true
            }
            None => false,
        }
    }

    /// `evictionPoolPopulate` + the pick in `performEvictions`.
    fn pool_victim(
        &mut self,
        size: usize,
        protect: Option<L::Handle>,
        now: u64,
    ) -> Option<L::Handle> {
        let volatile = matches!(self.policy, Policy::VolatileLru | Policy::VolatileTtl);
        for _round in 0..self.sample_budget() / SAMPLES {
            for _ in 0..SAMPLES {
                let Some(h) = self.layout.random(&self.alloc, &mut self.rng, volatile) else {
                    break;
                };
                if Some(h) == protect {
                    continue;
                }
                let idle = self.idle(h, now);
                let mut key = Vec::new();
                self.layout.read_key(&self.alloc, h, &mut key);
                if self.pool.iter().any(|c| c.key == key) {
                    continue;
                }
                // The pool is sorted by idle time, best candidate last.
                let k = self.pool.partition_point(|c| c.idle < idle);
                if self.pool.len() == POOL_SIZE {
                    if k == 0 {
                        continue;
                    }
                    self.pool.remove(0);
                    self.pool.insert(k - 1, Candidate { idle, key });
                } else {
                    self.pool.insert(k, Candidate { idle, key });
                }
            }
            while let Some(c) = self.pool.pop() {
                let hash = hash_key(&c.key);
                if let Some(h) = self.layout.find(&mut self.alloc, &c.key, hash) {
                    if self.can_make_room(h, size, protect)
                        && (!volatile || self.layout.exptime(&self.alloc, h) != 0)
                    {
                        return Some(h);
                    }
                }
            }
        }
        None
    }

    // ---- commands ----

    /// GET: appends the value to `out` and returns the flags, or `None` on a miss.
    pub fn get_into(&mut self, key: &[u8], now: u64, out: &mut Vec<u8>) -> Option<u32> {
        let hash = hash_key(key);
        match self.lookup(key, hash, now) {
            Some(h) => {
                self.counters.hits += 1;
                self.touch_access(h, now);
                self.layout.read_value(&self.alloc, h, out);
                Some(self.layout.flags(&self.alloc, h))
            }
            None => {
                self.counters.misses += 1;
                None
            }
        }
    }

    /// GET.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.get_into(key, now, &mut out).map(|_| out)
    }

    /// MGET.
    pub fn mget(&mut self, keys: &[&[u8]], now: u64) -> Vec<Option<Vec<u8>>> {
        keys.iter().map(|k| self.get(k, now)).collect()
    }

    /// EXISTS (does not count as an access, as Redis's `LOOKUP_NOTOUCH`).
    pub fn exists(&mut self, key: &[u8], now: u64) -> bool {
        self.lookup(key, hash_key(key), now).is_some()
    }

    fn store(
        &mut self,
        key: &[u8],
        value: &[u8],
        opts: SetOptions,
        now: u64,
        mode: Mode,
    ) -> Result<bool, CmdError> {
        self.check_key(key)?;
        if let Some(t) = opts.ttl {
            if t <= 0 {
                return Err(CmdError::InvalidTtl(t));
            }
        }
        self.check_value(key, value.len(), opts.flags)?;
        let hash = hash_key(key);
        let exptime = Self::exptime_for(now, opts.ttl);
        match (self.lookup(key, hash, now), mode) {
            (Some(_), Mode::Add) | (None, Mode::Replace) => Ok(false),
            (Some(h), _) => {
                let old_len = self.layout.value_len(&self.alloc, h);
                let old_exptime = self.layout.exptime(&self.alloc, h);
                // A TTL that needs memory (Redis's expires entry) is set first, so a failed
                // write can undo it without allocating; clearing one frees, so it comes last.
                if exptime != 0 {
                    self.with_room(Some(h), now, |a, l| l.set_exptime(a, h, exptime))?;
                }
                let h = match self.rewrite(h, now, |a, l| l.update(a, h, value, opts.flags)) {
                    Ok(nh) => nh,
                    Err(e) => {
                        // Restoring never allocates: the entry exists, or is deleted.
                        let restored = self.layout.set_exptime(&mut self.alloc, h, old_exptime);
                        debug_assert!(restored.is_ok());
                        return Err(e);
                    }
                };
                self.payload = self.payload - old_len as u64 + value.len() as u64;
                if exptime == 0 {
                    self.layout
                        .set_exptime(&mut self.alloc, h, 0)
                        .expect("clearing a TTL frees, never allocates");
                }
                self.touch_access(h, now);
                self.counters.sets += 1;
                Ok(true)
            }
            (None, _) => {
                self.insert(key, hash, value, opts.flags, exptime, now)?;
                self.counters.sets += 1;
                Ok(true)
            }
        }
    }

    fn insert(
        &mut self,
        key: &[u8],
        hash: u64,
        value: &[u8],
        flags: u32,
        exptime: u32,
        now: u64,
    ) -> Result<L::Handle, CmdError> {
        let access = self.initial_access(now);
        let item = NewItem {
            key,
            hash,
            value,
            flags,
            exptime,
            access,
        };
        let h = self.with_room(None, now, |a, l| l.insert(a, item))?;
        self.list_add(h);
        self.payload += (key.len() + value.len()) as u64;
        Ok(h)
    }

    /// SET: stores the value, replacing any; clears or sets the TTL.
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        opts: SetOptions,
        now: u64,
    ) -> Result<(), CmdError> {
        self.store(key, value, opts, now, Mode::Set).map(|_| ())
    }

    /// ADD (Redis: SET NX): stores only if absent; returns whether it stored.
    pub fn add(
        &mut self,
        key: &[u8],
        value: &[u8],
        opts: SetOptions,
        now: u64,
    ) -> Result<bool, CmdError> {
        self.store(key, value, opts, now, Mode::Add)
    }

    /// REPLACE (Redis: SET XX): stores only if present; returns whether it stored.
    pub fn replace(
        &mut self,
        key: &[u8],
        value: &[u8],
        opts: SetOptions,
        now: u64,
    ) -> Result<bool, CmdError> {
        self.store(key, value, opts, now, Mode::Replace)
    }

    fn concat(
        &mut self,
        key: &[u8],
        bytes: &[u8],
        now: u64,
        prepend: bool,
    ) -> Result<bool, CmdError> {
        self.check_key(key)?;
        let hash = hash_key(key);
        let Some(h) = self.lookup(key, hash, now) else {
            if L::KIND.redis_semantics() {
                self.check_value(key, bytes.len(), 0)?;
                self.insert(key, hash, bytes, 0, 0, now)?;
                self.counters.sets += 1;
                return Ok(true);
            }
            return Ok(false);
        };
        let old_len = self.layout.value_len(&self.alloc, h);
        let flags = self.layout.flags(&self.alloc, h);
        self.check_value(key, old_len + bytes.len(), flags)?;
        let h = self.rewrite(h, now, |a, l| l.append(a, h, bytes, prepend))?;
        self.payload += bytes.len() as u64;
        self.touch_access(h, now);
        self.counters.sets += 1;
        Ok(true)
    }

    /// APPEND: memcached: only to an existing key (returns `false` otherwise); Redis: creates
    /// the key if absent.
    pub fn append(&mut self, key: &[u8], bytes: &[u8], now: u64) -> Result<bool, CmdError> {
        self.concat(key, bytes, now, false)
    }

    /// PREPEND (memcached; in the redis layout, APPEND's mirror).
    pub fn prepend(&mut self, key: &[u8], bytes: &[u8], now: u64) -> Result<bool, CmdError> {
        self.concat(key, bytes, now, true)
    }

    /// INCR/DECR by `delta` (negative: DECR). Returns the new value, or `None` for a missing
    /// key under memcached semantics.
    ///
    /// memcached semantics: the value is an unsigned 64-bit decimal; INCR wraps, DECR stops at
    /// 0; a result no longer than the old value is written in place, padded with spaces (as
    /// memcached does), a longer one makes a new item. Redis semantics: a missing key counts as
    /// 0; the value is a signed 64-bit integer; overflow is an error; the result is stored with
    /// Redis's integer encodings.
    pub fn incr(&mut self, key: &[u8], delta: i64, now: u64) -> Result<Option<i128>, CmdError> {
        self.check_key(key)?;
        let hash = hash_key(key);
        let found = self.lookup(key, hash, now);
        let mut old = Vec::new();
        if let Some(h) = found {
            self.layout.read_value(&self.alloc, h, &mut old);
        }
        if L::KIND.redis_semantics() {
            let current = match found {
                Some(_) => crate::layout::redis::parse_i64(&old).ok_or(CmdError::NotAnInteger)?,
                None => 0,
            };
            let new = current.checked_add(delta).ok_or(CmdError::Overflow)?;
            let text = new.to_string();
            match found {
                Some(h) => {
                    let r =
                        self.with_room(Some(h), now, |a, l| l.update(a, h, text.as_bytes(), 0))?;
                    self.payload = self.payload - old.len() as u64 + text.len() as u64;
                    self.touch_access(r, now);
                }
                None => {
                    self.insert(key, hash, text.as_bytes(), 0, 0, now)?;
                }
            }
            self.counters.sets += 1;
            return Ok(Some(i128::from(new)));
        }
        let Some(h) = found else { return Ok(None) };
        let digits = old
            .iter()
            .rposition(|&b| b != b' ')
            .map_or(&old[..0], |end| &old[..=end]);
        if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(CmdError::NotAnInteger);
        }
        let current: u64 = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(CmdError::NotAnInteger)?;
        let new = if delta >= 0 {
            current.wrapping_add(delta as u64)
        } else {
            current.saturating_sub(delta.unsigned_abs())
        };
        let text = new.to_string();
        if text.len() <= old.len() {
            let mut padded = text.into_bytes();
            padded.resize(old.len(), b' ');
            self.layout.overwrite(&mut self.alloc, h, &padded);
        } else {
            let flags = self.layout.flags(&self.alloc, h);
            self.rewrite(h, now, |a, l| l.update(a, h, text.as_bytes(), flags))?;
            self.payload = self.payload - old.len() as u64 + text.len() as u64;
        }
        self.counters.sets += 1;
        Ok(Some(i128::from(new)))
    }

    /// DELETE: returns whether the key was there.
    pub fn delete(&mut self, key: &[u8], now: u64) -> bool {
        match self.lookup(key, hash_key(key), now) {
            Some(h) => {
                self.remove(h);
                self.counters.deletes += 1;
                true
            }
            None => false,
        }
    }

    /// TOUCH (memcached) / EXPIRE and PERSIST (Redis): sets a key's TTL (`None`: no expiry).
    /// A TTL of zero or less deletes the key, as Redis's EXPIRE does and as memcached's
    /// negative exptime expires it at once. Returns whether the key was there.
    pub fn touch(&mut self, key: &[u8], ttl: Option<i64>, now: u64) -> Result<bool, CmdError> {
        let hash = hash_key(key);
        let Some(h) = self.lookup(key, hash, now) else {
            return Ok(false);
        };
        if let Some(t) = ttl {
            if t <= 0 {
                self.remove(h);
                self.counters.deletes += 1;
                return Ok(true);
            }
        }
        let exptime = Self::exptime_for(now, ttl);
        self.with_room(Some(h), now, |a, l| l.set_exptime(a, h, exptime))?;
        if !L::KIND.redis_semantics() {
            self.touch_access(h, now);
        }
        Ok(true)
    }

    /// TTL: the time a key has left.
    pub fn ttl(&mut self, key: &[u8], now: u64) -> Ttl {
        match self.lookup(key, hash_key(key), now) {
            None => Ttl::Missing,
            Some(h) => match self.layout.exptime(&self.alloc, h) {
                0 => Ttl::Persistent,
                t => Ttl::Seconds(u64::from(t).saturating_sub(now)),
            },
        }
    }

    /// FLUSH: removes every key.
    pub fn flush(&mut self) {
        for h in self.layout.handles() {
            self.remove(h);
        }
        self.layout.release(&mut self.alloc);
        if let Some(lists) = self.lists.as_mut() {
            lists.clear();
        }
        self.pool.clear();
        self.counters.flushes += 1;
    }

    /// The active expiry pass; returns the keys it expired.
    pub fn active_expire(&mut self, now: u64, mode: ActiveExpire) -> u64 {
        let mut expired = 0;
        match mode {
            ActiveExpire::Crawl => {
                for h in self.layout.handles() {
                    let exptime = self.layout.exptime(&self.alloc, h);
                    if self.is_expired(exptime, now) {
                        self.remove(h);
                        expired += 1;
                    }
                }
            }
            ActiveExpire::Sample => {
                for _round in 0..self.sample_budget() / SAMPLES {
                    let (mut sampled, mut stale) = (0, 0);
                    for _ in 0..20 {
                        let Some(h) = self.layout.random(&self.alloc, &mut self.rng, true) else {
                            break;
                        };
                        sampled += 1;
                        let exptime = self.layout.exptime(&self.alloc, h);
                        if self.is_expired(exptime, now) {
                            self.remove(h);
                            stale += 1;
                        }
                    }
                    expired += stale;
                    if sampled == 0 || stale * 10 <= sampled {
                        break;
                    }
                }
                for _ in 0..100 {
                    if !self.layout.background_step(&mut self.alloc) {
                        break;
                    }
                }
            }
        }
        self.counters.expired_active += expired;
        expired
    }

    /// Evicts every key whose main allocation overlaps `[start, end)`: empties a slab page so
    /// the allocator can move it to another class. Returns the keys evicted.
    pub fn evict_range(&mut self, start: usize, end: usize) -> u64 {
        let mut n = 0;
        for h in self.layout.handles() {
            let mut overlaps = false;
            self.layout.blocks(&self.alloc, h, &mut |lo, len| {
                overlaps |= lo < end && lo + len > start
            });
            if overlaps {
                self.remove(h);
                n += 1;
            }
        }
        self.counters.evictions_page += n;
        n
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Set,
    Add,
    Replace,
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
