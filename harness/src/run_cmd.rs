//! `fraglab run` and `fraglab list`.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use fraglab_allocators::AllocSpec;
use fraglab_engine::{LayoutKind, Policy};

use crate::driver::{Position, Progress};
use crate::run::run;
use crate::spec::{defaults_for, RunSpec};
use crate::workload_cmd::WorkloadOpts;
use crate::Format;
use crate::{size_arg, STOP};

/// `fraglab run`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// A preset name (`fraglab list workloads`), `file:PATH` for a TOML spec, or `trace:PATH`.
    #[arg(long)]
    pub workload: String,
    /// The allocator spec, `NAME[:key=value,...]` (`fraglab list allocators`).
    #[arg(long, default_value = "slab")]
    pub alloc: String,
    /// compact, memcached, redis or segcache (default: memcached for slab, redis for zmalloc,
    /// compact for the others).
    #[arg(long)]
    pub layout: Option<String>,
    /// Eviction policy (default: slab-lru for slab, sampled-lru for the others).
    #[arg(long)]
    pub evict: Option<String>,
    /// Memory limit (512, 64k, 64m, 1g); default none.
    #[arg(long)]
    pub memory: Option<String>,
    /// Ops between timeline samples (default: about 200 samples per run).
    #[arg(long)]
    pub sample_every: Option<u64>,
    /// Time one op in this many for latency histograms (0: none).
    #[arg(long, default_value_t = 64)]
    pub latency_every: u64,
    /// Ops the replay reads ahead of the one it applies, prefetching what each will touch
    /// (the engine only; 1: one op at a time). Results are the same for every value.
    #[arg(long, default_value_t = crate::driver::lookahead::DEFAULT_BATCH as u64,
          value_parser = clap::value_parser!(u64).range(1..=crate::driver::lookahead::MAX_BATCH as u64))]
    pub batch: u64,
    /// Split the keyspace by key hash over this many engines, each with its own allocator
    /// and an equal share of --memory, replayed on as many threads (the engine only). The
    /// result is marked sharded: each shard evicts on its own. Without it, one engine.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=crate::shard::MAX_SHARDS as u64))]
    pub threads: Option<u64>,
    /// Write the result JSON here (and the timeline CSV beside it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// What to print on stdout: a readable summary, or the result JSON.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Value bytes: letters (never integers) or digits (integers up to 19 bytes).
    #[arg(long, value_enum, default_value_t = crate::values::ValueBytes::Letters)]
    pub values: crate::values::ValueBytes,
    /// What to measure: engine (in this process), or a real memcached or redis-server
    /// started from PATH on a free loopback port and driven with the same op stream.
    #[arg(long, default_value = "engine")]
    pub target: crate::spec::TargetKind,
    /// Redis 7.0's active defrag (jemalloc and zmalloc over jemalloc only): `on` for Redis's
    /// defaults, or `ignore-bytes=100m,threshold-lower=10,threshold-upper=100,cycle-min=1,
    /// cycle-max=25,max-scan-fields=1000` (any subset; the rest default). Off when absent.
    #[arg(long)]
    pub defrag: Option<String>,
    /// With a real server: send each op no earlier than its trace time after the first op's,
    /// so the run takes as long as its trace time (see --rate) and the server's own clock
    /// (memcached's slab automover, once a second) keeps pace with the engine's.
    #[arg(long)]
    pub pace: bool,
    #[command(flatten)]
    pub persist: crate::persist::PersistArgs,
    #[command(flatten)]
    pub opts: WorkloadOpts,
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn update(&self, at: &Position) {
        let bar = &self.0;
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
        match (at.input, at.declared_ops) {
            // A trace file: how much of it has been read.
            (Some((read, Some(size))), _) => {
                bar.set_length(size);
                bar.set_position(read);
                bar.set_message(format!(
                    "{:.1}/{:.1} MiB read, {} ops",
                    mib(read),
                    mib(size),
                    at.ops
                ));
            }
            (_, Some(total)) => {
                bar.set_length(total);
                bar.set_position(at.ops);
                bar.set_message(format!("{}/{total} ops", at.ops));
            }
            // A pipe, or phases of unknown length: a count and no end.
            _ => {
                bar.set_length(at.ops.max(1));
                bar.set_position(at.ops);
                bar.set_message(format!("{} ops", at.ops));
            }
        }
    }
}

