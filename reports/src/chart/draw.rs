//! Drawing a laid-out figure on any plotters backend (SVG or bitmap): title, panels, legend.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::figure::{
    fit_text, text_style, Axis, Key, Laid, Panel, Shape, Ticks, KEY_W, LEGEND_ROW, MARKERS, TITLE_H,
};

/// Draws a laid-out figure on any backend: title, panels, legend.
pub(super) fn draw<DB: DrawingBackend>(
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

pub(super) fn draw_panel<DB: DrawingBackend>(
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

pub(super) type Coords = Cartesian2d<Scale, Scale>;

/// A linear axis with the ticks we chose (round numbers, categories or decades).
#[derive(Clone)]
pub(super) struct Scale {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) bold: Vec<f64>,
    pub(super) light: Vec<f64>,
}

impl Scale {
    pub(super) fn of(a: &Axis) -> Scale {
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

pub(super) fn draw_marker<DB: DrawingBackend>(
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

pub(super) fn draw_legend<DB: DrawingBackend>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::figure::{font, Figure};

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
