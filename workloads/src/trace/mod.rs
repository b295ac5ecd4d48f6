//! Trace files: read recorded request streams as [`Op`](crate::Op)s, and write them back.
//!
//! Five formats, each optionally zstd-compressed (a name ending in `.zst`):
//!
//! - `twitter`: Twitter's cache-trace CSV, no header, one request a line:
//!   `timestamp,anonymized key,key size,value size,client id,operation,TTL`.
//! - `oracle-general`: libCacheSim's binary, 24-byte little-endian records:
//!   `u32 time, u64 obj_id, u32 obj_size, i64 next_access_vtime`.
//! - `segcache`: Segcache's replay binary, 20-byte little-endian records:
//!   `u32 time, u64 obj_id, u32 kv_len, u32 op_ttl`.
//! - `fraglab`: fraglab's CSV, the header `time_us,op,key_id,key_len,value_len,ttl,fill,phase`
//!   then one op a line; an op that names an element (`hset`, `sadd`, `zadd`, ...) has two
//!   more columns, `member_id,member_len` (a length of 0: the id is an integer member).
//! - `resp`: Redis commands, a stream of RESP2 arrays of bulk strings
//!   ([RESP](https://redis.io/docs/reference/protocol-spec/)), what `redis-cli --pipe` sends
//!   ([bulk loading](https://redis.io/docs/latest/develop/use/patterns/bulk-loading/)):
//!   `*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n` is `SET k v`.
//!
//! [`TraceFormat::detect`] tells them apart by name: `oracleGeneral` anywhere in it, `.sbin`,
//! `.resp`, or `.csv` (fraglab's if the first line is its header, Twitter's otherwise), each
//! optionally followed by `.zst`.
//!
//! A trace is opened once: a `.csv` file's first line is sniffed from the read buffer without
//! being consumed, so a FIFO or a pipe reads exactly as a file does.
//! [`TraceReader::from_reader`] reads any byte stream under a name, and
//! [`TraceReader::stdin`] (`trace:-`) reads stdin, whose format must be given since it has no
//! name (zstd input is recognized by its magic number there). [`TraceReader::input_progress`]
//! counts the bytes read from the input (compressed bytes for zstd) against its size when it is
//! a regular file, for progress without a counting pass.
//!
//! [`TraceReader`] streams: it decodes one record per [`Iterator::next`] through a buffered
//! (and, for `.zst`, a streaming zstd) reader, so a trace of any length replays in constant
//! memory. [`FraglabCsvWriter`], [`OracleGeneralWriter`] and [`RespWriter`] write traces
//! atomically: into a temporary file beside the target, renamed onto it by `finish`, so a crash
//! or an error never leaves a half-written trace under the real name.
//!
//! Every declared length is checked before anything is allocated for it: a value size over
//! [`VALUE_MAX`](crate::gen::VALUE_MAX) (1 GiB less one byte) is a bad record (an error, or a
//! skipped record when lenient), CSV lines are at most 1 MiB, a RESP command has at most
//! [`RESP_ARRAY_MAX`] (2^20) arguments and a bulk string at most [`RESP_BULK_MAX`] (512 MiB,
//! Redis's `proto-max-bulk-len`), and record counts are never declared: records are streamed.
//!
//! # What each format becomes
//!
//! Every op read from a trace has `phase: 0`, except fraglab CSV, which records the phase so
//! that writing a stream and reading it back gives exactly the same ops. The binary formats
//! and Twitter's CSV record whole seconds; their `time_us` is the time since the first record
//! times a million; a record stamped before the first one gets 0, and a later step back stays
//! a step back (the records keep their order; TTL deadlines are computed from each request's
//! own time). The
//! first record's own timestamp is [`TraceReader::time_origin`]. fraglab CSV records
//! `time_us` as it is; RESP has no times, and every op has `time_us` 0.
//!
//! Key bytes are made from the id ([`crate::Key::write_to`]): a key shorter than its id's
//! base-64 digits (11 for a 64-bit hash) keeps only the low `6 x len` bits, so two trace keys
//! of under 11 bytes may alias (even odds at about `64^(len/2)` distinct keys of that length).
//!
//! - **twitter** ([Yang et al., OSDI '20](https://github.com/twitter/cache-trace)): the key id
//!   is the 64-bit FNV-1a hash of the anonymized key string ([`crate::rng::fnv1a64_bytes`]),
//!   the key length is the key size column (1 to 65,535). Operations are get, gets, set, add,
//!   replace, cas, append, prepend, delete, incr and decr; get and gets carry the object's
//!   size and are marked `fill`, since the traced caches are look-aside caches whose clients
//!   set a key after missing it. The client id is ignored. Keys must not contain commas: a
//!   line has exactly 7 columns.
//! - **oracle-general** (libCacheSim): every record is a `get` with `fill`, of
//!   `obj_size` bytes, whose key is `obj_id` with [`TraceOptions::key_len`] bytes (the format
//!   has no key sizes). The reader ignores `next_access_vtime`; the writer computes it.
//! - **segcache** (the Segcache/Pelikan replay benchmark): decoded as
//!   `benchmarks/trace_replay/reader.c` in the Segcache and Pelikan sources does it (the code
//!   is the authority where prose descriptions of the bit fields differ): `key_len = kv_len >>
//!   22` (10 bits), `value_len = kv_len & 0x3f_ffff` (22 bits), `op = op_ttl >> 24` (8 bits),
//!   `ttl = op_ttl & 0xff_ffff` (24 bits, seconds). `op` is 1-based into get, gets, set, add, cas,
//!   replace, append, prepend, delete, incr, decr (note cas before replace, unlike
//!   [`OpKind`](crate::OpKind)'s order). A record with key length 0 or an op code outside
//!   1..=11 is bad (Pelikan's replayer silently skips the first kind). A TTL of 0 stays 0
//!   (none), where Pelikan's replayer substitutes its configured default TTL.
//! - **fraglab**: one op per line under the header, `fill` as `0` or `1`, every
//!   [`OpKind`](crate::OpKind) by name. Written by [`FraglabCsvWriter`].
//! - **resp**: each command (an array of bulk strings; its name in any case) becomes ops. A
//!   key becomes `Key { id: FNV-1a 64 of its bytes (as Twitter's keys), len: its length }` (1
//!   to 65,535 bytes). An element (hash field, member, list element) that is a canonical
//!   non-negative decimal integer fitting 64 bits (no sign, no leading zero) becomes an
//!   integer member `Key { id: the integer, len: 0 }`, any other becomes `Key { id: FNV-1a
//!   64, len }` (1 to 250 bytes). Values keep only their length. Numbers that become
//!   `value_len` are at most `VALUE_MAX`. No op has `fill`, and `ttl` is 0 but where
//!   given. The commands read (anything else, and other forms of these, is a bad record):
//!
//!   | command | ops |
//!   |---|---|
//!   | `GET k`, `MGET k...` | get per key |
//!   | `SET k v [EX s\|PX ms] [NX\|XX]` | set, add (NX) or replace (XX); `value_len` = len(v), `ttl` = s, or ms rounded up to seconds |
//!   | `MSET k v [k v...]` | set per pair |
//!   | `DEL k...`, `UNLINK k...` | delete per key |
//!   | `EXPIRE k s`, `PERSIST k` | touch, `ttl` = s (1 to 2^32-1), or 0 |
//!   | `INCR k`, `DECR k`, `INCRBY k 1`, `DECRBY k 1` | incr, decr |
//!   | `APPEND k v` | append, `value_len` = len(v) |
//!   | `HSET k f v [f v...]`, `HMSET` the same | hset per pair, `value_len` = len(v) |
//!   | `HGET k f`, `HDEL k f...`, `HGETALL k`, `HINCRBY k f n` | hget, hdel per field, hgetall, hincrby (`value_len` = n) |
//!   | `SADD k m...`, `SREM k m...`, `SISMEMBER k m`, `SPOP k`, `SCARD k` | sadd, srem per member, sismember, spop, scard |
//!   | `LPUSH k e...`, `RPUSH k e...`, `LPOP k`, `RPOP k` | lpush, rpush per element (in order), lpop, rpop |
//!   | `LRANGE k 0 n`, `LTRIM k 0 n`, `ZRANGE k 0 n` | lrange, ltrim, zrange with `value_len` = n + 1 (`0 -1`: 0) |
//!   | `ZADD k score m [score m...]` | zadd per pair, `value_len` = score (a non-negative integer) |
//!   | `ZREM k m...`, `ZSCORE k m`, `ZINCRBY k n m`, `ZPOPMIN k` | zrem per member, zscore, zincrby (`value_len` = n), zpopmin |
//!
//!   This is the inverse of what fraglab's RESP peer sends (gets becomes get, cas replace,
//!   a scan an MGET: get per key; prepend has no Redis command), so `fraglab save W
//!   --out W.resp` writes a file that reads back as the same requests and that
//!   `redis-cli --pipe` replays into a real Redis. A get's demand fill is not a command: it is
//!   not in the file.
//!
//! # oracleGeneral's `next_access_vtime`
//!
//! It is the 1-based position in the file of the next request to the same `obj_id`, or -1
//! if there is none: record `i` (0-based) whose object is next requested by record `j` holds
//! `j + 1`. That is libCacheSim's `traceConv` convention ("reference count starts with 1"),
//! and every record of `cloudPhysicsIO.oracleGeneral.bin` in the shared data follows it; the
//! crate's tests check the whole file. [`OracleGeneralWriter`] writes the same values, so
//! re-writing that trace reproduces it byte for byte (given its
//! [`time_origin`](OracleGeneralWriter::with_time_origin)).
//!
//! # Errors and lenient reading
//!
//! A [`TraceError`] names the file and, for a bad record, its number: the line number for the
//! CSV formats (counting the header and blank lines, so an editor goes straight to it), the
//! 1-based record number for the binary ones and the command number for RESP, whose messages
//! also give the command's byte offset in the (decompressed) input, e.g. `t.resp: record 7:
//! unsupported command SETRANGE at byte 1234`. Strict reading (the default) ends at the first
//! error. [`TraceOptions::lenient`] skips bad records instead and counts them
//! ([`TraceReader::skipped`]), and treats a truncated final binary record or RESP command as
//! one more skipped record; I/O errors, a bad zstd stream, a missing or wrong fraglab header,
//! and malformed RESP framing (not an array, not a bulk string, a bad length, a length over
//! its limit: Redis closes the connection on these too) still end the trace with an error. Blank lines in CSV traces are ignored. No input makes the readers
//! panic, and a CSV line longer than 1 MiB is an error rather than a reason to buffer the
//! file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod input;
mod parse;
mod read;
mod resp;
mod resp_cmd;
mod write;

