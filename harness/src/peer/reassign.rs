//! `slabs reassign SRC DST` by hand on a real memcached: the workload is replayed, then each
//! page move is asked for and waited for, one at a time (`fraglab validate`'s page mover case).
//!
//! memcached answers `slabs reassign` at once (`OK`, or `BUSY`, `BADCLASS`, `NOSPARE`,
//! `NOTFULL`, `UNSAFE`, `SAME` as `proto_text.c` words them) and moves the page in its
//! rebalancer thread (`slabs.c`, `slab_rebalance_thread`). A move is done when `stats`'s
//! `slabs_moved` has grown by one; the next is asked for only then, so no request is refused
//! because a move is running.

use std::time::{Duration, Instant};

use fraglab_reports::AllocatorDetail;
use fraglab_workloads::OpStream;

use super::memcached::MemcachedPeer;
use super::pipeline::PeerTarget;
use super::protocol::Peer;
use crate::driver::Target;
use crate::spec::RunSpec;

/// How long one page move may take in memcached's rebalancer thread.
const MOVE_TIMEOUT: Duration = Duration::from_secs(10);

fn slabs_moved(d: &AllocatorDetail) -> u64 {
    d.slab().and_then(|s| s.moves).map_or(0, |m| m.slabs_moved)
}

/// Starts memcached for `spec`, replays `stream` into it, then moves one page for each
/// `(src, dst)` of `moves` with `slabs reassign SRC DST`; returns the allocator detail after the
/// last move (per-class pages, and the page mover's counters). The server is stopped by the
/// time this returns.
pub fn memcached_reassign(
    spec: &RunSpec,
    stream: OpStream,
    moves: &[(u32, u32)],
) -> Result<AllocatorDetail, String> {
    let peer = MemcachedPeer::start(spec)?;
    let pid = peer.server_pid();
    let mut t = PeerTarget::new(peer, spec.values, false);
    let failed = |e: String| format!("memcached (pid {pid}): {e}");
    for op in stream {
        let op = op.map_err(|e| e.to_string())?;
        t.apply(&op).map_err(|e| failed(e.0))?;
    }
    t.drain().map_err(|e| failed(e.0))?;
    t.read(false).map_err(|e| failed(e.0))?;
    let mut moved = slabs_moved(&t.peer().detail());
    for &(src, dst) in moves {
        let line = format!("slabs reassign {src} {dst}");
        let reply = t
            .command(format!("{line}\r\n").as_bytes())
            .map_err(|e| failed(e.to_string()))?;
        if reply != "OK" {
            return Err(failed(format!("`{line}` answered `{reply}`")));
        }
        let asked = Instant::now();
        loop {
            t.read(false).map_err(|e| failed(e.0))?;
            let now = slabs_moved(&t.peer().detail());
            if now > moved {
                moved = now;
                break;
            }
            if asked.elapsed() > MOVE_TIMEOUT {
                return Err(failed(format!(
                    "`{line}` was accepted but no page had moved {} s later",
                    MOVE_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    t.read(true).map_err(|e| failed(e.0))?;
    Ok(t.end().allocator_detail)
}
