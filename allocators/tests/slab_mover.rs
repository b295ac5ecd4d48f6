//! The slab page mover, as a property: random programs of allocations, frees and page moves
//! (memcached's `slabs reassign`), with the test as the items' owner that drops or re-points
//! each live chunk the mover hands it.
//!
//! After every page move (and every 16 other steps): every live block holds the bytes written to it (read back through its
//! segments, so a chunked item's relinked chain is checked too); each class's used chunks
//! equal a recount from the live blocks, its free chunks the length of its free list, and its
//! chunks `pages x chunks_per_page`; no page is in two places.

use std::collections::BTreeMap;
use std::ptr::NonNull;

use fraglab_allocators::page::HeapPages;
use fraglab_allocators::slab::{MoveError, Slab, SlabConfig};
use fraglab_allocators::{read_block, write_block, Allocator, PageMover};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Alloc(usize),
    Free(usize),
    /// `slabs reassign`: source from the classes in use, destination any class or the pool;
    /// `rescue_share` in 0..4: how many of 4 live items the owner asks to rescue (the rest it
    /// drops, as the mover does with expired items).
    Reassign {
        src: usize,
        dst: u32,
        rescue_share: u8,
    },
}

/// Small chunk_max so that chunked items are common and spread over several classes.
fn config() -> SlabConfig {
    SlabConfig {
        chunk_max: 16 << 10,
        item_max: 64 << 10,
        ..SlabConfig::default()
    }
}

fn program() -> impl Strategy<Value = Vec<Op>> {
    let size = prop_oneof![
        6 => 1usize..400,
        3 => 400usize..16_000,
        1 => 16_001usize..64_000,
    ];
    prop::collection::vec(
        prop_oneof![
            8 => size.prop_map(Op::Alloc),
            3 => any::<usize>().prop_map(Op::Free),
            2 => (any::<usize>(), 0u32..40, 0u8..=4).prop_map(|(src, dst, rescue_share)| {
                Op::Reassign { src, dst, rescue_share }
            }),
        ],
        1..250,
    )
}

/// A block's bytes: a function of its id, so any mix-up shows.
fn pattern(id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (id as usize).wrapping_mul(131).wrapping_add(i) as u8)
        .collect()
}

struct Owner {
    slab: Slab<HeapPages>,
    /// Block address -> (id, size).
    live: BTreeMap<usize, (u64, usize)>,
    next_id: u64,
}

impl Owner {
    fn check(&self) -> Result<(), TestCaseError> {
        // Bytes intact.
        for (&addr, &(id, size)) in &self.live {
            let mut buf = vec![0u8; size];
            let ptr = NonNull::new(addr as *mut u8).unwrap();
            // SAFETY: `ptr` is a live block of `size` bytes of this slab.
            unsafe { read_block(&self.slab, ptr, size, 0, &mut buf) };
            prop_assert_eq!(buf, pattern(id, size), "block {} of {} bytes", id, size);
        }
        // Chunk accounting against a recount from the live blocks.
        let stats = self.slab.class_stats();
        let chunks: u64 = self
            .live
            .iter()
            .map(|(&addr, &(_, size))| {
                let ptr = NonNull::new(addr as *mut u8).unwrap();
                // SAFETY: a live block of this slab requested with `size` bytes.
                unsafe { self.slab.usable_size_of(ptr, size) as u64 }
            })
            .sum();
        let counted: u64 = stats
            .iter()
            .map(|c| c.used_chunks * u64::from(c.chunk_size))
            .sum();
        prop_assert_eq!(counted, chunks, "used chunk bytes against the live blocks");
        for c in &stats {
            prop_assert_eq!(
                c.used_chunks + c.free_chunks,
                u64::from(c.total_pages) * u64::from(c.chunks_per_page),
                "class {} chunks",
                c.class
            );
            let pages = self.slab.class_pages(c.class).unwrap();
            prop_assert_eq!(pages.len() as u32, c.total_pages);
            let free: u64 = pages.iter().map(|p| u64::from(p.free_chunks)).sum();
            prop_assert_eq!(free, c.free_chunks, "class {} free list", c.class);
        }
        prop_assert_eq!(
            self.slab.stats().live_blocks,
            self.live.len() as u64,
            "live blocks"
        );
        Ok(())
    }

