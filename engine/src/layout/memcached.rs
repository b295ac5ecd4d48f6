//! memcached 1.6's item and hash table.
//!
//! One allocation per item, of exactly memcached's `ntotal`, so a slab allocator with
//! memcached's settings puts it in the class memcached would:
//!
//! ```text
//! offset  size  field (struct _stritem)
//!      0     8  next        LRU links (used by slab-lru, lru and fifo)
//!      8     8  prev
//!     16     8  h_next      hash chain
//!     24     4  time        last access (logical seconds)
//!     28     4  exptime     0: never
//!     32     4  nbytes      value length + 2 (the CRLF)
//!     36     2  refcount
//!     38     2  it_flags    ITEM_CAS, ITEM_CFLAGS
//!     40     1  slabs_clsid
//!     41     1  nkey
//!     42     6  (padding to the 8-aligned data[])
//!     48     8  CAS
//!     56  K + 1 key, NUL
//!      .     4  client flags, only when non-zero (ITEM_CFLAGS)
//!      .  V + 2 value, CRLF
//! ntotal = 48 + 8 + (K + 1) + (4 if flags) + (V + 2)
//! ```
//!
//! Items above the slab allocator's `chunk_max` are allocated with `alloc_item(ntotal, head)`,
//! `head` being everything before the value, so the header chunk holds the header and key and
//! the value goes to data chunks, as memcached stores large items.
//!
//! The index is memcached's `assoc`: a power-of-two array of item pointers chained through
//! `h_next`, starting at 2^16 buckets (`hashpower` 16) and doubled when the items exceed 1.5
//! times the buckets. memcached moves the items to the new array in a background thread; here
//! the move happens at once. The array is memory memcached mallocs outside its slabs, so it
//! counts as `index_bytes`.

use std::ptr::NonNull;

use fraglab_allocators::{read_block, write_block, AllocError, Allocator};

use super::{Layout, LayoutKind, LayoutOptions, NewItem, PrefetchStage};
use crate::util::{hash_key, prefetch, prefetch_bytes, read_at, to_raw, write_at, Rng};

/// `sizeof(item)`.
pub const ITEM_HEADER: usize = 48;
/// The CAS field (`settings.use_cas`, on by default).
pub const CAS: usize = 8;
const KEY: usize = ITEM_HEADER + CAS;
const H_NEXT: usize = 16;
const TIME: usize = 24;
const EXPTIME: usize = 28;
const NBYTES: usize = 32;
const REFCOUNT: usize = 36;
const IT_FLAGS: usize = 38;
const CLSID: usize = 40;
const NKEY: usize = 41;
/// Set while the item is in the hash table (`do_item_link`), cleared when it leaves it: a
/// restart takes exactly the chunks marked so.
const ITEM_LINKED: u16 = 1;
const ITEM_CAS: u16 = 2;
const ITEM_CFLAGS: u16 = 256;
/// memcached's initial `hashpower`.
pub const HASHPOWER_DEFAULT: u32 = 16;

/// memcached's item size for a key, a value and client flags.
pub fn ntotal(key_len: usize, value_len: usize, flags: u32) -> usize {
    KEY + key_len + 1 + if flags != 0 { 4 } else { 0 } + value_len + 2
}

/// The memcached layout. See the [module docs](self).
#[derive(Debug)]
pub struct Memcached {
    buckets: Vec<*mut u8>,
    items: usize,
    cas: u64,
}

#[derive(Clone, Copy)]
struct Shape {
    nkey: usize,
    nbytes: usize,
    has_flags: bool,
}

impl Shape {
    fn suffix(self) -> usize {
        if self.has_flags {
            4
        } else {
            0
        }
    }
    fn data(self) -> usize {
        KEY + self.nkey + 1 + self.suffix()
    }
    fn ntotal(self) -> usize {
        self.data() + self.nbytes
    }
}

