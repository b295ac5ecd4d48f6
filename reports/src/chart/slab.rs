//! Slab classes: requested bytes, used and free chunk bytes per class.

use plotters::prelude::*;

use crate::schema::{RunResult, SlabClassDetail};
use crate::set::{byte_unit, human_bytes, Cell, ResultSet};

use super::common::{bar_span, Spec};
use super::figure::{Axis, Entry, Figure, Key, Panel, Shape, Ticks, HEIGHT};
use super::labels::{workload_label, Names};

/// The classes of a run's slab detail, None when it has no slab detail or no class.
pub(super) fn slab_classes_of(r: &RunResult) -> Option<&[SlabClassDetail]> {
    let classes = r.allocator_detail.slab()?.classes.as_slice();
    (!classes.is_empty()).then_some(classes)
}

/// Per slab class: requested bytes, used chunk bytes, free chunk bytes.
pub(super) fn slab_classes(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let candidates: Vec<(&Cell, &[SlabClassDetail])> = set
        .cells
        .iter()
        .filter(|c| c.key.workload == w)
        .filter(|c| c.key.memory_limit.is_none())
        .filter_map(|c| slab_classes_of(c.representative()).map(|k| (c, k)))
        .collect();
    // memcached's own layout first: that is the configuration that models memcached.
    let pick = candidates
        .iter()
        .position(|(c, _)| c.key.layout == "memcached")
        .unwrap_or(0);
    let (cell, classes) = candidates.get(pick)?;
    let bars: Vec<[f64; 3]> = classes
        .iter()
        .map(|c| {
            [
                c.mem_requested as f64,
                c.used_chunks as f64 * c.chunk_size as f64,
                c.free_chunks as f64 * c.chunk_size as f64,
            ]
        })
        .collect();
    let max = bars.iter().flatten().copied().fold(0.0, f64::max);
    let (unit, unit_name) = byte_unit(max);
    let colors = [
        RGBColor(0x00, 0x72, 0xB2),
        RGBColor(0xE6, 0x9F, 0x00),
        RGBColor(0xD5, 0x5E, 0x00),
    ];
    let mut shapes = Vec::new();
    for (gi, b) in bars.iter().enumerate() {
        for (k, v) in b.iter().enumerate() {
            let (x0, x1) = bar_span(gi, k, 3, 3);
            shapes.push(Shape::Rect {
                x0,
                y0: 0.0,
                x1,
                y1: v / unit,
                color: colors[k],
                filled: true,
            });
        }
    }
    let few = classes.len() <= 10;
    let labels: Vec<String> = classes
        .iter()
        .map(|c| {
            if few {
                format!("{} ({} B)", c.class, c.chunk_size)
            } else {
                c.class.to_string()
            }
        })
        .collect();
    let mut x = Axis::categories(
        if few {
            "slab class (chunk size)"
        } else {
            "slab class"
        },
        labels,
    );
    x.area = 48;
    let legend = [
        "requested (mem_requested)",
        "used chunks x chunk size",
        "free chunks x chunk size",
    ]
    .iter()
    .zip(colors)
    .map(|(l, color)| Entry {
        key: Key::Swatch {
            color,
            filled: true,
        },
        label: (*l).to_string(),
    })
    .collect();
    let label = names.label(&cell.key);
    let pages = classes
        .iter()
        .fold(0u64, |a, c| a.saturating_add(c.total_pages));
    let requested: f64 = classes.iter().map(|c| c.mem_requested as f64).sum();
    let used: f64 = bars.iter().map(|b| b[1]).sum();
    let free: f64 = bars.iter().map(|b| b[2]).sum();
    let mut caption = format!(
        "Per slab class of {label} (its run with the median throughput), at the end of the run: \
         the bytes the items stored in the class asked for, the chunks they occupy (used chunks x \
         chunk size; the difference is size-class rounding) and the free chunks (free chunks x \
         chunk size: held in the class's pages but unused). {} classes, {} pages in all; {} \
         requested, {} in used chunks, {} in free chunks.",
        classes.len(),
        pages,
        human_bytes(requested),
        human_bytes(used),
        human_bytes(free)
    );
    if !few {
        let lo = classes.iter().map(|c| c.chunk_size).min().unwrap_or(0);
        let hi = classes.iter().map(|c| c.chunk_size).max().unwrap_or(0);
        caption.push_str(&format!(
            " Chunk sizes run from {lo} B to {}.",
            human_bytes(hi as f64)
        ));
    }
    let others: Vec<String> = candidates
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != pick)
        .map(|(_, (c, _))| names.label(&c.key))
        .collect();
    if !others.is_empty() {
        caption.push_str(&format!(" Not shown: {}.", others.join(", ")));
    }
    Some(Spec {
        id: format!("slab-classes-{slug}"),
        caption,
        figure: Figure {
            title: format!("Slab classes: {} ({label})", workload_label(w)),
            panels: vec![Panel {
                caption: None,
                x,
                y: Axis::linear(
                    &format!("bytes ({unit_name})"),
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
