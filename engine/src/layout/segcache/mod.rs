//! Segcache's layout (Yang, Yue and Rashmi, "Segcache: a memory-efficient and scalable
//! in-memory key-value cache for small objects", NSDI 2021): items appended to segments, a
//! bucketed hash table of 8-byte slots, segments chained per TTL bucket, and eviction by
//! merging segments.
//!
//! Each item is a 5-byte header, then the key and value, 8-byte aligned:
//!
//! ```text
//! offset  size  field
//!      0     1  key length
//!      1     3  value length (values are at most 16 MiB - 1)
//!      4     1  flags: 1 = client flags follow, 2 = an expiry time follows, 128 = deleted
//!      5    (4) client flags, only when non-zero
//!      .    (4) expiry time in logical seconds, only for an item written with a TTL
//!      .     K  key
//!      .     V  value
//!      .        padding to a multiple of 8
//! ```
//!
//! Metadata per item: the 5-byte header (Segcache's "5 bytes per object") and one 8-byte slot
//! of the hash table ([`table`]): 13 bytes, plus the padding and the table's empty slots
//! (`index_bytes` counts the whole table). Segcache keeps expiry per segment; here an item
//! written with a TTL carries its exact 4-byte expiry time, so expiry is exact (an item
//! without a TTL pays nothing; a TTL set later on such an item is kept beside the table and
//! counted in `index_bytes`).
//!
//! **Segments** ([`segments`]) are blocks of one size taken from the allocator: at most 1 MiB
//! (Segcache's default), cut so that a whole number of them fills the allocator's largest
//! contiguous block ([`segment_size`]). Over `--alloc
//! log:segment=1m` one segment is one log segment less its 4-byte entry header; the log's
//! cleaner may move a segment, and the table, which holds segment ids and offsets rather than
//! addresses, follows by updating one pointer. An item goes to the segment being appended in
//! its TTL bucket; an update writes a new item and marks the old one deleted; a segment whose
//! items are all deleted goes back to the allocator.
//!
//! **Eviction** (when the allocator refuses a segment; whatever the eviction policy, except
//! that `noeviction` refuses the write): merge 4 segments of the next TTL bucket (round robin),
//! from where that bucket's last merge stopped (oldest first, wrapping round the chain): keep the most frequently read live items, as many as fill one segment (an
//! item not read since it was written or last kept is never kept), compacted into the first of
//! them; evict the rest, and expired items; give the other segments back. The frequency is the slot's 8-bit counter: +1 per
//! read up to 16, then +1 with probability 1/frequency (saturating at 255); a kept item's
//! counter is halved, so old popularity fades.
//!
//! **Proactive expiry** ([`Layout::expired_segments`], the store's `ActiveExpire::Segments`,
//! run once per second of logical time by `fraglab run` and every 100 ms by `fraglab serve`):
//! each segment remembers the latest expiry of what was written to it (and whether anything had
//! no TTL); walking each TTL bucket's chain from its oldest segment, every segment whose items
//! have all expired is dropped whole, and the walk stops at the first that has not. A TOUCH
//! that extends a key's TTL extends its segment's.

mod segments;
mod table;

use std::collections::HashMap;
use std::ptr::NonNull;

use fraglab_allocators::{AllocError, Allocator};

use super::{Layout, LayoutKind, LayoutOptions, NewItem};
use crate::util::{hash_key, read_at, write_at, Rng};
use segments::{ttl_bucket, Segments};
pub use table::Loc;
use table::Table;

/// The item header.
pub const HEADER: usize = 5;
/// The largest value the 3-byte length holds.
pub const MAX_VALUE: usize = (1 << 24) - 1;
/// The largest segment (Segcache's default; offsets in 8-byte units fit 20 bits up to 8 MiB).
pub const SEGMENT_MAX: usize = 1 << 20;
/// Segments merged by one eviction.
pub const MERGE: usize = 4;
const F_CFLAGS: u8 = 1;
const F_EXPIRY: u8 = 2;
const F_DELETED: u8 = 128;

