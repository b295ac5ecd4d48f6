//! A BGSAVE on the real Redis with writes during it: the workload's first ops are replayed,
//! then `CONFIG SET rdb-key-save-delay` and `BGSAVE` start a slow save, the rest of the ops
//! are replayed while the child saves, and `INFO persistence` gives the child's
//! copy-on-write once the save has ended (`rdb_last_cow_size`: the child's `Private_Dirty`
//! at its end, `childinfo.c` `sendChildCowInfo`). `fraglab validate`'s bgsave copy-on-write
//! case sets it against the model's forked snapshot (`crate::persist`).

use std::time::{Duration, Instant};

use fraglab_workloads::OpStream;

use super::pipeline::PeerTarget;
use super::redis::RedisPeer;
use crate::driver::Target;
use crate::spec::RunSpec;

/// The longest a save may take once the writes are sent.
const SAVE_TIMEOUT: Duration = Duration::from_secs(300);

/// What the real Redis measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bgsave {
    /// `rdb_last_cow_size`, bytes.
    pub cow_bytes: u64,
    /// Keys in the database when the save started (`DBSIZE`).
    pub keys: u64,
    /// Whether the save was still running after the last write was answered.
    pub overlapped: bool,
}

/// Replays `at` ops of `stream`, starts a BGSAVE slowed by `key_delay_us` per key, replays
/// the rest, and waits for the save.
pub fn redis_bgsave(
    spec: &RunSpec,
    stream: OpStream,
    at: u64,
    key_delay_us: u64,
) -> Result<Bgsave, String> {
    let peer = RedisPeer::start(spec)?;
    let pid = peer.server_pid();
    let failed = |e: String| format!("redis-server (pid {pid}): {e}");
    let mut t = PeerTarget::new(peer, spec.values, false);
    let mut ops = 0u64;
    let mut out = Bgsave::default();
    let mut started = false;
    for op in stream {
        let op = op.map_err(|e| e.to_string())?;
        if ops == at && !started {
            out.keys = start(&mut t, key_delay_us).map_err(failed)?;
            started = true;
        }
        t.apply(&op).map_err(|e| failed(e.0))?;
        ops += 1;
    }
    if !started {
        return Err(format!(
            "the workload has {ops} ops, fewer than the {at} before the save"
        ));
    }
    t.drain().map_err(|e| failed(e.0))?;
    let persistence = |t: &mut PeerTarget<RedisPeer>| {
        t.peer_mut()
            .info_section("persistence")
            .map_err(|e| failed(e.to_string()))
    };
    out.overlapped = persistence(&mut t)?
        .get("rdb_bgsave_in_progress")
        .map(String::as_str)
        == Some("1");
    let asked = Instant::now();
    loop {
        let info = persistence(&mut t)?;
        if info.get("rdb_bgsave_in_progress").map(String::as_str) == Some("0") {
            if info.get("rdb_last_bgsave_status").map(String::as_str) != Some("ok") {
                return Err(failed("the BGSAVE failed (rdb_last_bgsave_status)".into()));
            }
            out.cow_bytes = info
                .get("rdb_last_cow_size")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| failed("no rdb_last_cow_size in INFO persistence".into()))?;
            return Ok(out);
        }
        if asked.elapsed() > SAVE_TIMEOUT {
            return Err(failed(format!(
                "the BGSAVE had not ended {} s after the writes",
                SAVE_TIMEOUT.as_secs()
            )));
        }
        if crate::STOP.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("interrupted while the BGSAVE ran".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends what is queued, then slows the save and starts it; returns the keys held.
fn start(t: &mut PeerTarget<RedisPeer>, key_delay_us: u64) -> Result<u64, String> {
    let delay = key_delay_us.to_string();
    let r = |e: std::io::Error| e.to_string();
    let reply = t
        .command(&super::resp::command(&[
            b"CONFIG",
            b"SET",
            b"rdb-key-save-delay",
            delay.as_bytes(),
        ]))
        .map_err(r)?;
    if reply != "+OK" {
        return Err(format!("CONFIG SET rdb-key-save-delay answered `{reply}`"));
    }
    let keys = t.command(&super::resp::command(&[b"DBSIZE"])).map_err(r)?;
    let keys = keys.trim_start_matches(':').parse().unwrap_or(0);
    let reply = t.command(&super::resp::command(&[b"BGSAVE"])).map_err(r)?;
    if !reply.starts_with("+Background saving started") {
        return Err(format!("BGSAVE answered `{reply}`"));
    }
    Ok(keys)
}
