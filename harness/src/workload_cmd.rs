//! `fraglab describe` and `fraglab save`: workloads from the command line.

use std::path::Path;
use std::sync::atomic::Ordering;

use clap::Args;
use fraglab_allocators::{AllocSpec, Allocator, WithAllocator};
use fraglab_engine::LayoutKind;
use fraglab_workloads::trace::{
    FraglabCsvWriter, OracleGeneralWriter, RespWriter, TraceFormat, TraceOptions,
};
use fraglab_workloads::{describe_until, Op, OpKind, OpStream, PresetParams, Workload};

use crate::resp_encode::{self, Encoded};
use crate::values::{ValueBytes, Values};

use crate::{Format, STOP};

/// How big a workload is, and how to read a trace.
#[derive(Args, Debug, Clone)]
pub struct WorkloadOpts {
    /// Seed of every random choice (the same seed gives the same stream).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Multiplies records, op counts and live caps of a preset or spec.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Number of records (keyspace), after scaling.
    #[arg(long)]
    pub records: Option<u64>,
    /// Requests per run phase, after scaling.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Live-data cap of the ramcloud-* presets (512, 64k, 64m, 1g), after scaling.
    #[arg(long)]
    pub live_cap: Option<String>,
    /// size-sweep: bytes an item spends beside its value (default: the item header and the
    /// 16-byte key of the layout: memcached's or compact's; 0 for redis).
    #[arg(long)]
    pub overhead: Option<u64>,
    /// Trace format, when the file name does not tell (twitter, oracle-general, segcache,
    /// fraglab, resp).
    #[arg(long)]
    pub trace_format: Option<String>,
    /// Skip malformed trace records and count them, rather than stop at the first.
    #[arg(long)]
    pub lenient: bool,
    /// Key length for traces without keys (oracleGeneral).
    #[arg(long, default_value_t = 16)]
    pub key_len: u16,
    /// Requests per second of trace time for every phase of a generated workload (a preset or
    /// a spec): only the ops' times change, so a run can be spread over more seconds (the
    /// slab automover ticks once a second). Not for traces, which keep their recorded times.
    #[arg(long, value_name = "OPS_PER_SEC")]
    pub rate: Option<f64>,
}

/// `describe` and `save`: a workload, and the allocator size-sweep sweeps.
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// A preset name (`fraglab list workloads`), `file:PATH` for a TOML spec, or `trace:PATH`.
    pub workload: String,
    /// size-sweep: the allocator whose class boundaries to sweep (its default layout sets the
    /// item overhead).
    #[arg(long, default_value = "slab")]
    pub alloc: String,
    #[command(flatten)]
    pub opts: WorkloadOpts,
}

impl WorkloadArgs {
    /// Resolves the workload.
    pub fn workload(&self) -> Result<Workload, String> {
        let alloc: AllocSpec = self.alloc.parse().map_err(|e| format!("--alloc: {e}"))?;
        let (layout, _) = crate::spec::defaults_for(&alloc);
        self.opts.resolve(&self.workload, &alloc, layout)
    }
}

/// Finds the class boundaries of an allocator: the largest request of each size class.
struct Boundaries;

/// The largest request size scanned for malloc-style classes.
const SWEEP_SCAN_MAX: usize = 64 << 10;

impl WithAllocator for Boundaries {
    type Output = Result<Vec<u64>, String>;

    fn run<A: Allocator>(self, alloc: A) -> Self::Output {
        let mut out = Vec::new();
        let mut prev = alloc.usable_size(1).map_err(|e| e.to_string())?;
        for n in 2..=SWEEP_SCAN_MAX {
            let Ok(cost) = alloc.usable_size(n) else {
                // n - 1 was the largest request the allocator takes: the last class's edge.
                out.push(n as u64 - 1);
                break;
            };
            if cost != prev {
                out.push(n as u64 - 1);
                prev = cost;
            }
        }
        if out.len() > 1000 {
            return Err(format!(
                "no size classes to sweep ({} distinct costs up to {SWEEP_SCAN_MAX} bytes)",
                out.len()
            ));
        }
        Ok(out)
    }
}

