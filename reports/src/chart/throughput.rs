//! Throughput per workload and configuration.

use std::collections::BTreeMap;

use plotters::prelude::*;

use crate::set::{Cell, ResultSet};

use super::common::{bar_span, baseline, incomplete_note, series_swatch, Spec};
use super::figure::{alt_of, color_of, Axis, Figure, Panel, Shape, Ticks, HEIGHT};
use super::labels::{fin, workload_label, Names};

/// Throughput per workload and series, with min-max whiskers.
pub(super) fn throughput(set: &ResultSet, names: &Names) -> Option<Spec> {
    let mut groups: Vec<(String, BTreeMap<usize, crate::set::Spread>)> = Vec::new();
    let mut shown: Vec<&Cell> = Vec::new();
    let mut limited = false;
    for w in set.workloads() {
        let cells = baseline(set, names, &w);
        if cells.is_empty() {
            continue;
        }
        let mut bars = BTreeMap::new();
        for c in &cells {
            let s = c.spread(|r| fin(r.summary.ops_per_sec));
            bars.insert(names.index(&c.key), s);
            limited |= c.key.memory_limit.is_some();
        }
        groups.push((workload_label(&w), bars));
        shown.extend(cells);
    }
    if groups.is_empty() {
        return None;
    }
    let series: Vec<usize> = {
        let mut s: Vec<usize> = groups.iter().flat_map(|g| g.1.keys().copied()).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let max = groups
        .iter()
        .flat_map(|g| g.1.values().map(|s| s.max.max(s.median)))
        .fold(0.0, f64::max);
    let (unit, unit_name) = if max >= 1e6 {
        (1e6, "M ops/s")
    } else if max >= 1e3 {
        (1e3, "k ops/s")
    } else {
        (1.0, "ops/s")
    };
    let widest = groups.iter().map(|g| g.1.len()).max().unwrap_or(1);
    let mut shapes = Vec::new();
    for (gi, (_, bars)) in groups.iter().enumerate() {
        for (slot, (s, sp)) in bars.iter().enumerate() {
            let (x0, x1) = bar_span(gi, slot, bars.len(), widest);
            let mid = (x0 + x1) / 2.0;
            let cap = (x1 - x0) * 0.2;
            shapes.push(Shape::Rect {
                x0,
                y0: 0.0,
                x1,
                y1: sp.median / unit,
                color: color_of(*s),
                filled: !alt_of(*s),
            });
            if sp.max > sp.min {
                for pts in [
                    vec![(mid, sp.min / unit), (mid, sp.max / unit)],
                    vec![(mid - cap, sp.min / unit), (mid + cap, sp.min / unit)],
                    vec![(mid - cap, sp.max / unit), (mid + cap, sp.max / unit)],
                ] {
                    shapes.push(Shape::Line {
                        points: pts,
                        color: BLACK,
                        width: 1,
                        dashed: false,
                    });
                }
            }
        }
    }
    let repeats: Vec<usize> = shown.iter().map(|c| c.runs.len()).collect();
    let (rmin, rmax) = (
        repeats.iter().copied().min().unwrap_or(0),
        repeats.iter().copied().max().unwrap_or(0),
    );
    let runs = if rmin == rmax {
        format!(
            "{rmin} run{} per configuration",
            if rmin == 1 { "" } else { "s" }
        )
    } else {
        format!("{rmin} to {rmax} runs per configuration")
    };
    let mut caption = format!(
        "Ops per second over the whole replay (timeline sampling excluded), median over the \
         repeats; whiskers span the slowest to the fastest repeat ({runs})."
    );
    if limited {
        caption.push_str(
            " Configurations run only under memory limits are shown at their largest limit.",
        );
    }
    caption.push_str(&incomplete_note(&shown, names));
    let legend = series.iter().map(|&s| series_swatch(names, s)).collect();
    let labels = groups.iter().map(|g| g.0.clone()).collect();
    Some(Spec {
        id: "throughput".into(),
        caption,
        figure: Figure {
            title: "Throughput".into(),
            panels: vec![Panel {
                caption: None,
                x: Axis::categories("workload", labels),
                y: Axis::linear(
                    &format!("throughput ({unit_name})"),
                    max / unit,
                    Ticks::Number,
                    1.08,
                ),
                shapes,
            }],
            grid: (1, 1),
            legend,
            height: HEIGHT,
        },
    })
}
