//! `fraglab compare`: a matrix of runs, each in its own child process.
//!
//! ```text
//! fraglab compare [--workloads W1,W2,...] [--allocs 'SPEC;SPEC ...'|all]...
//!                 [--layouts L1,L2,...] [--repeat N] [--jobs N] [--out DIR] [--scale X]
//!                 [--seed S] [--memory SIZE] [--targets engine,memcached,redis]
//! ```
//!
//! The matrix is workloads x allocators x layouts x targets x repeats. Every cell is one
//! `fraglab run` started as a child process (`current_exe() run --workload W --alloc A
//! [--layout L] [--target T] [--scale X] --seed S [--memory M] --out DIR/cells/ID.json --quiet
//! --format json`), so RSS and allocator state never leak from one cell into the next.
//! `--jobs` children run at once (default: the cores available).
//!
//! # Arguments
//!
//! - `--workloads` is comma-separated: presets (`fraglab list workloads`), `file:PATH` or
//!   `trace:PATH` (a path with a comma cannot be given).
//! - `--allocs` takes allocator specs separated by `;` or white space, and may be repeated:
//!   `--allocs 'jemalloc;slab:factor=1.08'`, `--allocs "jemalloc mimalloc"`, or
//!   `--allocs jemalloc --allocs slab:factor=1.08`. Commas cannot separate specs because
//!   specs contain them (`slab:factor=1.25,min=48`). `all` stands for every allocator of
//!   `fraglab list allocators` (`AllocSpec::all()`, 11 specs). Default: `all`. Specs are
//!   compared and printed in their canonical form, so `slab` and `slab:factor=1.25` are one.
//! - `--layouts` is comma-separated: `compact`, `memcached`, `redis`, or `default` (the
//!   allocator's own: memcached for slab, redis for zmalloc, compact for the others; its
//!   cells run without `--layout`). Without `--layouts` every allocator runs on its default
//!   layout only. A combination `fraglab run` refuses (the redis layout keeps no list links,
//!   so it refuses slab's `slab-lru`) is not run and is reported as skipped, with the reason.
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
//! - `--out DIR` defaults to `results/compare-<UTC time>`; `--seed` to 1; `--memory` to none.
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
//! # Resuming and interrupting
//!
//! Rerunning with the same `--out DIR` and settings skips every cell whose JSON loads with
//! `complete: true` (and names the same workload, allocator, layout, seed and memory limit) and
//! says how many it skipped; missing, unreadable and incomplete files are run again. Ctrl-C
//! reaches the children too (one process group): each saves what it measured, marked
//! incomplete, and exits 130; compare launches nothing more, writes `compare.json`, prints the
//! summary of what it has and exits 130. A SIGINT sent to compare alone lets the running cells
//! finish. Exit status: 0 when every cell is ok, resumed or skipped; 1 when one failed or is
//! incomplete; 130 when Ctrl-C stopped compare.
//!
//! # Output
//!
//! One progress line per finished cell on stderr (`[k/n] cell: ok 1.23 s`; with a progress
//! bar when stderr is a terminal), and on stdout a table with one row per workload x alloc x
//! layout x target: M ops/s median [min-max], footprint and payload MiB, efficiency,
//! evictions, status. A real server's M ops/s is its pipelined throughput over loopback, not
//! comparable with the engine's.
//!
//! # The default suite
//!
//! `fraglab compare` with no arguments runs `ramcloud-w1` ... `ramcloud-w8`, `etc` (at
//! [`DEFAULT_SCALE`]) and `memefficiency-32`, `-64`, `-128`, `-1024`, `-16384` (at 1) over all
//! 11 allocators on their default layouts: 154 cells. On the 2-core development machine with
//! 2 jobs (release build) it took 29.3 s and 29.5 s of wall time when the machine was
//! otherwise idle, and 67.6 s while another process kept one core busy. Time grows faster than
//! the scale (more ops and a larger live set, so more cache misses): a ramcloud-w4 cell takes
//! 2.2x (jemalloc) to 2.6x (zmalloc over glibc) as long at 0.5 as at 0.3, and the nine larger
//! workloads alone took 128 s at 0.5 on the busy machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::Args;
use fraglab_allocators::AllocSpec;
use fraglab_engine::{LayoutKind, Unsupported};
use fraglab_reports::{write_atomic, RunResult, Spread};
use fraglab_workloads::rng::fnv1a64_bytes;
use serde::Serialize;

use crate::peer::TargetKind;
use crate::run::defaults_for;
use crate::run_cmd::{size_arg, STOP};

/// The scale of every preset but memefficiency-* when `--scale` is not given: the default
/// suite then takes about 30 s on the idle 2-core machine (see the module docs).
pub const DEFAULT_SCALE: f64 = 0.3;

