//! glibc's figures are process-wide: they stay clean only while nothing else uses glibc. With a
//! non-glibc global allocator (as the `fraglab` binary has), the harness's own allocations do
//! not move them; a direct `malloc` does, which shows the check can see a leak.
//!
//! This test has no libtest harness (`harness = false` in `Cargo.toml`) and runs on the main
//! thread alone: Rust's standard library registers a thread's thread-local destructors in a
//! list it allocates with the system allocator, i.e. glibc, and libtest's main thread did so
//! while the check measured, moving glibc's in-use bytes by 112 in about one run in ten. A
//! warm-up round before the first reading does the same registrations for this thread.

mod common;

use common::churn_global;
use fraglab_allocators::glibc::Glibc;
use fraglab_allocators::Allocator;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    glibc_stats_do_not_move_when_the_global_allocator_allocates();
    println!("isolation_glibc: glibc's figures stayed put while the global allocator ran: ok");
}

fn glibc_stats_do_not_move_when_the_global_allocator_allocates() {
    // Warm up: this thread's first thread-local registrations, and the global allocator's.
    drop(churn_global());
    let mut g = Glibc::new();
    let blocks: Vec<_> = (0..1000).map(|i| g.alloc(100 + i).unwrap()).collect();
    let before = g.stats();
    let kept = churn_global();
    let after = g.stats();
    assert_eq!(
        before, after,
        "glibc's figures moved when the global allocator was used"
    );
    assert!(!kept.is_empty());

    // Control: memory taken from glibc behind the allocator's back does show.
    // SAFETY: malloc has no preconditions; the block is freed below.
    let stray = unsafe { libc::malloc(4 << 20) };
    assert!(!stray.is_null());
    assert!(g.stats().footprint_bytes > after.footprint_bytes);
    // SAFETY: `stray` came from malloc above.
    unsafe { libc::free(stray) };
    for (i, b) in blocks.into_iter().enumerate() {
        // SAFETY: each block is live with `100 + i` requested bytes.
        unsafe { g.free(b.ptr, 100 + i) };
    }
}
