//! The miss-ratio curve: miss ratio under each memory limit.

use std::collections::BTreeMap;

use crate::schema::RunResult;
use crate::set::{human_bytes, Cell, ResultSet};

use super::common::{cells_in, incomplete_note, median_of, series_line, Spec};
use super::figure::{alt_of, color_of, Axis, Figure, Shape, Ticks, MARKERS};
use super::labels::{workload_label, Names};

/// A note when a cell ended over its memory limit, as its allocator counts the limit: slab
/// pages for slab (memcached grants every class its first page even past the limit), the bytes
/// allocated for the others (Redis's `used_memory`).
pub(super) fn over_limit(c: &Cell, limit: u64, names: &Names) -> Option<String> {
    let r = c.representative();
    let label = names.label_limited(&c.key);
    if r.allocator_detail.allocator() == Some("slab") {
        let held = c.spread(|r| r.summary.footprint_bytes as f64).median;
        if held <= limit as f64 {
            return None;
        }
        let past = r
            .allocator_detail
            .slab()
            .and_then(|s| s.pages_past_limit)
            .unwrap_or(0);
        let why = if past > 0 {
            format!(", {past} of them granted past the limit (a class's first page)")
        } else {
            String::new()
        };
        Some(format!(
            "{label} held {} of slab pages{why}",
            human_bytes(held)
        ))
    } else {
        let allocated = c.spread(|r| r.summary.allocated_bytes as f64).median;
        (allocated > limit as f64)
            .then(|| format!("{label} had {} allocated", human_bytes(allocated)))
    }
}

