//! Expiry: the expiry instant of a TTL, when a key counts as expired (memcached's and Redis's
//! rules differ at the instant itself), and the active expiry pass (Redis's sampling cycle or
//! memcached's LRU crawler).

use fraglab_allocators::Allocator;

use super::{ActiveExpire, Store, SAMPLES};
use crate::layout::Layout;

impl<A: Allocator, L: Layout> Store<A, L> {
    pub(super) fn exptime_for(now: u64, ttl: Option<i64>) -> u32 {
        match ttl {
            Some(t) if t > 0 => now.saturating_add(t as u64).min(u32::MAX as u64) as u32,
            _ => 0,
        }
    }

    pub(super) fn is_expired(&self, exptime: u32, now: u64) -> bool {
        // memcached: `exptime <= current_time`; Redis: `now > when`.
        exptime != 0
            && if L::KIND.redis_semantics() {
                now > u64::from(exptime)
            } else {
                u64::from(exptime) <= now
            }
    }

    /// The active expiry pass; returns the keys it expired.
    pub fn active_expire(&mut self, now: u64, mode: ActiveExpire) -> u64 {
        let mut expired = 0;
        match mode {
            ActiveExpire::Segments => {
                for h in self.layout.expired_segments(&self.alloc, now) {
                    self.remove(h);
                    expired += 1;
                }
            }
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
}
