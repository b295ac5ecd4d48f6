//! memcached 1.6.18's slab allocator.
//!
//! Memory comes in 1 MiB pages, taken one at a time from a [`PageSource`] when a class's free
//! list is empty. Each page belongs to one class and is cut into `perslab = 1 MiB / chunk_size`
//! chunks of that class's size; the rest of the page (`1 MiB - perslab x chunk_size`) is never
//! used. A request goes to the smallest class whose chunk holds it, as `slabs_clsid` picks it.
//!
//! ```text
//!  page (1 MiB, one class)                                 slack
//! +-----------+-----------+-----------+-- ... --+-----------+----+
//! | chunk 0   | chunk 1   | chunk 2   |         | chunk n-1 |    |  n = perslab
//! +-----------+-----------+-----------+-- ... --+-----------+----+
//!   a free chunk's first 8 bytes link it into its class's free list
//! ```
//!
//! # The class table (`slabs_init`)
//!
//! `size = 48 + min` (48 = `sizeof(item)`); for class 1, 2, ... up to 62: stop if the unaligned
//! `size >= chunk_max / factor` (a floating-point compare); round `size` up to a multiple of 8;
//! that is the class's chunk size with `perslab = 1048576 / size`; then
//! `size = trunc(size * factor)`. After the loop one last class has `chunk_max` itself. An
//! explicit list of sizes replaces the computed ones (each still rounded up to 8).
//!
//! # The memory limit (`do_slabs_newslab`)
//!
//! Counted in whole pages: a new page is refused when `total_malloced + 1 MiB > limit`, unless
//! the class has no page yet (memcached's rule: every class gets its first page, even past
//! `-m`) or a page waits in the global pool (pages released by rebalancing).
//!
//! # Large items (memcached's chunked items)
//!
//! A request above `chunk_max` (and at most `item_max`) is stored as memcached 1.6 stores an
//! item of that `ntotal`: a header chunk of `head + 48` bytes (the item header and key plus a
//! 48-byte `item_chunk` link) in the smallest class that holds it, then the remaining
//! `size - head` bytes in chunks of `min(remaining + 48, chunk_max)` bytes, each holding its
//! 48-byte link and `chunk - 48` bytes of data: full chunks in the largest class and a tail in
//! the smallest class that fits what is left. The chunks are counted as used in their own
//! classes, but the item's whole size is counted in the largest class's `mem_requested`, as
//! memcached 1.6 links a chunked item into the largest class's LRU and counts its `ntotal`
//! there (`sizes_bytes`, reported as `mem_requested` by `stats items`). The caller reaches the
//! bytes with [`Allocator::for_each_segment`].
//!
//! ```text
//!  header chunk                 data chunk (full)              tail chunk
//! +--------+------------+      +--------+----------------+    +--------+------+
//! | link   | head bytes | ---> | link   | chunk_max - 48 | -> | link   | rest |
//! | 48 B   | (hdr, key) |      | 48 B   | bytes of data  |    | 48 B   |      |
//! +--------+------------+      +--------+----------------+    +--------+------+
//!            ^ Block::ptr
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ptr::{self, NonNull};

use serde::{Deserialize, Serialize};

use crate::page::{MmapPages, PageSource};
use crate::stats::{Detail, MemStats, Tally};
use crate::{AllocError, Allocator, Block, LimitKind};

/// memcached's slab page size (`slab_page_size`): 1 MiB, fixed.
pub const PAGE_SIZE: usize = 1 << 20;
/// `sizeof(item)` on 64-bit: the item header every chunk size starts from.
pub const ITEM_HEADER: usize = 48;
/// `sizeof(item_chunk)`: the link at the start of each chunk of a chunked item.
pub const CHUNK_HEADER: usize = 48;
/// `CHUNK_ALIGN_BYTES`.
pub const CHUNK_ALIGN: usize = 8;
/// Classes 1..=63 (`MAX_NUMBER_OF_SLAB_CLASSES` is 64, class 0 being the global page pool).
pub const MAX_CLASSES: usize = 63;

