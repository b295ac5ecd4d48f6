//! Bytes per element of hashes, sets, lists and sorted sets, by encoding and configuration.

use std::collections::BTreeMap;

use crate::set::{Cell, ResultSet};

use super::common::{baseline, grouped_bars, incomplete_note, series_swatch, Spec};
use super::figure::{Axis, Figure, Ticks};
use super::labels::{fin, workload_label, Names};

/// One category per type and encoding (`hash listpack`), one bar per configuration: the
/// allocated bytes of the type's keys per element, median over the repeats.
pub(super) fn bytes_per_element(
    set: &ResultSet,
    names: &Names,
    w: &str,
    slug: &str,
) -> Option<Spec> {
    let cells: Vec<&Cell> = baseline(set, names, w)
        .into_iter()
        .filter(|c| !c.representative().aggregates.is_empty())
        .collect();
    if cells.is_empty() {
        return None;
    }
    let mut groups: BTreeMap<(String, String), BTreeMap<usize, f64>> = BTreeMap::new();
    for c in &cells {
        let mut per: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for r in &c.runs {
            for row in &r.aggregates.held {
                per.entry((row.agg_type.clone(), row.encoding.clone()))
                    .or_default()
                    .push(fin(row.bytes_per_element()));
            }
        }
        for (k, v) in per {
            let median = crate::set::Spread::of(v).median;
            groups
                .entry(k)
                .or_default()
                .insert(names.index(&c.key), median);
        }
    }
    if groups.is_empty() {
        return None;
    }
    let (shapes, series, max) = grouped_bars(groups.values());
    let labels = groups.keys().map(|(t, e)| format!("{t} {e}")).collect();
    let mut caption = format!(
        "{}: bytes the allocator spends per element (hash field, member, list element) of \
         each type and encoding at the end of the run: every allocation of those keys (for \
         Redis's layout the dict entry, key, object and encoding; for memcached's, the item \
         holding the serialized blob) at the allocator's own size, divided by their elements. \
         Median over the repeats.",
        workload_label(w)
    );
    caption.push_str(&incomplete_note(&cells, names));
    Some(Spec {
        id: format!("bytes-per-element-{slug}"),
        caption,
        figure: Figure::one_panel(
            format!("Bytes per element: {}", workload_label(w)),
            Axis::categories("type and encoding", labels),
            Axis::linear("allocated bytes per element", max, Ticks::Number, 1.08),
            shapes,
            series.iter().map(|&s| series_swatch(names, s)).collect(),
        ),
    })
}
