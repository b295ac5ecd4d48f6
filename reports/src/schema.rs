//! Schema version 1 of a run's results. Field names are the metric names defined in
//! `docs/design.md` ("What every byte is spent on").

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod defrag;
mod detail;
mod persist;
pub use defrag::{DefragSettings, DefragStats};
pub use detail::{AllocatorDetail, LogDetail, RedisDetail, SlabClassDetail, SlabDetail, SlabMoves};
pub use persist::{AofSection, ForkSave, RestartSection, SnapshotSection};

/// The schema version this crate writes and reads.
pub const SCHEMA: u32 = 1;

/// One run: what ran, where, and what it measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Schema version ([`SCHEMA`]).
    pub schema: u32,
    /// False when the run was interrupted (Ctrl-C) or failed part way: the figures cover the
    /// ops replayed so far.
    pub complete: bool,
    /// Why the run is incomplete, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// The configuration.
    pub run: RunInfo,
    /// The machine and build.
    pub env: Env,
    /// Figures at the end of the run, and peaks.
    pub summary: Summary,
    /// Per phase: its extent, throughput, the figures at its end and its peaks.
    pub phases: Vec<PhaseResult>,
    /// Samples every `run.sample_every` ops and at each phase end.
    pub timeline: Vec<Sample>,
    /// Latency per op kind, from the ops timed (one in `run.latency_every`).
    pub latency: BTreeMap<String, Latency>,
    /// Commands refused with an error other than out-of-memory, by error.
    pub command_errors: BTreeMap<String, u64>,
    /// The allocator's own statistics at the end, tagged by allocator ([`AllocatorDetail`]);
    /// `null` (or absent) when none were recorded.
    #[serde(default)]
    pub allocator_detail: AllocatorDetail,
    /// Hashes, sets, lists and sorted sets held at the end, by type and encoding; absent
    /// when the workload ran no aggregate command.
    #[serde(default, skip_serializing_if = "crate::Aggregates::is_empty")]
    pub aggregates: crate::Aggregates,
    /// What active defrag did, when the run had `--defrag` (absent: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defrag: Option<DefragStats>,
    /// The forked snapshots, when the run had `--snapshot-at` (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotSection>,
    /// The append-only file, when the run had `--aof` (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aof: Option<AofSection>,
    /// A warm restart part way, when the run had `--restart-at` (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartSection>,
}

/// What ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The workload as given (`etc`, `file:...`, `trace:...`).
    pub workload: String,
    /// The workload's resolved parameters (its full spec, or the trace and how it was read).
    pub workload_parameters: serde_json::Value,
    /// The allocator spec with every default resolved.
    pub alloc: String,
    /// The allocator's name (`slab`, `jemalloc`, ...).
    pub alloc_name: String,
    /// Versions of the allocator libraries involved (`jemalloc`, `mimalloc`, `glibc`).
    pub library_versions: BTreeMap<String, String>,
    /// The layout (`compact`, `memcached`, `redis`).
    pub layout: String,
    /// The eviction policy.
    pub eviction: String,
    /// The memory limit in bytes, if any.
    pub memory_limit: Option<u64>,
    /// The seed.
    pub seed: u64,
    /// Ops in the workload (the replay's length if complete).
    pub ops: u64,
    /// What was measured: `engine` (in process), or a real server.
    pub target: String,
    /// Ops between timeline samples.
    pub sample_every: u64,
    /// One op in this many is timed for latency (0: none).
    pub latency_every: u64,
    /// Ops the replay read ahead of the one it applied, prefetching for the engine (1: one at
    /// a time; absent in results made before it existed). It changes the speed only.
    #[serde(default = "one")]
    pub batch: u64,
    /// Present when the engine was sharded (`fraglab run --threads N`): the keyspace split by
    /// key hash over this many engines, each with its own allocator and `memory_limit / N`.
    /// Memory figures and counters are the shards' sums; each shard evicted on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u64>,
    /// The command line that produced this result.
    pub command: Vec<String>,
    /// What value bytes looked like: `letters` or `digits`.
    #[serde(default = "letters")]
    pub values: String,
    /// The real server measured, when `target` is not `engine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerInfo>,
    /// For a trace: the bytes read from its file, pipe or stdin (compressed bytes for
    /// `.zst`), and its size when it is a regular file. The replay reads a trace once, so a
    /// complete run reads exactly its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_input: Option<TraceInput>,
    /// Records of a trace read with `--lenient` that were malformed and skipped (absent: 0).
    /// A run that skipped records stays `complete` when it read its whole input (so that
    /// `compare` does not rerun it forever), and is flagged `SKIPPED` wherever it is shown:
    /// the summary, stderr, the report's run table and the compare table.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_records: u64,
    /// Why the first few skipped records (at most 5) were bad, each naming the file and the
    /// record or line number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_reasons: Vec<String>,
    /// Active defrag's settings, when the run had `--defrag` (absent: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defrag: Option<DefragSettings>,
}

