//! `fraglab-workloads`: the streams of operations the lab replays.
//!
//! A workload is an iterator of [`Op`]s, never a list: generators draw each op when asked, and
//! trace readers decode one record at a time, so a billion-request trace replays in constant
//! memory. Three sources give the same stream type ([`Workload`]):
//!
//! - a preset by name ([`presets`]): YCSB A-F, Facebook ETC, RAMCloud W1-W8, Redis's memory
//!   efficiency test, four Twitter clusters, `calcification` and `size-sweep`;
//! - a TOML spec file ([`WorkloadSpec`]): keyspace, key sizes, popularity, value sizes, op mix,
//!   TTLs, arrivals, demand fill, preload and phases;
//! - a trace file ([`trace`]): Twitter's cache-trace CSV, libCacheSim's oracleGeneral,
//!   Segcache's 20-byte binary, fraglab's own CSV and RESP command files (`redis-cli
//!   --pipe`'s input), each optionally zstd-compressed.
//!
//! Module arrows point one way: [`error`], [`rng`] and the op types are leaves; [`dist`]
//! (distributions and their parameter types) uses only those; [`spec`] holds `dist`'s
//! parameter types; [`gen`] compiles a spec into samplers; [`source`] and [`presets`] sit on top.
//!
//! Every random choice flows from one seed through [`rng::Rng`] (xoshiro256++, seeded by
//! SplitMix64), so the same seed gives the same stream everywhere.
//!
//! ```
//! use fraglab_workloads::{OpKind, Workload, PresetParams};
//! let w = Workload::preset("ycsb-a", &PresetParams { ops: Some(1000), records: Some(100), ..Default::default() }).unwrap();
//! let mut stream = w.stream(42).unwrap();
//! let ops: Vec<_> = stream.by_ref().map(|op| op.unwrap()).collect();
//! assert_eq!(ops.len(), 100 + 1000); // the load phase, then the run
//! assert!(ops[100..].iter().all(|op| matches!(op.kind, OpKind::Get | OpKind::Set)));
//! ```

pub mod agg;
mod agg_presets;
mod agg_spec;
pub mod describe;
pub mod dist;
pub mod error;
pub mod gen;
mod live;
mod op;
pub mod presets;
pub mod rng;
pub mod source;
pub mod spec;
pub mod trace;

pub use describe::{describe, describe_until, WorkloadSummary};
pub use gen::Generator;
pub use op::{Key, Op, OpKind, UnknownOp, KEY_MAX};
pub use presets::PresetParams;
pub use source::{OpStream, Workload, WorkloadError};
pub use spec::{WorkloadSpec, WorkloadSpecError};
