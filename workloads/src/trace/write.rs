//! Trace writers. All write into a temporary file beside the target and rename it into
//! place in `finish`, so the target is either the old file or the whole new one.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{is_zst, TraceError, FRAGLAB_CSV_HEADER};
use crate::Op;

/// zstd's default level: fast to write and about as small as traces get at higher levels.
const ZSTD_LEVEL: i32 = 3;

/// oracleGeneral's record size, and where `next_access_vtime` sits in a record.
const RECORD: usize = 24;
const VTIME_AT: usize = 16;

/// Records an [`OracleGeneralWriter`] keeps in memory before writing them out. Most repeat
/// requests come soon after the first, so most `next_access_vtime` patches land in this
/// window and cost no I/O.
const PENDING_RECORDS: usize = 64 * 1024;
/// Patches to records already written that are collected before being applied in file order.
const LATE_PATCHES: usize = 16 * 1024;

/// A temporary file that is removed when dropped, unless persisted onto its target.
#[derive(Debug)]
struct TempPath {
    path: PathBuf,
    persisted: bool,
}

impl TempPath {
    /// Creates `.{name}.{tag}{pid}-{n}.tmp` beside `target`: same directory, so the final
    /// rename is atomic; hidden, so directory listings skip it; unique across processes and
    /// writers.
    fn create(target: &Path, tag: &str) -> Result<(TempPath, File), TraceError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let Some(name) = target.file_name() else {
            return Err(TraceError::new(target, None, "not a file name"));
        };
        refuse_special(target)?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(
                ".{}.{tag}{}-{n}.tmp",
                name.to_string_lossy(),
                std::process::id()
            ));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
            {
                Ok(file) => {
                    let temp = TempPath {
                        path: tmp,
                        persisted: false,
                    };
                    return Ok((temp, file));
                }
                // Left behind by a crashed process with a recycled pid; try the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1 << 20 => {}
                Err(e) => {
                    let m = format!("cannot create temporary file {}: {e}", tmp.display());
                    return Err(TraceError::new(target, None, m));
                }
            }
        }
    }

    /// Renames the file onto `target`.
    fn persist(mut self, target: &Path) -> Result<(), TraceError> {
        refuse_special(target)?;
        std::fs::rename(&self.path, target).map_err(|e| {
            let m = format!("cannot rename {} onto it: {e}", self.path.display());
            TraceError::new(target, None, m)
        })?;
        self.persisted = true;
        Ok(())
    }
}

/// Refuses a target that exists and is not a regular file (a symlink, a directory, a device, a
/// FIFO, a socket): renaming onto it would replace it, `/dev/null` included.
fn refuse_special(target: &Path) -> Result<(), TraceError> {
    match std::fs::symlink_metadata(target) {
        Ok(m) if !m.file_type().is_file() => Err(TraceError::new(
            target,
            None,
            "exists and is not a regular file; replaced nothing",
        )),
        _ => Ok(()),
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: the writer is being abandoned, possibly because of an I/O error.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn write_error(path: &Path, e: &io::Error) -> TraceError {
    TraceError::new(path, None, format!("write error: {e}"))
}

/// Flushes a compressed or plain output through to its file, syncs it and renames it into
/// place.
fn commit(path: &Path, temp: TempPath, out: BufWriter<File>) -> Result<(), TraceError> {
    let file = out.into_inner().map_err(|e| write_error(path, e.error()))?;
    file.sync_all().map_err(|e| write_error(path, &e))?;
    drop(file);
    temp.persist(path)
}

enum Sink {
    Plain(BufWriter<File>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    fn new(path: &Path, file: File) -> Result<Sink, TraceError> {
        let out = BufWriter::with_capacity(256 * 1024, file);
        if is_zst(path) {
            let enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)
                .map_err(|e| write_error(path, &e))?;
            Ok(Sink::Zstd(enc))
        } else {
            Ok(Sink::Plain(out))
        }
    }

    fn into_inner(self) -> io::Result<BufWriter<File>> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Zstd(enc) => enc.finish(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf),
            Sink::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

/// A streamed file written through a temporary file beside its path and renamed onto it by
/// [`Staged::finish`]: what the record-at-a-time writers share. Dropped unfinished, it removes
/// the temporary file and leaves the path as it was.
struct Staged {
    path: PathBuf,
    temp: TempPath,
    out: Sink,
    /// Records written.
    count: u64,
}

impl Staged {
    fn create(path: &Path) -> Result<Staged, TraceError> {
        let (temp, file) = TempPath::create(path, "")?;
        Ok(Staged {
            path: path.to_path_buf(),
            temp,
            out: Sink::new(path, file)?,
            count: 0,
        })
    }

    fn error(&self, e: &io::Error) -> TraceError {
        write_error(&self.path, e)
    }

    fn finish(self) -> Result<u64, TraceError> {
        let out = self
            .out
            .into_inner()
            .map_err(|e| write_error(&self.path, &e))?;
        commit(&self.path, self.temp, out)?;
        Ok(self.count)
    }

    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("path", &self.path)
            .field("temp", &self.temp.path)
            .field("records", &self.count)
            .finish_non_exhaustive()
    }
}

/// Writes fraglab CSV: the header, then one line per op with every field, so reading the file
/// back gives the same ops. A path ending in `.zst` is zstd-compressed.
pub struct FraglabCsvWriter(Staged);

impl fmt::Debug for FraglabCsvWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("FraglabCsvWriter", f)
    }
}

