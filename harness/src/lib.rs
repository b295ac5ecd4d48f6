//! The library behind the `fraglab` binary: the runner and the commands, so benchmarks and
//! tests can call them without a process in between.

pub mod agg_ops;
pub mod compare;
pub mod detail;
pub mod driver;
pub mod engine_target;
pub mod env;
pub mod peer;
pub mod persist;
pub mod report_cmd;
pub mod resp_encode;
pub mod run;
pub mod run_cmd;
pub mod serve;
pub mod shard;
pub mod spec;
pub mod stdout;
pub mod validate;
pub mod values;
pub mod workload_cmd;

/// Set by Ctrl-C: runs stop at the next sample and save what they measured; compare launches
/// no more cells.
pub static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Parses the size given to `--FLAG` (`64m`; [`fraglab_units::parse_size`]), naming the flag
/// when it is wrong.
pub fn size_arg(flag: &str, value: &str) -> Result<u64, String> {
    fraglab_units::parse_size(value).map_err(|e| format!("--{flag} {value}: {e}"))
}

/// Output format of commands that print results.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable text.
    Text,
    /// JSON.
    Json,
}
