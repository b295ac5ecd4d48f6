//! Charts of a [`ResultSet`], as SVG strings (and PNG files on request).
//!
//! Every chart is computed first as a [`Figure`]: panels whose axes, bars, lines, markers and
//! labels are already in data coordinates. One drawing function, generic over the plotters
//! backend, then draws a figure on SVG or on a bitmap, so both formats show the same thing.
//!
//! The charts a set supports (each is left out when the set has no data for it):
//!
//! | id | what |
//! |---|---|
//! | `memory-needed` | memory held (footprint + index) per workload and configuration, with the live data |
//! | `throughput` | ops per second per workload and configuration, median with min-max whiskers |
//! | `bytes-<workload>` | where the bytes go: payload, metadata, internal waste, external fragmentation, index |
//! | `timeline-<workload>` | footprint, allocated, requested and payload over the ops, phases marked |
//! | `slab-classes-<workload>` | per slab class: requested bytes, used chunk bytes, free chunk bytes |
//! | `latency-<workload>` | latency percentiles on a log axis |
//! | `miss-ratio-<workload>` | miss ratio under each memory limit |
//!
//! Text is drawn with the embedded DejaVu Sans (registered as `sans-serif`), so no system font
//! library is needed. Colours are Okabe and Ito's colour-blind-safe palette, then Paul Tol's
//! muted one; past those, series also differ by marker, dash and hollow bars.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::schema::{ResultError, RunResult};
use crate::set::{byte_unit, human_bytes, Cell, CellKey, ResultSet};

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

/// The font every text is drawn in.
const FAMILY: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// Width of every chart, in pixels.
const WIDTH: u32 = 960;
/// Height of a one-panel chart (more when its legend needs the room).
const HEIGHT: u32 = 540;
/// Height of the four-panel timeline.
const PANELS_HEIGHT: u32 = 720;
/// Room for the title.
const TITLE_H: u32 = 44;
/// Height of a legend row.
const LEGEND_ROW: u32 = 22;

/// Registers the embedded font for plotters' text, once.
fn font() -> Result<(), ResultError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ResultError {
            path: PathBuf::from("reports/assets/DejaVuSans.ttf"),
            message: "the embedded font could not be loaded".into(),
        })
    }
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
            draw(root, &fig).map_err(|e| ResultError {
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
    // The extension stays `.png`: the encoder picks the format from it.
    let tmp = dir.join(format!(".{id}.tmp-{}.png", std::process::id()));
    let drawn = {
        let root = BitMapBackend::new(&tmp, fig.size).into_drawing_area();
        draw(root, fig).map_err(|e| e.to_string())
    };
    let done = drawn.and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()));
    done.map_err(|message| {
        let _ = std::fs::remove_file(&tmp);
        ResultError { path, message }
    })
}

// ---------------------------------------------------------------------------------------------
// Series names and styles

/// The allocator spec without the settings that are at their defaults, where that stays
/// unambiguous: `slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576` is `slab`, and
/// `slab:factor=1.08,min=48,chunk_max=16384,item_max=1048576` is `slab:factor=1.08,chunk_max=16k`.
/// zmalloc keeps both its settings (its backend and prefix are what tell its variants apart).
pub fn short_alloc(spec: &str) -> String {
    let (name, rest) = match spec.split_once(':') {
        Some((n, r)) => (n, r),
        None => return spec.to_string(),
    };
    let defaults: &[(&str, &str)] = match name {
        "slab" => &[
            ("factor", "1.25"),
            ("min", "48"),
            ("chunk_max", "524288"),
            ("item_max", "1048576"),
        ],
        "bump" => &[("capacity", "0")],
        _ => return spec.to_string(),
    };
    let mut kept = Vec::new();
    for pair in rest.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let default = defaults.iter().find(|(dk, _)| *dk == k).map(|(_, dv)| *dv);
        let is_default = match default {
            Some(d) => match (v.parse::<f64>(), d.parse::<f64>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => v == d,
            },
            None => false,
        };
        if is_default {
            continue;
        }
        let v = if matches!(k, "min" | "chunk_max" | "item_max" | "capacity") {
            short_size(v)
        } else {
            v.to_string()
        };
        kept.push(format!("{k}={v}"));
    }
    if kept.is_empty() {
        name.to_string()
    } else {
        format!("{name}:{}", kept.join(","))
    }
}

/// `16384` -> `16k`, `2097152` -> `2m` (the spec syntax, powers of 1024); others unchanged.
fn short_size(v: &str) -> String {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => {
            for (unit, suffix) in [(1u64 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")] {
                if n % unit == 0 {
                    return format!("{}{suffix}", n / unit);
                }
            }
            v.to_string()
        }
        _ => v.to_string(),
    }
}

/// The legend name of a cell's series: the short allocator spec ([`short_alloc`]) and the
/// layout, and the target when it is not the engine (`slab / memcached`,
/// `zmalloc:backend=jemalloc,prefix=0 / redis`). The memory limit is not part of it.
pub fn series_label(key: &CellKey) -> String {
    let mut s = format!("{} / {}", short_alloc(&key.alloc), key.layout);
    if key.target != "engine" {
        s.push_str(&format!(" [{}]", key.target));
    }
    s
}

/// What a series is: allocator spec, layout, target.
type Ident = (String, String, String);

fn ident(key: &CellKey) -> Ident {
    (key.alloc.clone(), key.layout.clone(), key.target.clone())
}

/// Every series of a set, with a stable style index (so a series keeps its colour across
/// charts) and a label that is unique within the set.
struct Names {
    idents: Vec<Ident>,
    labels: Vec<String>,
}

impl Names {
    fn of(set: &ResultSet) -> Names {
        let mut idents: Vec<Ident> = Vec::new();
        let mut keys: Vec<&CellKey> = Vec::new();
        for c in &set.cells {
            let id = ident(&c.key);
            if !idents.contains(&id) {
                idents.push(id);
                keys.push(&c.key);
            }
        }
        let short: Vec<String> = keys.iter().map(|k| series_label(k)).collect();
        let labels = short
            .iter()
            .zip(&keys)
            .map(|(s, k)| {
                if short.iter().filter(|o| *o == s).count() > 1 {
                    // Two specs shorten alike: fall back to the full spec.
                    let mut l = k.series();
                    if k.target != "engine" {
                        l.push_str(&format!(" [{}]", k.target));
                    }
                    l
                } else {
                    s.clone()
                }
            })
            .collect();
        Names { idents, labels }
    }

