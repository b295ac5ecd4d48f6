//! Documents: a self-contained HTML page (inline SVG, opens offline) and a Markdown file with
//! the same tables, rendered from saved results only.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::chart::{render_all, ChartOut};
use crate::schema::{write_atomic, ResultError};
use crate::set::ResultSet;
use crate::table::{self, Table};

/// What to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Write `report.md` (with `charts/*.svg`, or `charts/*.png` with `png`).
    pub markdown: bool,
    /// Write `report.html`.
    pub html: bool,
    /// Write PNG charts beside the Markdown.
    pub png: bool,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Cells rendered.
    pub cells: usize,
    /// Files skipped, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table as Markdown.
pub fn table_md(t: &Table) -> String {
    let mut s = format!("## {}\n\n{}\n\n", t.title, t.note);
    let _ = writeln!(
        s,
        "| {} |",
        t.headers
            .iter()
            .map(|h| md_escape(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(s, "|{}", "---|".repeat(t.headers.len()));
    for r in &t.rows {
        let _ = writeln!(
            s,
            "| {} |",
            r.iter()
                .map(|c| md_escape(c))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    s.push('\n');
    s
}

/// A table as HTML.
pub fn table_html(t: &Table) -> String {
    let mut s = format!(
        "<section id=\"table-{}\"><h2>{}</h2><p>{}</p><div class=\"scroll\"><table>\n<tr>",
        t.id,
        html_escape(&t.title),
        html_escape(&t.note)
    );
    for h in &t.headers {
        let _ = write!(s, "<th>{}</th>", html_escape(h));
    }
    s.push_str("</tr>\n");
    for r in &t.rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", html_escape(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table></div></section>\n");
    s
}

fn skipped_md(set: &ResultSet) -> String {
    if set.skipped.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "## Skipped files\n\nThese files are not valid results and were left out:\n\n",
    );
    for k in &set.skipped {
        let _ = writeln!(s, "- `{}`: {}", k.path.display(), md_escape(&k.reason));
    }
    s.push('\n');
    s
}

fn skipped_html(set: &ResultSet) -> String {
    if set.skipped.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "<section id=\"skipped\"><h2>Skipped files</h2><p>These files are not valid results and were left out:</p><ul>",
    );
    for k in &set.skipped {
        let _ = write!(
            s,
            "<li><code>{}</code>: {}</li>",
            html_escape(&k.path.display().to_string()),
            html_escape(&k.reason)
        );
    }
    s.push_str("</ul></section>\n");
    s
}

/// The Markdown document.
pub fn markdown(set: &ResultSet, tables: &[Table], charts: &[ChartOut], ext: &str) -> String {
    let mut s = format!(
        "# fraglab report\n\n{} configurations from `{}`; rendered by fraglab {} from saved \
         results.\n\n",
        set.cells.len(),
        set.dir.display(),
        env!("CARGO_PKG_VERSION")
    );
    for c in charts {
        let _ = writeln!(
            s,
            "### {}\n\n![{}](charts/{}.{ext})\n\n{}\n",
            c.title,
            md_escape(&c.title),
            c.id,
            c.caption
        );
    }
    for t in tables {
        s.push_str(&table_md(t));
    }
    s.push_str(&skipped_md(set));
    s
}

/// The HTML document: inline SVG charts, the tables, and a small script that records each
/// chart's rendered size (for automated checks) in `#chart-check`.
pub fn html(set: &ResultSet, tables: &[Table], charts: &[ChartOut]) -> String {
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>fraglab report</title><style>\
         body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}\
         table{border-collapse:collapse;font-size:13px}\
         td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}\
         th{background:#f3f3f3}td:nth-child(-n+5){text-align:left}\
         .scroll{overflow-x:auto}figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}\
         figcaption{font-size:13px;color:#444}nav a{margin-right:1em}\
         </style></head><body>\n<h1>fraglab report</h1>\n",
    );
    let _ = writeln!(
        s,
        "<p>{} configurations from <code>{}</code>; rendered by fraglab {} from saved results.</p>",
        set.cells.len(),
        html_escape(&set.dir.display().to_string()),
        env!("CARGO_PKG_VERSION")
    );
    s.push_str("<nav>");
    for c in charts {
        let _ = write!(
            s,
            "<a href=\"#chart-{}\">{}</a>",
            c.id,
            html_escape(&c.title)
        );
    }
    s.push_str("</nav>\n");
    for c in charts {
        let _ = writeln!(
            s,
            "<figure class=\"chart\" id=\"chart-{}\">{}<figcaption>{}</figcaption></figure>",
            c.id,
            c.svg,
            html_escape(&c.caption)
        );
    }
    for t in tables {
        s.push_str(&table_html(t));
    }
    s.push_str(&skipped_html(set));
    s.push_str(
        "<pre id=\"chart-check\"></pre>\n<script>\
         (function(){var out=[];document.querySelectorAll('figure.chart').forEach(function(f){\
         var svg=f.querySelector('svg');var r=svg?svg.getBoundingClientRect():{width:0,height:0};\
         out.push(f.id+' '+Math.round(r.width)+' '+Math.round(r.height));});\
         document.getElementById('chart-check').textContent=out.join('\\n');})();\
         </script>\n</body></html>\n",
    );
    s
}

