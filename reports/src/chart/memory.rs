//! Chart 1: the memory needed per byte of live data, per allocator x workload, on one scale.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::schema::RunResult;
use crate::set::{human_bytes, Cell, ResultSet};

use super::common::{cells_in, incomplete_note, median_of, Spec};
use super::figure::{
    fit_text, text_width, Axis, Entry, Figure, Key, Panel, Shape, Ticks, HEIGHT, LEGEND_ROW,
    TITLE_H, WIDTH,
};
use super::labels::{fin, fmt_num, workload_label, Names};

/// Pixels per row (one configuration: its two bars).
const ROW_PX: u32 = 32;
/// A panel's height besides its rows: margins, caption and the x axis.
const PANEL_EXTRA_PX: u32 = 96;
/// Rows a panel has at least, so that bars do not grow fat.
const MIN_ROWS: usize = 3;
/// Size of the row labels and of the figures beside the bars.
const LABEL_SIZE: u32 = 13;
const VALUE_SIZE: u32 = 11;
/// footprint / payload, then requested / payload.
const COLORS: [RGBColor; 2] = [RGBColor(0x00, 0x72, 0xB2), RGBColor(0xE6, 0x9F, 0x00)];

/// `f(r) / payload`, None without payload.
fn per_payload(r: &RunResult, f: fn(&RunResult) -> u64) -> Option<f64> {
    let p = r.summary.payload_bytes;
    (p > 0).then(|| f(r) as f64 / p as f64)
}

/// The median over a cell's runs of `f / payload` (runs without payload left out), None when
/// no run has payload.
fn ratio(c: &Cell, f: fn(&RunResult) -> u64) -> Option<f64> {
    let v: Vec<f64> = c.runs.iter().filter_map(|r| per_payload(r, f)).collect();
    (!v.is_empty()).then(|| median_of(v))
}

/// One configuration of one workload.
struct Row {
    label: String,
    /// footprint / payload and requested / payload.
    ratios: Option<(f64, f64)>,
    footprint: f64,
}

