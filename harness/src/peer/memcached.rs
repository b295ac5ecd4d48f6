//! The memcached peer: the text protocol, `stats`, `stats slabs` and `stats items`.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write as _};

use fraglab_allocators::AllocSpec;
use fraglab_engine::Policy;
use fraglab_reports::{AllocatorDetail, Memory, ServerInfo, SlabClassDetail, SlabDetail};
use fraglab_workloads::{Key, Op, OpKind, KEY_MAX};

use super::conn::Conn;
use super::protocol::{Expect, Outcome, Peer, Pending, ServerFigures};
use super::server::{Launch, Server};
use crate::spec::RunSpec;

/// memcached's `-m` when the run has no memory limit: 64 GiB, so nothing is evicted.
pub const UNLIMITED_MB: u64 = 65536;
/// Bytes memcached adds to key + value for an item fraglab writes: the item header (48), the
/// CAS value (8), the key's NUL (1) and the value's CRLF (2); client flags are 0, so no
/// flags bytes.
pub const ITEM_OVERHEAD: u64 = 48 + 8 + 1 + 2;
/// A multi-key get is split into lines of at most this many bytes.
const MAX_GET_LINE: usize = 2000;
/// memcached reads an exptime above 30 days as an absolute Unix time.
const RELATIVE_EXPTIME_MAX: u32 = 30 * 24 * 3600;

type Stats = HashMap<String, String>;

/// The statistics of one sample.
#[derive(Debug, Default)]
struct Raw {
    stats: Stats,
    slabs: Stats,
    items: Stats,
}

/// A running memcached and a connection to it.
#[derive(Debug)]
pub(crate) struct Memcached {
    server: Server,
    conn: Conn,
    version: String,
    settings: BTreeMap<String, String>,
    rss_baseline: u64,
    last: Raw,
}

/// Reads `STAT name value` lines up to `END`.
fn stats_block(c: &mut Conn) -> io::Result<Stats> {
    let mut out = Stats::new();
    loop {
        let line = c.line()?;
        if line == b"END" {
            return Ok(out);
        }
        let text = String::from_utf8_lossy(line);
        let mut it = text.splitn(3, ' ');
        match (it.next(), it.next()) {
            (Some("STAT"), Some(name)) => {
                out.insert(name.to_string(), it.next().unwrap_or("").to_string());
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected reply to stats: {text}"),
                ))
            }
        }
    }
}

