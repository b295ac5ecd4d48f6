//! Where the bytes go: payload, metadata, internal waste, external fragmentation, index.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::schema::RunResult;
use crate::set::{byte_unit, human_bytes, ResultSet};

use super::common::{baseline, incomplete_note, Spec};
use super::figure::{fit_text, text_width, Axis, Entry, Figure, Key, Shape, Ticks};
use super::labels::{fin, workload_label, Names};

/// The parts a byte of footprint + index is spent on, in stacking order.
pub(super) const PARTS: [(&str, RGBColor); 5] = [
    ("payload (key + value)", RGBColor(0x00, 0x9E, 0x73)),
    ("metadata (requested - payload)", RGBColor(0x56, 0xB4, 0xE9)),
    (
        "internal waste (allocated - requested)",
        RGBColor(0xE6, 0x9F, 0x00),
    ),
    (
        "external fragmentation (footprint - allocated)",
        RGBColor(0xD5, 0x5E, 0x00),
    ),
    ("index", RGBColor(0x00, 0x72, 0xB2)),
];

/// Stacked horizontal bars: where each configuration's bytes go.
pub(super) fn bytes_chart(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let cells = baseline(set, names, w);
    if cells.is_empty() {
        return None;
    }
    let parts = |r: &RunResult| -> [f64; 5] {
        let s = &r.summary;
        [
            s.payload_bytes as f64,
            s.requested_bytes as f64 - s.payload_bytes as f64,
            s.allocated_bytes as f64 - s.requested_bytes as f64,
            s.footprint_bytes as f64 - s.allocated_bytes as f64,
            s.index_bytes as f64,
        ]
    };
    let mut rows: Vec<(String, [f64; 5], f64)> = Vec::new();
    let mut clamped = Vec::new();
    for c in &cells {
        let mut v = [0.0; 5];
        for (k, slot) in v.iter_mut().enumerate() {
            let m = fin(c.spread(|r| parts(r)[k]).median);
            if m < 0.0 {
                clamped.push(format!(
                    "{} of {} ({})",
                    PARTS[k].0.split(" (").next().unwrap_or(PARTS[k].0),
                    names.label_limited(&c.key),
                    human_bytes(m)
                ));
            }
            *slot = m.max(0.0);
        }
        let payload = v[0];
        rows.push((names.label_limited(&c.key), v, payload));
    }
    let max = rows
        .iter()
        .map(|r| r.1.iter().sum::<f64>())
        .fold(0.0, f64::max);
    let (unit, unit_name) = byte_unit(max);
    let label_w = rows
        .iter()
        .map(|r| text_width(&r.0, 13))
        .max()
        .unwrap_or(40)
        .clamp(40, 360);
    let n = rows.len();
    let mut shapes = Vec::new();
    let mut names_top_down = vec![String::new(); n];
    for (i, (label, v, payload)) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        names_top_down[n - 1 - i] = fit_text(label, 13, label_w);
        let mut x = 0.0;
        for (k, part) in v.iter().enumerate() {
            if *part > 0.0 {
                shapes.push(Shape::Rect {
                    x0: x / unit,
                    y0: y - 0.3,
                    x1: (x + part) / unit,
                    y1: y + 0.3,
                    color: PARTS[k].1,
                    filled: true,
                });
            }
            x += part;
        }
        let mut text = human_bytes(x);
        if *payload > 0.0 {
            text.push_str(&format!(" ({:.2}x the payload)", x / payload));
        }
        shapes.push(Shape::Label {
            at: (x / unit, y),
            dx: 5,
            dy: 0,
            text,
            size: 12,
            h: HPos::Left,
            v: VPos::Center,
            color: BLACK,
        });
    }
    let mut y = Axis::categories("", names_top_down);
    // With few bars, room around them so that they do not grow fat.
    let pad = 3usize.saturating_sub(n) as f64 * 0.5;
    y.lo -= pad;
    y.hi += pad;
    y.area = label_w + 14;
    let mut x = Axis::linear(
        &format!("bytes ({unit_name})"),
        max / unit,
        Ticks::Number,
        1.35,
    );
    x.area = 44;
    let mut caption = String::from(
        "Where the bytes go at the end of the run, medians over repeats: the payload (key + value \
         bytes), metadata (requested - payload: item headers and per-key structures), internal \
         waste (allocated - requested: size-class rounding), external fragmentation (footprint - \
         allocated: memory held but not handed out) and the engine's index. A bar's length is \
         footprint + index.",
    );
    if cells.iter().any(|c| c.key.memory_limit.is_some()) {
        caption.push_str(
            " Configurations run only under memory limits are shown at their largest limit.",
        );
    }
    if !clamped.is_empty() {
        caption.push_str(&format!(
            " Negative parts are drawn as zero (so the bar is longer than footprint + index): {}.",
            clamped.join("; ")
        ));
    }
    caption.push_str(&incomplete_note(&cells, names));
    let legend = PARTS
        .iter()
        .map(|(label, color)| Entry {
            key: Key::Swatch {
                color: *color,
                filled: true,
            },
            label: (*label).to_string(),
        })
        .collect();
    Some(Spec {
        id: format!("bytes-{slug}"),
        caption,
        figure: Figure::one_panel(
            format!("Where the bytes go: {}", workload_label(w)),
            x,
            y,
            shapes,
            legend,
        ),
    })
}
