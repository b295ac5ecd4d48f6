//! `fraglab`: the lab's command line.
//!
//! The binary stays thin: it parses arguments and calls the library (`fraglab_harness`). Its
//! global allocator is mimalloc's default heap, never glibc, so that glibc's process-wide
//! figures (`mallinfo2`) count only the blocks of a glibc allocator under test; the mimalloc
//! allocator under test uses a heap of its own and jemalloc a dedicated arena, so neither sees
//! the binary's own allocations either.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::{Parser, Subcommand};
use fraglab_allocators::slab::SlabConfig;
use fraglab_harness::compare::{self, CompareArgs};
use fraglab_harness::run_cmd::{self, ListWhat, RunArgs};
use fraglab_harness::stdout::{StdoutError, CLOSED_STDOUT};
use fraglab_harness::workload_cmd;
use fraglab_harness::Format;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "fraglab",
    version,
    about = "A lab for memory-allocator and storage-engine research"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay a workload into the engine over one allocator and measure where the bytes go.
    Run(Box<RunArgs>),
    /// Run a matrix of workloads x allocators x layouts, each cell a `fraglab run` of its own.
    ///
    /// Cells run as child processes, `--jobs` at once, `--repeat` times each; a rerun with the
    /// same `--out` resumes. `--allocs` separates specs with commas like every list flag; a
    /// comma that starts a spec's next option stays with it (`--allocs
    /// jemalloc,slab:factor=1.08,min=48`), and `;`, spaces or a repeated flag also work.
    Compare(Box<CompareArgs>),
    /// Render saved results as a Markdown report and a self-contained HTML page, with charts.
    Report(fraglab_harness::report_cmd::ReportArgs),
    /// Run the model-against-real cases (memcached, Redis) and print a table; exit 1 if any
    /// case is beyond its tolerance.
    Validate {
        /// Output format: a table, or `{"cases": [...]}`.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Run only the cases whose name contains this text (e.g. `hash`, `memcached:`).
        #[arg(long)]
        case: Option<String>,
    },
    /// Serve one engine instance over memcached's text protocol or RESP, so real clients
    /// (memccapable, memcslap, redis-benchmark, redis-cli) drive the model.
    Serve(fraglab_harness::serve::ServeArgs),
    /// List workloads, allocators, layouts or eviction policies.
    List {
        /// What to list.
        #[arg(value_enum)]
        what: ListWhat,
    },
    /// Summarize a workload by streaming it once: requests, distinct keys, op mix, key and
    /// value sizes, working set, TTLs and phases.
    Describe {
        #[command(flatten)]
        workload: workload_cmd::WorkloadArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write a workload as a trace file: `*.csv` is fraglab's CSV, `*.oracleGeneral[.bin]` is
    /// libCacheSim's format, `*.resp` is the Redis commands the redis target sends (pipe it
    /// into `redis-cli --pipe`); add `.zst` to compress. The file appears only when complete.
    Save {
        #[command(flatten)]
        workload: workload_cmd::WorkloadArgs,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Value bytes of a `*.resp` file, as `run --values`: letters (never integers) or
        /// digits (integers up to 19 bytes).
        #[arg(long, value_enum, default_value_t = fraglab_harness::values::ValueBytes::Letters)]
        values: fraglab_harness::values::ValueBytes,
    },
    /// Print the slab class table memcached 1.6.18 builds for these settings.
    SlabClasses {
        /// Growth factor between classes (memcached's -f).
        #[arg(long, default_value_t = 1.25)]
        factor: f64,
        /// Minimum space for key, value and flags (memcached's -n).
        #[arg(long, default_value = "48")]
        min_size: String,
        /// Largest chunk in bytes (memcached's -o slab_chunk_max); accepts 512k etc.
        #[arg(long, default_value = "524288")]
        chunk_max: String,
        /// Largest item in bytes (memcached's -I); accepts 1m etc.
        #[arg(long, default_value = "1m")]
        item_max: String,
        /// Explicit chunk sizes, comma-separated (memcached's -o slab_sizes).
        #[arg(long, value_delimiter = ',')]
        slab_sizes: Option<Vec<String>>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn size_arg(flag: &str, value: &str) -> Result<usize, String> {
    fraglab_harness::size_arg(flag, value)
        .and_then(|v| usize::try_from(v).map_err(|_| format!("--{flag} {value}: out of range")))
}

fn slab_classes(
    factor: f64,
    min_size: &str,
    chunk_max: &str,
    item_max: &str,
    slab_sizes: Option<&[String]>,
    format: Format,
) -> Result<String, String> {
    let config = SlabConfig {
        factor,
        min: size_arg("min-size", min_size)?,
        chunk_max: size_arg("chunk-max", chunk_max)?,
        item_max: size_arg("item-max", item_max)?,
        sizes: slab_sizes
            .map(|s| s.iter().map(|v| size_arg("slab-sizes", v)).collect())
            .transpose()?,
        ..SlabConfig::default()
    };
    let classes = config.classes().map_err(|e| e.to_string())?;
    Ok(match format {
        Format::Text => classes.iter().map(|c| format!("{c}\n")).collect(),
        Format::Json => serde_json::to_string(&classes).map_err(|e| e.to_string())? + "\n",
    })
}

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT), after saving what it measured.
const INTERRUPTED: u8 = 130;

/// Sets [`fraglab_harness::STOP`] on SIGINT; on a second SIGINT, kills the real servers'
/// process groups and exits with [`INTERRUPTED`].
fn install_interrupt_handler() -> std::io::Result<()> {
    let action = || {
        if fraglab_harness::STOP.swap(true, Ordering::SeqCst) {
            fraglab_harness::peer::kill_server_groups();
            // SAFETY: `_exit` is async-signal-safe and takes any status.
            unsafe { libc::_exit(i32::from(INTERRUPTED)) };
        }
    };
    // SAFETY: the action is async-signal-safe: an atomic swap, kill(2) over a static table of
    // atomics and `_exit`; it allocates nothing, takes no lock and touches nothing but
    // statics.
    unsafe { signal_hook::low_level::register(signal_hook::consts::SIGINT, action) }.map(drop)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Ctrl-C ends a run at its next sample; the partial result is saved, marked incomplete.
    // A second Ctrl-C ends the process at once. The handler runs in the signal itself, not on
    // a thread of its own: a thread's start allocates from glibc (its attributes, its
    // thread-local destructor list), and did so while a glibc allocator under test was being
    // measured, moving its footprint by 132 KiB in half the runs.
    if let Err(e) = install_interrupt_handler() {
        fraglab_harness::note!("warning: Ctrl-C will not save partial results: {e}");
    }
    let mut status = ExitCode::SUCCESS;
    let result = match &cli.command {
        Command::Run(args) => run_cmd::run_cmd(args).map(|(text, complete)| {
            if !complete {
                status = ExitCode::from(if fraglab_harness::STOP.load(Ordering::SeqCst) {
                    INTERRUPTED
                } else {
                    1
                });
            }
            text
        }),
        Command::Compare(args) => compare::compare_cmd(args).map(|(text, code)| {
            status = ExitCode::from(code);
            text
        }),
        Command::List { what } => Ok(run_cmd::list(*what)),
        Command::Validate { format, case } => {
            fraglab_harness::validate::validate(*format, case.as_deref(), &fraglab_harness::STOP)
                .map(|(text, all)| {
                    if !all {
                        status = ExitCode::FAILURE;
                    }
                    text
                })
        }
        Command::Serve(args) => fraglab_harness::serve::serve_cmd(args).map(|()| String::new()),
        Command::Report(args) => fraglab_harness::report_cmd::report_cmd(args),
        Command::Describe { workload, format } => workload_cmd::describe_cmd(workload, *format),
        Command::Save {
            workload,
            out,
            values,
        } => workload_cmd::save_cmd(workload, out, *values),
        Command::SlabClasses {
            factor,
            min_size,
            chunk_max,
            item_max,
            slab_sizes,
            format,
        } => slab_classes(
            *factor,
            min_size,
            chunk_max,
            item_max,
            slab_sizes.as_deref(),
            *format,
        ),
    };
    match result {
        Ok(out) => match fraglab_harness::stdout::print(&out) {
            Ok(()) => status,
            // The reader went away: end quietly, as a process killed by SIGPIPE would.
            Err(StdoutError::Closed) => ExitCode::from(CLOSED_STDOUT),
            Err(e) => {
                fraglab_harness::note!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            fraglab_harness::note!("error: {e}");
            if fraglab_harness::STOP.load(Ordering::SeqCst) {
                ExitCode::from(INTERRUPTED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
