//! The memcached peer: the server started and checked, and its `stats`, `stats slabs` and
//! `stats items` read into samples (the protocol is [`super::text`]).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::time::{Duration, Instant};

use fraglab_allocators::AllocSpec;
use fraglab_engine::Policy;
use fraglab_reports::{
    AllocatorDetail, Memory, ServerInfo, SlabClassDetail, SlabDetail, SlabMoves,
};
use fraglab_workloads::Op;

use super::conn::Conn;
use super::protocol::{Expect, Outcome, Peer, Pending, ServerFigures};
use super::server::{Launch, Server};
use super::text::encode_op;
use crate::spec::RunSpec;

/// memcached's `-m` when the run has no memory limit: 64 GiB, so nothing is evicted.
pub const UNLIMITED_MB: u64 = 65536;
/// Bytes memcached adds to key + value for an item fraglab writes: the item header (48), the
/// CAS value (8), the key's NUL (1) and the value's CRLF (2); client flags are 0, so no
/// flags bytes.
pub const ITEM_OVERHEAD: u64 = 48 + 8 + 1 + 2;
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
pub(crate) struct MemcachedPeer {
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

/// How long [`MemcachedPeer::clock_tick`] waits for memcached's clock to move: it moves once a
/// second (`clock_handler` in `memcached.c`).
const TICK_WAIT: Duration = Duration::from_millis(2500);
/// The pause between two readings of memcached's clock while waiting for it to move.
const TICK_POLL: Duration = Duration::from_micros(500);

/// memcached's clock: `stats`' `time` (`process_started + current_time`, whole seconds).
fn server_time(c: &mut Conn) -> io::Result<u64> {
    let stats = c.exchange(b"stats\r\n", stats_block)?;
    stats
        .get("time")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "memcached's stats have no time"))
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
    let mut opts = format!("slab_chunk_max={}", c.chunk_max);
    match &c.automove {
        // The page mover and the automover with the spec's settings (`memcached.c`'s `-o`
        // parser: `slab_reassign`, `slab_automove`, `slab_automove_ratio`,
        // `slab_automove_window`).
        Some(a) => {
            opts += &format!(
                ",slab_reassign,slab_automove={},slab_automove_ratio={},slab_automove_window={}",
                a.mode, a.ratio, a.window
            )
        }
        None => opts += ",slab_automove=0",
    }
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
    if let Some(file) = &c.file {
        // The memory file of a warm restart (`memcached.c`'s `-e`, `restart.c`): the slab
        // pages live in it, and a graceful shutdown (SIGUSR1) writes `FILE.meta` beside it.
        a.extend(["-e".into(), file.display().to_string()]);
    }
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // memcached refuses to run as root without being told which user to be.
        a.extend(["-u".into(), "root".into()]);
    }
    Ok(a)
}

impl MemcachedPeer {
    /// Starts memcached for `spec` and connects to it.
    pub fn start(spec: &RunSpec) -> Result<MemcachedPeer, String> {
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
        crate::note!(
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
        Ok(MemcachedPeer {
            version: stats.get("version").cloned().unwrap_or_default(),
            settings: settings.into_iter().collect(),
            rss_baseline,
            last: Raw::default(),
            conn,
            server,
        })
    }
}

impl Peer for MemcachedPeer {
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
        super::text::read_outcome(c, expect)
    }

    /// memcached's `current_time` moves when its `clock_handler` (`memcached.c`) runs, once a
    /// second from the server's start (a libevent timer, not the wall clock's second), and its
    /// LRU maintainer runs the slab automover once per value of it (`items.c`,
    /// `lru_maintainer_thread`): the items a second's ops store share a time, and the
    /// automover's windows are those seconds. Reads `stats`' `time` every half millisecond
    /// until it moves; the tick fell between the last two readings (their midpoint is taken).
    fn clock_tick(&mut self) -> io::Result<Option<Instant>> {
        let began = Instant::now();
        let mut asked = Instant::now();
        let first = server_time(&mut self.conn)?;
        loop {
            std::thread::sleep(TICK_POLL);
            let now = Instant::now();
            if server_time(&mut self.conn)? != first {
                return Ok(Some(asked + (now - asked) / 2));
            }
            asked = now;
            if began.elapsed() > TICK_WAIT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "memcached's clock (`stats` time) did not move in {} ms",
                        TICK_WAIT.as_millis()
                    ),
                ));
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
            moves: self.moves(),
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
            pacing: None,
        }
    }
}

impl MemcachedPeer {
    /// The process id of the server answering.
    pub(crate) fn server_pid(&self) -> u32 {
        self.server.pid()
    }

    /// The page mover's counters from `stats`, when the automover is on or a page moved (the
    /// engine's model writes them on the same condition).
    fn moves(&self) -> Option<SlabMoves> {
        let s = &self.last.stats;
        let automove = self
            .settings
            .get("slab_automove")
            .and_then(|v| v.parse::<u8>().ok())
            .unwrap_or(0);
        let moved = num(s, "slabs_moved");
        (automove != 0 || moved > 0).then(|| SlabMoves {
            slab_automove: automove,
            slabs_moved: moved,
            slab_reassign_rescues: num(s, "slab_reassign_rescues"),
            slab_reassign_chunk_rescues: num(s, "slab_reassign_chunk_rescues"),
            slab_reassign_evictions_nomem: num(s, "slab_reassign_evictions_nomem"),
        })
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
