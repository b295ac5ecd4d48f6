//! Ctrl-C and real servers, against the real thing: SIGINT sent to the fraglab process,
//! memcached stopped with SIGSTOP, a server started through a wrapper script.
//!
//! - Ctrl-C ends `describe` and `save` within a second, non-zero, and `save` leaves no file;
//! - Ctrl-C ends a run whose memcached was stopped (SIGSTOP) within two seconds, with the
//!   result saved and marked interrupted, and no memcached left;
//! - a server binary that is a wrapper script running the real memcached as its child (not
//!   `exec`) leaves no process of its group behind.
//!
//! The tests that need memcached print why and pass where it is not installed, except under
//! `CI=true`, where they fail.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;
use support::{memcached, TempDir};

use fraglab_reports::RunResult;

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pids are of processes this
    // test started or read from their own output.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// The state letter and process group of a process, from `/proc/PID/stat`.
fn state_and_group(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut it = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = it.next()?.chars().next()?;
    it.next()?;
    Some((state, it.next()?.parse().ok()?))
}

/// Whether `pid` runs: it exists and is not a zombie (the test's container may not reap
/// orphans).
fn running(pid: u32) -> bool {
    state_and_group(pid).is_some_and(|(s, _)| s != 'Z' && s != 'X')
}

/// The processes of process group `pgid` that run.
fn group_members(pgid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| state_and_group(pid).is_some_and(|(s, g)| g == pgid && s != 'Z' && s != 'X'))
        .collect()
}

/// fraglab with `args`, stderr read line by line into a channel.
fn spawn(args: &[&str], path: Option<&str>) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fraglab"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let mut child = cmd.spawn().expect("fraglab starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits up to `limit` for the child; kills it past that. Returns its status, if it ended in
/// time, and how long it took.
fn wait_up_to(child: &mut Child, limit: Duration) -> (Option<ExitStatus>, Duration) {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return (Some(s), t.elapsed());
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return (None, t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends SIGINT to a command that is busy streaming and checks it ends within a second,
/// non-zero, saying it was interrupted.
fn interrupt_within_a_second(args: &[&str]) -> String {
    let (mut child, rx) = spawn(args, None);
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "fraglab {args:?} ended before the SIGINT: make it longer"
    );
    signal(child.id(), libc::SIGINT);
    let (status, took) = wait_up_to(&mut child, Duration::from_secs(1));
    let err: Vec<String> = rx.try_iter().collect();
    let err = err.join("\n");
    eprintln!("fraglab {args:?}: {status:?} {took:?} after SIGINT: {err}");
    let status = status.unwrap_or_else(|| panic!("fraglab {args:?} ignored SIGINT for 1 s"));
    assert!(!status.success(), "{err}");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    err
}

#[test]
fn ctrl_c_ends_describe_within_a_second() {
    interrupt_within_a_second(&[
        "describe",
        "ycsb-a",
        "--records",
        "1000",
        "--ops",
        "200000000",
    ]);
}

#[test]
fn ctrl_c_ends_save_within_a_second_and_leaves_no_file() {
    let dir = TempDir::new("signals-save");
    let out = dir.file("big.csv");
    interrupt_within_a_second(&[
        "save",
        "ycsb-a",
        "--records",
        "1000",
        "--ops",
        "200000000",
        "--out",
        out.to_str().unwrap(),
    ]);
    let left: Vec<PathBuf> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "save left {left:?}");
}

/// Kills the processes of a server group when dropped, so that a failing test leaves none.
struct Reap(Vec<u32>);