/// # Safety
/// `item` is a live memcached-layout item.
unsafe fn shape(item: NonNull<u8>) -> Shape {
    // SAFETY: the header is in the item's contiguous head.
    unsafe {
        Shape {
            nkey: read_at::<u8>(item, NKEY) as usize,
            nbytes: read_at::<i32>(item, NBYTES) as usize,
            has_flags: read_at::<u16>(item, IT_FLAGS) & ITEM_CFLAGS != 0,
        }
    }
}

/// # Safety
/// `item` is live; the slice must not outlive it.
unsafe fn key_at<'a>(item: NonNull<u8>) -> &'a [u8] {
    // SAFETY: the key is in the head.
    unsafe { std::slice::from_raw_parts(item.as_ptr().add(KEY), shape(item).nkey) }
}

/// # Safety
/// `item` is live.
unsafe fn h_next(item: NonNull<u8>) -> Option<NonNull<u8>> {
    // SAFETY: the caller's contract.
    NonNull::new(unsafe { read_at::<*mut u8>(item, H_NEXT) })
}

impl Memcached {
    fn bucket(&self, hash: u64) -> usize {
        hash as usize & (self.buckets.len() - 1)
    }

    /// `assoc_expand`: doubles the bucket array and moves every item.
    fn expand(&mut self) {
        let doubled = vec![std::ptr::null_mut(); self.buckets.len() * 2];
        let old = std::mem::replace(&mut self.buckets, doubled);
        for head in old {
            let mut cur = NonNull::new(head);
            while let Some(item) = cur {
                // SAFETY: every chained item is live.
                unsafe {
                    cur = h_next(item);
                    let b = self.bucket(hash_key(key_at(item)));
                    write_at(item, H_NEXT, self.buckets[b]);
                    self.buckets[b] = item.as_ptr();
                }
            }
        }
    }

    fn link(&mut self, item: NonNull<u8>, hash: u64) {
        let b = self.bucket(hash);
        // SAFETY: `item` is live and not chained yet.
        unsafe {
            write_at(item, H_NEXT, self.buckets[b]);
            let f = read_at::<u16>(item, IT_FLAGS);
            write_at::<u16>(item, IT_FLAGS, f | ITEM_LINKED);
        }
        self.buckets[b] = item.as_ptr();
        self.items += 1;
        if self.items > self.buckets.len() * 3 / 2 {
            self.expand();
        }
    }

    /// Puts `to` where `from` is in its chain (`to` is a copy of `from`, with its `h_next`).
    fn replace(&mut self, from: NonNull<u8>, to: NonNull<u8>, hash: u64) -> bool {
        let b = self.bucket(hash);
        if self.buckets[b] == from.as_ptr() {
            self.buckets[b] = to.as_ptr();
            return true;
        }
        let mut cur = NonNull::new(self.buckets[b]);
        while let Some(c) = cur {
            // SAFETY: chained items are live.
            let next = unsafe { h_next(c) };
            if next == Some(from) {
                // SAFETY: `c` is a live chained item.
                unsafe { write_at(c, H_NEXT, to.as_ptr()) };
                return true;
            }
            cur = next;
        }
        false
    }

    /// Takes `item` out of its chain.
    fn unlink(&mut self, item: NonNull<u8>, hash: u64) -> bool {
        let b = self.bucket(hash);
        let mut prev: Option<NonNull<u8>> = None;
        let mut cur = NonNull::new(self.buckets[b]);
        while let Some(c) = cur {
            // SAFETY: chained items are live.
            let next = unsafe { h_next(c) };
            if c == item {
                match prev {
                    // SAFETY: `p` is a live chained item.
                    Some(p) => unsafe { write_at(p, H_NEXT, to_raw(next)) },
                    None => self.buckets[b] = to_raw(next),
                }
                // SAFETY: `c` is live until its caller frees it.
                unsafe {
                    let f = read_at::<u16>(c, IT_FLAGS);
                    write_at::<u16>(c, IT_FLAGS, f & !ITEM_LINKED);
                }
                self.items -= 1;
                return true;
            }
            prev = Some(c);
            cur = next;
        }
        false
    }

