//! Memory over time, the charts of `crate::over_time`: items, the hit ratio and pages per
//! slab class over the run with the slab automover off and on; fragmentation (footprint /
//! allocated) over the run with and without active defrag.

use plotters::style::text_anchor::{HPos, VPos};

use crate::over_time::{
    automove_groups, defrag_groups, fragmentation, interval_hit_ratio, DEFRAG_GOAL,
    DEFRAG_GOAL_WORKLOAD,
};
use crate::schema::Sample;
use crate::set::{human_bytes, Cell, ResultSet};

use super::common::{incomplete_note, marked_line, series_line, Phases, Spec};
use super::figure::{Axis, Entry, Figure, Key, Panel, Shape, Ticks, GREY};
use super::labels::{fmt_count, fmt_num, short_size, slug, workload_label, Names};

/// Classes drawn on the pages chart; the rest are summed into one line.
const PAGE_CLASSES: usize = 8;
/// Height of one panel of the pages chart.
const PAGES_PANEL_H: u32 = 250;

/// A unique id from `base`: `base`, then `base-2`, ...
fn unique(used: &mut Vec<String>, base: String) -> String {
    let mut s = base.clone();
    let mut n = 2;
    while used.contains(&s) {
        s = format!("{base}-{n}");
        n += 1;
    }
    used.push(s.clone());
    s
}

/// The ops axis of a set of cells' timelines.
fn ops_axis(cells: &[&Cell]) -> Axis {
    let max_op = cells
        .iter()
        .flat_map(|c| c.representative().timeline.iter().map(|s| s.op as f64))
        .fold(0.0, f64::max);
    let mut x = Axis::linear("ops", max_op, Ticks::Count, 1.0);
    x.area = 40;
    x
}

/// What a line is drawn from: a timeline, to `(op, value)` points.
type Points = dyn Fn(&[Sample]) -> Vec<(f64, f64)>;

/// A one-panel chart before its title and caption: x and y axes, shapes, legend.
type OnePanel = (Axis, Axis, Vec<Shape>, Vec<Entry>);

