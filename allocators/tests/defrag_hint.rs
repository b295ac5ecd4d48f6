//! The defrag hint over the real jemalloc: after deleting every other block, moving the
//! blocks the hint names brings active / allocated back down, and no other allocator hints.

use std::ptr::NonNull;

use fraglab_allocators::glibc::Glibc;
use fraglab_allocators::jemalloc::Jemalloc;
use fraglab_allocators::zmalloc::Zmalloc;
use fraglab_allocators::Allocator;

/// Fills `n` blocks of `size`, frees every other one, then moves what the hint says until a
/// pass moves nothing; returns (active/allocated before, after, moves, bytes intact).
fn delete_half_then_defrag<A: Allocator>(
    a: &mut A,
    n: usize,
    size: usize,
) -> (f64, f64, u64, bool) {
    let mut all: Vec<(NonNull<u8>, u8)> = Vec::new();
    for i in 0..n {
        let p = a.alloc(size).unwrap().ptr;
        // SAFETY: a fresh block of `size` bytes.
        unsafe { std::ptr::write_bytes(p.as_ptr(), i as u8, size) };
        all.push((p, i as u8));
    }
    let mut live = Vec::new();
    for (i, (p, b)) in all.into_iter().enumerate() {
        if i % 2 == 0 {
            live.push((p, b));
        } else {
            // SAFETY: live, freed once.
            unsafe { a.free(p, size) };
        }
    }
    let before = a.defrag_info().expect("jemalloc gives defrag figures");
    let mut moves = 0;
    for _pass in 0..10 {
        a.defrag_info();
        let mut moved = 0;
        for (p, _) in &mut live {
            // SAFETY: `p` is live with `size` bytes; on a move it is replaced.
            unsafe {
                if a.defrag_hint(*p, size) {
                    if let Some(new) = a.defrag_move(*p, size) {
                        *p = new;
                        moved += 1;
                    }
                }
            }
        }
        moves += moved;
        if moved == 0 {
            break;
        }
    }
    let after = a.defrag_info().unwrap();
    let intact = live.iter().all(|&(p, b)| {
        // SAFETY: live blocks of `size` bytes.
        unsafe { std::slice::from_raw_parts(p.as_ptr(), size) }
            .iter()
            .all(|&x| x == b)
    });
    for (p, _) in live {
        // SAFETY: live, freed once.
        unsafe { a.free(p, size) };
    }
    let ratio = |d: fraglab_allocators::DefragInfo| d.active as f64 / d.allocated as f64;
    (ratio(before), ratio(after), moves, intact)
}

#[test]
fn jemalloc_hint_undoes_delete_half() {
    let mut a = Jemalloc::new().unwrap();
    let (before, after, moves, intact) = delete_half_then_defrag(&mut a, 200_000, 64);
    assert!(
        before > 1.8,
        "deleting every other block leaves ~2x: {before}"
    );
    assert!(
        after < 1.15,
        "after defrag {after} (before {before}, {moves} moves)"
    );
    assert!(moves > 0 && intact);
}

#[test]
fn zmalloc_over_jemalloc_hints_on_the_block_start() {
    for prefix in [false, true] {
        let mut a = Zmalloc::new(Jemalloc::new().unwrap(), prefix);
        let (before, after, moves, intact) = delete_half_then_defrag(&mut a, 200_000, 40);
        assert!(before > 1.5, "prefix={prefix}: {before}");
        assert!(after < 1.15, "prefix={prefix}: {after} after {moves} moves");
        assert!(intact);
    }
}

#[test]
fn glibc_gives_no_hint() {
    let mut g = Glibc::new();
    assert!(g.defrag_info().is_none());
    let b = g.alloc(64).unwrap();
    // SAFETY: a live block of 64 bytes, freed once.
    unsafe {
        assert!(!g.defrag_hint(b.ptr, 64));
        g.free(b.ptr, 64);
    }
}