/// The default suite's workloads.
pub const DEFAULT_WORKLOADS: &[&str] = &[
    "ramcloud-w1",
    "ramcloud-w2",
    "ramcloud-w3",
    "ramcloud-w4",
    "ramcloud-w5",
    "ramcloud-w6",
    "ramcloud-w7",
    "ramcloud-w8",
    "etc",
    "memefficiency-32",
    "memefficiency-64",
    "memefficiency-128",
    "memefficiency-1024",
    "memefficiency-16384",
];

/// Exit status when Ctrl-C stopped compare (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// Lines of a failed child's stderr kept.
const STDERR_TAIL_LINES: usize = 5;

/// `fraglab compare`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Workloads, comma-separated: presets, file:PATH, trace:PATH (default: ramcloud-w1..w8,
    /// etc, memefficiency-32,-64,-128,-1024,-16384).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// Allocator specs separated by `;` or spaces (specs contain commas), or `all`; the flag
    /// may be repeated. Default: all.
    #[arg(long)]
    pub allocs: Vec<String>,
    /// Layouts, comma-separated: compact, memcached, redis, default (default: each
    /// allocator's own).
    #[arg(long, value_delimiter = ',')]
    pub layouts: Vec<String>,
    /// Runs of each cell.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Cells run at once (default: the cores available).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Directory for the cell results and compare.json (default:
    /// results/compare-YYYY-MM-DDTHH-MM-SSZ, UTC); rerun with the same directory to resume.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Scale of every workload but traces (default: 0.3 for ramcloud-*, etc and other
    /// presets, 1 for memefficiency-* and file: specs).
    #[arg(long)]
    pub scale: Option<f64>,
    /// Seed of every cell.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Memory limit of every cell (512, 64k, 64m, 1g); default none.
    #[arg(long)]
    pub memory: Option<String>,
    /// Targets, comma-separated: engine (in process), memcached, redis (a real server per
    /// cell; memcached runs the slab specs, redis the zmalloc specs). Default: engine.
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
}

/// One run of the matrix.
#[derive(Debug, Clone)]
struct Cell {
    id: String,
    group: usize,
    workload: String,
    scale: Option<f64>,
    /// The canonical spec.
    alloc: String,
    layout: LayoutKind,
    /// Whether `--layout` is passed (false: the allocator's default).
    layout_given: bool,
    target: TargetKind,
    repeat: u32,
    /// Relative to the output directory.
    file: String,
    refused: Option<String>,
}

/// The matrix, resolved and checked.
#[derive(Debug)]
struct Plan {
    dir: PathBuf,
    cells: Vec<Cell>,
    workloads: Vec<String>,
    allocs: Vec<String>,
    layouts: Vec<String>,
    targets: Vec<String>,
    repeat: u32,
    jobs: usize,
    seed: u64,
    memory: Option<u64>,
    scale: Option<f64>,
}

/// What one cell measured (from its result file).
#[derive(Debug, Clone, Serialize)]
struct Figures {
    complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete_reason: Option<String>,
    ops: u64,
    elapsed_s: f64,
    ops_per_sec: f64,
    footprint_bytes: u64,
    peak_footprint_bytes: u64,
    payload_bytes: u64,
    index_bytes: u64,
    efficiency: f64,
    evictions: u64,
    eviction: String,
}

impl Figures {
    fn of(r: &RunResult) -> Figures {
        let s = &r.summary;
        Figures {
            complete: r.complete,
            incomplete_reason: r.incomplete_reason.clone(),
            ops: s.ops,
            elapsed_s: s.elapsed_s,
            ops_per_sec: s.ops_per_sec,
            footprint_bytes: s.footprint_bytes,
            peak_footprint_bytes: s.peak.footprint_bytes,
            payload_bytes: s.payload_bytes,
            index_bytes: s.index_bytes,
            efficiency: s.efficiency,
            evictions: s.evictions,
            eviction: r.run.eviction.clone(),
        }
    }
}

/// A cell's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Status {
    Pending,
    Ok,
    Resumed,
    Skipped,
    Failed,
    Interrupted,
    NotRun,
}

/// One cell in compare.json.
#[derive(Debug, Clone, Serialize)]
struct CellRecord {
    id: String,
    workload: String,
    scale: Option<f64>,
    alloc: String,
    layout: String,
    default_layout: bool,
    target: String,
    repeat: u32,
    file: String,
    status: Status,
    /// Why skipped, the tail of a failed child's stderr, or why it is incomplete.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    /// The child's wall time.
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    figures: Option<Figures>,
}

/// Median, min and max over a group's runs; none without runs.
fn spread_of(v: Vec<f64>) -> Option<Spread> {
    (!v.is_empty()).then(|| Spread::of(v))
}

