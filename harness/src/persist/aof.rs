//! The append-only file (`--aof always|everysec|no`), as Redis 7.0 keeps one (`aof.c`).
//!
//! Every op that changes the dataset is appended as the RESP command `fraglab save W.resp`
//! writes for it ([`crate::resp_encode::encode`]; a get that misses and fills appends the SET
//! it did). `appendfsync`: `always` writes and `fdatasync`s after every write op; `everysec`
//! writes when 64 KiB are buffered or a second has passed, and `fdatasync`s at most once a
//! second; `no` writes when 64 KiB are buffered and never syncs.
//!
//! Rewrites follow Redis's rule (`serverCron`): when no rewrite runs and the file is at least
//! `auto-aof-rewrite-min-size` (64 MiB) and has grown by `auto-aof-rewrite-percentage` (100%)
//! over its size after the last rewrite, a forked child writes the whole dataset as commands
//! (SET, HSET, SADD, RPUSH, ZADD, then EXPIRE for keys with a TTL) to a new file, measured
//! as a snapshot's child is ([`super::fork`]). Meanwhile the parent appends to the old file and
//! to an increment file; when the child ends, the increment is appended to the new file and
//! the new file replaces the old (Redis 7 keeps the two as parts of a manifest; the bytes are
//! the same).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fraglab_allocators::Allocator;
use fraglab_engine::agg::model::AggData;
use fraglab_engine::snapshot::Value;
use fraglab_engine::{Layout, Store};
use fraglab_reports::{AofSection, ForkSave};
use fraglab_workloads::{Op, OpKind};

use super::fork::Child;
use crate::resp_encode::{arg, array, encode};

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// After every write.
    Always,
    /// At most once a second.
    Everysec,
    /// Never (the kernel writes back when it likes).
    No,
}

impl std::str::FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::Everysec),
            "no" => Ok(Fsync::No),
            _ => Err(format!(
                "--aof {s}: expected always, everysec or no (Redis's appendfsync)"
            )),
        }
    }
}

impl Fsync {
    fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
            Fsync::No => "no",
        }
    }
}

/// `--aof`, `--aof-to` and Redis's rewrite rule.
#[derive(Clone, Debug, PartialEq)]
pub struct AofConfig {
    /// `appendfsync`.
    pub fsync: Fsync,
    /// Where the file is kept; `None`: a temporary file, removed at the end.
    pub to: Option<PathBuf>,
    /// `auto-aof-rewrite-percentage`.
    pub rewrite_percentage: u64,
    /// `auto-aof-rewrite-min-size`, bytes.
    pub rewrite_min_size: u64,
}

impl AofConfig {
    /// Redis 7.0's defaults with `fsync`.
    pub fn new(fsync: Fsync, to: Option<PathBuf>) -> Self {
        AofConfig {
            fsync,
            to,
            rewrite_percentage: 100,
            rewrite_min_size: 64 << 20,
        }
    }
}

/// Bytes buffered before a write, for `everysec` and `no`.
const BUFFER: usize = 64 << 10;
/// Ops between two checks of the rewrite rule and of a running rewrite.
const CHECK_OPS: u64 = 1024;

/// A running rewrite: its child and the increment file the parent appends to meanwhile.
#[derive(Debug)]
struct Rewrite {
    child: Child,
    incr: File,
    incr_path: PathBuf,
    dest: PathBuf,
}

/// The append-only file of a replay.
#[derive(Debug)]
pub struct Aof {
    cfg: AofConfig,
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    size: u64,
    base_size: u64,
    appended: u64,
    commands: u64,
    fsyncs: u64,
    last_sync: Instant,
    rewrite: Option<Rewrite>,
    rewrites: Vec<ForkSave>,
    rewrites_started: u64,
}

fn io_err(path: &Path, e: std::io::Error) -> String {
    format!("the append-only file {}: {e}", path.display())
}