impl FraglabCsvWriter {
    /// Starts writing `path` (through a temporary file; see [`FraglabCsvWriter::finish`]).
    pub fn create(path: &Path) -> Result<FraglabCsvWriter, TraceError> {
        let mut s = Staged::create(path)?;
        writeln!(s.out, "{FRAGLAB_CSV_HEADER}").map_err(|e| s.error(&e))?;
        Ok(FraglabCsvWriter(s))
    }

    /// Appends one op.
    pub fn write(&mut self, op: &Op) -> Result<(), TraceError> {
        let s = &mut self.0;
        write!(
            s.out,
            "{},{},{},{},{},{},{},{}",
            op.time_us,
            op.kind.name(),
            op.key.id,
            op.key.len,
            op.value_len,
            op.ttl,
            u8::from(op.fill),
            op.phase
        )
        .and_then(|()| {
            if op.kind.has_member() {
                // Ops that name an element carry it in two more columns.
                writeln!(s.out, ",{},{}", op.member.id, op.member.len)
            } else {
                writeln!(s.out)
            }
        })
        .map_err(|e| s.error(&e))?;
        s.count += 1;
        Ok(())
    }

    /// Completes the file and renames it onto the path, returning the number of ops written.
    /// A writer dropped without `finish` removes its temporary file and leaves the path as it
    /// was.
    pub fn finish(self) -> Result<u64, TraceError> {
        self.0.finish()
    }
}

/// Writes RESP command files: commands already encoded as RESP arrays of bulk strings (the
/// harness encodes ops as its RESP peer sends them), one after another, so the file can be
/// piped into `redis-cli --pipe` or read back as a `resp` trace. A path ending in `.zst` is
/// zstd-compressed.
pub struct RespWriter(Staged);

impl fmt::Debug for RespWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("RespWriter", f)
    }
}

impl RespWriter {
    /// Starts writing `path` (through a temporary file; see [`RespWriter::finish`]).
    pub fn create(path: &Path) -> Result<RespWriter, TraceError> {
        Staged::create(path).map(RespWriter)
    }

    /// Appends one command, already encoded (`*N\r\n` then N bulk strings). The bytes are
    /// written as given.
    pub fn write_command(&mut self, command: &[u8]) -> Result<(), TraceError> {
        let s = &mut self.0;
        s.out.write_all(command).map_err(|e| s.error(&e))?;
        s.count += 1;
        Ok(())
    }

    /// Completes the file and renames it onto the path, returning the number of commands
    /// written. A writer dropped without `finish` removes its temporary file and leaves the
    /// path as it was.
    pub fn finish(self) -> Result<u64, TraceError> {
        self.0.finish()
    }
}

/// Writes libCacheSim's oracleGeneral binary, computing each record's `next_access_vtime`.
///
/// A record is `u32 time, u64 obj_id, u32 obj_size, i64 next_access_vtime` with `time` the
/// op's `time_us` in whole seconds plus the [time origin](Self::with_time_origin) (saturating
/// at `u32::MAX`), `obj_id` the key id and `obj_size` the value length; the op's kind, key
/// length, TTL, fill and phase have no place in the format. `next_access_vtime` is the 1-based
/// position of the next record with the same `obj_id`, or -1 (see the [module
/// docs](super)). It is filled in as the later record arrives: the writer remembers each
/// object's last record (memory grows with the number of distinct objects) and patches that
/// record, in memory while it is among the last 64Ki records, in the file otherwise. For a
/// `.zst` path the records go to an uncompressed temporary file first, compressed into place
/// by `finish`, since a compressed stream cannot be patched.
pub struct OracleGeneralWriter {
    path: PathBuf,
    /// The uncompressed records.
    raw: TempPath,
    file: File,
    /// Records not yet written to `file`, starting with record number `pending_base`.
    pending: Vec<u8>,
    pending_base: u64,
    /// `(record, next_access_vtime)` patches for records already in `file`.
    late: Vec<(u64, i64)>,
    /// Each object's latest record.
    last: HashMap<u64, u64>,
    records: u64,
    origin: u64,
}

