//! What the chart families share: the chart spec, the cells they draw, bar placement,
//! legend entries and notes.

use std::collections::BTreeMap;

use crate::set::{Cell, ResultSet};

use super::figure::{alt_of, color_of, Entry, Figure, Key, MARKERS};
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
