//! Running the cells: each a `fraglab run` child process, `--jobs` at once.

use std::io::IsTerminal;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use fraglab_reports::compare::{CellFigures, CellRecord, CellStatus};
use fraglab_reports::RunResult;

use super::plan::{Cell, Plan};
use super::summarize::Writer;
use crate::STOP;

/// Exit status when Ctrl-C stopped compare (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// Lines of a failed child's stderr kept.
const STDERR_TAIL_LINES: usize = 5;

/// The last lines of a child's stderr.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n")
}

/// Runs one cell in a child process and fills in its record.
fn run_cell(exe: &Path, plan: &Plan, cell: &Cell, rec: &mut CellRecord) {
    let path = plan.dir.join(&cell.file);
    // A file left by an earlier, unfinished run is only read again if the child rewrote it.
    let mtime = || std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let before = mtime();
    let start = Instant::now();
    let output = Command::new(exe)
        .args(plan.child_args(cell, &path))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|c| c.wait_with_output());
    rec.seconds = Some(start.elapsed().as_secs_f64());
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            rec.status = CellStatus::Failed;
            rec.reason = Some(format!("cannot run {}: {e}", exe.display()));
            return;
        }
    };
    let loaded = match mtime() {
        Some(t) if Some(t) != before => RunResult::load(&path),
        _ => Err(fraglab_reports::ResultError {
            path: path.clone(),
            message: "not written".into(),
        }),
    };
    rec.figures = loaded.as_ref().ok().map(CellFigures::of);
    rec.exit_code = output.status.code();
    let signal = {
        use std::os::unix::process::ExitStatusExt as _;
        output.status.signal()
    };
    const SIGINT: i32 = 2;
    match (output.status.code(), signal) {
        (Some(0), _) => match loaded {
            Ok(r) if r.complete => rec.status = CellStatus::Ok,
            Ok(r) => {
                rec.status = CellStatus::Failed;
                rec.reason = r.incomplete_reason;
            }
            Err(e) => {
                rec.status = CellStatus::Failed;
                rec.reason = Some(format!("exited 0 but its result is unreadable: {e}"));
            }
        },
        (Some(c), _) if c == i32::from(INTERRUPTED) => {
            rec.status = CellStatus::Interrupted;
            rec.reason = loaded
                .ok()
                .and_then(|r| r.incomplete_reason)
                .or_else(|| Some("interrupted".into()));
        }
        (None, Some(SIGINT)) => {
            rec.status = CellStatus::Interrupted;
            rec.reason = Some("killed by SIGINT before it could save".into());
        }
        (Some(c), _) => {
            rec.status = CellStatus::Failed;
            let t = tail(&output.stderr);
            rec.reason = Some(if t.is_empty() {
                format!("exited {c}")
            } else {
                t
            });
        }
        (None, s) => {
            rec.status = CellStatus::Failed;
            let t = tail(&output.stderr);
            rec.reason = Some(format!(
                "killed by signal {}{}{t}",
                s.unwrap_or(0),
                if t.is_empty() { "" } else { "\n" }
            ));
        }
    }
}

/// Finished cells on stderr: a line per cell, above a bar when stderr is a terminal.
struct CellTicker {
    bar: Option<indicatif::ProgressBar>,
}

impl CellTicker {
    fn new(n: usize) -> CellTicker {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(n as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "compare [{bar:40}] {pos}/{len} cells ({elapsed}, {eta} left)",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            b
        });
        CellTicker { bar }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => {
                b.println(text);
                b.inc(1);
            }
            None => crate::note!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Runs the cells `todo` (indexes into the plan's cells), `--jobs` at once, until done or
/// Ctrl-C; compare.json is rewritten after every finished cell.
pub(super) fn run_cells(
    plan: &Plan,
    todo: &[usize],
    records: Vec<CellRecord>,
    writer: &Writer<'_>,
) -> Result<Vec<CellRecord>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find fraglab itself: {e}"))?;
    let n = todo.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let shared = Mutex::new((records, None::<String>));
    let ticker = CellTicker::new(n);
    std::thread::scope(|s| {
        for _ in 0..plan.settings.jobs.min(n) {
            s.spawn(|| loop {
                if STOP.load(Ordering::SeqCst) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { break };
                let cell = &plan.cells[i];
                let mut rec = plan.record(cell);
                run_cell(&exe, plan, cell, &mut rec);
                let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                let what = match rec.status {
                    CellStatus::Ok => "ok".to_string(),
                    CellStatus::Interrupted => "interrupted".to_string(),
                    _ => format!(
                        "FAILED: {}",
                        rec.reason
                            .as_deref()
                            .and_then(|r| r.lines().last())
                            .unwrap_or("?")
                    ),
                };
                ticker.line(&format!(
                    "[{finished}/{n}] {}: {what} {:.2} s",
                    cell.id,
                    rec.seconds.unwrap_or(0.0)
                ));
                guard.0[i] = rec;
                if let Err(e) =
                    writer.write(&guard.0, fraglab_reports::compare::CompareState::Running)
                {
                    guard.1.get_or_insert(e);
                }
            });
        }
    });
    ticker.finish();
    let (records, write_error) = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    match write_error {
        Some(e) => Err(e),
        None => Ok(records),
    }
}
