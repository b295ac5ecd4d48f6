//! `fraglab validate`'s cases for memcached's slab automover: `calcification`, scaled down and
//! spread over seconds with a fixed rate, replayed into the memcached layout over
//! `slab:automove=N` and into a real memcached started with the same `slab_automove` settings,
//! paced (each op sent no earlier than its trace time; [`crate::peer`]), so that memcached's
//! LRU maintainer, which runs the automover once a second of the server's clock (`items.c`,
//! `lru_maintainer_thread`; `slab_automove.c`), sees the seconds the model's maintainer sees
//! (once per second of trace time; `engine/src/store/pages.rs`). The paced replay starts on
//! a tick of that clock (`clock_handler` in `memcached.c`, once a second from the server's
//! start), so the trace's whole seconds and the server's begin together.
//!
//! Four figures per case, after the run:
//!
//! - **pages moved**: `slabs_moved`, model against real, relative;
//! - **evictions** and **items at the end**, relative;
//! - **pages per class**: the per-class `total_pages` differences, summed without sign, as a
//!   share of the real server's pages (0 when every class holds the same pages).
//!
//! and one of the replay: the latest an op went out after its time (the comparison means
//! something only while the server's clock keeps to the trace's).
//!
//! The tolerances are what the two agree to, measured, not what a faithful model would give
//! exactly: memcached's mover runs in its own thread beside the worker, one item at a time,
//! where the model moves a page whole between two commands and then counts the mover busy for
//! `move_us` of trace time; mode 2's page requests are dropped while a move runs
//! (`slabs_reassign` answers `REASSIGN_RUNNING`) on both sides, and in mode 1 memcached runs
//! the automover again every millisecond after it gives a page to the global pool, for as long
//! as its mover takes (the spread this leaves in memcached's own figures is in
//! [`cases`]).

use std::collections::{BTreeMap, BTreeSet};

use fraglab_reports::RunResult;
use fraglab_workloads::presets::{self, PresetParams};

use super::{relative, Case, CaseResult, Kind};
use crate::values::ValueBytes;

/// One automover case: the mode and how far its figures may differ.
pub(crate) struct Tolerance {
    /// `slabs_moved`, relative.
    pub(crate) moved: f64,
    /// Per-class pages, summed |difference| over the real server's pages.
    pub(crate) pages: f64,
    /// Evictions (the real server's plus `slab_reassign_evictions_nomem`), relative.
    pub(crate) evictions: f64,
    /// Items at the end beyond the items of the pages that differ, relative
    /// ([`items_beyond_pages`]).
    pub(crate) items: f64,
}

/// The scale of `calcification` in these cases: 50,000 keys, a small phase of 100,000 sets
/// and a large phase of 200,000.
pub(crate) const SCALE: f64 = 0.25;
/// Requests per second of trace time: the 300,000 ops take 30 s.
pub(crate) const RATE: f64 = 10_000.0;
/// The memory limit: a little above the small phase's 10 MiB, so that the small classes hold
/// nearly every page when the sizes shift (the preset's docs).
pub(crate) const MEMORY: u64 = 12 << 20;
/// The latest an op of a paced replay may go out after its time, milliseconds.
pub(crate) const LATE_MAX_MS: f64 = 1000.0;

