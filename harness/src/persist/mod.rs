//! Persistence during an engine replay: forked snapshots (`--snapshot-at`), and the
//! append-only file (`--aof`, in [`aof`]) with its forked rewrites.
//!
//! A snapshot is Redis's BGSAVE (`rdb.c`): at the given fraction of the ops the replay forks;
//! the child walks the store it shares with the parent and writes every key to a snapshot
//! file (`fraglab_engine::snapshot` has the format), slowed by `--snapshot-key-delay` per key
//! as Redis's `rdb-key-save-delay` slows its child; the parent keeps replaying, and every page
//! it writes meanwhile is copied by the kernel. The child's `Private_Dirty` at its end is the
//! copy-on-write (Redis's `rdb_last_cow_size`); see [`fork`] for how it is read.
//!
//! For an allocator that owns its memory (`slab`), the same window is also measured as a
//! fork-less, user-space copy-on-write would pay it ([`blocks`]): the blocks live at the fork
//! that the parent wrote before the child ended, each copied once, whole.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fraglab_allocators::Allocator;
use fraglab_engine::snapshot::Writer;
use fraglab_engine::{Layout, Store};
use fraglab_reports::{AofSection, ForkSave, SnapshotSection};
use fraglab_workloads::Op;

pub mod aof;
pub mod blocks;
pub mod fork;

use fork::Child;

/// `--snapshot-at`, `--snapshot-to`, `--snapshot-key-delay`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotConfig {
    /// Fractions of the ops at which to fork, in (0, 1), increasing.
    pub at: Vec<f64>,
    /// Where the snapshot is kept; `None`: a temporary file, removed once measured.
    pub to: Option<PathBuf>,
    /// Microseconds the child waits after each key.
    pub key_delay_us: u64,
}

/// What a run persists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PersistConfig {
    /// Forked snapshots.
    pub snapshot: Option<SnapshotConfig>,
    /// The append-only file.
    pub aof: Option<aof::AofConfig>,
    /// A warm restart part way (`--restart-at`, `slab:file=PATH`).
    pub restart: Option<RestartConfig>,
}

/// `--restart-at` on `slab:file=PATH`.
#[derive(Clone, Debug, PartialEq)]
pub struct RestartConfig {
    /// The fraction of the ops at which to restart, in (0, 1).
    pub at: f64,
    /// The slab's page file.
    pub file: PathBuf,
}

impl PersistConfig {
    /// Whether anything is persisted.
    pub fn any(&self) -> bool {
        self.snapshot.is_some() || self.aof.is_some() || self.restart.is_some()
    }
}

/// Parses `--snapshot-at`: fractions of the ops, comma-separated, each in (0, 1).
pub fn parse_at(s: &str) -> Result<Vec<f64>, String> {
    let mut at = Vec::new();
    for part in s.split(',') {
        let f: f64 = part
            .trim()
            .parse()
            .map_err(|_| format!("--snapshot-at: `{part}` is not a fraction like 0.5"))?;
        if !(f > 0.0 && f < 1.0) {
            return Err(format!(
                "--snapshot-at: {f} is not inside (0, 1): a snapshot is taken at that fraction of the ops"
            ));
        }
        if at.last().is_some_and(|&l| f <= l) {
            return Err(format!("--snapshot-at: {s}: the fractions must increase"));
        }
        at.push(f);
    }
    Ok(at)
}

fn stopped() -> bool {
    crate::STOP.load(Ordering::Relaxed)
}

/// The snapshots of one replay.
#[derive(Debug)]
struct Snapshots {
    cfg: SnapshotConfig,
    /// Op counts at which to fork, not yet reached.
    due: Vec<u64>,
    /// Forks due while another child ran (Redis defers a BGSAVE the same way).
    waiting: usize,
    running: Option<(Child, Option<blocks::BlockWatch>)>,
    saves: Vec<ForkSave>,
    taken: u64,
    /// The store's time at the last op, seconds.
    now: u64,
}

/// Persistence state, held by the engine target.
#[derive(Debug)]
pub struct Persist {
    ops: u64,
    snapshots: Option<Snapshots>,
    aof: Option<aof::Aof>,
    /// The op at which to restart, until it is done, and what it found.
    restart_at: Option<(u64, PathBuf)>,
    restart: Option<fraglab_reports::RestartSection>,
}

