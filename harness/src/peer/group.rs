//! Process groups of the servers fraglab starts.
//!
//! Each server is started as the leader of a process group of its own
//! (`CommandExt::process_group(0)`), so that whatever it starts stays in that group: a
//! distribution's or version manager's wrapper script that runs the real server as its
//! *child* (rather than `exec`ing it) puts both in the group. Stopping the server signals the
//! whole group, and the group counts as gone only when no process of it is left but zombies.
//!
//! The leader is never reaped before its group is gone: while it is unreaped (running or a
//! zombie) its pid cannot be reused, so no other process can create a group of that id, and
//! signalling `-pgid` reaches our group only. Its exit is looked at with `waitid(WNOWAIT)`,
//! which leaves it unreaped.
//!
//! The groups of the servers running are also kept in a small table that a signal handler
//! can read ([`kill_server_groups`]): a second Ctrl-C ends fraglab at once, and kills the
//! groups first, since `PR_SET_PDEATHSIG` reaches the leader only, never a wrapper's child.

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};

/// Servers running at once that a signal handler can kill (validate and run have one).
const SLOTS: usize = 16;

/// Process group ids of the servers running; 0 is a free slot.
static GROUPS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

/// Records `pgid` as a running server's group, for [`kill_server_groups`].
pub(crate) fn register(pgid: libc::pid_t) {
    for slot in &GROUPS {
        if slot
            .compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
    // More servers than slots: the group is still stopped by its `Server`, only not by a
    // second Ctrl-C.
}

/// Forgets `pgid` (its group is gone).
pub(crate) fn unregister(pgid: libc::pid_t) {
    for slot in &GROUPS {
        let _ = slot.compare_exchange(pgid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Sends SIGKILL to the process group of every server still running. Async-signal-safe
/// (atomic loads and kill(2)): for a signal handler that is about to `_exit`.
pub fn kill_server_groups() {
    for slot in &GROUPS {
        let pgid = slot.load(Ordering::SeqCst);
        if pgid > 0 {
            // SAFETY: kill(2) has no memory-safety preconditions; the group's leader is our
            // unreaped child (see the module docs), so `-pgid` is our server's group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

/// Sends `sig` to every process of group `pgid`. The caller must hold the group's leader
/// unreaped (see the module docs).
pub(crate) fn signal(pgid: libc::pid_t, sig: libc::c_int) {
    if pgid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions; the caller keeps the leader
        // unreaped, so the group id is ours.
        unsafe { libc::kill(-pgid, sig) };
    }
}

/// The process group of `pid`, if it exists.
pub(crate) fn pgid_of(pid: u32) -> Option<libc::pid_t> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: getpgid(2) takes any pid and touches no memory of ours.
    let g = unsafe { libc::getpgid(pid) };
    (g > 0).then_some(g)
}

/// The state letter and process group of `/proc/PID/stat` (`R`, `S`, `T`, `Z`, ...).
fn state_and_group(stat: &str) -> Option<(char, libc::pid_t)> {
    // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let _ppid = it.next()?;
    Some((state, it.next()?.parse().ok()?))
}

/// Whether `pid` runs (exists and is not a zombie).
pub(crate) fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .as_deref()
        .and_then(state_and_group)
        .is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
}

/// The processes of group `pgid` that run (zombies left out: an orphan whose new parent does
/// not reap it stays a zombie and holds nothing).
pub(crate) fn members(pgid: libc::pid_t) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .as_deref()
                .and_then(state_and_group)
                .is_some_and(|(state, g)| g == pgid && !matches!(state, 'Z' | 'X'))
        })
        .collect()
}

/// How child `pid` exited, if it has, leaving it unreaped (`waitid` with `WNOWAIT`).
pub(crate) fn exited(pid: u32) -> Option<ExitStatus> {
    let id = libc::id_t::try_from(pid).ok()?;
    // SAFETY: an all-zero siginfo_t is a valid value (plain integers and unions of them).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid(2) on our own child writes only into `info`, which lives for the call.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: after a successful waitid the kernel filled in si_pid and si_status (si_pid
    // stays 0 when the child has not exited).
    let (who, status) = unsafe { (info.si_pid(), info.si_status()) };
    if r != 0 || who == 0 {
        return None;
    }
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => status | 0x80,
        _ => status,
    };
    Some(ExitStatus::from_raw(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_and_group_are_read_past_a_command_name_with_parentheses() {
        let stat = "42 (a (b) c) S 1 4242 4242 0 -1 4194560";
        assert_eq!(state_and_group(stat), Some(('S', 4242)));
        assert_eq!(state_and_group("7 (sh) Z 1 7"), Some(('Z', 7)));
        assert_eq!(state_and_group("garbage"), None);
    }

    #[test]
    fn this_process_runs_in_its_group() {
        let me = std::process::id();
        assert!(running(me));
        let g = pgid_of(me).unwrap();
        assert!(members(g).contains(&me));
    }

    #[test]
    fn a_childs_exit_is_seen_without_reaping_it() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let status = loop {
            if let Some(s) = exited(pid) {
                break s;
            }
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(
            exited(pid).and_then(|s| s.code()),
            Some(3),
            "still unreaped"
        );
        assert_eq!(child.wait().unwrap().code(), Some(3));
    }
}
