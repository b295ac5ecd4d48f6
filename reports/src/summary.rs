//! The readable summary of one run, as `fraglab run` prints it.

use std::fmt::Write as _;

use crate::RunResult;

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1 << 20) as f64)
}

fn signed_mib(b: i64) -> String {
    format!("{:.2} MiB", b as f64 / (1 << 20) as f64)
}

/// A readable summary of a result.
pub fn run_summary(r: &RunResult) -> String {
    let s = &r.summary;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{}{} | {} | layout {} | evict {} | memory {} | seed {}{}",
        match &r.run.server {
            Some(s) => format!("[{} {}] ", s.program, s.version),
            None => String::new(),
        },
        r.run.workload,
        r.run.alloc,
        r.run.layout,
        r.run.eviction,
        r.run.memory_limit.map_or("unlimited".to_string(), mib),
        r.run.seed,
        if r.complete {
            String::new()
        } else {
            format!(
                " | INCOMPLETE: {}",
                r.incomplete_reason.as_deref().unwrap_or("?")
            )
        }
    );
    if r.run.skipped_records > 0 {
        let _ = writeln!(t, "{}", skipped_note(r));
    }
    if let Some(n) = r.run.shards {
        let _ = writeln!(
            t,
            "sharded over {n} engines by key hash, each with its own allocator{}: figures are \
             their sums, and each evicts on its own",
            match r.run.memory_limit {
                Some(m) => format!(" and {}", mib(m / n.max(1))),
                None => String::new(),
            }
        );
    }
    let _ = writeln!(
        t,
        "ops        {} in {:.3} s: {:.2} M ops/s",
        s.ops,
        s.elapsed_s,
        s.ops_per_sec / 1e6
    );
    let _ = writeln!(t, "                   at end        peak");
    for (name, end, peak) in [
        ("items", s.items as f64, s.peak.items as f64),
        (
            "payload",
            s.payload_bytes as f64,
            s.peak.payload_bytes as f64,
        ),
        (
            "requested",
            s.requested_bytes as f64,
            s.peak.requested_bytes as f64,
        ),
        (
            "allocated",
            s.allocated_bytes as f64,
            s.peak.allocated_bytes as f64,
        ),
        (
            "footprint",
            s.footprint_bytes as f64,
            s.peak.footprint_bytes as f64,
        ),
        ("index", s.index_bytes as f64, s.peak.index_bytes as f64),
        ("rss", s.rss_bytes as f64, s.peak.rss_bytes as f64),
    ] {
        if name == "items" {
            let _ = writeln!(t, "{name:<12} {end:>14.0} {peak:>14.0}");
        } else {
            let _ = writeln!(
                t,
                "{name:<12} {:>14} {:>14}",
                mib(end as u64),
                mib(peak as u64)
            );
        }
    }
    let _ = writeln!(t, "rss before data {}", mib(s.rss_baseline_bytes));
    let _ = writeln!(
        t,
        "metadata {} | internal waste {} | external fragmentation {} | efficiency {:.3}",
        signed_mib(s.metadata_bytes),
        signed_mib(s.internal_waste_bytes),
        signed_mib(s.external_fragmentation_bytes),
        s.efficiency
    );
    let _ = writeln!(
        t,
        "hits {} | misses {} | evictions {} | expired {} | oom errors {}",
        s.hits, s.misses, s.evictions, s.expired, s.oom_errors
    );
    if let Some(d) = r.allocator_detail.log() {
        let _ = writeln!(
            t,
            "log: {} segments of {} | written {} | cleaner copied {} in {} runs | write amplification {:.2}",
            d.segments,
            mib(d.segment_size),
            mib(d.bytes_written),
            mib(d.bytes_copied),
            d.cleaner_runs,
            d.write_amplification
        );
    }
    if let (Some(cfg), Some(d)) = (&r.run.defrag, &r.defrag) {
        let ratio = if s.allocated_bytes > 0 {
            s.footprint_bytes as f64 / s.allocated_bytes as f64
        } else {
            0.0
        };
        let _ = writeln!(
            t,
            "active defrag (lower {}%, upper {}%, cycle {}-{}%, ignore {}): hits {} | misses {} | key hits {} | key misses {} | moved {} | cycles {} | scans {} | skipped blocks {} | footprint/allocated at end {:.3}",
            cfg.threshold_lower,
            cfg.threshold_upper,
            cfg.cycle_min,
            cfg.cycle_max,
            mib(cfg.ignore_bytes),
            d.active_defrag_hits,
            d.active_defrag_misses,
            d.active_defrag_key_hits,
            d.active_defrag_key_misses,
            mib(d.bytes_moved),
            d.defrag_cycles,
            d.scans_completed,
            d.skipped_blocks,
            ratio
        );
    }
    t.push_str(&persist_lines(r));
    if !r.command_errors.is_empty() {
        let _ = writeln!(t, "command errors {:?}", r.command_errors);
    }
    t.push_str(&r.aggregates.summary_lines());
    if !r.latency.is_empty() {
        let _ = writeln!(
            t,
            "latency (ns)      timed      p50      p90      p99    p99.9      max"
        );
        for (k, l) in &r.latency {
            let _ = writeln!(
                t,
                "  {k:<8} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8}",
                l.timed, l.p50_ns, l.p90_ns, l.p99_ns, l.p999_ns, l.max_ns
            );
        }
    }
    if r.phases.len() > 1 {
        let _ = writeln!(
            t,
            "phases              ops    M ops/s    footprint at end   peak footprint"
        );
        for p in &r.phases {
            let _ = writeln!(
                t,
                "  {:<14} {:>10} {:>10.2} {:>18} {:>16}",
                p.name,
                p.ops,
                p.ops_per_sec / 1e6,
                mib(p.end.memory.footprint_bytes),
                mib(p.peak.footprint_bytes)
            );
        }
    }
    t
}