impl Aof {
    /// Creates the file (a user's path is checked first: only a regular file is replaced).
    pub fn open(cfg: &AofConfig) -> Result<Self, String> {
        let path = match &cfg.to {
            Some(p) => {
                fraglab_reports::output::check_output(p).map_err(|e| e.to_string())?;
                p.clone()
            }
            None => std::env::temp_dir().join(format!("fraglab-{}.aof", std::process::id())),
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        Ok(Aof {
            cfg: cfg.clone(),
            path,
            file,
            buf: Vec::with_capacity(BUFFER * 2),
            size: 0,
            base_size: 0,
            appended: 0,
            commands: 0,
            fsyncs: 0,
            last_sync: Instant::now(),
            rewrite: None,
            rewrites: Vec::new(),
            rewrites_started: 0,
        })
    }

    /// Appends `op` if it wrote (`wrote`: a get that missed and filled is appended as its SET).
    pub fn record<A: Allocator, L: Layout>(
        &mut self,
        store: &mut Store<A, L>,
        op: &Op,
        value: &[u8],
        wrote: bool,
        ops: u64,
        now: u64,
    ) {
        if let Some(r) = &mut self.rewrite {
            r.child.save.ops_during += 1;
            r.child.save.writes_during += u64::from(wrote);
        }
        if wrote {
            let mark = self.buf.len();
            let set;
            let op = if op.kind.is_read() {
                set = Op {
                    kind: OpKind::Set,
                    ..*op
                };
                &set
            } else {
                op
            };
            match encode(op, value, &mut self.buf) {
                Ok(_) => self.commands += 1,
                // Redis has no PREPEND: the peer refuses it, and so does the file.
                Err(_) => self.buf.truncate(mark),
            }
            let sync = match self.cfg.fsync {
                Fsync::Always => true,
                Fsync::Everysec => self.last_sync.elapsed() >= Duration::from_secs(1),
                Fsync::No => false,
            };
            if sync || self.buf.len() >= BUFFER {
                self.flush(sync);
            }
        }
        if ops % CHECK_OPS == 0 {
            self.check(store, ops, now);
        }
    }

    /// Writes the buffer (to the increment file too while a rewrite runs); syncs if `sync`.
    fn flush(&mut self, sync: bool) {
        if !self.buf.is_empty() {
            // A failed write is Redis's "AOF write error": the run goes on, counted as unwritten.
            if self.file.write_all(&self.buf).is_ok() {
                self.size += self.buf.len() as u64;
                self.appended += self.buf.len() as u64;
            }
            if let Some(r) = &mut self.rewrite {
                let _ = r.incr.write_all(&self.buf);
            }
            self.buf.clear();
        }
        if sync {
            let _ = self.file.sync_data();
            self.fsyncs += 1;
            self.last_sync = Instant::now();
        }
    }

    /// Reaps a finished rewrite, and starts one when Redis's rule says so.
    fn check<A: Allocator, L: Layout>(&mut self, store: &mut Store<A, L>, ops: u64, now: u64) {
        if let Some(r) = &mut self.rewrite {
            if r.child.poll(&mut |_| {}) {
                store.set_child_active(false);
                self.end_rewrite();
            }
            return;
        }
        let base = self.base_size.max(1);
        let growth = (self.size * 100 / base).saturating_sub(100);
        if self.size >= self.cfg.rewrite_min_size && growth >= self.cfg.rewrite_percentage {
            self.start_rewrite(store, ops, now);
        }
    }

    fn start_rewrite<A: Allocator, L: Layout>(
        &mut self,
        store: &mut Store<A, L>,
        ops: u64,
        now: u64,
    ) {
        self.flush(false);
        self.rewrites_started += 1;
        let dest = PathBuf::from(format!(
            "{}.rewrite-{}",
            self.path.display(),
            self.rewrites_started
        ));
        let incr_path = PathBuf::from(format!("{}.incr", dest.display()));
        let incr = match File::create(&incr_path) {
            Ok(f) => f,
            Err(e) => {
                self.rewrites.push(ForkSave {
                    at_op: ops,
                    error: Some(io_err(&incr_path, e)),
                    ..ForkSave::default()
                });
                return;
            }
        };
        let allocated = store.mem_stats().allocated_bytes;
        let mut work = |file: File| {
            let mut out = BufWriter::with_capacity(1 << 16, file);
            let mut cmd = Vec::new();
            let (mut keys, mut bytes) = (0u64, 0u64);
            let whole = store.dump(now, &mut |key, _flags, exptime, value| {
                cmd.clear();
                rewrite_commands(key, exptime, now, value, &mut cmd);
                out.write_all(&cmd)?;
                keys += 1;
                bytes += cmd.len() as u64;
                Ok(!crate::STOP.load(std::sync::atomic::Ordering::Relaxed))
            })?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok((keys, bytes, whole))
        };
        match Child::fork(&dest, true, ops, &mut work) {
            Ok(mut child) => {
                child.save.allocated_at_fork = allocated;
                store.set_child_active(true);
                self.rewrite = Some(Rewrite {
                    child,
                    incr,
                    incr_path,
                    dest,
                })
            }
            Err(e) => {
                let _ = std::fs::remove_file(&incr_path);
                self.rewrites.push(ForkSave {
                    at_op: ops,
                    error: Some(e),
                    ..ForkSave::default()
                });
            }
        }
    }

    /// The child ended: the new file takes the increment and replaces the old one.
    fn end_rewrite(&mut self) {
        let Some(r) = self.rewrite.take() else {
            return;
        };
        let mut save = r.child.save.clone();
        drop(r.incr);
        if save.complete {
            let joined = (|| -> std::io::Result<u64> {
                let mut new = OpenOptions::new().append(true).open(&r.dest)?;
                let mut incr = File::open(&r.incr_path)?;
                std::io::copy(&mut incr, &mut new)?;
                new.sync_all()?;
                std::fs::rename(&r.dest, &self.path)?;
                let size = new.metadata()?.len();
                self.file = new;
                Ok(size)
            })();
            match joined {
                Ok(size) => {
                    self.size = size;
                    self.base_size = size;
                }
                Err(e) => {
                    save.complete = false;
                    save.error = Some(io_err(&r.dest, e));
                }
            }
        }
        save.path = None;
        let _ = std::fs::remove_file(&r.dest);
        let _ = std::fs::remove_file(&r.incr_path);
        self.rewrites.push(save);
    }

    /// Ends the file: a running rewrite is waited for (killed on Ctrl-C), the buffer written
    /// (and synced under `everysec`); a temporary file is removed.
    pub fn finish<A: Allocator, L: Layout>(mut self, store: &mut Store<A, L>) -> AofSection {
        if let Some(r) = &mut self.rewrite {
            r.child.wait(
                &|| crate::STOP.load(std::sync::atomic::Ordering::Relaxed),
                &mut |_| {},
            );
            store.set_child_active(false);
            self.end_rewrite();
        }
        // `always` synced every write already; `everysec` syncs what is left.
        self.flush(self.cfg.fsync == Fsync::Everysec);
        if self.cfg.to.is_none() {
            let _ = std::fs::remove_file(&self.path);
        }
        AofSection {
            fsync: self.cfg.fsync.name().to_string(),
            aof_bytes: self.size,
            bytes_appended: self.appended,
            commands: self.commands,
            fsyncs: self.fsyncs,
            rewrite_percentage: self.cfg.rewrite_percentage,
            rewrite_min_size: self.cfg.rewrite_min_size,
            rewrites: std::mem::take(&mut self.rewrites),
        }
    }
}

/// The commands that rebuild one key at `now`, as Redis's `rewriteAppendOnlyFileRio` writes
/// them (one command per element here; Redis batches 64 per command,
/// `AOF_REWRITE_ITEMS_PER_CMD`). A TTL is an EXPIRE of the seconds left, where Redis writes
/// a PEXPIREAT of wall-clock milliseconds: the lab's clock is the workload's, from 0, and an
/// absolute time from it would be in 1970 to a server that loads the file.
pub fn rewrite_commands(key: &[u8], exptime: u32, now: u64, value: &Value, out: &mut Vec<u8>) {
    let mut cmd = |name: &[u8], rest: &[&[u8]]| {
        array(out, 2 + rest.len());
        arg(out, name);
        arg(out, key);
        for r in rest {
            arg(out, r);
        }
    };
    match value {
        Value::Str(v) => cmd(b"SET", &[v]),
        Value::Agg(AggData::Hash(h)) => h.iter().for_each(|(f, v)| cmd(b"HSET", &[f, v])),
        Value::Agg(AggData::Set(s)) => s.iter().for_each(|m| cmd(b"SADD", &[m])),
        Value::Agg(AggData::List(l)) => l.iter().for_each(|e| cmd(b"RPUSH", &[e])),
        Value::Agg(AggData::Zset(z)) => z.iter().for_each(|(s, m)| {
            let mut score = Vec::new();
            fraglab_engine::agg::format_score(*s, &mut score);
            cmd(b"ZADD", &[&score, m]);
        }),
    }
    if exptime != 0 {
        let left = u64::from(exptime).saturating_sub(now).max(1);
        cmd(b"EXPIRE", &[left.to_string().as_bytes()]);
    }
}
