//! jemalloc's dedicated arena: the process's jemalloc global allocator (its automatic arenas)
//! does not move the arena's figures.

mod common;

use common::churn_global;
use fraglab_allocators::jemalloc::Jemalloc;
use fraglab_allocators::zmalloc::Zmalloc;
use fraglab_allocators::Allocator;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[test]
fn jemalloc_arena_stats_do_not_move_when_the_global_allocator_allocates() {
    let mut j = Jemalloc::new().unwrap();
    let blocks: Vec<_> = (0..1000).map(|i| j.alloc(100 + i).unwrap()).collect();
    let before = j.stats();
    assert!(before.footprint_bytes >= before.allocated_bytes && before.allocated_bytes > 0);
    let kept = churn_global();
    let after = j.stats();
    assert_eq!(before, after, "the dedicated arena's figures moved");
    assert!(!kept.is_empty());
    // Control: memory taken through the allocator under test does show.
    let big = j.alloc(1 << 20).unwrap();
    let grown = j.stats();
    assert!(
        grown.footprint_bytes >= after.footprint_bytes + (1 << 20),
        "jemalloc footprint did not see 1 MiB"
    );
    assert_ne!(grown.detail, after.detail);
    // SAFETY: live with 1 MiB requested.
    unsafe { j.free(big.ptr, 1 << 20) };
    for (i, b) in blocks.into_iter().enumerate() {
        // SAFETY: each block is live with `100 + i` requested bytes.
        unsafe { j.free(b.ptr, 100 + i) };
    }
}

#[test]
fn jemalloc_uses_the_16_byte_quantum_classes() {
    let j = Jemalloc::new().unwrap();
    let classes: Vec<usize> = [
        1, 8, 9, 16, 17, 24, 33, 49, 100, 129, 200, 257, 500, 1025, 1500,
    ]
    .iter()
    .map(|&n| j.usable_size(n).unwrap())
    .collect();
    assert_eq!(
        classes,
        vec![8, 8, 16, 16, 32, 32, 48, 64, 112, 160, 224, 320, 512, 1280, 1536]
    );
    // Redis's usable-size mode on jemalloc: a 24-byte dict entry costs 32 in used_memory.
    let mut z = Zmalloc::new(Jemalloc::new().unwrap(), false);
    let b = z.alloc(24).unwrap();
    assert_eq!(z.used_memory(), 32);
    // SAFETY: live with 24 requested bytes.
    unsafe { z.free(b.ptr, 24) };
    assert_eq!(z.used_memory(), 0);
}
