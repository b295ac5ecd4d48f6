//! The slab automover and page mover under the store: items survive page moves with their
//! bytes, the books stay exact, mode 2 keeps more items than no automover when value sizes
//! shift, mode 1 gives the free pages of a class that went quiet to the pool and then to the
//! classes that need them, and the combinations that cannot work are refused with the reason.

use std::collections::HashMap;

use fraglab_allocators::{AllocSpec, Allocator, Detail};
use fraglab_engine::{
    with_store, BuildError, CmdError, Layout, LayoutKind, Policy, ReassignError, SetOptions, Store,
    StoreConfig, WithStore,
};
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{value, Xs};

fn spec(s: &str) -> AllocSpec {
    s.parse().unwrap()
}

fn key(k: u64) -> Vec<u8> {
    format!("key:{k}").into_bytes()
}

fn slab_detail<A: Allocator, L: Layout>(s: &Store<A, L>) -> fraglab_allocators::slab::SlabDetail {
    match s.stats().mem.detail {
        Detail::Slab(d) => d,
        other => panic!("not a slab: {other:?}"),
    }
}

/// Checks the store against the model: every key it holds reads back the model's bytes, and
/// the slab's used chunks are the store's items (one chunk per item below chunk_max).
fn check<A: Allocator, L: Layout>(s: &mut Store<A, L>, model: &HashMap<u64, Vec<u8>>, now: u64) {
    let mut held = 0;
    for (k, v) in model {
        if let Some(got) = s.get(&key(*k), now) {
            assert_eq!(&got, v, "key {k}");
            held += 1;
        }
    }
    assert_eq!(
        s.stats().items,
        held,
        "items against the keys that read back"
    );
    let d = slab_detail(s);
    let used: u64 = d.classes.iter().map(|c| c.used_chunks).sum();
    assert_eq!(used, held, "used chunks against the items");
    assert_eq!(s.stats().mem.live_blocks, held);
}

/// Writes whose sizes shift, deletes, reads and page moves by hand, against a model.
struct Program {
    ops: Vec<(u8, u64, u16)>,
}

