//! [`TraceReader`]: one decoder per format behind one streaming iterator.

use std::fmt;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::input::{self, read_error, Compression, Input};
use super::parse::{parse_fraglab, parse_twitter, relative_us, shown, value_len_checked};
use super::resp::{RespDecoder, RespFault};
use super::{
    is_zst, stdin_needs_format, NameGuess, TraceError, TraceFormat, TraceOptions,
    FRAGLAB_CSV_HEADER, STDIN_NAME,
};
use crate::{Key, Op, OpKind};

/// The longest CSV line accepted. Real lines are under 200 bytes; the limit exists so that a
/// binary file read as CSV (one endless "line") fails instead of filling memory.
const MAX_LINE: u64 = 1 << 20;

/// How many skipped records' reasons lenient reading keeps (the count covers them all).
pub const SKIPPED_REASONS_MAX: usize = 5;

/// oracleGeneral's record size.
const ORACLE_RECORD: usize = 24;
/// Segcache's record size.
const SEGCACHE_RECORD: usize = 20;

/// Segcache's op codes, 1-based: `reader.c` documents them as "get, gets, set, add, cas,
/// replace, append, prepend, delete, incr, decr".
const SEGCACHE_OPS: [OpKind; 11] = [
    OpKind::Get,
    OpKind::Gets,
    OpKind::Set,
    OpKind::Add,
    OpKind::Cas,
    OpKind::Replace,
    OpKind::Append,
    OpKind::Prepend,
    OpKind::Delete,
    OpKind::Incr,
    OpKind::Decr,
];

/// Why a record yielded no op.
enum Fault {
    /// The record is bad; lenient reading skips it.
    Bad(TraceError),
    /// The file ends inside a record; lenient reading skips it and stops.
    Truncated(TraceError),
    /// Nothing after this can be trusted: I/O errors, a bad zstd stream, an overlong line.
    Fatal(TraceError),
}

/// A streaming trace reader: an iterator of the trace's ops.
///
/// ```no_run
/// use fraglab_workloads::trace::{TraceOptions, TraceReader};
/// let mut reader = TraceReader::open("cluster52.csv.zst".as_ref(), &TraceOptions::default())?;
/// for op in reader.by_ref() {
///     let op = op?;
///     // ...
/// }
/// println!("{} records", reader.records());
/// # Ok::<(), fraglab_workloads::trace::TraceError>(())
/// ```
pub struct TraceReader {
    path: PathBuf,
    format: TraceFormat,
    lenient: bool,
    key_len: u16,
    input: Box<dyn BufRead + Send>,
    /// Bytes read from the file, pipe or reader so far (compressed bytes for zstd).
    consumed: Arc<AtomicU64>,
    /// The input's size, when it is a regular file.
    total: Option<u64>,
    /// Whether the input is zstd-compressed (for error messages).
    compressed: bool,
    /// The current CSV line, reused so reading allocates nothing per record.
    line: Vec<u8>,
    /// Lines consumed so far (CSV formats), the number an error reports.
    line_no: u64,
    records: u64,
    skipped: u64,
    /// Why the first [`SKIPPED_REASONS_MAX`] skipped records were skipped.
    reasons: Vec<String>,
    /// The first record's timestamp, in the trace's unit, which `time_us` counts from.
    origin: Option<u64>,
    /// RESP's decoder: the byte offset and a multi-key command's queued ops.
    resp: RespDecoder,
    done: bool,
}