/// One line per forked save (snapshot or AOF rewrite), and the AOF's totals.
fn persist_lines(r: &RunResult) -> String {
    let mut t = String::new();
    let save = |t: &mut String, what: &str, v: &crate::ForkSave| {
        let state = match (&v.error, v.complete) {
            (_, true) => String::new(),
            (Some(e), false) => format!(" | INCOMPLETE: {e}"),
            (None, false) => " | INCOMPLETE".into(),
        };
        let block = v
            .block_cow_bytes
            .map(|b| format!(" | user-space blocks {}", mib(b)))
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "{what} at op {}: copy-on-write {} (child's private dirty, {:.0}% of {} allocated){block} | parent {} | {} keys, {} in {:.2} s | {} writes during it | fork {} us{state}",
            v.at_op,
            mib(v.cow_bytes),
            v.cow_share() * 100.0,
            mib(v.allocated_at_fork),
            mib(v.parent_dirty_bytes),
            v.keys,
            mib(v.bytes),
            v.duration_s,
            v.writes_during,
            v.fork_us,
        );
    };
    if let Some(s) = &r.snapshot {
        for v in &s.saves {
            save(&mut t, "snapshot", v);
        }
    }
    if let Some(x) = &r.restart {
        match &x.error {
            Some(e) => {
                let _ = writeln!(t, "restart at op {}: REFUSED: {e}", x.at_op);
            }
            None => {
                let _ = writeln!(
                    t,
                    "restart at op {} from {}: {} of {} items found and checked in {:.1} ms{} | {} | metadata {} B ({:.3} B per item) | links {} B per item as addresses (offsets would take {})",
                    x.at_op,
                    x.file,
                    x.items_after,
                    x.items_before,
                    x.duration_s * 1e3,
                    if x.bad_items > 0 {
                        format!(" | {} BAD: {}", x.bad_items, x.bad_reasons.join("; "))
                    } else {
                        String::new()
                    },
                    if x.lists_kept {
                        "LRU links moved, order kept"
                    } else {
                        "LRU rebuilt by last access"
                    },
                    x.meta_bytes,
                    x.meta_bytes_per_item,
                    x.link_bytes_per_item,
                    x.offset_bytes_per_item
                );
            }
        }
    }
    if let Some(a) = &r.aof {
        let _ = writeln!(
            t,
            "aof ({}): {} at end | {} appended in {} commands | {} fsyncs | {} rewrites",
            a.fsync,
            mib(a.aof_bytes),
            mib(a.bytes_appended),
            a.commands,
            a.fsyncs,
            a.rewrites.len()
        );
        for v in &a.rewrites {
            save(&mut t, "  aof rewrite", v);
        }
    }
    t
}

/// The flag a run that skipped malformed records carries: `SKIPPED N malformed records
/// (--lenient)`, then the reasons kept, one per line.
pub fn skipped_note(r: &RunResult) -> String {
    let mut t = format!(
        "SKIPPED {} malformed record{} (--lenient)",
        r.run.skipped_records,
        if r.run.skipped_records == 1 { "" } else { "s" }
    );
    for why in &r.run.skipped_reasons {
        let _ = write!(t, "\n  {why}");
    }
    if r.run.skipped_records > r.run.skipped_reasons.len() as u64 {
        let _ = write!(t, "\n  ...");
    }
    t
}