pub use read::{TraceReader, SKIPPED_REASONS_MAX};
pub use resp::{RESP_ARRAY_MAX, RESP_BULK_MAX};
pub use write::{FraglabCsvWriter, OracleGeneralWriter, RespWriter};

/// fraglab CSV's header line.
pub const FRAGLAB_CSV_HEADER: &str = "time_us,op,key_id,key_len,value_len,ttl,fill,phase";

/// What a `.csv` file must start with to be taken for fraglab CSV rather than Twitter's: the
/// header without its last column, so a file with an older or mangled header is still
/// detected as ours and then rejected with a message about the header.
const FRAGLAB_CSV_SNIFF: &str = "time_us,op,key_id,key_len,value_len,ttl,fill";

/// A trace file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceFormat {
    /// Twitter's cache-trace CSV.
    Twitter,
    /// libCacheSim's oracleGeneral binary.
    OracleGeneral,
    /// Segcache's 20-byte replay binary.
    Segcache,
    /// fraglab's own CSV.
    Fraglab,
    /// RESP commands, as `redis-cli --pipe` sends them.
    Resp,
}

impl TraceFormat {
    /// Every format, in the order error messages list them.
    pub const ALL: [TraceFormat; 5] = [
        TraceFormat::Twitter,
        TraceFormat::OracleGeneral,
        TraceFormat::Segcache,
        TraceFormat::Fraglab,
        TraceFormat::Resp,
    ];

