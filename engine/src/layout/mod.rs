//! Layouts: how the store lays out its items and its index, and so what it asks the allocator
//! for. The store is generic over its layout (static dispatch), as it is over its allocator.
//!
//! | layout | allocations per string key | index |
//! |---|---|---|
//! | [`compact`] | one item: a 12-byte header, the key, the value (+4 for client flags, +16 for exact-order links) | open addressing, 8-byte slots (outside the allocator) |
//! | [`memcached`] | one item of memcached 1.6's `ntotal` (48-byte header, CAS, key + 1, flags, value + 2) | power-of-two array of item pointers chained through the header (outside the allocator, as memcached mallocs it) |
//! | [`redis`] | dict entry, key SDS, robj (+ value SDS, or embedded, or none for a shared integer), expires entry | Redis's dict: bucket arrays allocated through the allocator, incremental rehash |

use std::fmt;
use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};
use serde::{Deserialize, Serialize};

use crate::agg::{blob, model::AggData, AggCmd, AggConfig, AggError, AggType, Encoding, Reply};
use crate::defrag::DefragCounters;
use crate::util::Rng;

pub mod compact;
pub mod memcached;
pub mod redis;
pub mod segcache;
mod table;

pub use compact::Compact;
pub use memcached::Memcached;
pub use redis::Redis;
pub use segcache::Segcache;

/// Which layout, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutKind {
    /// The lab's own minimal item.
    Compact,
    /// memcached 1.6's item.
    Memcached,
    /// Redis 7.0's objects.
    Redis,
    /// Segcache's segments (NSDI 2021).
    Segcache,
}

impl LayoutKind {
    /// Every layout.
    pub const ALL: [LayoutKind; 4] = [
        LayoutKind::Compact,
        LayoutKind::Memcached,
        LayoutKind::Redis,
        LayoutKind::Segcache,
    ];

    /// The layout's name.
    pub fn name(self) -> &'static str {
        match self {
            LayoutKind::Compact => "compact",
            LayoutKind::Memcached => "memcached",
            LayoutKind::Redis => "redis",
            LayoutKind::Segcache => "segcache",
        }
    }

    /// Whether commands follow Redis's semantics (otherwise memcached's).
    pub fn redis_semantics(self) -> bool {
        self == LayoutKind::Redis
    }
}

impl fmt::Display for LayoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LayoutKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        LayoutKind::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                format!("unknown layout `{s}`; valid: compact, memcached, redis, segcache")
            })
    }
}

/// Parses `--layout`: a layout's name, and for `redis` its encoding thresholds as
/// `redis.conf` names them (`redis:hash-max-listpack-entries=128,zset-max-listpack-value=32`;
/// [`AggConfig::PARAMS`]), each defaulting to Redis 7.0's value.
pub fn parse_layout(s: &str) -> Result<(LayoutKind, AggConfig), String> {
    let (name, params) = match s.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (s, None),
    };
    let kind: LayoutKind = name.parse()?;
    let mut cfg = AggConfig::default();
    if let Some(params) = params {
        if kind != LayoutKind::Redis {
            return Err(format!(
                "the {kind} layout takes no parameters (only redis does: {})",
                AggConfig::PARAMS.join(", ")
            ));
        }
        for kv in params.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("layout parameter `{kv}` is not NAME=VALUE"))?;
            cfg.set(k.trim(), v.trim())?;
        }
    }
    Ok((kind, cfg))
}

/// A layout's name with the thresholds that differ from Redis 7.0's defaults, as
/// [`parse_layout`] reads it back.
pub fn layout_name(kind: LayoutKind, cfg: &AggConfig) -> String {
    let d = AggConfig::default();
    let pairs = [
        (
            cfg.hash_max_listpack_entries as i64,
            d.hash_max_listpack_entries as i64,
        ),
        (
            cfg.hash_max_listpack_value as i64,
            d.hash_max_listpack_value as i64,
        ),
        (
            cfg.set_max_intset_entries as i64,
            d.set_max_intset_entries as i64,
        ),
        (
            cfg.zset_max_listpack_entries as i64,
            d.zset_max_listpack_entries as i64,
        ),
        (
            cfg.zset_max_listpack_value as i64,
            d.zset_max_listpack_value as i64,
        ),
        (cfg.list_max_listpack_size, d.list_max_listpack_size),
    ];
    let set: Vec<String> = AggConfig::PARAMS
        .iter()
        .zip(pairs)
        .filter(|(_, (v, dv))| v != dv)
        .map(|(n, (v, _))| format!("{n}={v}"))
        .collect();
    if set.is_empty() {
        kind.name().to_string()
    } else {
        format!("{}:{}", kind.name(), set.join(","))
    }
}

