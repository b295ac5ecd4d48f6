//! A figure as data: panels whose axes, bars, lines, markers and labels are in data
//! coordinates, the legend laid out in rows, the palette, the font and text measuring.

use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::schema::ResultError;

use super::labels::{fmt_count, fmt_nanos, fmt_num, nice_step};

/// The font every text is drawn in.
pub(super) const FAMILY: &str = "sans-serif";
pub(super) static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// Width of every chart, in pixels.
pub(super) const WIDTH: u32 = 960;
/// Height of a one-panel chart (more when its legend needs the room).
pub(super) const HEIGHT: u32 = 540;
/// Height of the four-panel timeline.
pub(super) const PANELS_HEIGHT: u32 = 720;
/// Room for the title.
pub(super) const TITLE_H: u32 = 44;
/// Height of a legend row.
pub(super) const LEGEND_ROW: u32 = 22;

/// Registers the embedded font for plotters' text, once.
pub(super) fn font() -> Result<(), ResultError> {
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

/// Okabe and Ito's palette (blue first, yellow last: it is the faintest on white), then Paul
/// Tol's muted scheme.
pub(super) const PALETTE: [RGBColor; 17] = [
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
pub(super) const GREY: RGBColor = RGBColor(0x70, 0x70, 0x70);

pub(super) fn color_of(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}
/// Past the palette, series are drawn again in its colours with hollow bars and dashed lines.
pub(super) fn alt_of(i: usize) -> bool {
    (i / PALETTE.len()) % 2 == 1
}
pub(super) const MARKERS: usize = 5;

/// How an axis labels its ticks.
#[derive(Clone, Debug)]
pub(super) enum Ticks {
    /// Plain numbers.
    Number,
    /// Categories at 0, 1, 2, ...
    Cat(Vec<String>),
    /// Counts: 50k, 1.5M.
    Count,
    /// log10 of nanoseconds.
    LogNanos,
    /// log10 of a plain number.
    LogNumber,
    /// A fraction, shown as a percentage: 0.85 is 85%.
    Percent,
}

impl Ticks {
    pub(super) fn format(&self, v: f64) -> String {
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
            Ticks::LogNumber => fmt_num(10f64.powf(v)),
            Ticks::Percent => format!("{}%", fmt_num(v * 100.0)),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Axis {
    pub(super) desc: String,
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) ticks: Vec<f64>,
    pub(super) light: Vec<f64>,
    pub(super) labels: Ticks,
    /// Pixels for the tick labels and the description.
    pub(super) area: u32,
}

impl Axis {
    /// A category axis: one slot per name.
    pub(super) fn categories(desc: &str, names: Vec<String>) -> Axis {
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
    pub(super) fn linear(desc: &str, max: f64, labels: Ticks, headroom: f64) -> Axis {
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
    pub(super) fn log_nanos(desc: &str, min: f64, max: f64) -> Axis {
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
pub(super) enum Shape {
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
pub(super) struct Panel {
    pub(super) caption: Option<String>,
    pub(super) x: Axis,
    pub(super) y: Axis,
    pub(super) shapes: Vec<Shape>,
}

#[derive(Clone, Debug)]
pub(super) enum Key {
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
pub(super) struct Entry {
    pub(super) key: Key,
    pub(super) label: String,
}

#[derive(Clone)]
pub(super) struct Figure {
    pub(super) title: String,
    pub(super) panels: Vec<Panel>,
    /// Rows and columns of panels.
    pub(super) grid: (usize, usize),
    pub(super) legend: Vec<Entry>,
    /// Height without the legend's extra rows.
    pub(super) height: u32,
}

/// A figure with its legend laid out and its size fixed.
pub(super) struct Laid {
    pub(super) fig: Figure,
    pub(super) size: (u32, u32),
    /// Per legend row: (entry, x offset) and the row's width.
    pub(super) rows: Vec<(Vec<(usize, i32)>, i32)>,
}

pub(super) const KEY_W: i32 = 26;

impl Figure {
    /// A figure of one panel without a caption, of the default height.
    pub(super) fn one_panel(
        title: String,
        x: Axis,
        y: Axis,
        shapes: Vec<Shape>,
        legend: Vec<Entry>,
    ) -> Figure {
        Figure {
            title,
            panels: vec![Panel {
                caption: None,
                x,
                y,
                shapes,
            }],
            grid: (1, 1),
            legend,
            height: HEIGHT,
        }
    }

    pub(super) fn layout(&self) -> Laid {
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

pub(super) fn text_style(size: u32, color: &RGBColor) -> TextStyle<'static> {
    TextStyle {
        font: (FAMILY, size).into_font(),
        color: color.to_backend_color(),
        pos: Pos::default(),
    }
}

/// Width in pixels of `text` in the chart font at `size`.
pub(super) fn text_width(text: &str, size: u32) -> u32 {
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
pub(super) fn fit_text(text: &str, size: u32, max: u32) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::labels::{fmt_count, fmt_nanos, fmt_num, slug};

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
        assert_eq!(Ticks::Percent.format(0.85), "85%");
        assert_eq!(Ticks::LogNumber.format(2f64.log10()), "2");
    }
}