impl WithStore for Program {
    type Output = ();
    fn run<A: Allocator, L: Layout>(self, mut s: Store<A, L>) {
        let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
        for (i, &(kind, k, n)) in self.ops.iter().enumerate() {
            let now = 1 + i as u64 / 50;
            let k = k % 400;
            match kind % 8 {
                0..=3 => {
                    // Sizes from the small classes early on, the larger ones later.
                    let len = if i < self.ops.len() / 2 {
                        10 + n as usize % 120
                    } else {
                        300 + n as usize % 1500
                    };
                    let v = value(k, i as u64, len);
                    match s.set(&key(k), &v, SetOptions::default(), now) {
                        Ok(()) => {
                            model.insert(k, v);
                        }
                        Err(CmdError::OutOfMemory) => {
                            model.remove(&k);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                4 => {
                    s.delete(&key(k), now);
                    model.remove(&k);
                }
                5 => {
                    if let Some(v) = s.get(&key(k), now) {
                        assert_eq!(Some(&v), model.get(&k), "key {k} at op {i}");
                    }
                }
                _ => {
                    let src = 1 + u32::from(n) % 12;
                    let dst = (u32::from(n) >> 4) % 13;
                    match s.slabs_reassign(Some(src), dst, now) {
                        Ok(())
                        | Err(ReassignError::Move(
                            fraglab_allocators::slab::MoveError::NoSpare(_)
                            | fraglab_allocators::slab::MoveError::SameClass(_),
                        )) => {}
                        Err(e) => panic!("reassign {src} -> {dst}: {e}"),
                    }
                }
            }
            s.maintain(now);
        }
        // Evicted keys (page moves included) are gone; every key left reads back its bytes.
        check(&mut s, &model, 1 + self.ops.len() as u64 / 50);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn items_keep_their_bytes_through_page_moves(
        ops in prop::collection::vec((any::<u8>(), any::<u64>(), any::<u16>()), 1..400),
        mode in 0u8..3,
        layout in prop_oneof![Just(LayoutKind::Memcached), Just(LayoutKind::Compact)],
    ) {
        let alloc = match mode {
            0 => spec("slab"),
            m => spec(&format!("slab:automove={m},automove_window=3")),
        };
        let config = StoreConfig { policy: Policy::SlabLru, ..StoreConfig::default() };
        with_store(&alloc, layout, Some(4 << 20), config, Program { ops }).unwrap();
    }
}

/// Fills memory with small values, then rewrites the keys with large ones (the calcification
/// case); returns (items held at the end, pages moved).
struct Calcify;

impl WithStore for Calcify {
    type Output = (u64, u64);
    fn run<A: Allocator, L: Layout>(self, mut s: Store<A, L>) -> (u64, u64) {
        let mut rng = Xs(7);
        let keys = 40_000u64;
        let mut op = 0u64;
        for k in 0..keys {
            let v = value(k, 0, 64 + (rng.next() % 64) as usize);
            s.maintain(op / 10_000);
            s.set(&key(k), &v, SetOptions::default(), op / 10_000)
                .unwrap();
            op += 1;
        }
        for _ in 0..3 * keys {
            let k = rng.next() % keys;
            let v = value(k, op, 512 + (rng.next() % 512) as usize);
            s.maintain(op / 10_000);
            s.set(&key(k), &v, SetOptions::default(), op / 10_000)
                .unwrap();
            op += 1;
        }
        (s.stats().items, slab_detail(&s).moves.slabs_moved)
    }
}

#[test]
fn automove_2_keeps_more_items_than_no_automover_when_sizes_shift() {
    let run = |alloc: &str| {
        let config = StoreConfig {
            policy: Policy::SlabLru,
            ..StoreConfig::default()
        };
        with_store(
            &spec(alloc),
            LayoutKind::Memcached,
            Some(8 << 20),
            config,
            Calcify,
        )
        .unwrap()
    };
    let (off, moved_off) = run("slab");
    let (mode2, moved2) = run("slab:automove=2");
    let (mode1, moved1) = run("slab:automove=1,automove_window=3");
    assert_eq!(moved_off, 0);
    assert!(
        moved2 > 0 && moved1 > 0,
        "mode 2 moved {moved2}, mode 1 {moved1}"
    );
    assert!(
        mode2 as f64 >= 1.2 * off as f64,
        "automove=2 holds {mode2} items, no automover {off}"
    );
    assert!(
        mode1 > off,
        "automove=1 holds {mode1} items, no automover {off}"
    );
    eprintln!("items: off {off}, automove=1 {mode1} ({moved1} moves), automove=2 {mode2} ({moved2} moves)");
}

#[test]
fn the_automover_needs_a_layout_of_single_blocks_and_mode_1_its_class_lrus() {
    struct Nothing;
    impl WithStore for Nothing {
        type Output = ();
        fn run<A: Allocator, L: Layout>(self, _s: Store<A, L>) {}
    }
    let build = |alloc: &str, layout, policy| {
        let config = StoreConfig {
            policy,
            ..StoreConfig::default()
        };
        with_store(&spec(alloc), layout, Some(8 << 20), config, Nothing)
    };
    let err = build("slab:automove=2", LayoutKind::Redis, Policy::SampledLru).unwrap_err();
    assert!(matches!(err, BuildError::Unsupported(_)));
    assert!(err.to_string().contains("memcached or compact"), "{err}");
    let err = build("slab:automove=1", LayoutKind::Memcached, Policy::SampledLru).unwrap_err();
    assert!(err.to_string().contains("slab-lru"), "{err}");
    // Mode 2 asks for pages by evictions alone: any policy will do.
    build("slab:automove=2", LayoutKind::Memcached, Policy::SampledLru).unwrap();
    // No automover: everything as before.
    build("slab", LayoutKind::Redis, Policy::SampledLru).unwrap();
}

#[test]
fn slabs_reassign_is_refused_where_pages_cannot_move() {
    struct Reassign;
    impl WithStore for Reassign {
        type Output = Result<(), ReassignError>;
        fn run<A: Allocator, L: Layout>(self, mut s: Store<A, L>) -> Result<(), ReassignError> {
            s.set(b"k", b"v", SetOptions::default(), 1).unwrap();
            s.slabs_reassign(Some(1), 2, 1)
        }
    }
    let config = StoreConfig::default();
    let r = with_store(
        &spec("jemalloc"),
        LayoutKind::Compact,
        None,
        config.clone(),
        Reassign,
    );
    assert_eq!(r.unwrap(), Err(ReassignError::Unsupported));
    let r = with_store(
        &spec("slab"),
        LayoutKind::Redis,
        None,
        config.clone(),
        Reassign,
    );
    assert_eq!(r.unwrap(), Err(ReassignError::Unsupported));
    // One page in class 1 is not a spare.
    let r = with_store(&spec("slab"), LayoutKind::Memcached, None, config, Reassign);
    assert!(matches!(
        r.unwrap(),
        Err(ReassignError::Move(
            fraglab_allocators::slab::MoveError::NoSpare(_)
        ))
    ));
}