    fn index(&self, key: &CellKey) -> usize {
        let id = ident(key);
        self.idents.iter().position(|i| *i == id).unwrap_or(0)
    }

    fn label(&self, key: &CellKey) -> String {
        self.labels[self.index(key)].clone()
    }

    /// The label with the memory limit, when there is one.
    fn label_limited(&self, key: &CellKey) -> String {
        match key.memory_limit {
            Some(m) => format!("{} ({} limit)", self.label(key), human_bytes(m as f64)),
            None => self.label(key),
        }
    }
}

/// Okabe and Ito's palette (blue first, yellow last: it is the faintest on white), then Paul
/// Tol's muted scheme.
const PALETTE: [RGBColor; 17] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0xF0, 0xE4, 0x42), // yellow
    RGBColor(0xCC, 0x66, 0x77), // Tol muted: rose
    RGBColor(0x33, 0x22, 0x88), // indigo
    RGBColor(0xDD, 0xCC, 0x77), // sand
    RGBColor(0x11, 0x77, 0x33), // green
    RGBColor(0x88, 0xCC, 0xEE), // cyan
    RGBColor(0x88, 0x22, 0x55), // wine
    RGBColor(0x44, 0xAA, 0x99), // teal
    RGBColor(0x99, 0x99, 0x33), // olive
    RGBColor(0xAA, 0x44, 0x99), // purple
];
const GREY: RGBColor = RGBColor(0x70, 0x70, 0x70);

fn color_of(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}
/// Past the palette, series are drawn again in its colours with hollow bars and dashed lines.
fn alt_of(i: usize) -> bool {
    (i / PALETTE.len()) % 2 == 1
}
const MARKERS: usize = 5;

// ---------------------------------------------------------------------------------------------
// Figures

/// How an axis labels its ticks.
#[derive(Clone, Debug)]
enum Ticks {
    /// Plain numbers.
    Number,
    /// Categories at 0, 1, 2, ...
    Cat(Vec<String>),
    /// Counts: 50k, 1.5M.
    Count,
    /// log10 of nanoseconds.
    LogNanos,
}

impl Ticks {
    fn format(&self, v: f64) -> String {
        match self {
            Ticks::Number => fmt_num(v),
            Ticks::Cat(names) => {
                let i = v.round();
                if (v - i).abs() > 1e-6 || i < 0.0 {
                    return String::new();
                }
                names.get(i as usize).cloned().unwrap_or_default()
            }
            Ticks::Count => fmt_count(v),
            Ticks::LogNanos => fmt_nanos(10f64.powf(v)),
        }
    }
}

#[derive(Clone, Debug)]
struct Axis {
    desc: String,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    light: Vec<f64>,
    labels: Ticks,
    /// Pixels for the tick labels and the description.
    area: u32,
}

impl Axis {
    /// A category axis: one slot per name.
    fn categories(desc: &str, names: Vec<String>) -> Axis {
        let n = names.len().max(1);
        Axis {
            desc: desc.into(),
            lo: -0.5,
            hi: n as f64 - 0.5,
            ticks: (0..n).map(|i| i as f64).collect(),
            light: Vec::new(),
            labels: Ticks::Cat(names),
            area: 48,
        }
    }

    /// A linear axis from 0 to a little past `max`, with round ticks.
    fn linear(desc: &str, max: f64, labels: Ticks, headroom: f64) -> Axis {
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let step = nice_step(max * headroom, 6);
        let n = ((max * headroom) / step).ceil().max(1.0) as usize;
        Axis {
            desc: desc.into(),
            lo: 0.0,
            hi: n as f64 * step,
            ticks: (0..=n).map(|i| i as f64 * step).collect(),
            light: Vec::new(),
            labels,
            area: 58,
        }
    }

    /// A log10 axis over whole decades containing `[min, max]` (values must be positive).
    fn log_nanos(desc: &str, min: f64, max: f64) -> Axis {
        let lo = min.max(1.0).log10().floor();
        let mut hi = max.max(1.0).log10().ceil();
        if hi <= lo {
            hi = lo + 1.0;
        }
        let ticks: Vec<f64> = (lo as i32..=hi as i32).map(f64::from).collect();
        let mut light = Vec::new();
        for d in lo as i32..hi as i32 {
            for k in 2..10 {
                light.push(f64::from(d) + f64::from(k).log10());
            }
        }
        Axis {
            desc: desc.into(),
            lo,
            hi,
            ticks,
            light,
            labels: Ticks::LogNanos,
            area: 64,
        }
    }
}

#[derive(Clone)]
enum Shape {
    /// A bar, filled or hollow.
    Rect {
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
        color: RGBColor,
        filled: bool,
    },
    /// A polyline, solid or dashed.
    Line {
        points: Vec<(f64, f64)>,
        color: RGBColor,
        width: u32,
        dashed: bool,
    },
    /// A marker of one of [`MARKERS`] shapes.
    Marker {
        at: (f64, f64),
        color: RGBColor,
        shape: usize,
    },
    /// A label at a data point, shifted by pixels.
    Label {
        at: (f64, f64),
        dx: i32,
        dy: i32,
        text: String,
        size: u32,
        h: HPos,
        v: VPos,
        color: RGBColor,
    },
}

#[derive(Clone)]
struct Panel {
    caption: Option<String>,
    x: Axis,
    y: Axis,
    shapes: Vec<Shape>,
}

#[derive(Clone, Debug)]
enum Key {
    Swatch {
        color: RGBColor,
        filled: bool,
    },
    Line {
        color: RGBColor,
        marker: usize,
        dashed: bool,
    },
    Dashed(RGBColor),
}

#[derive(Clone, Debug)]
struct Entry {
    key: Key,
    label: String,
}

