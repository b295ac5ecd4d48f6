//! Aggregate commands (HSET, SADD, LPUSH, ZADD and the rest; [`crate::agg`]) and the book
//! of what the store holds per type and encoding.
//!
//! A command on a missing key either creates it (the writes that add) or answers as Redis
//! does for an empty aggregate (HGET nil, SCARD 0, LRANGE an empty array). A command of
//! another type than the key's is refused with [`CmdError::WrongType`], as Redis's
//! `WRONGTYPE`. A command that empties an aggregate deletes the key, as Redis does.

use std::collections::BTreeMap;
use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};
use serde::{Deserialize, Serialize};

use super::{CmdError, Store};
use crate::agg::model::AggData;
use crate::agg::{AggCmd, AggConfig, AggError, AggType, Encoding, Reply};
use crate::layout::{AggDone, Layout, NewItem};
use crate::util::{hash_key, Rng};

/// Keys and elements held in one type and encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggCount {
    /// Keys.
    pub keys: u64,
    /// Elements (hash fields, members, list elements).
    pub elements: u64,
}

/// Slots of the book: one per type and encoding.
const SLOTS: usize = AggType::ALL.len() * Encoding::ALL.len();

fn slot(t: AggType, e: Encoding) -> usize {
    t as usize * Encoding::ALL.len() + e as usize
}

/// What the store holds as aggregates, kept as commands run (a flat table: it is updated on
/// every aggregate command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggBook {
    counts: [AggCount; SLOTS],
    /// Conversions by type, from and to encoding (a hash's listpack to a hashtable).
    pub conversions: BTreeMap<(AggType, Encoding, Encoding), u64>,
    /// Commands refused because the key holds another type (`WRONGTYPE`).
    pub wrong_type: u64,
    /// Aggregate commands run.
    pub commands: u64,
    /// Keys held, all types and encodings.
    keys: u64,
}

impl Default for AggBook {
    fn default() -> Self {
        AggBook {
            counts: [AggCount::default(); SLOTS],
            conversions: BTreeMap::new(),
            wrong_type: 0,
            commands: 0,
            keys: 0,
        }
    }
}

impl AggBook {
    /// Keys and elements by type and encoding (those holding keys).
    pub fn held(&self) -> BTreeMap<(AggType, Encoding), AggCount> {
        let mut out = BTreeMap::new();
        for t in AggType::ALL {
            for e in Encoding::ALL {
                let c = self.counts[slot(t, e)];
                if c.keys > 0 {
                    out.insert((t, e), c);
                }
            }
        }
        out
    }

    /// Whether no aggregate key is held.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }

    fn add(&mut self, t: AggType, (enc, n): (Encoding, usize)) {
        let c = &mut self.counts[slot(t, enc)];
        c.keys += 1;
        c.elements += n as u64;
        self.keys += 1;
    }

    fn sub(&mut self, t: AggType, (enc, n): (Encoding, usize)) {
        let c = &mut self.counts[slot(t, enc)];
        c.keys -= 1;
        c.elements -= n as u64;
        self.keys -= 1;
    }

    fn record(&mut self, t: AggType, before: Option<(Encoding, usize)>, after: (Encoding, usize)) {
        if let Some(b) = before {
            self.sub(t, b);
            if b.0 != after.0 {
                *self.conversions.entry((t, b.0, after.0)).or_default() += 1;
            }
        }
        self.add(t, after);
    }
}

impl<A: Allocator, L: Layout> Store<A, L> {
    /// The encoding thresholds.
    pub fn agg_config(&self) -> &AggConfig {
        &self.agg_config
    }

    /// Sets the encoding thresholds (before the first aggregate is stored).
    pub fn set_agg_config(&mut self, cfg: AggConfig) {
        self.agg_config = cfg;
    }

    /// The book of aggregates held.
    pub fn agg_book(&self) -> &AggBook {
        &self.aggs
    }

    /// The aggregate type of a live key, `None` for a string or a missing key (does not count
    /// as an access).
    pub fn agg_type_of(&mut self, key: &[u8], now: u64) -> Option<AggType> {
        let h = self.lookup(key, hash_key(key), now)?;
        self.layout.agg_type(&self.alloc, h)
    }