/// Per workload, a panel of horizontal bars: per configuration (engine, no memory limit),
/// footprint / payload and requested / payload, with the live data at 1.
pub(super) fn memory_needed(set: &ResultSet, names: &Names) -> Option<Spec> {
    let mut groups: Vec<(String, Vec<Row>)> = Vec::new();
    let mut shown: Vec<&Cell> = Vec::new();
    let mut no_payload = Vec::new();
    for w in set.workloads() {
        let cells: Vec<&Cell> = cells_in(set, &w)
            .into_iter()
            .filter(|c| c.key.memory_limit.is_none() && c.key.target == "engine")
            .collect();
        if cells.is_empty() {
            continue;
        }
        let rows = cells
            .iter()
            .map(|c| {
                let footprint = ratio(c, |r| r.summary.footprint_bytes);
                let requested = ratio(c, |r| r.summary.requested_bytes);
                let ratios = footprint.zip(requested).map(|(f, q)| (fin(f), fin(q)));
                if ratios.is_none() {
                    no_payload.push(format!("{} ({})", names.label(&c.key), workload_label(&w)));
                }
                Row {
                    label: names.label(&c.key),
                    ratios,
                    footprint: fin(c.spread(|r| r.summary.footprint_bytes as f64).median),
                }
            })
            .collect();
        groups.push((workload_label(&w), rows));
        shown.extend(cells);
    }
    if groups.is_empty() {
        return None;
    }
    let value_text = |r: &Row, k: usize| -> String {
        match r.ratios {
            None if k == 0 => "no live data".to_string(),
            None => String::new(),
            Some((f, _)) if k == 0 => format!("{}x ({})", fmt_num(f), human_bytes(r.footprint)),
            Some((_, q)) => format!("{}x", fmt_num(q)),
        }
    };
    let rows = || groups.iter().flat_map(|g| g.1.iter());
    let max = rows()
        .filter_map(|r| r.ratios)
        .map(|(f, q)| f.max(q))
        .fold(1.0, f64::max);
    // The row labels' column, and room right of the longest bar for its figure.
    let label_w = rows()
        .map(|r| text_width(&r.label, LABEL_SIZE))
        .max()
        .unwrap_or(40)
        .clamp(40, 360);
    let value_w = rows()
        .map(|r| text_width(&value_text(r, 0), VALUE_SIZE))
        .max()
        .unwrap_or(0);
    let plot_w = f64::from(WIDTH.saturating_sub(label_w + 14 + 32)).max(200.0);
    let room = (f64::from(value_w) + 12.0).min(plot_w * 0.6);
    let headroom = plot_w / (plot_w - room);
    let slots = groups
        .iter()
        .map(|g| g.1.len())
        .max()
        .unwrap_or(1)
        .max(MIN_ROWS);
    let mut panels = Vec::new();
    for (name, rows) in &groups {
        let n = rows.len();
        let labels: Vec<String> = rows
            .iter()
            .rev()
            .map(|r| fit_text(&r.label, LABEL_SIZE, label_w))
            .collect();
        let mut y = Axis::categories("", labels);
        // Every panel has as many slots as the fullest one: bars keep one thickness.
        y.lo -= (slots - n) as f64;
        y.area = label_w + 14;
        let mut x = Axis::linear(
            "bytes per byte of live data",
            max,
            Ticks::Number,
            headroom * 1.02,
        );
        x.area = 40;
        let mut shapes = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let at = (n - 1 - i) as f64;
            match r.ratios {
                Some((f, q)) => {
                    // footprint above, requested below.
                    for (k, (v, y0, y1)) in [(f, at + 0.02, at + 0.38), (q, at - 0.38, at - 0.02)]
                        .into_iter()
                        .enumerate()
                    {
                        shapes.push(Shape::Rect {
                            x0: 0.0,
                            y0,
                            x1: v,
                            y1,
                            color: COLORS[k],
                            filled: true,
                        });
                        shapes.push(Shape::Label {
                            at: (v, (y0 + y1) / 2.0),
                            dx: 4,
                            dy: 0,
                            text: value_text(r, k),
                            size: VALUE_SIZE,
                            h: HPos::Left,
                            v: VPos::Center,
                            color: BLACK,
                        });
                    }
                }
                None => shapes.push(Shape::Label {
                    at: (0.0, at),
                    dx: 4,
                    dy: 0,
                    text: value_text(r, 0),
                    size: VALUE_SIZE,
                    h: HPos::Left,
                    v: VPos::Center,
                    color: BLACK,
                }),
            }
        }
        shapes.push(Shape::Line {
            points: vec![(1.0, y.lo), (1.0, y.hi)],
            color: BLACK,
            width: 2,
            dashed: true,
        });
        panels.push(Panel {
            caption: Some(name.clone()),
            x,
            y,
            shapes,
        });
    }
    let mut legend: Vec<Entry> = [
        "footprint / payload (memory held from the OS)",
        "requested / payload (asked of the allocator)",
    ]
    .iter()
    .zip(COLORS)
    .map(|(label, color)| Entry {
        key: Key::Swatch {
            color,
            filled: true,
        },
        label: (*label).to_string(),
    })
    .collect();
    legend.push(Entry {
        key: Key::Dashed(BLACK),
        label: "live data (key + value bytes) = 1".into(),
    });
    let mut caption = String::from(
        "Bytes held per byte of live data at the end of the run, for each configuration run \
         without a memory limit in the engine, medians over repeats: the allocator's footprint \
         (memory held from the OS for items) / the payload (key + value bytes), and the bytes \
         the engine requested of the allocator / the payload. The dashed line at 1 is the live \
         data itself; from it to the requested bar is metadata (item headers, per-key \
         structures), from the requested bar to the footprint bar the allocator's rounding and \
         fragmentation. Beside each footprint bar, its ratio and the footprint itself. The \
         engine's index, outside the allocator, is not included (the table \"Where the bytes \
         go\" has it).",
    );
    if !no_payload.is_empty() {
        caption.push_str(&format!(
            " No live data at the end, no ratio: {}.",
            no_payload.join(", ")
        ));
    }
    caption.push_str(&incomplete_note(&shown, names));
    let panel_h = slots as u32 * ROW_PX + PANEL_EXTRA_PX;
    let height = (TITLE_H + 2 * LEGEND_ROW + 10 + groups.len() as u32 * panel_h).max(HEIGHT);
    Some(Spec {
        id: "memory-needed".into(),
        caption,
        figure: Figure {
            title: "Memory needed per byte of live data".into(),
            grid: (panels.len(), 1),
            panels,
            legend,
            height,
        },
    })
}