#[derive(Clone)]
struct Figure {
    title: String,
    panels: Vec<Panel>,
    /// Rows and columns of panels.
    grid: (usize, usize),
    legend: Vec<Entry>,
    /// Height without the legend's extra rows.
    height: u32,
}

/// A figure with its legend laid out and its size fixed.
struct Laid {
    fig: Figure,
    size: (u32, u32),
    /// Per legend row: (entry, x offset) and the row's width.
    rows: Vec<(Vec<(usize, i32)>, i32)>,
}

const KEY_W: i32 = 26;

impl Figure {
    fn layout(&self) -> Laid {
        let avail = WIDTH as i32 - 40;
        let mut rows: Vec<(Vec<(usize, i32)>, i32)> = Vec::new();
        let mut row: Vec<(usize, i32)> = Vec::new();
        let mut x = 0;
        let mut fig = self.clone();
        for (i, e) in fig.legend.iter_mut().enumerate() {
            e.label = fit_text(&e.label, 13, (avail - KEY_W - 8) as u32);
            let w = KEY_W + 6 + text_width(&e.label, 13) as i32;
            if x > 0 && x + w > avail {
                rows.push((std::mem::take(&mut row), x - 18));
                x = 0;
            }
            row.push((i, x));
            x += w + 18;
        }
        if !row.is_empty() {
            rows.push((row, x - 18));
        }
        // Two rows fit in the base height; more rows make the image taller.
        let extra = rows.len().saturating_sub(2) as u32 * LEGEND_ROW;
        Laid {
            size: (WIDTH, self.height + extra),
            fig,
            rows,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Drawing

fn text_style(size: u32, color: &RGBColor) -> TextStyle<'static> {
    TextStyle {
        font: (FAMILY, size).into_font(),
        color: color.to_backend_color(),
        pos: Pos::default(),
    }
}

/// Width in pixels of `text` in the chart font at `size`.
fn text_width(text: &str, size: u32) -> u32 {
    let fallback = (text.chars().count() as u32 * size * 6) / 10;
    if font().is_err() {
        return fallback;
    }
    let mut scratch = String::new();
    let area = SVGBackend::with_string(&mut scratch, (8, 8)).into_drawing_area();
    area.estimate_text_size(text, &text_style(size, &BLACK))
        .map(|(w, _)| w)
        .unwrap_or(fallback)
}

/// `text`, cut with an ellipsis to fit `max` pixels.
fn fit_text(text: &str, size: u32, max: u32) -> String {
    if text_width(text, size) <= max {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let s: String = chars.iter().collect::<String>() + "…";
        if text_width(&s, size) <= max {
            return s;
        }
    }
    "…".into()
}

/// Draws a laid-out figure on any backend: title, panels, legend.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    laid: &Laid,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let fig = &laid.fig;
    root.fill(&WHITE)?;
    let (w, h) = root.dim_in_pixel();
    let title = fit_text(&fig.title, 22, w - 20);
    root.draw_text(
        &title,
        &text_style(22, &BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
        (w as i32 / 2, 12),
    )?;
    let legend_h = laid.rows.len() as u32 * LEGEND_ROW + if laid.rows.is_empty() { 0 } else { 10 };
    let body_h = h.saturating_sub(TITLE_H + legend_h).max(1);
    let (_, rest) = root.split_vertically(TITLE_H);
    let (body, legend) = rest.split_vertically(body_h);
    let areas = body.split_evenly(fig.grid);
    for (panel, area) in fig.panels.iter().zip(areas.iter()) {
        draw_panel(area, panel)?;
    }
    draw_legend(&legend, laid, w)?;
    root.present()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(8)
        .margin_right(24)
        .x_label_area_size(p.x.area)
        .y_label_area_size(p.y.area);
    if let Some(c) = &p.caption {
        builder.caption(c, text_style(15, &BLACK));
    }
    let mut chart = builder.build_cartesian_2d(Scale::of(&p.x), Scale::of(&p.y))?;
    let xf = |v: &f64| p.x.labels.format(*v);
    let yf = |v: &f64| p.y.labels.format(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(p.x.desc.as_str())
        .y_desc(p.y.desc.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(text_style(13, &BLACK))
        .axis_desc_style(text_style(14, &BLACK))
        .bold_line_style(RGBColor(0xD8, 0xD8, 0xD8))
        .light_line_style(RGBColor(0xF0, 0xF0, 0xF0));
    if matches!(p.x.labels, Ticks::Cat(_)) {
        mesh.disable_x_mesh();
    }
    if matches!(p.y.labels, Ticks::Cat(_)) {
        mesh.disable_y_mesh();
    }
    mesh.draw()?;
    for shape in &p.shapes {
        match shape {
            Shape::Rect {
                x0,
                y0,
                x1,
                y1,
                color,
                filled,
            } => {
                let style = if *filled {
                    color.filled()
                } else {
                    color.stroke_width(2)
                };
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(*x0, *y0), (*x1, *y1)],
                    style,
                )))?;
            }
            Shape::Line {
                points,
                color,
                width,
                dashed,
            } => {
                let points: Vec<(f64, f64)> = points
                    .iter()
                    .copied()
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .collect();
                if points.len() < 2 {
                    continue;
                }
                let style = color.stroke_width(*width);
                if *dashed {
                    chart.draw_series(std::iter::once(DashedPathElement::new(
                        points, 6, 4, style,
                    )))?;
                } else {
                    chart.draw_series(std::iter::once(PathElement::new(points, style)))?;
                }
            }
            Shape::Marker { at, color, shape } => {
                if at.0.is_finite() && at.1.is_finite() {
                    draw_marker(&mut chart, *at, *color, *shape)?;
                }
            }
            Shape::Label {
                at,
                dx,
                dy,
                text,
                size,
                h,
                v,
                color,
            } => {
                if at.0.is_finite() && at.1.is_finite() {
                    let style = text_style(*size, color).pos(Pos::new(*h, *v));
                    chart.draw_series(std::iter::once(
                        EmptyElement::at(*at) + Text::new(text.clone(), (*dx, *dy), style),
                    ))?;
                }
            }
        }
    }
    Ok(())
}

type Coords = Cartesian2d<Scale, Scale>;