/// The settings memcached builds its slab classes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlabConfig {
    /// Growth factor between classes (`-f`, default 1.25, must be > 1).
    pub factor: f64,
    /// Minimum space for key, value and flags (`-n`, default 48): class 1 is `48 + min`.
    pub min: usize,
    /// Largest chunk (`-o slab_chunk_max`, in bytes in 1.6.18; default 512 KiB = page / 2, at
    /// most the page). Larger items are chunked.
    pub chunk_max: usize,
    /// Largest item (`-I`, default 1 MiB). Larger requests are refused with `TooLarge`.
    pub item_max: usize,
    /// Explicit chunk sizes (`-o slab_sizes=a-b-c`), replacing the computed ones.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sizes: Option<Vec<usize>>,
}

impl Default for SlabConfig {
    fn default() -> Self {
        SlabConfig {
            factor: 1.25,
            min: 48,
            chunk_max: PAGE_SIZE / 2,
            item_max: PAGE_SIZE,
            sizes: None,
        }
    }
}

/// A configuration memcached would refuse, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid slab configuration: {0}")]
pub struct ConfigError(pub String);

/// One slab class as `memcached -vv` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    /// Class id, 1-based.
    pub class: u32,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Chunks per 1 MiB page.
    pub perslab: u32,
}

impl fmt::Display for ClassInfo {
    /// The line `memcached -vv` prints: `slab class   1: chunk size        96 perslab   10922`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "slab class {:3}: chunk size {:9} perslab {:7}",
            self.class, self.chunk_size, self.perslab
        )
    }
}

impl SlabConfig {
    /// Checks the settings as memcached's option parser does.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if self.factor.is_nan() || self.factor <= 1.0 || !self.factor.is_finite() {
            return err(format!(
                "factor must be greater than 1 (got {})",
                self.factor
            ));
        }
        if self.min == 0 {
            return err("min must be at least 1".into());
        }
        if self.min > 1 << 30 {
            return err(format!(
                "min must be at most 1073741824 bytes (got {})",
                self.min
            ));
        }
        if self.chunk_max < 2 * CHUNK_HEADER || self.chunk_max > PAGE_SIZE {
            return err(format!(
                "chunk_max must be between {} and {PAGE_SIZE} bytes (got {})",
                2 * CHUNK_HEADER,
                self.chunk_max
            ));
        }
        if PAGE_SIZE % self.chunk_max != 0 {
            return err(format!(
                "chunk_max must divide evenly into the {PAGE_SIZE}-byte page (got {})",
                self.chunk_max
            ));
        }
        if ITEM_HEADER + self.min > self.chunk_max {
            // memcached accepts such a -n and builds a first class larger than a page, which
            // holds no chunk at all; the model refuses it.
            return err(format!(
                "min ({}) plus the {ITEM_HEADER}-byte item header must fit in chunk_max ({})",
                self.min, self.chunk_max
            ));
        }
        if self.item_max < 1024 || self.item_max > 1 << 30 {
            return err(format!(
                "item_max must be between 1024 and 1073741824 bytes (got {})",
                self.item_max
            ));
        }
        if self.item_max % self.chunk_max != 0 {
            return err(format!(
                "chunk_max ({}) must divide evenly into item_max ({})",
                self.chunk_max, self.item_max
            ));
        }
        if let Some(sizes) = &self.sizes {
            if sizes.is_empty() {
                return err("sizes must list at least one size".into());
            }
            if sizes.len() > MAX_CLASSES - 1 {
                return err(format!(
                    "sizes may list at most {} sizes (got {})",
                    MAX_CLASSES - 1,
                    sizes.len()
                ));
            }
            let mut last = 0;
            for &s in sizes {
                if s < self.min || s > self.chunk_max {
                    return err(format!(
                        "slab size {s} is out of the valid range {}..={}",
                        self.min, self.chunk_max
                    ));
                }
                if s <= last + CHUNK_ALIGN {
                    return err(format!(
                        "slab size {s} must be more than {CHUNK_ALIGN} bytes larger than the \
                         previous size ({last})"
                    ));
                }
                last = s;
            }
        }
        Ok(())
    }

    /// The class table `slabs_init` builds from these settings.
    pub fn classes(&self) -> Result<Vec<ClassInfo>, ConfigError> {
        self.validate()?;
        let mut out = Vec::new();
        let mut size: u32 = (ITEM_HEADER + self.min) as u32;
        let mut i = 0usize;
        // memcached: `while (++i < MAX_NUMBER_OF_SLAB_CLASSES - 1)`, i.e. classes 1..=62.
        loop {
            i += 1;
            if i >= MAX_CLASSES {
                break;
            }
            if let Some(sizes) = &self.sizes {
                match sizes.get(i - 1) {
                    Some(&s) => size = s as u32,
                    None => break,
                }
            } else if f64::from(size) >= self.chunk_max as f64 / self.factor {
                break;
            }
            if size as usize % CHUNK_ALIGN != 0 {
                size += (CHUNK_ALIGN - size as usize % CHUNK_ALIGN) as u32;
            }
            out.push(ClassInfo {
                class: i as u32,
                chunk_size: size,
                perslab: (PAGE_SIZE / size as usize) as u32,
            });
            if self.sizes.is_none() {
                // `size *= factor` on an unsigned int: multiply as double, truncate.
                size = (f64::from(size) * self.factor) as u32;
            }
        }
        out.push(ClassInfo {
            class: i as u32,
            chunk_size: self.chunk_max as u32,
            perslab: (PAGE_SIZE / self.chunk_max) as u32,
        });
        Ok(out)
    }
}

