//! Segcache's hash table: buckets of eight 8-byte slots (64 bytes, one cache line), the first
//! slot of each bucket holding the bucket's info (here: the index of the overflow bucket
//! chained to it when its seven item slots are full), the others one item each:
//!
//! ```text
//! item slot (64 bits):  | tag: 12 | frequency: 8 | segment id: 24 | offset / 8: 20 |
//! ```
//!
//! The tag is 12 bits of the key's hash (never 0, so an empty slot is 0); a lookup compares
//! tags first and reads the item (its key) only on a tag match. The table doubles when the
//! items pass six per primary bucket, rehashing each item's key from segment memory.

const MIN_BUCKETS: usize = 64;

/// Where an item is: its segment and its offset in 8-byte units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    /// Segment id (24 bits).
    pub seg: u32,
    /// Offset in 8-byte units (20 bits).
    pub off: u32,
}

#[inline]
fn tag(hash: u64) -> u64 {
    ((hash >> 52) & 0xFFF).max(1)
}

#[inline]
fn pack(tag: u64, freq: u8, loc: Loc) -> u64 {
    debug_assert!(
        loc.seg < 1 << 24 && loc.off < 1 << 20,
        "{loc:?} does not fit a slot"
    );
    tag << 52 | u64::from(freq) << 44 | u64::from(loc.seg) << 20 | u64::from(loc.off)
}

#[inline]
fn loc_of(slot: u64) -> Loc {
    Loc {
        seg: ((slot >> 20) & 0xFF_FFFF) as u32,
        off: (slot & 0xF_FFFF) as u32,
    }
}

/// The table.
#[derive(Debug)]
pub struct Table {
    buckets: Vec<[u64; 8]>,
    primary: usize,
    items: usize,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            buckets: vec![[0; 8]; MIN_BUCKETS],
            primary: MIN_BUCKETS,
            items: 0,
        }
    }
}

/// A slot's position: bucket and slot index.
pub type Pos = (usize, usize);

impl Table {
    /// Items stored.
    pub fn len(&self) -> usize {
        self.items
    }

    /// Bytes of buckets (primary and overflow).
    pub fn bytes(&self) -> u64 {
        (self.buckets.len() * 64) as u64
    }

    /// The buckets of `hash`'s chain, in order.
    fn chain(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let mut b = Some(hash as usize & (self.primary - 1));
        std::iter::from_fn(move || {
            let cur = b?;
            let next = self.buckets[cur][0] as usize;
            b = (next != 0).then_some(next);
            Some(cur)
        })
    }

