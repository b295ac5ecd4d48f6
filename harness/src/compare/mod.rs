//! `fraglab compare`: a matrix of runs, each in its own child process.
//!
//! ```text
//! fraglab compare [--workloads W1,W2,...] [--allocs SPEC,SPEC,...|all]...
//!                 [--layouts L1,L2,...] [--repeat N] [--jobs N] [--out DIR] [--scale X]
//!                 [--seed S] [--memory SIZE,SIZE,...] [--targets engine,memcached,redis]
//!                 [--plan [--plan-program PROG]]
//! ```
//!
//! The matrix is workloads x allocators x layouts x targets x memory limits x repeats. Every
//! cell is one
//! `fraglab run` started as a child process (`current_exe() run --workload W --alloc A
//! [--layout L] [--target T] [--scale X] --seed S [--memory M] --out DIR/cells/ID.json --quiet
//! --format json`), so RSS and allocator state never leak from one cell into the next.
//! `--jobs` children run at once (default: the cores available).
//!
//! # Arguments
//!
//! - `--workloads` is comma-separated: presets (`fraglab list workloads`), `file:PATH` or
//!   `trace:PATH` (a path with a comma cannot be given), or a preset group: `ramcloud` stands
//!   for `ramcloud-w1` ... `ramcloud-w8`, in order (RAMCloud's eight workloads, for the
//!   report's "RAMCloud's Figure 1"). A workload named twice runs once.
//! - `--allocs` takes allocator specs separated by commas, `;` or white space, and may be
//!   repeated: `--allocs jemalloc,slab:factor=1.08,min=64,mimalloc`,
//!   `--allocs 'jemalloc;slab:factor=1.08'`, `--allocs "jemalloc mimalloc"`, or
//!   `--allocs jemalloc --allocs slab:factor=1.08`. Specs contain commas too
//!   (`slab:factor=1.25,min=48`): a comma starts a new spec only when the word after it is an
//!   allocator's name (or `all`) followed by `:`, `,` or the end. `all` stands for every allocator of
//!   `fraglab list allocators` (`AllocSpec::all()`, 12 specs). Default: `all`. Specs are
//!   compared and printed in their canonical form, so `slab` and `slab:factor=1.25` are one.
//! - `--layouts` is comma-separated: `compact`, `memcached`, `redis`, `segcache`, or `default` (the
//!   allocator's own: memcached for slab, redis for zmalloc, compact for the others; its
//!   cells run without `--layout`). Without `--layouts` every allocator runs on its default
//!   layout only. A combination `fraglab run` refuses (the redis and segcache layouts keep no
//!   list links, so they refuse slab's `slab-lru`; the redis layout cannot follow the log
//!   allocator's moves) is not run and is reported as skipped, with the reason.
//! - `--targets` is comma-separated: `engine` (the default: in the child's process),
//!   `memcached`, `redis` (a real server the child starts, drives with the same op stream and
//!   stops: `fraglab run --target T`; see [`crate::peer`]). A real-server cell of an allocator
//!   its target refuses is skipped with the reason: memcached runs only the `slab` specs (the
//!   allocator it models; each slab spec is its own memcached configuration), and Redis only
//!   the `zmalloc` specs (the real Redis does not depend on the spec, so it runs once per
//!   zmalloc spec rather than once per allocator). A policy the server lacks is refused too.
//! - `--repeat N` runs each cell N times (files `...-r0.json`, `...-r1.json`, same seed): the
//!   summary gives the median of every figure and the min-max of throughput.
//! - `--scale X` applies to every workload but traces (a trace replays as recorded). Without
//!   it, the ramcloud, etc and other presets run at [`DEFAULT_SCALE`] and the tiny
//!   `memefficiency-*` presets and `file:` specs at 1; every cell records its scale.
//! - `--memory` takes one limit or a comma-separated list (`16m,64m,256m`; `none` for no
//!   limit): every cell runs at every limit, and the report draws the hit ratio against the
//!   limit per allocator x layout (a miss-ratio curve, with real bytes). Default: no limit.
//! - `--out DIR` defaults to `results/compare-<UTC time>`; `--seed` to 1.
//!
//! Unknown workloads, allocator specs and layouts are refused before anything runs, with the
//! valid names.
//!
//! # Files
//!
//! `DIR/cells/ID.json` (and `ID.timeline.csv`) per cell, where ID is
//! `WORKLOAD__ALLOC__LAYOUT__HASH-rN` (`WORKLOAD__ALLOC__LAYOUT__TARGET__HASH-rN` for a real
//! server): the names with every character but letters, digits and `-` made `_` (cut at 48
//! characters), and HASH a stable FNV-1a hash of everything the child is given (workload,
//! canonical spec, layout, scale, seed, memory, and the target when it is not `engine`), so
//! cells of other settings never collide with these. `DIR/compare.json` lists every cell
//! (workload, alloc, layout, target, scale, repeat, file, status, the child's wall time, the
//! error tail of a failed one, its figures) and one group per workload x alloc x layout x
//! target with the median, min and max of each figure over the repeats; it is rewritten
//! atomically after every finished cell, so it is current even if compare is killed.
//!
//! Statuses: `ok` (ran and completed), `resumed` (a complete result was already there),
//! `skipped` (the combination is refused), `failed` (the child exited non-zero: the last lines
//! of its stderr are kept), `interrupted` (the child stopped on Ctrl-C and saved a partial
//! result marked incomplete, or died of SIGINT), `not-run` (compare stopped first).
//!
//! # A plan for another scheduler
//!
//! `fraglab compare --plan [the same arguments]` runs nothing. It creates `DIR/cells`, writes
//! `compare.json` (state `planned`) and prints on stdout one self-contained shell command per
//! cell that is neither finished nor refused, and nothing else:
//! `PROG run --workload W --alloc A ... --out DIR/cells/ID.json --quiet --format json`, with
//! `DIR` made absolute and every word quoted for a POSIX shell. `PROG` is this binary's own
//! absolute path, or `--plan-program` (say `fraglab`, when hosts have it on PATH). The lines
//! can run anywhere that sees `DIR` (GNU parallel, `parallel --sshlogin` over hosts sharing a
//! file system, a Slurm job array, a Kubernetes indexed Job); the same `compare` without
//! `--plan` then picks their result files up as finished cells, runs whatever is still
//! missing, and renders the report exactly as if it had run them all.
//!
//! # Resuming and interrupting
//!
//! Rerunning with the same `--out DIR` and settings skips every cell whose JSON loads with
//! `complete: true` (and names the same workload, allocator, layout, target, seed and memory
//! limit) and
//! says how many it skipped; missing, unreadable and incomplete files are run again. Ctrl-C
//! reaches the children too (one process group): each saves what it measured, marked
//! incomplete, and exits 130; compare launches nothing more, writes `compare.json`, prints the
//! summary of what it has and exits 130. A SIGINT sent to compare alone lets the running cells
//! finish. Exit status: 0 when every cell is ok, resumed or skipped; 1 when one failed or is
//! incomplete, or when the report could not be written (cells and `compare.json` kept); 130
//! when Ctrl-C stopped compare; 141 when stdout was closed before the table was printed
//! (`compare.json` then says `interrupted`; every cell is kept, so a rerun resumes them all).
//!
//! `DIR/compare.json`, `DIR/cells/` and the report's files are checked before any cell runs
//! (`fraglab_reports::output`): a target that is not a regular file, or a directory that takes
//! no new file, is refused at once.
//!
//! # Output
//!
//! One progress line per finished cell on stderr (`[k/n] cell: ok 1.23 s`; with a progress
//! bar when stderr is a terminal), and on stdout a table with one row per workload x alloc x
//! layout x target x memory limit ([`fraglab_reports::compare::table`]; the memory and hit
//! ratio columns appear when a limit is set): M ops/s median [min-max], footprint and payload
//! MiB, efficiency,
//! evictions, status. A real server's M ops/s is its pipelined throughput over loopback, not
//! comparable with the engine's.
//!
//! # The default suite
//!
//! `fraglab compare` with no arguments runs `ramcloud-w1` ... `ramcloud-w8`, `etc` (at
//! [`DEFAULT_SCALE`]) and `memefficiency-32`, `-64`, `-128`, `-1024`, `-16384` (at 1) over all
//! 12 allocators on their default layouts: 168 cells. On the 2-core development machine with
//! 2 jobs (release build) it took 58.7 s of wall time (one run; the 154 cells before the log
//! allocator took 29.3 s and 29.5 s when the machine was otherwise idle, and 67.6 s while
//! another process kept one core busy). Time grows faster than
//! the scale (more ops and a larger live set, so more cache misses): a ramcloud-w4 cell takes
//! 2.2x (jemalloc) to 2.6x (zmalloc over glibc) as long at 0.5 as at 0.3, and the nine larger
//! workloads alone took 128 s at 0.5 on the busy machine.