/// Settings a layout is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutOptions {
    /// Items carry 16 bytes of list links (the policy needs an exact order).
    pub links: bool,
    /// Redis shares the integers 0..9999 (off under LRU/LFU policies, as Redis does).
    pub shared_integers: bool,
}

/// A new item for [`Layout::insert`].
#[derive(Debug, Clone, Copy)]
pub struct NewItem<'a> {
    /// The key (absent from the store).
    pub key: &'a [u8],
    /// `hash_key(key)`.
    pub hash: u64,
    /// The value.
    pub value: &'a [u8],
    /// Client flags (memcached; ignored by the redis layout).
    pub flags: u32,
    /// Expiry time in logical seconds, 0 for none.
    pub exptime: u32,
    /// The initial access field (LRU clock or LFU counter).
    pub access: u32,
    /// The store's clock, logical seconds (Segcache picks a TTL bucket by `exptime - now`).
    pub now: u64,
}

/// Client flags that mark a blob layout's item as an aggregate: `0x4147_00TT` ("AG"), `TT` the
/// blob's tag byte ([`blob::tag`]). A memcached client marks its serialized values the same
/// way, so that a reader knows how to decode them.
pub const AGG_FLAGS: u32 = 0x4147_0000;

/// The flags of a blob of type `t`.
pub fn agg_flags(t: AggType) -> u32 {
    AGG_FLAGS | u32::from(blob::tag(t))
}

/// What an aggregate command did, as the layout reports it to the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AggDone<H> {
    /// The key's handle afterwards.
    pub handle: H,
    /// The reply.
    pub reply: Reply,
    /// The change in payload bytes (the blob's length, or the elements' bytes).
    pub payload_delta: i64,
    /// Encoding and elements before the command (`None` for a key it created).
    pub before: Option<(Encoding, usize)>,
    /// Encoding and elements after it.
    pub after: (Encoding, usize),
}

/// The stages of [`Layout::prefetch`], from the farthest op to the nearest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefetchStage {
    /// The index slot or bucket the key hashes to.
    Index,
    /// What that slot points at: the item (or Redis's dict entry).
    Item,
    /// The key found (its lines are cached now), and what its access will write next: the
    /// item's list neighbours, or Redis's key and value objects.
    Find,
}

/// How the store organizes items and its index. See the [module docs](self).
///
/// A `Handle` names a stored key until it is removed or moved (`update`, `append` return the
/// new one). All methods take the allocator the items live in.
pub trait Layout: Sized {
    /// Which layout this is.
    const KIND: LayoutKind;
    /// A stored key.
    type Handle: Copy + PartialEq + fmt::Debug;
    /// Whether the layout follows an allocator that moves blocks
    /// ([`relocated`](Layout::relocated)): each key is one block that only the index points
    /// at. The redis layout's keys are several blocks pointing at each other, so it does not.
    const FOLLOWS_MOVES: bool = false;
    /// Whether items carry list links ([`links`](Layout::links)), so that the list policies
    /// (`slab-lru`, `lru`, `fifo`) can run.
    const HAS_LINKS: bool = true;
    /// Whether the layout evicts by itself, segments at a time (Segcache's merge), instead of
    /// the store's policy picking keys ([`evict_begin`](Layout::evict_begin)).
    const EVICTS_SEGMENTS: bool = false;
    /// Whether a key's handle is the block the allocator returned for it
    /// ([`handle_at_block`](Layout::handle_at_block)), so that a page mover that finds a live
    /// block in a page can drop or re-point the key (the memcached and compact layouts).
    const BLOCK_HANDLES: bool = false;