impl Persist {
    /// Persistence for a replay of `total_ops` ops (the workload's declared count; fractions
    /// need it).
    pub fn new(cfg: &PersistConfig, total_ops: Option<u64>) -> Result<Self, String> {
        let snapshots = match &cfg.snapshot {
            None => None,
            Some(s) => {
                fork::available()?;
                let total = total_ops.ok_or(
                    "--snapshot-at takes fractions of the ops, and this workload does not say how many it has (a trace, or phases measured in bytes); give a preset or a spec measured in requests",
                )?;
                let mut due: Vec<u64> = s.at.iter().map(|f| (f * total as f64) as u64).collect();
                due.reverse();
                Some(Snapshots {
                    cfg: s.clone(),
                    due,
                    waiting: 0,
                    running: None,
                    saves: Vec::new(),
                    taken: 0,
                    now: 0,
                })
            }
        };
        let aof = cfg.aof.as_ref().map(aof::Aof::open).transpose()?;
        let restart_at = match &cfg.restart {
            None => None,
            Some(r) => {
                let total = total_ops.ok_or(
                    "--restart-at takes a fraction of the ops, and this workload does not say how many it has; give a preset or a spec measured in requests",
                )?;
                Some(((r.at * total as f64) as u64, r.file.clone()))
            }
        };
        Ok(Persist {
            ops: 0,
            snapshots,
            aof,
            restart_at,
            restart: None,
        })
    }

    /// Before op `op` (the `ops`-th): forks a snapshot that is due, counts the op against a
    /// running child, and reaps a child that has finished. `now`: the store's time, seconds.
    pub fn tick<A: Allocator, L: Layout>(&mut self, store: &mut Store<A, L>, op: &Op, now: u64) {
        if let Some(s) = &mut self.snapshots {
            s.tick(store, op, self.ops, now);
        }
        if self
            .restart_at
            .as_ref()
            .is_some_and(|(at, _)| *at == self.ops)
        {
            let (_, file) = self.restart_at.take().expect("checked");
            self.restart = Some(restart(store, self.ops, &file));
        }
        self.ops += 1;
    }

    /// After op `op` was applied with `value`: the append-only file records it if it wrote
    /// (`wrote`: false for a read that changed nothing).
    pub fn applied<A: Allocator, L: Layout>(
        &mut self,
        store: &mut Store<A, L>,
        op: &Op,
        value: &[u8],
        wrote: bool,
        now: u64,
    ) {
        if let Some(a) = &mut self.aof {
            a.record(store, op, value, wrote, self.ops, now);
        }
    }

    /// At the end of the replay: waits for running children (killing them on Ctrl-C) and
    /// returns the sections of the result.
    pub fn finish<A: Allocator, L: Layout>(
        mut self,
        store: &mut Store<A, L>,
    ) -> (
        Option<SnapshotSection>,
        Option<AofSection>,
        Option<fraglab_reports::RestartSection>,
    ) {
        let snapshot = self.snapshots.take().map(|mut s| {
            s.drain(store, self.ops);
            SnapshotSection {
                key_delay_us: s.cfg.key_delay_us,
                cow_bytes: s.saves.iter().map(|v| v.cow_bytes).max().unwrap_or(0),
                saves: s.saves,
            }
        });
        let aof = self.aof.take().map(|a| a.finish(store));
        (snapshot, aof, self.restart.take())
    }
}

/// Bytes of a memcached item that are addresses: the LRU links and the hash chain.
const LINK_BYTES: u64 = 24;

