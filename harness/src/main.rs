//! `fraglab`: the lab's command line.
//!
//! The binary stays thin: it parses arguments and calls the libraries. Its global allocator is
//! mimalloc's default heap, never glibc, so that glibc's process-wide figures (`mallinfo2`)
//! count only the blocks of a glibc allocator under test; the mimalloc allocator under test
//! uses a heap of its own and jemalloc a dedicated arena, so neither sees the binary's own
//! allocations either.

use std::path::PathBuf;
use std::process::ExitCode;

mod workload_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use fraglab_allocators::slab::SlabConfig;
use fraglab_allocators::spec::parse_size;

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

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    /// libCacheSim's format; add `.zst` to compress. The file appears only when complete.
    Save {
        #[command(flatten)]
        workload: workload_cmd::WorkloadArgs,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
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
    parse_size(value)
        .and_then(|v| usize::try_from(v).map_err(|_| "out of range".into()))
        .map_err(|e| format!("--{flag} {value}: {e}"))
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
    };
    let classes = config.classes().map_err(|e| e.to_string())?;
    Ok(match format {
        Format::Text => classes.iter().map(|c| format!("{c}\n")).collect(),
        Format::Json => serde_json::to_string(&classes).map_err(|e| e.to_string())? + "\n",
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Describe { workload, format } => workload_cmd::describe_cmd(workload, *format),
        Command::Save { workload, out } => workload_cmd::save_cmd(workload, out),
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
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
