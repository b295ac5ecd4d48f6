//! Where the slab's pages come from (`allocators/src/page.rs`): with `huge=1` from 32 MiB
//! reservations aligned to 2 MiB, with `prefault=1` resident when mapped. Neither changes what
//! the allocator counts, only how the kernel backs its pages; every block keeps its bytes.

use fraglab_allocators::page::{MapOptions, MmapPages, PageSource, REGION};
use fraglab_allocators::slab::{Slab, SlabConfig, PAGE_SIZE};
use fraglab_allocators::{AllocSpec, Allocator};

/// Fills 4,000 blocks of 20,000 bytes (more than one reservation's worth), each with its own
/// byte, frees every other one, and checks the rest; returns the allocator's counted bytes.
fn churn(mut slab: Slab) -> (u64, u64) {
    let mut blocks = Vec::new();
    for i in 0..4_000u32 {
        let b = slab.alloc(20_000).expect("room");
        // SAFETY: the block holds 20,000 bytes.
        unsafe { std::ptr::write_bytes(b.ptr.as_ptr(), (i % 251) as u8, 20_000) };
        blocks.push((i, b));
    }
    for (i, b) in blocks.iter().filter(|(i, _)| i % 2 == 0) {
        // SAFETY: allocated above with this size, freed once.
        unsafe { slab.free(b.ptr, 20_000) };
        let _ = i;
    }
    for (i, b) in blocks.iter().filter(|(i, _)| i % 2 == 1) {
        // SAFETY: still allocated.
        let bytes = unsafe { std::slice::from_raw_parts(b.ptr.as_ptr(), 20_000) };
        assert!(bytes.iter().all(|&x| x == (i % 251) as u8), "block {i}");
    }
    let st = slab.stats();
    (st.allocated_bytes, st.footprint_bytes)
}

#[test]
fn huge_and_prefaulted_pages_count_the_same_and_keep_every_byte() {
    let plain = churn(Slab::new(SlabConfig::default()).unwrap());
    for (huge, prefault) in [(true, false), (false, true), (true, true)] {
        let slab = Slab::new(SlabConfig {
            huge,
            prefault,
            ..SlabConfig::default()
        })
        .unwrap();
        assert_eq!(churn(slab), plain, "huge={huge} prefault={prefault}");
    }
    // 4,000 blocks of 20,000 bytes, 48 to a page, take 84 pages: two reservations and part of
    // a third.
    assert!(plain.1 > 2 * REGION as u64);
}

#[test]
fn reserved_pages_are_aligned_distinct_and_returned_alone() {
    let mut src = MmapPages::new(MapOptions {
        huge: true,
        prefault: false,
    });
    let pages: Vec<_> = (0..(REGION / PAGE_SIZE) * 2 + 3)
        .map(|_| src.take_page(PAGE_SIZE).expect("a page"))
        .collect();
    // The first page of each reservation is 2 MiB-aligned; pages do not overlap.
    assert_eq!(pages[0].as_ptr() as usize % (2 << 20), 0);
    assert_eq!(pages[REGION / PAGE_SIZE].as_ptr() as usize % (2 << 20), 0);
    let mut bases: Vec<usize> = pages.iter().map(|p| p.as_ptr() as usize).collect();
    bases.sort_unstable();
    assert!(bases.windows(2).all(|w| w[1] - w[0] >= PAGE_SIZE));
    for p in &pages {
        // SAFETY: a fresh page of PAGE_SIZE bytes, zeroed.
        unsafe {
            assert_eq!(*p.as_ptr(), 0);
            *p.as_ptr().add(PAGE_SIZE - 1) = 7;
        }
    }
    for p in pages {
        // SAFETY: taken above, returned once, not used after.
        unsafe { src.return_page(p, PAGE_SIZE) };
    }
    assert_eq!(src.name(), "mmap, huge pages");
}

#[test]
fn the_spec_keys_parse_print_back_and_refuse_bad_values() {
    let s: AllocSpec = "slab:huge=1,prefault=1".parse().unwrap();
    assert_eq!(
        s.to_string(),
        "slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576,huge=1,prefault=1"
    );
    let s: AllocSpec = "slab:huge=0".parse().unwrap();
    assert_eq!(
        s.to_string(),
        "slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576"
    );
    let e = "slab:huge=2".parse::<AllocSpec>().unwrap_err().to_string();
    assert!(e.contains("huge") && e.contains("1 or 0"), "{e}");
}