/// Per-class figures, with the names of memcached's `stats slabs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlabClassStats {
    /// Class id, 1-based.
    pub class: u32,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Chunks per page (`perslab`).
    pub chunks_per_page: u32,
    /// Pages assigned to the class.
    pub total_pages: u32,
    /// `total_pages x chunks_per_page`.
    pub total_chunks: u64,
    /// Chunks holding live data.
    pub used_chunks: u64,
    /// Chunks on the class's free list.
    pub free_chunks: u64,
    /// Sum of the requested sizes of the items in this class (memcached 1.6's `mem_requested`
    /// from `stats items`, the sum of `ntotal`); a chunked item counts whole in the largest
    /// class, whose LRU memcached links it into.
    pub mem_requested: u64,
}

/// The slab allocator's detail: `stats slabs` plus the page-level figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlabDetail {
    /// Pages taken from the page source x page size (memcached's `total_malloced`).
    pub total_malloced: u64,
    /// The memory limit in bytes (`limit_maxbytes`), if any.
    pub limit_maxbytes: Option<u64>,
    /// Pages waiting in the global pool (released by rebalancing, not in any class).
    pub pool_pages: u32,
    /// Pages granted beyond the limit by the first-page rule.
    pub pages_past_limit: u32,
    /// Where pages come from (`mmap` or `heap`).
    pub page_source: String,
    /// Every class of the table, in order.
    pub classes: Vec<SlabClassStats>,
}

/// Why a page could not be moved between classes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// The class id does not exist.
    #[error("no slab class {0}")]
    NoSuchClass(u32),
    /// Every page of the source class still holds live chunks: evict them first.
    #[error("class {0} has no page whose chunks are all free")]
    NoEmptyPage(u32),
    /// Source and destination are the same class.
    #[error("cannot move a page from class {0} to itself")]
    SameClass(u32),
}

/// A page as the rebalancer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// Start of the page.
    pub base: NonNull<u8>,
    /// The class the page is cut for.
    pub class: u32,
    /// Chunks of the page on the free list.
    pub free_chunks: u32,
    /// Chunks of the page in use.
    pub used_chunks: u32,
}

struct Class {
    size: u32,
    perslab: u32,
    /// Head of the free list: a free chunk's first 8 bytes hold the next free chunk.
    free: *mut u8,
    free_count: u64,
    pages: u32,
    requested: u64,
}

/// The 48-byte link at the start of every chunk of a chunked item (memcached's `item_chunk`);
/// fraglab stores its own fields in it.
#[repr(C)]
struct ChunkLink {
    /// Next data chunk, or null.
    next: *mut u8,
    /// Bytes of caller data in this chunk.
    len: u32,
    /// Class index (0-based) of this chunk.
    class: u32,
    _rest: [u8; CHUNK_HEADER - 16],
}

const _: () = assert!(std::mem::size_of::<ChunkLink>() == CHUNK_HEADER);