    fn build<A: Allocator>(
        &mut self,
        a: &mut A,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        time: u32,
    ) -> Result<NonNull<u8>, AllocError> {
        let s = Shape {
            nkey: key.len(),
            nbytes: value.len() + 2,
            has_flags: flags != 0,
        };
        let ntotal = s.ntotal();
        let block = a.alloc_item(ntotal, s.data())?;
        let item = block.ptr;
        self.cas += 1;
        let clsid = a.size_class(ntotal).unwrap_or(0).min(255) as u8;
        // SAFETY: the block holds `ntotal` bytes whose first `s.data()` (header, CAS, key,
        // flags) are contiguous; the value goes through `write_block`.
        unsafe {
            write_at::<[u8; ITEM_HEADER]>(item, 0, [0; ITEM_HEADER]);
            write_at::<u32>(item, TIME, time);
            write_at::<u32>(item, EXPTIME, exptime);
            write_at::<i32>(item, NBYTES, s.nbytes as i32);
            write_at::<u16>(item, REFCOUNT, 1);
            write_at::<u16>(
                item,
                IT_FLAGS,
                ITEM_CAS | if s.has_flags { ITEM_CFLAGS } else { 0 },
            );
            write_at::<u8>(item, CLSID, clsid);
            write_at::<u8>(item, NKEY, s.nkey as u8);
            write_at::<u64>(item, ITEM_HEADER, self.cas);
            std::ptr::copy_nonoverlapping(key.as_ptr(), item.as_ptr().add(KEY), key.len());
            write_at::<u8>(item, KEY + key.len(), 0);
            if s.has_flags {
                write_at::<u32>(item, KEY + key.len() + 1, flags);
            }
            write_block(a, item, ntotal, s.data(), value);
            write_block(a, item, ntotal, s.data() + value.len(), b"\r\n");
        }
        Ok(item)
    }

    /// Buckets in the hash table.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }
}

impl Layout for Memcached {
    const KIND: LayoutKind = LayoutKind::Memcached;
    type Handle = NonNull<u8>;
    const FOLLOWS_MOVES: bool = true;
    const BLOCK_HANDLES: bool = true;

    fn new(_opts: LayoutOptions) -> Self {
        Memcached {
            buckets: vec![std::ptr::null_mut(); 1 << HASHPOWER_DEFAULT],
            items: 0,
            cas: 0,
        }
    }

    fn len(&self) -> usize {
        self.items
    }

    fn index_bytes(&self) -> u64 {
        (self.buckets.len() * std::mem::size_of::<*mut u8>()) as u64
    }

    #[inline]
    fn find<A: Allocator>(&mut self, _a: &mut A, key: &[u8], hash: u64) -> Option<NonNull<u8>> {
        let mut cur = NonNull::new(self.buckets[self.bucket(hash)]);
        while let Some(item) = cur {
            // SAFETY: chained items are live.
            unsafe {
                if key_at(item) == key {
                    return Some(item);
                }
                cur = h_next(item);
            }
        }
        None
    }

    fn prefetch<A: Allocator>(
        &self,
        _a: &A,
        hash: u64,
        stage: PrefetchStage,
    ) -> Option<NonNull<u8>> {
        let b = self.bucket(hash);
        match stage {
            PrefetchStage::Index => prefetch(self.buckets.as_ptr().wrapping_add(b).cast()),
            PrefetchStage::Item => {
                // The chain's head: its header, and the key that starts at byte 56.
                let head = self.buckets[b].cast_const();
                prefetch(head);
                prefetch(head.wrapping_add(KEY));
            }
            PrefetchStage::Find => {
                // The chain's head (chains average under 1.5 items), and its value, which a
                // get copies out.
                let head = NonNull::new(self.buckets[b])?;
                // SAFETY: chained items are live.
                prefetch_bytes(head.as_ptr(), unsafe { shape(head) }.ntotal());
                return Some(head);
            }
        }
        None
    }

    fn insert<A: Allocator>(
        &mut self,
        a: &mut A,
        it: NewItem<'_>,
    ) -> Result<NonNull<u8>, AllocError> {
        let item = self.build(a, it.key, it.value, it.flags, it.exptime, it.access)?;
        self.link(item, it.hash);
        Ok(item)
    }

