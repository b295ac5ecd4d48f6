//! The library behind the `fraglab` binary: the runner and the commands, so benchmarks and
//! tests can call them without a process in between.

pub mod compare;
pub mod detail;
pub mod driver;
pub mod engine_target;
pub mod env;
pub mod peer;
pub mod report_cmd;
pub mod run;
pub mod run_cmd;
pub mod validate;
pub mod values;
pub mod workload_cmd;

/// Output format of commands that print results.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable text.
    Text,
    /// JSON.
    Json,
}
