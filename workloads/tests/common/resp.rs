//! Helpers of the RESP trace tests: commands encoded, read back, and the ops they become.

use std::io::Cursor;

use fraglab_workloads::rng::fnv1a64_bytes;
use fraglab_workloads::trace::{TraceError, TraceFormat, TraceOptions, TraceReader};
use fraglab_workloads::{Key, Op, OpKind};

/// One command, encoded.
pub fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Commands given as space-separated words.
pub fn cmds(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| cmd(&l.split(' ').map(str::as_bytes).collect::<Vec<_>>()))
        .collect()
}

pub fn reader(bytes: Vec<u8>, lenient: bool) -> TraceReader {
    let opts = TraceOptions {
        format: Some(TraceFormat::Resp),
        lenient,
        ..TraceOptions::default()
    };
    TraceReader::from_reader("t.resp", Cursor::new(bytes), &opts).unwrap()
}

/// Every op, or the first error.
pub fn read(bytes: Vec<u8>) -> Result<Vec<Op>, TraceError> {
    reader(bytes, false).collect()
}

pub fn key(s: &str) -> Key {
    Key {
        id: fnv1a64_bytes(s.as_bytes()),
        len: s.len() as u16,
    }
}

pub fn int(n: u64) -> Key {
    Key { id: n, len: 0 }
}

pub fn op(kind: OpKind, k: &str, member: Key, value_len: u32, ttl: u32) -> Op {
    Op {
        time_us: 0,
        kind,
        key: key(k),
        value_len,
        ttl,
        fill: false,
        phase: 0,
        member,
    }
}

pub fn plain(kind: OpKind, k: &str, value_len: u32, ttl: u32) -> Op {
    op(kind, k, Key::NONE, value_len, ttl)
}
