//! The log's write amplification against its utilization, beside RAMCloud's cleaning cost.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::ramcloud::{
    cleaning_write_amplification, log_figures, LogFigures, PAPER, PAPER_UTILIZATION,
};
use crate::set::{human_bytes, Cell, ResultSet};

use super::common::{incomplete_note, Spec};
use super::figure::{color_of, text_width, Axis, Entry, Figure, Key, Shape, Ticks, MARKERS};
use super::labels::{fmt_num, workload_label, Names};

/// The paper's operating range, shaded.
const RANGE: RGBColor = RGBColor(0xDD, 0xEE, 0xDD);
/// Where the reference curve starts and ends.
const CURVE: (f64, f64) = (0.3, 0.95);
/// Size of the points' labels.
const LABEL_SIZE: u32 = 11;
/// Write amplifications the y axis may mark (a log scale).
const Y_TICKS: [f64; 12] = [
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
];

/// One log cell's point.
struct Point {
    cell: usize,
    workload: usize,
    utilization: f64,
    wa: f64,
    label: String,
}

/// What tells the log cells apart besides the workload: cleaner, target utilization, segment
/// size and memory limit, each only when the cells do not all share it.
fn point_labels(cells: &[(&Cell, LogFigures)]) -> Vec<String> {
    let parts: Vec<[String; 4]> = cells
        .iter()
        .map(|(c, l)| {
            [
                l.cleaner.clone(),
                format!("target {}%", fmt_num(l.utilization_target * 100.0)),
                format!("{} segments", human_bytes(l.segment_size as f64)),
                c.key.memory_limit.map_or("no limit".into(), |m| {
                    format!("{} limit", human_bytes(m as f64))
                }),
            ]
        })
        .collect();
    let varies: Vec<bool> = (0..4)
        .map(|k| parts.iter().any(|p| p[k] != parts[0][k]))
        .collect();
    parts
        .iter()
        .map(|p| {
            p.iter()
                .zip(&varies)
                .filter(|(_, v)| **v)
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect()
}

/// One point per log cell: x its utilization (allocated / footprint at the end), y its write
/// amplification, by workload; the curve `1 / (1 - u)` and the paper's 80-90% shaded.
pub(super) fn write_amplification(set: &ResultSet, names: &Names) -> Option<Spec> {
    let cells: Vec<(&Cell, LogFigures)> = set
        .cells
        .iter()
        .filter_map(|c| log_figures(c).map(|l| (c, l)))
        .collect();
    if cells.is_empty() {
        return None;
    }
    let workloads: Vec<String> = set
        .workloads()
        .into_iter()
        .filter(|w| cells.iter().any(|(c, _)| c.key.workload == *w))
        .collect();
    let labels = point_labels(&cells);
    let mut points = Vec::new();
    let mut no_footprint = Vec::new();
    for (i, ((c, l), label)) in cells.iter().zip(labels).enumerate() {
        let w = workloads
            .iter()
            .position(|w| *w == c.key.workload)
            .unwrap_or(0);
        match l.utilization {
            Some(u) if u.is_finite() && l.write_amplification.is_finite() => points.push(Point {
                cell: i,
                workload: w,
                utilization: u,
                wa: l.write_amplification.max(1.0),
                label,
            }),
            _ => no_footprint.push(format!(
                "{} ({})",
                names.label_limited(&c.key),
                workload_label(&c.key.workload)
            )),
        }
    }
    // x: utilization, from 30% (or lower, to hold every point) to 100%.
    let lowest = points.iter().map(|p| p.utilization).fold(CURVE.0, f64::min);
    let lo = ((lowest - 0.02) * 10.0).floor().max(0.0) / 10.0;
    let highest = points.iter().map(|p| p.utilization).fold(1.0, f64::max);
    let hi = (highest * 10.0).ceil() / 10.0;
    let steps = ((hi - lo) * 10.0).round() as usize;
    let x = Axis {
        desc: "utilization (allocated / footprint at the end of the run)".into(),
        lo,
        hi,
        ticks: (0..=steps).map(|k| lo + k as f64 / 10.0).collect(),
        light: Vec::new(),
        labels: Ticks::Percent,
        area: 48,
    };
    // y: write amplification on a log scale, from 1 to past the curve's end and every point.
    let top = points
        .iter()
        .map(|p| p.wa)
        .fold(cleaning_write_amplification(CURVE.1), f64::max);
    let y_hi = (top * 1.15).log10();
    let y = Axis {
        desc: "write amplification (log scale)".into(),
        // A little below 1, so that points at 1 and their labels clear the axis.
        lo: 0.92f64.log10(),
        hi: y_hi,
        ticks: Y_TICKS
            .iter()
            .map(|t| t.log10())
            .filter(|t| *t <= y_hi)
            .collect(),
        light: Vec::new(),
        labels: Ticks::LogNumber,
        area: 56,
    };
    let mut shapes = vec![Shape::Rect {
        x0: PAPER_UTILIZATION.0,
        y0: y.lo,
        x1: PAPER_UTILIZATION.1,
        y1: y.hi,
        color: RANGE,
        filled: true,
    }];
    let curve: Vec<(f64, f64)> = (0..=130)
        .map(|k| CURVE.0 + (CURVE.1 - CURVE.0) * f64::from(k) / 130.0)
        .map(|u| (u, cleaning_write_amplification(u).log10()))
        .collect();
    shapes.push(Shape::Line {
        points: curve,
        color: BLACK,
        width: 2,
        dashed: true,
    });
    for p in &points {
        shapes.push(Shape::Marker {
            at: (p.utilization, p.wa.log10()),
            color: color_of(p.workload),
            shape: p.workload % MARKERS,
        });
    }
    // One label per configuration, in black over its highest point (a configuration's points
    // cluster: the workloads differ less than the configurations), a row higher when it would
    // run into one placed before (about 860 x 380 pixels of plot).
    let px = |u: f64, v: f64| {
        (
            (u - x.lo) / (x.hi - x.lo) * 860.0,
            (y.hi - v) / (y.hi - y.lo) * 380.0,
        )
    };
    let mut placed: Vec<(f64, f64, f64)> = Vec::new();
    let mut labelled: Vec<&str> = Vec::new();
    for p in &points {
        if p.label.is_empty() || labelled.contains(&p.label.as_str()) {
            continue;
        }
        labelled.push(&p.label);
        let top = points
            .iter()
            .filter(|q| q.label == p.label)
            .max_by(|a, b| a.wa.total_cmp(&b.wa))
            .unwrap_or(p);
        let at = (top.utilization, top.wa.log10());
        let (cx, cy) = px(at.0, at.1);
        let w = f64::from(text_width(&p.label, LABEL_SIZE));
        // Left of the point near the right edge, right of it near the left one, else centred.
        let (h, x0) = if cx > 860.0 - w / 2.0 - 10.0 {
            (HPos::Right, cx - w)
        } else if cx < w / 2.0 + 10.0 {
            (HPos::Left, cx)
        } else {
            (HPos::Center, cx - w / 2.0)
        };
        let row = (0..12)
            .find(|r| {
                let t = cy - 20.0 - 13.0 * f64::from(*r);
                !placed
                    .iter()
                    .any(|&(a, b, pt)| x0 < b && x0 + w > a && (t - pt).abs() < 13.0)
            })
            .unwrap_or(0);
        placed.push((x0, x0 + w, cy - 20.0 - f64::from(13 * row)));
        shapes.push(Shape::Label {
            at,
            dx: 0,
            dy: -8 - 13 * row,
            text: p.label.clone(),
            size: LABEL_SIZE,
            h,
            v: VPos::Bottom,
            color: BLACK,
        });
    }
    let mut legend: Vec<Entry> = workloads
        .iter()
        .enumerate()
        .map(|(i, w)| Entry {
            key: Key::Line {
                color: color_of(i),
                marker: i % MARKERS,
                dashed: false,
            },
            label: workload_label(w),
        })
        .collect();
    legend.push(Entry {
        key: Key::Dashed(BLACK),
        label: "RAMCloud's cleaning cost: 1 + u/(1-u) = 1/(1-u)".into(),
    });
    legend.push(Entry {
        key: Key::Swatch {
            color: RANGE,
            filled: true,
        },
        label: "the paper's operating range, 80-90% utilization".into(),
    });
    let mut distinct: Vec<(&str, &str, Option<u64>)> = Vec::new();
    for p in &points {
        let k = &cells[p.cell].0.key;
        let id = (k.alloc.as_str(), k.layout.as_str(), k.memory_limit);
        if !distinct.contains(&id) {
            distinct.push(id);
        }
    }
    let configs = distinct.len();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut caption = format!(
        "One point per configuration of the log allocator and workload (medians over its \
         repeats), coloured by workload: across, its memory utilization at the end of the run \
         (allocated / footprint: live entries with their headers / segments held); up, its \
         write amplification, (bytes written + bytes the cleaner copied) / bytes written, on a \
         log scale (1: the cleaner copied nothing). The dashed curve is RAMCloud's cost of \
         cleaning segments at utilization u, u/(1-u) bytes copied per byte freed, a write \
         amplification of 1/(1-u); \
         the shaded band is the 80-90% utilization the paper's log runs at on W1-W8 ({PAPER}). \
         The curve is the steady state of cleaning at one utilization; a run's figure also \
         counts the bytes written before the cleaner first ran and the segments freed whole by \
         deletes (no copying), which put it below the curve, and a cleaner that picks segments \
         emptier than the average (cost-benefit or greedy) copies less still. A point above \
         the curve cleaned fuller segments than its end utilization shows (the live data \
         shrank after the cleaning). {} point{}, {} log configuration{}.",
        points.len(),
        plural(points.len()),
        configs,
        plural(configs)
    );
    if points.iter().any(|p| !p.label.is_empty()) {
        caption.push_str(
            " Each configuration is labelled once, over its highest point, with what tells the \
             configurations apart (cleaner, target utilization, segment size, memory limit).",
        );
    }
    if !no_footprint.is_empty() {
        caption.push_str(&format!(
            " No footprint at the end, not drawn: {}.",
            no_footprint.join(", ")
        ));
    }
    let drawn: Vec<&Cell> = points.iter().map(|p| cells[p.cell].0).collect();
    caption.push_str(&incomplete_note(&drawn, names));
    Some(Spec {
        id: "log-write-amplification".into(),
        caption,
        figure: Figure::one_panel(
            "The log's write amplification against its utilization".into(),
            x,
            y,
            shapes,
            legend,
        ),
    })
}