/// The segment size over an allocator whose largest contiguous block is `max`: at most
/// [`SEGMENT_MAX`], and a whole number of segments (with the log's 4-byte entry header, the
/// allocator's own overhead per block) to the allocator's largest block, so that a log's
/// segment holds its segments without a wasted end.
pub fn segment_size(max: usize) -> usize {
    const ENTRY: usize = 4;
    if max < SEGMENT_MAX {
        return max / 8 * 8;
    }
    if max > 1 << 40 {
        return SEGMENT_MAX;
    }
    let k = (max + ENTRY).div_ceil(SEGMENT_MAX);
    ((max + ENTRY) / k - ENTRY) / 8 * 8
}

/// One item's shape.
#[derive(Debug, Clone, Copy)]
struct Shape {
    klen: usize,
    vlen: usize,
    flags: u8,
}

impl Shape {
    fn extras(self) -> usize {
        (if self.flags & F_CFLAGS != 0 { 4 } else { 0 })
            + if self.flags & F_EXPIRY != 0 { 4 } else { 0 }
    }
    fn key_at(self) -> usize {
        HEADER + self.extras()
    }
    fn size(self) -> usize {
        (self.key_at() + self.klen + self.vlen).next_multiple_of(8)
    }
}

/// # Safety
/// `item` points at an item header in a live segment.
unsafe fn shape(item: NonNull<u8>) -> Shape {
    // SAFETY: the caller's contract: the 5 header bytes are in the segment.
    unsafe {
        Shape {
            klen: read_at::<u8>(item, 0) as usize,
            vlen: (read_at::<u32>(item, 0) >> 8) as usize,
            flags: read_at::<u8>(item, 4),
        }
    }
}

/// The Segcache layout. See the [module docs](self).
#[derive(Debug)]
pub struct Segcache {
    table: Table,
    segs: Segments,
    seg_size: usize,
    /// The segments of a merge in progress, and the items it keeps (in segment order).
    merging: Vec<u32>,
    retained: Vec<Loc>,
    /// Expiry times set after the item was written (it has no field for one).
    late_expiry: HashMap<Loc, u32>,
    rng: Rng,
    /// The latest time the store gave (an insert's, an eviction's, an expiry pass's).
    clock: u64,
    /// The slot `find` last returned (checked before use: the table may have changed since).
    last: std::cell::Cell<Option<table::Pos>>,
}

fn addr(segs: &Segments, loc: Loc) -> NonNull<u8> {
    // SAFETY: an offset inside the segment's block.
    unsafe { segs.get(loc.seg).base.add(loc.off as usize * 8) }
}

fn key_of(segs: &Segments, loc: Loc) -> &[u8] {
    let item = addr(segs, loc);
    // SAFETY: a live item; its key lies inside it.
    unsafe {
        let s = shape(item);
        std::slice::from_raw_parts(item.as_ptr().add(s.key_at()), s.klen)
    }
}

impl Segcache {
    fn item(&self, h: Loc) -> NonNull<u8> {
        addr(&self.segs, h)
    }

    fn shape(&self, h: Loc) -> Shape {
        // SAFETY: handles are live items.
        unsafe { shape(self.item(h)) }
    }

    /// The slot of a live item: the one `find` last returned when it still holds the item (a
    /// read's access update needs no second lookup), else found by the key's hash.
    fn slot(&self, h: Loc) -> table::Pos {
        if let Some(p) = self.last.get().filter(|&p| self.table.holds(p, h)) {
            return p;
        }
        let hash = hash_key(key_of(&self.segs, h));
        self.table
            .find_loc(hash, h)
            .expect("a live item has a slot")
    }

    /// Segments held.
    pub fn segments(&self) -> usize {
        self.segs.count()
    }

    /// The segment size (0 before the first item).
    pub fn segment_size(&self) -> usize {
        self.seg_size
    }

    /// Appends `size` bytes in `bucket`'s newest segment, taking a new one when it is full.
    fn append<A: Allocator>(
        &mut self,
        a: &mut A,
        bucket: usize,
        size: usize,
    ) -> Result<Loc, AllocError> {
        if self.seg_size == 0 {
            self.seg_size = segment_size(a.max_contiguous());
        }
        if size > self.seg_size {
            return Err(AllocError::TooLarge {
                size,
                max: self.seg_size,
            });
        }
        let room = |s: &Segcache, id: u32| s.segs.get(id).cursor + size <= s.seg_size;
        let id = match self.segs.chains[bucket].last {
            Some(id) if room(self, id) => id,
            // A newest segment whose items are all gone is written again from its start.
            Some(id) if self.segs.get(id).live == 0 && !self.merging.contains(&id) => {
                self.segs.reset(id);
                id
            }
            _ => {
                let block = a.alloc(self.seg_size)?;
                self.segs.push(block.ptr, bucket)
            }
        };
        let seg = self.segs.get_mut(id);
        let off = seg.cursor;
        seg.cursor += size;
        seg.live += 1;
        seg.live_bytes += size;
        Ok(Loc {
            seg: id,
            off: (off / 8) as u32,
        })
    }

