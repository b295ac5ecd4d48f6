//! Memory utilization over the run: allocated / footprint of each timeline sample, per
//! configuration of one workload (how the log's cleaner holds its target, beside the others).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::ramcloud::{is_ramcloud, log_figures, utilization_of, PAPER, PAPER_UTILIZATION};
use crate::set::{Cell, ResultSet};

use super::common::{baseline, incomplete_note, marked_line, series_line, Phases, Spec};
use super::figure::{Axis, Entry, Figure, Key, Shape, Ticks, GREY};
use super::labels::{fmt_count, fmt_num, workload_label, Names};

/// The paper's operating range, shaded (as on the write-amplification chart).
const RANGE: RGBColor = RGBColor(0xDD, 0xEE, 0xDD);

/// allocated / footprint over the ops, one line per configuration; for a ramcloud workload the
/// paper's 80-90% shaded; each log target utilization as a grey dashed line.
pub(super) fn utilization(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let cells: Vec<&Cell> = baseline(set, names, w)
        .into_iter()
        .filter(|c| !c.representative().timeline.is_empty())
        .collect();
    let lines: Vec<(&Cell, Vec<(f64, f64)>)> = cells
        .iter()
        .map(|c| {
            let points = c
                .representative()
                .timeline
                .iter()
                .filter_map(|s| {
                    utilization_of(s.memory.allocated_bytes, s.memory.footprint_bytes)
                        .filter(|u| u.is_finite())
                        .map(|u| (s.op as f64, u))
                })
                .collect();
            (*c, points)
        })
        .filter(|(_, p): &(&Cell, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let drawn: Vec<&Cell> = lines.iter().map(|(c, _)| *c).collect();
    let max_op = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(0.0, f64::max);
    let mut x = Axis::linear("ops", max_op, Ticks::Count, 1.0);
    x.area = 40;
    // Up to 100%, or past it when a configuration allocated more than it held.
    let top = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(1.0, f64::max);
    let mut y = Axis::linear(
        "utilization (allocated / footprint)",
        top,
        Ticks::Percent,
        1.08,
    );
    y.area = 56;
    let ramcloud = is_ramcloud(w);
    let mut shapes = Vec::new();
    if ramcloud {
        shapes.push(Shape::Rect {
            x0: x.lo,
            y0: PAPER_UTILIZATION.0,
            x1: x.hi,
            y1: PAPER_UTILIZATION.1,
            color: RANGE,
            filled: true,
        });
    }
    let phases = Phases::of(&drawn, x.hi, 840.0);
    shapes.extend(phases.shapes(&y));
    let mut targets: Vec<f64> = Vec::new();
    for l in drawn.iter().filter_map(|c| log_figures(c)) {
        if !targets.contains(&l.utilization_target) && l.utilization_target.is_finite() {
            targets.push(l.utilization_target);
        }
    }
    for t in &targets {
        shapes.push(Shape::Line {
            points: vec![(x.lo, *t), (x.hi, *t)],
            color: GREY,
            width: 1,
            dashed: true,
        });
        shapes.push(Shape::Label {
            at: (x.hi, *t),
            dx: -4,
            dy: -2,
            text: format!("log target {}%", fmt_num(t * 100.0)),
            size: 11,
            h: HPos::Right,
            v: VPos::Bottom,
            color: GREY,
        });
    }
    for (k, (c, points)) in lines.iter().enumerate() {
        let i = names.index(&c.key);
        shapes.extend(marked_line(points.clone(), i, k, lines.len()));
    }
    let mut legend: Vec<Entry> = lines
        .iter()
        .map(|(c, _)| series_line(names.label_limited(&c.key), names.index(&c.key)))
        .collect();
    if ramcloud {
        legend.push(Entry {
            key: Key::Swatch {
                color: RANGE,
                filled: true,
            },
            label: "RAMCloud's log in the paper: 80-90% utilization".into(),
        });
    }
    let every = drawn
        .iter()
        .map(|c| c.representative().run.sample_every)
        .max()
        .unwrap_or(0);
    let mut caption = format!(
        "Memory utilization as the run goes: the bytes the allocator gave out (allocated: \
         usable sizes; for the log, entries with their headers) / the memory it held (footprint), \
         at each timeline sample (every {} ops and at the end of each phase), for each \
         configuration (its run with the median throughput). 100% would be memory holding \
         nothing but blocks; the gap to it is external fragmentation (free space inside what \
         is held), so a line that stays high kept its memory full.",
        fmt_count(every as f64)
    );
    if !targets.is_empty() {
        caption.push_str(
            " The grey dashed lines are the log's target utilizations: without a memory limit \
             its cleaner runs when the live bytes fall below the target share of the segments, \
             so the log grows only while it is at least that full.",
        );
    }
    if ramcloud {
        caption.push_str(&format!(
            " The shaded band is the 80-90% utilization the paper's log-structured memory runs \
             at on W1-W8 ({PAPER})."
        ));
    }
    caption.push_str(&phases.note());
    if drawn.iter().any(|c| c.key.memory_limit.is_some()) {
        caption.push_str(
            " Configurations run only under memory limits are shown at their largest limit.",
        );
    }
    let no_footprint: Vec<String> = cells
        .iter()
        .filter(|c| !drawn.iter().any(|d| d.key == c.key))
        .map(|c| names.label_limited(&c.key))
        .collect();
    if !no_footprint.is_empty() {
        caption.push_str(&format!(
            " No sample with a footprint, not drawn: {}.",
            no_footprint.join(", ")
        ));
    }
    caption.push_str(&incomplete_note(&drawn, names));
    Some(Spec {
        id: format!("utilization-{slug}"),
        caption,
        figure: Figure::one_panel(
            format!("Memory utilization over the run: {}", workload_label(w)),
            x,
            y,
            shapes,
            legend,
        ),
    })
}
