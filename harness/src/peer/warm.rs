//! A warm restart of the real memcached (`-e FILE`, `memcached.c` and `restart.c`): the
//! workload's first ops are replayed, memcached is stopped with SIGUSR1 (a graceful
//! shutdown, which writes `FILE.meta`), started again with the same settings and file, and
//! the rest of the ops are replayed. `fraglab validate`'s warm restart case checks the items
//! before and after, and the evictions, hits and pages of every class at the end, against the
//! model's restart (`slab:file=PATH`, `--restart-at`).

use std::collections::BTreeMap;
use std::time::Duration;

use fraglab_reports::AllocatorDetail;
use fraglab_workloads::OpStream;

use super::memcached::MemcachedPeer;
use super::pipeline::PeerTarget;
use super::protocol::Peer;
use crate::detail::class_pages;
use crate::driver::Target;
use crate::spec::RunSpec;

/// How long memcached may take to save its state and exit on SIGUSR1.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// What the real memcached held around its restart.
#[derive(Clone, Debug, Default)]
pub struct Warm {
    /// `curr_items` before the shutdown and after the restart.
    pub items_before: u64,
    /// See `items_before`.
    pub items_after: u64,
    /// Pages per class before the shutdown and after the restart.
    pub pages_before: BTreeMap<u32, u64>,
    /// See `pages_before`.
    pub pages_after: BTreeMap<u32, u64>,
    /// The slab detail at the end of the workload.
    pub end: AllocatorDetail,
    /// `curr_items` at the end.
    pub items_end: u64,
    /// Evictions before the shutdown, and by the restarted server (its counters start at 0).
    pub evictions_before: u64,
    /// See `evictions_before`.
    pub evictions_after: u64,
    /// Get hits of the restarted server.
    pub hits_after: u64,
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Replays `ops` on `t` and waits for every reply; returns how many there were.
fn replay(
    t: &mut PeerTarget<MemcachedPeer>,
    ops: impl Iterator<Item = Result<fraglab_workloads::Op, fraglab_workloads::WorkloadError>>,
    failed: &dyn Fn(String) -> String,
) -> Result<u64, String> {
    let mut n = 0;
    for op in ops {
        t.apply(&op.map_err(|e| e.to_string())?)
            .map_err(|e| failed(e.0))?;
        n += 1;
    }
    t.drain().map_err(|e| failed(e.0))?;
    Ok(n)
}

/// Replays `at` ops of `stream` on memcached started for `spec` (whose slab has a `file`,
/// passed as `-e`), restarts it warm, and replays the rest.
pub fn memcached_warm_restart(spec: &RunSpec, stream: OpStream, at: u64) -> Result<Warm, String> {
    let mut stream = stream;
    let mut w = Warm::default();
    let peer = MemcachedPeer::start(spec)?;
    let pid = peer.server_pid();
    let failed = |e: String| format!("memcached (pid {pid}): {e}");
    let mut t = PeerTarget::new(peer, spec.values, false);
    let first = replay(&mut t, stream.by_ref().take(at as usize), &failed)?;
    if first < at {
        return Err(format!(
            "the workload has {first} ops, fewer than the {at} before the restart"
        ));
    }
    let before = t.read(true).map_err(|e| failed(e.0))?;
    w.items_before = before.memory.items;
    w.evictions_before = before.evictions;
    w.pages_before = class_pages(&t.peer().detail());
    // SAFETY: kill(2) on the pid of the server this run started and still owns.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) };
    if t.peer_mut()
        .server()
        .exited_within(SHUTDOWN_TIMEOUT)
        .is_none()
    {
        return Err(failed(format!(
            "still running {} s after SIGUSR1 (a graceful shutdown)",
            SHUTDOWN_TIMEOUT.as_secs()
        )));
    }
    drop(t);
    // memcached refuses the file unless the clock has moved on a whole second since the
    // shutdown's `stop_time` (`memcached.c`, `_mc_meta_load_cb`: `time_delta <= 0`).
    let stopped = unix_secs();
    while unix_secs() <= stopped {
        std::thread::sleep(Duration::from_millis(20));
    }
    let peer = MemcachedPeer::start(spec)?;
    let pid = peer.server_pid();
    let failed = |e: String| format!("memcached (pid {pid}, restarted): {e}");
    let mut t = PeerTarget::new(peer, spec.values, false);
    w.items_after = t.read(true).map_err(|e| failed(e.0))?.memory.items;
    w.pages_after = class_pages(&t.peer().detail());
    replay(&mut t, stream, &failed)?;
    let end = t.read(true).map_err(|e| failed(e.0))?;
    w.items_end = end.memory.items;
    w.evictions_after = end.evictions;
    w.hits_after = end.hits;
    w.end = t.peer().detail();
    Ok(w)
}