    /// The format's name, as `--trace-format` spells it.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Twitter => "twitter",
            TraceFormat::OracleGeneral => "oracle-general",
            TraceFormat::Segcache => "segcache",
            TraceFormat::Fraglab => "fraglab",
            TraceFormat::Resp => "resp",
        }
    }

    /// Tells a trace's format from its file name, ignoring a trailing `.zst`: a name
    /// containing `oracleGeneral` (as in `.oracleGeneral` and `.oracleGeneral.bin`) is
    /// oracleGeneral, `.sbin` is Segcache, `.resp` is RESP, and a `.csv` file is fraglab CSV if its first line
    /// starts with fraglab's header and Twitter's otherwise (which reads that line, so the
    /// file must exist). Case is ignored. [`TraceReader::open`] detects the same way on the
    /// one open of the file it reads.
    pub fn detect(path: &Path) -> Result<TraceFormat, TraceError> {
        match NameGuess::of(path)? {
            NameGuess::Format(f) => Ok(f),
            NameGuess::Csv => input::sniff_csv(&mut input::open_file(path)?, path),
        }
    }
}

/// What a trace's name says about its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NameGuess {
    /// The format.
    Format(TraceFormat),
    /// A CSV format, told apart by the first line.
    Csv,
}

impl NameGuess {
    fn of(path: &Path) -> Result<NameGuess, TraceError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let stem = name.strip_suffix(".zst").unwrap_or(&name);
        if stem.contains("oraclegeneral") {
            return Ok(NameGuess::Format(TraceFormat::OracleGeneral));
        }
        if stem.ends_with(".sbin") {
            return Ok(NameGuess::Format(TraceFormat::Segcache));
        }
        if stem.ends_with(".resp") {
            return Ok(NameGuess::Format(TraceFormat::Resp));
        }
        if stem.ends_with(".csv") {
            return Ok(NameGuess::Csv);
        }
        Err(TraceError::new(
            path,
            None,
            format!(
                "cannot tell the trace format from the file name (known extensions: \
                 .oracleGeneral, .oracleGeneral.bin, .sbin, .csv, .resp, each optionally \
                 followed by .zst); name it with --trace-format ({})",
                format_names()
            ),
        ))
    }
}

