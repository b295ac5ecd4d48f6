//! One run: a workload replayed into a target (the engine in this process, or a real server)
//! by the one driver ([`crate::driver`]), and the result assembled in the results schema.

use std::sync::atomic::AtomicBool;

use fraglab_allocators::Allocator;
use fraglab_engine::{with_store, Layout, LayoutKind, Store, StoreConfig, WithStore};
use fraglab_reports::{RunInfo, RunResult, Summary, TraceInput, SCHEMA};
use fraglab_workloads::OpStream;

use crate::driver::{drive, DriveOptions, Progress, Replayed};
use crate::engine_target::EngineTarget;
use crate::env::env;
use crate::spec::{RunSpec, TargetKind};
use crate::values::ValueBytes;

/// The engine, built for the spec's allocator and layout, replayed into.
struct EngineReplay<'a> {
    stream: OpStream,
    opts: &'a DriveOptions<'a>,
    layout: LayoutKind,
    values: ValueBytes,
    alloc_name: &'a str,
    defrag: Option<fraglab_engine::defrag::DefragConfig>,
    persist: Option<crate::persist::Persist>,
}

impl WithStore for EngineReplay<'_> {
    type Output = Replayed;

    fn run<A: Allocator, L: Layout>(self, store: Store<A, L>) -> Replayed {
        let target = EngineTarget::new(store, self.layout, self.values, self.alloc_name)
            .with_defrag(self.defrag)
            .with_persist(self.persist);
        drive(target, self.stream, self.opts)
    }
}

/// Replays `spec` into `target`. `stop` ends the replay early (Ctrl-C): the result is then
/// marked incomplete. Errors before any op ran (a workload or allocator that cannot start, a
/// refused configuration, a server that cannot start) are `Err`; a workload error part way (a
/// malformed trace record) or a server that dies ends the run with what was measured, marked
/// incomplete.
pub fn run(
    spec: &RunSpec,
    target: TargetKind,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<RunResult, String> {
    let env = env();
    let stream = spec.workload.stream(spec.seed).map_err(|e| e.to_string())?;
    let persist = if spec.persist.any() {
        Some(crate::persist::Persist::new(
            &spec.persist,
            stream.declared_ops(),
        )?)
    } else {
        None
    };
    let opts = DriveOptions {
        sample_every: spec.sample_every,
        latency_every: spec.latency_every,
        batch: spec.batch,
        feed_thread: target != TargetKind::Engine || !crate::spec::process_wide(&spec.alloc),
        stop,
        progress,
    };
    let m = match (target, spec.threads) {
        (TargetKind::Engine, Some(n)) => {
            drive(crate::shard::Sharded::start(spec, n)?, stream, &opts)
        }
        (TargetKind::Engine, None) => {
            let config = StoreConfig {
                policy: spec.policy,
                seed: spec.seed,
                agg: spec.agg,
                ..StoreConfig::default()
            };
            let replay = EngineReplay {
                stream,
                opts: &opts,
                layout: spec.layout,
                values: spec.values,
                alloc_name: spec.alloc.name(),
                defrag: spec.defrag,
                persist,
            };
            with_store(&spec.alloc, spec.layout, spec.memory, config, replay)
                .map_err(|e| e.to_string())?
        }
        (server, _) => crate::peer::replay(spec, server, stream, &opts)?,
    };
    let summary =
        Summary::from_timeline(&m.timeline, m.ops, m.elapsed.as_secs_f64(), m.rss_baseline);
    let end = m.end;
    Ok(RunResult {
        schema: SCHEMA,
        complete: m.incomplete.is_none(),
        incomplete_reason: m.incomplete,
        run: RunInfo {
            workload: spec.workload_arg.clone(),
            workload_parameters: spec.workload.parameters(),
            alloc: spec.alloc.to_string(),
            alloc_name: spec.alloc.name().to_string(),
            library_versions: end.library_versions,
            layout: fraglab_engine::layout::layout_name(spec.layout, &spec.agg),
            eviction: spec.policy.name().to_string(),
            memory_limit: spec.memory,
            seed: spec.seed,
            ops: m.total_ops,
            target: target.name().to_string(),
            sample_every: m.sample_every,
            latency_every: spec.latency_every,
            // Only the engine reads ahead.
            batch: if target == TargetKind::Engine {
                spec.batch as u64
            } else {
                1
            },
            shards: spec.threads.map(|n| n as u64),
            command: spec.command.clone(),
            values: spec.values.name().to_string(),
            server: end.server,
            trace_input: m
                .input
                .map(|(bytes_read, size)| TraceInput { bytes_read, size }),
            skipped_records: m.skipped.0,
            skipped_reasons: m.skipped.1,
            defrag: spec.defrag.map(|c| fraglab_reports::DefragSettings {
                ignore_bytes: c.ignore_bytes,
                threshold_lower: c.threshold_lower,
                threshold_upper: c.threshold_upper,
                cycle_min: c.cycle_min,
                cycle_max: c.cycle_max,
                max_scan_fields: c.max_scan_fields,
                keys_per_cpu_ms: fraglab_engine::defrag::KEYS_PER_CPU_MS,
            }),
        },
        env,
        summary,
        phases: m.phases,
        timeline: m.timeline,
        latency: m.latency,
        command_errors: end.command_errors,
        allocator_detail: end.allocator_detail,
        aggregates: end.aggregates,
        defrag: end.defrag,
        snapshot: end.snapshot,
        aof: end.aof,
        restart: end.restart,
    })
}