/// One workload x alloc x layout x target in compare.json: the figures over its repeats.
#[derive(Debug, Clone, Serialize)]
struct GroupRecord {
    workload: String,
    scale: Option<f64>,
    alloc: String,
    layout: String,
    target: String,
    /// `ok`, `incomplete`, `failed`, `skipped` or `not-run`.
    status: &'static str,
    /// Runs the figures are taken from: the complete ones, or the partial ones when none
    /// completed.
    runs: usize,
    complete_runs: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ops_per_sec: Option<Spread>,
    #[serde(skip_serializing_if = "Option::is_none")]
    footprint_bytes: Option<Spread>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_bytes: Option<Spread>,
    #[serde(skip_serializing_if = "Option::is_none")]
    efficiency: Option<Spread>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evictions: Option<Spread>,
    cells: Vec<String>,
}

/// The settings in compare.json.
#[derive(Debug, Serialize)]
struct Settings<'a> {
    workloads: &'a [String],
    allocs: &'a [String],
    layouts: &'a [String],
    targets: &'a [String],
    repeat: u32,
    jobs: usize,
    seed: u64,
    memory: Option<u64>,
    scale: Option<f64>,
    default_scale: f64,
}

/// compare.json.
#[derive(Debug, Serialize)]
struct CompareFile<'a> {
    kind: &'static str,
    schema: u32,
    /// `running`, `finished` or `interrupted`.
    state: &'static str,
    started_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    command: Vec<String>,
    settings: Settings<'a>,
    env: fraglab_reports::Env,
    cells: &'a [CellRecord],
    groups: Vec<GroupRecord>,
}

/// The compare.json schema version.
const COMPARE_SCHEMA: u32 = 1;

/// Letters, digits and `-` kept, everything else `_`, at most `max` characters.
fn slug(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// The compare scale of a workload when `--scale` is not given.
fn default_scale(workload: &str) -> Option<f64> {
    if workload.starts_with("trace:") {
        None
    } else if workload.starts_with("memefficiency-") || workload.starts_with("file:") {
        Some(1.0)
    } else {
        Some(DEFAULT_SCALE)
    }
}

/// Why `fraglab run` would refuse this allocator on this layout with its default policy, if it
/// would (the engine's rule in `Store::new`: the redis layout keeps no list links).
fn refusal(alloc: &AllocSpec, layout: LayoutKind) -> Option<String> {
    let (_, policy) = defaults_for(alloc);
    (policy.needs_links() && layout == LayoutKind::Redis)
        .then(|| Unsupported { policy, layout }.to_string())
}

/// Why a cell of `target` is not run for this allocator and layout, if it is not: the engine's
/// rule above; a real server's refusal ([`crate::peer::refusal`]); and Redis runs only the
/// zmalloc specs (the real server is the same whatever the spec).
fn target_refusal(target: TargetKind, alloc: &AllocSpec, layout: LayoutKind) -> Option<String> {
    let (_, policy) = defaults_for(alloc);
    match target {
        TargetKind::Engine => refusal(alloc, layout),
        TargetKind::Redis if !matches!(alloc, AllocSpec::Zmalloc(_)) => Some(
            "the redis target runs with the zmalloc specs only (the real Redis does not depend \
             on --alloc)"
                .into(),
        ),
        _ => crate::peer::refusal(target, alloc, policy),
    }
}

fn target_list(values: &[String]) -> Result<Vec<TargetKind>, String> {
    let mut out = Vec::new();
    for v in values {
        let t = v
            .trim()
            .parse::<TargetKind>()
            .map_err(|e| format!("--targets: {e}"))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        out.push(TargetKind::Engine);
    }
    Ok(out)
}

fn check_workload(w: &str) -> Result<(), String> {
    let path = w.strip_prefix("file:").or_else(|| w.strip_prefix("trace:"));
    match path {
        Some(p) if Path::new(p).is_file() => Ok(()),
        Some(p) => Err(format!("--workloads {w}: no such file `{p}`")),
        None if fraglab_workloads::presets::NAMES.contains(&w) => Ok(()),
        None => Err(format!(
            "--workloads: unknown workload `{w}`; valid: {}, file:PATH (a TOML spec) or \
             trace:PATH",
            fraglab_workloads::presets::NAMES.join(", ")
        )),
    }
}

fn alloc_list(values: &[String]) -> Result<Vec<AllocSpec>, String> {
    let mut out: Vec<AllocSpec> = Vec::new();
    let mut push = |spec: AllocSpec| {
        if !out.iter().any(|s| s.to_string() == spec.to_string()) {
            out.push(spec);
        }
    };
    let words: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(|c: char| c == ';' || c.is_whitespace()))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        AllocSpec::all().into_iter().for_each(&mut push);
    }
    for word in words {
        if word == "all" {
            AllocSpec::all().into_iter().for_each(&mut push);
            continue;
        }
        let spec = word.parse::<AllocSpec>().map_err(|e| {
            let hint = if word.contains(',') && !word.contains(':') {
                "\nseparate allocator specs with `;` or spaces (specs contain commas), or \
                 repeat --allocs"
            } else {
                ""
            };
            let valid: String = AllocSpec::all()
                .iter()
                .map(|s| format!("\n  {s}"))
                .collect();
            format!(
                "--allocs `{word}`: {e}{hint}\nvalid allocators (`all` runs every one; \
                 NAME[:key=value,...] sets keys):{valid}"
            )
        })?;
        push(spec);
    }
    Ok(out)
}