    /// Writes a new item in TTL bucket `bucket`; returns where.
    fn write<A: Allocator>(
        &mut self,
        a: &mut A,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        bucket: usize,
    ) -> Result<Loc, AllocError> {
        let s = Shape {
            klen: key.len(),
            vlen: value.len(),
            flags: (if flags != 0 { F_CFLAGS } else { 0 })
                | (if exptime != 0 { F_EXPIRY } else { 0 }),
        };
        let loc = self.append(a, bucket, s.size())?;
        self.segs.note_expiry(loc.seg, exptime);
        let item = self.item(loc);
        // SAFETY: `append` reserved `s.size()` bytes at `item` in a live segment.
        unsafe {
            write_at::<u32>(item, 0, (value.len() as u32) << 8 | key.len() as u32);
            write_at::<u8>(item, 4, s.flags);
            let mut at = HEADER;
            if flags != 0 {
                write_at::<u32>(item, at, flags);
                at += 4;
            }
            if exptime != 0 {
                write_at::<u32>(item, at, exptime);
            }
            let k = item.as_ptr().add(s.key_at());
            std::ptr::copy_nonoverlapping(key.as_ptr(), k, key.len());
            std::ptr::copy_nonoverlapping(value.as_ptr(), k.add(key.len()), value.len());
        }
        Ok(loc)
    }

    /// Marks an item deleted; gives its segment back when nothing in it lives any more (unless
    /// it is being appended to or merged).
    fn mark_deleted<A: Allocator>(&mut self, a: &mut A, h: Loc) {
        let s = self.shape(h);
        // SAFETY: a live item's header.
        unsafe { write_at::<u8>(self.item(h), 4, s.flags | F_DELETED) };
        self.late_expiry.remove(&h);
        let seg = self.segs.get_mut(h.seg);
        seg.live -= 1;
        seg.live_bytes -= s.size();
        let (empty, bucket) = (seg.live == 0, seg.bucket as usize);
        if empty && self.segs.chains[bucket].last != Some(h.seg) && !self.merging.contains(&h.seg) {
            self.free_segment(a, h.seg);
        }
    }

    fn free_segment<A: Allocator>(&mut self, a: &mut A, id: u32) {
        let base = self.segs.unlink(id);
        // SAFETY: `base` is a block of `seg_size` bytes from `a`, with nothing live in it.
        unsafe { a.free(base, self.seg_size) };
    }

    /// The live items of segment `id`, in order.
    fn live_items(&self, id: u32) -> Vec<Loc> {
        let seg = self.segs.get(id);
        let mut out = Vec::new();
        let mut at = 0;
        while at < seg.cursor {
            // SAFETY: every byte up to the cursor belongs to an item written by `write`.
            let s = unsafe { shape(seg.base.add(at)) };
            if s.flags & F_DELETED == 0 {
                out.push(Loc {
                    seg: id,
                    off: (at / 8) as u32,
                });
            }
            at += s.size();
        }
        out
    }
}

mod evict;
#[cfg(test)]
mod tests;

impl Layout for Segcache {
    const KIND: LayoutKind = LayoutKind::Segcache;
    type Handle = Loc;
    const FOLLOWS_MOVES: bool = true;
    const HAS_LINKS: bool = false;
    const EVICTS_SEGMENTS: bool = true;