/// One line per cell of `f` over its representative run's timeline, in one panel.
fn lines_chart(
    names: &Names,
    cells: &[&Cell],
    f: &Points,
    y_desc: &str,
    ticks: Ticks,
    floor_max: f64,
    headroom: f64,
) -> Option<OnePanel> {
    let lines: Vec<(&Cell, Vec<(f64, f64)>)> = cells
        .iter()
        .map(|c| (*c, f(&c.representative().timeline)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let drawn: Vec<&Cell> = lines.iter().map(|(c, _)| *c).collect();
    let x = ops_axis(&drawn);
    let top = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(floor_max, f64::max);
    let mut y = Axis::linear(y_desc, top, ticks, headroom);
    y.area = 60;
    let phases = Phases::of(&drawn, x.hi, 840.0);
    let mut shapes = phases.shapes(&y);
    for (k, (c, points)) in lines.iter().enumerate() {
        shapes.extend(marked_line(
            points.clone(),
            names.index(&c.key),
            k,
            lines.len(),
        ));
    }
    let legend = lines
        .iter()
        .map(|(c, _)| series_line(names.label_limited(&c.key), names.index(&c.key)))
        .collect();
    Some((x, y, shapes, legend))
}

fn sample_note(cells: &[&Cell]) -> String {
    let every = cells
        .iter()
        .map(|c| c.representative().run.sample_every)
        .max()
        .unwrap_or(0);
    format!(
        " Each configuration's run with the median throughput, sampled every {} ops and at \
         the end of each phase.",
        fmt_count(every as f64)
    )
}

/// The charts of the automover study: per group (workload, limit, slab spec), items over the
/// run, the hit ratio over the run (when the workload reads) and pages per class.
pub(super) fn automove(set: &ResultSet, names: &Names) -> Vec<Spec> {
    let mut out = Vec::new();
    let mut used = Vec::new();
    for g in automove_groups(set) {
        let w = g[0].key.workload.clone();
        let limit = g[0].key.memory_limit.map_or("no limit".into(), |m| {
            format!("{} limit", human_bytes(m as f64))
        });
        let limit_id = g[0]
            .key
            .memory_limit
            .map_or("no-limit".into(), |m| short_size(&m.to_string()));
        let s = unique(&mut used, slug(&format!("{w}-{limit_id}")));
        // What every chart of the group says after its own caption: the sampling, the phase
        // boundaries, and the runs that did not finish.
        let tail = format!(
            "{}{}{}",
            sample_note(&g),
            Phases::of(&g, ops_axis(&g).hi, 840.0).note(),
            incomplete_note(&g, names)
        );
        let items = |t: &[Sample]| -> Vec<(f64, f64)> {
            t.iter()
                .map(|s| (s.op as f64, s.memory.items as f64))
                .collect()
        };
        if let Some((x, y, shapes, legend)) =
            lines_chart(names, &g, &items, "items stored", Ticks::Count, 1.0, 1.1)
        {
            let mut caption = format!(
                "Keys stored as the run goes, with the slab automover off (automove=0) and on \
                 (1, 2), {} under a {limit}: once the memory is full, a class holds only the \
                 items its pages hold, so items fall when the value sizes grow and pages stay \
                 with the classes of the old sizes (slab calcification) unless the automover \
                 moves them.",
                workload_label(&w)
            );
            caption.push_str(&tail);
            out.push(Spec {
                id: format!("automove-items-{s}"),
                caption,
                figure: Figure::one_panel(
                    format!(
                        "Items over the run, slab automove: {}, {limit}",
                        workload_label(&w)
                    ),
                    x,
                    y,
                    shapes,
                    legend,
                ),
            });
        }
        let hits = |t: &[Sample]| interval_hit_ratio(t);
        if let Some((x, y, shapes, legend)) = lines_chart(
            names,
            &g,
            &hits,
            "hit ratio (per interval)",
            Ticks::Percent,
            1.0,
            1.0,
        ) {
            let mut caption = format!(
                "The hit ratio of each interval between timeline samples (the hits / reads of \
                 that interval alone), with the slab automover off and on, {} under a {limit}: \
                 what the items each mode keeps are worth to the reads. Intervals without \
                 reads are not drawn.",
                workload_label(&w)
            );
            caption.push_str(&tail);
            out.push(Spec {
                id: format!("automove-hit-ratio-{s}"),
                caption,
                figure: Figure::one_panel(
                    format!(
                        "Hit ratio over the run, slab automove: {}, {limit}",
                        workload_label(&w)
                    ),
                    x,
                    y,
                    shapes,
                    legend,
                ),
            });
        }
        out.extend(pages(names, &g, &s, &w, &limit));
    }
    out
}

/// Pages per slab class over the run, one panel per configuration that recorded them
/// (`class_pages`: written while the automover runs).
fn pages(names: &Names, g: &[&Cell], s: &str, w: &str, limit: &str) -> Option<Spec> {
    let cells: Vec<&Cell> = g
        .iter()
        .copied()
        .filter(|c| {
            c.representative()
                .timeline
                .iter()
                .any(|s| s.class_pages.is_some())
        })
        .collect();
    if cells.is_empty() {
        return None;
    }
    // The classes drawn: the PAGE_CLASSES with the most pages at their peak, in class order.
    let mut peak: Vec<(u64, u64)> = Vec::new();
    for c in &cells {
        for smp in &c.representative().timeline {
            for [class, n] in smp.class_pages.iter().flatten() {
                match peak.iter_mut().find(|(k, _)| k == class) {
                    Some(p) => p.1 = p.1.max(*n),
                    None => peak.push((*class, *n)),
                }
            }
        }
    }
    peak.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut shown: Vec<u64> = peak.iter().take(PAGE_CLASSES).map(|p| p.0).collect();
    shown.sort_unstable();
    let others = peak.len() > shown.len();
    let max_pages = cells
        .iter()
        .flat_map(|c| c.representative().timeline.iter())
        .flat_map(|s| s.class_pages.iter().flatten().map(|p| p[1]))
        .max()
        .unwrap_or(1) as f64;
    let x = ops_axis(&cells);
    let phases = Phases::of(&cells, x.hi, 840.0);
    let mut panels = Vec::new();
    for c in &cells {
        let timeline: Vec<&Sample> = c
            .representative()
            .timeline
            .iter()
            .filter(|s| s.class_pages.is_some())
            .collect();
        let mut y = Axis::linear("pages", max_pages, Ticks::Number, 1.1);
        y.area = 52;
        let mut shapes = phases.shapes(&y);
        let n = shown.len() + usize::from(others);
        for (k, class) in shown.iter().enumerate() {
            let points = timeline
                .iter()
                .map(|s| {
                    let pages = s
                        .class_pages
                        .iter()
                        .flatten()
                        .find(|p| p[0] == *class)
                        .map_or(0, |p| p[1]);
                    (s.op as f64, pages as f64)
                })
                .collect();
            shapes.extend(marked_line(points, k, k, n));
        }
        if others {
            let points = timeline
                .iter()
                .map(|s| {
                    let pages: u64 = s
                        .class_pages
                        .iter()
                        .flatten()
                        .filter(|p| !shown.contains(&p[0]))
                        .map(|p| p[1])
                        .sum();
                    (s.op as f64, pages as f64)
                })
                .collect();
            shapes.extend(marked_line(points, shown.len(), shown.len(), n));
        }
        let mut x = x.clone();
        x.area = 36;
        panels.push(Panel {
            caption: Some(names.label(&c.key)),
            x,
            y,
            shapes,
        });
    }
    // Chunk sizes from the classes the runs end with.
    let chunk = |class: u64| {
        cells.iter().find_map(|c| {
            c.representative()
                .allocator_detail
                .slab()?
                .classes
                .iter()
                .find(|k| u64::from(k.class) == class)
                .map(|k| k.chunk_size)
        })
    };
    let mut legend: Vec<Entry> = shown
        .iter()
        .enumerate()
        .map(|(k, class)| {
            let label = match (*class, chunk(*class)) {
                (0, _) => "global page pool".to_string(),
                (c, Some(size)) => format!("class {c} ({} B chunks)", fmt_num(size as f64)),
                (c, None) => format!("class {c}"),
            };
            series_line(label, k)
        })
        .collect();
    if others {
        legend.push(series_line("the other classes, summed".into(), shown.len()));
    }
    let off: Vec<String> = g
        .iter()
        .filter(|c| !cells.iter().any(|d| d.key == c.key))
        .map(|c| names.label(&c.key))
        .collect();
    let mut caption = format!(
        "Pages (1 MiB each) per slab class as the run goes, one panel per configuration, {} \
         under a {limit}; the global page pool (pages in no class, memcached's \
         slab_global_page_pool) is drawn as its own line. The {} classes that held the most \
         pages are drawn{}.",
        workload_label(w),
        shown.len(),
        if others {
            ", the others summed into one line"
        } else {
            ""
        }
    );
    if !off.is_empty() {
        caption.push_str(&format!(
            " Runs with the automover off record no pages per class over time (their pages \
             never move between classes; the slab-classes chart has them at the end): {}.",
            off.join(", ")
        ));
    }
    caption.push_str(&sample_note(&cells));
    caption.push_str(&phases.note());
    caption.push_str(&incomplete_note(&cells, names));
    let rows = panels.len();
    Some(Spec {
        id: format!("automove-pages-{s}"),
        caption,
        figure: Figure {
            title: format!(
                "Pages per slab class over the run: {}, {limit}",
                workload_label(w)
            ),
            panels,
            grid: (rows, 1),
            legend,
            height: 110 + PAGES_PANEL_H * rows as u32,
        },
    })
}

/// The charts of the defrag study: per configuration run with `--defrag`, footprint /
/// allocated over the run beside the same run without it; the goal marked on delete-half.
pub(super) fn defrag(set: &ResultSet, names: &Names) -> Vec<Spec> {
    let mut out = Vec::new();
    let mut used = Vec::new();
    for g in defrag_groups(set) {
        let w = g[0].key.workload.clone();
        let s = unique(&mut used, slug(&w));
        let frag = |t: &[Sample]| -> Vec<(f64, f64)> {
            t.iter()
                .filter_map(|s| fragmentation(s).map(|r| (s.op as f64, r)))
                .collect()
        };
        let Some((x, y, mut shapes, mut legend)) = lines_chart(
            names,
            &g,
            &frag,
            "footprint / allocated (jemalloc's active / allocated)",
            Ticks::Number,
            1.0,
            1.1,
        ) else {
            continue;
        };
        let goal = w == DEFRAG_GOAL_WORKLOAD;
        if goal {
            shapes.push(Shape::Line {
                points: vec![(x.lo, DEFRAG_GOAL), (x.hi, DEFRAG_GOAL)],
                color: GREY,
                width: 1,
                dashed: true,
            });
            shapes.push(Shape::Label {
                at: (x.hi, DEFRAG_GOAL),
                dx: -4,
                dy: -2,
                text: format!("goal: {}", fmt_num(DEFRAG_GOAL)),
                size: 11,
                h: HPos::Right,
                v: VPos::Bottom,
                color: GREY,
            });
            legend.push(Entry {
                key: Key::Dashed(GREY),
                label: format!("the goal with defrag: at most {}", fmt_num(DEFRAG_GOAL)),
            });
        }
        let mut caption = format!(
            "Fragmentation as the run goes, {}: the memory jemalloc holds in active pages / the \
             bytes it has handed out (footprint / allocated; Redis's allocator_frag_ratio), \
             with active defrag (Redis 7.0's cycle, --defrag) and without. 1 is memory holding \
             nothing but blocks; deleting half the keys at random leaves slabs half full (about \
             2), which only moving the live blocks into fewer slabs gives back.",
            workload_label(&w)
        );
        if goal {
            caption.push_str(&format!(
                " The dashed line is the goal: defrag brings it to at most {}.",
                fmt_num(DEFRAG_GOAL)
            ));
        }
        caption.push_str(&sample_note(&g));
        caption.push_str(&Phases::of(&g, x.hi, 840.0).note());
        caption.push_str(&incomplete_note(&g, names));
        out.push(Spec {
            id: format!("defrag-fragmentation-{s}"),
            caption,
            figure: Figure::one_panel(
                format!(
                    "Fragmentation over the run, active defrag: {}",
                    workload_label(&w)
                ),
                x,
                y,
                shapes,
                legend,
            ),
        });
    }
    out
}