fn num(s: &Stats, name: &str) -> u64 {
    s.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn pid_of(port: u16) -> io::Result<u32> {
    let mut c = Conn::connect(port)?;
    let stats = c.exchange(b"stats\r\n", stats_block)?;
    stats
        .get("pid")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no pid in stats"))
}

/// memcached's arguments for `spec`, after `-l 127.0.0.1 -p PORT`.
pub(crate) fn args(spec: &RunSpec) -> Result<Vec<String>, String> {
    let AllocSpec::Slab(c) = &spec.alloc else {
        return Err(
            "the memcached target models the slab allocator: use --alloc slab[:...]".into(),
        );
    };
    let mb = spec
        .memory
        .map_or(UNLIMITED_MB, |b| b.div_ceil(1 << 20).max(1));
    let mut opts = format!("slab_chunk_max={},slab_automove=0", c.chunk_max);
    if let Some(sizes) = &c.sizes {
        let list: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
        opts += &format!(",slab_sizes={}", list.join("-"));
    }
    let mut a: Vec<String> = [
        "-U",
        "0",
        "-t",
        "1",
        "-m",
        &mb.to_string(),
        "-f",
        &c.factor.to_string(),
        "-n",
        &c.min.to_string(),
        "-I",
        &c.item_max.to_string(),
        "-o",
        &opts,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if spec.policy == Policy::Noeviction {
        a.push("-M".into());
    }
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // memcached refuses to run as root without being told which user to be.
        a.extend(["-u".into(), "root".into()]);
    }
    Ok(a)
}

/// The exptime memcached gets for a TTL.
fn exptime(ttl: u32) -> u64 {
    if ttl > RELATIVE_EXPTIME_MAX {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // memcached parses exptime into an int32_t: past 2^31 it would wrap negative and the
        // item would be born expired. The latest time it can hold is as far as it goes.
        (now + u64::from(ttl)).min(i32::MAX as u64)
    } else {
        u64::from(ttl)
    }
}

/// An error line as the replay counts it.
fn error_outcome(line: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(line);
    if text.starts_with("SERVER_ERROR out of memory") {
        Outcome::Oom
    } else if text.starts_with("SERVER_ERROR object too large") {
        Outcome::Error("value_too_large".into())
    } else if text.starts_with("CLIENT_ERROR cannot increment or decrement non-numeric") {
        Outcome::Error("not_an_integer".into())
    } else {
        Outcome::Error(format!(
            "other: {}",
            text.chars().take(80).collect::<String>()
        ))
    }
}

impl Memcached {
    /// Starts memcached for `spec` and connects to it.
    pub fn start(spec: &RunSpec) -> Result<Memcached, String> {
        let extra = args(spec)?;
        let make = |port: u16| {
            let mut a: Vec<String> = vec![
                "-l".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ];
            a.extend(extra.iter().cloned());
            a
        };
        let server = Server::start(&Launch {
            program: "memcached",
            package: "memcached",
            args: &make,
            pid_of: &pid_of,
            port_taken: &["failed to listen", "Address already in use"],
        })?;
        eprintln!(
            "started memcached pid {} on 127.0.0.1:{}",
            server.pid(),
            server.port
        );
        let io = |e: io::Error| format!("memcached (pid {}): {e}", server.pid());
        let mut conn = Conn::connect(server.port).map_err(io)?;
        let settings = conn
            .exchange(b"stats settings\r\n", stats_block)
            .map_err(io)?;
        let stats = conn.exchange(b"stats\r\n", stats_block).map_err(io)?;
        let rss_baseline = server.rss();
        Ok(Memcached {
            version: stats.get("version").cloned().unwrap_or_default(),
            settings: settings.into_iter().collect(),
            rss_baseline,
            last: Raw::default(),
            conn,
            server,
        })
    }
}

/// Appends the text-protocol requests for `op` (see the module docs of `peer`).
fn encode_op(
    op: &Op,
    value: &[u8],
    out: &mut Vec<u8>,
    pending: &mut Vec<Pending>,
) -> Result<(), &'static str> {
    if op.key.len > KEY_MAX {
        return Err("key_too_long");
    }
    if op.key.len == 0 {
        return Err("empty_key");
    }
    let mut push = |expect| pending.push(Pending { op: *op, expect });
    match op.kind {
        OpKind::Get | OpKind::Gets => {
            out.extend_from_slice(if op.kind == OpKind::Get {
                b"get "
            } else {
                b"gets "
            });
            op.key.write_to(out);
            out.extend_from_slice(b"\r\n");
            push(Expect::Retrieval);
        }
        OpKind::Set | OpKind::Add | OpKind::Replace | OpKind::Cas => {
            out.extend_from_slice(match op.kind {
                OpKind::Set => b"set ",
                OpKind::Add => b"add ",
                _ => b"replace ",
            });
            op.key.write_to(out);
            let _ = write!(out, " 0 {} {}\r\n", exptime(op.ttl), value.len());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
            push(Expect::Store);
        }
        OpKind::Append | OpKind::Prepend => {
            out.extend_from_slice(if op.kind == OpKind::Append {
                b"append "
            } else {
                b"prepend "
            });
            op.key.write_to(out);
            let _ = write!(out, " 0 0 {}\r\n", value.len());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
            push(Expect::Concat);
        }
        OpKind::Incr | OpKind::Decr => {
            out.extend_from_slice(if op.kind == OpKind::Incr {
                b"incr "
            } else {
                b"decr "
            });
            op.key.write_to(out);
            out.extend_from_slice(b" 1\r\n");
            push(Expect::Arith);
        }
        OpKind::Delete => {
            out.extend_from_slice(b"delete ");
            op.key.write_to(out);
            out.extend_from_slice(b"\r\n");
            push(Expect::Delete);
        }
        OpKind::Touch => {
            out.extend_from_slice(b"touch ");
            op.key.write_to(out);
            let _ = write!(out, " {}\r\n", exptime(op.ttl));
            push(Expect::Touch);
        }
        OpKind::Scan => {
            let mut line_start = None;
            for i in 0..u64::from(op.value_len) {
                if let Some(s) = line_start {
                    if out.len() - s + usize::from(op.key.len) + 3 > MAX_GET_LINE {
                        out.extend_from_slice(b"\r\n");
                        push(Expect::Multi);
                        line_start = None;
                    }
                }
                if line_start.is_none() {
                    line_start = Some(out.len());
                    out.extend_from_slice(b"get");
                }
                out.push(b' ');
                Key {
                    id: op.key.id.wrapping_add(i),
                    len: op.key.len,
                }
                .write_to(out);
            }
            if line_start.is_some() {
                out.extend_from_slice(b"\r\n");
                push(Expect::Multi);
            }
        }
    }
    Ok(())
}