/// A linear axis with the ticks we chose (round numbers, categories or decades).
#[derive(Clone)]
struct Scale {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Scale {
    fn of(a: &Axis) -> Scale {
        let (lo, hi) = if a.lo.is_finite() && a.hi.is_finite() && a.hi > a.lo {
            (a.lo, a.hi)
        } else {
            (0.0, 1.0)
        };
        Scale {
            lo,
            hi,
            bold: a.ticks.clone(),
            light: a.light.clone(),
        }
    }
}

impl Ranged for Scale {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.lo) / (self.hi - self.lo);
        let px = f64::from(limit.0) + t * f64::from(limit.1 - limit.0);
        // Far-off (or NaN) values stay representable; the backend clips them.
        px.clamp(-1e6, 1e6).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

fn draw_marker<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Coords>,
    at: (f64, f64),
    color: RGBColor,
    shape: usize,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let fill = color.filled();
    let e = EmptyElement::at(at);
    match shape % MARKERS {
        0 => chart.draw_series(std::iter::once(e + Circle::new((0, 0), 4, fill)))?,
        1 => chart.draw_series(std::iter::once(
            e + Rectangle::new([(-4, -4), (4, 4)], fill),
        ))?,
        2 => chart.draw_series(std::iter::once(e + TriangleMarker::new((0, 0), 5, fill)))?,
        3 => chart.draw_series(std::iter::once(
            e + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], fill),
        ))?,
        _ => chart.draw_series(std::iter::once(
            e + Cross::new((0, 0), 4, color.stroke_width(2)),
        ))?,
    };
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    laid: &Laid,
    width: u32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let style = text_style(13, &BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (r, (row, row_w)) in laid.rows.iter().enumerate() {
        let y = 4 + r as i32 * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
        let left = ((width as i32 - row_w) / 2).max(10);
        for (i, dx) in row {
            let e = &laid.fig.legend[*i];
            let x = left + dx;
            match &e.key {
                Key::Swatch { color, filled } => {
                    let s = if *filled {
                        color.filled()
                    } else {
                        color.stroke_width(2)
                    };
                    area.draw(&Rectangle::new([(x + 3, y - 7), (x + KEY_W - 3, y + 7)], s))?;
                }
                Key::Line {
                    color,
                    marker,
                    dashed,
                } => {
                    let s = color.stroke_width(2);
                    if *dashed {
                        area.draw(&DashedPathElement::new(
                            vec![(x, y), (x + KEY_W, y)],
                            6,
                            4,
                            s,
                        ))?;
                    } else {
                        area.draw(&PathElement::new(vec![(x, y), (x + KEY_W, y)], s))?;
                    }
                    let c = (x + KEY_W / 2, y);
                    let f = color.filled();
                    match marker % MARKERS {
                        0 => area.draw(&Circle::new(c, 4, f))?,
                        1 => {
                            area.draw(&Rectangle::new([(c.0 - 4, c.1 - 4), (c.0 + 4, c.1 + 4)], f))?
                        }
                        2 => area.draw(&TriangleMarker::new(c, 5, f))?,
                        3 => area.draw(&Polygon::new(
                            vec![
                                (c.0, c.1 - 5),
                                (c.0 + 5, c.1),
                                (c.0, c.1 + 5),
                                (c.0 - 5, c.1),
                            ],
                            f,
                        ))?,
                        _ => area.draw(&Cross::new(c, 4, color.stroke_width(2)))?,
                    }
                }
                Key::Dashed(color) => {
                    area.draw(&DashedPathElement::new(
                        vec![(x, y), (x + KEY_W, y)],
                        5,
                        3,
                        color.stroke_width(2),
                    ))?;
                }
            }
            area.draw_text(&e.label, &style, (x + KEY_W + 6, y))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Numbers

fn fin(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

fn nice_step(span: f64, ticks: usize) -> f64 {
    let raw = span / ticks.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    step * mag
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    let s = if a == 0.0 {
        return "0".into();
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    trim(s)
}

fn fmt_count(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(format!("{:.2}", v / 1e9)))
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else {
        fmt_num(v)
    }
}

fn fmt_nanos(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{} s", fmt_num(ns / 1e9))
    } else if ns >= 1e6 {
        format!("{} ms", fmt_num(ns / 1e6))
    } else if ns >= 1e3 {
        format!("{} µs", fmt_num(ns / 1e3))
    } else {
        format!("{} ns", fmt_num(ns))
    }
}

/// A file-name safe slug: lowercase ASCII letters, digits and single dashes.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "workload".into()
    } else {
        out
    }
}

/// A workload's name as shown: file and trace workloads by their file name.
fn workload_label(w: &str) -> String {
    for prefix in ["file:", "trace:"] {
        if let Some(path) = w.strip_prefix(prefix) {
            let name = Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.to_string());
            return format!("{prefix}{name}");
        }
    }
    w.to_string()
}

/// The cells of one workload.
fn cells_in<'a>(set: &'a ResultSet, w: &str) -> Vec<&'a Cell> {
    set.cells.iter().filter(|c| c.key.workload == w).collect()
}

fn median_of(values: Vec<f64>) -> f64 {
    crate::set::Spread::of(values.into_iter().map(fin).collect()).median
}

fn incomplete_note(cells: &[&Cell], names: &Names) -> String {
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

// ---------------------------------------------------------------------------------------------
// The charts

struct Spec {
    id: String,
    caption: String,
    figure: Figure,
}

/// Every chart the set supports.
fn charts(set: &ResultSet) -> Vec<Spec> {
    let names = Names::of(set);
    let mut out = Vec::new();
    out.extend(memory_needed(set, &names));
    out.extend(throughput(set, &names));
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
        out.extend(bytes_chart(set, &names, &w, &s));
        out.extend(timeline(set, &names, &w, &s));
        out.extend(slab_classes(set, &names, &w, &s));
        out.extend(latency(set, &names, &w, &s));
        out.extend(miss_ratio(set, &names, &w, &s));
    }
    out
}