    /// An empty layout.
    fn new(opts: LayoutOptions) -> Self;
    /// Keys stored.
    fn len(&self) -> usize;
    /// Whether nothing is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes of index held outside the allocator.
    fn index_bytes(&self) -> u64;
    /// Finds a key.
    fn find<A: Allocator>(&mut self, a: &mut A, key: &[u8], hash: u64) -> Option<Self::Handle>;
    /// A hint ahead of a lookup of the key whose hash is `hash` a few ops from now; the replay
    /// driver calls it at each [`PrefetchStage`] in turn as the op comes nearer, so that the
    /// cache misses of several lookups overlap. It prefetches and reads only: nothing changes,
    /// so a replay gives the same results with or without it. At [`PrefetchStage::Find`] it
    /// returns the item the key most likely is (the first whose hash tag matches, or the
    /// chain's head: keys are not compared, to keep the hint cheap), for the store to prefetch
    /// its list neighbours.
    fn prefetch<A: Allocator>(
        &self,
        _a: &A,
        _hash: u64,
        _stage: PrefetchStage,
    ) -> Option<Self::Handle> {
        None
    }
    /// Stores a key that is not present.
    fn insert<A: Allocator>(
        &mut self,
        a: &mut A,
        item: NewItem<'_>,
    ) -> Result<Self::Handle, AllocError>;
    /// Replaces a key's value and flags, keeping its expiry; on error nothing changed.
    fn update<A: Allocator>(
        &mut self,
        a: &mut A,
        h: Self::Handle,
        value: &[u8],
        flags: u32,
    ) -> Result<Self::Handle, AllocError>;
    /// Appends (or prepends) bytes to a key's value; on error nothing changed.
    fn append<A: Allocator>(
        &mut self,
        a: &mut A,
        h: Self::Handle,
        bytes: &[u8],
        prepend: bool,
    ) -> Result<Self::Handle, AllocError> {
        let mut value = Vec::new();
        self.read_value(a, h, &mut value);
        if prepend {
            value.splice(0..0, bytes.iter().copied());
        } else {
            value.extend_from_slice(bytes);
        }
        let flags = self.flags(a, h);
        self.update(a, h, &value, flags)
    }
    /// Overwrites a value with bytes of the same length, in place (memcached's in-place INCR).
    fn overwrite<A: Allocator>(&mut self, a: &mut A, h: Self::Handle, value: &[u8]);
    /// Removes a key and frees its memory.
    fn remove<A: Allocator>(&mut self, a: &mut A, h: Self::Handle);
    /// Appends the value's bytes to `out`.
    fn read_value<A: Allocator>(&self, a: &A, h: Self::Handle, out: &mut Vec<u8>);
    /// The value's length.
    fn value_len<A: Allocator>(&self, a: &A, h: Self::Handle) -> usize;
    /// The key's length.
    fn key_len(&self, h: Self::Handle) -> usize;
    /// Appends the key's bytes to `out`.
    fn read_key<A: Allocator>(&self, a: &A, h: Self::Handle, out: &mut Vec<u8>);
    /// The client flags.
    fn flags<A: Allocator>(&self, a: &A, h: Self::Handle) -> u32;
    /// The expiry time (0: none).
    fn exptime<A: Allocator>(&self, a: &A, h: Self::Handle) -> u32;
    /// Sets the expiry time (0: none). The redis layout allocates or frees an expires entry.
    fn set_exptime<A: Allocator>(
        &mut self,
        a: &mut A,
        h: Self::Handle,
        exptime: u32,
    ) -> Result<(), AllocError>;
    /// The access field (LRU clock in seconds, or LFU time and counter).
    fn access(&self, h: Self::Handle) -> u32;
    /// Sets the access field.
    fn set_access(&mut self, h: Self::Handle, access: u32);
    /// Where the item's list links are, if it has any (16 bytes: prev, next).
    fn links(&self, h: Self::Handle) -> Option<NonNull<u8>>;
    /// The handle whose links are at `links`.
    fn handle_at_links(&self, links: NonNull<u8>) -> Self::Handle;
    /// The size of the key's main allocation (the item; Redis's value object), for size
    /// classes.
    fn alloc_size<A: Allocator>(&self, a: &A, h: Self::Handle) -> usize;
    /// A random stored key (with a TTL only, if `volatile`), or `None` if there is none to be
    /// found.
    fn random<A: Allocator>(
        &mut self,
        a: &A,
        rng: &mut Rng,
        volatile: bool,
    ) -> Option<Self::Handle>;
    /// Every stored key.
    fn handles(&self) -> Vec<Self::Handle>;
    /// After a warm restart: takes the block at `block` (of `block_size` bytes, in memory
    /// opened again at a new address) into the index if it holds a live item, which it checks
    /// whole first. `Ok(Some((handle, requested size)))` for a live item, `Ok(None)` for a free
    /// block, `Err` (why) for a block marked live that does not hold a sound item. By default
    /// the layout cannot restart.
    fn adopt(
        &mut self,
        block: NonNull<u8>,
        block_size: usize,
    ) -> Result<Option<(Self::Handle, usize)>, String> {
        let _ = (block, block_size);
        Err(format!(
            "the {} layout cannot restart (only memcached's can)",
            Self::KIND
        ))
    }
    /// Calls `f` on every stored key until it returns `false`. The layouts walk their index
    /// without allocating, so a forked child that saves the store (`Store::dump`) copies no
    /// page of its own for the walk; the default collects [`handles`](Layout::handles).
    fn for_each_handle(&self, f: &mut dyn FnMut(Self::Handle) -> bool) {
        for h in self.handles() {
            if !f(h) {
                return;
            }
        }
    }
    /// Calls `f(start, len)` for every piece of memory the key holds in the allocator (the
    /// item or its chunks; Redis's entry, key, value and expires entry).
    fn blocks<A: Allocator>(&self, a: &A, h: Self::Handle, f: &mut dyn FnMut(usize, usize));
    /// One step of background work (Redis's incremental rehash); returns whether any was done.
    fn background_step<A: Allocator>(&mut self, a: &mut A) -> bool {
        let _ = a;
        false
    }
    /// Frees index memory held in the allocator once the layout is empty (Redis's bucket
    /// arrays, as `dictEmpty` does).
    fn release<A: Allocator>(&mut self, a: &mut A) {
        let _ = a;
    }
    /// Bytes of index allocated through the allocator (Redis's bucket arrays).
    fn index_in_allocator_bytes(&self) -> u64 {
        0
    }