    fn update<A: Allocator>(
        &mut self,
        a: &mut A,
        h: NonNull<u8>,
        value: &[u8],
        flags: u32,
    ) -> Result<NonNull<u8>, AllocError> {
        // memcached allocates the new item first, then replaces the old one (`item_replace`).
        // SAFETY: `h` (and so its key) stays live until it is freed below; no allocation is
        // made per overwrite to hold the key.
        let key = unsafe { key_at(h) };
        let hash = hash_key(key);
        let (exptime, time) = (self.exptime(a, h), self.access(h));
        let item = self.build(a, key, value, flags, exptime, time)?;
        self.unlink(h, hash);
        self.link(item, hash);
        // SAFETY: `h` is live, unchained, out of every list (the caller's duty), freed once.
        unsafe { a.free(h, shape(h).ntotal()) };
        Ok(item)
    }

    fn overwrite<A: Allocator>(&mut self, a: &mut A, h: NonNull<u8>, value: &[u8]) {
        // SAFETY: `h` is live and its value has `value.len()` bytes.
        unsafe {
            let s = shape(h);
            debug_assert_eq!(s.nbytes, value.len() + 2);
            write_block(a, h, s.ntotal(), s.data(), value);
        }
    }

    fn remove<A: Allocator>(&mut self, a: &mut A, h: NonNull<u8>) {
        // SAFETY: `h` is live.
        let hash = hash_key(unsafe { key_at(h) });
        let found = self.unlink(h, hash);
        debug_assert!(found, "removing an item that is not indexed");
        // SAFETY: `h` is live, unchained, freed once.
        unsafe { a.free(h, shape(h).ntotal()) };
    }

    fn read_value<A: Allocator>(&self, a: &A, h: NonNull<u8>, out: &mut Vec<u8>) {
        // SAFETY: `h` is live; the value is the `nbytes - 2` bytes after the data offset.
        unsafe {
            let s = shape(h);
            let start = out.len();
            out.resize(start + s.nbytes - 2, 0);
            read_block(a, h, s.ntotal(), s.data(), &mut out[start..]);
        }
    }

    fn value_len<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> usize {
        // SAFETY: `h` is live.
        unsafe { shape(h).nbytes - 2 }
    }

    fn key_len(&self, h: NonNull<u8>) -> usize {
        // SAFETY: `h` is live.
        unsafe { shape(h).nkey }
    }

    fn read_key<A: Allocator>(&self, _a: &A, h: NonNull<u8>, out: &mut Vec<u8>) {
        // SAFETY: `h` is live.
        out.extend_from_slice(unsafe { key_at(h) });
    }

    fn flags<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> u32 {
        // SAFETY: `h` is live; the flags follow the key's NUL when present.
        unsafe {
            let s = shape(h);
            if s.has_flags {
                read_at::<u32>(h, KEY + s.nkey + 1)
            } else {
                0
            }
        }
    }

    fn exptime<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> u32 {
        // SAFETY: `h` is live.
        unsafe { read_at::<u32>(h, EXPTIME) }
    }

    fn set_exptime<A: Allocator>(
        &mut self,
        _a: &mut A,
        h: NonNull<u8>,
        exptime: u32,
    ) -> Result<(), AllocError> {
        // SAFETY: `h` is live.
        unsafe { write_at::<u32>(h, EXPTIME, exptime) };
        Ok(())
    }

    #[inline]
    fn access(&self, h: NonNull<u8>) -> u32 {
        // SAFETY: `h` is live.
        unsafe { read_at::<u32>(h, TIME) }
    }

    #[inline]
    fn set_access(&mut self, h: NonNull<u8>, access: u32) {
        // SAFETY: `h` is live.
        unsafe { write_at::<u32>(h, TIME, access) }
    }

    fn links(&self, h: NonNull<u8>) -> Option<NonNull<u8>> {
        Some(h)
    }

    fn handle_at_links(&self, links: NonNull<u8>) -> NonNull<u8> {
        links
    }

