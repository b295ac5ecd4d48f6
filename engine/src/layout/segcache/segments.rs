//! Segcache's segments: fixed-size blocks taken from the allocator, each appended to by one
//! TTL bucket and chained in that bucket's list in creation order (oldest first), and the
//! merge that evicts.
//!
//! TTL buckets follow Segcache (pelikan's `ttlbucket.h`): 4 tiers of 256 buckets, 8, 128, 2048
//! and 32768 seconds wide; a TTL picks `ttl >> 3` under 2048 s, `256 + (ttl >> 7)` under
//! 32768 s, `512 + (ttl >> 11)` under 524288 s, else `768 + (ttl >> 15)` (at most 1023); an
//! item without a TTL goes to the last bucket.

use std::ptr::NonNull;

/// TTL buckets.
pub const TTL_BUCKETS: usize = 1024;

/// The bucket of a TTL in seconds (0: none).
pub fn ttl_bucket(ttl: u64) -> usize {
    let b = if ttl == 0 {
        TTL_BUCKETS - 1
    } else if ttl < 2048 {
        (ttl >> 3) as usize
    } else if ttl < 32_768 {
        256 + (ttl >> 7) as usize
    } else if ttl < 524_288 {
        512 + (ttl >> 11) as usize
    } else {
        768 + (ttl >> 15) as usize
    };
    b.min(TTL_BUCKETS - 1)
}

/// One segment.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// Where its memory is (the allocator's block; the log's cleaner may move it).
    pub base: NonNull<u8>,
    /// Bytes appended.
    pub cursor: usize,
    /// Live items.
    pub live: u32,
    /// Bytes of live items.
    pub live_bytes: usize,
    /// Its TTL bucket.
    pub bucket: u16,
    /// The latest expiry time of the items written to it (0 once one has no TTL: the segment
    /// never expires as a whole).
    pub expires: u32,
    /// Whether an item without a TTL was written to it.
    pub persistent: bool,
    /// The neighbours in its bucket's chain (older, newer).
    pub older: Option<u32>,
    pub newer: Option<u32>,
}

/// A TTL bucket: its chain of segments.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chain {
    /// The oldest segment.
    pub first: Option<u32>,
    /// The newest: the one being appended to.
    pub last: Option<u32>,
    /// Segments in the chain.
    pub len: u32,
    /// Where the next merge starts (the segment after the last merge), if still in the chain.
    pub resume: Option<u32>,
}

/// Every segment and every chain.
#[derive(Debug)]
pub struct Segments {
    pub segs: Vec<Option<Segment>>,
    free_ids: Vec<u32>,
    pub chains: Vec<Chain>,
    /// Where the next merge looks first (round robin over TTL buckets).
    pub next_bucket: usize,
}

impl Default for Segments {
    fn default() -> Self {
        Segments {
            segs: Vec::new(),
            free_ids: Vec::new(),
            chains: vec![Chain::default(); TTL_BUCKETS],
            next_bucket: 0,
        }
    }
}

impl Segments {
    /// Segment `id`.
    #[inline]
    pub fn get(&self, id: u32) -> &Segment {
        self.segs[id as usize]
            .as_ref()
            .expect("a location names a live segment")
    }

    /// Segment `id`, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: u32) -> &mut Segment {
        self.segs[id as usize]
            .as_mut()
            .expect("a location names a live segment")
    }

    /// Segments held.
    pub fn count(&self) -> usize {
        self.segs.iter().filter(|s| s.is_some()).count()
    }

    /// Adds a segment at `base` to the end of `bucket`'s chain; returns its id.
    pub fn push(&mut self, base: NonNull<u8>, bucket: usize) -> u32 {
        let chain = self.chains[bucket];
        let seg = Segment {
            base,
            cursor: 0,
            live: 0,
            live_bytes: 0,
            bucket: bucket as u16,
            expires: 0,
            persistent: false,
            older: chain.last,
            newer: None,
        };
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.segs[id as usize] = Some(seg);
                id
            }
            None => {
                self.segs.push(Some(seg));
                (self.segs.len() - 1) as u32
            }
        };
        if let Some(last) = chain.last {
            self.get_mut(last).newer = Some(id);
        }
        let c = &mut self.chains[bucket];
        c.last = Some(id);
        c.first = c.first.or(Some(id));
        c.len += 1;
        id
    }

    /// Takes segment `id` out of its chain and forgets it; returns its memory.
    pub fn unlink(&mut self, id: u32) -> NonNull<u8> {
        let s = self.segs[id as usize].take().expect("a live segment");
        match s.older {
            Some(o) => self.get_mut(o).newer = s.newer,
            None => self.chains[s.bucket as usize].first = s.newer,
        }
        match s.newer {
            Some(n) => self.get_mut(n).older = s.older,
            None => self.chains[s.bucket as usize].last = s.older,
        }
        self.chains[s.bucket as usize].len -= 1;
        self.free_ids.push(id);
        s.base
    }

    /// Empties segment `id` (nothing in it lives) to be written again from its start.
    pub fn reset(&mut self, id: u32) {
        let s = self.get_mut(id);
        debug_assert_eq!(s.live, 0);
        s.cursor = 0;
        s.live_bytes = 0;
        s.expires = 0;
        s.persistent = false;
    }

    /// Notes that an item of segment `id` expires at `exptime` (0: never).
    pub fn note_expiry(&mut self, id: u32, exptime: u32) {
        let s = self.get_mut(id);
        if exptime == 0 {
            s.persistent = true;
        } else {
            s.expires = s.expires.max(exptime);
        }
    }

    /// Whether every item ever written to segment `id` has expired at `now` (memcached's rule:
    /// `exptime <= now`).
    pub fn expired(&self, id: u32, now: u64) -> bool {
        let s = self.get(id);
        !s.persistent && s.expires != 0 && u64::from(s.expires) <= now
    }

    /// The segment whose memory starts at `base`.
    pub fn by_base(&self, base: NonNull<u8>) -> Option<u32> {
        self.segs
            .iter()
            .position(|s| s.is_some_and(|s| s.base == base))
            .map(|i| i as u32)
    }
}