impl RunArgs {
    /// Resolves the arguments into a run.
    pub fn spec(&self) -> Result<RunSpec, String> {
        let alloc: AllocSpec = self.alloc.parse().map_err(|e| format!("--alloc: {e}"))?;
        let (default_layout, default_policy) = defaults_for(&alloc);
        let (layout, agg) = match &self.layout {
            Some(l) => {
                fraglab_engine::layout::parse_layout(l).map_err(|e| format!("--layout: {e}"))?
            }
            None => (default_layout, Default::default()),
        };
        let policy = match &self.evict {
            Some(p) => p.parse::<Policy>().map_err(|e| format!("--evict: {e}"))?,
            None => default_policy,
        };
        let memory = self
            .memory
            .as_deref()
            .map(|m| size_arg("memory", m))
            .transpose()?;
        if self.sample_every == Some(0) {
            return Err("--sample-every 0: samples need at least 1 op between them".into());
        }
        let defrag = match &self.defrag {
            Some(d) => {
                let cfg = crate::spec::parse_defrag(d).map_err(|e| format!("--defrag: {e}"))?;
                crate::spec::check_defrag(&alloc, layout, self.target)?;
                Some(cfg)
            }
            None => None,
        };
        if self.pace && self.target == crate::spec::TargetKind::Engine {
            return Err(concat!(
                "--pace paces a real server (--target memcached|redis); ",
                "the engine already runs on the trace's time"
            )
            .into());
        }
        if self.threads.is_some() && crate::spec::process_wide(&alloc) {
            return Err(format!(
                "--threads: {alloc}'s figures are glibc's, for the whole process (mallinfo2), so \
                 shards cannot be told apart; shard jemalloc, mimalloc, slab, bump or log"
            ));
        }
        if self.threads.is_some() && self.target != crate::spec::TargetKind::Engine {
            return Err(
                "--threads shards the engine; a real server runs its own threads (drop --threads)"
                    .into(),
            );
        }
        let engine = self.target == crate::spec::TargetKind::Engine;
        let file = match &alloc {
            AllocSpec::Slab(c) => c.file.as_deref(),
            _ => None,
        };
        crate::spec::check_file_memory(&alloc, memory)?;
        if self.persist.restart_at.is_some() && layout != fraglab_engine::LayoutKind::Memcached {
            return Err(format!(
                "--restart-at: the {layout} layout cannot restart; memcached's can (--layout memcached)"
            ));
        }
        let persist = self.persist.config(engine, self.threads, file)?;
        let workload = self.opts.resolve(&self.workload, &alloc, layout)?;
        Ok(RunSpec {
            workload_arg: self.workload.clone(),
            workload,
            alloc,
            layout,
            agg,
            policy,
            memory,
            seed: self.opts.seed,
            sample_every: self.sample_every,
            latency_every: self.latency_every,
            batch: self.batch as usize,
            threads: self.threads.map(|n| n as usize),
            command: std::env::args().collect(),
            values: self.values,
            defrag,
            pace: self.pace,
            persist,
        })
    }
}

/// Runs and reports; returns what to print and whether the run completed.
pub fn run_cmd(args: &RunArgs) -> Result<(String, bool), String> {
    // A bad --out is found now, before the workload is opened, not after the measurement.
    if let Some(out) = &args.out {
        fraglab_reports::RunResult::check_save(out).map_err(|e| format!("--out {e}"))?;
    }
    let spec = args.spec()?;
    let bar = if !args.quiet && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {msg} ({eta} left)")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        b.set_prefix(format!("{} on {}", spec.workload_arg, spec.alloc));
        Some(Bar(b))
    } else {
        None
    };
    let progress: &dyn Progress = match &bar {
        Some(b) => b,
        None => &(),
    };
    let result = run(&spec, args.target, &STOP, progress)?;
    if let Some(b) = &bar {
        b.0.finish_and_clear();
    }
    if let Some(out) = &args.out {
        result.save(out).map_err(|e| e.to_string())?;
    }
    if result.run.skipped_records > 0 {
        crate::note!(
            "fraglab: {}",
            fraglab_reports::summary::skipped_note(&result)
        );
    }
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&result).map_err(|e| e.to_string())? + "\n",
        Format::Text => fraglab_reports::summary::run_summary(&result),
    };
    Ok((text, result.complete))
}

/// What `fraglab list` lists.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListWhat {
    /// Workload presets.
    Workloads,
    /// Allocator specs, with their defaults.
    Allocators,
    /// Object layouts.
    Layouts,
    /// Eviction policies.
    Policies,
}

/// `fraglab list`.
pub fn list(what: ListWhat) -> String {
    let mut t = String::new();
    match what {
        ListWhat::Workloads => {
            for name in fraglab_workloads::presets::NAMES {
                let params = fraglab_workloads::PresetParams {
                    boundaries: Some(vec![96]),
                    ..Default::default()
                };
                let about = fraglab_workloads::presets::preset(name, &params)
                    .map(|s| s.description)
                    .unwrap_or_default();
                let first = about.split(". ").next().unwrap_or("").trim_end_matches('.');
                let _ = writeln!(t, "{name:<20} {first}");
            }
        }
        ListWhat::Allocators => {
            for spec in AllocSpec::all() {
                let _ = writeln!(t, "{spec}");
            }
        }
        ListWhat::Layouts => {
            for l in LayoutKind::ALL {
                let _ = writeln!(t, "{l}");
            }
        }
        ListWhat::Policies => {
            for p in Policy::ALL {
                let _ = writeln!(t, "{}", p.name());
            }
        }
    }
    t
}