    fn reassign(&mut self, src: u32, dst: u32, rescue_share: u8) -> Result<(), TestCaseError> {
        let live = match self.slab.start(src, dst) {
            Ok(live) => live,
            Err(MoveError::NoSpare(_) | MoveError::SameClass(_) | MoveError::NoSuchClass(_)) => {
                return Ok(())
            }
            Err(e) => return Err(TestCaseError::fail(format!("start: {e}"))),
        };
        for (i, chunk) in live.iter().enumerate() {
            let Some(block) = self.slab.block(chunk) else {
                continue;
            };
            let (id, size) = *self
                .live
                .get(&(block.as_ptr() as usize))
                .ok_or_else(|| TestCaseError::fail("the mover named a block nobody holds"))?;
            let rescue = (i % 4) < rescue_share as usize;
            if rescue {
                match self.slab.rescue(chunk) {
                    Ok(Some(r)) => {
                        prop_assert_eq!(r.from, block);
                        self.live.remove(&(r.from.as_ptr() as usize));
                        self.live.insert(r.to.as_ptr() as usize, (id, size));
                        continue;
                    }
                    Ok(None) => continue,
                    Err(MoveError::NoMemory(_)) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("rescue: {e}"))),
                }
            }
            self.live.remove(&(block.as_ptr() as usize));
            // SAFETY: a live block requested with `size` bytes, freed once.
            unsafe { self.slab.free(block, size) };
        }
        self.slab
            .finish()
            .map_err(|e| TestCaseError::fail(format!("finish: {e}")))?;
        Ok(())
    }
}

fn run(ops: &[Op], limit: Option<u64>) -> Result<(), TestCaseError> {
    let mut slab = Slab::with_source(config(), HeapPages).unwrap();
    slab.set_limit(limit);
    let mut o = Owner {
        slab,
        live: BTreeMap::new(),
        next_id: 0,
    };
    for (step, op) in ops.iter().enumerate() {
        let is_move = matches!(op, Op::Reassign { .. });
        match *op {
            Op::Alloc(size) => {
                let head = size.min(200);
                if let Ok(block) = o.slab.alloc_item(size, head) {
                    let id = o.next_id;
                    o.next_id += 1;
                    // SAFETY: a fresh block of `size` bytes.
                    unsafe { write_block(&o.slab, block.ptr, size, 0, &pattern(id, size)) };
                    o.live.insert(block.ptr.as_ptr() as usize, (id, size));
                }
            }
            Op::Free(i) => {
                if o.live.is_empty() {
                    continue;
                }
                let addr = *o.live.keys().nth(i % o.live.len()).unwrap();
                let (_, size) = o.live.remove(&addr).unwrap();
                // SAFETY: a live block requested with `size` bytes, freed once.
                unsafe { o.slab.free(NonNull::new(addr as *mut u8).unwrap(), size) };
            }
            Op::Reassign {
                src,
                dst,
                rescue_share,
            } => {
                let with_pages: Vec<u32> = o
                    .slab
                    .class_stats()
                    .iter()
                    .filter(|c| c.total_pages > 0)
                    .map(|c| c.class)
                    .collect();
                if with_pages.is_empty() {
                    continue;
                }
                let src = with_pages[src % with_pages.len()];
                let dst = dst % (o.slab.class_count() as u32 + 1);
                let moved = o.slab.move_stats().slabs_moved;
                let pages = o.slab.class_stats()[src as usize - 1].total_pages;
                o.reassign(src, dst, rescue_share)?;
                if pages >= 2 && src != dst {
                    prop_assert_eq!(o.slab.move_stats().slabs_moved, moved + 1);
                    prop_assert_eq!(
                        o.slab.class_stats()[src as usize - 1].total_pages,
                        pages - 1
                    );
                }
            }
        }
        // Every move is checked; other steps every 16 (the check reads every block).
        if is_move || step % 16 == 15 || step + 1 == ops.len() {
            o.check()?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn page_moves_keep_every_live_item_intact_and_the_books_exact(ops in program()) {
        run(&ops, None)?;
    }

    #[test]
    fn page_moves_under_a_memory_limit(ops in program(), mb in 2u64..6) {
        run(&ops, Some(mb << 20))?;
    }
}

#[test]
fn a_move_to_the_pool_gives_memory_back_above_the_limit_and_the_page_is_reused() {
    let mut slab = Slab::with_source(SlabConfig::default(), HeapPages).unwrap();
    // Three pages of class 1 (96-byte chunks, 10,922 a page), then a 2 MiB limit.
    let mut blocks = Vec::new();
    for _ in 0..3 * 10_922 {
        blocks.push(slab.alloc(50).unwrap().ptr);
    }
    assert_eq!(slab.class_stats()[0].total_pages, 3);
    // Free the first page's items: the page mover finds them all free.
    for b in blocks.drain(..10_922) {
        // SAFETY: live blocks of 50 bytes, freed once.
        unsafe { slab.free(b, 50) };
    }
    slab.set_limit(Some(2 << 20));
    assert_eq!(slab.start(1, 0).unwrap(), vec![]);
    slab.finish().unwrap();
    let st = slab.class_stats();
    assert_eq!(st[0].total_pages, 2);
    // 3 MiB held against a 2 MiB limit: the pooled page went back to the system.
    assert_eq!(slab.stats().footprint_bytes, 2 << 20);
    assert_eq!(slab.move_stats().slabs_moved, 1);
    // Nothing to spare below 2 pages... and 2 pages is enough to give one.
    assert!(slab.start(1, 5).is_ok());
    // The first page (the oldest) is the one that moves: its live items come back.
    assert_eq!(slab.finish(), Err(MoveError::LiveChunks(10_922)));
}