/// memcached's slab allocator. See the [module docs](self).
pub struct Slab<P: PageSource = MmapPages> {
    config: SlabConfig,
    classes: Vec<Class>,
    /// `(size + 7) / 8` -> class index, for sizes up to `chunk_max`.
    lookup: Vec<u8>,
    source: P,
    /// Every page in use: base address -> class index (`None` while in the global pool).
    pages: BTreeMap<usize, Option<u8>>,
    pool: Vec<NonNull<u8>>,
    mem_limit: Option<u64>,
    mem_malloced: u64,
    pages_past_limit: u32,
    tally: Tally,
    /// The class of a chunked item's tail that found its class full: the `OutOfMemory` the
    /// slab returned names a size in it, so the engine evicts there first.
    tail_waiting: Option<usize>,
    /// Set by `on_no_victim` when nothing in the tail's class could be evicted: the next
    /// chunked allocation's tail may take a full-size chunk instead.
    tail_fallback: bool,
}

// SAFETY: the raw pointers in a `Slab` point only into pages the slab owns exclusively; nothing
// is shared with other threads, so moving the whole allocator to another thread is sound when
// its page source can move too.
unsafe impl<P: PageSource + Send> Send for Slab<P> {}

impl<P: PageSource> fmt::Debug for Slab<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slab")
            .field("config", &self.config)
            .field("page_source", &self.source.name())
            .field("mem_malloced", &self.mem_malloced)
            .field("mem_limit", &self.mem_limit)
            .finish_non_exhaustive()
    }
}

impl Slab<MmapPages> {
    /// A slab allocator taking its pages with `mmap`.
    pub fn new(config: SlabConfig) -> Result<Self, ConfigError> {
        Self::with_source(config, MmapPages)
    }
}

impl<P: PageSource> Slab<P> {
    /// A slab allocator taking its pages from `source`.
    pub fn with_source(config: SlabConfig, source: P) -> Result<Self, ConfigError> {
        let table = config.classes()?;
        let classes: Vec<Class> = table
            .iter()
            .map(|c| Class {
                size: c.chunk_size,
                perslab: c.perslab,
                free: ptr::null_mut(),
                free_count: 0,
                pages: 0,
                requested: 0,
            })
            .collect();
        let mut lookup = vec![0u8; config.chunk_max / CHUNK_ALIGN + 1];
        let mut id = 0usize;
        for (slot, entry) in lookup.iter_mut().enumerate() {
            while (classes[id].size as usize) < slot * CHUNK_ALIGN {
                id += 1;
            }
            *entry = id as u8;
        }
        Ok(Slab {
            config,
            classes,
            lookup,
            source,
            pages: BTreeMap::new(),
            pool: Vec::new(),
            mem_limit: None,
            mem_malloced: 0,
            pages_past_limit: 0,
            tally: Tally::default(),
            tail_waiting: None,
            tail_fallback: false,
        })
    }

    /// The settings this allocator was built from.
    pub fn config(&self) -> &SlabConfig {
        &self.config
    }

