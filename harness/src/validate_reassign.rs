//! `fraglab validate`'s page mover case: `slabs reassign SRC DST` by hand, on the model
//! ([`crate::engine_target::EngineTarget::slabs_reassign`], the store's
//! `engine/src/store/pages.rs`) and on a real memcached ([`crate::peer::memcached_reassign`]),
//! after the same workload. With nothing else running, memcached's mover (`slabs.c`,
//! `slab_rebalance_move`) and the model must agree exactly: pages moved, items rescued into
//! free chunks, items evicted for want of one, and the pages of every class.

use std::sync::atomic::AtomicBool;

use fraglab_allocators::Allocator;
use fraglab_engine::{with_store, Layout, LayoutKind, Store, StoreConfig, WithStore};
use fraglab_reports::{AllocatorDetail, SlabMoves};
use fraglab_workloads::spec::PhaseSpec;
use fraglab_workloads::OpStream;

use super::{fixed, sets, Case, CaseResult, Kind};
use crate::detail::{class_pages, classes_differing};
use crate::driver::Target;
use crate::engine_target::EngineTarget;
use crate::spec::RunSpec;
use crate::values::ValueBytes;

/// The case: 20,000 keys of 16 bytes with 100-byte values (175-byte items: class 4, 192-byte
/// chunks, 5,461 a page: 4 pages), half of them deleted at random, then three pages of class 4
/// moved: to class 10, to the global page pool (0), to class 10. The first move finds free
/// chunks for every live item of its page, the later ones run short.
pub(crate) fn cases() -> Vec<Case> {
    let mut w = sets("reassign", 20_000, fixed(16.0), fixed(100.0));
    w.phases
        .push(PhaseSpec::delete_fraction("delete-half", 0.5));
    vec![Case {
        name: "memcached: slabs reassign 4 10, 4 0, 4 10 by hand".into(),
        agg: Default::default(),
        workload: w,
        alloc: "slab",
        memory: None,
        values: ValueBytes::Letters,
        kind: Kind::Reassign(vec![(4, 10), (4, 0), (4, 10)]),
    }]
}

/// The model: the workload, then the moves, between two commands.
struct Model<'a> {
    stream: OpStream,
    layout: LayoutKind,
    values: ValueBytes,
    moves: &'a [(u32, u32)],
}

impl WithStore for Model<'_> {
    type Output = Result<AllocatorDetail, String>;

    fn run<A: Allocator, L: Layout>(self, store: Store<A, L>) -> Self::Output {
        let mut t = EngineTarget::new(store, self.layout, self.values, "slab");
        let mut now = 0;
        for op in self.stream {
            let op = op.map_err(|e| e.to_string())?;
            now = op.time_us / 1_000_000;
            t.tick(&op);
            t.apply(&op).map_err(|e| e.0)?;
        }
        for &(src, dst) in self.moves {
            t.slabs_reassign(src, dst, now)?;
        }
        Ok(t.end().allocator_detail)
    }
}

fn moves(d: &AllocatorDetail) -> SlabMoves {
    d.slab().and_then(|s| s.moves).unwrap_or_default()
}

fn pool(d: &AllocatorDetail) -> u64 {
    d.slab().map_or(0, |s| s.pool_pages)
}

/// Runs the case on both and compares.
pub(crate) fn check(
    case: &Case,
    spec: &RunSpec,
    moves_asked: &[(u32, u32)],
    _stop: &AtomicBool,
) -> Result<Vec<CaseResult>, String> {
    let stream = || spec.workload.stream(spec.seed).map_err(|e| e.to_string());
    let config = StoreConfig {
        policy: spec.policy,
        seed: spec.seed,
        agg: spec.agg,
        ..StoreConfig::default()
    };
    let model = with_store(
        &spec.alloc,
        spec.layout,
        spec.memory,
        config,
        Model {
            stream: stream()?,
            layout: spec.layout,
            values: spec.values,
            moves: moves_asked,
        },
    )
    .map_err(|e| e.to_string())??;
    let real = crate::peer::memcached_reassign(spec, stream()?, moves_asked)?;
    let row = |metric: &str, m: u64, r: u64| CaseResult::exact(case, metric, m, r);
    let (mm, rm) = (moves(&model), moves(&real));
    let (mp, rp) = (class_pages(&model), class_pages(&real));
    let differ = classes_differing(&mp, &rp) as f64;
    let mut pages_row = row(
        "pages (classes that differ)",
        mp.values().sum(),
        rp.values().sum(),
    );
    pages_row.diff = differ;
    pages_row.pass = differ == 0.0;
    Ok(vec![
        row("slabs_moved", mm.slabs_moved, rm.slabs_moved),
        row(
            "slab_reassign_rescues",
            mm.slab_reassign_rescues,
            rm.slab_reassign_rescues,
        ),
        row(
            "slab_reassign_evictions_nomem",
            mm.slab_reassign_evictions_nomem,
            rm.slab_reassign_evictions_nomem,
        ),
        pages_row,
        row("slab_global_page_pool", pool(&model), pool(&real)),
    ])
}