    /// Starts a segment eviction (only for layouts that [evict segments](Layout::EVICTS_SEGMENTS)):
    /// returns the keys it drops, still stored, for the store to remove, or `None` when nothing
    /// can be evicted. `protect` (the key a write holds) is neither dropped nor moved.
    fn evict_begin<A: Allocator>(
        &mut self,
        a: &mut A,
        protect: Option<Self::Handle>,
        now: u64,
    ) -> Option<Vec<Self::Handle>> {
        let _ = (a, protect, now);
        None
    }

    /// The keys of every segment whose items have all expired at `now` (Segcache's proactive
    /// expiry, which frees whole segments), for the store to remove; none for a layout without
    /// segments.
    fn expired_segments<A: Allocator>(&mut self, a: &A, now: u64) -> Vec<Self::Handle> {
        let _ = (a, now);
        Vec::new()
    }

    /// Ends a segment eviction once the store removed the keys `evict_begin` returned; `true`
    /// if memory was given back.
    fn evict_finish<A: Allocator>(&mut self, a: &mut A) -> bool {
        let _ = a;
        false
    }

    /// The allocator moved the block at `from` to `to` (a copy of its bytes; `from` is no
    /// longer to be read): points the index at `to`, and returns the key's handles before and
    /// after the move. Called only for layouts that [follow moves](Layout::FOLLOWS_MOVES).
    fn relocated(&mut self, from: NonNull<u8>, to: NonNull<u8>) -> (Self::Handle, Self::Handle) {
        let _ = (from, to);
        unreachable!(
            "the store never runs a moving allocator under a layout that does not follow moves"
        )
    }

    /// The key whose item is the block at `block` (as the allocator returned it). Called only
    /// for layouts with [`BLOCK_HANDLES`](Layout::BLOCK_HANDLES), on live blocks.
    fn handle_at_block(&self, block: NonNull<u8>) -> Self::Handle {
        let _ = block;
        unreachable!("the store never moves pages under a layout without block handles")
    }

    /// One step of active defrag's scan of the keyspace (Redis's `dictScan` from a cursor) for
    /// a layout whose keys are each one block that only the index points at (those that
    /// [follow moves](Layout::FOLLOWS_MOVES)): appends the keys of the next slots from `cursor`
    /// to `out` and returns the next cursor, 0 when the scan is complete. The store asks the
    /// allocator's hint for each key's block and moves it ([`relocated`](Layout::relocated)).
    /// By default: no keys, the scan complete.
    fn scan_keys(&self, cursor: u64, out: &mut Vec<Self::Handle>) -> u64 {
        let _ = (cursor, out);
        0
    }