    /// The class table.
    pub fn class_table(&self) -> Vec<ClassInfo> {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, c)| ClassInfo {
                class: i as u32 + 1,
                chunk_size: c.size,
                perslab: c.perslab,
            })
            .collect()
    }

    /// Class index (0-based) for a request of at most `chunk_max` bytes.
    #[inline]
    fn class_index(&self, size: usize) -> usize {
        self.lookup[size.div_ceil(CHUNK_ALIGN)] as usize
    }

    /// The largest class's index.
    fn largest(&self) -> usize {
        self.classes.len() - 1
    }

    /// Pops a chunk from class `id`, taking a new page if the free list is empty.
    #[inline]
    fn take_chunk(&mut self, id: usize, requested: usize) -> Option<NonNull<u8>> {
        if self.classes[id].free.is_null() {
            self.new_page(id)?;
        }
        let class = &mut self.classes[id];
        let chunk = class.free;
        // SAFETY: `chunk` is a free chunk of this class: its first 8 bytes hold the next free
        // chunk (written by `push_free`), and chunks are 8-aligned inside a page we own.
        class.free = unsafe { chunk.cast::<*mut u8>().read() };
        class.free_count -= 1;
        class.requested += requested as u64;
        NonNull::new(chunk)
    }

    /// Pushes a chunk on class `id`'s free list.
    #[inline]
    fn put_chunk(&mut self, id: usize, chunk: NonNull<u8>, requested: usize) {
        let class = &mut self.classes[id];
        class.requested -= requested as u64;
        Self::push_free(class, chunk.as_ptr());
    }

    #[inline]
    fn push_free(class: &mut Class, chunk: *mut u8) {
        // SAFETY: `chunk` is a chunk of this class inside a page we own, 8-aligned and at least
        // 56 bytes long; nobody else uses it while it is free.
        unsafe { chunk.cast::<*mut u8>().write(class.free) };
        class.free = chunk;
        class.free_count += 1;
    }

    /// `do_slabs_newslab`: takes a page for class `id`, within the limit.
    #[cold]
    #[inline(never)]
    fn new_page(&mut self, id: usize) -> Option<()> {
        let page = match self.pool.pop() {
            Some(page) => page,
            None => {
                let has_pages = self.classes[id].pages > 0;
                let over = self
                    .mem_limit
                    .is_some_and(|limit| self.mem_malloced + PAGE_SIZE as u64 > limit);
                if over && has_pages {
                    return None;
                }
                let page = self.source.take_page(PAGE_SIZE)?;
                if over {
                    self.pages_past_limit += 1;
                }
                self.mem_malloced += PAGE_SIZE as u64;
                page
            }
        };
        self.carve(id, page);
        Some(())
    }

    /// `split_slab_page_into_freelist`: cuts a page into class `id`'s chunks.
    fn carve(&mut self, id: usize, page: NonNull<u8>) {
        self.pages.insert(page.as_ptr() as usize, Some(id as u8));
        let class = &mut self.classes[id];
        class.pages += 1;
        let size = class.size as usize;
        for i in 0..class.perslab as usize {
            // SAFETY: `i * size < perslab * size <= PAGE_SIZE`, so the chunk is in the page.
            let chunk = unsafe { page.as_ptr().add(i * size) };
            Self::push_free(class, chunk);
        }
    }

    fn alloc_chunked(&mut self, size: usize, head: usize) -> Result<Block, AllocError> {
        let too_large = AllocError::TooLarge {
            size,
            max: self.config.item_max,
        };
        if size > self.config.item_max || head > size {
            return Err(too_large);
        }
        let hdr_total = head + CHUNK_HEADER;
        if hdr_total > self.config.chunk_max {
            return Err(too_large);
        }
        let hdr_id = self.class_index(hdr_total);
        // memcached pulls every chunk with `do_item_alloc_pull`, which evicts in that chunk's
        // own class when it is full. So an `OutOfMemory` from here names a size in the class
        // that ran out (the header's, the largest, or the tail's), and the engine evicts there.
        let fallback = std::mem::take(&mut self.tail_fallback);
        self.tail_waiting = None;
        let Some(hdr) = self.take_chunk(hdr_id, 0) else {
            return Err(AllocError::OutOfMemory { size: hdr_total });
        };
        // SAFETY: `hdr` is a chunk of at least `hdr_total` bytes that we own; the link fits in
        // its first 48 bytes and chunks are 8-aligned.
        unsafe {
            hdr.cast::<ChunkLink>().as_ptr().write(ChunkLink {
                next: ptr::null_mut(),
                len: head as u32,
                class: hdr_id as u32,
                _rest: [0; CHUNK_HEADER - 16],
            })
        };
        let mut last = hdr;
        let mut allocated = self.classes[hdr_id].size as usize;
        let mut remain = size - head;
        while remain > 0 {
            let csize = (remain + CHUNK_HEADER).min(self.config.chunk_max);
            let mut id = self.class_index(csize);
            let mut chunk = self.take_chunk(id, 0);
            if chunk.is_none() && id != self.largest() && fallback {
                // `do_item_alloc_chunk`: a tail whose class is full and has nothing to evict
                // takes a full-size chunk instead.
                id = self.largest();
                chunk = self.take_chunk(id, 0);
            }
            let Some(chunk) = chunk else {
                // SAFETY: the chain from `hdr` is complete up to `last`, whose `next` is null.
                unsafe { self.free_chain(hdr) };
                if id != self.largest() {
                    self.tail_waiting = Some(id);
                }
                return Err(AllocError::OutOfMemory { size: csize });
            };
            let len = csize - CHUNK_HEADER;
            // SAFETY: as for the header chunk; `last` is a chunk of this chain we own.
            unsafe {
                chunk.cast::<ChunkLink>().as_ptr().write(ChunkLink {
                    next: ptr::null_mut(),
                    len: len as u32,
                    class: id as u32,
                    _rest: [0; CHUNK_HEADER - 16],
                });
                (*last.cast::<ChunkLink>().as_ptr()).next = chunk.as_ptr();
            }
            last = chunk;
            allocated += self.classes[id].size as usize;
            remain -= len;
        }
        let largest = self.largest();
        self.classes[largest].requested += size as u64;
        self.tally.on_alloc(size, allocated);
        Ok(Block {
            // SAFETY: the header chunk is at least 48 bytes long.
            ptr: unsafe { hdr.add(CHUNK_HEADER) },
            usable: size,
        })
    }

    /// Frees every chunk of a chain starting at the header chunk; returns the chunk bytes.
    ///
    /// # Safety
    /// `hdr` must be the header chunk of a chain built by `alloc_chunked`.
    unsafe fn free_chain(&mut self, hdr: NonNull<u8>) -> usize {
        let mut freed = 0;
        let mut cur = hdr.as_ptr();
        while let Some(chunk) = NonNull::new(cur) {
            // SAFETY: every chunk of the chain starts with a link written by `alloc_chunked`.
            let link = unsafe { chunk.cast::<ChunkLink>().as_ptr().read() };
            let id = link.class as usize;
            freed += self.classes[id].size as usize;
            self.put_chunk(id, chunk, 0);
            cur = link.next;
        }
        freed
    }

    /// Sets memcached's `-m` limit in bytes (pages are counted whole).
    fn set_mem_limit(&mut self, limit: Option<u64>) {
        self.mem_limit = limit;
    }

    /// Pages of class `class` (1-based) with their free and used chunks: what a rebalancer
    /// needs to choose a page to empty. Costs one walk over the class's free list.
    pub fn class_pages(&self, class: u32) -> Result<Vec<PageInfo>, MoveError> {
        let id = self.check_class(class)?;
        let mut free: BTreeMap<usize, u32> = self
            .pages
            .iter()
            .filter(|(_, c)| **c == Some(id as u8))
            .map(|(&base, _)| (base, 0))
            .collect();
        let mut cur = self.classes[id].free;
        while !cur.is_null() {
            let addr = cur as usize;
            if let Some((_, n)) = free.range_mut(..=addr).next_back() {
                *n += 1;
            }
            // SAFETY: `cur` is on the free list, whose links we wrote.
            cur = unsafe { cur.cast::<*mut u8>().read() };
        }
        let perslab = self.classes[id].perslab;
        Ok(free
            .into_iter()
            .map(|(base, free_chunks)| PageInfo {
                base: NonNull::new(base as *mut u8).expect("page bases are non-null"),
                class,
                free_chunks,
                used_chunks: perslab - free_chunks,
            })
            .collect())
    }

    fn check_class(&self, class: u32) -> Result<usize, MoveError> {
        if class == 0 || class as usize > self.classes.len() {
            return Err(MoveError::NoSuchClass(class));
        }
        Ok(class as usize - 1)
    }

    /// The rebalancing primitive (`slab_rebalance`): takes a page whose chunks are all free away
    /// from class `from` and gives it to class `to`, or to the global pool when `to` is 0. The
    /// caller (the engine) evicts the items on a page first; `class_pages` tells which page is
    /// empty. Returns the page moved.
    pub fn move_page(&mut self, from: u32, to: u32) -> Result<NonNull<u8>, MoveError> {
        if from == to {
            return Err(MoveError::SameClass(from));
        }
        let src = self.check_class(from)?;
        let dst = if to == 0 {
            None
        } else {
            Some(self.check_class(to)?)
        };
        let page = self
            .class_pages(from)?
            .into_iter()
            .find(|p| p.used_chunks == 0)
            .ok_or(MoveError::NoEmptyPage(from))?
            .base;
        // Unlink the page's chunks from the source class's free list.
        let (lo, hi) = (page.as_ptr() as usize, page.as_ptr() as usize + PAGE_SIZE);
        let class = &mut self.classes[src];
        let mut cur = class.free;
        class.free = ptr::null_mut();
        class.free_count = 0;
        let mut keep = Vec::new();
        while !cur.is_null() {
            // SAFETY: `cur` is on the free list, whose links we wrote.
            let next = unsafe { cur.cast::<*mut u8>().read() };
            if !(lo..hi).contains(&(cur as usize)) {
                keep.push(cur);
            }
            cur = next;
        }
        for chunk in keep.into_iter().rev() {
            Self::push_free(class, chunk);
        }
        class.pages -= 1;
        match dst {
            Some(dst) => {
                // SAFETY: the page is ours and no chunk of it is in use or on a free list; zero
                // it as memcached's `slab_rebalance_finish` does before reuse.
                unsafe { ptr::write_bytes(page.as_ptr(), 0, PAGE_SIZE) };
                self.carve(dst, page);
            }
            None => {
                self.pages.insert(lo, None);
                self.pool.push(page);
            }
        }
        Ok(page)
    }

    /// `stats slabs` for every class.
    pub fn class_stats(&self) -> Vec<SlabClassStats> {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let total = u64::from(c.pages) * u64::from(c.perslab);
                SlabClassStats {
                    class: i as u32 + 1,
                    chunk_size: c.size,
                    chunks_per_page: c.perslab,
                    total_pages: c.pages,
                    total_chunks: total,
                    used_chunks: total - c.free_count,
                    free_chunks: c.free_count,
                    mem_requested: c.requested,
                }
            })
            .collect()
    }
}

