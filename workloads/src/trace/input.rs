//! A trace's bytes: opened once, counted as they are read, decompressed, and sniffed without
//! being consumed, so that a pipe, a FIFO or stdin reads exactly as a file does.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{is_zst, TraceError, TraceFormat, FRAGLAB_CSV_SNIFF};

/// Read buffer size: large enough that a syscall or a zstd block is amortized over thousands
/// of records.
pub(super) const BUF_SIZE: usize = 256 * 1024;

/// The first four bytes of a zstd frame (RFC 8878, section 3.1.1), as they appear in a file.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How to tell whether an input is zstd-compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Compression {
    /// It is (the name ends in `.zst`).
    Zstd,
    /// It is not.
    Plain,
    /// By its first four bytes: the zstd magic number or not.
    Sniff,
}

/// An opened trace input.
pub(super) struct Input {
    /// The decoded bytes, buffered.
    pub reader: Box<dyn BufRead + Send>,
    /// Bytes read from the underlying file, pipe or reader so far (compressed bytes for zstd).
    pub consumed: Arc<AtomicU64>,
    /// The input's size, when it is a regular file.
    pub total: Option<u64>,
    /// Whether the input is zstd-compressed.
    pub compressed: bool,
}

/// A `Read` that counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens the file at `path` once: counted, buffered, and decompressed if its name ends in
/// `.zst`. Its size is known when it is a regular file (not a FIFO or a device).
pub(super) fn open_file(path: &Path) -> Result<Input, TraceError> {
    let file =
        File::open(path).map_err(|e| TraceError::new(path, None, format!("cannot open: {e}")))?;
    let total = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let compression = if is_zst(path) {
        Compression::Zstd
    } else {
        Compression::Plain
    };
    open(path, Box::new(file), total, compression)
}

/// Wraps `raw` (named `name` in errors): counts its bytes, buffers it and decompresses it as
/// `compression` says.
pub(super) fn open(
    name: &Path,
    raw: Box<dyn Read + Send>,
    total: Option<u64>,
    compression: Compression,
) -> Result<Input, TraceError> {
    let consumed = Arc::new(AtomicU64::new(0));
    let mut counted: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
        BUF_SIZE,
        Counting {
            inner: raw,
            count: Arc::clone(&consumed),
        },
    ));
    let compressed = match compression {
        Compression::Zstd => true,
        Compression::Plain => false,
        Compression::Sniff => {
            let head;
            (head, counted) =
                peek(counted, ZSTD_MAGIC.len()).map_err(|e| read_error(name, None, &e, false))?;
            head == ZSTD_MAGIC
        }
    };
    let reader: Box<dyn BufRead + Send> = if compressed {
        let decoder = zstd::stream::read::Decoder::with_buffer(counted)
            .map_err(|e| TraceError::new(name, None, format!("bad zstd stream: {e}")))?;
        Box::new(BufReader::with_capacity(BUF_SIZE, decoder))
    } else {
        counted
    };
    Ok(Input {
        reader,
        consumed,
        total,
        compressed,
    })
}

/// The first `n` bytes of `input` (fewer if it ends sooner), left unconsumed: `input` is
/// returned to read them again. One fill of the buffer usually holds them; when a pipe
/// delivers them in smaller pieces, the pieces are gathered and chained back in front of the
/// rest.
fn peek(
    mut input: Box<dyn BufRead + Send>,
    n: usize,
) -> io::Result<(Vec<u8>, Box<dyn BufRead + Send>)> {
    let buf = input.fill_buf()?;
    if buf.len() >= n || buf.is_empty() {
        let head = buf[..n.min(buf.len())].to_vec();
        return Ok((head, input));
    }
    let mut head = Vec::with_capacity(n);
    (&mut input).take(n as u64).read_to_end(&mut head)?;
    let again = Cursor::new(head.clone()).chain(input);
    Ok((head, Box::new(again)))
}

/// Tells fraglab CSV from Twitter's by the input's first bytes (fraglab's if they are its
/// header), without consuming them.
pub(super) fn sniff_csv(input: &mut Input, name: &Path) -> Result<TraceFormat, TraceError> {
    let reader = std::mem::replace(&mut input.reader, Box::new(io::empty()));
    let (head, reader) = peek(reader, FRAGLAB_CSV_SNIFF.len())
        .map_err(|e| read_error(name, None, &e, input.compressed))?;
    input.reader = reader;
    Ok(if head == FRAGLAB_CSV_SNIFF.as_bytes() {
        TraceFormat::Fraglab
    } else {
        TraceFormat::Twitter
    })
}

/// An error from reading a trace's bytes, after `records` good or bad records (if known).
/// Errors from the operating system carry an OS error code; anything else from a compressed
/// input comes from the decompressor. Neither names a record: with read-ahead buffering, the
/// record being decoded is not where the stream went bad.
pub(super) fn read_error(
    path: &Path,
    records: Option<u64>,
    e: &io::Error,
    compressed: bool,
) -> TraceError {
    let what = if e.raw_os_error().is_none() && compressed {
        "bad zstd stream"
    } else {
        "read error"
    };
    let message = match records {
        Some(n) => format!("{what} after {n} records: {e}"),
        None => format!("{what}: {e}"),
    };
    TraceError::new(path, None, message)
}
