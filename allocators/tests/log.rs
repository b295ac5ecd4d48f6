//! The log allocator's cleaner: random programs of alloc / free / clean never lose or duplicate
//! a block, every block's bytes survive every cleaning pass, and the segment books match a
//! recount; the cost-benefit cleaner copies less than the greedy one on a skewed workload.

use std::collections::HashMap;
use std::ptr::NonNull;

use fraglab_allocators::log::{CleanerPolicy, Log, LogConfig, LogDetail};
use fraglab_allocators::{AllocError, Allocator, Detail, Relocate};
use proptest::prelude::*;

/// The owner of every block: the model the cleaner reports its moves to.
#[derive(Default)]
struct Owner {
    /// Block address -> (id, size).
    at: HashMap<usize, (u32, usize)>,
    pinned: Option<usize>,
    moves: u64,
    pinned_moved: bool,
}

impl Relocate for Owner {
    fn relocated(&mut self, from: NonNull<u8>, to: NonNull<u8>, size: usize) {
        let (id, sz) = self
            .at
            .remove(&(from.as_ptr() as usize))
            .expect("the cleaner moved a block nobody owns (lost or duplicated)");
        assert_eq!(sz, size, "the cleaner reported a wrong size");
        let clash = self.at.insert(to.as_ptr() as usize, (id, sz));
        assert!(clash.is_none(), "moved onto a live block");
        self.pinned_moved |= self.pinned == Some(from.as_ptr() as usize);
        self.moves += 1;
    }

    fn pinned(&self, ptr: NonNull<u8>) -> bool {
        self.pinned == Some(ptr.as_ptr() as usize)
    }
}

fn byte(id: u32, i: usize) -> u8 {
    (id as usize).wrapping_mul(31).wrapping_add(i) as u8
}

fn check_all(log: &Log, owner: &Owner) -> Result<(), TestCaseError> {
    for (&addr, &(id, size)) in &owner.at {
        // SAFETY: the model holds exactly the live blocks, at their current addresses.
        let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, size) };
        for (i, &b) in bytes.iter().enumerate() {
            prop_assert_eq!(b, byte(id, i), "block {} byte {}", id, i);
        }
    }
    let st = log.stats();
    prop_assert_eq!(st.live_blocks, owner.at.len() as u64);
    prop_assert!(st.allocated_bytes <= st.footprint_bytes);
    if let Err(e) = log.check() {
        return Err(TestCaseError::fail(e));
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Alloc(usize),
    Free(usize),
    Clean(Option<usize>),
}

fn program() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            6 => prop_oneof![3 => 0usize..200, 1 => 200usize..20_000, 1 => 60_000usize..70_000]
                .prop_map(Op::Alloc),
            5 => any::<usize>().prop_map(Op::Free),
            1 => prop::option::of(any::<usize>()).prop_map(Op::Clean),
        ],
        1..400,
    )
}

fn run(cfg: LogConfig, limit: Option<u64>, prog: &[Op]) -> Result<(), TestCaseError> {
    let mut log = Log::new(cfg).unwrap();
    log.set_limit(limit);
    let mut owner = Owner::default();
    let mut next = 0u32;
    for op in prog {
        match *op {
            Op::Alloc(size) => match log.alloc(size) {
                Ok(b) => {
                    next += 1;
                    for i in 0..size {
                        // SAFETY: the block holds `size` bytes.
                        unsafe { *b.ptr.as_ptr().add(i) = byte(next, i) };
                    }
                    owner.at.insert(b.ptr.as_ptr() as usize, (next, size));
                }
                Err(AllocError::OutOfMemory { .. }) => prop_assert!(limit.is_some()),
                Err(AllocError::TooLarge { max, .. }) => prop_assert!(size > max),
            },
            Op::Free(i) if !owner.at.is_empty() => {
                let mut keys: Vec<usize> = owner.at.keys().copied().collect();
                keys.sort_unstable();
                let addr = keys[i % keys.len()];
                let (_, size) = owner.at.remove(&addr).unwrap();
                // SAFETY: a live block of `size` requested bytes, freed once.
                unsafe { log.free(NonNull::new(addr as *mut u8).unwrap(), size) };
            }
            Op::Clean(pin) => {
                let mut keys: Vec<usize> = owner.at.keys().copied().collect();
                keys.sort_unstable();
                owner.pinned = pin
                    .filter(|_| !keys.is_empty())
                    .map(|i| keys[i % keys.len()]);
                let before = log.stats().footprint_bytes;
                let released = log.compact(&mut owner);
                prop_assert!(!owner.pinned_moved, "a pinned block moved");
                prop_assert!(log.stats().footprint_bytes + released >= before);
                owner.pinned = None;
            }
            Op::Free(_) => {}
        }
        check_all(&log, &owner)?;
    }
    let mut keys: Vec<(usize, usize)> = owner.at.iter().map(|(&a, &(_, s))| (a, s)).collect();
    keys.sort_unstable();
    for (addr, size) in keys {
        // SAFETY: as above.
        unsafe { log.free(NonNull::new(addr as *mut u8).unwrap(), size) };
    }
    let st = log.stats();
    prop_assert_eq!(
        (st.live_blocks, st.allocated_bytes, st.footprint_bytes),
        (0, 0, 0)
    );
    Ok(())
}