/// Per series of a workload, the cell with the largest memory limit (no limit counts as the
/// largest): the runs that show the configuration itself rather than a point of a memory sweep.
fn baseline<'a>(set: &'a ResultSet, names: &Names, w: &str) -> Vec<&'a Cell> {
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
fn bar_span(group: usize, slot: usize, slots: usize, widest: usize) -> (f64, f64) {
    let width = 0.8 / widest.max(slots).max(1) as f64;
    let x0 = group as f64 - width * slots as f64 / 2.0 + slot as f64 * width;
    (x0 + width * 0.06, x0 + width * 0.94)
}

fn series_swatch(names: &Names, i: usize) -> Entry {
    Entry {
        key: Key::Swatch {
            color: color_of(i),
            filled: !alt_of(i),
        },
        label: names.labels[i].clone(),
    }
}

fn series_line(label: String, i: usize) -> Entry {
    Entry {
        key: Key::Line {
            color: color_of(i),
            marker: i % MARKERS,
            dashed: alt_of(i),
        },
        label,
    }
}

/// Bars of footprint + index per workload, unlimited cells of the engine, and the live data.
fn memory_needed(set: &ResultSet, names: &Names) -> Option<Spec> {
    struct Group {
        name: String,
        bars: BTreeMap<usize, (f64, f64)>,
        payload: f64,
        differs: bool,
    }
    let mut groups = Vec::new();
    let mut shown: Vec<&Cell> = Vec::new();
    for w in set.workloads() {
        let cells: Vec<&Cell> = cells_in(set, &w)
            .into_iter()
            .filter(|c| c.key.memory_limit.is_none() && c.key.target == "engine")
            .collect();
        if cells.is_empty() {
            continue;
        }
        let mut bars = BTreeMap::new();
        let mut payloads = Vec::new();
        for c in &cells {
            let held = fin(c
                .spread(|r| r.summary.footprint_bytes as f64 + r.summary.index_bytes as f64)
                .median);
            let payload = fin(c.spread(|r| r.summary.payload_bytes as f64).median);
            bars.insert(names.index(&c.key), (held, payload));
            payloads.push(payload);
        }
        let lo = payloads.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = payloads.iter().copied().fold(0.0, f64::max);
        groups.push(Group {
            name: workload_label(&w),
            bars,
            payload: median_of(payloads),
            differs: hi > lo * 1.01,
        });
        shown.extend(cells);
    }
    if groups.is_empty() {
        return None;
    }
    let series: Vec<usize> = {
        let mut s: Vec<usize> = groups.iter().flat_map(|g| g.bars.keys().copied()).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let max = groups
        .iter()
        .flat_map(|g| g.bars.values().map(|b| b.0).chain([g.payload]))
        .fold(0.0, f64::max);
    let (unit, unit_name) = byte_unit(max);
    let nbars: usize = groups.iter().map(|g| g.bars.len()).sum();
    let widest = groups.iter().map(|g| g.bars.len()).max().unwrap_or(1);
    let mut shapes = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (slot, (s, &(held, payload))) in g.bars.iter().enumerate() {
            let (x0, x1) = bar_span(gi, slot, g.bars.len(), widest);
            shapes.push(Shape::Rect {
                x0,
                y0: 0.0,
                x1,
                y1: held / unit,
                color: color_of(*s),
                filled: !alt_of(*s),
            });
            if payload > 0.0 && nbars <= 40 {
                shapes.push(Shape::Label {
                    at: ((x0 + x1) / 2.0, held / unit),
                    dx: 0,
                    dy: -3,
                    text: format!("{:.2}x", held / payload),
                    size: 11,
                    h: HPos::Center,
                    v: VPos::Bottom,
                    color: BLACK,
                });
            }
        }
        shapes.push(Shape::Line {
            points: vec![
                (gi as f64 - 0.45, g.payload / unit),
                (gi as f64 + 0.45, g.payload / unit),
            ],
            color: BLACK,
            width: 2,
            dashed: true,
        });
    }
    let mut legend: Vec<Entry> = series.iter().map(|&s| series_swatch(names, s)).collect();
    legend.push(Entry {
        key: Key::Dashed(BLACK),
        label: "live data (key + value bytes)".into(),
    });
    let differs: Vec<&str> = groups
        .iter()
        .filter(|g| g.differs)
        .map(|g| g.name.as_str())
        .collect();
    let mut caption = String::from(
        "Memory each configuration holds at the end of the run to keep its live data: the \
         allocator's footprint (memory held from the OS for items) plus the engine's index, \
         median over repeats, runs without a memory limit measured in the engine. The dashed line \
         is the live data (key + value bytes); the figure above a bar is the memory held per byte \
         of live data.",
    );
    if !differs.is_empty() {
        caption.push_str(&format!(
            " The live data differs between configurations for {}; the line is the median.",
            differs.join(", ")
        ));
    }
    caption.push_str(&incomplete_note(&shown, names));
    let labels = groups.iter().map(|g| g.name.clone()).collect();
    Some(Spec {
        id: "memory-needed".into(),
        caption,
        figure: Figure {
            title: "Memory needed to hold the live data".into(),
            panels: vec![Panel {
                caption: None,
                x: Axis::categories("workload", labels),
                y: Axis::linear(
                    &format!("footprint + index ({unit_name})"),
                    max / unit,
                    Ticks::Number,
                    1.12,
                ),
                shapes,
            }],
            grid: (1, 1),
            legend,
            height: HEIGHT,
        },
    })
}

