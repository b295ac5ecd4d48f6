//! The commands: GET, MGET, EXISTS, SET, ADD, REPLACE, APPEND, PREPEND, INCR/DECR, DELETE,
//! TOUCH/EXPIRE, TTL, FLUSH.

use fraglab_allocators::Allocator;

use super::{CmdError, SetOptions, Store, Ttl};
use crate::layout::{Layout, NewItem};
use crate::util::hash_key;

impl<A: Allocator, L: Layout> Store<A, L> {
    /// GET: appends the value to `out` and returns the flags, or `None` on a miss.
    pub fn get_into(&mut self, key: &[u8], now: u64, out: &mut Vec<u8>) -> Option<u32> {
        let hash = hash_key(key);
        match self.lookup(key, hash, now) {
            Some(h)
                if L::KIND.redis_semantics() && self.layout.agg_type(&self.alloc, h).is_some() =>
            {
                // GET of a hash is Redis's WRONGTYPE (the blob layouts read the blob, as a
                // memcached client does).
                self.aggs.wrong_type += 1;
                None
            }
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
                // A SET replaces an aggregate as it does a string (Redis's SET on any type).
                let was = self.agg_held(h);
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
                self.agg_unbook(was);
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

    pub(super) fn insert(
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
            now,
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
        self.check_string(h)?;
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
        if let Some(h) = found {
            self.check_string(h)?;
        }
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
}

impl<A: Allocator, L: Layout> Store<A, L> {
    /// Refuses a string command that reads or edits the value of an aggregate key.
    fn check_string(&mut self, h: L::Handle) -> Result<(), CmdError> {
        if self.layout.agg_type(&self.alloc, h).is_some() {
            self.aggs.wrong_type += 1;
            return Err(CmdError::WrongType);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Set,
    Add,
    Replace,
}