fn sweep_params(
    alloc: &AllocSpec,
    layout: LayoutKind,
    overhead: Option<u64>,
) -> Result<(Vec<u64>, u64), String> {
    const KEY: usize = 16;
    let bounds = match alloc {
        AllocSpec::Slab(config) => {
            let classes = config.classes().map_err(|e| format!("--alloc: {e}"))?;
            classes.iter().map(|c| u64::from(c.chunk_size)).collect()
        }
        other => other
            .build(Boundaries)
            .map_err(|e| format!("--alloc: {e}"))?
            .map_err(|e| format!("--alloc {other}: {e}"))?,
    };
    let default = match layout {
        LayoutKind::Memcached => fraglab_engine::layout::memcached::ntotal(KEY, 0, 0),
        LayoutKind::Compact => fraglab_engine::layout::compact::HEADER + KEY,
        LayoutKind::Redis => 0,
        LayoutKind::Segcache => fraglab_engine::layout::segcache::HEADER + KEY,
    };
    Ok((bounds, overhead.unwrap_or(default as u64)))
}

impl WorkloadOpts {
    /// Resolves `workload` with these options; size-sweep sweeps `alloc`'s classes with the
    /// item overhead of `layout`.
    pub fn resolve(
        &self,
        workload: &str,
        alloc: &AllocSpec,
        layout: LayoutKind,
    ) -> Result<Workload, String> {
        let live_cap = self
            .live_cap
            .as_deref()
            .map(|c| {
                fraglab_workloads::spec::parse_bytes(c).map_err(|e| format!("--live-cap: {e}"))
            })
            .transpose()?;
        let mut params = PresetParams {
            scale: self.scale,
            records: self.records,
            ops: self.ops,
            live_cap,
            ..PresetParams::default()
        };
        if workload == "size-sweep" {
            let (bounds, overhead) = sweep_params(alloc, layout, self.overhead)?;
            params.boundaries = Some(bounds);
            params.overhead = overhead;
        }
        let format = self
            .trace_format
            .as_deref()
            .map(|f| {
                f.parse::<TraceFormat>()
                    .map_err(|e| format!("--trace-format: {e}"))
            })
            .transpose()?;
        let trace = TraceOptions {
            format,
            lenient: self.lenient,
            key_len: self.key_len,
        };
        let mut w = Workload::parse(workload, &params, &trace).map_err(|e| e.to_string())?;
        if let Some(rate) = self.rate {
            set_rate(&mut w, rate)?;
        }
        Ok(w)
    }
}

/// `--rate`: every phase of a generated workload at `rate` requests per second.
fn set_rate(w: &mut Workload, rate: f64) -> Result<(), String> {
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(format!(
            "--rate {rate}: expected a positive number of requests per second, such as 5000"
        ));
    }
    match w {
        Workload::Spec { spec, .. } => {
            spec.set_rate(rate);
            Ok(())
        }
        Workload::Trace { path, .. } => Err(format!(
            "--rate {rate}: trace:{} replays at its recorded times; --rate sets the pace of a \
             generated workload (a preset or file:SPEC.toml)",
            path.display()
        )),
    }
}

/// `fraglab describe`.
pub fn describe_cmd(args: &WorkloadArgs, format: Format) -> Result<String, String> {
    let workload = args.workload()?;
    let stream = workload.stream(args.opts.seed).map_err(|e| e.to_string())?;
    let summary = describe_until(stream, &STOP)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("interrupted: {} was not read to its end", workload.name()))?;
    Ok(match format {
        Format::Text => summary.to_text(&workload.name()),
        Format::Json => {
            let mut json = serde_json::to_value(&summary).map_err(|e| e.to_string())?;
            json["workload"] = serde_json::json!(workload.name());
            json["seed"] = serde_json::json!(args.opts.seed);
            json["parameters"] = workload.parameters();
            serde_json::to_string_pretty(&json).map_err(|e| e.to_string())? + "\n"
        }
    })
}

/// The trace format a file name asks for when writing.
fn writer_format(path: &Path) -> Result<TraceFormat, String> {
    let name = path.to_string_lossy();
    let name = name.strip_suffix(".zst").unwrap_or(&name);
    if name.ends_with(".csv") {
        Ok(TraceFormat::Fraglab)
    } else if name.contains("oracleGeneral") {
        Ok(TraceFormat::OracleGeneral)
    } else if name.ends_with(".resp") {
        Ok(TraceFormat::Resp)
    } else {
        Err(format!(
            "--out {}: name the file *.csv (fraglab CSV), *.oracleGeneral[.bin] (libCacheSim) \
             or *.resp (Redis commands, for redis-cli --pipe), optionally with .zst",
            path.display()
        ))
    }
}

/// Requests `save` writes between two reads of [`STOP`].
const SAVE_STOP_CHECK: usize = 1024;

