//! The Redis peer: the server started, warmed up and checked, and `INFO` and `CLIENT INFO` read
//! on a fresh connection per sample (the protocol is [`super::resp`]).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::time::Duration;

use fraglab_engine::Policy;
use fraglab_reports::{AllocatorDetail, Memory, RedisDetail, ServerInfo};
use fraglab_workloads::Op;

use super::conn::Conn;
use super::protocol::{Expect, Outcome, Peer, Pending, ServerFigures};
use super::resp::{bad, bulk, command, encode_op, reply, strings, Reply};
use super::server::{Launch, Server};
use crate::spec::RunSpec;

/// Redis's name for an engine eviction policy, if Redis has it.
pub fn redis_policy(p: Policy) -> Option<&'static str> {
    Some(match p {
        Policy::SampledLru => "allkeys-lru",
        Policy::Lfu => "allkeys-lfu",
        Policy::Random => "allkeys-random",
        Policy::VolatileLru => "volatile-lru",
        Policy::VolatileTtl => "volatile-ttl",
        Policy::VolatileRandom => "volatile-random",
        Policy::Noeviction => "noeviction",
        Policy::SlabLru | Policy::Lru | Policy::Fifo => return None,
    })
}

/// Settings recorded in `server.config` (`CONFIG GET`).
const CONFIG: &[&str] = &[
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "maxmemory-eviction-tenacity",
    "hz",
    "dynamic-hz",
    "activedefrag",
    "active-expire-effort",
    "activerehashing",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "lazyfree-lazy-user-del",
    "lfu-log-factor",
    "lfu-decay-time",
    "latency-tracking",
    "jemalloc-bg-thread",
    "io-threads",
    "save",
    "appendonly",
    "bind",
    "port",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "set-max-intset-entries",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "list-max-listpack-size",
];

/// How long the baseline and phase-end samples wait for Redis's cron (every 100 ms at the
/// default `hz 10`) to refresh `allocator_active` and `used_memory_rss`.
const SETTLE: Duration = Duration::from_millis(150);
/// How long a sample waits for the server to free the closed data connection.
const CLIENT_FREE_TIMEOUT: Duration = Duration::from_secs(5);

type Info = HashMap<String, String>;

