//! The op-program property test, for every allocator: random programs of alloc / realloc /
//! free, checked after every step against a model.
//!
//! After each step: no two live blocks (or segments of a chunked block) overlap; every live
//! block still holds the bytes written over its whole usable size; `live_blocks` and
//! `requested_bytes` equal the model's exactly; `requested <= allocated`, and
//! `allocated <= footprint` where the allocator owns its memory; the memory limit is never
//! exceeded in the allocator's own terms.

use std::collections::BTreeMap;
use std::ptr::NonNull;

use fraglab_allocators::bump::Bump;
use fraglab_allocators::glibc::Glibc;
use fraglab_allocators::jemalloc::Jemalloc;
use fraglab_allocators::log::{Log, LogConfig};
use fraglab_allocators::mimalloc::Mimalloc;
use fraglab_allocators::slab::{Slab, SlabConfig, PAGE_SIZE};
use fraglab_allocators::zmalloc::Zmalloc;
use fraglab_allocators::{AllocError, Allocator, Detail, LimitKind, MemStats};
use proptest::prelude::*;

// glibc's figures are process-wide: keep the test harness's own allocations out of them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone)]
enum Op {
    Alloc(usize),
    /// `alloc_item(size, head)`: only the slab allocator uses the head (chunked items).
    AllocItem(usize, usize),
    Realloc(usize, usize),
    Free(usize),
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        60 => 0usize..600,
        25 => 600usize..20_000,
        10 => 20_000usize..300_000,
        5 => 500_000usize..1_200_000,
    ]
}

fn program() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => size().prop_map(Op::Alloc),
            1 => (size(), 0usize..300).prop_map(|(s, h)| Op::AllocItem(s, h.min(s))),
            2 => (any::<usize>(), size()).prop_map(|(i, s)| Op::Realloc(i, s)),
            3 => any::<usize>().prop_map(Op::Free),
        ],
        1..80,
    )
}

fn limit() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        1 => Just(None),
        1 => (1u64..8).prop_map(|mb| Some(mb << 20)),
    ]
}

struct Live {
    ptr: NonNull<u8>,
    size: usize,
    /// Bytes written (the whole usable size of a contiguous block, `size` if segmented).
    span: usize,
    /// The head passed to `alloc_item` (0 for `alloc`).
    head: usize,
    tag: u8,
}

fn byte(tag: u8, offset: usize) -> u8 {
    tag.wrapping_mul(31) ^ (offset as u8).wrapping_mul(7) ^ (offset >> 8) as u8
}

/// The memory pieces of a live block.
fn pieces<A: Allocator>(a: &A, b: &Live) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if a.is_segmented(b.size) {
        // SAFETY: `b` is live in `a` with `b.size` requested bytes.
        unsafe {
            a.for_each_segment(b.ptr, b.size, &mut |p, n| {
                out.push((p.as_ptr() as usize, n))
            })
        };
    } else {
        out.push((b.ptr.as_ptr() as usize, b.span));
    }
    out
}

fn fill<A: Allocator>(a: &A, b: &Live) {
    let mut off = 0;
    for (start, len) in pieces(a, b) {
        for i in 0..len {
            // SAFETY: each piece is memory of the live block `b`.
            unsafe { (start as *mut u8).add(i).write(byte(b.tag, off + i)) };
        }
        off += len;
    }
}

fn check_bytes<A: Allocator>(a: &A, b: &Live, upto: usize) -> Result<(), TestCaseError> {
    let mut off = 0;
    for (start, len) in pieces(a, b) {
        for i in 0..len.min(upto.saturating_sub(off)) {
            // SAFETY: each piece is memory of the live block `b`.
            let got = unsafe { (start as *const u8).add(i).read() };
            prop_assert_eq!(
                got,
                byte(b.tag, off + i),
                "block of {} bytes, offset {}",
                b.size,
                off + i
            );
        }
        off += len;
    }
    Ok(())
}

/// The chunks memcached uses for an item of `size` bytes with `head` bytes of header and key
/// (their class chunk sizes), as memcached 1.6.18 takes them (`items.c`'s `do_item_alloc` and
/// `do_item_alloc_chunk`; the 48-byte `item` and `item_chunk` headers of `memcached.h`), derived
/// here independently of the allocator.
fn memcached_chunks(table: &[u32], chunk_max: usize, size: usize, head: usize) -> Vec<u32> {
    let fit = |n: usize| {
        *table
            .iter()
            .find(|&&c| c as usize >= n)
            .expect("a class fits")
    };
    if size <= chunk_max {
        return vec![fit(size)];
    }
    let mut out = vec![fit(head + 48)];
    let mut remain = size - head;
    while remain > 0 {
        let c = (remain + 48).min(chunk_max);
        out.push(fit(c));
        remain -= c - 48;
    }
    out
}