/// The cases.
pub(crate) fn cases() -> Vec<Case> {
    let spec = |name: &str| {
        let mut w = presets::preset(
            "calcification",
            &PresetParams {
                scale: SCALE,
                ..PresetParams::default()
            },
        )
        .expect("the calcification preset");
        w.set_rate(RATE);
        w.name = name.to_string();
        w
    };
    vec![
        Case {
            name: "memcached: slab automove=1 on calcification".into(),
            agg: Default::default(),
            workload: spec("calcification-automove-1"),
            alloc: "slab:automove=1,automove_window=5",
            memory: Some(MEMORY),
            values: ValueBytes::Letters,
            // Measured (4 real runs): the model moves 6 pages, memcached 4 or 5, and every
            // class ends with the same pages. The model moves 4 pages from class 4 to
            // class 10 (seconds 13-16), then 2 more at seconds 27-28 (class 10 had no free
            // chunk for 2,788 of their items); memcached spreads its 4 over classes 10 and 11,
            // whose tails are all 0 or 1 s old, so which is youngest depends on where the
            // second boundaries fall. 0.6 passes 6 against 4 or 5, not 7 against 4 or 6
            // against 3.
            //
            // memcached itself does not end the same way every time. Usually (36 of 52 runs
            // of `fraglab validate --case "slab automove"` and of the same run with `--target
            // memcached --pace`, on this 2-core machine: 18 of 22 idle, 18 of 30 with two busy
            // loops beside it) as the model: 13 pages, 9,336 items (or within 0.3%), 161-163k
            // evictions (+ evictions_nomem), within 0.7% of the model's 162,092. Otherwise its
            // automover gives a second page of class 4 to the global pool (freed, as more than
            // the limit is held) where it had moved it to a large class, and it ends with 12
            // pages: one page of class 11 (1,110 items) or of class 9 (1,394) fewer, 8,226 or
            // 7,942 items, or once 3 pages placed otherwise (8,001 items); 167.7-169.9k
            // evictions. Which way depends on how long its mover thread takes with the first
            // page: after a reclaim the LRU maintainer runs the automover again every
            // millisecond (`items.c`, `lru_maintainer_thread`) until it decides otherwise, each
            // run a sample of its window (`slab_automove.c`), and the next second's decision
            // reads those millisecond samples. The model moves a page whole between two
            // commands and takes the usual way every time. So the items row allows the items
            // of the pages that differ, the pages row allows 3 of 12 placed otherwise (0.25),
            // and evictions allow what a page fewer for the run's second half costs (up to
            // 4.6% measured). A case that disagrees anyway is run again on a second memcached
            // before it fails (`validate.rs`, `check`).
            kind: Kind::Automove(Tolerance {
                moved: 0.6,
                pages: 0.25,
                evictions: 0.06,
                items: 0.01,
            }),
        },
        Case {
            name: "memcached: slab automove=2 on calcification".into(),
            agg: Default::default(),
            workload: spec("calcification-automove-2"),
            alloc: "slab:automove=2,automove_window=5",
            memory: Some(MEMORY),
            values: ValueBytes::Letters,
            // Measured (24 real runs): memcached moves 11,790 to 26,532 pages (390 to 880 a
            // second over the 30 s, with the machine's load), because requests are
            // dropped while its mover thread runs. The model drops them for `move_us` (750 us
            // by default) after each move and moves 16,331 (without that wait it moved one
            // page per eviction, 47,403). Pages keep moving between classes 10, 11 and 12 to
            // the end on both sides, so the end state is a snapshot: 0 or 2 pages of 14 differ.
            // 0.5 on moves covers the real runs' own spread around the model's count; 0.3 on
            // pages is two pages in other classes (4 of 14). Evictions were within 1.2%;
            // items within 0.2% but once, 2.3% (10,259 against 10,020) with 2 pages in other
            // classes, within what those pages hold.
            kind: Kind::Automove(Tolerance {
                moved: 0.5,
                pages: 0.3,
                evictions: 0.02,
                items: 0.01,
            }),
        },
    ]
}

/// Per class: total pages and chunks per page.
fn pages(r: &RunResult) -> BTreeMap<u32, (u64, u64)> {
    r.allocator_detail
        .slab()
        .map(|s| s.classes.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| (c.class, (c.total_pages, c.chunks_per_page)))
        .collect()
}

/// Where the pages differ: the per-class page differences summed without sign, and the items
/// those pages hold when full (each class's differing pages times its chunks per page).
fn page_difference(
    model: &BTreeMap<u32, (u64, u64)>,
    real: &BTreeMap<u32, (u64, u64)>,
) -> (u64, u64) {
    let classes: BTreeSet<u32> = model.keys().chain(real.keys()).copied().collect();
    classes.iter().fold((0, 0), |(pages, items), c| {
        let (mp, mc) = model.get(c).copied().unwrap_or((0, 0));
        let (rp, rc) = real.get(c).copied().unwrap_or((0, 0));
        let d = mp.abs_diff(rp);
        (pages + d, items + d * mc.max(rc))
    })
}

/// Items at the end, model against real, beyond what the pages that differ hold: `(|model -
/// real| - items on those pages, 0 at least) / real`. memcached itself ends with a page in one
/// class or another from run to run ([`cases`]), and the pages row judges where pages went;
/// this one, that the pages both sides agree on hold the same items.
fn items_beyond_pages(model: u64, real: u64, on_differing_pages: u64) -> f64 {
    let beyond = model.abs_diff(real).saturating_sub(on_differing_pages);
    relative((real + beyond) as f64, real as f64)
}

