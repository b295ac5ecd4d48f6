//! memcached 1.6.18's slab allocator.
//!
//! Memory comes in 1 MiB pages, taken one at a time from a [`PageSource`] when a class's free
//! list is empty. Each page belongs to one class and is cut into
//! `chunks_per_page = 1 MiB / chunk_size` chunks of that class's size (the name `stats slabs`
//! prints; memcached's `slabs.c` calls the field `perslab`); the rest of the page
//! (`1 MiB - chunks_per_page x chunk_size`) is never used. A request goes to the smallest class
//! whose chunk holds it, as `slabs_clsid` picks it.
//!
//! ```text
//!  page (1 MiB, one class)                                 slack
//! +-----------+-----------+-----------+-- ... --+-----------+----+
//! | chunk 0   | chunk 1   | chunk 2   |         | chunk n-1 |    |  n = chunks_per_page
//! +-----------+-----------+-----------+-- ... --+-----------+----+
//!   a free chunk's first 8 bytes link it into its class's free list
//! ```
//!
//! # The class table (`slabs_init`)
//!
//! `size = 48 + min` (48 = `sizeof(item)`); for class 1, 2, ... up to 62: stop if the unaligned
//! `size >= chunk_max / factor` (a floating-point compare); round `size` up to a multiple of 8;
//! that is the class's chunk size with `chunks_per_page = 1048576 / size`; then
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

mod automove;
mod chunked;
mod classes;
mod mover;
mod rebalance;
mod restart;
mod stats;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ptr::{self, NonNull};

use crate::page::{MapOptions, MmapPages, PageSource};
use crate::stats::{Detail, MemStats, Tally};
pub use crate::stats::{MoveStats, SlabClassStats, SlabDetail};
use crate::{AllocError, Allocator, Block, LimitKind, PageMover};

pub use automove::ClassActivity;
use chunked::ChunkLink;
pub use classes::{AutomoveConfig, ClassInfo, ConfigError, SlabConfig};
pub use mover::{LiveChunk, Rescued};
pub use rebalance::{MoveError, PageInfo};

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

struct Class {
    size: u32,
    chunks_per_page: u32,
    /// Head of the free list: a free chunk's first 8 bytes hold the next free chunk.
    free: *mut u8,
    free_count: u64,
    pages: u32,
    /// The class's pages in the order it got them (memcached's `slab_list`): the page mover
    /// takes the first.
    page_list: Vec<NonNull<u8>>,
    requested: u64,
}

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
    /// Every chunk that belongs to a chunked item (header and data chunks): the page mover
    /// tells them from plain items, as memcached reads `ITEM_CHUNKED`/`ITEM_CHUNK` flags.
    chunked: HashSet<usize>,
    /// The page move under way, if any.
    reassign: Option<mover::Reassign>,
    /// The page mover's counters.
    moves: MoveStats,
    /// The automover's window, with `automove=1`.
    automover: Option<automove::Automover>,
    /// `slabs_reassign_pick_any`'s round-robin position (a class index).
    pick_cur: usize,
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
    /// A slab allocator taking its pages with `mmap` (as its `huge` and `prefault` say), or
    /// from the file its `file` names (created anew, or emptied).
    pub fn new(config: SlabConfig) -> Result<Self, ConfigError> {
        if let Some(path) = config.file.clone() {
            let file = crate::page_file::PageFile::create(&path, PAGE_SIZE, restart::RESERVED)
                .map_err(|e| ConfigError(format!("file {}: {e}", path.display())))?;
            let mut slab = Self::with_source(config, MmapPages::with_file(file))?;
            // memcached with `-e` preallocates one page for every class at a cold start
            // (`slabs.c`, `slabs_init` and `slabs_preallocate`), before any limit applies.
            for id in 0..slab.classes.len() {
                slab.new_page(id).ok_or_else(|| {
                    ConfigError(format!(
                        "file {}: no page for class {} (the file cannot grow)",
                        path.display(),
                        id + 1
                    ))
                })?;
            }
            return Ok(slab);
        }
        let options = MapOptions {
            huge: config.huge,
            prefault: config.prefault,
        };
        Self::with_source(config, MmapPages::new(options))
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
                chunks_per_page: c.chunks_per_page,
                free: ptr::null_mut(),
                free_count: 0,
                pages: 0,
                page_list: Vec::new(),
                requested: 0,
            })
            .collect();
        let automover = config
            .automove
            .filter(|a| a.mode == 1)
            .map(|a| automove::Automover::new(classes.len(), a.window, a.ratio));
        let pick_cur = classes.len() - 1;
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
            chunked: HashSet::new(),
            reassign: None,
            moves: MoveStats::default(),
            automover,
            pick_cur,
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
                chunks_per_page: c.chunks_per_page,
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
        if let Some(m) = &mut self.reassign {
            // A chunk of the page being moved stays off the free list (memcached marks it
            // `ITEM_SLABBED|ITEM_FETCHED`: cleared for the move).
            if m.absorb(chunk.as_ptr()) {
                return;
            }
        }
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
        if self.source.page_file().is_some() {
            // A page of a file outlives its items: no stale item may show through the new
            // class's chunk boundaries at a restart.
            // SAFETY: the page is ours, PAGE_SIZE bytes, and unused until carved.
            unsafe { ptr::write_bytes(page.as_ptr(), 0, PAGE_SIZE) };
        }
        self.pages.insert(page.as_ptr() as usize, Some(id as u8));
        let class = &mut self.classes[id];
        class.pages += 1;
        class.page_list.push(page);
        let size = class.size as usize;
        for i in 0..class.chunks_per_page as usize {
            // SAFETY: `i * size < chunks_per_page * size <= PAGE_SIZE`, so the chunk is in the
            // page.
            let chunk = unsafe { page.as_ptr().add(i * size) };
            Self::push_free(class, chunk);
        }
    }

    /// Sets memcached's `-m` limit in bytes (pages are counted whole).
    fn set_mem_limit(&mut self, limit: Option<u64>) {
        self.mem_limit = limit;
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

    fn restart(&mut self) -> Result<(Self, u64), String> {
        self.restart_slab()
    }

    fn adopt_blocks(&mut self, live: &mut dyn FnMut(NonNull<u8>, usize) -> Option<usize>) {
        self.adopt_chunks(live);
    }

    fn file_base(&self) -> Option<NonNull<u8>> {
        self.source.page_file().map(|f| f.base())
    }

    fn for_each_block_region(&self, f: &mut dyn FnMut(NonNull<u8>, usize, usize)) -> bool {
        for c in &self.classes {
            let used = c.chunks_per_page as usize * c.size as usize;
            for &page in &c.page_list {
                f(page, used, c.size as usize);
            }
        }
        true
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
        self.tally
            .snapshot(self.mem_malloced, Detail::Slab(self.detail()))
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

    fn page_mover(&mut self) -> Option<&mut dyn PageMover> {
        Some(self)
    }

    fn automove_mode(&self) -> u8 {
        PageMover::automove_mode(self)
    }
}