/// Slab-only checks: per-class used chunks and `mem_requested` equal the model's, and a page
/// taken past the limit went to a class that had none.
///
/// Under a limit a chunked item's tail may fall back to a full-size chunk (as memcached's
/// `do_item_alloc_chunk` does), so per-class chunk counts and `allocated_bytes` are compared
/// exactly only without a limit; with one, the total number of used chunks is.
fn check_slab(
    prev: &Option<MemStats>,
    st: &MemStats,
    live: &[Live],
    limit: Option<u64>,
    model_past: &mut u64,
) -> Result<(), TestCaseError> {
    let Detail::Slab(d) = &st.detail else {
        return Ok(());
    };
    let table: Vec<u32> = d.classes.iter().map(|c| c.chunk_size).collect();
    let chunk_max = *table.last().unwrap() as usize;
    let mut used = vec![0u64; table.len()];
    let mut requested = vec![0u64; table.len()];
    let mut allocated = 0u64;
    for b in live {
        for c in memcached_chunks(&table, chunk_max, b.size, b.head) {
            used[table.iter().position(|&t| t == c).unwrap()] += 1;
            allocated += u64::from(c);
        }
        let class = if b.size > chunk_max {
            table.len() - 1
        } else {
            table.iter().position(|&t| t as usize >= b.size).unwrap()
        };
        requested[class] += b.size as u64;
    }
    for (i, c) in d.classes.iter().enumerate() {
        if limit.is_none() {
            prop_assert_eq!(c.used_chunks, used[i], "used chunks of class {}", c.class);
        }
        prop_assert_eq!(
            c.mem_requested,
            requested[i],
            "mem_requested of class {}",
            c.class
        );
        prop_assert_eq!(c.used_chunks + c.free_chunks, c.total_chunks);
    }
    if limit.is_none() {
        prop_assert_eq!(st.allocated_bytes, allocated);
    }
    prop_assert_eq!(
        d.classes.iter().map(|c| c.used_chunks).sum::<u64>(),
        used.iter().sum::<u64>()
    );
    prop_assert_eq!(
        d.total_malloced,
        u64::from(d.classes.iter().map(|c| c.total_pages).sum::<u32>() + d.pool_pages)
            * PAGE_SIZE as u64
    );
    if let (
        Some(limit),
        Some(MemStats {
            detail: Detail::Slab(p),
            ..
        }),
    ) = (limit, prev)
    {
        // Pages this step took within the limit (each needs `malloced + 1 MiB <= limit`), and
        // beyond it: those may only be the first page of a class that had none.
        let page = PAGE_SIZE as u64;
        let gained = (d.total_malloced - p.total_malloced) / page;
        let room = limit.saturating_sub(p.total_malloced) / page;
        let past = gained.saturating_sub(room);
        let firsts = d
            .classes
            .iter()
            .zip(&p.classes)
            .filter(|(now, before)| before.total_pages == 0 && now.total_pages > 0)
            .count() as u64;
        prop_assert!(
            past <= firsts,
            "{} pages past the limit, {} first pages",
            past,
            firsts
        );
        *model_past += past;
        prop_assert_eq!(u64::from(d.pages_past_limit), *model_past);
    }
    Ok(())
}

