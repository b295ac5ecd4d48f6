//! Latency percentiles per configuration, on a log axis.

use std::collections::BTreeMap;

use crate::schema::RunResult;
use crate::set::ResultSet;

use super::common::{baseline, incomplete_note, series_line, Spec};
use super::figure::{alt_of, color_of, Axis, Figure, Panel, Shape, HEIGHT, MARKERS};
use super::labels::{workload_label, Names};

/// Latency percentiles per series, log axis.
pub(super) fn latency(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let cells = baseline(set, names, w);
    let reps: Vec<&RunResult> = cells.iter().map(|c| c.representative()).collect();
    let timed = |r: &RunResult, k: &str| r.latency.get(k).is_some_and(|l| l.timed > 0);
    let kind = if reps.iter().any(|r| timed(r, "get")) {
        "get".to_string()
    } else {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &reps {
            for (k, l) in &r.latency {
                if l.timed > 0 {
                    *counts.entry(k.as_str()).or_default() += l.count;
                }
            }
        }
        // The most frequent kind; the first by name among equals.
        let best = counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))?;
        best.0.to_string()
    };
    let cats = ["p50", "p90", "p99", "p99.9", "max"];
    let mut lines: Vec<(usize, String, Vec<f64>)> = Vec::new();
    let mut timed_every = Vec::new();
    for (c, r) in cells.iter().zip(&reps) {
        let Some(l) = r.latency.get(&kind).filter(|l| l.timed > 0) else {
            continue;
        };
        let v = [l.p50_ns, l.p90_ns, l.p99_ns, l.p999_ns, l.max_ns]
            .map(|x| (x as f64).max(1.0))
            .to_vec();
        lines.push((names.index(&c.key), names.label_limited(&c.key), v));
        timed_every.push(r.run.latency_every);
    }
    if lines.is_empty() {
        return None;
    }
    let min = lines
        .iter()
        .flat_map(|l| l.2.iter().copied())
        .fold(f64::INFINITY, f64::min);
    let max = lines
        .iter()
        .flat_map(|l| l.2.iter().copied())
        .fold(1.0, f64::max);
    let mut y = Axis::log_nanos("latency (log scale)", min, max);
    y.area = 70;
    let mut shapes = Vec::new();
    for (i, _, v) in &lines {
        let points: Vec<(f64, f64)> = v
            .iter()
            .enumerate()
            .map(|(k, ns)| (k as f64, ns.log10()))
            .collect();
        for p in &points {
            shapes.push(Shape::Marker {
                at: *p,
                color: color_of(*i),
                shape: i % MARKERS,
            });
        }
        shapes.push(Shape::Line {
            points,
            color: color_of(*i),
            width: 2,
            dashed: alt_of(*i),
        });
    }
    let legend = lines
        .iter()
        .map(|(i, label, _)| series_line(label.clone(), *i))
        .collect();
    let which = if kind == "get" {
        "`get` ops".to_string()
    } else {
        format!("`{kind}` ops, the most frequent kind (the workload has no timed gets)")
    };
    let every = timed_every.iter().copied().max().unwrap_or(0);
    let mut caption = format!(
        "Latency percentiles of {which}, on a log scale, from each configuration's run with the \
         median throughput; one op in {every} was timed, and values below 1 ns are drawn at 1 ns."
    );
    if cells.iter().any(|c| c.key.memory_limit.is_some()) {
        caption.push_str(
            " Configurations run only under memory limits are shown at their largest limit.",
        );
    }
    caption.push_str(&incomplete_note(&cells, names));
    Some(Spec {
        id: format!("latency-{slug}"),
        caption,
        figure: Figure {
            title: format!("Latency of {kind}: {}", workload_label(w)),
            panels: vec![Panel {
                caption: None,
                x: Axis::categories(
                    "percentile",
                    cats.iter().map(|s| (*s).to_string()).collect(),
                ),
                y,
                shapes,
            }],
            grid: (1, 1),
            legend,
            height: HEIGHT,
        },
    })
}