impl Plan {
    fn new(args: &CompareArgs) -> Result<Plan, String> {
        let mut workloads: Vec<String> = Vec::new();
        let given: Vec<String> = if args.workloads.is_empty() {
            DEFAULT_WORKLOADS.iter().map(|s| s.to_string()).collect()
        } else {
            args.workloads
                .iter()
                .map(|w| w.trim().to_string())
                .collect()
        };
        for w in given {
            if w.is_empty() {
                return Err("--workloads: an empty name".into());
            }
            check_workload(&w)?;
            if !workloads.contains(&w) {
                workloads.push(w);
            }
        }
        let allocs = alloc_list(&args.allocs)?;
        let targets = target_list(&args.targets)?;
        // None: the allocator's default layout.
        let mut layouts: Vec<Option<LayoutKind>> = Vec::new();
        for l in &args.layouts {
            let l = l.trim();
            let layout =
                if l == "default" {
                    None
                } else {
                    Some(l.parse::<LayoutKind>().map_err(|e| {
                        format!("--layouts: {e} (or `default`: each allocator's own)")
                    })?)
                };
            if !layouts.contains(&layout) {
                layouts.push(layout);
            }
        }
        if layouts.is_empty() {
            layouts.push(None);
        }
        if args.repeat == 0 {
            return Err("--repeat 0: at least one run per cell".into());
        }
        let jobs = match args.jobs {
            Some(0) => return Err("--jobs 0: at least one".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if let Some(s) = args.scale {
            if !(s.is_finite() && s > 0.0) {
                return Err(format!("--scale {s}: must be a positive number"));
            }
        }
        let memory = args
            .memory
            .as_deref()
            .map(|m| size_arg("memory", m))
            .transpose()?;
        let dir = args.out.clone().unwrap_or_else(|| {
            PathBuf::from("results").join(format!(
                "compare-{}",
                crate::env::now_rfc3339().replace(':', "-")
            ))
        });

        let mut cells = Vec::new();
        let mut group = 0;
        for w in &workloads {
            let scale = if w.starts_with("trace:") {
                None
            } else {
                args.scale.or_else(|| default_scale(w))
            };
            for a in &allocs {
                let default_layout = defaults_for(a).0;
                // The layouts of this allocator, resolved and without duplicates.
                let mut mine: Vec<(LayoutKind, bool)> = Vec::new();
                for l in &layouts {
                    let resolved = l.unwrap_or(default_layout);
                    if !mine.iter().any(|(m, _)| *m == resolved) {
                        mine.push((resolved, l.is_some()));
                    }
                }
                let alloc = a.to_string();
                for (layout, layout_given) in mine {
                    for &target in &targets {
                        // Engine cells keep the key and id they had before targets existed.
                        let (tkey, tid) = match target {
                            TargetKind::Engine => (String::new(), String::new()),
                            t => (format!("\0{t}"), format!("__{t}")),
                        };
                        let key = format!(
                            "{w}\0{alloc}\0{layout}\0{scale:?}\0{}\0{memory:?}{tkey}",
                            args.seed
                        );
                        let hash = fnv1a64_bytes(key.as_bytes()) as u32;
                        let refused = target_refusal(target, a, layout);
                        for repeat in 0..args.repeat {
                            let id = format!(
                                "{}__{}__{}{tid}__{hash:08x}-r{repeat}",
                                slug(w, 48),
                                slug(&alloc, 48),
                                layout.name()
                            );
                            cells.push(Cell {
                                file: format!("cells/{id}.json"),
                                id,
                                group,
                                workload: w.clone(),
                                scale,
                                alloc: alloc.clone(),
                                layout,
                                layout_given,
                                target,
                                repeat,
                                refused: refused.clone(),
                            });
                        }
                        group += 1;
                    }
                }
            }
        }
        Ok(Plan {
            dir,
            cells,
            allocs: allocs.iter().map(|a| a.to_string()).collect(),
            workloads,
            layouts: layouts
                .iter()
                .map(|l| l.map_or("default".to_string(), |l| l.name().to_string()))
                .collect(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            repeat: args.repeat,
            jobs,
            seed: args.seed,
            memory,
            scale: args.scale,
        })
    }

    /// The child's arguments for a cell.
    fn child_args(&self, cell: &Cell) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "run".into(),
            "--workload".into(),
            cell.workload.clone(),
            "--alloc".into(),
            cell.alloc.clone(),
        ];
        if cell.layout_given {
            a.extend(["--layout".into(), cell.layout.name().into()]);
        }
        if cell.target != TargetKind::Engine {
            a.extend(["--target".into(), cell.target.to_string()]);
        }
        if let Some(s) = cell.scale {
            a.extend(["--scale".into(), s.to_string()]);
        }
        a.extend(["--seed".into(), self.seed.to_string()]);
        if let Some(m) = self.memory {
            a.extend(["--memory".into(), m.to_string()]);
        }
        a.extend([
            "--out".into(),
            self.dir.join(&cell.file).to_string_lossy().into_owned(),
            "--quiet".into(),
            "--format".into(),
            "json".into(),
        ]);
        a
    }

    fn record(&self, cell: &Cell) -> CellRecord {
        CellRecord {
            id: cell.id.clone(),
            workload: cell.workload.clone(),
            scale: cell.scale,
            alloc: cell.alloc.clone(),
            layout: cell.layout.name().to_string(),
            default_layout: !cell.layout_given,
            target: cell.target.to_string(),
            repeat: cell.repeat,
            file: cell.file.clone(),
            status: Status::Pending,
            reason: None,
            exit_code: None,
            seconds: None,
            figures: None,
        }
    }
}

/// Whether a saved result ran the workload `cell` would run now. A `file:` spec may have been
/// edited since, so its resolved parameters must match; presets and traces are named by their
/// settings (the cell's hash includes the scale), and a trace is re-read only by path.
fn same_workload(r: &RunResult, cell: &Cell) -> bool {
    let Some(path) = cell.workload.strip_prefix("file:") else {
        return true;
    };
    let Ok(spec) = fraglab_workloads::spec::WorkloadSpec::from_file(std::path::Path::new(path))
    else {
        return false;
    };
    let mut spec = spec;
    if let Some(x) = cell.scale {
        spec.scale(x);
    }
    serde_json::to_value(&spec).ok().as_ref() == Some(&r.run.workload_parameters)
}

/// A finished result for `cell` already in place: complete, and of the same run.
fn finished(plan: &Plan, cell: &Cell) -> Option<RunResult> {
    let r = RunResult::load(&plan.dir.join(&cell.file)).ok()?;
    (r.complete
        && r.run.workload == cell.workload
        && r.run.alloc == cell.alloc
        && r.run.layout == cell.layout.name()
        && r.run.target == cell.target.name()
        && r.run.seed == plan.seed
        && r.run.memory_limit == plan.memory
        && same_workload(&r, cell))
    .then_some(r)
}

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
        .args(plan.child_args(cell))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|c| c.wait_with_output());
    rec.seconds = Some(start.elapsed().as_secs_f64());
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            rec.status = Status::Failed;
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
    rec.figures = loaded.as_ref().ok().map(Figures::of);
    rec.exit_code = output.status.code();
    let signal = {
        use std::os::unix::process::ExitStatusExt as _;
        output.status.signal()
    };
    const SIGINT: i32 = 2;
    match (output.status.code(), signal) {
        (Some(0), _) => match loaded {
            Ok(r) if r.complete => rec.status = Status::Ok,
            Ok(r) => {
                rec.status = Status::Failed;
                rec.reason = r.incomplete_reason;
            }
            Err(e) => {
                rec.status = Status::Failed;
                rec.reason = Some(format!("exited 0 but its result is unreadable: {e}"));
            }
        },
        (Some(c), _) if c == i32::from(INTERRUPTED) => {
            rec.status = Status::Interrupted;
            rec.reason = loaded
                .ok()
                .and_then(|r| r.incomplete_reason)
                .or_else(|| Some("interrupted".into()));
        }
        (None, Some(SIGINT)) => {
            rec.status = Status::Interrupted;
            rec.reason = Some("killed by SIGINT before it could save".into());
        }
        (Some(c), _) => {
            rec.status = Status::Failed;
            let t = tail(&output.stderr);
            rec.reason = Some(if t.is_empty() {
                format!("exited {c}")
            } else {
                t
            });
        }
        (None, s) => {
            rec.status = Status::Failed;
            let t = tail(&output.stderr);
            rec.reason = Some(format!(
                "killed by signal {}{}{t}",
                s.unwrap_or(0),
                if t.is_empty() { "" } else { "\n" }
            ));
        }
    }
}