/// Restarts `store` at op `ops` (`fraglab_engine::Store::restart`), into the result's section.
fn restart<A: Allocator, L: Layout>(
    store: &mut Store<A, L>,
    ops: u64,
    file: &std::path::Path,
) -> fraglab_reports::RestartSection {
    let mut s = fraglab_reports::RestartSection {
        at_op: ops,
        file: file.display().to_string(),
        link_bytes_per_item: LINK_BYTES,
        offset_bytes_per_item: LINK_BYTES / 2,
        ..Default::default()
    };
    let pages = |store: &Store<A, L>| -> Vec<[u64; 2]> {
        let d = crate::detail::allocator_detail(&store.mem_stats().detail);
        crate::detail::class_pages(&d)
            .into_iter()
            .map(|(c, p)| [u64::from(c), p])
            .collect()
    };
    s.class_pages_before = pages(store);
    match store.restart() {
        Ok(r) => {
            s.class_pages_after = pages(store);
            s.duration_s = r.duration.as_secs_f64();
            s.items_before = r.items_before;
            s.items_after = r.items_after;
            s.bad_items = r.bad_items;
            s.bad_reasons = r.bad_reasons;
            s.lists_kept = r.lists_kept;
            s.meta_bytes = r.meta_bytes;
            s.meta_bytes_per_item = r.meta_bytes as f64 / r.items_before.max(1) as f64;
        }
        Err(e) => {
            crate::note!("--restart-at: {e}");
            s.error = Some(e);
        }
    }
    s
}

/// Whether `op` changes the dataset (what Redis propagates to the AOF).
pub fn writes(op: &Op) -> bool {
    !op.kind.is_read() && op.kind != fraglab_workloads::OpKind::SlabsReassign
}

impl Snapshots {
    fn tick<A: Allocator, L: Layout>(
        &mut self,
        store: &mut Store<A, L>,
        op: &Op,
        ops: u64,
        now: u64,
    ) {
        self.now = now;
        if self.due.last() == Some(&ops) {
            self.due.pop();
            self.waiting += 1;
        }
        if self.running.is_some() && ops % 64 == 0 {
            self.reap(store);
        }
        if self.running.is_none() && self.waiting > 0 {
            self.waiting -= 1;
            self.start(store, ops, now);
        }
        // The op about to be applied is replayed while the child runs.
        if let Some((child, _)) = &mut self.running {
            child.save.ops_during += 1;
            child.save.writes_during += u64::from(writes(op));
        }
    }

    fn start<A: Allocator, L: Layout>(&mut self, store: &mut Store<A, L>, ops: u64, now: u64) {
        self.taken += 1;
        let (dest, keep) = match &self.cfg.to {
            Some(p) => (p.clone(), true),
            None => (
                std::env::temp_dir().join(format!(
                    "fraglab-snapshot-{}-{}.snap",
                    std::process::id(),
                    self.taken
                )),
                false,
            ),
        };
        let delay = Duration::from_micros(self.cfg.key_delay_us);
        let watch = blocks::BlockWatch::start(store.allocator());
        let allocated = store.mem_stats().allocated_bytes;
        let mut work = |file: File| {
            let mut w = Writer::new(BufWriter::with_capacity(1 << 16, file))?;
            let whole = store.dump(now, &mut |key, flags, exptime, value| {
                w.record(key, flags, exptime, value)?;
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                Ok(!stopped())
            })?;
            if !whole {
                return Ok((w.keys(), 0, false));
            }
            let (buf, keys, bytes) = w.finish()?;
            let file = buf.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok((keys, bytes, true))
        };
        match Child::fork(&dest, keep, ops, &mut work) {
            Ok(mut child) => {
                child.save.allocated_at_fork = allocated;
                store.set_child_active(true);
                self.running = Some((child, watch));
            }
            Err(e) => self.saves.push(ForkSave {
                at_op: ops,
                error: Some(e),
                ..ForkSave::default()
            }),
        }
    }

    fn reap<A: Allocator, L: Layout>(&mut self, store: &mut Store<A, L>) {
        let Some((child, watch)) = &mut self.running else {
            return;
        };
        let done = child.poll(&mut |save| {
            if let Some(w) = watch.as_ref() {
                w.measure(store.allocator(), save);
            }
        });
        if done {
            let (child, _) = self.running.take().expect("a running child");
            store.set_child_active(false);
            self.saves.push(child.save.clone());
        }
    }

    /// Waits for the running child, then takes the snapshots that were waiting for it.
    fn drain<A: Allocator, L: Layout>(&mut self, store: &mut Store<A, L>, ops: u64) {
        loop {
            if let Some((child, watch)) = &mut self.running {
                child.wait(&stopped, &mut |save| {
                    if let Some(w) = watch.as_ref() {
                        w.measure(store.allocator(), save);
                    }
                });
                let (child, _) = self.running.take().expect("a running child");
                store.set_child_active(false);
                self.saves.push(child.save.clone());
            }
            if self.waiting == 0 || stopped() {
                return;
            }
            self.waiting -= 1;
            let now = self.now;
            self.start(store, ops, now);
        }
    }
}