fn check_state<A: Allocator>(a: &A, live: &[Live], owns_memory: bool) -> Result<(), TestCaseError> {
    let mut ranges: BTreeMap<usize, usize> = BTreeMap::new();
    for b in live {
        for (start, len) in pieces(a, b) {
            let end = start + len;
            if let Some((&s, &e)) = ranges.range(..end).next_back() {
                prop_assert!(
                    e <= start || s >= end,
                    "overlap: [{start:#x},{end:#x}) with [{s:#x},{e:#x})"
                );
            }
            ranges.insert(start, end);
        }
    }
    let st = a.stats();
    prop_assert_eq!(st.live_blocks, live.len() as u64);
    prop_assert_eq!(
        st.requested_bytes,
        live.iter().map(|b| b.size as u64).sum::<u64>()
    );
    prop_assert!(
        st.requested_bytes <= st.allocated_bytes,
        "requested {} > allocated {}",
        st.requested_bytes,
        st.allocated_bytes
    );
    if owns_memory {
        prop_assert!(
            st.allocated_bytes <= st.footprint_bytes,
            "allocated {} > footprint {}",
            st.allocated_bytes,
            st.footprint_bytes
        );
    }
    if let Some(limit) = a.limit() {
        match a.limit_kind() {
            LimitKind::Pages => {
                // Checked step by step in `check_slab`; overall, pages past the limit are at
                // most one per class.
                let Detail::Slab(d) = &st.detail else {
                    unreachable!("pages limit is the slab's")
                };
                let classes = d.classes.iter().filter(|c| c.total_pages > 0).count() as u64;
                prop_assert!(d.total_malloced <= limit + classes * PAGE_SIZE as u64);
            }
            LimitKind::UsedMemory | LimitKind::AllocatedBytes => {
                prop_assert!(
                    st.allocated_bytes <= limit,
                    "allocated {} > limit {}",
                    st.allocated_bytes,
                    limit
                )
            }
            LimitKind::Footprint => prop_assert!(
                st.footprint_bytes <= limit,
                "footprint {} > limit {}",
                st.footprint_bytes,
                limit
            ),
        }
    }
    Ok(())
}

/// How far `usable_size_item` predicts what an allocation costs.
#[derive(Clone, Copy, PartialEq)]
enum Prediction {
    /// `allocated_bytes` grows by exactly the prediction (when no limit is set).
    Exact,
    /// It grows by at least the prediction (glibc may hand out a free chunk unsplit).
    AtLeast,
}

fn run<A: Allocator>(
    a: A,
    prog: &[Op],
    limit: Option<u64>,
    owns_memory: bool,
) -> Result<(), TestCaseError> {
    run_with(a, prog, limit, owns_memory, Prediction::Exact)
}

fn span<A: Allocator>(a: &A, size: usize, usable: usize) -> usize {
    if a.is_segmented(size) {
        size
    } else {
        usable
    }
}