fn one() -> u64 {
    1
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The bytes a run read from its trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceInput {
    /// Bytes read.
    pub bytes_read: u64,
    /// The trace's size, when it is a regular file.
    pub size: Option<u64>,
}

fn letters() -> String {
    "letters".to_string()
}

/// A real server a run drove.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The program (`memcached`, `redis-server`).
    pub program: String,
    /// Its version, as it reports it.
    pub version: String,
    /// The full command line it was started with.
    pub args: Vec<String>,
    /// Its configuration as it reports it (memcached `stats settings`, Redis `CONFIG GET *`
    /// for the settings that matter).
    pub config: BTreeMap<String, String>,
    /// Present when the replay was paced (`fraglab run --pace`): each op was sent no earlier
    /// than its time after the first op, so the server's wall clock ran with the trace's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<Pacing>,
}

/// How a paced replay kept to the trace's time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pacing {
    /// The trace time of the last op, seconds after the first op's.
    pub trace_s: f64,
    /// Wall time from the first op sent to the last reply, seconds.
    pub wall_s: f64,
    /// The latest a batch was sent after the time of its first op, milliseconds (never early).
    pub late_max_ms: f64,
    /// How long the replay waited for a tick of the server's own clock before its first op,
    /// milliseconds (memcached, whose clock moves once a second from its start: the first
    /// op's second begins on the tick); absent when it started at once (Redis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_wait_ms: Option<f64>,
}

/// The machine and the build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Env {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// Cores available to the process.
    pub cores: u32,
    /// Kernel release.
    pub kernel: String,
    /// rustc that built fraglab.
    pub rustc: String,
    /// fraglab's version.
    pub fraglab_version: String,
    /// The git commit fraglab was built from (`unknown` outside a checkout).
    pub fraglab_commit: String,
    /// When the run started, UTC, RFC 3339.
    pub started_at: String,
}

/// The memory figures, in bytes (`docs/design.md`, "What every byte is spent on").
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Keys stored.
    pub items: u64,
    /// Key + value bytes stored.
    pub payload_bytes: u64,
    /// Bytes the engine asked the allocator for.
    pub requested_bytes: u64,
    /// Usable bytes the allocator gave.
    pub allocated_bytes: u64,
    /// Bytes the allocator holds from the OS.
    pub footprint_bytes: u64,
    /// The engine's index outside the allocator.
    pub index_bytes: u64,
    /// The process's resident set.
    pub rss_bytes: u64,
}

impl Memory {
    /// Field-wise maximum.
    pub fn max(&self, o: &Memory) -> Memory {
        Memory {
            items: self.items.max(o.items),
            payload_bytes: self.payload_bytes.max(o.payload_bytes),
            requested_bytes: self.requested_bytes.max(o.requested_bytes),
            allocated_bytes: self.allocated_bytes.max(o.allocated_bytes),
            footprint_bytes: self.footprint_bytes.max(o.footprint_bytes),
            index_bytes: self.index_bytes.max(o.index_bytes),
            rss_bytes: self.rss_bytes.max(o.rss_bytes),
        }
    }

    /// `payload / (footprint + index)`, 0 when nothing is held.
    pub fn efficiency(&self) -> f64 {
        let held = self.footprint_bytes + self.index_bytes;
        if held == 0 {
            0.0
        } else {
            self.payload_bytes as f64 / held as f64
        }
    }
}