fn groups(plan: &Plan, records: &[CellRecord]) -> Vec<GroupRecord> {
    let mut out: Vec<GroupRecord> = Vec::new();
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, c) in plan.cells.iter().enumerate() {
        members.entry(c.group).or_default().push(i);
    }
    for idx in members.values() {
        let first = &plan.cells[idx[0]];
        let recs: Vec<&CellRecord> = idx.iter().map(|&i| &records[i]).collect();
        let complete: Vec<&Figures> = recs
            .iter()
            .filter_map(|r| r.figures.as_ref())
            .filter(|f| f.complete)
            .collect();
        let figures: Vec<&Figures> = if complete.is_empty() {
            recs.iter().filter_map(|r| r.figures.as_ref()).collect()
        } else {
            complete.clone()
        };
        let has = |s: Status| recs.iter().any(|r| r.status == s);
        let (status, reason) = if recs.iter().all(|r| r.status == Status::Skipped) {
            ("skipped", first.refused.clone())
        } else if recs
            .iter()
            .all(|r| matches!(r.status, Status::NotRun | Status::Pending | Status::Skipped))
        {
            ("not-run", None)
        } else if has(Status::Failed) {
            let why = recs
                .iter()
                .find(|r| r.status == Status::Failed)
                .and_then(|r| r.reason.clone());
            ("failed", why)
        } else if complete.len() < recs.len() {
            ("incomplete", None)
        } else {
            ("ok", None)
        };
        let spread = |f: fn(&Figures) -> f64| spread_of(figures.iter().map(|x| f(x)).collect());
        out.push(GroupRecord {
            workload: first.workload.clone(),
            scale: first.scale,
            alloc: first.alloc.clone(),
            layout: first.layout.name().to_string(),
            target: first.target.to_string(),
            status,
            runs: figures.len(),
            complete_runs: complete.len(),
            reason,
            ops_per_sec: spread(|f| f.ops_per_sec),
            footprint_bytes: spread(|f| f.footprint_bytes as f64),
            payload_bytes: spread(|f| f.payload_bytes as f64),
            efficiency: spread(|f| f.efficiency),
            evictions: spread(|f| f.evictions as f64),
            cells: recs.iter().map(|r| r.id.clone()).collect(),
        });
    }
    out
}