impl fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("lenient", &self.lenient)
            .field("records", &self.records)
            .field("skipped", &self.skipped)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl TraceReader {
    /// Opens a trace file, once: the format is `opts.format`, or detected from the name if
    /// that is `None` (for a `.csv` name, from the first line, sniffed from the read buffer
    /// without consuming it), so a FIFO reads as a file does. `-` reads stdin
    /// ([`TraceReader::stdin`]). Fails if the file cannot be opened, the format cannot be
    /// told, a fraglab CSV file lacks its header, or `opts.key_len` is 0.
    pub fn open(path: &Path, opts: &TraceOptions) -> Result<TraceReader, TraceError> {
        if path == Path::new("-") {
            return TraceReader::stdin(opts);
        }
        let guess = match opts.format {
            Some(f) => NameGuess::Format(f),
            None => NameGuess::of(path)?,
        };
        check_key_len(path, opts)?;
        TraceReader::start(path, guess, input::open_file(path)?, opts)
    }

    /// Reads a trace from any byte stream; `name` stands for it in errors and, when
    /// `opts.format` is `None`, tells the format as a file name would
    /// ([`TraceFormat::detect`]). The stream is decompressed if `name` ends in `.zst` or its
    /// first four bytes are zstd's magic number. Its total size is unknown
    /// ([`TraceReader::input_progress`]).
    pub fn from_reader(
        name: impl AsRef<Path>,
        reader: impl Read + Send + 'static,
        opts: &TraceOptions,
    ) -> Result<TraceReader, TraceError> {
        let name = name.as_ref();
        let guess = match opts.format {
            Some(f) => NameGuess::Format(f),
            None => NameGuess::of(name)?,
        };
        check_key_len(name, opts)?;
        let compression = if is_zst(name) {
            Compression::Zstd
        } else {
            Compression::Sniff
        };
        let input = input::open(name, Box::new(reader), None, compression)?;
        TraceReader::start(name, guess, input, opts)
    }

    /// Reads a trace from stdin (what `trace:-` opens). Stdin has no name to tell the format
    /// by, so `opts.format` must be set; zstd compression is recognized by its magic number.
    /// Errors name the input `stdin`.
    pub fn stdin(opts: &TraceOptions) -> Result<TraceReader, TraceError> {
        if opts.format.is_none() {
            return Err(stdin_needs_format());
        }
        TraceReader::from_reader(STDIN_NAME, io::stdin(), opts)
    }

    fn start(
        path: &Path,
        guess: NameGuess,
        mut input: Input,
        opts: &TraceOptions,
    ) -> Result<TraceReader, TraceError> {
        let format = match guess {
            NameGuess::Format(f) => f,
            NameGuess::Csv => input::sniff_csv(&mut input, path)?,
        };
        let mut reader = TraceReader {
            path: path.to_path_buf(),
            format,
            lenient: opts.lenient,
            key_len: opts.key_len,
            input: input.reader,
            consumed: input.consumed,
            total: input.total,
            compressed: input.compressed,
            line: Vec::with_capacity(256),
            line_no: 0,
            records: 0,
            skipped: 0,
            reasons: Vec::new(),
            origin: None,
            resp: RespDecoder::new(),
            done: false,
        };
        if format == TraceFormat::Fraglab {
            reader.read_header()?;
        }
        Ok(reader)
    }

    /// How much of the input has been read: bytes read from the file, pipe or reader so far
    /// (compressed bytes for zstd; read-ahead buffering runs up to 256 KiB ahead of the
    /// records decoded), and the input's total size when it is a regular file (`None` for a
    /// pipe, a FIFO, stdin or [`TraceReader::from_reader`]). Once the trace is read to its end,
    /// the two are equal.
    pub fn input_progress(&self) -> (u64, Option<u64>) {
        (self.consumed.load(Ordering::Relaxed), self.total)
    }

    /// The trace's format.
    pub fn format(&self) -> TraceFormat {
        self.format
    }

    /// The trace's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records read so far, good or bad (not counting fraglab CSV's header or blank lines): for
    /// RESP, commands, of which one may give several ops.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bad records skipped so far by lenient reading.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Why the first [`SKIPPED_REASONS_MAX`] records lenient reading skipped were bad, each
    /// naming the file and the record (or line) number.
    pub fn skipped_reasons(&self) -> &[String] {
        &self.reasons
    }

    fn skip(&mut self, why: TraceError) {
        self.skipped += 1;
        if self.reasons.len() < SKIPPED_REASONS_MAX {
            self.reasons.push(why.to_string());
        }
    }

    /// The first record's timestamp in seconds, which `time_us` 0 stands for: set once a
    /// Twitter, oracleGeneral or Segcache record has been read, `None` before that and for
    /// fraglab CSV, whose times are not shifted.
    /// [`OracleGeneralWriter::with_time_origin`](super::OracleGeneralWriter::with_time_origin)
    /// takes it to write the original timestamps back.
    pub fn time_origin(&self) -> Option<u64> {
        self.origin
    }

    fn read_header(&mut self) -> Result<(), TraceError> {
        let found = match self.next_line() {
            Ok(true) => self.line.clone(),
            Ok(false) => Vec::new(),
            Err(Fault::Bad(e) | Fault::Truncated(e) | Fault::Fatal(e)) => return Err(e),
        };
        if found == FRAGLAB_CSV_HEADER.as_bytes() {
            return Ok(());
        }
        let message = if found.is_empty() {
            format!("missing the header `{FRAGLAB_CSV_HEADER}`")
        } else {
            format!(
                "expected the header `{FRAGLAB_CSV_HEADER}`, found `{}`",
                shown(&found)
            )
        };
        Err(TraceError::new(
            &self.path,
            Some(self.line_no.max(1)),
            message,
        ))
    }

    /// Reads the next record: `Ok(None)` at the end of the trace.
    fn read_op(&mut self) -> Result<Option<Op>, Fault> {
        match self.format {
            TraceFormat::Resp => {
                let r = self.resp.next_op(&mut *self.input, &mut self.records);
                let at = |m: String| TraceError::new(&self.path, Some(self.records), m);
                r.map_err(|f| match f {
                    RespFault::Bad(m) => Fault::Bad(at(m)),
                    RespFault::Truncated(m) => Fault::Truncated(at(m)),
                    RespFault::Fatal(m) => Fault::Fatal(at(m)),
                    RespFault::Io(e) => Fault::Fatal(read_error(
                        &self.path,
                        Some(self.records),
                        &e,
                        self.compressed,
                    )),
                })
            }
            TraceFormat::Twitter | TraceFormat::Fraglab => {
                if !self.next_line()? {
                    return Ok(None);
                }
                self.records += 1;
                let parsed = if self.format == TraceFormat::Twitter {
                    parse_twitter(&self.line, &mut self.origin)
                } else {
                    parse_fraglab(&self.line)
                };
                parsed
                    .map(Some)
                    .map_err(|m| Fault::Bad(TraceError::new(&self.path, Some(self.line_no), m)))
            }
            TraceFormat::OracleGeneral => {
                let mut rec = [0u8; ORACLE_RECORD];
                if !self.next_record(&mut rec)? {
                    return Ok(None);
                }
                let time = u64::from(le_u32(&rec, 0));
                let value_len = value_len_checked(u64::from(le_u32(&rec, 12)), "obj_size")
                    .map_err(|m| Fault::Bad(TraceError::new(&self.path, Some(self.records), m)))?;
                Ok(Some(Op {
                    time_us: relative_us(&mut self.origin, time),
                    kind: OpKind::Get,
                    key: Key {
                        id: le_u64(&rec, 4),
                        len: self.key_len,
                    },
                    value_len,
                    ttl: 0,
                    fill: true,
                    phase: 0,
                    member: Key::NONE,
                }))
            }
            TraceFormat::Segcache => {
                let mut rec = [0u8; SEGCACHE_RECORD];
                if !self.next_record(&mut rec)? {
                    return Ok(None);
                }
                let time_us = relative_us(&mut self.origin, u64::from(le_u32(&rec, 0)));
                let id = le_u64(&rec, 4);
                let kv_len = le_u32(&rec, 12);
                let op_ttl = le_u32(&rec, 16);
                let key_len = (kv_len >> 22) & 0x3ff;
                let op = (op_ttl >> 24) as usize;
                let bad =
                    |m: String| Fault::Bad(TraceError::new(&self.path, Some(self.records), m));
                if key_len == 0 {
                    return Err(bad("key size 0".to_string()));
                }
                let Some(&kind) = op.checked_sub(1).and_then(|i| SEGCACHE_OPS.get(i)) else {
                    return Err(bad(format!("unknown op code {op} (expected 1 to 11)")));
                };
                Ok(Some(Op {
                    time_us,
                    kind,
                    key: Key {
                        id,
                        // 10 bits always fit.
                        len: key_len as u16,
                    },
                    value_len: kv_len & 0x3f_ffff,
                    ttl: op_ttl & 0xff_ffff,
                    fill: matches!(kind, OpKind::Get | OpKind::Gets),
                    phase: 0,
                    member: Key::NONE,
                }))
            }
        }
    }

    /// Reads the next non-blank line into `self.line`, without its line ending. `Ok(false)` at
    /// the end of the file.
    fn next_line(&mut self) -> Result<bool, Fault> {
        loop {
            self.line.clear();
            let n = (&mut self.input)
                .take(MAX_LINE)
                .read_until(b'\n', &mut self.line)
                .map_err(|e| {
                    Fault::Fatal(read_error(
                        &self.path,
                        Some(self.records),
                        &e,
                        self.compressed,
                    ))
                })?;
            if n == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            if self.line.last() == Some(&b'\n') {
                self.line.pop();
            } else if n as u64 == MAX_LINE {
                let m = format!("line is longer than {MAX_LINE} bytes");
                return Err(Fault::Fatal(TraceError::new(
                    &self.path,
                    Some(self.line_no),
                    m,
                )));
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            if !self.line.is_empty() {
                return Ok(true);
            }
        }
    }

    /// Reads the next binary record. `Ok(false)` at the end of the file, a truncation fault if
    /// the file ends inside the record.
    fn next_record<const N: usize>(&mut self, rec: &mut [u8; N]) -> Result<bool, Fault> {
        let mut filled = 0;
        while filled < N {
            match self.input.read(&mut rec[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Fault::Fatal(read_error(
                        &self.path,
                        Some(self.records),
                        &e,
                        self.compressed,
                    )))
                }
            }
        }
        if filled == 0 {
            return Ok(false);
        }
        self.records += 1;
        if filled < N {
            let m = format!("truncated record: {filled} of {N} bytes");
            return Err(Fault::Truncated(TraceError::new(
                &self.path,
                Some(self.records),
                m,
            )));
        }
        Ok(true)
    }
}

fn check_key_len(path: &Path, opts: &TraceOptions) -> Result<(), TraceError> {
    if opts.key_len == 0 {
        return Err(TraceError::new(path, None, "key length must be at least 1"));
    }
    Ok(())
}

fn le_u32<const N: usize>(rec: &[u8; N], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&rec[at..at + 4]);
    u32::from_le_bytes(b)
}

fn le_u64<const N: usize>(rec: &[u8; N], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&rec[at..at + 8]);
    u64::from_le_bytes(b)
}

impl Iterator for TraceReader {
    type Item = Result<Op, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.read_op() {
                Ok(Some(op)) => return Some(Ok(op)),
                Ok(None) => self.done = true,
                Err(Fault::Bad(e)) if self.lenient => self.skip(e),
                Err(Fault::Truncated(e)) if self.lenient => {
                    self.skip(e);
                    self.done = true;
                }
                Err(Fault::Bad(e) | Fault::Truncated(e) | Fault::Fatal(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}