    fn alloc_size<A: Allocator>(&self, _a: &A, h: NonNull<u8>) -> usize {
        // SAFETY: `h` is live.
        unsafe { shape(h).ntotal() }
    }

    fn random<A: Allocator>(
        &mut self,
        a: &A,
        rng: &mut Rng,
        volatile: bool,
    ) -> Option<NonNull<u8>> {
        if self.items == 0 {
            return None;
        }
        for _ in 0..if volatile { 64 } else { 1 } {
            // A random bucket, then the first non-empty one from there; a random item of its
            // chain (as Redis's dictGetRandomKey does).
            let mask = self.buckets.len() - 1;
            let mut b = rng.below(self.buckets.len());
            while self.buckets[b].is_null() {
                b = (b + 1) & mask;
            }
            let mut chain = Vec::new();
            let mut cur = NonNull::new(self.buckets[b]);
            while let Some(item) = cur {
                chain.push(item);
                // SAFETY: chained items are live.
                cur = unsafe { h_next(item) };
            }
            let item = chain[rng.below(chain.len())];
            if !volatile || self.exptime(a, item) != 0 {
                return Some(item);
            }
        }
        None
    }

    fn handles(&self) -> Vec<NonNull<u8>> {
        let mut out = Vec::with_capacity(self.items);
        self.for_each_handle(&mut |h| {
            out.push(h);
            true
        });
        out
    }

    fn for_each_handle(&self, f: &mut dyn FnMut(NonNull<u8>) -> bool) {
        for &head in &self.buckets {
            let mut cur = NonNull::new(head);
            while let Some(item) = cur {
                // SAFETY: chained items are live; `f` does not unlink them.
                cur = unsafe { h_next(item) };
                if !f(item) {
                    return;
                }
            }
        }
    }

    fn handle_at_block(&self, block: NonNull<u8>) -> NonNull<u8> {
        block
    }

    fn adopt(
        &mut self,
        item: NonNull<u8>,
        block_size: usize,
    ) -> Result<Option<(NonNull<u8>, usize)>, String> {
        // SAFETY: the block is `block_size` bytes of mapped memory; the header is read first,
        // and nothing past it until the sizes it gives are checked against the block.
        unsafe {
            let flags = read_at::<u16>(item, IT_FLAGS);
            if flags & ITEM_LINKED == 0 {
                return Ok(None);
            }
            let nkey = read_at::<u8>(item, NKEY) as usize;
            let nbytes = read_at::<i32>(item, NBYTES);
            if nkey == 0 || nbytes < 2 {
                return Err(format!("a key of {nkey} bytes, a value of {nbytes}"));
            }
            let s = shape(item);
            let ntotal = s.ntotal();
            if ntotal > block_size {
                return Err(format!("{ntotal} bytes in a chunk of {block_size}"));
            }
            if read_at::<u8>(item, KEY + nkey) != 0 {
                return Err("the key is not NUL-terminated".into());
            }
            if read_at::<[u8; 2]>(item, ntotal - 2) != *b"\r\n" {
                return Err("the value does not end in CRLF".into());
            }
            self.cas = self.cas.max(read_at::<u64>(item, ITEM_HEADER));
            let hash = hash_key(key_at(item));
            self.link(item, hash);
            Ok(Some((item, ntotal)))
        }
    }

    fn relocated(&mut self, from: NonNull<u8>, to: NonNull<u8>) -> (NonNull<u8>, NonNull<u8>) {
        // SAFETY: `to` is a live copy of the item.
        let hash = hash_key(unsafe { key_at(to) });
        let found = self.replace(from, to, hash);
        debug_assert!(found, "a moved item that is not chained");
        (from, to)
    }

    fn blocks<A: Allocator>(&self, a: &A, h: NonNull<u8>, f: &mut dyn FnMut(usize, usize)) {
        // SAFETY: `h` is a live item of `alloc_size` bytes; its pieces (one, or the chunks of
        // a large item) are reported by the allocator.
        unsafe {
            a.for_each_segment(h, self.alloc_size(a, h), &mut |p, n| {
                f(p.as_ptr() as usize, n)
            })
        }
    }
}
