//! Saving every key to a snapshot file and putting the records back
//! ([`crate::snapshot`] has the format).

use std::io;

use fraglab_allocators::Allocator;

use super::Store;
use crate::agg::AggCmd;
use crate::layout::Layout;
use crate::snapshot::{Record, Value};
use crate::util::hash_key;
use crate::CmdError;

/// What [`Store::dump`] hands each live key to: `(key, flags, exptime, value)`, returning
/// `Ok(false)` to stop the walk.
pub type DumpEmit<'a> = dyn FnMut(&[u8], u32, u32, &Value) -> io::Result<bool> + 'a;

impl<A: Allocator, L: Layout> Store<A, L> {
    /// Hands every key live at `now` (expired keys are skipped, as Redis's `rdbSaveRio`
    /// does) to `emit(key, flags, exptime, value)`, in the index's order, until `emit`
    /// returns `Ok(false)` (Ctrl-C; the result is then `Ok(false)`) or an error. A snapshot
    /// file's [`Writer::record`](crate::snapshot::Writer::record) is one such `emit`; an
    /// AOF rewrite's command writer another.
    ///
    /// It reads and changes nothing the replay could see: no access time, list link or
    /// counter moves. The walk itself allocates nothing (each aggregate's elements are read
    /// into a buffer of their own), so a forked child saving the store copies few pages of
    /// its own.
    pub fn dump(&mut self, now: u64, emit: &mut DumpEmit<'_>) -> io::Result<bool> {
        let Store {
            layout,
            alloc,
            agg_config,
            ..
        } = self;
        let mut key = Vec::with_capacity(256);
        let mut value = Value::Str(Vec::with_capacity(4096));
        let mut failed = None;
        let mut stopped = false;
        layout.for_each_handle(&mut |h| {
            let exptime = layout.exptime(alloc, h);
            let expired = exptime != 0
                && if L::KIND.redis_semantics() {
                    now > u64::from(exptime)
                } else {
                    u64::from(exptime) <= now
                };
            if expired {
                return true;
            }
            key.clear();
            layout.read_key(alloc, h, &mut key);
            match layout.agg_type(alloc, h) {
                None => {
                    if !matches!(value, Value::Str(_)) {
                        value = Value::Str(Vec::new());
                    }
                    if let Value::Str(v) = &mut value {
                        v.clear();
                        layout.read_value(alloc, h, v);
                    }
                }
                Some(_) => value = Value::Agg(layout.agg_elements(alloc, h, agg_config)),
            }
            let flags = layout.flags(alloc, h);
            match emit(&key, flags, exptime, &value) {
                Ok(true) => {}
                Ok(false) => {
                    stopped = true;
                    return false;
                }
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            }
            true
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(!stopped),
        }
    }

    /// Puts a snapshot's record back at `now`: the key is replaced, with its value, flags
    /// and expiry; a record already expired at `now` is skipped (`Ok(false)`), as Redis's
    /// loading does.
    pub fn restore(&mut self, rec: &Record, now: u64) -> Result<bool, CmdError> {
        let expired = rec.exptime != 0
            && if L::KIND.redis_semantics() {
                now > u64::from(rec.exptime)
            } else {
                u64::from(rec.exptime) <= now
            };
        if expired {
            return Ok(false);
        }
        self.delete(&rec.key, now);
        match &rec.value {
            Value::Str(v) => {
                self.check_key(&rec.key)?;
                self.check_value(&rec.key, v.len(), rec.flags)?;
                let hash = hash_key(&rec.key);
                self.insert(&rec.key, hash, v, rec.flags, rec.exptime, now)?;
                return Ok(true);
            }
            Value::Agg(data) => {
                use crate::agg::model::AggData;
                let mut out = Vec::new();
                let mut run = |s: &mut Self, cmd: AggCmd<'_>| {
                    out.clear();
                    s.agg(&rec.key, &cmd, now, &mut out).map(|_| ())
                };
                match data {
                    AggData::Hash(h) => {
                        for (field, value) in h {
                            run(self, AggCmd::HSet { field, value })?;
                        }
                    }
                    AggData::Set(m) => {
                        for member in m {
                            run(self, AggCmd::SAdd { member })?;
                        }
                    }
                    AggData::List(l) => {
                        for elem in l {
                            run(self, AggCmd::RPush { elem })?;
                        }
                    }
                    AggData::Zset(z) => {
                        for (score, member) in z {
                            let score = *score;
                            run(self, AggCmd::ZAdd { member, score })?;
                        }
                    }
                }
            }
        }
        if rec.exptime != 0 {
            let h = self
                .lookup(&rec.key, hash_key(&rec.key), now)
                .expect("the key just restored");
            let exptime = rec.exptime;
            self.with_room(Some(h), now, |a, l| l.set_exptime(a, h, exptime))?;
        }
        Ok(true)
    }
}