impl fmt::Debug for OracleGeneralWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OracleGeneralWriter")
            .field("path", &self.path)
            .field("temp", &self.raw.path)
            .field("records", &self.records)
            .field("objects", &self.last.len())
            .field("time_origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl OracleGeneralWriter {
    /// Starts writing `path` (through a temporary file; see [`OracleGeneralWriter::finish`]).
    pub fn create(path: &Path) -> Result<OracleGeneralWriter, TraceError> {
        let tag = if is_zst(path) { "raw." } else { "" };
        let (raw, file) = TempPath::create(path, tag)?;
        Ok(OracleGeneralWriter {
            path: path.to_path_buf(),
            raw,
            file,
            pending: Vec::with_capacity(PENDING_RECORDS * RECORD),
            pending_base: 0,
            late: Vec::new(),
            last: HashMap::new(),
            records: 0,
            origin: 0,
        })
    }

    /// Adds `secs` to every record's time: pass a reader's
    /// [`time_origin`](super::TraceReader::time_origin) to write a trace's original timestamps
    /// back rather than times counted from 0.
    pub fn with_time_origin(mut self, secs: u64) -> OracleGeneralWriter {
        self.origin = secs;
        self
    }

    /// Appends one request.
    pub fn write(&mut self, op: &Op) -> Result<(), TraceError> {
        if op.kind == crate::OpKind::SlabsReassign {
            return Err(TraceError::new(
                &self.path,
                Some(self.records + 1),
                "slabs-reassign is not a request for an object: oracleGeneral has no record for it",
            ));
        }
        let index = self.records;
        if let Some(prev) = self.last.insert(op.key.id, index) {
            let vtime = i64::try_from(index + 1).unwrap_or(i64::MAX);
            if prev >= self.pending_base {
                let at = (prev - self.pending_base) as usize * RECORD + VTIME_AT;
                self.pending[at..at + 8].copy_from_slice(&vtime.to_le_bytes());
            } else {
                self.late.push((prev, vtime));
            }
        }
        let secs = self.origin.saturating_add(op.time_us / 1_000_000);
        let time = u32::try_from(secs).unwrap_or(u32::MAX);
        self.pending.extend_from_slice(&time.to_le_bytes());
        self.pending.extend_from_slice(&op.key.id.to_le_bytes());
        self.pending.extend_from_slice(&op.value_len.to_le_bytes());
        self.pending.extend_from_slice(&(-1i64).to_le_bytes());
        self.records += 1;
        if self.pending.len() >= PENDING_RECORDS * RECORD {
            self.flush_pending()?;
        }
        if self.late.len() >= LATE_PATCHES {
            self.apply_late()?;
        }
        Ok(())
    }

    /// Writes the in-memory records to the file.
    fn flush_pending(&mut self) -> Result<(), TraceError> {
        let at = self.pending_base * RECORD as u64;
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(&self.pending))
            .map_err(|e| write_error(&self.path, &e))?;
        self.pending_base += (self.pending.len() / RECORD) as u64;
        self.pending.clear();
        Ok(())
    }

    /// Patches records already in the file, in file order.
    fn apply_late(&mut self) -> Result<(), TraceError> {
        self.late.sort_unstable_by_key(|&(record, _)| record);
        for &(record, vtime) in &self.late {
            let at = record * RECORD as u64 + VTIME_AT as u64;
            self.file
                .seek(SeekFrom::Start(at))
                .and_then(|_| self.file.write_all(&vtime.to_le_bytes()))
                .map_err(|e| write_error(&self.path, &e))?;
        }
        self.late.clear();
        Ok(())
    }

    /// Completes the file (compressing it for a `.zst` path) and renames it onto the path,
    /// returning the number of records written. A writer dropped without `finish` removes its
    /// temporary files and leaves the path as it was.
    pub fn finish(mut self) -> Result<u64, TraceError> {
        self.flush_pending()?;
        self.apply_late()?;
        let path = self.path;
        if !is_zst(&path) {
            self.file.sync_all().map_err(|e| write_error(&path, &e))?;
            drop(self.file);
            self.raw.persist(&path)?;
            return Ok(self.records);
        }
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| write_error(&path, &e))?;
        let (temp, file) = TempPath::create(&path, "")?;
        let mut out = Sink::new(&path, file)?;
        io::copy(
            &mut BufReader::with_capacity(256 * 1024, &self.file),
            &mut out,
        )
        .map_err(|e| write_error(&path, &e))?;
        let out = out.into_inner().map_err(|e| write_error(&path, &e))?;
        commit(&path, temp, out)?;
        // `self.raw` is dropped here, removing the uncompressed records.
        Ok(self.records)
    }
}