/// The command line's persistence flags (`fraglab run`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct PersistArgs {
    /// Fork a snapshot (Redis's BGSAVE) at these fractions of the ops, e.g. `0.5` or
    /// `0.5,0.8`: the child saves every key while the replay goes on, and the copy-on-write
    /// it causes is measured (the engine only; Linux).
    #[arg(long)]
    pub snapshot_at: Option<String>,
    /// Keep the snapshot file here (a regular file, replaced); without it, a temporary file
    /// is written and removed once measured.
    #[arg(long, requires = "snapshot_at")]
    pub snapshot_to: Option<PathBuf>,
    /// Microseconds the snapshot's child waits after each key (Redis's `rdb-key-save-delay`),
    /// so that the replay's writes overlap the save.
    #[arg(long, default_value_t = 0, requires = "snapshot_at")]
    pub snapshot_key_delay: u64,
    /// Keep an append-only file with this `appendfsync`: always, everysec or no; rewritten
    /// by a forked child by Redis's rule (100% growth, at least 64 MiB).
    #[arg(long)]
    pub aof: Option<String>,
    /// Keep the append-only file here (a regular file, replaced); without it, a temporary
    /// file removed at the end.
    #[arg(long, requires = "aof")]
    pub aof_to: Option<PathBuf>,
    /// `auto-aof-rewrite-min-size` (a size: 64m).
    #[arg(long, default_value = "64m", requires = "aof")]
    pub aof_rewrite_min_size: String,
    /// End the engine at this fraction of the ops, open its memory file again at a new
    /// address, check and index every item, and go on (memcached's warm restart; needs
    /// `--alloc slab:file=PATH` and the memcached layout).
    #[arg(long)]
    pub restart_at: Option<f64>,
}

impl PersistArgs {
    /// The persistence of a run (`engine`: on the engine, not a real server; `file`: the
    /// slab's page file, if it has one), refused where it cannot be measured.
    pub fn config(
        &self,
        engine: bool,
        threads: Option<u64>,
        file: Option<&std::path::Path>,
    ) -> Result<PersistConfig, String> {
        let restart = match self.restart_at {
            None => None,
            Some(at) => {
                if !(at > 0.0 && at < 1.0) {
                    return Err(format!(
                        "--restart-at {at}: a fraction of the ops, inside (0, 1)"
                    ));
                }
                let file = file.ok_or(
                    "--restart-at restarts the engine on its memory file: give --alloc slab:file=PATH,item_max=524288 (and the memcached layout)",
                )?;
                if self.snapshot_at.is_some() {
                    return Err("--restart-at and --snapshot-at: one at a time".into());
                }
                Some(RestartConfig {
                    at,
                    file: file.to_path_buf(),
                })
            }
        };
        let snapshot = match &self.snapshot_at {
            None => None,
            Some(at) => {
                if let Some(p) = &self.snapshot_to {
                    fraglab_reports::output::check_output(p)
                        .map_err(|e| format!("--snapshot-to {e}"))?;
                }
                Some(SnapshotConfig {
                    at: parse_at(at)?,
                    to: self.snapshot_to.clone(),
                    key_delay_us: self.snapshot_key_delay,
                })
            }
        };
        let aof = match &self.aof {
            None => None,
            Some(mode) => {
                let mut c = aof::AofConfig::new(mode.parse()?, self.aof_to.clone());
                c.rewrite_min_size =
                    crate::size_arg("aof-rewrite-min-size", &self.aof_rewrite_min_size)?;
                Some(c)
            }
        };
        let cfg = PersistConfig {
            snapshot,
            aof,
            restart,
        };
        if cfg.any() {
            if !engine {
                return Err("--snapshot-at and --aof persist the engine; a real server's own persistence is measured by `fraglab validate` (bgsave-cow)".into());
            }
            if threads.is_some() {
                return Err(
                    "--snapshot-at, --aof and --restart-at persist one engine; drop --threads"
                        .into(),
                );
            }
            if cfg.snapshot.is_some() || cfg.aof.is_some() {
                fork::available()?;
            }
        }
        Ok(cfg)
    }
}
