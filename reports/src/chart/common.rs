//! What the chart families share: the chart spec, the cells they draw, bar placement,
//! legend entries and notes.

use std::collections::BTreeMap;

use plotters::style::text_anchor::{HPos, VPos};

use crate::set::{Cell, ResultSet};

use super::figure::{alt_of, color_of, text_width, Axis, Entry, Figure, Key, Shape, GREY, MARKERS};
use super::labels::{fin, Names};

/// A chart before drawing: its id, its caption and its figure.
pub(super) struct Spec {
    /// File-name safe id ([`super::ChartOut::id`]).
    pub(super) id: String,
    /// What the chart shows ([`super::ChartOut::caption`]).
    pub(super) caption: String,
    /// What to draw.
    pub(super) figure: Figure,
}

/// The cells of one workload.
pub(super) fn cells_in<'a>(set: &'a ResultSet, w: &str) -> Vec<&'a Cell> {
    set.cells.iter().filter(|c| c.key.workload == w).collect()
}

pub(super) fn median_of(values: Vec<f64>) -> f64 {
    crate::set::Spread::of(values.into_iter().map(fin).collect()).median
}

pub(super) fn incomplete_note(cells: &[&Cell], names: &Names) -> String {
    let bad: Vec<String> = cells
        .iter()
        .filter(|c| !c.complete())
        .map(|c| names.label_limited(&c.key))
        .collect();
    if bad.is_empty() {
        String::new()
    } else {
        format!(
            " Incomplete runs (interrupted; figures cover the ops replayed): {}.",
            bad.join(", ")
        )
    }
}

/// Per series of a workload, the cell with the largest memory limit (no limit counts as the
/// largest): the runs that show the configuration itself rather than a point of a memory sweep.
pub(super) fn baseline<'a>(set: &'a ResultSet, names: &Names, w: &str) -> Vec<&'a Cell> {
    let mut best: BTreeMap<usize, &Cell> = BTreeMap::new();
    for c in cells_in(set, w).into_iter() {
        let i = names.index(&c.key);
        let better = match best.get(&i) {
            None => true,
            Some(b) => match (b.key.memory_limit, c.key.memory_limit) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(x), Some(y)) => y > x,
            },
        };
        if better {
            best.insert(i, c);
        }
    }
    best.into_values().collect()
}

/// Where bar `slot` of the `slots` bars of category `group` goes, when the fullest category
/// has `widest` bars: bars keep one width and a category's bars are centred on it.
pub(super) fn bar_span(group: usize, slot: usize, slots: usize, widest: usize) -> (f64, f64) {
    let width = 0.8 / widest.max(slots).max(1) as f64;
    let x0 = group as f64 - width * slots as f64 / 2.0 + slot as f64 * width;
    (x0 + width * 0.06, x0 + width * 0.94)
}

/// Bars for categories of series: category `g` of `groups` maps each series to its value.
/// Returns the bars, the series drawn (sorted, once each) and the tallest value.
pub(super) fn grouped_bars<'a>(
    groups: impl Iterator<Item = &'a BTreeMap<usize, f64>> + Clone,
) -> (Vec<Shape>, Vec<usize>, f64) {
    let max = groups
        .clone()
        .flat_map(|g| g.values().copied())
        .fold(0.0, f64::max);
    let widest = groups.clone().map(BTreeMap::len).max().unwrap_or(1);
    let mut shapes = Vec::new();
    let mut series: Vec<usize> = Vec::new();
    for (gi, bars) in groups.enumerate() {
        for (slot, (&s, &v)) in bars.iter().enumerate() {
            let (x0, x1) = bar_span(gi, slot, bars.len(), widest);
            shapes.push(Shape::Rect {
                x0,
                y0: 0.0,
                x1,
                y1: v,
                color: color_of(s),
                filled: !alt_of(s),
            });
            series.push(s);
        }
    }
    series.sort_unstable();
    series.dedup();
    (shapes, series, max)
}