/// The run's figures at its end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Ops replayed.
    pub ops: u64,
    /// Time spent replaying, seconds (sampling pauses excluded).
    pub elapsed_s: f64,
    /// `ops / elapsed_s`.
    pub ops_per_sec: f64,
    /// Keys stored.
    pub items: u64,
    /// Key + value bytes stored.
    pub payload_bytes: u64,
    /// Bytes asked of the allocator.
    pub requested_bytes: u64,
    /// Usable bytes given.
    pub allocated_bytes: u64,
    /// Bytes held from the OS.
    pub footprint_bytes: u64,
    /// Index outside the allocator.
    pub index_bytes: u64,
    /// Resident set at the end.
    pub rss_bytes: u64,
    /// Resident set before any data.
    pub rss_baseline_bytes: u64,
    /// `requested - payload` (headers, keys' metadata, per-key structures).
    pub metadata_bytes: i64,
    /// `allocated - requested` (size-class rounding).
    pub internal_waste_bytes: i64,
    /// `footprint - allocated` (held but not handed out).
    pub external_fragmentation_bytes: i64,
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Keys evicted to make room.
    pub evictions: u64,
    /// Keys removed because their TTL passed (lazily or by the active pass).
    pub expired: u64,
    /// Writes refused for lack of memory.
    pub oom_errors: u64,
    /// `payload / (footprint + index)`.
    pub efficiency: f64,
    /// Each memory figure at its maximum over the samples.
    pub peak: Memory,
}

/// `ops / secs`, 0 when no time passed.
pub fn per_sec(ops: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        ops as f64 / secs
    } else {
        0.0
    }
}

impl Summary {
    /// The summary of a replay: its last sample's figures, the derived ones, and the peaks
    /// over every sample. Both runners (in process and against a real server) end this way.
    pub fn from_timeline(
        timeline: &[Sample],
        ops: u64,
        elapsed_s: f64,
        rss_baseline_bytes: u64,
    ) -> Summary {
        let last = timeline
            .last()
            .cloned()
            .unwrap_or_else(|| Sample::empty(rss_baseline_bytes));
        let mem = last.memory;
        Summary {
            ops,
            elapsed_s,
            ops_per_sec: per_sec(ops, elapsed_s),
            items: mem.items,
            payload_bytes: mem.payload_bytes,
            requested_bytes: mem.requested_bytes,
            allocated_bytes: mem.allocated_bytes,
            footprint_bytes: mem.footprint_bytes,
            index_bytes: mem.index_bytes,
            rss_bytes: mem.rss_bytes,
            rss_baseline_bytes,
            metadata_bytes: mem.requested_bytes as i64 - mem.payload_bytes as i64,
            internal_waste_bytes: mem.allocated_bytes as i64 - mem.requested_bytes as i64,
            external_fragmentation_bytes: mem.footprint_bytes as i64 - mem.allocated_bytes as i64,
            hits: last.hits,
            misses: last.misses,
            evictions: last.evictions,
            expired: last.expired,
            oom_errors: last.oom_errors,
            efficiency: mem.efficiency(),
            peak: timeline
                .iter()
                .fold(Memory::default(), |p, s| p.max(&s.memory)),
        }
    }
}

impl Sample {
    /// A sample before any op: everything zero but the resident set.
    pub fn empty(rss_bytes: u64) -> Sample {
        Sample {
            op: 0,
            phase: 0,
            time_s: 0.0,
            elapsed_s: 0.0,
            memory: Memory {
                rss_bytes,
                ..Memory::default()
            },
            hits: 0,
            misses: 0,
            sets: 0,
            deletes: 0,
            evictions: 0,
            expired: 0,
            oom_errors: 0,
            class_pages: None,
        }
    }
}

/// One phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseResult {
    /// The phase's name.
    pub name: String,
    /// Ops replayed in it.
    pub ops: u64,
    /// Time replaying it, seconds.
    pub elapsed_s: f64,
    /// `ops / elapsed_s`.
    pub ops_per_sec: f64,
    /// The sample at its end.
    pub end: Sample,
    /// Each memory figure at its maximum during the phase.
    pub peak: Memory,
}