    /// The encoding and element count of a live aggregate key (Redis's `OBJECT ENCODING`).
    pub fn agg_shape_of(&mut self, key: &[u8], now: u64) -> Option<(Encoding, usize)> {
        let h = self.lookup(key, hash_key(key), now)?;
        self.layout.agg_type(&self.alloc, h)?;
        Some(self.layout.agg_shape(&self.alloc, h))
    }

    /// Runs an aggregate command on `key`. Bytes the reply carries are appended to `out`
    /// (see [`Reply`]). On error the store is unchanged.
    pub fn agg(
        &mut self,
        key: &[u8],
        cmd: &AggCmd<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<Reply, CmdError> {
        self.check_key(key)?;
        let t = cmd.agg_type();
        let hash = hash_key(key);
        self.aggs.commands += 1;
        let Some(h) = self.lookup(key, hash, now) else {
            if !cmd.creates() {
                if !cmd.writes() {
                    self.counters.misses += 1;
                }
                // The reply to an empty aggregate, which is what a missing key is to Redis.
                let mut empty = AggData::new(t);
                return Ok(empty.apply(cmd, &mut |_| 0, out).map_err(agg_err)?.0);
            }
            return self.agg_create(key, hash, cmd, now, out);
        };
        if self.layout.agg_type(&self.alloc, h) != Some(t) {
            self.aggs.wrong_type += 1;
            return Err(CmdError::WrongType);
        }
        let cfg = self.agg_config;
        let mut failed = None;
        let mark = out.len();
        let step = |a: &mut A, l: &mut L, rng: &mut Rng, out: &mut Vec<u8>| match l
            .agg_apply(a, h, &cfg, cmd, rng, out)
        {
            Ok(d) => Ok(Some(d)),
            Err(AggError::Alloc(e)) => Err(e),
            Err(e) => {
                failed = Some(e);
                Ok(None)
            }
        };
        let done = if cmd.writes() {
            self.rewrite_with(h, now, out, step)?
        } else {
            let mut step = step;
            step(&mut self.alloc, &mut self.layout, &mut self.rng, out)
                .expect("reads do not allocate in the store")
        };
        let Some(done) = done else {
            out.truncate(mark);
            return Err(agg_err(failed.expect("a refused command says why")));
        };
        if cmd.writes() {
            self.counters.sets += 1;
        } else {
            self.counters.hits += 1;
        }
        self.payload = (self.payload as i64 + done.payload_delta) as u64;
        self.aggs.record(t, done.before, done.after);
        self.touch_access(done.handle, now);
        if done.after.1 == 0 {
            // Redis deletes a key whose aggregate the command emptied.
            self.remove(done.handle);
        }
        Ok(done.reply)
    }

    fn agg_create(
        &mut self,
        key: &[u8],
        hash: u64,
        cmd: &AggCmd<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<Reply, CmdError> {
        let access = self.initial_access(now);
        let item = NewItem {
            key,
            hash,
            value: &[],
            flags: 0,
            exptime: 0,
            access,
            now,
        };
        let cfg = self.agg_config;
        let mut failed = None;
        let mark = out.len();
        let mut rng = std::mem::replace(&mut self.rng, Rng::new(0));
        let r = self.with_room(None, now, |a, l| {
            match l.agg_create(a, item, &cfg, cmd, &mut rng, out) {
                Ok(d) => Ok(Some(d)),
                Err(AggError::Alloc(e)) => Err(e),
                Err(e) => {
                    failed = Some(e);
                    Ok(None)
                }
            }
        });
        self.rng = rng;
        let Some(done): Option<AggDone<L::Handle>> = r? else {
            out.truncate(mark);
            return Err(agg_err(failed.expect("a refused command says why")));
        };
        self.list_add(done.handle);
        self.counters.sets += 1;
        self.payload += key.len() as u64 + done.payload_delta as u64;
        self.aggs.record(cmd.agg_type(), None, done.after);
        Ok(done.reply)
    }

    /// [`rewrite`](Self::rewrite) for an aggregate step, which also needs the store's
    /// generator and the reply buffer.
    fn rewrite_with(
        &mut self,
        h: L::Handle,
        now: u64,
        out: &mut Vec<u8>,
        mut step: impl FnMut(
            &mut A,
            &mut L,
            &mut Rng,
            &mut Vec<u8>,
        ) -> Result<Option<AggDone<L::Handle>>, AllocError>,
    ) -> Result<Option<AggDone<L::Handle>>, CmdError> {
        self.list_remove(h);
        let mut rng = std::mem::replace(&mut self.rng, Rng::new(0));
        let r = self.with_room(Some(h), now, |a, l| step(a, l, &mut rng, out));
        self.rng = rng;
        let back = match &r {
            Ok(Some(d)) => d.handle,
            _ => h,
        };
        self.list_add(back);
        r
    }

    /// Requested and allocated bytes of every aggregate key, by type and encoding: every
    /// allocation the key holds (its entry, key and object too, where the layout has them).
    /// Walks the whole store.
    pub fn agg_bytes(&self) -> BTreeMap<(AggType, Encoding), (u64, u64)> {
        let mut out: BTreeMap<(AggType, Encoding), (u64, u64)> = BTreeMap::new();
        if self.aggs.is_empty() {
            return out;
        }
        for h in self.layout.handles() {
            let Some(t) = self.layout.agg_type(&self.alloc, h) else {
                continue;
            };
            let (enc, _) = self.layout.agg_shape(&self.alloc, h);
            let e = out.entry((t, enc)).or_default();
            self.layout.blocks(&self.alloc, h, &mut |start, size| {
                e.0 += size as u64;
                let usable = match NonNull::new(start as *mut u8) {
                    // SAFETY: `blocks` names live blocks of this allocator with the sizes
                    // they were requested with.
                    Some(p) => unsafe { self.alloc.usable_size_of(p, size) },
                    None => size,
                };
                e.1 += usable as u64;
            });
        }
        out
    }

    /// Bytes a live key holds in the allocator: every block it owns (entry, key, object,
    /// encoding) at the allocator's usable size, as Redis's `MEMORY USAGE` counts it.
    /// `None` for a missing key (does not count as an access).
    pub fn key_memory(&mut self, key: &[u8], now: u64) -> Option<u64> {
        let h = self.lookup(key, hash_key(key), now)?;
        let mut total = 0u64;
        self.layout.blocks(&self.alloc, h, &mut |start, size| {
            let usable = match NonNull::new(start as *mut u8) {
                // SAFETY: `blocks` names live blocks of this allocator with the sizes they
                // were requested with.
                Some(p) => unsafe { self.alloc.usable_size_of(p, size) },
                None => size,
            };
            total += usable as u64;
        });
        Some(total)
    }

    /// The type and shape of key `h`, if it holds an aggregate.
    pub(super) fn agg_held(&self, h: L::Handle) -> Option<(AggType, (Encoding, usize))> {
        if self.aggs.is_empty() {
            return None;
        }
        let t = self.layout.agg_type(&self.alloc, h)?;
        Some((t, self.layout.agg_shape(&self.alloc, h)))
    }

    /// Takes an aggregate that is gone (removed, or overwritten by a string) off the book.
    pub(super) fn agg_unbook(&mut self, held: Option<(AggType, (Encoding, usize))>) {
        if let Some((t, shape)) = held {
            self.aggs.sub(t, shape);
        }
    }

    /// Books the removal of key `h` if it holds an aggregate.
    pub(super) fn agg_forget(&mut self, h: L::Handle) {
        let held = self.agg_held(h);
        self.agg_unbook(held);
    }
}

fn agg_err(e: AggError) -> CmdError {
    match e {
        AggError::Alloc(AllocError::TooLarge { size, max }) => {
            CmdError::ValueTooLarge { len: size, max }
        }
        AggError::Alloc(AllocError::OutOfMemory { .. }) => CmdError::OutOfMemory,
        AggError::NotAnInteger => CmdError::NotAnInteger,
        AggError::Overflow => CmdError::Overflow,
        AggError::NotANumber => CmdError::NotANumber,
    }
}