mod args;
mod defrag;
mod execute;
mod plan;
mod resume;
mod summarize;

use std::path::Path;
use std::sync::atomic::Ordering;

use fraglab_reports::compare::{table, CellFigures, CellRecord, CellStatus, CompareState};

use crate::stdout::{StdoutError, CLOSED_STDOUT};
use crate::STOP;
pub use args::{CompareArgs, DEFAULT_SCALE, DEFAULT_WORKLOADS};
pub use execute::INTERRUPTED;
use fraglab_reports::render::RenderOptions;
use plan::{shell_line, Plan};
use summarize::{groups, Writer};

/// Prints the plan: one command line per cell to run. Returns the text for stdout.
fn print_plan(plan: &Plan, todo: &[usize], program: Option<&str>) -> Result<String, String> {
    let program = match program {
        Some(p) => p.to_string(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find fraglab itself: {e}"))?
            .to_string_lossy()
            .into_owned(),
    };
    let mut out = String::new();
    for &i in todo {
        let cell = &plan.cells[i];
        out += &shell_line(&program, &plan.child_args(cell, &plan.dir.join(&cell.file)))?;
        out.push('\n');
    }
    Ok(out)
}

/// `fraglab compare`: runs the matrix and prints its table through [`crate::stdout`] (or, with
/// `--plan`, returns the plan lines to print); returns what is left to print on stdout and the
/// exit status (0; 1 if a cell failed or is incomplete or the report was not written; 130 if
/// Ctrl-C stopped it; 141 if stdout was closed).
pub fn compare_cmd(args: &CompareArgs) -> Result<(String, u8), String> {
    let mut plan = Plan::new(args)?;
    let cells_dir = plan.dir.join("cells");
    std::fs::create_dir_all(&cells_dir)
        .map_err(|e| format!("--out {}: {e}", cells_dir.display()))?;
    if args.plan {
        // Plan lines run elsewhere: they name the directory absolutely.
        plan.dir = std::fs::canonicalize(&plan.dir)
            .map_err(|e| format!("--out {}: {e}", plan.dir.display()))?;
    }
    let plan = plan;
    check_outputs(&plan.dir, !args.plan)?;
    let writer = Writer {
        plan: &plan,
        started_at: crate::env::now_rfc3339(),
        env: crate::env::env(),
        command: std::env::args().collect(),
    };

    let mut records: Vec<CellRecord> = plan.cells.iter().map(|c| plan.record(c)).collect();
    let mut todo = Vec::new();
    let mut resumed = 0;
    for (i, cell) in plan.cells.iter().enumerate() {
        let rec = &mut records[i];
        if let Some(reason) = &cell.refused {
            rec.status = CellStatus::Skipped;
            rec.reason = Some(reason.clone());
        } else if let Some(r) = resume::finished(&plan, cell) {
            rec.status = CellStatus::Resumed;
            rec.figures = Some(CellFigures::of(&r));
            resumed += 1;
        } else {
            todo.push(i);
        }
    }
    let skipped = records
        .iter()
        .filter(|r| r.status == CellStatus::Skipped)
        .count();
    crate::note!(
        "compare: {} cells ({} workloads, {} allocators, layouts {}, targets {}, {} memory \
         limit{}, {} repeat{}) in {}, {} job{}",
        plan.cells.len(),
        plan.settings.workloads.len(),
        plan.settings.allocs.len(),
        plan.settings.layouts.join(","),
        plan.settings.targets.join(","),
        plan.settings.memory_limits.len(),
        if plan.settings.memory_limits.len() == 1 {
            ""
        } else {
            "s"
        },
        plan.settings.repeat,
        if plan.settings.repeat == 1 { "" } else { "s" },
        plan.dir.display(),
        plan.settings.jobs,
        if plan.settings.jobs == 1 { "" } else { "s" }
    );
    if resumed > 0 {
        crate::note!("skipped {resumed} finished cells");
    }
    if skipped > 0 {
        crate::note!("skipped {skipped} refused combinations (see the summary)");
    }
    if args.plan {
        writer.write(&records, CompareState::Planned)?;
        crate::note!(
            "planned {} cells to run; then rerun this compare without --plan to collect them",
            todo.len()
        );
        return Ok((print_plan(&plan, &todo, args.plan_program.as_deref())?, 0));
    }
    writer.write(&records, CompareState::Running)?;

    let mut records = execute::run_cells(&plan, &todo, records, &writer)?;
    let stopped = STOP.load(Ordering::SeqCst);
    for r in records
        .iter_mut()
        .filter(|r| r.status == CellStatus::Pending)
    {
        r.status = CellStatus::NotRun;
    }
    writer.write(
        &records,
        if stopped {
            CompareState::Interrupted
        } else {
            CompareState::Finished
        },
    )?;

    let groups = groups(&plan, &records);
    let failed: Vec<&CellRecord> = records
        .iter()
        .filter(|r| r.status == CellStatus::Failed)
        .collect();
    for r in &failed {
        crate::note!(
            "failed: {} ({} on {}):\n  {}",
            r.id,
            r.workload,
            r.alloc,
            r.reason.as_deref().unwrap_or("?").replace('\n', "\n  ")
        );
    }
    let unfinished = records
        .iter()
        .filter(|r| matches!(r.status, CellStatus::Interrupted | CellStatus::NotRun))
        .count();
    if stopped {
        crate::note!(
            "interrupted: {unfinished} cells not finished; rerun with --out {} to resume",
            plan.dir.display()
        );
    }
    crate::note!("wrote {}", plan.dir.join("compare.json").display());
    let mut code = if stopped {
        INTERRUPTED
    } else if !failed.is_empty() || unfinished > 0 {
        1
    } else {
        0
    };
    if !stopped {
        if let Err(e) = render_report(&plan.dir) {
            // The cells and compare.json stay; the report can be rendered again with
            // `fraglab report DIR`.
            crate::note!("error: report not rendered: {e}");
            code = code.max(1);
        }
    }
    match crate::stdout::print(&table(&groups)) {
        Ok(()) => Ok((String::new(), code)),
        Err(StdoutError::Closed) => {
            // Nobody reads the table: the run is over, but it ends as interrupted.
            writer.write(&records, CompareState::Interrupted)?;
            Ok((String::new(), CLOSED_STDOUT))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The report options compare renders with.
const REPORT: RenderOptions = RenderOptions {
    markdown: true,
    html: true,
    png: false,
};

/// Checks, before any cell runs, that compare can write what it writes: `compare.json`, the
/// cell files in `cells/`, and (unless `--plan`) the report.
fn check_outputs(dir: &Path, report: bool) -> Result<(), String> {
    let out = |e: fraglab_reports::ResultError| format!("--out {e}");
    fraglab_reports::output::check_output(&dir.join("compare.json")).map_err(out)?;
    fraglab_reports::output::check_writable(&dir.join("cells").join("cell.json")).map_err(out)?;
    if report {
        fraglab_reports::render::check_render(REPORT, dir).map_err(out)?;
    }
    Ok(())
}

/// Renders the report from the saved cells, like `fraglab report DIR`.
fn render_report(dir: &Path) -> Result<(), String> {
    let r = crate::report_cmd::report(dir, None, REPORT)?;
    crate::stdout::note(&crate::report_cmd::describe(&r));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_gives_the_default_scale() {
        let cmd = <CompareArgs as clap::Args>::augment_args(clap::Command::new("compare"));
        let scale = cmd.get_arguments().find(|a| a.get_id() == "scale").unwrap();
        let help = scale.get_help().unwrap().to_string();
        assert!(
            help.contains(&format!("default: {DEFAULT_SCALE} for")),
            "{help}"
        );
    }
}