fn moved(r: &RunResult) -> Option<u64> {
    r.allocator_detail
        .slab()
        .and_then(|s| s.moves)
        .map(|m| m.slabs_moved)
}

/// The rows of an automover case.
pub(crate) fn rows(
    case: &Case,
    tol: &Tolerance,
    model: &RunResult,
    real: &RunResult,
) -> Vec<CaseResult> {
    let row = |metric: &str, m: f64, r: f64, diff: f64, tolerance: f64| {
        CaseResult::within(case, metric, m, r, diff, tolerance)
    };
    let (mm, rm) = (moved(model), moved(real));
    let mut out = Vec::new();
    match (mm, rm) {
        (Some(m), Some(r)) => {
            let (m, r) = (m as f64, r as f64);
            out.push(row(
                "pages moved (slabs_moved)",
                m,
                r,
                relative(m, r),
                tol.moved,
            ));
        }
        _ => out.push(row(
            "pages moved: slabs_moved missing (automover off?)",
            mm.map_or(f64::NAN, |m| m as f64),
            rm.map_or(f64::NAN, |r| r as f64),
            f64::INFINITY,
            tol.moved,
        )),
    }
    // The model's evictions include the page mover's (`evictions_page`); memcached's
    // `evictions` does not, so its `slab_reassign_evictions_nomem` is added.
    let nomem = real
        .allocator_detail
        .slab()
        .and_then(|s| s.moves)
        .map_or(0, |m| m.slab_reassign_evictions_nomem);
    let (me, re) = (
        model.summary.evictions as f64,
        (real.summary.evictions + nomem) as f64,
    );
    out.push(row(
        "evictions (+ slab_reassign_evictions_nomem)",
        me,
        re,
        relative(me, re),
        tol.evictions,
    ));
    let (m, r) = (pages(model), pages(real));
    let (differ, on_differing) = page_difference(&m, &r);
    let (mi, ri) = (model.summary.items, real.summary.items);
    out.push(row(
        "items at the end, beyond the pages that differ",
        mi as f64,
        ri as f64,
        items_beyond_pages(mi, ri, on_differing),
        tol.items,
    ));
    let total = |p: &BTreeMap<u32, (u64, u64)>| p.values().map(|&(pages, _)| pages).sum::<u64>();
    let (mt, rt) = (total(&m), total(&r));
    out.push(row(
        "pages per class (sum of |diff| / pages)",
        mt as f64,
        rt as f64,
        differ as f64 / rt.max(1) as f64,
        tol.pages,
    ));
    let late = real
        .run
        .server
        .as_ref()
        .and_then(|s| s.pacing)
        .map_or(f64::INFINITY, |p| p.late_max_ms);
    out.push(row(
        "paced replay: latest op (ms after its time)",
        0.0,
        late,
        late,
        LATE_MAX_MS,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_items_row_allows_the_items_of_the_pages_that_differ() {
        // memcached a page of class 11 (1,110 chunks a page) short: 8,226 items against 9,336.
        let model = BTreeMap::from([(4, (2, 5461)), (10, (2, 1394)), (11, (3, 1110))]);
        let real = BTreeMap::from([(4, (2, 5461)), (10, (2, 1394)), (11, (2, 1110))]);
        assert_eq!(page_difference(&model, &real), (1, 1110));
        assert_eq!(items_beyond_pages(9336, 8226, 1110), 0.0);
        // The page a class has on one side only counts with that side's chunks per page.
        let lone = BTreeMap::from([(4, (2, 5461)), (9, (1, 1394))]);
        assert_eq!(
            page_difference(&lone, &model),
            (1 + 2 + 3, 1394 + 2 * 1394 + 3 * 1110)
        );
        // Beyond the pages' items, the difference counts against the real server's items.
        assert!((items_beyond_pages(9336, 8000, 1110) - 226.0 / 8000.0).abs() < 1e-12);
        // With the same pages everywhere nothing is allowed.
        assert_eq!(page_difference(&model, &model), (0, 0));
        assert!((items_beyond_pages(9336, 9315, 0) - 21.0 / 9315.0).abs() < 1e-12);
        assert_eq!(items_beyond_pages(0, 0, 0), 0.0);
        assert_eq!(items_beyond_pages(5, 0, 0), f64::INFINITY);
    }
}
