//! Memory over the run: footprint, allocated, requested and payload over the ops.

use crate::set::{byte_unit, Cell, ResultSet};

use super::common::{baseline, incomplete_note, marked_line, series_line, Phases, Spec};
use super::figure::{Axis, Figure, Panel, Ticks, PANELS_HEIGHT};
use super::labels::{fmt_count, workload_label, Names};

/// One figure of a timeline sample.
pub(super) type MemoryFigure = fn(&crate::schema::Memory) -> u64;

/// Footprint, allocated, requested and payload over the ops, in four panels.
pub(super) fn timeline(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let cells: Vec<&Cell> = baseline(set, names, w)
        .into_iter()
        .filter(|c| !c.representative().timeline.is_empty())
        .collect();
    if cells.is_empty() {
        return None;
    }
    let metrics: [(&str, MemoryFigure); 4] = [
        ("footprint (held from the OS)", |m| m.footprint_bytes),
        ("allocated (usable sizes given)", |m| m.allocated_bytes),
        ("requested (asked of the allocator)", |m| m.requested_bytes),
        ("payload (key + value)", |m| m.payload_bytes),
    ];
    let max_op = cells
        .iter()
        .flat_map(|c| c.representative().timeline.iter().map(|s| s.op as f64))
        .fold(0.0, f64::max);
    let span = Axis::linear("ops", max_op, Ticks::Count, 1.0).hi;
    // About 380 pixels of plot per panel.
    let phases = Phases::of(&cells, span, 380.0);
    let mut panels = Vec::new();
    for (title, get) in metrics {
        let max = cells
            .iter()
            .flat_map(|c| {
                c.representative()
                    .timeline
                    .iter()
                    .map(|s| get(&s.memory) as f64)
            })
            .fold(0.0, f64::max);
        let (unit, unit_name) = byte_unit(max);
        let mut x = Axis::linear("ops", max_op, Ticks::Count, 1.0);
        x.area = 40;
        let mut y = Axis::linear(
            &format!("bytes ({unit_name})"),
            max / unit,
            Ticks::Number,
            1.1,
        );
        y.area = 56;
        let mut shapes = phases.shapes(&y);
        for (k, c) in cells.iter().enumerate() {
            let i = names.index(&c.key);
            let points: Vec<(f64, f64)> = c
                .representative()
                .timeline
                .iter()
                .map(|s| (s.op as f64, get(&s.memory) as f64 / unit))
                .collect();
            shapes.extend(marked_line(points, i, k, cells.len()));
        }
        panels.push(Panel {
            caption: Some(title.to_string()),
            x,
            y,
            shapes,
        });
    }
    let legend = cells
        .iter()
        .map(|c| series_line(names.label_limited(&c.key), names.index(&c.key)))
        .collect();
    let every: Vec<u64> = cells
        .iter()
        .map(|c| c.representative().run.sample_every)
        .collect();
    let mut caption = format!(
        "Footprint, allocated, requested and payload bytes as the run goes, for each \
         configuration (its run with the median throughput), sampled every {} ops and at the end \
         of each phase.",
        fmt_count(every.iter().copied().max().unwrap_or(0) as f64)
    );
    caption.push_str(&phases.note());
    if cells.iter().any(|c| c.key.memory_limit.is_some()) {
        caption.push_str(
            " Configurations run only under memory limits are shown at their largest limit.",
        );
    }
    caption.push_str(&incomplete_note(&cells, names));
    Some(Spec {
        id: format!("timeline-{slug}"),
        caption,
        figure: Figure {
            title: format!("Memory over the run: {}", workload_label(w)),
            panels,
            grid: (2, 2),
            legend,
            height: PANELS_HEIGHT,
        },
    })
}