/// Throughput per workload and series, with min-max whiskers.
fn throughput(set: &ResultSet, names: &Names) -> Option<Spec> {
    let mut groups: Vec<(String, BTreeMap<usize, crate::set::Spread>)> = Vec::new();
    let mut shown: Vec<&Cell> = Vec::new();
    let mut limited = false;
    for w in set.workloads() {
        let cells = baseline(set, names, &w);
        if cells.is_empty() {
            continue;
        }
        let mut bars = BTreeMap::new();
        for c in &cells {
            let s = c.spread(|r| fin(r.summary.ops_per_sec));
            bars.insert(names.index(&c.key), s);
            limited |= c.key.memory_limit.is_some();
        }
        groups.push((workload_label(&w), bars));
        shown.extend(cells);
    }
    if groups.is_empty() {
        return None;
    }
    let series: Vec<usize> = {
        let mut s: Vec<usize> = groups.iter().flat_map(|g| g.1.keys().copied()).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let max = groups
        .iter()
        .flat_map(|g| g.1.values().map(|s| s.max.max(s.median)))
        .fold(0.0, f64::max);
    let (unit, unit_name) = if max >= 1e6 {
        (1e6, "M ops/s")
    } else if max >= 1e3 {
        (1e3, "k ops/s")
    } else {
        (1.0, "ops/s")
    };
    let widest = groups.iter().map(|g| g.1.len()).max().unwrap_or(1);
    let mut shapes = Vec::new();
    for (gi, (_, bars)) in groups.iter().enumerate() {
        for (slot, (s, sp)) in bars.iter().enumerate() {
            let (x0, x1) = bar_span(gi, slot, bars.len(), widest);
            let mid = (x0 + x1) / 2.0;
            let cap = (x1 - x0) * 0.2;
            shapes.push(Shape::Rect {
                x0,
                y0: 0.0,
                x1,
                y1: sp.median / unit,
                color: color_of(*s),
                filled: !alt_of(*s),
            });
            if sp.max > sp.min {
                for pts in [
                    vec![(mid, sp.min / unit), (mid, sp.max / unit)],
                    vec![(mid - cap, sp.min / unit), (mid + cap, sp.min / unit)],
                    vec![(mid - cap, sp.max / unit), (mid + cap, sp.max / unit)],
                ] {
                    shapes.push(Shape::Line {
                        points: pts,
                        color: BLACK,
                        width: 1,
                        dashed: false,
                    });
                }
            }
        }
    }
    let repeats: Vec<usize> = shown.iter().map(|c| c.runs.len()).collect();
    let (rmin, rmax) = (
        repeats.iter().copied().min().unwrap_or(0),
        repeats.iter().copied().max().unwrap_or(0),
    );
    let runs = if rmin == rmax {
        format!(
            "{rmin} run{} per configuration",
            if rmin == 1 { "" } else { "s" }
        )
    } else {
        format!("{rmin} to {rmax} runs per configuration")
    };
    let mut caption = format!(
        "Ops per second over the whole replay (timeline sampling excluded), median over the \
         repeats; whiskers span the slowest to the fastest repeat ({runs})."
    );
    if limited {
        caption.push_str(
            " Configurations run only under memory limits are shown at their largest limit.",
        );
    }
    caption.push_str(&incomplete_note(&shown, names));
    let legend = series.iter().map(|&s| series_swatch(names, s)).collect();
    let labels = groups.iter().map(|g| g.0.clone()).collect();
    Some(Spec {
        id: "throughput".into(),
        caption,
        figure: Figure {
            title: "Throughput".into(),
            panels: vec![Panel {
                caption: None,
                x: Axis::categories("workload", labels),
                y: Axis::linear(
                    &format!("throughput ({unit_name})"),
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

/// The parts a byte of footprint + index is spent on, in stacking order.
const PARTS: [(&str, RGBColor); 5] = [
    ("payload (key + value)", RGBColor(0x00, 0x9E, 0x73)),
    ("metadata (requested - payload)", RGBColor(0x56, 0xB4, 0xE9)),
    (
        "internal waste (allocated - requested)",
        RGBColor(0xE6, 0x9F, 0x00),
    ),
    (
        "external fragmentation (footprint - allocated)",
        RGBColor(0xD5, 0x5E, 0x00),
    ),
    ("index", RGBColor(0x00, 0x72, 0xB2)),
];

/// Stacked horizontal bars: where each configuration's bytes go.
fn bytes_chart(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let cells = baseline(set, names, w);
    if cells.is_empty() {
        return None;
    }
    let parts = |r: &RunResult| -> [f64; 5] {
        let s = &r.summary;
        [
            s.payload_bytes as f64,
            s.requested_bytes as f64 - s.payload_bytes as f64,
            s.allocated_bytes as f64 - s.requested_bytes as f64,
            s.footprint_bytes as f64 - s.allocated_bytes as f64,
            s.index_bytes as f64,
        ]
    };
    let mut rows: Vec<(String, [f64; 5], f64)> = Vec::new();
    let mut clamped = Vec::new();
    for c in &cells {
        let mut v = [0.0; 5];
        for (k, slot) in v.iter_mut().enumerate() {
            let m = fin(c.spread(|r| parts(r)[k]).median);
            if m < 0.0 {
                clamped.push(format!(
                    "{} of {} ({})",
                    PARTS[k].0.split(" (").next().unwrap_or(PARTS[k].0),
                    names.label_limited(&c.key),
                    human_bytes(m)
                ));
            }
            *slot = m.max(0.0);
        }
        let payload = v[0];
        rows.push((names.label_limited(&c.key), v, payload));
    }
    let max = rows
        .iter()
        .map(|r| r.1.iter().sum::<f64>())
        .fold(0.0, f64::max);
    let (unit, unit_name) = byte_unit(max);
    let label_w = rows
        .iter()
        .map(|r| text_width(&r.0, 13))
        .max()
        .unwrap_or(40)
        .clamp(40, 360);
    let n = rows.len();
    let mut shapes = Vec::new();
    let mut names_top_down = vec![String::new(); n];
    for (i, (label, v, payload)) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        names_top_down[n - 1 - i] = fit_text(label, 13, label_w);
        let mut x = 0.0;
        for (k, part) in v.iter().enumerate() {
            if *part > 0.0 {
                shapes.push(Shape::Rect {
                    x0: x / unit,
                    y0: y - 0.3,
                    x1: (x + part) / unit,
                    y1: y + 0.3,
                    color: PARTS[k].1,
                    filled: true,
                });
            }
            x += part;
        }
        let mut text = human_bytes(x);
        if *payload > 0.0 {
            text.push_str(&format!(" ({:.2}x the payload)", x / payload));
        }
        shapes.push(Shape::Label {
            at: (x / unit, y),
            dx: 5,
            dy: 0,
            text,
            size: 12,
            h: HPos::Left,
            v: VPos::Center,
            color: BLACK,
        });
    }
    let mut y = Axis::categories("", names_top_down);
    // With few bars, room around them so that they do not grow fat.
    let pad = 3usize.saturating_sub(n) as f64 * 0.5;
    y.lo -= pad;
    y.hi += pad;
    y.area = label_w + 14;
    let mut x = Axis::linear(
        &format!("bytes ({unit_name})"),
        max / unit,
        Ticks::Number,
        1.35,
    );
    x.area = 44;
    let mut caption = String::from(
        "Where the bytes go at the end of the run, medians over repeats: the payload (key + value \
         bytes), metadata (requested - payload: item headers and per-key structures), internal \
         waste (allocated - requested: size-class rounding), external fragmentation (footprint - \
         allocated: memory held but not handed out) and the engine's index. A bar's length is \
         footprint + index.",
    );
    if cells.iter().any(|c| c.key.memory_limit.is_some()) {
        caption.push_str(
            " Configurations run only under memory limits are shown at their largest limit.",
        );
    }
    if !clamped.is_empty() {
        caption.push_str(&format!(
            " Negative parts are drawn as zero (so the bar is longer than footprint + index): {}.",
            clamped.join("; ")
        ));
    }
    caption.push_str(&incomplete_note(&cells, names));
    let legend = PARTS
        .iter()
        .map(|(label, color)| Entry {
            key: Key::Swatch {
                color: *color,
                filled: true,
            },
            label: (*label).to_string(),
        })
        .collect();
    Some(Spec {
        id: format!("bytes-{slug}"),
        caption,
        figure: Figure {
            title: format!("Where the bytes go: {}", workload_label(w)),
            panels: vec![Panel {
                caption: None,
                x,
                y,
                shapes,
            }],
            grid: (1, 1),
            legend,
            height: HEIGHT,
        },
    })
}

/// One figure of a timeline sample.
type MemoryFigure = fn(&crate::schema::Memory) -> u64;

/// Footprint, allocated, requested and payload over the ops, in four panels.
fn timeline(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let cells: Vec<&Cell> = baseline(set, names, w)
        .into_iter()
        .filter(|c| !c.representative().timeline.is_empty())
        .collect();
    if cells.is_empty() {
        return None;
    }
    let metrics: [(&str, MemoryFigure); 4] = [
        ("footprint (held from the OS)", |m| m.footprint_bytes),
        ("allocated (usable sizes given)", |m| m.allocated_bytes),
        ("requested (asked of the allocator)", |m| m.requested_bytes),
        ("payload (key + value)", |m| m.payload_bytes),
    ];
    let max_op = cells
        .iter()
        .flat_map(|c| c.representative().timeline.iter().map(|s| s.op as f64))
        .fold(0.0, f64::max);
    // Phase boundaries, from the first configuration's representative run.
    let phases = &cells[0].representative().phases;
    let mut starts: Vec<(f64, String)> = Vec::new();
    if phases.len() >= 2 {
        let mut at = 0.0;
        for p in phases {
            starts.push((at, p.name.clone()));
            at = p.end.op as f64;
        }
    }
    // Phase names go in rows at the top of each panel: a name moves down a row when it would
    // run into one before it (about 380 pixels of plot per panel).
    let span = Axis::linear("ops", max_op, Ticks::Count, 1.0).hi;
    let mut label_rows: Vec<usize> = Vec::new();
    let mut placed: Vec<(f64, f64, usize)> = Vec::new();
    for (at, name) in &starts {
        let x0 = at / span * 380.0;
        let w = f64::from(text_width(name, 11)) + 10.0;
        let row = (0..)
            .find(|r| {
                !placed
                    .iter()
                    .any(|&(a, b, pr)| pr == *r && x0 < b && x0 + w > a)
            })
            .unwrap_or(0);
        placed.push((x0, x0 + w, row));
        label_rows.push(row);
    }
    let mut panels = Vec::new();
    for (title, get) in metrics {
        let max = cells
            .iter()
            .flat_map(|c| {
                c.representative()
                    .timeline
                    .iter()
                    .map(|s| get(&s.memory) as f64)
            })
            .fold(0.0, f64::max);
        let (unit, unit_name) = byte_unit(max);
        let mut x = Axis::linear("ops", max_op, Ticks::Count, 1.0);
        x.area = 40;
        let mut y = Axis::linear(
            &format!("bytes ({unit_name})"),
            max / unit,
            Ticks::Number,
            1.1,
        );
        y.area = 56;
        let mut shapes = Vec::new();
        for (b, (at, name)) in starts.iter().enumerate() {
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
                dy: 3 + 13 * label_rows[b] as i32,
                text: name.clone(),
                size: 11,
                h: HPos::Left,
                v: VPos::Top,
                color: GREY,
            });
        }
        for (k, c) in cells.iter().enumerate() {
            let i = names.index(&c.key);
            let points: Vec<(f64, f64)> = c
                .representative()
                .timeline
                .iter()
                .map(|s| (s.op as f64, get(&s.memory) as f64 / unit))
                .collect();
            // A few markers per line, staggered between lines, so that lines that differ
            // only in colour can still be told apart.
            let every = (points.len() / 8).max(1);
            let offset = (k * every) / cells.len().max(1);
            for p in points.iter().skip(offset).step_by(every) {
                shapes.push(Shape::Marker {
                    at: *p,
                    color: color_of(i),
                    shape: i % MARKERS,
                });
            }
            if points.len() == 1 {
                continue;
            }
            shapes.push(Shape::Line {
                points,
                color: color_of(i),
                width: 2,
                dashed: alt_of(i),
            });
        }
        panels.push(Panel {
            caption: Some(title.to_string()),
            x,
            y,
            shapes,
        });
    }
    let legend = cells
        .iter()
        .map(|c| series_line(names.label_limited(&c.key), names.index(&c.key)))
        .collect();
    let every: Vec<u64> = cells
        .iter()
        .map(|c| c.representative().run.sample_every)
        .collect();
    let mut caption = format!(
        "Footprint, allocated, requested and payload bytes as the run goes, for each \
         configuration (its run with the median throughput), sampled every {} ops and at the end \
         of each phase.",
        fmt_count(every.iter().copied().max().unwrap_or(0) as f64)
    );
    if starts.len() >= 2 {
        caption.push_str(&format!(
            " Dashed lines mark the phase boundaries ({}).",
            starts
                .iter()
                .map(|s| s.1.as_str())
                .collect::<Vec<_>>()
                .join(", then ")
        ));
    }
    if cells.iter().any(|c| c.key.memory_limit.is_some()) {
        caption.push_str(
            " Configurations run only under memory limits are shown at their largest limit.",
        );
    }
    caption.push_str(&incomplete_note(&cells, names));
    Some(Spec {
        id: format!("timeline-{slug}"),
        caption,
        figure: Figure {
            title: format!("Memory over the run: {}", workload_label(w)),
            panels,
            grid: (2, 2),
            legend,
            height: PANELS_HEIGHT,
        },
    })
}

/// One slab class from `allocator_detail.classes`.
struct Class {
    class: u64,
    chunk_size: u64,
    used: u64,
    free: u64,
    requested: u64,
    pages: u64,
}

fn slab_classes_of(r: &RunResult) -> Option<Vec<Class>> {
    let d = &r.allocator_detail;
    if d.get("allocator").and_then(|a| a.as_str()) != Some("slab") {
        return None;
    }
    let num = |v: &serde_json::Value, k: &str| -> u64 {
        v.get(k)
            .and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f.max(0.0) as u64)))
            .unwrap_or(0)
    };
    let classes: Vec<Class> = d
        .get("classes")?
        .as_array()?
        .iter()
        .map(|c| Class {
            class: num(c, "class"),
            chunk_size: num(c, "chunk_size"),
            used: num(c, "used_chunks"),
            free: num(c, "free_chunks"),
            requested: num(c, "mem_requested"),
            pages: num(c, "total_pages"),
        })
        .collect();
    if classes.is_empty() {
        None
    } else {
        Some(classes)
    }
}

/// Per slab class: requested bytes, used chunk bytes, free chunk bytes.
fn slab_classes(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
    let candidates: Vec<(&Cell, Vec<Class>)> = set
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
                c.requested as f64,
                c.used as f64 * c.chunk_size as f64,
                c.free as f64 * c.chunk_size as f64,
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
    let pages = classes.iter().fold(0u64, |a, c| a.saturating_add(c.pages));
    let requested: f64 = classes.iter().map(|c| c.requested as f64).sum();
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

/// Latency percentiles per series, log axis.
fn latency(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
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

/// A note when a cell ended over its memory limit, as its allocator counts the limit: slab
/// pages for slab (memcached grants every class its first page even past the limit), the bytes
/// allocated for the others (Redis's `used_memory`).
fn over_limit(c: &Cell, limit: u64, names: &Names) -> Option<String> {
    let r = c.representative();
    let label = names.label_limited(&c.key);
    if r.allocator_detail.get("allocator").and_then(|a| a.as_str()) == Some("slab") {
        let held = c.spread(|r| r.summary.footprint_bytes as f64).median;
        if held <= limit as f64 {
            return None;
        }
        let past = r
            .allocator_detail
            .get("pages_past_limit")
            .and_then(|p| p.as_u64())
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
fn miss_ratio(set: &ResultSet, names: &Names, w: &str, slug: &str) -> Option<Spec> {
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
        "Miss ratio, misses / (hits + misses), under each memory limit, median over repeats. The \
         limits are spaced evenly, not to scale.",
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
        figure: Figure {
            title: format!("Miss ratio by memory limit: {}", workload_label(w)),
            panels: vec![Panel {
                caption: None,
                x: Axis::categories("memory limit", labels),
                y: Axis::linear("miss ratio (%)", max, Ticks::Number, 1.1),
                shapes,
            }],
            grid: (1, 1),
            legend,
            height: HEIGHT,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_specs_drop_defaults_only() {
        assert_eq!(
            short_alloc("slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576"),
            "slab"
        );
        assert_eq!(
            short_alloc("slab:factor=1.08,min=48,chunk_max=16384,item_max=1048576"),
            "slab:factor=1.08,chunk_max=16k"
        );
        assert_eq!(
            short_alloc("slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576,sizes=96-192"),
            "slab:sizes=96-192"
        );
        assert_eq!(
            short_alloc("zmalloc:backend=jemalloc,prefix=0"),
            "zmalloc:backend=jemalloc,prefix=0"
        );
        assert_eq!(short_alloc("jemalloc"), "jemalloc");
        assert_eq!(short_alloc("bump:capacity=0"), "bump");
    }

    #[test]
    fn slugs_and_numbers() {
        assert_eq!(slug("ramcloud-w3"), "ramcloud-w3");
        assert_eq!(slug("trace:/data/My Trace.csv"), "trace-data-my-trace-csv");
        assert_eq!(slug("::"), "workload");
        assert_eq!(fmt_count(250_000.0), "250k");
        assert_eq!(fmt_count(1_500_000.0), "1.5M");
        assert_eq!(fmt_nanos(1000.0), "1 µs");
        assert_eq!(fmt_num(2.5), "2.5");
        let a = Axis::linear("", f64::NAN, Ticks::Number, 1.1);
        assert!(a.hi > a.lo && !a.ticks.is_empty());
        let l = Axis::log_nanos("", 0.0, 0.0);
        assert!(l.hi > l.lo);
    }

    /// PNG text is drawn with the embedded font: the title row of a bitmap has dark pixels.
    #[test]
    fn bitmap_text_renders() {
        font().unwrap();
        let fig = Figure {
            title: "Title text".into(),
            panels: vec![Panel {
                caption: None,
                x: Axis::categories("x", vec!["a".into()]),
                y: Axis::linear("y", 1.0, Ticks::Number, 1.1),
                shapes: vec![],
            }],
            grid: (1, 1),
            legend: vec![],
            height: 200,
        };
        let laid = fig.layout();
        let (w, h) = laid.size;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            draw(root, &laid).unwrap();
        }
        let title_rows = &buf[..(w * TITLE_H * 3) as usize];
        let dark = title_rows
            .chunks(3)
            .filter(|p| p.iter().all(|&c| c < 128))
            .count();
        assert!(dark > 20, "only {dark} dark pixels in the title");
    }
}