impl Drop for Reap {
    fn drop(&mut self) {
        for &pgid in &self.0 {
            for pid in group_members(pgid) {
                signal(pid, libc::SIGCONT);
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// The pid in `started memcached pid N on 127.0.0.1:PORT`, read from fraglab's stderr.
fn started_pid(rx: &mpsc::Receiver<String>) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(pid) = line
                .strip_prefix("started memcached pid ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|p| p.parse().ok())
            {
                return pid;
            }
            seen.push(line);
        }
    }
    panic!("memcached did not start: {seen:?}");
}

#[test]
fn ctrl_c_ends_a_run_whose_memcached_was_stopped_and_keeps_what_it_measured() {
    if !memcached() {
        return;
    }
    let dir = TempDir::new("signals-sigstop");
    let out = dir.file("stalled.json");
    let (mut child, rx) = spawn(
        &[
            "run",
            "--workload",
            "ycsb-a",
            "--records",
            "10000",
            "--ops",
            "50000000",
            "--alloc",
            "slab",
            "--target",
            "memcached",
            "--sample-every",
            "5000",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        None,
    );
    let pid = started_pid(&rx);
    let _reap = Reap(vec![state_and_group(pid).map_or(pid, |(_, g)| g)]);
    std::thread::sleep(Duration::from_millis(1000));
    signal(pid, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the SIGINT: make it longer"
    );
    signal(child.id(), libc::SIGINT);
    let (status, took) = wait_up_to(&mut child, Duration::from_secs(2));
    let err: Vec<String> = rx.try_iter().collect();
    eprintln!("exit {status:?} {took:?} after SIGINT: {err:?}");
    let status = status.expect("fraglab ended within 2 s of SIGINT with its memcached stopped");
    assert_eq!(status.code(), Some(130), "{err:?}");
    let r = RunResult::load(&out).expect("the partial result was saved");
    assert!(!r.complete);
    let why = r.incomplete_reason.as_deref().unwrap();
    assert!(why.starts_with("interrupted after"), "{why}");
    assert!(
        why.contains("memcached") && why.contains(&format!("pid {pid}")),
        "{why}"
    );
    assert!(!r.timeline.is_empty(), "the samples taken are kept");
    assert!(!running(pid), "memcached pid {pid} still runs");
}

/// Where `program` is on PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A directory holding a `memcached` that is a shell script running the real one as its
/// child (not `exec`), and appending its own pid to `pids`.
fn wrapper(dir: &Path, real: &Path) -> String {
    let script = dir.join("memcached");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ >> '{}'\n'{}' \"$@\"\n",
            dir.join("pids").display(),
            real.display()
        ),
    )
    .unwrap();
    let chmod = Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .unwrap();
    assert!(chmod.success());
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", dir.display())
}

fn wrapper_pids(dir: &Path) -> Vec<u32> {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(dir.join("pids")) {
        f.read_to_string(&mut s).unwrap();
    }
    s.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn a_wrapper_script_server_leaves_no_process_of_its_group() {
    if !memcached() {
        return;
    }
    let real = which("memcached").expect("memcached on PATH");
    let dir = TempDir::new("signals-wrapper");
    let path = wrapper(&dir.0, &real);
    // A run to its end, then a run interrupted by Ctrl-C.
    for interrupt in [false, true] {
        std::fs::remove_file(dir.0.join("pids")).ok();
        let ops = if interrupt { "50000000" } else { "20000" };
        let (mut child, rx) = spawn(
            &[
                "run",
                "--workload",
                "ycsb-a",
                "--records",
                "1000",
                "--ops",
                ops,
                "--alloc",
                "slab",
                "--target",
                "memcached",
                "--quiet",
            ],
            Some(&path),
        );
        if interrupt {
            started_pid(&rx);
            std::thread::sleep(Duration::from_millis(500));
            signal(child.id(), libc::SIGINT);
        }
        let (status, took) = wait_up_to(&mut child, Duration::from_secs(60));
        let err: Vec<String> = rx.try_iter().collect();
        eprintln!("interrupt {interrupt}: exit {status:?} after {took:?}: {err:?}");
        let groups = wrapper_pids(&dir.0);
        assert!(!groups.is_empty(), "the wrapper ran: {err:?}");
        let reap = Reap(groups.clone());
        let left: Vec<(u32, Vec<u32>)> = groups
            .iter()
            .map(|&g| (g, group_members(g)))
            .filter(|(_, m)| !m.is_empty())
            .collect();
        drop(reap);
        assert!(
            left.is_empty(),
            "processes left running, by group: {left:?}"
        );
        let status = status.expect("fraglab ended");
        let expect = if interrupt { 130 } else { 0 };
        assert_eq!(status.code(), Some(expect), "{err:?}");
    }
}
