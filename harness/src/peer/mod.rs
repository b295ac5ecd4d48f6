//! Peers: the same workloads replayed into the real memcached and redis-server, measured into
//! the same results schema.
//!
//! `fraglab run --target memcached|redis` (and [`replay`]) starts the server itself from
//! PATH on 127.0.0.1 and a free port in a process group of its own, confirms by process id
//! that the server answering is the one it started or a process of its group, as when the
//! program on PATH is a wrapper script that runs the real server as its child (memcached's
//! `stats` `pid`, Redis's `INFO server` `process_id`), drives it with the workload's op
//! stream over its own protocol, samples its statistics at the same points as an in-process
//! run, and stops the whole group (SIGTERM and SIGCONT, up to 2 s, or 250 ms after Ctrl-C,
//! then SIGKILL) when the run ends, fails or is interrupted (`server` and `group`). A line
//! `started memcached pid N on 127.0.0.1:PORT` goes to stderr when the server is up.
//!
//! # Starting the servers
//!
//! - memcached (the target models the slab allocator, so `--alloc` must be `slab[:...]`):
//!   `memcached -l 127.0.0.1 -p PORT -U 0 -t 1 -m MB -f FACTOR -n MIN -I ITEM_MAX -o
//!   slab_chunk_max=CHUNK_MAX,slab_automove=0[,slab_sizes=A-B-C]` (plus `-u root` when run as
//!   root). MB is `--memory` rounded up to whole MiB; without a limit it is 65536 (64 GiB), so
//!   nothing is evicted. The slab automover is off unless the spec turns it on: its thread
//!   moves pages by the wall clock, which a model replaying logical time follows only when the
//!   replay is paced (below). With `slab:automove=N` (1 or 2) the `-o` list is instead
//!   `slab_chunk_max=CHUNK_MAX,slab_reassign,slab_automove=N,slab_automove_ratio=R,
//!   slab_automove_window=W[,slab_sizes=...]` with the spec's ratio and window (the model's
//!   `tick_ops` has no server setting). `--evict slab-lru` (the default of
//!   slab) is memcached's own LRU per class; `--evict noeviction` adds `-M` (a write that
//!   finds no memory gets an error); other policies are refused.
//! - Redis: `redis-server --bind 127.0.0.1 --port PORT --save '' --appendonly no
//!   --activerehashing no [--maxmemory BYTES --maxmemory-policy P]`. Active rehashing is off
//!   for the reason the memcached automover is: Redis's cron would finish a dict's
//!   incremental rehash (and free the old bucket array) by the wall clock, 1 ms every 100 ms,
//!   so whether a sample sees one table or two would depend on how fast the replay ran; with
//!   it off, rehashing moves with the commands only, as in the engine. The policy is mapped
//!   from `--evict`:
//!   `sampled-lru` -> `allkeys-lru`, `lfu` -> `allkeys-lfu`, `random` -> `allkeys-random`,
//!   `volatile-lru`, `volatile-ttl`, `volatile-random` and `noeviction` as they are;
//!   `slab-lru`, `lru` and `fifo` have no Redis equivalent and are refused. `maxmemory` is
//!   what Redis counts against it: its `used_memory`, which includes its own baseline (about
//!   0.9 MB on an empty server) and its clients' buffers, which the engine's limit does not.
//!   The allocator spec does not change the real Redis (it uses the allocator it was built
//!   with, `mem_allocator`); the spec is recorded as given.
//! - A missing binary is an error naming the Debian package (`apt-get install memcached`,
//!   `apt-get install redis-server`).
//!
//! # How ops become commands
//!
//! Keys are the same bytes as in-process ([`fraglab_workloads::Key::write_to`]), values the
//! same bytes ([`crate::values::ValueBytes`]), client flags 0. Requests are pipelined: up to
//! [`BATCH`] ops (and at most [`BATCH_BYTES`] of requests) are written, then their replies
//! read; a batch never crosses a sample point or a phase end (nor a key with a pending demand
//! fill, below).
//!
//! | op | memcached text protocol | RESP (Redis) |
//! |---|---|---|
//! | get, gets | `get K`, `gets K` | `GET K` |
//! | set | `set K 0 TTL LEN` | `SET K V [EX TTL]` |
//! | add | `add K 0 TTL LEN` | `SET K V [EX TTL] NX` |
//! | replace, cas | `replace K 0 TTL LEN` (a cas replays as a replace: a replay has no race) | `SET K V [EX TTL] XX` |
//! | append | `append K 0 0 LEN` | `APPEND K V` (creates a missing key, as Redis does) |
//! | prepend | `prepend K 0 0 LEN` | not sent: Redis has no PREPEND; counted in `command_errors` as `unsupported` |
//! | incr, decr | `incr K 1`, `decr K 1` | `INCRBY K 1`, `DECRBY K 1` |
//! | delete | `delete K` | `DEL K` |
//! | touch | `touch K TTL` | `EXPIRE K TTL`, or `PERSIST K` for a TTL of 0 |
//! | scan | `get K1 K2 ...` (split into lines of at most 2,000 bytes) | `MGET K1 K2 ...` |
//!
//! The RESP column is [`crate::resp_encode`] (aggregates: [`crate::agg_ops`]'s commands), which
//! `fraglab save W --out W.resp` also writes, so a saved file holds what this peer sends and
//! `redis-cli --pipe` replays it.
//!
//! - **Demand fill**: a get marked `fill` that missed is followed by its set (with the op's
//!   value length and TTL). Its reply arrives with the rest of its batch, so the set is sent
//!   at the start of the next batch (or in a round trip of its own before a sample, a phase
//!   end or the end of the run): the fill comes after the other ops of its batch, where
//!   in-process it comes right after its get. So that no op sees the key before its fill, an
//!   op on a key that a get with `fill` earlier in the batch read ends the batch (the keys of
//!   a scan are not checked). What remains reordered is the fill against the other keys'
//!   ops of its batch, which matters only under a memory limit (which item an eviction
//!   picks, which write is refused). Without one, hits, misses, items and payload come out
//!   as in-process (checked on etc, twitter-14 and twitter-52 at small scales).
//! - **Time**: logical time cannot be imposed on a real server. TTLs run on the server's own
//!   clock from the moment the command arrives, and the replay runs as fast as the server
//!   answers, so a workload that spans hours of logical time takes seconds and its keys do
//!   not expire as they do in-process. **Paced** (`fraglab run --pace`,
//!   [`pipeline::PeerTarget::paced`]), the replay sends each op no earlier than its time
//!   after the first op's: ops already due go out together in one batch, and an op not yet
//!   due first sends the batch waiting, then sleeps until its time (in slices of 200 ms that
//!   read Ctrl-C). Against memcached the first op's second begins on a tick of the server's
//!   own clock ([`protocol::Peer::clock_tick`]). The server's clock then runs with the
//!   trace's time, late by at most
//!   what the replay falls behind, which `run.server.pacing` records (`trace_s`, `wall_s`,
//!   `late_max_ms`). The run takes as long as its trace time: `--rate OPS_PER_SEC` sets it
//!   for a generated workload. A memcached TTL above 30 days (which memcached would
//!   read as an absolute Unix time) is sent as now + TTL.
//! - **Errors**: out-of-memory replies (memcached `SERVER_ERROR out of memory ...`, Redis
//!   `-OOM ...`) count as `oom_errors`; other error replies count in `command_errors` by kind:
//!   `value_too_large` (memcached `SERVER_ERROR object too large for cache`, Redis `string
//!   exceeds maximum allowed size`), `not_an_integer` (memcached `CLIENT_ERROR cannot increment
//!   or decrement non-numeric value`, Redis `value is not an integer or out of range`),
//!   `overflow`, `invalid_ttl`, `wrong_type`, `unsupported` (above), `key_too_long` (a key over
//!   memcached's 250 bytes, refused before sending), and `other: MESSAGE` for anything else.
//!
//! # Redis warm-up
//!
//! Redis allocates a latency histogram (about 24 KB) the first time each command runs. Before
//! the baseline every command the replay can send (SET with EX, NX and XX, GET, APPEND,
//! INCRBY, DECRBY, DEL, EXPIRE, PERSIST, MGET, INFO, CONFIG GET) runs once on a scratch key,
//! which is then deleted. Then the baseline is taken.
//!
//! # Samples
//!
//! The one driver ([`crate::driver`]) samples a real server at the same op counts as the
//! engine (see the driver's sampling rule), draining the pipeline first, and at every phase
//! end. The figures map so:
//!
//! **memcached** (`stats`, `stats slabs`, `stats items`, pipelined on the data connection):
//!
//! | field | from |
//! |---|---|
//! | `items` | `curr_items` |
//! | `requested_bytes` | the sum of `items:N:mem_requested` (the items' sizes, header included) |
//! | `allocated_bytes` | the sum of `N:used_chunks` x `N:chunk_size` |
//! | `footprint_bytes` | `total_malloced` (slab pages) |
//! | `index_bytes` | `hash_bytes` (the hash table) |
//! | `rss_bytes` | the server's `VmRSS` (`/proc/PID/status`) |
//! | `payload_bytes` | `requested - items x 59`: memcached's item header 48 + the CAS value 8 + the key's NUL 1 + the value's CRLF 2, with client flags 0. Exact for the items fraglab writes (flags 0, CAS on) |
//! | `hits`, `misses` | `get_hits`, `get_misses` (a multi-key get counts each key) |
//! | `evictions` | `evictions` |
//! | `expired` | `get_expired + reclaimed + crawler_reclaimed`: found expired by a read, reclaimed from an LRU tail, removed by the LRU crawler |
//! | `oom_errors`, `sets`, `deletes` | counted from the replies |
//!
//! `allocator_detail` has the slab allocator's shape: `allocator: "slab"`, `total_malloced`,
//! `limit_maxbytes`, `pool_pages` (`slab_global_page_pool`), and `classes[]` (every class
//! with pages) with `class`, `chunk_size`, `chunks_per_page`, `total_pages`,
//! `used_chunks`, `free_chunks`, `mem_requested`, and `evicted` (from `stats items`).
//!
//! **Redis** (`INFO`, on a fresh connection: see below):
//!
//! | field | from |
//! |---|---|
//! | `allocated_bytes` | `used_memory` - the baseline `used_memory`: the growth since the warm-up |
//! | `requested_bytes` | the same (Redis does not report requested sizes) |
//! | `footprint_bytes` | `allocator_active` - the baseline `allocator_active` |
//! | `rss_bytes` | `used_memory_rss` (absolute, like `rss_baseline_bytes`) |
//! | `items` | the keys of db0 (`INFO keyspace`) |
//! | `index_bytes` | 0: Redis's dict tables are inside `used_memory` |
//! | `payload_bytes` | key + value bytes stored and not deleted, tracked by the client from the replies; evictions and expiry are not seen, so under eviction or TTLs it is an upper bound |
//! | `hits`, `misses` | `keyspace_hits`, `keyspace_misses`, less their baseline |
//! | `evictions`, `expired` | `evicted_keys`, `expired_keys`, less their baseline |
//! | `oom_errors`, `sets`, `deletes` | counted from the replies |
//!
//! `allocator_detail`: `{"allocator": "redis", "used_memory", "used_memory_baseline",
//! "allocator_allocated", "allocator_active", "allocator_resident",
//! "mem_fragmentation_ratio", "mem_allocator", "used_memory_reported",
//! "client_reply_buffer"}` from the last sample (see below for the last two).
//!
//! Redis counts its clients' query and reply buffers in `used_memory`, and they grow and
//! shrink with the pipelined traffic. So every Redis sample closes the data connection, opens
//! a new one and sends `INFO` and `CLIENT INFO` on it, again until `connected_clients` is 1
//! (the old client freed): each sample then counts exactly one fresh client, as the baseline
//! does, and the next batches go on the new connection. The one part of a fresh client that
//! Redis's cron resizes, its reply buffer (`rbs` of `CLIENT INFO`), is taken out of
//! `used_memory` (so is `allocator_detail.used_memory`; INFO's own figure is
//! `allocator_detail.used_memory_reported`, and the buffer `client_reply_buffer`). `allocator_active` and `used_memory_rss` are refreshed by
//! Redis's cron every 100 ms: the baseline and the sample at each phase end wait 150 ms for
//! them; the other samples may be up to 100 ms old in those two figures (`used_memory` is
//! always current).
//!
//! # Throughput, latency and failures
//!
//! `elapsed_s` and `ops_per_sec` are the replay's wall time, sampling excluded, as for the
//! engine: encoding the batches and their round trips, so a real server's throughput over
//! loopback with this pipelining, as a client sees it. Latency is recorded as what it is,
//! the round trip of one pipelined batch (write to last reply), under the kind `round_trip`,
//! one entry per batch (`count` = `timed` = batches; none when `--latency-every 0`). It is
//! never comparable with the per-op latency of an in-process run.
//!
//! A server that dies or stops answering mid-run (connection reset or closed, no byte moved
//! for 60 s) ends the run: the error goes to stderr and the result keeps the samples taken,
//! marked incomplete with the reason (`memcached (pid N) died (signal: 9 (SIGKILL)) after
//! 12288 ops: ...`, the ops before the batch in flight; `the connection to memcached (pid N,
//! 127.0.0.1:PORT) failed after 12288 ops: no reply within 60 s: the server stopped
//! answering`). Ctrl-C (`stop`) ends the run after the batch in flight, with a last sample,
//! as in-process runs do. Every socket wait is cut in slices of 200 ms that read the Ctrl-C
//! flag (`conn`), so a server that has stopped answering (SIGSTOP) holds Ctrl-C for at most
//! a slice: the run then ends `interrupted after N ops; no last sample: memcached (pid N,
//! 127.0.0.1:PORT) was not answering`, with the samples taken before.