    /// One step of active defrag for a layout that moves its own blocks (a key of several
    /// blocks pointing at each other: the redis layout, `engine/src/layout/redis/defrag.rs`):
    /// scans one step from `cursor`, asks the allocator's hint for every block of every key
    /// visited, moves those it names fixing every pointer, and counts in `c`. Returns the next
    /// cursor (0: the scan is complete) and the keys visited, or `None` when the layout leaves
    /// defrag to the store ([`scan_keys`](Layout::scan_keys)), the default.
    fn defrag_step<A: Allocator>(
        &mut self,
        a: &mut A,
        cursor: u64,
        max_scan_fields: u64,
        c: &mut DefragCounters,
    ) -> Option<(u64, u64)> {
        let _ = (a, cursor, max_scan_fields, c);
        None
    }

    /// The aggregate type a key holds, `None` for a string. By default (the blob layouts),
    /// read from the client flags ([`AGG_FLAGS`]).
    fn agg_type<A: Allocator>(&self, a: &A, h: Self::Handle) -> Option<AggType> {
        let f = self.flags(a, h);
        if f & !0xff != AGG_FLAGS {
            return None;
        }
        blob::blob_type(&[f as u8])
    }

    /// An aggregate key's elements, read without changing anything (what a snapshot saves).
    /// By default, the decoded blob.
    fn agg_elements<A: Allocator>(&self, a: &mut A, h: Self::Handle, cfg: &AggConfig) -> AggData {
        let _ = cfg;
        let mut v = Vec::new();
        self.read_value(a, h, &mut v);
        blob::decode(&v).expect("an item flagged as a blob decodes")
    }

    /// An aggregate's encoding and element count. By default, the blob's count.
    fn agg_shape<A: Allocator>(&self, a: &A, h: Self::Handle) -> (Encoding, usize) {
        let mut v = Vec::new();
        self.read_value(a, h, &mut v);
        (Encoding::Blob, blob::decode(&v).map_or(0, |d| d.len()))
    }

    /// Stores a key that is not present, holding the aggregate `cmd` creates (`item.value`
    /// and `item.flags` are ignored). By default: one item holding the blob.
    fn agg_create<A: Allocator>(
        &mut self,
        a: &mut A,
        item: NewItem<'_>,
        cfg: &AggConfig,
        cmd: &AggCmd<'_>,
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) -> Result<AggDone<Self::Handle>, AggError> {
        let _ = cfg;
        let mut data = AggData::new(cmd.agg_type());
        let mark = out.len();
        let (reply, _) = data.apply(cmd, &mut |n| rng.below(n), out)?;
        let mut bytes = Vec::with_capacity(blob::encoded_len(&data));
        blob::encode(&data, &mut bytes);
        let new = NewItem {
            value: &bytes,
            flags: agg_flags(data.agg_type()),
            ..item
        };
        let handle = self.insert(a, new).inspect_err(|_| out.truncate(mark))?;
        Ok(AggDone {
            handle,
            reply,
            payload_delta: bytes.len() as i64,
            before: None,
            after: (Encoding::Blob, data.len()),
        })
    }

    /// Runs `cmd` on the aggregate key `h` (of `cmd`'s type); on error nothing changed. By
    /// default: read the blob, decode it, run the command, and for a write that changed it,
    /// encode it and rewrite the whole item.
    fn agg_apply<A: Allocator>(
        &mut self,
        a: &mut A,
        h: Self::Handle,
        cfg: &AggConfig,
        cmd: &AggCmd<'_>,
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) -> Result<AggDone<Self::Handle>, AggError> {
        let _ = cfg;
        let mut old = Vec::new();
        self.read_value(a, h, &mut old);
        let mut data = blob::decode(&old).expect("an item flagged as a blob decodes");
        let before = (Encoding::Blob, data.len());
        let mark = out.len();
        let (reply, _) = data.apply(cmd, &mut |n| rng.below(n), out)?;
        let mut handle = h;
        let mut delta = 0;
        let mut bytes = Vec::new();
        if cmd.writes() {
            bytes.reserve(blob::encoded_len(&data));
            blob::encode(&data, &mut bytes);
        }
        // A client writes the blob back only when the command changed it.
        if cmd.writes() && bytes != old {
            let flags = self.flags(a, h);
            handle = self
                .update(a, h, &bytes, flags)
                .inspect_err(|_| out.truncate(mark))?;
            delta = bytes.len() as i64 - old.len() as i64;
        }
        Ok(AggDone {
            handle,
            reply,
            payload_delta: delta,
            before: Some(before),
            after: (Encoding::Blob, data.len()),
        })
    }
}
