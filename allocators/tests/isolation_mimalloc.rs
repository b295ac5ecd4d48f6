//! mimalloc's dedicated heap: the process's mimalloc global allocator (the thread's default
//! heap) does not move the heap's figures.

mod common;

use common::churn_global;
use fraglab_allocators::mimalloc::Mimalloc;
use fraglab_allocators::Allocator;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[test]
fn mimalloc_heap_stats_do_not_move_when_the_global_allocator_allocates() {
    let mut m = Mimalloc::new().unwrap();
    let blocks: Vec<_> = (0..1000).map(|i| m.alloc(100 + i).unwrap()).collect();
    let before = m.stats();
    assert!(before.footprint_bytes >= before.allocated_bytes && before.allocated_bytes > 0);
    let kept = churn_global();
    let after = m.stats();
    assert_eq!(before, after, "the dedicated heap's figures moved");
    // Control: memory taken through the allocator under test does show.
    let big = m.alloc(1 << 20).unwrap();
    let grown = m.stats();
    assert!(
        grown.footprint_bytes >= after.footprint_bytes + (1 << 20),
        "mimalloc footprint did not see 1 MiB"
    );
    assert_ne!(grown.detail, after.detail);
    // SAFETY: live with 1 MiB requested.
    unsafe { m.free(big.ptr, 1 << 20) };
    for (i, b) in blocks.into_iter().enumerate() {
        // SAFETY: each block is live with `100 + i` requested bytes.
        unsafe { m.free(b.ptr, 100 + i) };
    }
    let empty = m.stats();
    assert_eq!((empty.live_blocks, empty.allocated_bytes), (0, 0));
    drop(kept);
}