/// One timeline sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Ops replayed so far.
    pub op: u64,
    /// The phase the last op belonged to.
    pub phase: u16,
    /// The workload's logical time, seconds.
    pub time_s: f64,
    /// Replay time so far, seconds (sampling excluded).
    pub elapsed_s: f64,
    /// Memory figures.
    #[serde(flatten)]
    pub memory: Memory,
    /// Reads that hit so far.
    pub hits: u64,
    /// Reads that missed so far.
    pub misses: u64,
    /// Successful writes so far.
    pub sets: u64,
    /// Keys deleted so far.
    pub deletes: u64,
    /// Evictions so far.
    pub evictions: u64,
    /// Expired keys removed so far.
    pub expired: u64,
    /// Writes refused for memory so far.
    pub oom_errors: u64,
    /// Pages per slab class at this point, `[class, pages]` for every class holding pages, with
    /// class 0 for the global page pool: written when the slab automover is on (the pages move
    /// while the workload runs). Not in the CSV timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_pages: Option<Vec<[u64; 2]>>,
}

/// The CSV timeline's columns, in order.
pub const TIMELINE_COLUMNS: &[&str] = &[
    "op",
    "phase",
    "time_s",
    "elapsed_s",
    "items",
    "payload_bytes",
    "requested_bytes",
    "allocated_bytes",
    "footprint_bytes",
    "index_bytes",
    "rss_bytes",
    "hits",
    "misses",
    "sets",
    "deletes",
    "evictions",
    "expired",
    "oom_errors",
];

/// Latency of one op kind, nanoseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Ops of this kind replayed.
    pub count: u64,
    /// Ops of this kind timed.
    pub timed: u64,
    /// Mean of the timed ops.
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

fn err(path: &Path, message: impl ToString) -> ResultError {
    ResultError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

pub use crate::output::{write_atomic, ResultError};

impl RunResult {
    /// The timeline file that goes with a result file: `X.json` -> `X.timeline.csv`.
    pub fn timeline_path(json: &Path) -> PathBuf {
        let stem = json
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        json.with_file_name(format!("{stem}.timeline.csv"))
    }

    /// The timeline as CSV ([`TIMELINE_COLUMNS`]).
    pub fn timeline_csv(&self) -> String {
        let mut s = TIMELINE_COLUMNS.join(",");
        s.push('\n');
        for t in &self.timeline {
            let m = &t.memory;
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                t.op,
                t.phase,
                t.time_s,
                t.elapsed_s,
                m.items,
                m.payload_bytes,
                m.requested_bytes,
                m.allocated_bytes,
                m.footprint_bytes,
                m.index_bytes,
                m.rss_bytes,
                t.hits,
                t.misses,
                t.sets,
                t.deletes,
                t.evictions,
                t.expired,
                t.oom_errors
            );
        }
        s
    }

    /// Saves the result as JSON at `path` and the timeline as CSV beside it, together: both
    /// or neither, never a result without its timeline ([`crate::output::write_pair`]).
    pub fn save(&self, path: &Path) -> Result<(), ResultError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| err(path, e))?;
        let csv = self.timeline_csv();
        crate::output::write_pair(
            path,
            (json + "\n").as_bytes(),
            &Self::timeline_path(path),
            csv.as_bytes(),
        )
    }

    /// Checks, before a run, that its result can be saved at `path`: the result and timeline
    /// targets are regular files or absent, and the directory takes a new file.
    pub fn check_save(path: &Path) -> Result<(), ResultError> {
        crate::output::check_output(path)?;
        crate::output::check_target(&Self::timeline_path(path))
    }

    /// Reads a result file, checking the schema version.
    pub fn load(path: &Path) -> Result<RunResult, ResultError> {
        let text = std::fs::read_to_string(path).map_err(|e| err(path, e))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(path, format!("not JSON: {e}")))?;
        match value.get("schema").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(SCHEMA) => {}
            Some(v) => {
                return Err(err(
                    path,
                    format!("schema {v}; this fraglab reads {SCHEMA}"),
                ))
            }
            None => return Err(err(path, "no `schema` field: not a fraglab result")),
        }
        serde_json::from_value(value).map_err(|e| err(path, format!("not a valid result: {e}")))
    }
}
