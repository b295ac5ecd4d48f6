//! A forked save, as Redis's BGSAVE and BGREWRITEAOF make one (`rdb.c` `rdbSaveBackground`,
//! `childinfo.c`): the child writes a file from the memory it shares with the parent, then
//! reads its own `Private_Dirty` from `/proc/self/smaps_rollup` and sends it through a pipe;
//! the parent, which kept replaying, reads its own private dirty bytes while the child is
//! still alive (once the child exits its pages are the parent's alone again), then lets it go
//! and reaps it.
//!
//! The child writes to `DEST.tmp-PID` and renames it over `DEST` when the file is whole, as
//! Redis's `temp-PID.rdb`; a child that is stopped (Ctrl-C reaches the whole process group)
//! or killed leaves no file behind: the parent removes the temporary one. The child never
//! returns into the parent's code: it ends with `_exit`.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fraglab_reports::ForkSave;

/// The child's report: keys, bytes, private dirty bytes, status (0 done, 1 stopped, 2 failed).
const REPORT: usize = 32;

/// `Private_Dirty` of this process, bytes (`/proc/self/smaps_rollup`, which sums every
/// mapping's), or 0 where there is no such file.
pub fn private_dirty() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return 0;
    };
    s.lines()
        .filter(|l| l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// Whether this platform can fork a save (Linux: `fork` and `/proc/self/smaps_rollup`).
pub fn available() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("forked saves need Linux (fork, and /proc/PID/smaps_rollup to measure the copy-on-write)".into());
    }
    if !Path::new("/proc/self/smaps_rollup").exists() {
        return Err(
            "forked saves measure copy-on-write from /proc/self/smaps_rollup, which this kernel lacks (Linux 4.14 or later has it)"
                .into(),
        );
    }
    Ok(())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe2` writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `pipe2` succeeded: both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What the child's work returns: keys and bytes written, and whether it finished (false:
/// stopped).
pub type Work<'a> = &'a mut dyn FnMut(File) -> io::Result<(u64, u64, bool)>;

/// A save in progress: the child, and what the parent counts while it runs.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    report: Option<File>,
    go: Option<OwnedFd>,
    tmp: PathBuf,
    dest: PathBuf,
    keep: bool,
    started: Instant,
    dirty_at_fork: u64,
    /// What is measured so far.
    pub save: ForkSave,
}

impl Child {
    /// Forks a child that runs `work` on a new file at `DEST.tmp-PID`, at op `at_op`.
    /// `keep`: the file is the user's (`--snapshot-to`); otherwise it is removed once
    /// measured.
    pub fn fork(dest: &Path, keep: bool, at_op: u64, work: Work<'_>) -> Result<Child, String> {
        available()?;
        let tmp = {
            let mut name = dest.as_os_str().to_owned();
            name.push(format!(".tmp-{}-{at_op}", std::process::id()));
            PathBuf::from(name)
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| format!("creating {}: {e}", tmp.display()))?;
        let (report_r, report_w) = pipe().map_err(|e| format!("a pipe for the save: {e}"))?;
        let (go_r, go_w) = pipe().map_err(|e| format!("a pipe for the save: {e}"))?;
        let t = Instant::now();
        // SAFETY: the child only runs `work` (which reads the store and writes the file), reads
        // /proc and writes to its pipes, then `_exit`s: it never returns into the parent's
        // code, and it runs on the one thread fork copies. glibc's and jemalloc's fork handlers
        // leave their allocators usable in the child.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("fork: {e}"));
        }
        if pid == 0 {
            drop(report_r);
            drop(go_w);
            child(file, work, &tmp, dest, report_w, go_r);
        }
        let fork_us = t.elapsed().as_micros() as u64;
        let dirty_at_fork = private_dirty();
        drop(file);
        drop(report_w);
        drop(go_r);
        let report = File::from(report_r);
        // SAFETY: a valid descriptor this process owns; O_NONBLOCK only changes how reads wait.
        unsafe {
            let fd = report.as_raw_fd();
            libc::fcntl(
                fd,
                libc::F_SETFL,
                libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
            );
        }
        Ok(Child {
            pid,
            report: Some(report),
            go: Some(go_w),
            tmp,
            dest: dest.to_path_buf(),
            keep,
            started: t,
            dirty_at_fork,
            save: ForkSave {
                at_op,
                fork_us,
                ..ForkSave::default()
            },
        })
    }

    /// Whether the child has reported; if it has, the save is measured and the child reaped.
    /// `before_release` runs while the child is still alive (the parent's own measures that
    /// need the pages still shared).
    pub fn poll(&mut self, before_release: &mut dyn FnMut(&mut ForkSave)) -> bool {
        let Some(report) = self.report.as_mut() else {
            return true;
        };
        let mut buf = [0u8; REPORT];
        match report.read(&mut buf) {
            Ok(REPORT) => {
                let word = |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
                self.save.duration_s = self.started.elapsed().as_secs_f64();
                if self.save.overlap_s == 0.0 {
                    self.save.overlap_s = self.save.duration_s;
                }
                self.save.parent_dirty_bytes = private_dirty().saturating_sub(self.dirty_at_fork);
                before_release(&mut self.save);
                self.save.keys = word(0);
                self.save.bytes = word(1);
                self.save.cow_bytes = word(2);
                match word(3) {
                    0 => self.save.complete = true,
                    1 => {
                        self.save.error = Some("stopped (Ctrl-C) before the save was whole".into())
                    }
                    _ => self.save.error = Some("the child could not write the file".into()),
                }
                self.finish();
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            // The child died before it reported (a partial report is the same).
            _ => {
                self.save.duration_s = self.started.elapsed().as_secs_f64();
                self.save.error = Some("the child ended without reporting".into());
                self.finish();
                true
            }
        }
    }

    /// Notes that the replay has ended while the child still runs: the overlap ends here.
    pub fn replay_ended(&mut self) {
        if self.save.overlap_s == 0.0 {
            self.save.overlap_s = self.started.elapsed().as_secs_f64();
        }
    }

    /// Waits for the child's report, reading `stop` every 5 ms; when it is set, the child is
    /// killed.
    pub fn wait(&mut self, stop: &dyn Fn() -> bool, before_release: &mut dyn FnMut(&mut ForkSave)) {
        self.replay_ended();
        while !self.poll(before_release) {
            if stop() {
                self.save.error = Some("stopped (Ctrl-C) before the save was whole".into());
                self.kill();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets the child exit, reaps it, and keeps or removes the file.
    fn finish(&mut self) {
        self.report = None;
        self.go = None;
        self.reap();
        if self.save.complete {
            if self.keep {
                self.save.path = Some(self.dest.display().to_string());
            } else {
                let _ = std::fs::remove_file(&self.dest);
            }
        }
    }

    fn reap(&mut self) {
        if self.pid > 0 {
            let mut status = 0;
            // SAFETY: `pid` is this process's child, not yet reaped.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
            self.pid = 0;
        }
        let _ = std::fs::remove_file(&self.tmp);
    }

    /// Kills the child, reaps it and removes its temporary file.
    pub fn kill(&mut self) {
        if self.pid > 0 {
            // SAFETY: `pid` is this process's child, not yet reaped, so it names no one else.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        self.report = None;
        self.go = None;
        self.reap();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The child's side: never returns.
fn child(file: File, work: Work<'_>, tmp: &Path, dest: &Path, report: OwnedFd, go: OwnedFd) -> ! {
    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (keys, bytes, whole) = match work(file) {
            Ok(r) => r,
            Err(_) => return (0, 0, 2u64),
        };
        if !whole {
            let _ = std::fs::remove_file(tmp);
            return (keys, bytes, 1);
        }
        if std::fs::rename(tmp, dest).is_err() {
            let _ = std::fs::remove_file(tmp);
            return (keys, bytes, 2);
        }
        (keys, bytes, 0)
    }));
    let (keys, bytes, status) = done.unwrap_or((0, 0, 2));
    if status != 0 {
        let _ = std::fs::remove_file(tmp);
    }
    let mut msg = [0u8; REPORT];
    for (i, w) in [keys, bytes, private_dirty(), status]
        .into_iter()
        .enumerate()
    {
        msg[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    // SAFETY: writes from a live buffer to a pipe this process owns; 32 bytes are under
    // PIPE_BUF, so the write is whole or fails. Then the read waits for the parent to close
    // its end (it has measured itself while this child still shared its pages); `_exit`
    // skips destructors and atexit handlers, which belong to the parent.
    unsafe {
        libc::write(report.as_raw_fd(), msg.as_ptr().cast(), REPORT);
        let mut b = 0u8;
        libc::read(go.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
        libc::_exit(0)
    }
}