pub(super) fn series_swatch(names: &Names, i: usize) -> Entry {
    Entry {
        key: Key::Swatch {
            color: color_of(i),
            filled: !alt_of(i),
        },
        label: names.labels[i].clone(),
    }
}

pub(super) fn series_line(label: String, i: usize) -> Entry {
    Entry {
        key: Key::Line {
            color: color_of(i),
            marker: i % MARKERS,
            dashed: alt_of(i),
        },
        label,
    }
}

/// The phases of a run over the ops, as charts over the ops mark them: a dashed line at each
/// boundary, each phase's name at the top of the panel.
pub(super) struct Phases {
    /// Where each phase starts, and its name (empty with fewer than two phases).
    starts: Vec<(f64, String)>,
    /// Per phase, the row of its name (a name moves down a row when it would run into one
    /// before it).
    rows: Vec<usize>,
}

impl Phases {
    /// The phases of the first cell's representative run, on an axis of `span` ops drawn
    /// about `plot_px` pixels wide.
    pub(super) fn of(cells: &[&Cell], span: f64, plot_px: f64) -> Phases {
        let mut starts: Vec<(f64, String)> = Vec::new();
        let phases = cells
            .first()
            .map(|c| c.representative().phases.as_slice())
            .unwrap_or_default();
        if phases.len() >= 2 {
            let mut at = 0.0;
            for p in phases {
                starts.push((at, p.name.clone()));
                at = p.end.op as f64;
            }
        }
        let mut rows: Vec<usize> = Vec::new();
        let mut placed: Vec<(f64, f64, usize)> = Vec::new();
        for (at, name) in &starts {
            let x0 = at / span * plot_px;
            let w = f64::from(text_width(name, 11)) + 10.0;
            let row = (0..)
                .find(|r| {
                    !placed
                        .iter()
                        .any(|&(a, b, pr)| pr == *r && x0 < b && x0 + w > a)
                })
                .unwrap_or(0);
            placed.push((x0, x0 + w, row));
            rows.push(row);
        }
        Phases { starts, rows }
    }

    /// The boundaries and names on a panel whose y axis is `y`.
    pub(super) fn shapes(&self, y: &Axis) -> Vec<Shape> {
        let mut shapes = Vec::new();
        for (b, (at, name)) in self.starts.iter().enumerate() {
            if b > 0 {
                shapes.push(Shape::Line {
                    points: vec![(*at, y.lo), (*at, y.hi)],
                    color: GREY,
                    width: 1,
                    dashed: true,
                });
            }
            shapes.push(Shape::Label {
                at: (*at, y.hi),
                dx: 4,
                dy: 3 + 13 * self.rows[b] as i32,
                text: name.clone(),
                size: 11,
                h: HPos::Left,
                v: VPos::Top,
                color: GREY,
            });
        }
        shapes
    }

    /// The caption's sentence on them (empty without boundaries).
    pub(super) fn note(&self) -> String {
        if self.starts.len() < 2 {
            return String::new();
        }
        format!(
            " Dashed lines mark the phase boundaries ({}).",
            self.starts
                .iter()
                .map(|s| s.1.as_str())
                .collect::<Vec<_>>()
                .join(", then ")
        )
    }
}

/// A line with a few markers, staggered between the `n` lines of a panel (the `k`-th here),
/// in the style of series `i`: lines that differ only in colour can still be told apart. A
/// single point is a marker alone.
pub(super) fn marked_line(points: Vec<(f64, f64)>, i: usize, k: usize, n: usize) -> Vec<Shape> {
    let mut shapes = Vec::new();
    let every = (points.len() / 8).max(1);
    let offset = (k * every) / n.max(1);
    for p in points.iter().skip(offset).step_by(every) {
        shapes.push(Shape::Marker {
            at: *p,
            color: color_of(i),
            shape: i % MARKERS,
        });
    }
    if points.len() > 1 {
        shapes.push(Shape::Line {
            points,
            color: color_of(i),
            width: 2,
            dashed: alt_of(i),
        });
    }
    shapes
}
