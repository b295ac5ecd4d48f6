//! What the real Redis holds as hashes, sets, lists and sorted sets at the end of a run, read
//! back key by key: `SCAN`, then `TYPE`, `OBJECT ENCODING`, the length (`HLEN`, `SCARD`,
//! `LLEN`, `ZCARD`) and `MEMORY USAGE key SAMPLES 0` of every aggregate key, pipelined. The
//! result has the engine's `aggregates` shape, so `validate` can hold the model's encodings
//! to the server's.
//!
//! `MEMORY USAGE` is Redis's own account of a key (`objectComputeSize` in `object.c`: the
//! key's dict entry, key string, object and encoding at their allocator sizes); it is the
//! `allocated_bytes` of the rows. Redis does not say what was requested, so
//! `requested_bytes` is 0.

use std::collections::{BTreeMap, HashSet};
use std::io;

use fraglab_reports::{AggregateRow, Aggregates};

use super::conn::Conn;
use super::resp::{bad, bulk, command};

/// The most keys read back; a larger keyspace is not inventoried (it would take longer than
/// the run).
pub(super) const INVENTORY_MAX_KEYS: u64 = 200_000;
/// Keys per `SCAN` step.
const SCAN_COUNT: &[u8] = b"1000";

/// A status reply's text (`+hash`), or an error.
fn status(c: &mut Conn) -> io::Result<String> {
    let line = c.line()?;
    match line.split_first() {
        Some((b'+', rest)) => Ok(String::from_utf8_lossy(rest).into_owned()),
        Some((b'-', rest)) => Err(bad(format!(
            "error reply: {}",
            String::from_utf8_lossy(rest)
        ))),
        _ => Err(bad(format!(
            "expected a status reply, found `{}`",
            String::from_utf8_lossy(line)
        ))),
    }
}

/// An integer reply.
fn int(c: &mut Conn) -> io::Result<u64> {
    let line = c.line()?;
    match line.split_first() {
        Some((b':', rest)) => std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("a malformed integer reply".into())),
        // MEMORY USAGE of a key that went away (expired) is nil.
        Some((b'$', b"-1")) => Ok(0),
        _ => Err(bad(format!(
            "expected an integer reply, found `{}`",
            String::from_utf8_lossy(line)
        ))),
    }
}

/// One `SCAN` step: the next cursor and the keys.
fn scan(c: &mut Conn) -> io::Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let head = c.line()?.to_vec();
    if head != b"*2" {
        return Err(bad(format!(
            "SCAN: expected a 2-element array, found `{}`",
            String::from_utf8_lossy(&head)
        )));
    }
    let cursor = bulk(c)?;
    let line = c.line()?.to_vec();
    let n: usize = line
        .strip_prefix(b"*")
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n <= 100_000)
        .ok_or_else(|| bad("SCAN: a malformed key array".into()))?;
    let keys = (0..n).map(|_| bulk(c)).collect::<io::Result<_>>()?;
    Ok((cursor, keys))
}

/// Reads every aggregate key's type, encoding, length and memory usage.
pub(super) fn inventory(conn: &mut Conn) -> io::Result<Aggregates> {
    let mut held: BTreeMap<(String, String), AggregateRow> = BTreeMap::new();
    // SCAN may return a key twice (the lookups below step the dict's rehash along, and a
    // rehash that ends between two SCAN calls can do that): each key counts once.
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut cursor = b"0".to_vec();
    loop {
        let (next, mut keys) =
            conn.exchange(&command(&[b"SCAN", &cursor, b"COUNT", SCAN_COUNT]), scan)?;
        keys.retain(|k| seen.insert(k.clone()));
        let mut out = Vec::new();
        for k in &keys {
            out.extend(command(&[b"TYPE", k]));
        }
        let types: Vec<String> = conn.exchange(&out, |c| {
            keys.iter().map(|_| status(c)).collect::<io::Result<_>>()
        })?;
        let aggs: Vec<(&Vec<u8>, &String)> = keys
            .iter()
            .zip(&types)
            .filter(|(_, t)| matches!(t.as_str(), "hash" | "set" | "list" | "zset"))
            .collect();
        let mut out = Vec::new();
        for (k, t) in &aggs {
            let len: &[u8] = match t.as_str() {
                "hash" => b"HLEN",
                "set" => b"SCARD",
                "list" => b"LLEN",
                _ => b"ZCARD",
            };
            out.extend(command(&[b"OBJECT", b"ENCODING", k]));
            out.extend(command(&[len, k]));
            out.extend(command(&[b"MEMORY", b"USAGE", k, b"SAMPLES", b"0"]));
        }
        let facts: Vec<(String, u64, u64)> = conn.exchange(&out, |c| {
            aggs.iter()
                .map(|_| {
                    let enc = String::from_utf8_lossy(&bulk(c)?).into_owned();
                    Ok((enc, int(c)?, int(c)?))
                })
                .collect::<io::Result<_>>()
        })?;
        for ((_, t), (enc, len, usage)) in aggs.iter().zip(facts) {
            let row = held
                .entry(((*t).clone(), enc.clone()))
                .or_insert_with(|| AggregateRow {
                    agg_type: (*t).clone(),
                    encoding: enc,
                    keys: 0,
                    elements: 0,
                    requested_bytes: 0,
                    allocated_bytes: 0,
                });
            row.keys += 1;
            row.elements += len;
            row.allocated_bytes += usage;
        }
        if next == b"0" {
            break;
        }
        cursor = next;
    }
    Ok(Aggregates {
        held: held.into_values().collect(),
        conversions: Vec::new(),
        commands: 0,
    })
}
