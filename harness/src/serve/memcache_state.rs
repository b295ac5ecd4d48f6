//! What memcached keeps beside its items, shared by every connection: CAS uniques, the meta
//! protocol's per-item bits, the delayed `flush_all`, and the command counters of `stats`.
//!
//! The engine has no CAS values. memcached's 8-byte CAS field is already part of the
//! memcached layout's item size (`ITEM_CAS`, see `fraglab_engine::layout::memcached`), so
//! keeping the uniques here, outside the allocator, leaves the modeled memory exactly as
//! memcached's: the table is the server's bookkeeping, not the model's.

use std::collections::HashMap;

use fraglab_allocators::Allocator;
use fraglab_engine::{Layout, Store};

/// What the server knows of one key beyond the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// The CAS unique.
    pub cas: u64,
    /// Fetched since it was stored (memcached's `ITEM_FETCHED`).
    pub fetched: bool,
    /// When it was last accessed (store time).
    pub last: u64,
    /// Marked stale by `md ... I` (memcached's `ITEM_STALE`).
    pub stale: bool,
    /// A win token (`W`) was handed out (memcached's `ITEM_TOKEN_SENT`).
    pub token_sent: bool,
}

/// Counters of `stats` that the store does not keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Counters {
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_flush: u64,
    pub cmd_touch: u64,
    pub cmd_meta: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub delete_hits: u64,
    pub delete_misses: u64,
    pub incr_hits: u64,
    pub incr_misses: u64,
    pub decr_hits: u64,
    pub decr_misses: u64,
    pub cas_hits: u64,
    pub cas_misses: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub store_too_large: u64,
    pub store_no_memory: u64,
    pub total_items: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// The memcached front end's shared state (one per server, in [`Ctx`](super::Ctx)).
#[derive(Debug, Default)]
pub struct Shared {
    entries: HashMap<Vec<u8>, Entry>,
    next_cas: u64,
    /// `flush_all N`: the store time at which everything stored so far goes.
    pub flush_at: Option<u64>,
    /// `verbosity`'s level (kept for `stats settings`).
    pub verbosity: u32,
    /// Command counters.
    pub counters: Counters,
}

impl Shared {
    fn bump(&mut self) -> u64 {
        self.next_cas += 1;
        self.next_cas
    }

    /// `key` was (re)written: a new CAS unique, the meta bits cleared.
    pub fn stored(&mut self, key: &[u8], now: u64) -> u64 {
        let cas = self.bump();
        let e = Entry {
            cas,
            last: now,
            ..Entry::default()
        };
        match self.entries.get_mut(key) {
            Some(old) => *old = e,
            None => {
                self.entries.insert(key.to_vec(), e);
            }
        }
        cas
    }

    /// `key` (live in the store) changed in place (INCR/DECR, `md I`): a new CAS unique, the
    /// other bits kept.
    pub fn rewritten(&mut self, key: &[u8], now: u64) -> u64 {
        let cas = self.bump();
        self.entry(key, now).cas = cas;
        cas
    }

    /// The entry of `key`, which is live in the store (one is made if the table lost it).
    pub fn entry(&mut self, key: &[u8], now: u64) -> &mut Entry {
        if !self.entries.contains_key(key) {
            let cas = self.bump();
            self.entries.insert(
                key.to_vec(),
                Entry {
                    cas,
                    last: now,
                    ..Entry::default()
                },
            );
        }
        self.entries.get_mut(key).expect("inserted above")
    }

    /// `key` is gone from the store.
    pub fn forget(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }

    /// Everything is gone (flush).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Drops the entries of keys the store no longer holds (evicted or expired), once the
    /// table has grown past twice the store's keys: amortized O(1) per write.
    pub fn prune<A: Allocator, L: Layout>(&mut self, store: &mut Store<A, L>, now: u64) {
        if self.entries.len() <= 2 * store.len() + 1024 {
            return;
        }
        self.entries.retain(|k, _| store.exists(k, now));
    }

    /// Keys in the table (for tests).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
