//! The live set: the keys a workload has written and not deleted, with their bytes (see
//! [`crate::gen`] for when a workload tracks them).
//!
//! Its speed matters where a live cap deletes a random live key for almost every write (the
//! RAMCloud presets): each such delete reads a random entry, which misses the cache. The set
//! is laid out so that a delete costs one such miss:
//!
//! - the entries, `(id, bytes)`, sit in one vector in the order random choices index (the
//!   order is part of the stream: a victim is `entries[below(len)]`), so the victim's id and
//!   bytes come with the one read;
//! - the index maps an id to its entry's position and is updated lazily: a deleted id's index
//!   entry is left in place (it is recognised as stale because the entry at its position no
//!   longer holds the id) and swept out when stale entries outnumber live ones;
//! - the index hashes runs of neighbouring ids to neighbouring buckets ([`LocalHasher`]):
//!   workloads that write new keys in order (RAMCloud's) look up and insert ids whose buckets
//!   are mostly in the cache already.

use std::collections::HashMap;

use crate::rng::{mix64, Rng};

/// A hasher for the live set's ids that keeps runs of 16 consecutive ids in consecutive
/// buckets (hashbrown, behind `std`'s `HashMap`, picks the bucket from the low bits), so ids
/// written in order share cache lines, and scatters the runs by SplitMix64's mixer, so that
/// occupied buckets do not form long clusters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LocalHasher(u64);

/// Ids per run of consecutive buckets.
const RUN: u64 = 16;

impl std::hash::Hasher for LocalHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64((self.0 << 8) | u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (mix64(x / RUN) & !(RUN - 1)) | (x % RUN);
    }
}

/// Builds [`LocalHasher`]s.
type LocalBuildHasher = std::hash::BuildHasherDefault<LocalHasher>;

/// Live keys and their bytes (key + value).
#[derive(Debug, Default)]
pub(crate) struct LiveSet {
    /// Id -> position in `entries`; stale when the entry there holds another id (or the
    /// position is past the end).
    index: HashMap<u64, usize, LocalBuildHasher>,
    /// `(id, bytes)` of every live key, in the order random choices index.
    entries: Vec<(u64, u64)>,
    /// Live bytes in total.
    pub(crate) bytes: u64,
}

impl LiveSet {
    /// Number of live keys.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The position of live key `id`.
    #[inline]
    fn position(&self, id: u64) -> Option<usize> {
        let &pos = self.index.get(&id)?;
        match self.entries.get(pos) {
            Some(&(at, _)) if at == id => Some(pos),
            _ => None,
        }
    }

    /// The bytes of live key `id`, or `None` when it is not live.
    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<u64> {
        self.position(id).map(|pos| self.entries[pos].1)
    }

    /// Makes `id` live with `bytes` (replacing its bytes when it is live).
    #[inline]
    pub(crate) fn put(&mut self, id: u64, bytes: u64) {
        match self.position(id) {
            Some(pos) => {
                let e = &mut self.entries[pos].1;
                self.bytes = self.bytes - *e + bytes;
                *e = bytes;
            }
            None => {
                self.index.insert(id, self.entries.len());
                self.entries.push((id, bytes));
                self.bytes += bytes;
            }
        }
    }

    /// Deletes `id` when it is live.
    #[inline]
    pub(crate) fn remove(&mut self, id: u64) {
        if let Some(pos) = self.position(id) {
            self.remove_at(pos);
        }
    }

    /// Deletes the key at `pos` (moving the last entry there, as `Vec::swap_remove` does).
    #[inline]
    fn remove_at(&mut self, pos: usize) {
        let (_, bytes) = self.entries.swap_remove(pos);
        self.bytes -= bytes;
        if let Some(&(moved, _)) = self.entries.get(pos) {
            self.index.insert(moved, pos);
        }
        // The removed id's index entry is now stale; sweep stale entries once they are as
        // many as the live ones (amortized O(1) per delete).
        if self.index.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.index
                .retain(|&id, &mut p| entries.get(p).is_some_and(|e| e.0 == id));
        }
    }

    /// Deletes a live key chosen uniformly (one draw from `rng`) unless it is `keep`, and
    /// returns it; `None` (no draw) when no key is live. The draw and the choice are those of
    /// `entries[below(len)]`, and the chosen entry is read once.
    #[inline]
    pub(crate) fn remove_random(&mut self, rng: &mut Rng, keep: Option<u64>) -> Option<u64> {
        if self.entries.is_empty() {
            return None;
        }
        let pos = rng.below(self.entries.len() as u64) as usize;
        let id = self.entries[pos].0;
        if Some(id) != keep {
            self.remove_at(pos);
        }
        Some(id)
    }
}
