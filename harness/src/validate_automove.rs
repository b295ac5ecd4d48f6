//! `fraglab validate`'s cases for memcached's slab automover: `calcification`, scaled down and
//! spread over seconds with a fixed rate, replayed into the memcached layout over
//! `slab:automove=N` and into a real memcached started with the same `slab_automove` settings,
//! paced (each op sent no earlier than its trace time; [`crate::peer`]), so that memcached's
//! LRU maintainer, which runs the automover once a wall-clock second (`items.c`,
//! `lru_maintainer_thread`; `slab_automove.c`), sees the seconds the model's maintainer sees
//! (once per second of trace time; `engine/src/store/pages.rs`).
//!
//! Two figures per case, after the run:
//!
//! - **pages moved**: `slabs_moved`, model against real, relative;
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
//! (`slabs_reassign` answers `REASSIGN_RUNNING`) on both sides, and mode 1's ticks fall at the
//! server's own second boundaries, not the trace's.

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
}

/// The scale of `calcification` in these cases: 50,000 keys, a small phase of 100,000 sets
/// and a large phase of 200,000.
pub(crate) const SCALE: f64 = 0.25;
/// Requests per second of trace time: the 300,000 ops take 30 s.
pub(crate) const RATE: f64 = 10_000.0;
/// The memory limit: a little above the small phase's 10 MiB, so that the small classes hold
/// nearly every page when the sizes shift (the preset's docs).
pub(crate) const MEMORY: u64 = 12 << 20;
/// Evictions, relative (measured: within 0.7% in mode 1, 0.3% in mode 2).
const EVICTIONS: f64 = 0.02;
/// Items at the end, relative (measured: equal in mode 1, within 0.2% in mode 2).
const ITEMS: f64 = 0.01;
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
            // Measured (4 real runs): the model moves 6 pages, memcached 4 every time, and
            // every class ends with the same pages. The model moves 4 pages from class 4 to
            // class 10 (seconds 13-16), then 2 more at seconds 27-28 (class 10 had no free
            // chunk for 2,788 of their items); memcached spreads its 4 over classes 10 and 11,
            // whose tails are all 0 or 1 s old, so which is youngest depends on where the
            // second boundaries fall. 0.6 passes 6 against 4 or 5, not 7 against 4 or 6
            // against 3; 0.16 is one page in a different class (2 of 13).
            kind: Kind::Automove(Tolerance {
                moved: 0.6,
                pages: 0.16,
            }),
        },
        Case {
            name: "memcached: slab automove=2 on calcification".into(),
            agg: Default::default(),
            workload: spec("calcification-automove-2"),
            alloc: "slab:automove=2,automove_window=5",
            memory: Some(MEMORY),
            values: ValueBytes::Letters,
            // Measured (5 real runs): memcached moves 11,790 to 23,394 pages (0.23 to 0.45 per
            // eviction, 390 to 780 a second, with the machine's load), because requests are
            // dropped while its mover thread runs. The model drops them for `move_us` (750 us
            // by default) after each move and moves 16,331 (without that wait it moved one
            // page per eviction, 47,403). Pages keep moving between classes 10, 11 and 12 to
            // the end on both sides, so the end state is a snapshot: 0 or 2 pages of 14 differ.
            // 0.5 on moves covers the real runs' own spread around the model's count; 0.3 on
            // pages is two pages in other classes (4 of 14).
            kind: Kind::Automove(Tolerance {
                moved: 0.5,
                pages: 0.3,
            }),
        },
    ]
}

/// Per class: total pages.
fn pages(r: &RunResult) -> std::collections::BTreeMap<u32, u64> {
    r.allocator_detail
        .slab()
        .map(|s| s.classes.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| (c.class, c.total_pages))
        .collect()
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
        EVICTIONS,
    ));
    let (mi, ri) = (model.summary.items as f64, real.summary.items as f64);
    out.push(row("items at the end", mi, ri, relative(mi, ri), ITEMS));
    let (m, r) = (pages(model), pages(real));
    let classes: std::collections::BTreeSet<u32> = m.keys().chain(r.keys()).copied().collect();
    let differ: u64 = classes
        .iter()
        .map(|c| {
            m.get(c)
                .copied()
                .unwrap_or(0)
                .abs_diff(r.get(c).copied().unwrap_or(0))
        })
        .sum();
    let (mt, rt) = (m.values().sum::<u64>(), r.values().sum::<u64>());
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