    /// The slot of the item with this hash whose location `is_key` accepts.
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(Loc) -> bool) -> Option<Pos> {
        let t = tag(hash);
        for b in self.chain(hash) {
            for s in 1..8 {
                let v = self.buckets[b][s];
                if v != 0 && v >> 52 == t && is_key(loc_of(v)) {
                    return Some((b, s));
                }
            }
        }
        None
    }

    /// The slot that holds exactly `loc` for this hash.
    pub fn find_loc(&self, hash: u64, loc: Loc) -> Option<Pos> {
        self.find(hash, |l| l == loc)
    }

    /// Whether slot `p` exists and holds `loc`.
    pub fn holds(&self, p: Pos, loc: Loc) -> bool {
        self.buckets
            .get(p.0)
            .is_some_and(|b| p.1 > 0 && p.1 < 8 && b[p.1] != 0 && loc_of(b[p.1]) == loc)
    }

    /// The location in a slot.
    pub fn loc(&self, p: Pos) -> Loc {
        loc_of(self.buckets[p.0][p.1])
    }

    /// The frequency counter in a slot.
    pub fn freq(&self, p: Pos) -> u8 {
        (self.buckets[p.0][p.1] >> 44) as u8
    }

    /// Sets a slot's frequency counter.
    pub fn set_freq(&mut self, p: Pos, freq: u8) {
        let v = &mut self.buckets[p.0][p.1];
        *v = (*v & !(0xFF << 44)) | u64::from(freq) << 44;
    }

    /// Points a slot at a new location (keeping tag and frequency).
    pub fn set_loc(&mut self, p: Pos, loc: Loc) {
        let v = &mut self.buckets[p.0][p.1];
        *v = pack(*v >> 52, (*v >> 44) as u8, loc);
    }

    /// Empties a slot.
    pub fn remove(&mut self, p: Pos) {
        debug_assert_ne!(self.buckets[p.0][p.1], 0);
        self.buckets[p.0][p.1] = 0;
        self.items -= 1;
    }

    /// Adds an item (not present); `hash_of` gives the hash of a stored item, for a resize.
    pub fn insert(&mut self, hash: u64, loc: Loc, hash_of: &impl Fn(Loc) -> u64) {
        if self.items + 1 > self.primary * 6 {
            self.resize(self.primary * 2, hash_of);
        }
        self.place(pack(tag(hash), 0, loc), hash);
        self.items += 1;
    }

    fn place(&mut self, slot: u64, hash: u64) {
        let mut last = hash as usize & (self.primary - 1);
        let chain: Vec<usize> = self.chain(hash).collect();
        for b in chain {
            last = b;
            if let Some(s) = (1..8).find(|&s| self.buckets[b][s] == 0) {
                self.buckets[b][s] = slot;
                return;
            }
        }
        let overflow = self.buckets.len();
        self.buckets.push([0; 8]);
        self.buckets[last][0] = overflow as u64;
        self.buckets[overflow][1] = slot;
    }

    fn resize(&mut self, primary: usize, hash_of: &impl Fn(Loc) -> u64) {
        let old = std::mem::replace(&mut self.buckets, vec![[0; 8]; primary]);
        self.primary = primary;
        for bucket in old {
            for &v in &bucket[1..] {
                if v != 0 {
                    self.place(v, hash_of(loc_of(v)));
                }
            }
        }
    }

    /// Every occupied slot's location, bucket by bucket.
    pub fn locs(&self) -> impl Iterator<Item = Loc> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b[1..].iter().copied())
            .filter(|&v| v != 0)
            .map(loc_of)
    }

    /// The items of a bucket drawn at `pick` (a random number), or of the next non-empty
    /// bucket; `None` when the table is empty.
    pub fn sample(&self, pick: usize) -> Option<Loc> {
        if self.items == 0 {
            return None;
        }
        let n = self.buckets.len();
        (0..n).find_map(|i| {
            let b = &self.buckets[(pick % n + i) % n];
            let full: Vec<u64> = b[1..].iter().copied().filter(|&v| v != 0).collect();
            (!full.is_empty()).then(|| loc_of(full[(pick / n) % full.len()]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_fill_the_allocators_largest_block() {
        use super::super::segment_size;
        // The log's 8 MiB segment (less its entry header) holds eight, its 1 MiB one one.
        assert_eq!(segment_size((8 << 20) - 4), (1 << 20) - 8);
        assert_eq!(segment_size((1 << 20) - 4), (1 << 20) - 8);
        assert_eq!(segment_size((2 << 20) - 4), (1 << 20) - 8);
        assert!(8 * (segment_size((8 << 20) - 4) + 4) <= 8 << 20);
        // Without a largest block, Segcache's 1 MiB; the slab's 512 KiB chunks, 512 KiB.
        assert_eq!(segment_size(usize::MAX), 1 << 20);
        assert_eq!(segment_size(512 << 10), 512 << 10);
    }

    #[test]
    fn slots_pack_tag_frequency_segment_and_offset() {
        let loc = Loc {
            seg: 0xAB_CDEF,
            off: 0xF_1234,
        };
        let v = pack(0x5A5, 200, loc);
        assert_eq!(loc_of(v), loc);
        assert_eq!(v >> 52, 0x5A5);
        assert_eq!((v >> 44) as u8, 200);
    }

    #[test]
    fn full_buckets_chain_and_the_table_grows() {
        let mut t = Table::default();
        let hash = |l: Loc| u64::from(l.seg) << 40 | 5; // every key in bucket 5 at first
        for i in 0..2000 {
            let loc = Loc { seg: i, off: 0 };
            t.insert(hash(loc), loc, &hash);
        }
        assert_eq!(t.len(), 2000);
        for i in 0..2000 {
            let loc = Loc { seg: i, off: 0 };
            let p = t.find_loc(hash(loc), loc).expect("found");
            assert_eq!(t.loc(p), loc);
        }
        assert_eq!(t.locs().count(), 2000);
    }
}
