//! Charts of a [`ResultSet`], as SVG strings (and PNG files on request).
//!
//! Every chart is computed first as a figure (`figure.rs`): panels whose axes, bars, lines, markers and
//! labels are already in data coordinates. One drawing function, generic over the plotters
//! backend, then draws a figure on SVG or on a bitmap, so both formats show the same thing.
//!
//! The charts a set supports (each is left out when the set has no data for it):
//!
//! | id | what |
//! |---|---|
//! | `memory-needed` | bytes held (footprint) and requested per byte of live data, per configuration, one panel per workload |
//! | `throughput` | ops per second per workload and configuration, median with min-max whiskers |
//! | `bytes-<workload>` | where the bytes go: payload, metadata, internal waste, external fragmentation, index |
//! | `log-write-amplification` | per log configuration: write amplification against utilization, beside RAMCloud's cleaning cost 1/(1-u) and the paper's 80-90% |
//! | `timeline-<workload>` | footprint, allocated, requested and payload over the ops, phases marked |
//! | `utilization-<workload>` | utilization (allocated / footprint) over the ops, per configuration; the log's target utilizations marked |
//! | `slab-classes-<workload>` | per slab class: requested bytes, used chunk bytes, free chunk bytes |
//! | `latency-<workload>` | latency percentiles on a log axis |
//! | `miss-ratio-<workload>` | miss-ratio curve: miss ratio under each memory limit, one line per allocator and layout |
//! | `bytes-per-element-<workload>` | hashes, sets, lists and sorted sets: allocated bytes per element by type and encoding, one bar per configuration |
//! | `automove-items-<workload>-<limit>` | slab automove 0/1/2 under a limit: items stored over the ops, one line per mode |
//! | `automove-hit-ratio-<workload>-<limit>` | the same runs: hit ratio of each interval between samples (workloads that read) |
//! | `automove-pages-<workload>-<limit>` | the same runs: pages per slab class (and the global pool) over the ops, one panel per mode that records them |
//! | `defrag-fragmentation-<workload>` | footprint / allocated over the ops with and without `--defrag`; on delete-half the 1.15 goal |
//! | `snapshot-cow-<workload>` | forked snapshots (`--snapshot-at`): MiB the kernel copied (the child's private dirty bytes) beside the allocator blocks a user-space copy-on-write would copy, per configuration |
//! | `snapshot-cow-rate` | each snapshot's copy-on-write against the writes per second replayed during it, every workload of the set |
//!
//! Text is drawn with the embedded DejaVu Sans (registered as `sans-serif`), so no system font
//! library is needed. Colours are Okabe and Ito's colour-blind-safe palette, then Paul Tol's
//! muted one; past those, series also differ by marker, dash and hollow bars.
//!
//! The modules, each using only those above it: `labels` (short names, series labels, number
//! formats), `figure` (the figure as data, its layout, the palette, the font), `draw` (a figure
//! on a plotters backend), `common` (what the chart families share), then one module per chart
//! family (`memory`, `throughput`, `log`, `bytes`, `timeline`, `utilization`, `slab`,
//! `latency`, `miss_ratio`, `aggregates`, `over_time`, `persist`).

mod aggregates;
mod bytes;
mod common;
mod draw;
mod figure;
mod labels;
mod latency;
mod log;
mod memory;
mod miss_ratio;
mod over_time;
mod persist;
mod slab;
mod throughput;
mod timeline;
mod utilization;

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::schema::ResultError;
use crate::set::ResultSet;

use common::Spec;
use figure::{font, Laid};
use labels::{slug, Names};

pub use labels::{series_label, short_alloc};

/// One rendered chart.
#[derive(Debug, Clone)]
pub struct ChartOut {
    /// File-name safe id (lowercase ASCII letters, digits and `-`), e.g. `timeline-etc`.
    pub id: String,
    /// The chart's title (also drawn in the image).
    pub title: String,
    /// What the chart shows and how to read it, with notes on odd data.
    pub caption: String,
    /// The chart as a standalone SVG document.
    pub svg: String,
}

/// Renders every chart the set supports, as SVG strings; when `png_dir` is Some, also writes
/// `<png_dir>/<id>.png` (atomically: a temporary file renamed into place).
pub fn render_all(set: &ResultSet, png_dir: Option<&Path>) -> Result<Vec<ChartOut>, ResultError> {
    let specs = charts(set);
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    font()?;
    if let Some(dir) = png_dir {
        std::fs::create_dir_all(dir).map_err(|e| ResultError {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let fig = spec.figure.layout();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, fig.size).into_drawing_area();
            draw::draw(root, &fig).map_err(|e| ResultError {
                path: PathBuf::from(format!("chart {}", spec.id)),
                message: format!("drawing failed: {e}"),
            })?;
        }
        if let Some(dir) = png_dir {
            write_png(dir, &spec.id, &fig)?;
        }
        out.push(ChartOut {
            id: spec.id,
            title: spec.figure.title.clone(),
            caption: spec.caption,
            svg,
        });
    }
    Ok(out)
}

fn write_png(dir: &Path, id: &str, fig: &Laid) -> Result<(), ResultError> {
    let path = dir.join(format!("{id}.png"));
    crate::output::check_target(&path)?;
    // The extension stays `.png`: the encoder picks the format from it.
    let tmp = dir.join(format!(".{id}.tmp-{}.png", std::process::id()));
    let drawn = {
        let root = BitMapBackend::new(&tmp, fig.size).into_drawing_area();
        draw::draw(root, fig).map_err(|e| e.to_string())
    };
    let done = drawn.and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()));
    done.map_err(|message| {
        let _ = std::fs::remove_file(&tmp);
        ResultError { path, message }
    })
}

/// Every chart the set supports, in report order.
fn charts(set: &ResultSet) -> Vec<Spec> {
    let names = Names::of(set);
    let mut out = Vec::new();
    out.extend(memory::memory_needed(set, &names));
    out.extend(throughput::throughput(set, &names));
    out.extend(log::write_amplification(set, &names));
    out.extend(over_time::automove(set, &names));
    out.extend(over_time::defrag(set, &names));
    out.extend(persist::cow_against_rate(set, &names));
    let mut used: Vec<String> = Vec::new();
    for w in set.workloads() {
        let mut s = slug(&w);
        let base = s.clone();
        let mut n = 2;
        while used.contains(&s) {
            s = format!("{base}-{n}");
            n += 1;
        }
        used.push(s.clone());
        out.extend(bytes::bytes_chart(set, &names, &w, &s));
        out.extend(timeline::timeline(set, &names, &w, &s));
        out.extend(utilization::utilization(set, &names, &w, &s));
        out.extend(slab::slab_classes(set, &names, &w, &s));
        out.extend(latency::latency(set, &names, &w, &s));
        out.extend(miss_ratio::miss_ratio(set, &names, &w, &s));
        out.extend(aggregates::bytes_per_element(set, &names, &w, &s));
        out.extend(persist::snapshot_cow(set, &names, &w, &s));
    }
    out
}
