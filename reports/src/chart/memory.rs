//! Chart 1: the memory needed to hold the live data.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::set::{byte_unit, Cell, ResultSet};

use super::common::{bar_span, cells_in, incomplete_note, median_of, series_swatch, Spec};
use super::figure::{alt_of, color_of, Axis, Entry, Figure, Key, Panel, Shape, Ticks, HEIGHT};
use super::labels::{fin, workload_label, Names};

/// Bars of footprint + index per workload, unlimited cells of the engine, and the live data.
pub(super) fn memory_needed(set: &ResultSet, names: &Names) -> Option<Spec> {
    struct Group {
        name: String,
        bars: BTreeMap<usize, (f64, f64)>,
        payload: f64,
        differs: bool,
    }
    let mut groups = Vec::new();
    let mut shown: Vec<&Cell> = Vec::new();
    for w in set.workloads() {
        let cells: Vec<&Cell> = cells_in(set, &w)
            .into_iter()
            .filter(|c| c.key.memory_limit.is_none() && c.key.target == "engine")
            .collect();
        if cells.is_empty() {
            continue;
        }
        let mut bars = BTreeMap::new();
        let mut payloads = Vec::new();
        for c in &cells {
            let held = fin(c
                .spread(|r| r.summary.footprint_bytes as f64 + r.summary.index_bytes as f64)
                .median);
            let payload = fin(c.spread(|r| r.summary.payload_bytes as f64).median);
            bars.insert(names.index(&c.key), (held, payload));
            payloads.push(payload);
        }
        let lo = payloads.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = payloads.iter().copied().fold(0.0, f64::max);
        groups.push(Group {
            name: workload_label(&w),
            bars,
            payload: median_of(payloads),
            differs: hi > lo * 1.01,
        });
        shown.extend(cells);
    }
    if groups.is_empty() {
        return None;
    }
    let series: Vec<usize> = {
        let mut s: Vec<usize> = groups.iter().flat_map(|g| g.bars.keys().copied()).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let max = groups
        .iter()
        .flat_map(|g| g.bars.values().map(|b| b.0).chain([g.payload]))
        .fold(0.0, f64::max);
    let (unit, unit_name) = byte_unit(max);
    let nbars: usize = groups.iter().map(|g| g.bars.len()).sum();
    let widest = groups.iter().map(|g| g.bars.len()).max().unwrap_or(1);
    let mut shapes = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (slot, (s, &(held, payload))) in g.bars.iter().enumerate() {
            let (x0, x1) = bar_span(gi, slot, g.bars.len(), widest);
            shapes.push(Shape::Rect {
                x0,
                y0: 0.0,
                x1,
                y1: held / unit,
                color: color_of(*s),
                filled: !alt_of(*s),
            });
            if payload > 0.0 && nbars <= 40 {
                shapes.push(Shape::Label {
                    at: ((x0 + x1) / 2.0, held / unit),
                    dx: 0,
                    dy: -3,
                    text: format!("{:.2}x", held / payload),
                    size: 11,
                    h: HPos::Center,
                    v: VPos::Bottom,
                    color: BLACK,
                });
            }
        }
        shapes.push(Shape::Line {
            points: vec![
                (gi as f64 - 0.45, g.payload / unit),
                (gi as f64 + 0.45, g.payload / unit),
            ],
            color: BLACK,
            width: 2,
            dashed: true,
        });
    }
    let mut legend: Vec<Entry> = series.iter().map(|&s| series_swatch(names, s)).collect();
    legend.push(Entry {
        key: Key::Dashed(BLACK),
        label: "live data (key + value bytes)".into(),
    });
    let differs: Vec<&str> = groups
        .iter()
        .filter(|g| g.differs)
        .map(|g| g.name.as_str())
        .collect();
    let mut caption = String::from(
        "Memory each configuration holds at the end of the run to keep its live data: the \
         allocator's footprint (memory held from the OS for items) plus the engine's index, \
         median over repeats, runs without a memory limit measured in the engine. The dashed line \
         is the live data (key + value bytes); the figure above a bar is the memory held per byte \
         of live data.",
    );
    if !differs.is_empty() {
        caption.push_str(&format!(
            " The live data differs between configurations for {}; the line is the median.",
            differs.join(", ")
        ));
    }
    caption.push_str(&incomplete_note(&shown, names));
    let labels = groups.iter().map(|g| g.name.clone()).collect();
    Some(Spec {
        id: "memory-needed".into(),
        caption,
        figure: Figure {
            title: "Memory needed to hold the live data".into(),
            panels: vec![Panel {
                caption: None,
                x: Axis::categories("workload", labels),
                y: Axis::linear(
                    &format!("footprint + index ({unit_name})"),
                    max / unit,
                    Ticks::Number,
                    1.12,
                ),
                shapes,
            }],
            grid: (1, 1),
            legend,
            height: HEIGHT,
        },
    })
}