mod bgsave;
mod conn;
#[cfg(test)]
mod fuzz;
mod group;
mod memcached;
mod pipeline;
mod protocol;
mod reassign;
mod redis;
mod redis_agg;
mod resp;
mod server;
mod text;
mod warm;

pub use bgsave::{redis_bgsave, Bgsave};
pub use group::kill_server_groups;
pub use pipeline::{BATCH, BATCH_BYTES};
pub use reassign::memcached_reassign;
pub use redis::redis_policy;
pub use warm::{memcached_warm_restart, Warm};

use fraglab_allocators::AllocSpec;
use fraglab_engine::Policy;

use crate::driver::{DriveOptions, Replayed};
use crate::spec::{RunSpec, TargetKind};

use pipeline::PeerTarget;

/// Why `target` cannot run this allocator and eviction policy, if it cannot.
pub fn refusal(target: TargetKind, alloc: &AllocSpec, policy: Policy) -> Option<String> {
    match target {
        TargetKind::Engine => None,
        TargetKind::Memcached => {
            if !matches!(alloc, AllocSpec::Slab(_)) {
                Some(
                    "the memcached target models the slab allocator: use --alloc slab[:...]".into(),
                )
            } else if !matches!(policy, Policy::SlabLru | Policy::Noeviction) {
                Some(format!(
                    "the memcached target evicts with memcached's own LRU: --evict slab-lru \
                     (the default), or noeviction (memcached -M); not `{}`",
                    policy.name()
                ))
            } else {
                None
            }
        }
        TargetKind::Redis => redis_policy(policy).is_none().then(|| {
            format!(
                "the redis target has no eviction policy `{}`: use --evict sampled-lru \
                 (allkeys-lru), lfu (allkeys-lfu), random (allkeys-random), volatile-lru, \
                 volatile-ttl, volatile-random or noeviction{}",
                policy.name(),
                if policy == Policy::SlabLru {
                    " (slab-lru is the default of --alloc slab: use --alloc zmalloc[:...] or \
                     give --evict)"
                } else {
                    ""
                }
            )
        }),
    }
}