    fn new(_opts: LayoutOptions) -> Self {
        Segcache {
            table: Table::default(),
            segs: Segments::default(),
            seg_size: 0,
            merging: Vec::new(),
            retained: Vec::new(),
            late_expiry: HashMap::new(),
            rng: Rng::new(0x5E6C_AC4E),
            clock: 0,
            last: std::cell::Cell::new(None),
        }
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn index_bytes(&self) -> u64 {
        let segs = self.segs.segs.len() * std::mem::size_of::<Option<segments::Segment>>();
        self.table.bytes() + segs as u64 + self.late_expiry.len() as u64 * 16
    }

    fn find<A: Allocator>(&mut self, _a: &mut A, key: &[u8], hash: u64) -> Option<Loc> {
        let segs = &self.segs;
        let p = self.table.find(hash, |l| key_of(segs, l) == key)?;
        self.last.set(Some(p));
        Some(self.table.loc(p))
    }

    fn insert<A: Allocator>(&mut self, a: &mut A, it: NewItem<'_>) -> Result<Loc, AllocError> {
        let ttl = if it.exptime == 0 {
            0
        } else {
            u64::from(it.exptime).saturating_sub(it.now).max(1)
        };
        let bucket = ttl_bucket(ttl);
        self.clock = self.clock.max(it.now);
        let loc = self.write(a, it.key, it.value, it.flags, it.exptime, bucket)?;
        let segs = &self.segs;
        self.table
            .insert(it.hash, loc, &|l| hash_key(key_of(segs, l)));
        Ok(loc)
    }

    fn update<A: Allocator>(
        &mut self,
        a: &mut A,
        h: Loc,
        value: &[u8],
        flags: u32,
    ) -> Result<Loc, AllocError> {
        let key = key_of(&self.segs, h).to_vec();
        let exptime = self.exptime(a, h);
        // An update keeps its TTL bucket, but for a key that gains or loses a TTL (the store
        // sets the new expiry first): it goes to the no-TTL bucket, or to the bucket of the TTL
        // left at the last time the layout saw.
        let old = usize::from(self.segs.get(h.seg).bucket);
        let bucket = match (exptime, old == segments::TTL_BUCKETS - 1) {
            (0, _) => segments::TTL_BUCKETS - 1,
            (e, true) => ttl_bucket(u64::from(e).saturating_sub(self.clock).max(1)),
            _ => old,
        };
        let p = self.slot(h);
        let loc = self.write(a, &key, value, flags, exptime, bucket)?;
        // The new item carries the expiry in its own field.
        self.table.set_loc(p, loc);
        self.mark_deleted(a, h);
        Ok(loc)
    }

    fn overwrite<A: Allocator>(&mut self, _a: &mut A, h: Loc, value: &[u8]) {
        let s = self.shape(h);
        debug_assert_eq!(s.vlen, value.len());
        // SAFETY: the value's bytes are inside the live item.
        unsafe {
            let v = self.item(h).as_ptr().add(s.key_at() + s.klen);
            std::ptr::copy_nonoverlapping(value.as_ptr(), v, value.len());
        }
    }

    fn remove<A: Allocator>(&mut self, a: &mut A, h: Loc) {
        let p = self.slot(h);
        self.table.remove(p);
        self.mark_deleted(a, h);
    }

    fn read_value<A: Allocator>(&self, _a: &A, h: Loc, out: &mut Vec<u8>) {
        let s = self.shape(h);
        // SAFETY: the value lies inside the live item.
        let v = unsafe {
            std::slice::from_raw_parts(self.item(h).as_ptr().add(s.key_at() + s.klen), s.vlen)
        };
        out.extend_from_slice(v);
    }

    fn value_len<A: Allocator>(&self, _a: &A, h: Loc) -> usize {
        self.shape(h).vlen
    }

    fn key_len(&self, h: Loc) -> usize {
        self.shape(h).klen
    }

    fn read_key<A: Allocator>(&self, _a: &A, h: Loc, out: &mut Vec<u8>) {
        out.extend_from_slice(key_of(&self.segs, h));
    }

    fn flags<A: Allocator>(&self, _a: &A, h: Loc) -> u32 {
        let s = self.shape(h);
        if s.flags & F_CFLAGS == 0 {
            return 0;
        }
        // SAFETY: the client flags follow the header.
        unsafe { read_at::<u32>(self.item(h), HEADER) }
    }

    fn exptime<A: Allocator>(&self, _a: &A, h: Loc) -> u32 {
        let s = self.shape(h);
        if s.flags & F_EXPIRY == 0 {
            return self.late_expiry.get(&h).copied().unwrap_or(0);
        }
        let at = HEADER + if s.flags & F_CFLAGS != 0 { 4 } else { 0 };
        // SAFETY: the expiry field is inside the item's header extras.
        unsafe { read_at::<u32>(self.item(h), at) }
    }

    fn set_exptime<A: Allocator>(
        &mut self,
        _a: &mut A,
        h: Loc,
        exptime: u32,
    ) -> Result<(), AllocError> {
        let s = self.shape(h);
        // A later expiry keeps the whole segment from expiring before the item.
        self.segs.note_expiry(h.seg, exptime);
        if s.flags & F_EXPIRY != 0 {
            let at = HEADER + if s.flags & F_CFLAGS != 0 { 4 } else { 0 };
            // SAFETY: as in `exptime`.
            unsafe { write_at::<u32>(self.item(h), at, exptime) };
        } else if exptime == 0 {
            self.late_expiry.remove(&h);
        } else {
            self.late_expiry.insert(h, exptime);
        }
        Ok(())
    }

    fn access(&self, h: Loc) -> u32 {
        u32::from(self.table.freq(self.slot(h)))
    }

    /// A read: counts one more access in the slot's frequency counter (the value the store
    /// computes for its own policies is not used).
    fn set_access(&mut self, h: Loc, _access: u32) {
        let p = self.slot(h);
        let f = self.table.freq(p);
        if f < 16 || (f < 255 && self.rng.below(usize::from(f)) == 0) {
            self.table.set_freq(p, f + 1);
        }
    }

    fn links(&self, _h: Loc) -> Option<NonNull<u8>> {
        None
    }

    fn handle_at_links(&self, _links: NonNull<u8>) -> Loc {
        unreachable!("the segcache layout keeps no list links")
    }

    fn alloc_size<A: Allocator>(&self, _a: &A, h: Loc) -> usize {
        self.shape(h).size()
    }

    fn random<A: Allocator>(&mut self, a: &A, rng: &mut Rng, volatile: bool) -> Option<Loc> {
        for _ in 0..if volatile { 64 } else { 1 } {
            let loc = self.table.sample(rng.below(usize::MAX))?;
            if !volatile || self.exptime(a, loc) != 0 {
                return Some(loc);
            }
        }
        None
    }

    fn handles(&self) -> Vec<Loc> {
        self.table.locs().collect()
    }

    fn for_each_handle(&self, f: &mut dyn FnMut(Loc) -> bool) {
        for h in self.table.locs() {
            if !f(h) {
                return;
            }
        }
    }

    fn blocks<A: Allocator>(&self, _a: &A, h: Loc, f: &mut dyn FnMut(usize, usize)) {
        f(self.item(h).as_ptr() as usize, self.shape(h).size())
    }

    fn release<A: Allocator>(&mut self, a: &mut A) {
        let ids: Vec<u32> = (0..self.segs.segs.len() as u32)
            .filter(|&i| self.segs.segs[i as usize].is_some())
            .collect();
        for id in ids {
            self.free_segment(a, id);
        }
    }

    fn relocated(&mut self, from: NonNull<u8>, to: NonNull<u8>) -> (Loc, Loc) {
        let id = self
            .segs
            .by_base(from)
            .expect("the allocator moved a block that is a segment");
        self.segs.get_mut(id).base = to;
        let h = Loc { seg: id, off: 0 };
        (h, h)
    }

    fn expired_segments<A: Allocator>(&mut self, _a: &A, now: u64) -> Vec<Loc> {
        self.clock = self.clock.max(now);
        let mut out = Vec::new();
        for b in 0..self.segs.chains.len() {
            let mut cur = self.segs.chains[b].first;
            while let Some(id) = cur {
                if !self.segs.expired(id, now) {
                    break;
                }
                out.extend(self.live_items(id));
                cur = self.segs.get(id).newer;
            }
        }
        out
    }

    fn evict_begin<A: Allocator>(
        &mut self,
        a: &mut A,
        protect: Option<Loc>,
        now: u64,
    ) -> Option<Vec<Loc>> {
        self.merge_begin(a, protect, now)
    }

    fn evict_finish<A: Allocator>(&mut self, a: &mut A) -> bool {
        self.merge_finish(a)
    }
}