/// `Err` once Ctrl-C was pressed, read every [`SAVE_STOP_CHECK`] requests: the writer is then
/// dropped unfinished, which removes its temporary file and leaves `out` as it was.
fn interrupted(i: usize, out: &Path) -> Result<(), String> {
    if i % SAVE_STOP_CHECK == 0 && STOP.load(Ordering::Relaxed) {
        return Err(format!("interrupted: {} was not written", out.display()));
    }
    Ok(())
}

/// `fraglab save`: writes a workload as a trace file, atomically. Ctrl-C ends it within a
/// few requests, with nothing written. `values` are the value bytes of a RESP file.
pub fn save_cmd(args: &WorkloadArgs, out: &Path, values: ValueBytes) -> Result<String, String> {
    let format = writer_format(out)?;
    fraglab_reports::output::check_output(out).map_err(|e| format!("--out {e}"))?;
    let workload = args.workload()?;
    let stream = workload.stream(args.opts.seed).map_err(|e| e.to_string())?;
    let err = |e: fraglab_workloads::trace::TraceError| e.to_string();
    let mut left_out = 0u64;
    let mut resp_left_out = RespLeftOut::default();
    let n = match format {
        TraceFormat::Resp => save_resp(stream, out, values, &mut resp_left_out)?,
        TraceFormat::OracleGeneral => {
            // oracleGeneral records accesses to objects of a size: reads and writes. Deletes,
            // touches, counters and scans have no such record, so they are left out.
            let mut w = OracleGeneralWriter::create(out).map_err(err)?;
            for (i, op) in stream.enumerate() {
                interrupted(i, out)?;
                let op = op.map_err(|e| e.to_string())?;
                if op.kind.writes_value() || matches!(op.kind, OpKind::Get | OpKind::Gets) {
                    w.write(&op).map_err(err)?;
                } else {
                    left_out += 1;
                }
            }
            w.finish().map_err(err)?
        }
        _ => {
            let mut w = FraglabCsvWriter::create(out).map_err(err)?;
            for (i, op) in stream.enumerate() {
                interrupted(i, out)?;
                w.write(&op.map_err(|e| e.to_string())?).map_err(err)?;
            }
            w.finish().map_err(err)?
        }
    };
    let mut msg = format!(
        "wrote {n} requests of {} to {} ({format})\n",
        workload.name(),
        out.display()
    );
    if left_out > 0 {
        msg += &format!(
            "left out {left_out} deletes, touches, counter updates and scans, which \
             oracleGeneral cannot record\n"
        );
    }
    if resp_left_out.prepends > 0 {
        msg += &format!(
            "left out {} prepends, which Redis has no command for\n",
            resp_left_out.prepends
        );
    }
    if resp_left_out.empty_scans > 0 {
        msg += &format!(
            "left out {} scans of no keys, which send no command\n",
            resp_left_out.empty_scans
        );
    }
    Ok(msg)
}

/// Ops `save` leaves out of a RESP file.
#[derive(Debug, Default)]
struct RespLeftOut {
    /// Prepends: Redis has no PREPEND.
    prepends: u64,
    /// Scans of no keys: the RESP peer sends nothing for them.
    empty_scans: u64,
}

/// Writes `stream` as the RESP commands the RESP peer sends ([`resp_encode`]), with values of
/// `bytes`, returning the number of commands written.
fn save_resp(
    stream: OpStream,
    out: &Path,
    bytes: ValueBytes,
    left_out: &mut RespLeftOut,
) -> Result<u64, String> {
    let err = |e: fraglab_workloads::trace::TraceError| e.to_string();
    let mut w = RespWriter::create(out).map_err(err)?;
    let mut values = Values::new(bytes);
    let mut command = Vec::new();
    for (i, op) in stream.enumerate() {
        interrupted(i, out)?;
        let op: Op = op.map_err(|e| e.to_string())?;
        // Only stores and HSET send value bytes; other ops' value_len is a count or a score.
        let value = if op.kind.writes_value() || op.kind == OpKind::Hset {
            values.get(op.value_len)
        } else {
            &[]
        };
        command.clear();
        match resp_encode::encode(&op, value, &mut command) {
            Ok(Encoded::Nothing) => left_out.empty_scans += 1,
            Ok(_) => w.write_command(&command).map_err(err)?,
            Err(_) => left_out.prepends += 1,
        }
    }
    w.finish().map_err(err)
}