impl Peer for Memcached {
    fn server(&mut self) -> &mut Server {
        &mut self.server
    }

    fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    fn encode(
        &mut self,
        op: &Op,
        value: &[u8],
        out: &mut Vec<u8>,
        pending: &mut Vec<Pending>,
    ) -> Result<(), &'static str> {
        encode_op(op, value, out, pending)
    }

    fn read(c: &mut Conn, expect: Expect) -> io::Result<Outcome> {
        match expect {
            Expect::Retrieval | Expect::Multi => {
                let mut hit = false;
                loop {
                    let line = c.line()?;
                    if line == b"END" {
                        return Ok(if hit { Outcome::Hit } else { Outcome::Miss });
                    }
                    if let Some(rest) = line.strip_prefix(b"VALUE ") {
                        let n = String::from_utf8_lossy(rest)
                            .split(' ')
                            .nth(2)
                            .and_then(|n| n.parse::<usize>().ok())
                            .ok_or_else(|| {
                                io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    format!(
                                        "a malformed VALUE line: {}",
                                        String::from_utf8_lossy(line)
                                    ),
                                )
                            })?;
                        let n = n.checked_add(2).ok_or_else(|| {
                            std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                "a VALUE line with an impossible length",
                            )
                        })?;
                        c.skip(n)?;
                        hit = true;
                        continue;
                    }
                    return Ok(error_outcome(line));
                }
            }
            _ => {
                let line = c.line()?;
                Ok(match (expect, line) {
                    (Expect::Store | Expect::Concat, b"STORED") => Outcome::Stored,
                    (Expect::Store | Expect::Concat, b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND") => {
                        Outcome::NotStored
                    }
                    (Expect::Arith, l) if !l.is_empty() && l.iter().all(u8::is_ascii_digit) => {
                        Outcome::Len(l.len() as u64)
                    }
                    (Expect::Delete, b"DELETED") => Outcome::Deleted,
                    (Expect::Touch, b"TOUCHED") => Outcome::Touched,
                    (Expect::Arith | Expect::Delete | Expect::Touch, b"NOT_FOUND") => {
                        Outcome::NotFound
                    }
                    (_, l) => error_outcome(l),
                })
            }
        }
    }

    fn sample(&mut self, _settle: bool, _payload: u64) -> io::Result<ServerFigures> {
        // `stats items` sums each class's sub-LRUs (hot, warm, cold) one lock at a time, and the
        // LRU maintainer thread moves items between them meanwhile, so one reading can count an
        // item twice or not at all. Read until two readings in a row agree (at most 8).
        let fingerprint = |raw: &Raw| -> Vec<String> {
            let mut f: Vec<String> = raw
                .items
                .iter()
                .filter(|(k, _)| k.ends_with(":mem_requested") || k.ends_with(":number"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            f.sort();
            f.push(raw.stats.get("curr_items").cloned().unwrap_or_default());
            f
        };
        let mut last: Option<Vec<String>> = None;
        let mut raw;
        let mut tries = 0;
        loop {
            raw = self
                .conn
                .exchange(b"stats\r\nstats slabs\r\nstats items\r\n", |c| {
                    Ok(Raw {
                        stats: stats_block(c)?,
                        slabs: stats_block(c)?,
                        items: stats_block(c)?,
                    })
                })?;
            let f = fingerprint(&raw);
            tries += 1;
            if last.as_ref() == Some(&f) || tries >= 8 {
                break;
            }
            last = Some(f);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let s = &raw.stats;
        let items = num(s, "curr_items");
        let requested: u64 = raw
            .items
            .iter()
            .filter(|(k, _)| k.ends_with(":mem_requested"))
            .map(|(_, v)| v.parse::<u64>().unwrap_or(0))
            .sum();
        let allocated: u64 = classes(&raw)
            .values()
            .map(|c| c.used_chunks * c.chunk_size)
            .sum();
        let f = ServerFigures {
            memory: Memory {
                items,
                payload_bytes: requested.saturating_sub(items * ITEM_OVERHEAD),
                requested_bytes: requested,
                allocated_bytes: allocated,
                footprint_bytes: num(s, "total_malloced").max(num(&raw.slabs, "total_malloced")),
                index_bytes: num(s, "hash_bytes"),
                rss_bytes: self.server.rss(),
            },
            hits: num(s, "get_hits"),
            misses: num(s, "get_misses"),
            evictions: num(s, "evictions"),
            expired: num(s, "get_expired") + num(s, "reclaimed") + num(s, "crawler_reclaimed"),
        };
        self.last = raw;
        Ok(f)
    }

    fn tracks_payload(&self) -> bool {
        false
    }

    fn rss_baseline(&self) -> u64 {
        self.rss_baseline
    }

    fn detail(&self) -> AllocatorDetail {
        let raw = &self.last;
        SlabDetail {
            total_malloced: num(&raw.slabs, "total_malloced"),
            limit_maxbytes: Some(num(&raw.stats, "limit_maxbytes")),
            pool_pages: num(&raw.stats, "slab_global_page_pool"),
            pages_past_limit: None,
            classes: classes(raw)
                .into_iter()
                .filter(|(_, c)| c.total_pages > 0)
                .map(|(id, c)| SlabClassDetail { class: id, ..c })
                .collect(),
        }
        .into()
    }

    fn library_versions(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("memcached".to_string(), self.version.clone())])
    }

    fn server_info(&self) -> ServerInfo {
        ServerInfo {
            program: "memcached".into(),
            version: self.version.clone(),
            args: self.server.command.clone(),
            config: self.settings.clone(),
        }
    }
}