/// `INFO`'s text as a map (the `# Section` lines dropped).
fn parse_info(text: &[u8]) -> Info {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// `CLIENT INFO`'s `name=value` fields.
fn parse_client(text: &[u8]) -> Info {
    String::from_utf8_lossy(text)
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn num(i: &Info, name: &str) -> u64 {
    i.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Keys of db0 (`db0:keys=N,expires=M,avg_ttl=T`).
fn db0_keys(i: &Info) -> u64 {
    i.get("db0")
        .and_then(|v| {
            v.split(',')
                .find_map(|f| f.strip_prefix("keys="))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn pid_of(port: u16) -> io::Result<u32> {
    let mut c = Conn::connect(port)?;
    let info = parse_info(&c.exchange(&command(&[b"INFO", b"server"]), bulk)?);
    // The replay reads `CLIENT INFO` (Redis 6.2) and `CONFIG GET` with several parameters
    // (Redis 7.0), and the model is of Redis 7.0.
    let version = info.get("redis_version").cloned().unwrap_or_default();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 7 {
        return Err(bad(format!(
            "redis-server {version} is older than 7.0, which the redis target needs"
        )));
    }
    num(&info, "process_id")
        .try_into()
        .ok()
        .filter(|&p: &u32| p > 0)
        .ok_or_else(|| bad("no process_id in INFO server".into()))
}

/// The baseline: figures after the warm-up, before any data.
#[derive(Debug, Default)]
struct Base {
    used_memory: u64,
    allocator_active: u64,
    rss: u64,
    hits: u64,
    misses: u64,
    evicted: u64,
    expired: u64,
}

/// A running redis-server and a connection to it.
#[derive(Debug)]
pub(crate) struct RedisPeer {
    server: Server,
    conn: Conn,
    version: String,
    mem_allocator: String,
    config: BTreeMap<String, String>,
    base: Base,
    last: Info,
    /// The server's working directory, its own: a BGSAVE writes `dump.rdb` there, and no
    /// `dump.rdb` left elsewhere is loaded at the start. Removed after the server stops (the
    /// fields drop in order).
    _dir: tempfile::TempDir,
}

impl RedisPeer {
    /// Starts redis-server for `spec`, warms its commands up and takes the baseline.
    pub fn start(spec: &RunSpec) -> Result<RedisPeer, String> {
        let policy = redis_policy(spec.policy)
            .ok_or_else(|| format!("the redis target has no policy `{}`", spec.policy.name()))?;
        let memory = spec.memory;
        let agg = spec.agg;
        let dir = tempfile::Builder::new()
            .prefix("fraglab-redis-")
            .tempdir()
            .map_err(|e| format!("a directory for redis-server: {e}"))?;
        let dir_arg = dir.path().display().to_string();
        let make = |port: u16| {
            let mut a: Vec<String> = [
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--dir",
                &dir_arg,
                "--save",
                "",
                "--appendonly",
                "no",
                "--activerehashing",
                "no",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            // The encoding thresholds the model runs with (Redis 7.0's defaults unless the
            // layout says otherwise).
            let c = &agg;
            for (name, v) in fraglab_engine::agg::AggConfig::PARAMS.iter().zip([
                c.hash_max_listpack_entries as i64,
                c.hash_max_listpack_value as i64,
                c.set_max_intset_entries as i64,
                c.zset_max_listpack_entries as i64,
                c.zset_max_listpack_value as i64,
                c.list_max_listpack_size,
            ]) {
                a.extend([format!("--{name}"), v.to_string()]);
            }
            if let Some(m) = memory {
                a.extend([
                    "--maxmemory".into(),
                    m.to_string(),
                    "--maxmemory-policy".into(),
                    policy.into(),
                ]);
            }
            a
        };
        let server = Server::start(&Launch {
            program: "redis-server",
            package: "redis-server",
            args: &make,
            pid_of: &pid_of,
            port_taken: &["Address already in use"],
        })?;
        crate::note!(
            "started redis-server pid {} on 127.0.0.1:{}",
            server.pid(),
            server.port
        );
        let pid = server.pid();
        let io = |e: io::Error| format!("redis-server (pid {pid}): {e}");
        let conn = Conn::connect(server.port).map_err(io)?;
        let mut r = RedisPeer {
            server,
            conn,
            version: String::new(),
            mem_allocator: String::new(),
            config: BTreeMap::new(),
            base: Base::default(),
            last: Info::new(),
            _dir: dir,
        };
        r.warm_up().map_err(io)?;
        let info = r.fresh_info(true).map_err(io)?;
        r.version = info.get("redis_version").cloned().unwrap_or_default();
        r.mem_allocator = info.get("mem_allocator").cloned().unwrap_or_default();
        r.base = Base {
            used_memory: num(&info, "used_memory"),
            allocator_active: num(&info, "allocator_active"),
            rss: num(&info, "used_memory_rss"),
            hits: num(&info, "keyspace_hits"),
            misses: num(&info, "keyspace_misses"),
            evicted: num(&info, "evicted_keys"),
            expired: num(&info, "expired_keys"),
        };
        r.last = info;
        Ok(r)
    }

    /// Runs every command the replay can send once on a scratch key (Redis allocates a
    /// latency histogram on each command's first use), and reads the configuration.
    fn warm_up(&mut self) -> io::Result<()> {
        let mut out = Vec::new();
        let cmds: &[&[&[u8]]] = &[
            &[b"SET", b"fraglab:warm", b"1", b"EX", b"100"],
            &[b"SET", b"fraglab:warm", b"1", b"NX"],
            &[b"SET", b"fraglab:warm", b"1", b"XX"],
            &[b"GET", b"fraglab:warm"],
            &[b"APPEND", b"fraglab:warm", b"2"],
            &[b"INCRBY", b"fraglab:warm", b"1"],
            &[b"DECRBY", b"fraglab:warm", b"1"],
            &[b"EXPIRE", b"fraglab:warm", b"100"],
            &[b"PERSIST", b"fraglab:warm"],
            &[b"MGET", b"fraglab:warm", b"fraglab:warm"],
            &[b"DEL", b"fraglab:warm"],
            &[b"HSET", b"fraglab:warm", b"f", b"1"],
            &[b"HGET", b"fraglab:warm", b"f"],
            &[b"HINCRBY", b"fraglab:warm", b"f", b"1"],
            &[b"HGETALL", b"fraglab:warm"],
            &[b"HDEL", b"fraglab:warm", b"f"],
            &[b"SADD", b"fraglab:warm", b"1"],
            &[b"SISMEMBER", b"fraglab:warm", b"1"],
            &[b"SCARD", b"fraglab:warm"],
            &[b"SREM", b"fraglab:warm", b"1"],
            &[b"SPOP", b"fraglab:warm"],
            &[b"LPUSH", b"fraglab:warm", b"1"],
            &[b"RPUSH", b"fraglab:warm", b"1"],
            &[b"LRANGE", b"fraglab:warm", b"0", b"1"],
            &[b"LTRIM", b"fraglab:warm", b"0", b"1"],
            &[b"LPOP", b"fraglab:warm"],
            &[b"RPOP", b"fraglab:warm"],
            &[b"ZADD", b"fraglab:warm", b"1", b"m"],
            &[b"ZSCORE", b"fraglab:warm", b"m"],
            &[b"ZINCRBY", b"fraglab:warm", b"1", b"m"],
            &[b"ZRANGE", b"fraglab:warm", b"0", b"1"],
            &[b"ZREM", b"fraglab:warm", b"m"],
            &[b"ZPOPMIN", b"fraglab:warm"],
            &[b"INFO"],
            &[b"CLIENT", b"INFO"],
        ];
        for c in cmds {
            out.extend(command(c));
        }
        self.conn.exchange(&out, |c| {
            for _ in cmds {
                if let Reply::Error(e) = reply(c)? {
                    return Err(bad(format!("warm-up: {e}")));
                }
            }
            Ok(())
        })?;
        let mut get: Vec<&[u8]> = vec![b"CONFIG", b"GET"];
        get.extend(CONFIG.iter().map(|s| s.as_bytes()));
        let pairs = self.conn.exchange(&command(&get), strings)?;
        self.config = pairs
            .chunks(2)
            .filter_map(|p| match p {
                [k, v] => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect();
        Ok(())
    }

    /// The server's process id.
    pub(crate) fn server_pid(&self) -> u32 {
        self.server.pid()
    }

    /// One section of `INFO` (`persistence`), on the data connection.
    pub(crate) fn info_section(&mut self, section: &str) -> io::Result<Info> {
        let cmd = command(&[b"INFO", section.as_bytes()]);
        Ok(parse_info(&self.conn.exchange(&cmd, bulk)?))
    }

    /// `INFO` on a fresh connection, once the server has freed the previous one, with
    /// `used_memory` less the new client's reply buffer (which Redis's cron resizes):
    /// every sample then counts one fresh client, as the baseline does. The new connection
    /// carries the next batches.
    fn fresh_info(&mut self, settle: bool) -> io::Result<Info> {
        let port = self.server.port;
        // Closing the data connection frees its buffers in the server.
        self.conn = Conn::connect(port)?;
        if settle {
            std::thread::sleep(SETTLE);
            self.conn = Conn::connect(port)?;
        }
        let mut out = command(&[b"INFO"]);
        out.extend(command(&[b"CLIENT", b"INFO"]));
        let deadline = std::time::Instant::now() + CLIENT_FREE_TIMEOUT;
        loop {
            let (info, client) = self.conn.exchange(&out, |c| Ok((bulk(c)?, bulk(c)?)))?;
            let mut info = parse_info(&info);
            if num(&info, "connected_clients") == 1 {
                let client = parse_client(&client);
                let reported = num(&info, "used_memory");
                let used = reported.saturating_sub(num(&client, "rbs"));
                info.insert("used_memory".into(), used.to_string());
                info.insert("used_memory_reported".into(), reported.to_string());
                info.insert("client_rbs".into(), num(&client, "rbs").to_string());
                return Ok(info);
            }
            if crate::STOP.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(super::conn::interrupted());
            }
            if std::time::Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the server kept {} clients after ours closed",
                        num(&info, "connected_clients")
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Peer for RedisPeer {
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
        super::resp::read_outcome(c, expect)
    }

    fn sample(&mut self, settle: bool, payload: u64) -> io::Result<ServerFigures> {
        let i = self.fresh_info(settle)?;
        let b = &self.base;
        let allocated = num(&i, "used_memory").saturating_sub(b.used_memory);
        let f = ServerFigures {
            memory: Memory {
                items: db0_keys(&i),
                payload_bytes: payload,
                requested_bytes: allocated,
                allocated_bytes: allocated,
                footprint_bytes: num(&i, "allocator_active").saturating_sub(b.allocator_active),
                index_bytes: 0,
                rss_bytes: num(&i, "used_memory_rss"),
            },
            hits: num(&i, "keyspace_hits").saturating_sub(b.hits),
            misses: num(&i, "keyspace_misses").saturating_sub(b.misses),
            evictions: num(&i, "evicted_keys").saturating_sub(b.evicted),
            expired: num(&i, "expired_keys").saturating_sub(b.expired),
        };
        self.last = i;
        Ok(f)
    }

    fn tracks_payload(&self) -> bool {
        true
    }

    fn rss_baseline(&self) -> u64 {
        self.base.rss
    }

    fn detail(&self) -> AllocatorDetail {
        let i = &self.last;
        RedisDetail {
            used_memory: num(i, "used_memory"),
            used_memory_baseline: self.base.used_memory,
            allocator_allocated: num(i, "allocator_allocated"),
            allocator_active: num(i, "allocator_active"),
            allocator_resident: num(i, "allocator_resident"),
            mem_fragmentation_ratio: i
                .get("mem_fragmentation_ratio")
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0),
            mem_allocator: self.mem_allocator.clone(),
            used_memory_reported: num(i, "used_memory_reported"),
            client_reply_buffer: num(i, "client_rbs"),
        }
        .into()
    }

    fn library_versions(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("redis".to_string(), self.version.clone()),
            ("allocator".to_string(), self.mem_allocator.clone()),
        ])
    }

    fn aggregates(&mut self) -> fraglab_reports::Aggregates {
        let keys = db0_keys(&self.last);
        if keys > super::redis_agg::INVENTORY_MAX_KEYS {
            crate::note!(
                "redis-server holds {keys} keys, more than {}: its aggregates are not read back",
                super::redis_agg::INVENTORY_MAX_KEYS
            );
            return fraglab_reports::Aggregates::default();
        }
        super::redis_agg::inventory(&mut self.conn).unwrap_or_else(|e| {
            crate::note!("reading back redis-server's aggregates failed: {e}");
            fraglab_reports::Aggregates::default()
        })
    }

    fn server_info(&self) -> ServerInfo {
        ServerInfo {
            program: "redis-server".into(),
            version: self.version.clone(),
            args: self.server.command.clone(),
            config: self.config.clone(),
            pacing: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_keyspace_parse() {
        let i = parse_info(
            b"# Memory\r\nused_memory:123\r\n# Keyspace\r\ndb0:keys=7,expires=1,avg_ttl=0\r\n",
        );
        assert_eq!(num(&i, "used_memory"), 123);
        assert_eq!(db0_keys(&i), 7);
        assert_eq!(db0_keys(&Info::new()), 0);
        let c = parse_client(b"id=3 qbuf=26 rbs=16384 tot-mem=37658");
        assert_eq!(num(&c, "rbs"), 16384);
    }
}