/// Checks that a render into `out` can write its files, before anything is drawn: `out`
/// takes a new file, `charts/` is a directory if it exists (not a symlink), and every document
/// it would replace is a regular file ([`crate::output`]).
pub fn check_render(opts: RenderOptions, out: &Path) -> Result<(), ResultError> {
    crate::output::check_writable(&out.join("report.md"))?;
    let charts_dir = out.join("charts");
    if let Ok(meta) = std::fs::symlink_metadata(&charts_dir) {
        if !meta.is_dir() {
            return Err(ResultError {
                path: charts_dir,
                message: "is not a directory; the charts cannot be written".into(),
            });
        }
    }
    if opts.markdown {
        crate::output::check_target(&out.join("report.md"))?;
    }
    if opts.html {
        crate::output::check_target(&out.join("report.html"))?;
    }
    Ok(())
}

/// Renders `set` into `out` (usually the results directory itself): `report.md`,
/// `report.html`, and `charts/`. `base` adds the cell-by-cell comparison. Nothing is re-run.
pub fn render(
    set: &ResultSet,
    base: Option<&ResultSet>,
    opts: RenderOptions,
    out: &Path,
) -> Result<Rendered, ResultError> {
    let charts_dir = out.join("charts");
    let io = |p: &Path, e: std::io::Error| ResultError {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    check_render(opts, out)?;
    std::fs::create_dir_all(&charts_dir).map_err(|e| io(&charts_dir, e))?;
    let png_dir = (opts.markdown && opts.png).then_some(charts_dir.as_path());
    let charts = render_all(set, png_dir)?;
    let tables = table::all(set, base);
    let mut rendered = Rendered {
        cells: set.cells.len(),
        skipped: set
            .skipped
            .iter()
            .map(|s| (s.path.clone(), s.reason.clone()))
            .collect(),
        ..Rendered::default()
    };
    if opts.markdown {
        for c in &charts {
            let p = charts_dir.join(format!("{}.svg", c.id));
            write_atomic(&p, c.svg.as_bytes())?;
            rendered.files.push(p);
            if opts.png {
                rendered
                    .files
                    .push(charts_dir.join(format!("{}.png", c.id)));
            }
        }
        let ext = if opts.png { "png" } else { "svg" };
        let p = out.join("report.md");
        write_atomic(&p, markdown(set, &tables, &charts, ext).as_bytes())?;
        rendered.files.push(p);
    }
    if opts.html {
        let p = out.join("report.html");
        write_atomic(&p, html(set, &tables, &charts).as_bytes())?;
        rendered.files.push(p);
    }
    Ok(rendered)
}