fn run_with<A: Allocator>(
    mut a: A,
    prog: &[Op],
    limit: Option<u64>,
    owns_memory: bool,
    prediction: Prediction,
) -> Result<(), TestCaseError> {
    a.set_limit(limit);
    let mut live: Vec<Live> = Vec::new();
    let mut tag = 0u8;
    let mut prev: Option<MemStats> = Some(a.stats());
    let mut model_past = 0u64;
    for op in prog {
        match *op {
            Op::Alloc(size) | Op::AllocItem(size, _) => {
                let head = if let Op::AllocItem(_, h) = *op { h } else { 0 };
                let before = a.stats().allocated_bytes;
                let result = match op {
                    Op::AllocItem(..) => a.alloc_item(size, head),
                    _ => a.alloc(size),
                };
                match result {
                    Ok(block) => {
                        prop_assert!(block.usable >= size);
                        let predicted = a.usable_size_item(size, head).unwrap() as u64;
                        let grown = a.stats().allocated_bytes - before;
                        match prediction {
                            Prediction::Exact if limit.is_none() => {
                                prop_assert_eq!(grown, predicted, "cost of {} bytes", size)
                            }
                            Prediction::Exact => {}
                            Prediction::AtLeast => prop_assert!(
                                grown >= predicted,
                                "cost of {} bytes: {} < predicted {}",
                                size,
                                grown,
                                predicted
                            ),
                        }
                        tag = tag.wrapping_add(1);
                        let span = span(&a, size, block.usable);
                        let b = Live {
                            ptr: block.ptr,
                            size,
                            span,
                            head,
                            tag,
                        };
                        fill(&a, &b);
                        live.push(b);
                    }
                    Err(AllocError::OutOfMemory { .. }) => {
                        prop_assert!(limit.is_some(), "OOM without a limit")
                    }
                    Err(AllocError::TooLarge { max, .. }) => prop_assert!(size > max),
                }
            }
            Op::Realloc(i, size) if !live.is_empty() => {
                let i = i % live.len();
                check_bytes(&a, &live[i], usize::MAX)?;
                let (ptr, old) = (live[i].ptr, live[i].size);
                // SAFETY: `ptr` is live with `old` requested bytes.
                match unsafe { a.realloc(ptr, old, size) } {
                    Ok(block) => {
                        prop_assert!(block.usable >= size);
                        // A chunked item keeps its head; a block that was not chunked has none.
                        let head = if a.is_segmented(old) {
                            live[i].head.min(size)
                        } else {
                            0
                        };
                        let span = span(&a, size, block.usable);
                        let moved = Live {
                            ptr: block.ptr,
                            size,
                            span,
                            head,
                            tag: live[i].tag,
                        };
                        check_bytes(&a, &moved, old.min(size))?;
                        tag = tag.wrapping_add(1);
                        live[i] = Live { tag, ..moved };
                        fill(&a, &live[i]);
                    }
                    Err(AllocError::OutOfMemory { .. }) => {
                        prop_assert!(limit.is_some(), "OOM without a limit");
                        check_bytes(&a, &live[i], usize::MAX)?;
                    }
                    Err(AllocError::TooLarge { max, .. }) => prop_assert!(size > max),
                }
            }
            Op::Free(i) if !live.is_empty() => {
                let b = live.swap_remove(i % live.len());
                check_bytes(&a, &b, usize::MAX)?;
                // SAFETY: `b` is live with `b.size` requested bytes and freed once.
                unsafe { a.free(b.ptr, b.size) };
            }
            _ => {}
        }
        check_state(&a, &live, owns_memory)?;
        let st = a.stats();
        check_slab(&prev, &st, &live, limit, &mut model_past)?;
        prev = Some(st);
    }
    for b in live.drain(..) {
        // SAFETY: as above.
        unsafe { a.free(b.ptr, b.size) };
    }
    let st = a.stats();
    prop_assert_eq!(
        (st.live_blocks, st.requested_bytes, st.allocated_bytes),
        (0, 0, 0)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn slab_default(prog in program(), limit in limit()) {
        run(Slab::new(SlabConfig::default()).unwrap(), &prog, limit, true)?;
    }

    #[test]
    fn slab_small_chunk_max_factor_2(prog in program(), limit in limit()) {
        let config = SlabConfig { factor: 2.0, chunk_max: 16384, ..SlabConfig::default() };
        run(Slab::new(config).unwrap(), &prog, limit, true)?;
    }

    #[test]
    fn slab_explicit_sizes_heap_pages(prog in program(), limit in limit()) {
        let config = SlabConfig { sizes: Some(vec![96, 192, 384, 4096, 65536]), ..SlabConfig::default() };
        let slab = Slab::with_source(config, fraglab_allocators::page::HeapPages).unwrap();
        run(slab, &prog, limit, true)?;
    }

    #[test]
    fn glibc(prog in program(), limit in limit()) {
        // Process-wide figures: allocated <= footprint is not this allocator's to promise.
        run_with(Glibc::new(), &prog, limit, false, Prediction::AtLeast)?;
    }

    #[test]
    fn jemalloc(prog in program(), limit in limit()) {
        run(Jemalloc::new().unwrap(), &prog, limit, true)?;
    }

    #[test]
    fn mimalloc(prog in program(), limit in limit()) {
        run(Mimalloc::new().unwrap(), &prog, limit, true)?;
    }

    #[test]
    fn bump(prog in program(), limit in limit()) {
        run(Bump::default(), &prog, limit, true)?;
    }

    #[test]
    fn log_1m_segments(prog in program(), limit in limit()) {
        let config = LogConfig { segment: 1 << 20, ..LogConfig::default() };
        run(Log::new(config).unwrap(), &prog, limit, true)?;
    }

    #[test]
    fn zmalloc_prefix_glibc(prog in program(), limit in limit()) {
        run(Zmalloc::new(Glibc::new(), true), &prog, limit, false)?;
    }

    #[test]
    fn zmalloc_usable_glibc(prog in program(), limit in limit()) {
        run_with(Zmalloc::new(Glibc::new(), false), &prog, limit, false, Prediction::AtLeast)?;
    }

    #[test]
    fn zmalloc_usable_mimalloc(prog in program(), limit in limit()) {
        run(Zmalloc::new(Mimalloc::new().unwrap(), false), &prog, limit, true)?;
    }

    #[test]
    fn zmalloc_prefix_jemalloc(prog in program(), limit in limit()) {
        run(Zmalloc::new(Jemalloc::new().unwrap(), true), &prog, limit, true)?;
    }

    #[test]
    fn zmalloc_usable_jemalloc(prog in program(), limit in limit()) {
        run(Zmalloc::new(Jemalloc::new().unwrap(), false), &prog, limit, true)?;
    }

    #[test]
    fn zmalloc_prefix_mimalloc(prog in program(), limit in limit()) {
        run(Zmalloc::new(Mimalloc::new().unwrap(), true), &prog, limit, true)?;
    }
}
