//! `fraglab report`: renders saved results; never re-runs anything.

use std::path::{Path, PathBuf};

use clap::Args;
use fraglab_reports::render::{render, RenderOptions, Rendered};
use fraglab_reports::ResultSet;

/// Which documents to write.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DocFormat {
    /// `report.md` (charts as files beside it).
    Md,
    /// `report.html`, self-contained.
    Html,
    /// Both.
    Both,
}

/// `fraglab report`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// A directory of results (`fraglab run --out` files, or a `compare --out` directory).
    pub dir: PathBuf,
    /// Which documents to write.
    #[arg(long, value_enum, default_value_t = DocFormat::Both)]
    pub format: DocFormat,
    /// Also write PNG charts beside the Markdown (and link them from it).
    #[arg(long)]
    pub png: bool,
    /// Compare cell by cell with the results in this directory (ratios: this / baseline).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
}

/// Renders `dir` in place; returns a summary of what was written.
pub fn report(
    dir: &Path,
    baseline: Option<&Path>,
    opts: RenderOptions,
) -> Result<Rendered, String> {
    let set = ResultSet::load(dir).map_err(|e| e.to_string())?;
    if set.cells.is_empty() {
        let why = if set.skipped.is_empty() {
            String::new()
        } else {
            format!(
                " ({} files skipped: {})",
                set.skipped.len(),
                set.skipped
                    .iter()
                    .map(|s| format!("{}: {}", s.path.display(), s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        return Err(format!("{}: no results to report{why}", dir.display()));
    }
    let base = baseline
        .map(|b| ResultSet::load(b).map_err(|e| format!("--baseline: {e}")))
        .transpose()?;
    render(&set, base.as_ref(), opts, dir).map_err(|e| e.to_string())
}

/// Describes what a render wrote.
pub fn describe(r: &Rendered) -> String {
    let mut s = format!("rendered {} configurations\n", r.cells);
    for f in r
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md" || e == "html"))
    {
        s += &format!("wrote {}\n", f.display());
    }
    let charts = r
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "svg"))
        .count();
    if charts > 0 {
        s += &format!("wrote {charts} charts\n");
    }
    for (p, why) in &r.skipped {
        s += &format!("skipped {}: {why}\n", p.display());
    }
    s
}

/// `fraglab report`.
pub fn report_cmd(args: &ReportArgs) -> Result<String, String> {
    let opts = RenderOptions {
        markdown: matches!(args.format, DocFormat::Md | DocFormat::Both),
        html: matches!(args.format, DocFormat::Html | DocFormat::Both),
        png: args.png,
    };
    if args.png && !opts.markdown {
        return Err("--png draws the Markdown report's charts: use --format md or both".into());
    }
    report(&args.dir, args.baseline.as_deref(), opts).map(|r| describe(&r))
}