impl<P: PageSource> Drop for Slab<P> {
    fn drop(&mut self) {
        for &base in self.pages.keys() {
            let page = NonNull::new(base as *mut u8).expect("page bases are non-null");
            // SAFETY: every page in the map came from `self.source.take_page(PAGE_SIZE)` and is
            // returned once; the allocator is going away, so no block outlives it.
            unsafe { self.source.return_page(page, PAGE_SIZE) };
        }
    }
}

impl<P: PageSource> Allocator for Slab<P> {
    fn name(&self) -> &'static str {
        "slab"
    }

    #[inline]
    fn alloc(&mut self, size: usize) -> Result<Block, AllocError> {
        self.alloc_item(size, 0)
    }

    #[inline]
    fn alloc_item(&mut self, size: usize, head: usize) -> Result<Block, AllocError> {
        if size > self.config.chunk_max {
            let r = self.alloc_chunked(size, head);
            if r.is_err() {
                self.tally.on_failure();
            }
            return r;
        }
        let id = self.class_index(size);
        match self.take_chunk(id, size) {
            Some(ptr) => {
                let usable = self.classes[id].size as usize;
                self.tally.on_alloc(size, usable);
                Ok(Block { ptr, usable })
            }
            None => {
                self.tally.on_failure();
                Err(AllocError::OutOfMemory { size })
            }
        }
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize) {
        if size > self.config.chunk_max {
            // SAFETY: the caller promises `ptr` is a live chunked block: its header chunk
            // starts 48 bytes before it.
            let freed = unsafe { self.free_chain(ptr.sub(CHUNK_HEADER)) };
            let largest = self.largest();
            self.classes[largest].requested -= size as u64;
            self.tally.on_free(size, freed);
            return;
        }
        let id = self.class_index(size);
        let chunk_size = self.classes[id].size as usize;
        self.put_chunk(id, ptr, size);
        self.tally.on_free(size, chunk_size);
    }

    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> Result<Block, AllocError> {
        let max = self.config.chunk_max;
        if old_size <= max && new_size <= max {
            let (old_id, new_id) = (self.class_index(old_size), self.class_index(new_size));
            if old_id == new_id {
                let class = &mut self.classes[old_id];
                class.requested = class.requested - old_size as u64 + new_size as u64;
                let usable = class.size as usize;
                self.tally
                    .on_realloc((old_size, usable), (new_size, usable));
                return Ok(Block { ptr, usable });
            }
        }
        // Another class: allocate, copy, free (memcached never resizes an item in place). A
        // chunked item keeps its head in the header chunk.
        let head = if old_size > max {
            // SAFETY: the caller promises a live chunked block; its link is 48 bytes before it.
            let link = unsafe { ptr.sub(CHUNK_HEADER).cast::<ChunkLink>().as_ptr().read() };
            (link.len as usize).min(new_size)
        } else {
            0
        };
        let block = self.alloc_item(new_size, head)?;
        self.tally.counters.allocs -= 1;
        let keep = old_size.min(new_size);
        let mut buf = vec![0u8; keep];
        // SAFETY: both blocks are live; `keep` fits both requested sizes.
        unsafe {
            crate::read_block(self, ptr, old_size, 0, &mut buf);
            crate::write_block(self, block.ptr, new_size, 0, &buf);
            self.free(ptr, old_size);
        }
        self.tally.counters.frees -= 1;
        self.tally.counters.reallocs += 1;
        Ok(block)
    }

    fn usable_size(&self, size: usize) -> Result<usize, AllocError> {
        self.usable_size_item(size, 0)
    }

    fn usable_size_item(&self, size: usize, head: usize) -> Result<usize, AllocError> {
        if size <= self.config.chunk_max {
            return Ok(self.classes[self.class_index(size)].size as usize);
        }
        let too_large = AllocError::TooLarge {
            size,
            max: self.config.item_max,
        };
        if size > self.config.item_max || head > size || head + CHUNK_HEADER > self.config.chunk_max
        {
            return Err(too_large);
        }
        // A header chunk of `head + 48` bytes, then the data chunks (when every class can get a
        // chunk of its own; see `alloc_chunked` for the fallback).
        let mut total = self.classes[self.class_index(head + CHUNK_HEADER)].size as usize;
        let mut remain = size - head;
        while remain > 0 {
            let csize = (remain + CHUNK_HEADER).min(self.config.chunk_max);
            total += self.classes[self.class_index(csize)].size as usize;
            remain -= csize - CHUNK_HEADER;
        }
        Ok(total)
    }

    unsafe fn usable_size_of(&self, ptr: NonNull<u8>, size: usize) -> usize {
        if size > self.config.chunk_max {
            let mut total = 0;
            // SAFETY: the caller promises a live chunked block; see `free`.
            let mut cur = unsafe { ptr.sub(CHUNK_HEADER) }.as_ptr();
            while !cur.is_null() {
                // SAFETY: every chunk of the chain starts with a link we wrote.
                let link = unsafe { cur.cast::<ChunkLink>().read() };
                total += self.classes[link.class as usize].size as usize;
                cur = link.next;
            }
            return total;
        }
        self.classes[self.class_index(size)].size as usize
    }

    fn on_no_victim(&mut self, size: usize) -> bool {
        // Only a tail waiting for its class has a second way: a full-size chunk.
        match self.tail_waiting {
            Some(id) if size <= self.config.chunk_max && self.class_index(size) == id => {
                self.tail_waiting = None;
                self.tail_fallback = true;
                true
            }
            _ => false,
        }
    }

    fn size_class(&self, size: usize) -> Option<u32> {
        if size > self.config.item_max {
            None
        } else if size > self.config.chunk_max {
            // memcached links a chunked item into the largest class's LRU.
            Some(self.largest() as u32 + 1)
        } else {
            Some(self.class_index(size) as u32 + 1)
        }
    }

    fn is_segmented(&self, size: usize) -> bool {
        size > self.config.chunk_max
    }

    fn max_contiguous(&self) -> usize {
        self.config.chunk_max
    }

    unsafe fn for_each_segment(
        &self,
        ptr: NonNull<u8>,
        size: usize,
        f: &mut dyn FnMut(NonNull<u8>, usize),
    ) {
        if size <= self.config.chunk_max {
            return f(ptr, size);
        }
        // SAFETY: the caller promises a live chunked block; see `free`.
        let mut cur = unsafe { ptr.sub(CHUNK_HEADER) }.as_ptr();
        while let Some(chunk) = NonNull::new(cur) {
            // SAFETY: every chunk of the chain starts with a link we wrote, followed by `len`
            // bytes of caller data inside the chunk.
            let link = unsafe { chunk.cast::<ChunkLink>().as_ptr().read() };
            if link.len > 0 {
                // SAFETY: the data starts right after the 48-byte link, inside the chunk.
                f(unsafe { chunk.add(CHUNK_HEADER) }, link.len as usize);
            }
            cur = link.next;
        }
    }

    fn stats(&self) -> MemStats {
        let detail = SlabDetail {
            total_malloced: self.mem_malloced,
            limit_maxbytes: self.mem_limit,
            pool_pages: self.pool.len() as u32,
            pages_past_limit: self.pages_past_limit,
            page_source: self.source.name().to_string(),
            classes: self.class_stats(),
        };
        self.tally.snapshot(self.mem_malloced, Detail::Slab(detail))
    }

    fn set_limit(&mut self, limit: Option<u64>) {
        self.set_mem_limit(limit);
    }

    fn limit(&self) -> Option<u64> {
        self.mem_limit
    }

    fn limit_kind(&self) -> LimitKind {
        LimitKind::Pages
    }

    fn library_version(&self) -> Option<String> {
        Some("memcached 1.6.18 model".to_string())
    }
}