/// The classes of a sample, by id.
fn classes(raw: &Raw) -> BTreeMap<u32, SlabClassDetail> {
    let mut out: BTreeMap<u32, SlabClassDetail> = BTreeMap::new();
    for (name, value) in &raw.slabs {
        let Some((id, field)) = name.split_once(':') else {
            continue;
        };
        let (Ok(id), Ok(v)) = (id.parse::<u32>(), value.parse::<u64>()) else {
            continue;
        };
        let c = out.entry(id).or_default();
        match field {
            "chunk_size" => c.chunk_size = v,
            "chunks_per_page" => c.chunks_per_page = v,
            "total_pages" => c.total_pages = v,
            "used_chunks" => c.used_chunks = v,
            "free_chunks" => c.free_chunks = v,
            _ => {}
        }
    }
    for (name, value) in &raw.items {
        let mut it = name.splitn(3, ':');
        let (Some("items"), Some(id), Some(field)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Ok(id), Ok(v)) = (id.parse::<u32>(), value.parse::<u64>()) else {
            continue;
        };
        match field {
            "mem_requested" => out.entry(id).or_default().mem_requested = v,
            "evicted" => out.entry(id).or_default().evicted = Some(v),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The requests `Memcached::encode` writes for `op`, without a server.
    fn encode(op: Op, value: &[u8]) -> (String, Vec<Expect>) {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        encode_op(&op, value, &mut out, &mut pending).unwrap();
        (
            String::from_utf8(out).unwrap(),
            pending.iter().map(|p| p.expect).collect(),
        )
    }

    fn op(kind: OpKind, len: u16, value_len: u32, ttl: u32) -> Op {
        Op {
            time_us: 0,
            kind,
            key: Key { id: 65, len },
            value_len,
            ttl,
            fill: false,
            phase: 0,
        }
    }

    #[test]
    fn ops_become_text_protocol_commands() {
        assert_eq!(
            encode(op(OpKind::Set, 5, 3, 0), b"ABC"),
            ("set 11... 0 0 3\r\nABC\r\n".into(), vec![Expect::Store])
        );
        assert_eq!(
            encode(op(OpKind::Cas, 3, 1, 60), b"A").0,
            "replace 11. 0 60 1\r\nA\r\n"
        );
        assert_eq!(encode(op(OpKind::Gets, 2, 9, 0), b"").0, "gets 11\r\n");
        assert_eq!(encode(op(OpKind::Decr, 2, 0, 0), b"").0, "decr 11 1\r\n");
        assert_eq!(encode(op(OpKind::Touch, 2, 0, 7), b"").0, "touch 11 7\r\n");
        assert_eq!(
            encode(op(OpKind::Prepend, 2, 2, 9), b"AB").0,
            "prepend 11 0 0 2\r\nAB\r\n"
        );
        // A TTL past 30 days is sent as an absolute time.
        let (t, _) = encode(op(OpKind::Set, 2, 0, 40 * 86_400), b"");
        let abs: u64 = t.split(' ').nth(3).unwrap().parse().unwrap();
        assert!(abs > 1_600_000_000, "{t}");
    }

    #[test]
    fn a_scan_is_split_into_get_lines() {
        let (text, expects) = encode(op(OpKind::Scan, 200, 30, 0), b"");
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), expects.len());
        assert!(lines.len() > 1);
        let keys: usize = lines
            .iter()
            .map(|l| {
                assert!(l.len() <= MAX_GET_LINE, "{}", l.len());
                assert!(l.starts_with("get "));
                l.split(' ').count() - 1
            })
            .sum();
        assert_eq!(keys, 30);
        assert_eq!(encode(op(OpKind::Scan, 5, 0, 0), b"").0, "");
    }

    #[test]
    fn long_and_empty_keys_are_not_sent() {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        let e = encode_op(&op(OpKind::Get, 251, 0, 0), b"", &mut out, &mut pending);
        assert_eq!(e, Err("key_too_long"));
        let e = encode_op(&op(OpKind::Get, 0, 0, 0), b"", &mut out, &mut pending);
        assert_eq!(e, Err("empty_key"));
        assert!(out.is_empty() && pending.is_empty());
    }

    #[test]
    fn error_replies_are_classified() {
        assert_eq!(
            error_outcome(b"SERVER_ERROR out of memory storing object"),
            Outcome::Oom
        );
        assert_eq!(
            error_outcome(b"SERVER_ERROR object too large for cache"),
            Outcome::Error("value_too_large".into())
        );
        assert_eq!(
            error_outcome(b"CLIENT_ERROR cannot increment or decrement non-numeric value"),
            Outcome::Error("not_an_integer".into())
        );
        assert_eq!(
            error_outcome(b"ERROR"),
            Outcome::Error("other: ERROR".into())
        );
    }
}