struct Writer<'a> {
    plan: &'a Plan,
    started_at: String,
    env: fraglab_reports::Env,
    command: Vec<String>,
}

impl Writer<'_> {
    fn write(&self, records: &[CellRecord], state: &'static str) -> Result<(), String> {
        let plan = self.plan;
        let file = CompareFile {
            kind: "fraglab-compare",
            schema: COMPARE_SCHEMA,
            state,
            started_at: &self.started_at,
            finished_at: (state != "running").then(crate::env::now_rfc3339),
            command: self.command.clone(),
            settings: Settings {
                workloads: &plan.workloads,
                allocs: &plan.allocs,
                layouts: &plan.layouts,
                targets: &plan.targets,
                repeat: plan.repeat,
                jobs: plan.jobs,
                seed: plan.seed,
                memory: plan.memory,
                scale: plan.scale,
                default_scale: DEFAULT_SCALE,
            },
            env: self.env.clone(),
            cells: records,
            groups: groups(plan, records),
        };
        let json = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())? + "\n";
        write_atomic(&plan.dir.join("compare.json"), json.as_bytes()).map_err(|e| e.to_string())
    }
}

fn mib(b: f64) -> String {
    format!("{:.2}", b / f64::from(1u32 << 20))
}

/// The summary table: one row per workload x alloc x layout x target.
fn table(groups: &[GroupRecord]) -> String {
    let header = [
        "workload",
        "scale",
        "alloc",
        "layout",
        "target",
        "M ops/s median [min-max]",
        "footprint MiB",
        "payload MiB",
        "efficiency",
        "evictions",
        "status",
    ];
    let rows: Vec<[String; 11]> = groups
        .iter()
        .map(|g| {
            let ops = g.ops_per_sec.map_or("-".into(), |s| {
                if g.runs > 1 {
                    format!(
                        "{:.2} [{:.2}-{:.2}]",
                        s.median / 1e6,
                        s.min / 1e6,
                        s.max / 1e6
                    )
                } else {
                    format!("{:.2}", s.median / 1e6)
                }
            });
            let status = match g.status {
                "ok" if g.runs > 1 => format!("ok ({} runs)", g.runs),
                "ok" => "ok".into(),
                "incomplete" => format!(
                    "INCOMPLETE ({}/{} complete)",
                    g.complete_runs,
                    g.cells.len()
                ),
                "failed" => "FAILED".into(),
                "not-run" => "not run".into(),
                _ => format!(
                    "skipped: {}",
                    g.reason
                        .as_deref()
                        .map_or("", |r| r.split(';').next().unwrap_or(r))
                ),
            };
            [
                g.workload.clone(),
                g.scale.map_or("-".into(), |s| s.to_string()),
                g.alloc.clone(),
                g.layout.clone(),
                g.target.clone(),
                ops,
                g.footprint_bytes.map_or("-".into(), |s| mib(s.median)),
                g.payload_bytes.map_or("-".into(), |s| mib(s.median)),
                g.efficiency
                    .map_or("-".into(), |s| format!("{:.3}", s.median)),
                g.evictions.map_or("-".into(), |s| format!("{}", s.median)),
                status,
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    // Text columns left-aligned, numbers right-aligned; the last column unpadded.
    let left = [
        true, false, true, true, true, false, false, false, false, false, true,
    ];
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i == cells.len() - 1 {
                s.push_str(c);
            } else if left[i] {
                let _ = write!(s, "{c:<w$}", w = width[i]);
            } else {
                let _ = write!(s, "{c:>w$}", w = width[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut t = line(&header.map(String::from));
    for r in &rows {
        t += &line(r);
    }
    t
}

/// Progress on stderr: a line per cell, above a bar when stderr is a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(n: usize) -> Progress {
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
        Progress { bar }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => {
                b.println(text);
                b.inc(1);
            }
            None => eprintln!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `fraglab compare`: runs the matrix; returns the summary table and the exit status (0, 1 if
/// a cell failed or is incomplete, 130 if Ctrl-C stopped it).
pub fn compare_cmd(args: &CompareArgs) -> Result<(String, u8), String> {
    let plan = Plan::new(args)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find fraglab itself: {e}"))?;
    let cells_dir = plan.dir.join("cells");
    std::fs::create_dir_all(&cells_dir)
        .map_err(|e| format!("--out {}: {e}", cells_dir.display()))?;
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
            rec.status = Status::Skipped;
            rec.reason = Some(reason.clone());
        } else if let Some(r) = finished(&plan, cell) {
            rec.status = Status::Resumed;
            rec.figures = Some(Figures::of(&r));
            resumed += 1;
        } else {
            todo.push(i);
        }
    }
    let skipped = records
        .iter()
        .filter(|r| r.status == Status::Skipped)
        .count();
    eprintln!(
        "compare: {} cells ({} workloads, {} allocators, layouts {}, targets {}, {} repeat{}) in \
         {}, {} job{}",
        plan.cells.len(),
        plan.workloads.len(),
        plan.allocs.len(),
        plan.layouts.join(","),
        plan.targets.join(","),
        plan.repeat,
        if plan.repeat == 1 { "" } else { "s" },
        plan.dir.display(),
        plan.jobs,
        if plan.jobs == 1 { "" } else { "s" }
    );
    if resumed > 0 {
        eprintln!("skipped {resumed} finished cells");
    }
    if skipped > 0 {
        eprintln!("skipped {skipped} refused combinations (see the summary)");
    }
    writer.write(&records, "running")?;

    let n = todo.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let shared = Mutex::new((records, None::<String>));
    let progress = Progress::new(n);
    std::thread::scope(|s| {
        for _ in 0..plan.jobs.min(n) {
            s.spawn(|| loop {
                if STOP.load(Ordering::SeqCst) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { break };
                let cell = &plan.cells[i];
                let mut rec = plan.record(cell);
                run_cell(&exe, &plan, cell, &mut rec);
                let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                let what = match rec.status {
                    Status::Ok => "ok".to_string(),
                    Status::Interrupted => "interrupted".to_string(),
                    _ => format!(
                        "FAILED: {}",
                        rec.reason
                            .as_deref()
                            .and_then(|r| r.lines().last())
                            .unwrap_or("?")
                    ),
                };
                progress.line(&format!(
                    "[{finished}/{n}] {}: {what} {:.2} s",
                    cell.id,
                    rec.seconds.unwrap_or(0.0)
                ));
                guard.0[i] = rec;
                if let Err(e) = writer.write(&guard.0, "running") {
                    guard.1.get_or_insert(e);
                }
            });
        }
    });
    progress.finish();
    let (mut records, write_error) = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = write_error {
        return Err(e);
    }
    let stopped = STOP.load(Ordering::SeqCst);
    for r in records.iter_mut().filter(|r| r.status == Status::Pending) {
        r.status = Status::NotRun;
    }
    writer.write(&records, if stopped { "interrupted" } else { "finished" })?;

    let groups = groups(&plan, &records);
    let failed: Vec<&CellRecord> = records
        .iter()
        .filter(|r| r.status == Status::Failed)
        .collect();
    for r in &failed {
        eprintln!(
            "failed: {} ({} on {}):\n  {}",
            r.id,
            r.workload,
            r.alloc,
            r.reason.as_deref().unwrap_or("?").replace('\n', "\n  ")
        );
    }
    let unfinished = records
        .iter()
        .filter(|r| matches!(r.status, Status::Interrupted | Status::NotRun))
        .count();
    if stopped {
        eprintln!(
            "interrupted: {unfinished} cells not finished; rerun with --out {} to resume",
            plan.dir.display()
        );
    }
    eprintln!("wrote {}", plan.dir.join("compare.json").display());
    if !stopped {
        // The report is rendered from the saved cells, like `fraglab report DIR`.
        let opts = fraglab_reports::render::RenderOptions {
            markdown: true,
            html: true,
            png: false,
        };
        match crate::report_cmd::report(&plan.dir, None, opts) {
            Ok(r) => eprint!("{}", crate::report_cmd::describe(&r)),
            Err(e) => eprintln!("report not rendered: {e}"),
        }
    }
    let code = if stopped {
        INTERRUPTED
    } else if !failed.is_empty() || unfinished > 0 {
        1
    } else {
        0
    };
    Ok((table(&groups), code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_filesystem_safe() {
        assert_eq!(
            slug("slab:factor=1.25,min=48", 64),
            "slab_factor_1_25_min_48"
        );
        assert_eq!(slug("trace:/a b/c.csv", 64), "trace__a_b_c_csv");
        assert_eq!(slug("memefficiency-128", 5), "memef");
    }

    #[test]
    fn fnv1a_is_pinned() {
        // The reference values of FNV-1a 64.
        assert_eq!(fnv1a64_bytes(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64_bytes(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn medians() {
        let s = spread_of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(spread_of(vec![4.0, 1.0]).unwrap().median, 2.5);
        assert!(spread_of(vec![]).is_none());
    }

    #[test]
    fn alloc_lists_split_on_semicolons_and_spaces() {
        let specs =
            alloc_list(&["jemalloc;slab:factor=2,min=64".into(), "mimalloc".into()]).unwrap();
        let names: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            [
                "jemalloc",
                "slab:factor=2,min=64,chunk_max=524288,item_max=1048576",
                "mimalloc"
            ]
        );
        assert_eq!(alloc_list(&["all".into()]).unwrap().len(), 11);
        assert_eq!(alloc_list(&[]).unwrap().len(), 11);
        assert_eq!(
            alloc_list(&["slab slab:factor=1.25".into()]).unwrap().len(),
            1
        );
        let e = alloc_list(&["jemalloc,slab".into()]).unwrap_err();
        assert!(e.contains("separate allocator specs with `;`"), "{e}");
    }

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

    #[test]
    fn targets_refuse_what_they_cannot_run() {
        let slab: AllocSpec = "slab".parse().unwrap();
        let zm: AllocSpec = "zmalloc:backend=jemalloc,prefix=0".parse().unwrap();
        let je: AllocSpec = "jemalloc".parse().unwrap();
        let mc = LayoutKind::Memcached;
        assert!(target_refusal(TargetKind::Memcached, &slab, mc).is_none());
        assert!(target_refusal(TargetKind::Memcached, &je, mc)
            .unwrap()
            .contains("--alloc slab"));
        assert!(target_refusal(TargetKind::Redis, &zm, LayoutKind::Redis).is_none());
        assert!(target_refusal(TargetKind::Redis, &je, LayoutKind::Compact)
            .unwrap()
            .contains("zmalloc"));
        assert!(target_refusal(TargetKind::Engine, &slab, LayoutKind::Redis)
            .unwrap()
            .contains("slab-lru"));
        assert_eq!(
            target_list(&["redis".into(), "engine".into(), "redis".into()]).unwrap(),
            [TargetKind::Redis, TargetKind::Engine]
        );
        assert_eq!(target_list(&[]).unwrap(), [TargetKind::Engine]);
        assert!(target_list(&["valkey".into()])
            .unwrap_err()
            .contains("engine, memcached, redis"));
    }

    #[test]
    fn redis_layout_refuses_slab_lru_only() {
        let slab: AllocSpec = "slab".parse().unwrap();
        let je: AllocSpec = "jemalloc".parse().unwrap();
        assert!(refusal(&slab, LayoutKind::Redis)
            .unwrap()
            .contains("slab-lru"));
        assert!(refusal(&slab, LayoutKind::Memcached).is_none());
        assert!(refusal(&je, LayoutKind::Redis).is_none());
    }
}
