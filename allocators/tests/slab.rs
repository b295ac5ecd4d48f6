//! The slab allocator against memcached 1.6.18's numbers: class tables (as `memcached -vv`
//! printed them for these settings), class choice, chunked items, the item size limit, the page
//! limit with the first-page rule, and the rebalancing primitive.

use fraglab_allocators::slab::{MoveError, Slab, SlabConfig, PAGE_SIZE};
use fraglab_allocators::{AllocError, Allocator, Detail};

fn table(config: SlabConfig) -> Vec<(u32, u32)> {
    config
        .classes()
        .unwrap()
        .iter()
        .map(|c| (c.chunk_size, c.chunks_per_page))
        .collect()
}

fn parse(expected: &str) -> Vec<(u32, u32)> {
    expected
        .split_whitespace()
        .map(|p| {
            let (a, b) = p.split_once('/').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

fn cfg() -> SlabConfig {
    SlabConfig::default()
}

// Each expected table is `chunk_size/chunks_per_page` per class, as memcached 1.6.18 -vv
// printed it (as `perslab`).
#[test]
fn class_table_defaults() {
    let t = table(cfg());
    assert_eq!(t.len(), 39);
    assert_eq!(
        t,
        parse(
            "96/10922 120/8738 152/6898 192/5461 240/4369 304/3449 384/2730 480/2184 600/1747 \
               752/1394 944/1110 1184/885 1480/708 1856/564 2320/451 2904/361 3632/288 4544/230 \
               5680/184 7104/147 8880/118 11104/94 13880/75 17352/60 21696/48 27120/38 33904/30 \
               42384/24 52984/19 66232/15 82792/12 103496/10 129376/8 161720/6 202152/5 \
               252696/4 315872/3 394840/2 524288/2"
        )
    );
}

#[test]
fn class_table_factor_2() {
    assert_eq!(
        table(SlabConfig {
            factor: 2.0,
            ..cfg()
        }),
        parse(
            "96/10922 192/5461 384/2730 768/1365 1536/682 3072/341 6144/170 12288/85 24576/42 \
               49152/21 98304/10 196608/5 524288/2"
        )
    );
}

#[test]
fn class_table_factor_1_08_hits_the_63_class_cap() {
    let t = table(SlabConfig {
        factor: 1.08,
        ..cfg()
    });
    assert_eq!(t.len(), 63);
    assert_eq!(
        &t[..8],
        &parse("96/10922 104/10082 112/9362 120/8738 136/7710 152/6898 168/6241 184/5698")[..]
    );
    assert_eq!(
        &t[58..],
        &parse("10944/95 11824/88 12776/82 13800/75 524288/2")[..]
    );
}

#[test]
fn class_table_min_16() {
    assert_eq!(
        table(SlabConfig { min: 16, ..cfg() }),
        parse(
            "64/16384 80/13107 104/10082 136/7710 176/5957 224/4681 280/3744 352/2978 440/2383 \
               552/1899 696/1506 872/1202 1096/956 1376/762 1720/609 2152/487 2696/388 3376/310 \
               4224/248 5280/198 6600/158 8256/127 10320/101 12904/81 16136/64 20176/51 \
               25224/41 31536/33 39424/26 49280/21 61600/17 77000/13 96256/10 120320/8 \
               150400/6 188000/5 235000/4 293752/3 367192/2 524288/2"
        )
    );
}

#[test]
fn class_table_small_chunk_max() {
    assert_eq!(
        table(SlabConfig {
            chunk_max: 16384,
            ..cfg()
        }),
        parse(
            "96/10922 120/8738 152/6898 192/5461 240/4369 304/3449 384/2730 480/2184 600/1747 \
               752/1394 944/1110 1184/885 1480/708 1856/564 2320/451 2904/361 3632/288 4544/230 \
               5680/184 7104/147 8880/118 11104/94 16384/64"
        )
    );
    assert_eq!(
        table(SlabConfig {
            chunk_max: 16384,
            factor: 1.5,
            min: 24,
            ..cfg()
        }),
        parse(
            "72/14563 112/9362 168/6241 256/4096 384/2730 576/1820 864/1213 1296/809 1944/539 \
               2920/359 4384/239 6576/159 9864/106 16384/64"
        )
    );
}

#[test]
fn class_table_chunk_max_of_a_whole_page() {
    let t = table(SlabConfig {
        chunk_max: PAGE_SIZE,
        ..cfg()
    });
    assert_eq!(t.len(), 42);
    assert_eq!(
        &t[37..],
        &parse("394840/2 493552/2 616944/1 771184/1 1048576/1")[..]
    );
}

#[test]
fn class_table_explicit_sizes() {
    assert_eq!(
        table(SlabConfig {
            sizes: Some(vec![96, 192, 384]),
            ..cfg()
        }),
        parse("96/10922 192/5461 384/2730 524288/2")
    );
    // Sizes are rounded up to 8 like computed ones.
    assert_eq!(
        table(SlabConfig {
            sizes: Some(vec![100, 200]),
            ..cfg()
        })[..2],
        parse("104/10082 200/5242")[..]
    );
}

#[test]
fn invalid_settings_are_refused_with_reasons() {
    let err = |c: SlabConfig| c.classes().unwrap_err().to_string();
    assert!(err(SlabConfig {
        factor: 1.0,
        ..cfg()
    })
    .contains("factor must be greater than 1"));
    assert!(err(SlabConfig {
        chunk_max: 1000,
        ..cfg()
    })
    .contains("divide evenly"));
    assert!(err(SlabConfig {
        sizes: Some(vec![96, 100]),
        ..cfg()
    })
    .contains("more than 8 bytes larger"));
    assert!(err(SlabConfig {
        sizes: Some(vec![600_000]),
        ..cfg()
    })
    .contains("out of the valid range"));
}

#[test]
fn class_choice_at_and_around_boundaries() {
    let slab = Slab::new(cfg()).unwrap();
    for (size, class, chunk) in [
        (0, 1, 96),
        (1, 1, 96),
        (96, 1, 96),
        (97, 2, 120),
        (120, 2, 120),
        (121, 3, 152),
        (600, 9, 600),
        (601, 10, 752),
        (394840, 38, 394840),
        (394841, 39, 524288),
        (524288, 39, 524288),
    ] {
        assert_eq!(slab.size_class(size), Some(class), "class of {size}");
        assert_eq!(slab.usable_size(size), Ok(chunk), "chunk of {size}");
    }
    // Chunked items are linked into the largest class; above item_max there is none.
    assert_eq!(slab.size_class(524289), Some(39));
    assert_eq!(slab.size_class(PAGE_SIZE + 1), None);
}

fn detail(slab: &Slab) -> fraglab_allocators::slab::SlabDetail {
    match slab.stats().detail {
        Detail::Slab(d) => d,
        other => panic!("not a slab detail: {other:?}"),
    }
}

#[test]
fn a_600000_byte_item_is_stored_chunked_like_memcached() {
    // memcached: key "k" (1 byte), no flags, CAS: ntotal = 48 + 2 + (V + 2) + 8 = 600,000;
    // head = 48 + 2 + 8 = 58 -> header chunk 58 + 48 = 106 bytes in class 2 (120); data
    // 599,942 bytes: one full 524,288 chunk (class 39) holding 524,240, and a tail of
    // 75,702 + 48 = 75,750 in class 31 (82,792). memcached 1.6.18 reports exactly these three
    // used chunks and items:39:mem_requested 600000 (see tests/memcached.rs).
    let mut slab = Slab::new(cfg()).unwrap();
    let block = slab.alloc_item(600_000, 58).unwrap();
    assert!(slab.is_segmented(600_000));
    let d = detail(&slab);
    let used: Vec<(u32, u64)> = d
        .classes
        .iter()
        .filter(|c| c.used_chunks > 0)
        .map(|c| (c.class, c.used_chunks))
        .collect();
    assert_eq!(used, vec![(2, 1), (31, 1), (39, 1)]);
    assert_eq!(d.classes[38].mem_requested, 600_000);
    assert_eq!(d.total_malloced, 3 * PAGE_SIZE as u64);
    let st = slab.stats();
    assert_eq!(st.allocated_bytes, 120 + 524_288 + 82_792);
    assert_eq!(st.requested_bytes, 600_000);
    // The bytes round-trip across the chunks.
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let mut back = vec![0u8; 600_000];
    // SAFETY: `block` is live with 600,000 requested bytes.
    unsafe {
        fraglab_allocators::write_block(&slab, block.ptr, 600_000, 0, &data);
        fraglab_allocators::read_block(&slab, block.ptr, 600_000, 0, &mut back);
    }
    assert_eq!(data, back);
    let mut segments = Vec::new();
    // SAFETY: as above.
    unsafe { slab.for_each_segment(block.ptr, 600_000, &mut |_, n| segments.push(n)) };
    assert_eq!(segments, vec![58, 524_240, 75_702]);
    assert_eq!(
        slab.usable_size_item(600_000, 58),
        Ok(120 + 524_288 + 82_792)
    );
    assert_eq!(
        slab.usable_size(600_000),
        Ok(96 + 524_288 + 82_792),
        "no head: 48-byte header chunk"
    );

    // Growing the item keeps its head in the header chunk and its bytes.
    // SAFETY: live with 600,000 bytes; the old pointer is not used after the realloc.
    let grown = unsafe { slab.realloc(block.ptr, 600_000, 700_000) }.unwrap();
    let mut back = vec![0u8; 600_000];
    let mut segments = Vec::new();
    // SAFETY: `grown` is live with 700,000 requested bytes.
    unsafe {
        fraglab_allocators::read_block(&slab, grown.ptr, 700_000, 0, &mut back);
        slab.for_each_segment(grown.ptr, 700_000, &mut |_, n| segments.push(n));
    }
    assert_eq!(data, back);
    assert_eq!(segments, vec![58, 524_240, 700_000 - 58 - 524_240]);
    let block = grown;
    // SAFETY: as above; freed once.
    unsafe { slab.free(block.ptr, 700_000) };
    let d = detail(&slab);
    assert!(d
        .classes
        .iter()
        .all(|c| c.used_chunks == 0 && c.mem_requested == 0));
}

#[test]
fn a_tail_that_cannot_get_its_class_takes_a_full_chunk() {
    // Limit of one page: class 31 (the tail's class) has a page already full. As
    // `do_item_alloc_chunk` does, the tail first waits for an eviction in its own class: the
    // error names a size in class 31 (the tail chunk, 75,702 + 48 bytes). Only when the caller
    // has nothing to evict there does the tail take a 524,288-byte chunk.
    let mut slab = Slab::new(cfg()).unwrap();
    slab.set_limit(Some(PAGE_SIZE as u64));
    let tails: Vec<_> = (0..12).map(|_| slab.alloc(80_000).unwrap()).collect();
    assert_eq!(
        slab.alloc(80_000),
        Err(AllocError::OutOfMemory { size: 80_000 })
    );
    assert_eq!(
        slab.alloc_item(600_000, 58),
        Err(AllocError::OutOfMemory { size: 75_750 })
    );
    assert_eq!(slab.size_class(75_750), slab.size_class(80_000));
    assert!(
        !slab.on_no_victim(80_000 + 200_000),
        "only the waiting tail's class"
    );
    assert!(slab.on_no_victim(75_750));
    let item = slab.alloc_item(600_000, 58).unwrap();
    assert!(!slab.on_no_victim(75_750), "the fallback is used once");
    let d = detail(&slab);
    let used: Vec<(u32, u64)> = d
        .classes
        .iter()
        .filter(|c| c.used_chunks > 0)
        .map(|c| (c.class, c.used_chunks))
        .collect();
    assert_eq!(used, vec![(2, 1), (31, 12), (39, 2)]);
    let mut segments = Vec::new();
    // SAFETY: live with 600,000 requested bytes.
    unsafe { slab.for_each_segment(item.ptr, 600_000, &mut |_, n| segments.push(n)) };
    assert_eq!(segments, vec![58, 524_240, 75_702]);
    drop(tails);
}

#[test]
fn requests_above_item_max_are_refused() {
    let mut slab = Slab::new(cfg()).unwrap();
    assert_eq!(
        slab.alloc(PAGE_SIZE + 1),
        Err(AllocError::TooLarge {
            size: PAGE_SIZE + 1,
            max: PAGE_SIZE
        })
    );
    assert!(
        slab.alloc(PAGE_SIZE).is_ok(),
        "exactly item_max is stored (chunked)"
    );
    let st = slab.stats();
    assert_eq!((st.counters.failed, st.counters.allocs), (1, 1));
    // A larger -I admits larger items.
    let mut big = Slab::new(SlabConfig {
        item_max: 2 * PAGE_SIZE,
        ..cfg()
    })
    .unwrap();
    assert!(big.alloc(PAGE_SIZE + 1).is_ok());
}

#[test]
fn page_limit_with_the_first_page_rule() {
    // memcached -m 2 (see tests/memcached.rs for the same run against the real server): four
    // items in four classes take four pages although the limit is two; class 1 then fills its
    // one page (10,922 chunks) and every further item of that class is refused.
    let mut slab = Slab::new(cfg()).unwrap();
    slab.set_limit(Some(2 * PAGE_SIZE as u64));
    for size in [94, 564, 5064, 50064] {
        slab.alloc(size).unwrap();
    }
    assert_eq!(detail(&slab).total_malloced, 4 * PAGE_SIZE as u64);
    assert_eq!(detail(&slab).pages_past_limit, 2);
    let mut refused = 0;
    for _ in 0..12_000 {
        match slab.alloc(94) {
            Ok(_) => {}
            Err(AllocError::OutOfMemory { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(refused, 12_000 - (10_922 - 1));
    let d = detail(&slab);
    assert_eq!(d.classes[0].total_pages, 1);
    assert_eq!(d.classes[0].used_chunks, 10_922);
    assert_eq!(d.total_malloced, 4 * PAGE_SIZE as u64);

    // Under the limit, pages are taken one at a time, lazily.
    let mut slab = Slab::new(cfg()).unwrap();
    slab.set_limit(Some(3 * PAGE_SIZE as u64));
    assert_eq!(slab.stats().footprint_bytes, 0);
    for _ in 0..10_922 * 3 {
        slab.alloc(90).unwrap();
    }
    assert_eq!(slab.stats().footprint_bytes, 3 * PAGE_SIZE as u64);
    assert_eq!(slab.alloc(90), Err(AllocError::OutOfMemory { size: 90 }));
}

#[test]
fn move_page_needs_an_empty_page_and_moves_it() {
    let mut slab = Slab::new(cfg()).unwrap();
    slab.set_limit(Some(2 * PAGE_SIZE as u64));
    let small: Vec<_> = (0..10_922 * 2).map(|_| slab.alloc(90).unwrap()).collect();
    // Class 9 (600-byte chunks) gets its first page past the limit, fills it, then is refused.
    let big: Vec<_> = (0..1747).map(|_| slab.alloc(500).unwrap()).collect();
    assert_eq!(slab.alloc(500), Err(AllocError::OutOfMemory { size: 500 }));
    assert_eq!(slab.move_page(1, 9), Err(MoveError::NoEmptyPage(1)));
    assert_eq!(slab.move_page(1, 1), Err(MoveError::SameClass(1)));
    assert_eq!(slab.move_page(1, 99), Err(MoveError::NoSuchClass(99)));

    // Release every chunk of one class-1 page (the engine evicts its items), then move it.
    let pages = slab.class_pages(1).unwrap();
    assert_eq!(pages.len(), 2);
    assert!(pages
        .iter()
        .all(|p| p.used_chunks == 10_922 && p.free_chunks == 0));
    let base = pages[0].base.as_ptr() as usize;
    let on_page = |b: &fraglab_allocators::Block| {
        (base..base + PAGE_SIZE).contains(&(b.ptr.as_ptr() as usize))
    };
    let (gone, kept): (Vec<_>, Vec<_>) = small.into_iter().partition(on_page);
    assert_eq!(gone.len(), 10_922);
    for b in &gone {
        // SAFETY: each block is live with 90 requested bytes and freed once.
        unsafe { slab.free(b.ptr, 90) };
    }
    let moved = slab.move_page(1, 9).unwrap();
    assert_eq!(moved.as_ptr() as usize, base);
    let d = detail(&slab);
    assert_eq!((d.classes[0].total_pages, d.classes[8].total_pages), (1, 2));
    assert_eq!(d.classes[0].free_chunks, 0);
    assert_eq!(d.classes[8].free_chunks, 1747);
    assert_eq!(
        d.total_malloced,
        3 * PAGE_SIZE as u64,
        "moving a page takes nothing new from the OS"
    );
    assert!(slab.alloc(500).is_ok());

    // A page given to the global pool (class 0) is taken before the OS, even past the limit.
    for b in &kept {
        // SAFETY: as above.
        unsafe { slab.free(b.ptr, 90) };
    }
    slab.move_page(1, 0).unwrap();
    assert_eq!(detail(&slab).pool_pages, 1);
    assert!(
        slab.alloc(5000).is_ok(),
        "class 19 has no page: its first comes from the pool"
    );
    let d = detail(&slab);
    assert_eq!(
        (d.pool_pages, d.classes[18].total_pages, d.total_malloced),
        (0, 1, 3 * PAGE_SIZE as u64)
    );
    drop(big);
}