fn config() -> impl Strategy<Value = LogConfig> {
    (
        prop_oneof![
            Just(CleanerPolicy::CostBenefit),
            Just(CleanerPolicy::Greedy)
        ],
        prop_oneof![Just(0.5), Just(0.75), Just(0.9)],
        0u32..4,
    )
        .prop_map(|(cleaner, utilization, free_min)| LogConfig {
            segment: 64 << 10,
            cleaner,
            utilization,
            free_min,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn cleaning_never_loses_or_corrupts_a_block(
        cfg in config(),
        limit in prop_oneof![Just(None), (3u64..12).prop_map(|n| Some(n << 16))],
        prog in program(),
    ) {
        run(cfg, limit, &prog)?;
    }
}

fn detail(log: &Log) -> LogDetail {
    match log.stats().detail {
        Detail::Log(d) => d,
        other => panic!("not a log's detail: {other:?}"),
    }
}

/// A small deterministic generator (xorshift), so the workload is the same for both cleaners.
struct Xs(u64);
impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Overwrites 100-byte objects, 90% of writes to 10% of the keys (hot/cold, as RAMCloud's
/// cleaner evaluation), with the log kept at 75% utilization; returns the cleaner's detail.
fn skewed(cleaner: CleanerPolicy) -> LogDetail {
    let cfg = LogConfig {
        segment: 64 << 10,
        cleaner,
        utilization: 0.75,
        free_min: 2,
    };
    let mut log = Log::new(cfg).unwrap();
    let keys = 20_000usize;
    let mut slots: Vec<Option<NonNull<u8>>> = vec![None; keys];
    let mut owner = Owner::default();
    let mut rng = Xs(0x9E37_79B9_7F4A_7C15);
    for round in 0..400_000usize {
        let r = rng.next();
        let k = if r % 10 < 9 {
            (r >> 8) as usize % (keys / 10)
        } else {
            keys / 10 + (r >> 8) as usize % (keys - keys / 10)
        };
        let k = if round < keys { round } else { k };
        if let Some(p) = slots[k].take() {
            owner.at.remove(&(p.as_ptr() as usize));
            // SAFETY: live with 100 requested bytes.
            unsafe { log.free(p, 100) };
        }
        let b = log.alloc(100).unwrap();
        owner.at.insert(b.ptr.as_ptr() as usize, (k as u32, 100));
        slots[k] = Some(b.ptr);
        if log.wants_compaction() {
            log.compact(&mut owner);
            // The owner's map is keyed by address: refresh the slots from it.
            for (&addr, &(id, _)) in &owner.at {
                slots[id as usize] = NonNull::new(addr as *mut u8);
            }
        }
    }
    log.check().unwrap();
    detail(&log)
}

#[test]
fn cost_benefit_copies_less_than_greedy_on_a_skewed_workload() {
    let cb = skewed(CleanerPolicy::CostBenefit);
    let greedy = skewed(CleanerPolicy::Greedy);
    println!(
        "hot/cold at 75%: cost-benefit copied {} bytes (write amplification {:.3}), greedy {} ({:.3})",
        cb.bytes_copied, cb.write_amplification, greedy.bytes_copied, greedy.write_amplification
    );
    assert!(cb.cleaner_runs > 0 && greedy.cleaner_runs > 0);
    assert!(
        cb.bytes_copied < greedy.bytes_copied,
        "cost-benefit copied {} bytes, greedy {} (write amplification {:.3} vs {:.3})",
        cb.bytes_copied,
        greedy.bytes_copied,
        cb.write_amplification,
        greedy.write_amplification
    );
}

#[test]
fn without_a_limit_the_log_keeps_its_utilization() {
    let cfg = LogConfig {
        segment: 64 << 10,
        ..LogConfig::default()
    };
    let mut log = Log::new(cfg).unwrap();
    let mut owner = Owner::default();
    let mut live: Vec<NonNull<u8>> = Vec::new();
    let mut rng = Xs(7);
    for _ in 0..200_000 {
        if live.len() >= 10_000 {
            let i = rng.next() as usize % live.len();
            let p = live.swap_remove(i);
            owner.at.remove(&(p.as_ptr() as usize));
            // SAFETY: live with 200 requested bytes.
            unsafe { log.free(p, 200) };
        }
        let b = log.alloc(200).unwrap();
        owner.at.insert(b.ptr.as_ptr() as usize, (0, 200));
        live.push(b.ptr);
        if log.wants_compaction() {
            log.compact(&mut owner);
            live = owner
                .at
                .keys()
                .map(|&a| NonNull::new(a as *mut u8).unwrap())
                .collect();
        }
    }
    let st = log.stats();
    let u = st.allocated_bytes as f64 / st.footprint_bytes as f64;
    // The target is 0.90 of the footprint, less at most one segment of head room.
    let floor = 0.90 * (1.0 - (64 << 10) as f64 / st.footprint_bytes as f64) - 0.01;
    assert!(u >= floor, "utilization {u:.3} under {floor:.3}");
    let d = detail(&log);
    assert!(d.write_amplification > 1.0 && d.bytes_copied > 0);
}

#[test]
fn under_a_limit_the_cleaner_frees_room_or_the_request_is_out_of_memory() {
    let cfg = LogConfig {
        segment: 64 << 10,
        ..LogConfig::default()
    };
    let mut log = Log::new(cfg).unwrap();
    log.set_limit(Some(4 << 16));
    let mut owner = Owner::default();
    let mut blocks = Vec::new();
    // Fill three segments (one stays in reserve for the cleaner).
    loop {
        match log.alloc(1000) {
            Ok(b) => {
                owner.at.insert(b.ptr.as_ptr() as usize, (0, 1000));
                blocks.push(b.ptr);
            }
            Err(e) => {
                assert!(matches!(e, AllocError::OutOfMemory { .. }));
                break;
            }
        }
    }
    assert_eq!(log.stats().footprint_bytes, 3 << 16);
    assert_eq!(log.compact(&mut owner), 0, "nothing dead: nothing to clean");
    // Free every other block: half of each segment is dead.
    for (i, p) in blocks.iter().enumerate() {
        if i % 2 == 0 {
            owner.at.remove(&(p.as_ptr() as usize));
            // SAFETY: live with 1000 requested bytes, freed once.
            unsafe { log.free(*p, 1000) };
        }
    }
    assert!(
        log.alloc(1000).is_err(),
        "the head is sealed and no segment is free"
    );
    let released = log.compact(&mut owner);
    assert!(released >= 1 << 16, "released {released}");
    assert!(log.alloc(1000).is_ok());
    log.check().unwrap();
}

/// Blocks of 60% of a segment leave 40% of each segment dead and unusable: the cleaner tries,
/// frees nothing, and does not try again at every request.
#[test]
fn a_cleaning_run_that_frees_nothing_is_not_repeated_at_every_request() {
    let cfg = LogConfig {
        segment: 64 << 10,
        ..LogConfig::default()
    };
    let mut log = Log::new(cfg).unwrap();
    let mut owner = Owner::default();
    let size = (64 << 10) * 6 / 10;
    let mut calls = 0;
    for i in 0..50u32 {
        let b = log.alloc(size).unwrap();
        owner.at.insert(b.ptr.as_ptr() as usize, (i, size));
        if log.wants_compaction() {
            calls += 1;
            log.compact(&mut owner);
        }
    }
    let d = detail(&log);
    assert_eq!(
        d.bytes_copied, 0,
        "nothing can be gained, so nothing is copied: {d:?}"
    );
    // Every 2.5 segments add a segment's worth of unusable ends: one run per 2.5 requests at
    // most, never one per request.
    assert!(calls <= 21, "{calls} cleaning runs for 50 requests: {d:?}");
    assert_eq!(d.segments, 50, "one block per segment");
    log.check().unwrap();
}