/// The name errors about stdin give as its path.
pub const STDIN_NAME: &str = "stdin";

/// The error for a trace read from stdin (`trace:-`) without an explicit format.
pub fn stdin_needs_format() -> TraceError {
    TraceError::new(
        Path::new(STDIN_NAME),
        None,
        format!(
            "a trace read from stdin has no file name to tell its format by; pass \
             --trace-format ({})",
            format_names()
        ),
    )
}

fn format_names() -> String {
    TraceFormat::ALL.map(TraceFormat::name).join(", ")
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown trace format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown trace format `{0}` (expected one of twitter, oracle-general, segcache, fraglab, resp)"
)]
pub struct UnknownTraceFormat(pub String);

impl FromStr for TraceFormat {
    type Err = UnknownTraceFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownTraceFormat(s.to_string()))
    }
}

/// How to read a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceOptions {
    /// The format; `None` detects it from the file name ([`TraceFormat::detect`]).
    pub format: Option<TraceFormat>,
    /// Skip and count bad records instead of stopping at the first.
    pub lenient: bool,
    /// The key length given to formats that record no key sizes (oracleGeneral). At least 1.
    pub key_len: u16,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            format: None,
            lenient: false,
            key_len: 16,
        }
    }
}

/// A trace that cannot be read or written: which file, which record, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{message}", .path.display(), RecordLabel(*.record))]
pub struct TraceError {
    /// The trace file.
    pub path: PathBuf,
    /// The bad record's 1-based number: its line number in CSV formats, its record number in
    /// binary ones. `None` for errors about the whole file.
    pub record: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl TraceError {
    pub(crate) fn new(path: &Path, record: Option<u64>, message: impl Into<String>) -> Self {
        TraceError {
            path: path.to_path_buf(),
            record,
            message: message.into(),
        }
    }
}

/// Formats `record N: ` for errors about one record, nothing otherwise.
struct RecordLabel(Option<u64>);

impl fmt::Display for RecordLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "record {n}: "),
            None => Ok(()),
        }
    }
}

/// Whether a path names a zstd-compressed file.
fn is_zst(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(".zst"))
}