/// Starts the server of `target` (memcached or redis) for `spec` and replays `stream` into
/// it; the server is stopped by the time this returns. Errors before any op ran (a refused
/// configuration, a server that cannot start) are `Err`; a server that dies part way ends the
/// run with what was measured, marked incomplete (see the module docs).
pub fn replay(
    spec: &RunSpec,
    target: TargetKind,
    stream: fraglab_workloads::OpStream,
    opts: &DriveOptions<'_>,
) -> Result<Replayed, String> {
    if let Some(why) = refusal(target, &spec.alloc, spec.policy) {
        return Err(why);
    }
    let time_rtt = spec.latency_every > 0;
    Ok(match target {
        TargetKind::Memcached => crate::driver::drive(
            PeerTarget::new(
                memcached::MemcachedPeer::start(spec)?,
                spec.values,
                time_rtt,
            )
            .paced(spec.pace),
            stream,
            opts,
        ),
        TargetKind::Redis => crate::driver::drive(
            PeerTarget::new(redis::RedisPeer::start(spec)?, spec.values, time_rtt).paced(spec.pace),
            stream,
            opts,
        ),
        TargetKind::Engine => return Err("the engine is not a real server".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_map_to_redis_or_are_refused() {
        assert_eq!(redis_policy(Policy::SampledLru), Some("allkeys-lru"));
        assert_eq!(redis_policy(Policy::Lfu), Some("allkeys-lfu"));
        assert_eq!(redis_policy(Policy::VolatileTtl), Some("volatile-ttl"));
        assert_eq!(redis_policy(Policy::SlabLru), None);
        let slab: AllocSpec = "slab".parse().unwrap();
        let je: AllocSpec = "jemalloc".parse().unwrap();
        assert!(refusal(TargetKind::Memcached, &slab, Policy::SlabLru).is_none());
        assert!(refusal(TargetKind::Memcached, &slab, Policy::Noeviction).is_none());
        assert!(refusal(TargetKind::Memcached, &je, Policy::SlabLru)
            .unwrap()
            .contains("use --alloc slab[:...]"));
        assert!(refusal(TargetKind::Redis, &slab, Policy::SlabLru)
            .unwrap()
            .contains("allkeys-lru"));
        assert!(refusal(TargetKind::Redis, &je, Policy::SampledLru).is_none());
        assert!(refusal(TargetKind::Engine, &je, Policy::Fifo).is_none());
    }
}