/// Miss ratio against the memory limit, when the workload ran under several limits.
pub(super) fn miss_ratio(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let cells: Vec<&Cell> = cells_in(set, w).into_iter().collect();
    let mut by_series: BTreeMap<usize, Vec<&Cell>> = BTreeMap::new();
    for c in &cells {
        by_series.entry(names.index(&c.key)).or_default().push(c);
    }
    let swept = by_series.values().any(|cs| {
        let mut limits: Vec<Option<u64>> = cs.iter().map(|c| c.key.memory_limit).collect();
        limits.sort_unstable();
        limits.dedup();
        limits.len() >= 2
    });
    if !swept {
        return None;
    }
    let mut limits: Vec<Option<u64>> = cells.iter().map(|c| c.key.memory_limit).collect();
    // Limits in increasing order, no limit last.
    limits.sort_by_key(|l| (l.is_none(), *l));
    limits.dedup();
    let ratio = |r: &RunResult| {
        let reads = r.summary.hits as f64 + r.summary.misses as f64;
        (reads > 0.0).then(|| r.summary.misses as f64 / reads)
    };
    let mut lines: Vec<(usize, Vec<(f64, f64)>)> = Vec::new();
    let mut no_reads = Vec::new();
    let mut over = Vec::new();
    for (i, cs) in &by_series {
        let mut points = Vec::new();
        for c in cs {
            let x = limits
                .iter()
                .position(|l| *l == c.key.memory_limit)
                .unwrap_or(0) as f64;
            let rs: Vec<f64> = c.runs.iter().filter_map(ratio).collect();
            if rs.is_empty() {
                no_reads.push(names.label_limited(&c.key));
                continue;
            }
            points.push((x, median_of(rs) * 100.0));
            if let Some(m) = c.key.memory_limit {
                over.extend(over_limit(c, m, names));
            }
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !points.is_empty() {
            lines.push((*i, points));
        }
    }
    if lines.is_empty() {
        return None;
    }
    let max = lines
        .iter()
        .flat_map(|l| l.1.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1.0);
    let mut shapes = Vec::new();
    for (i, points) in &lines {
        for p in points {
            shapes.push(Shape::Marker {
                at: *p,
                color: color_of(*i),
                shape: i % MARKERS,
            });
        }
        shapes.push(Shape::Line {
            points: points.clone(),
            color: color_of(*i),
            width: 2,
            dashed: alt_of(*i),
        });
    }
    let legend = lines
        .iter()
        .map(|(i, _)| series_line(names.labels[*i].clone(), *i))
        .collect();
    let labels = limits
        .iter()
        .map(|l| match l {
            Some(m) => human_bytes(*m as f64),
            None => "no limit".to_string(),
        })
        .collect();
    let mut caption = String::from(
        "Miss-ratio curve: the miss ratio, misses / (hits + misses), under each memory limit, \
         one line per allocator and layout, median over repeats (the hit ratio is 100% less the \
         miss ratio). The limits are spaced evenly, not to scale.",
    );
    if !over.is_empty() {
        caption.push_str(&format!(
            " Over the limit at the end, as each allocator counts it: {}.",
            over.join("; ")
        ));
    }
    if !no_reads.is_empty() {
        caption.push_str(&format!(" No reads, not drawn: {}.", no_reads.join(", ")));
    }
    caption.push_str(&incomplete_note(&cells, names));
    Some(Spec {
        id: format!("miss-ratio-{slug}"),
        caption,
        figure: Figure::one_panel(
            format!("Miss ratio by memory limit: {}", workload_label(w)),
            Axis::categories("memory limit", labels),
            Axis::linear("miss ratio (%)", max, Ticks::Number, 1.1),
            shapes,
            legend,
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::chart::figure::Ticks;

    /// 2 allocators x 2 layouts, each run under 3 memory limits: one curve per allocator and
    /// layout, a point per limit at its miss ratio, the limits in increasing order.
    #[test]
    fn a_sweep_gives_one_curve_per_allocator_and_layout() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results");
        let fixture = ResultSet::load(&dir).unwrap();
        let mut set = fixture.clone();
        set.cells.clear();
        let limited = fixture
            .cells
            .iter()
            .filter(|c| c.key.workload == "etc" && c.key.memory_limit.is_some());
        // Misses per 10,000 reads, by allocator, layout and limit; the curve is in percent.
        let mut expected: BTreeMap<(String, String), Vec<(u64, f64)>> = BTreeMap::new();
        for c in limited {
            let alloc = c.key.alloc.split(':').next().unwrap().to_string();
            for (k, layout) in ["compact", "memcached"].iter().enumerate() {
                let mut c = c.clone();
                c.key.layout = (*layout).to_string();
                let limit = c.key.memory_limit.unwrap();
                let misses = 1000 / (limit >> 20) / (k as u64 + 1) + u64::from(alloc == "slab");
                for r in &mut c.runs {
                    r.run.layout = (*layout).to_string();
                    r.summary.hits = 10_000 - misses;
                    r.summary.misses = misses;
                }
                expected
                    .entry((alloc.clone(), (*layout).to_string()))
                    .or_default()
                    .push((limit, misses as f64 / 10_000.0 * 100.0));
                set.cells.push(c);
            }
        }
        assert_eq!(set.cells.len(), 2 * 2 * 3);
        let names = Names::of(&set);
        let spec = miss_ratio(&set, &names, "etc", "etc").expect("a miss-ratio chart");
        let panel = &spec.figure.panels[0];
        let Ticks::Cat(limits) = &panel.x.labels else {
            panic!("the x axis has the limits as categories");
        };
        assert_eq!(limits, &["1.00 MiB", "2.00 MiB", "4.00 MiB"]);
        let lines: Vec<&Vec<(f64, f64)>> = panel
            .shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Line { points, .. } => Some(points),
                _ => None,
            })
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(spec.figure.legend.len(), 4);
        for ((alloc, layout), mut points) in expected {
            points.sort_unstable_by_key(|p| p.0);
            let label = format!("{alloc} / {layout}");
            let i = spec
                .figure
                .legend
                .iter()
                .position(|e| e.label == label)
                .unwrap_or_else(|| panic!("no curve {label}"));
            let want: Vec<(f64, f64)> = points
                .iter()
                .enumerate()
                .map(|(x, p)| (x as f64, p.1))
                .collect();
            assert_eq!(lines[i], &want, "{label}");
        }
        assert!(spec.caption.contains("one line per allocator and layout"));
    }
}
