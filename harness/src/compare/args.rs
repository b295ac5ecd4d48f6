//! What `fraglab compare` is given: its arguments and the default suite.

use std::path::PathBuf;

use clap::Args;

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

/// `fraglab compare`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Workloads, comma-separated: presets, the group `ramcloud` (ramcloud-w1..w8), file:PATH,
    /// trace:PATH (default: ramcloud-w1..w8, etc, memefficiency-32,-64,-128,-1024,-16384).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// Allocator specs separated by commas, `;` or spaces (a comma starts a new spec when an
    /// allocator's name follows it), or `all`; the flag may be repeated. Default: all.
    #[arg(long)]
    pub allocs: Vec<String>,
    /// Layouts, comma-separated: compact, memcached, redis, segcache, default (default: each
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
    /// Memory limits, comma-separated (512, 64k, 64m, 1g; `none`): every cell runs at each.
    /// Default: no limit.
    #[arg(long)]
    pub memory: Vec<String>,
    /// Targets, comma-separated: engine (in process), memcached, redis (a real server per
    /// cell; memcached runs the slab specs, redis the zmalloc specs). Default: engine.
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Active defrag settings, as `fraglab run --defrag` takes them (`on`, or
    /// `ignore-bytes=2m,threshold-lower=5,...`): every cell whose allocator and layout support
    /// it (jemalloc, zmalloc over jemalloc; the redis and compact layouts; the engine) runs
    /// twice, without and with it. Default: off.
    #[arg(long)]
    pub defrag: Option<String>,
    /// Run nothing: print one shell command per unfinished cell (for GNU parallel, a Slurm
    /// array, ...); the same compare without --plan then picks their results up.
    #[arg(long)]
    pub plan: bool,
    /// The program the --plan lines run (default: this binary's absolute path).
    #[arg(long, requires = "plan")]
    pub plan_program: Option<String>,
}
