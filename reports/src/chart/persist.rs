//! What a forked snapshot copies: per configuration (allocator x layout), the bytes the
//! kernel copied (the child's `Private_Dirty` at its end, Redis's `rdb_last_cow_size`) beside
//! what a user-space copy-on-write at the allocator's block granularity would have copied;
//! and the copy against the rate of writes during the save.

use std::collections::BTreeMap;

use crate::set::{Cell, ResultSet};

use super::common::{baseline, grouped_bars, incomplete_note, series_line, series_swatch, Spec};
use super::figure::{color_of, Axis, Figure, Shape, Ticks, MARKERS};
use super::labels::{workload_label, Names};

const MIB: f64 = 1048576.0;

/// The forked saves of a cell's runs.
fn saves(c: &Cell) -> impl Iterator<Item = &crate::ForkSave> {
    c.runs
        .iter()
        .filter_map(|r| r.snapshot.as_ref())
        .flat_map(|s| s.saves.iter().filter(|v| v.complete))
}

/// One bar per configuration in each of two categories: the kernel's copy (fork) and the
/// allocator-block copy (user space; only where the allocator owns its blocks). Medians over
/// the repeats' saves.
pub(super) fn snapshot_cow(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let cells: Vec<&Cell> = baseline(set, names, w)
        .into_iter()
        .filter(|c| saves(c).next().is_some())
        .collect();
    if cells.is_empty() {
        return None;
    }
    let mut groups: [BTreeMap<usize, f64>; 2] = Default::default();
    for c in &cells {
        let i = names.index(&c.key);
        let fork: Vec<f64> = saves(c).map(|s| s.cow_bytes as f64 / MIB).collect();
        groups[0].insert(i, crate::set::Spread::of(fork).median);
        let block: Vec<f64> = saves(c)
            .filter_map(|s| s.block_cow_bytes)
            .map(|b| b as f64 / MIB)
            .collect();
        if !block.is_empty() {
            groups[1].insert(i, crate::set::Spread::of(block).median);
        }
    }
    let (shapes, series, max) = grouped_bars(groups.iter());
    let labels = vec![
        "fork: 4 KiB pages the kernel copied".to_string(),
        "user space: allocator blocks written".to_string(),
    ];
    let mut caption = format!(
        "{}: memory copied because the replay wrote while a forked snapshot was being saved \
         (`fraglab run --snapshot-at`). Left, the child's private dirty bytes at its end (Redis's \
         rdb_last_cow_size): every 4 KiB page the parent wrote, whatever the write's size, plus \
         the child's own few. Right, over the same window, the bytes of the allocator's blocks \
         (slab chunks) that changed: what a copy-on-write done in user space, a block at a time, \
         would copy; only allocators that own their blocks have it. Median over the repeats, MiB.",
        workload_label(w)
    );
    caption.push_str(&incomplete_note(&cells, names));
    Some(Spec {
        id: format!("snapshot-cow-{slug}"),
        caption,
        figure: Figure::one_panel(
            format!("Snapshot copy-on-write: {}", workload_label(w)),
            Axis::categories("copied by", labels),
            Axis::linear("MiB copied during the save", max, Ticks::Number, 1.08),
            shapes,
            series.iter().map(|&s| series_swatch(names, s)).collect(),
        ),
    })
}

/// Every save of every run of the set, whatever its workload: copy-on-write against the
/// writes per second of the parent during the save, one marker per save, coloured by
/// configuration (workloads with more writes give the points further right).
pub(super) fn cow_against_rate(set: &ResultSet, names: &Names) -> Option<Spec> {
    let cells: Vec<&Cell> = set
        .cells
        .iter()
        .filter(|c| saves(c).next().is_some())
        .collect();
    let mut points: Vec<(usize, f64, f64)> = Vec::new();
    for c in &cells {
        let i = names.index(&c.key);
        points.extend(saves(c).map(|s| (i, s.write_rate(), s.cow_share())));
    }
    // One save at one rate says nothing about the slope.
    if points.len() < 2 {
        return None;
    }
    let xmax = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let ymax = points.iter().map(|p| p.2).fold(0.0, f64::max);
    let shapes = points
        .iter()
        .map(|&(i, x, y)| Shape::Marker {
            at: (x, y),
            color: color_of(i),
            shape: i % MARKERS,
        })
        .collect();
    let mut series: Vec<usize> = points.iter().map(|p| p.0).collect();
    series.sort_unstable();
    series.dedup();
    let mut caption = String::from(
        "Each forked snapshot's copy-on-write (the child's private dirty bytes at its end) as a \
         share of the bytes allocated when it was forked, \
         against the rate of the parent's writes while it replayed during the save (writes \
         during the save / the seconds the replay overlapped it). Vary the rate with --snapshot-key-delay (a slower save sees more writes) or \
         with the workload's mix (every workload of the set is here); the copy grows with the \
         rate until every page is copied once.",
    );
    caption.push_str(&incomplete_note(&cells, names));
    Some(Spec {
        id: "snapshot-cow-rate".into(),
        caption,
        figure: Figure::one_panel(
            "Snapshot copy-on-write against write rate".into(),
            Axis::linear(
                "writes per second replayed during the save",
                xmax,
                Ticks::Count,
                1.08,
            ),
            Axis::linear(
                "copied / allocated at the fork",
                ymax.max(0.1),
                Ticks::Percent,
                1.08,
            ),
            shapes,
            series
                .iter()
                .map(|&s| series_line(names.labels[s].clone(), s))
                .collect(),
        ),
    })
}
