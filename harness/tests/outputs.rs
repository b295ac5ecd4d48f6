//! Output files and stdout against the real failures: a symlink, `/dev/null`, a FIFO, a
//! directory, a missing directory, a parent that is a file, a closed pipe, and a report that
//! cannot be written (issue 13). The rules are in `docs/design.md`, "Output files".

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::TempDir;

fn fraglab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fraglab"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `fraglab run` of an instant workload writing to `out`.
fn run_to(out: &Path) -> Output {
    fraglab()
        .args(["run", "--workload", "memefficiency-32", "--quiet", "--out"])
        .arg(out)
        .output()
        .expect("fraglab runs")
}

/// Waits for `child` up to `limit`; kills it (by its own pid) and fails if it is still running.
fn wait_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `fraglab run` whose workload is a trace on stdin that never ends (the pipe stays open and
/// empty): it can only return if `--out` is refused before the workload is read.
fn run_refused_before_reading(out: &Path) -> Output {
    let child = fraglab()
        .args([
            "run",
            "--workload",
            "trace:-",
            "--trace-format",
            "fraglab",
            "--quiet",
            "--out",
        ])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fraglab starts");
    // `child.stdin` stays open (and empty) until the child is reaped.
    wait_within(child, Duration::from_secs(20), "run with a bad --out")
}

#[test]
fn a_symlink_as_out_is_refused_and_its_target_untouched() {
    let dir = TempDir::new("out-symlink");
    let target = dir.file("precious.json");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.file("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = run_to(&link);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("link.json") && err.contains("symbolic link"),
        "{err}"
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    assert!(!dir.file("link.timeline.csv").exists());

    // `save` refuses it too.
    let csv_link = dir.file("trace.csv");
    std::os::unix::fs::symlink(&target, &csv_link).unwrap();
    let o = fraglab()
        .args(["save", "memefficiency-32", "--out"])
        .arg(&csv_link)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}

fn is_char_device(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .unwrap()
        .file_type()
        .is_char_device()
}

#[test]
fn dev_null_as_out_stays_a_char_device() {
    // A device node of our own first (root can make one): what the old code did to it, it
    // did to /dev/null.
    let dir = TempDir::new("out-device");
    let own = dir.file("null");
    let c = std::ffi::CString::new(own.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path; mknod touches nothing else.
    let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    if made == 0 {
        let o = run_to(&own);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("character device"), "{}", stderr(&o));
        assert!(is_char_device(&own));
        assert!(!dir.file("null.timeline.csv").exists());
    }
    let o = run_to(Path::new("/dev/null"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/dev/null"), "{}", stderr(&o));
    assert!(is_char_device(Path::new("/dev/null")));
}

#[test]
fn a_fifo_as_out_is_refused_without_blocking() {
    let dir = TempDir::new("out-fifo");
    let fifo = dir.file("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let child = fraglab()
        .args(["run", "--workload", "memefficiency-32", "--quiet", "--out"])
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_within(child, Duration::from_secs(60), "run --out FIFO");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("a FIFO"), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn a_directory_as_out_is_refused_and_no_timeline_is_left() {
    let dir = TempDir::new("out-dir");
    let target = dir.file("result.json");
    std::fs::create_dir(&target).unwrap();
    let o = run_refused_before_reading(&target);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("a directory"), "{}", stderr(&o));
    assert!(target.is_dir());
    assert!(!dir.file("result.timeline.csv").exists());
}

#[test]
fn a_missing_directory_is_refused_before_the_run() {
    let dir = TempDir::new("out-missing");
    let target = dir.file("missing/result.json");
    let o = run_refused_before_reading(&target);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}

#[test]
fn a_parent_that_is_a_file_is_refused_before_the_run() {
    let dir = TempDir::new("out-notdir");
    std::fs::write(dir.file("file"), "x").unwrap();
    let o = run_refused_before_reading(&dir.file("file/result.json"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Not a directory"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dir.file("file")).unwrap(), "x");
}

/// The write end of a pipe whose read end is already closed (both close-on-exec, so no other
/// child started meanwhile holds the read end open).
fn closed_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2(2) writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2(2) just returned these descriptors, and each is owned once, here.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    writer
}

/// Runs `fraglab ARGS` with stdout a pipe whose read end is already closed.
fn with_closed_stdout(args: &[&str]) -> Output {
    let writer = closed_pipe();
    let child = fraglab()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("fraglab starts");
    wait_within(
        child,
        Duration::from_secs(120),
        "fraglab with a closed stdout",
    )
}

fn assert_quiet_141(o: &Output) {
    assert_eq!(o.status.code(), Some(141), "{}", stderr(o));
    assert_eq!(stderr(o), "");
}

#[test]
fn a_closed_stdout_ends_list_and_run_quietly_keeping_results() {
    assert_quiet_141(&with_closed_stdout(&["list", "allocators"]));
    let dir = TempDir::new("out-pipe-run");
    let out = dir.file("r.json");
    let o = with_closed_stdout(&[
        "run",
        "--workload",
        "memefficiency-32",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_quiet_141(&o);
    assert!(fraglab_reports::RunResult::load(&out).unwrap().complete);
    assert!(dir.file("r.timeline.csv").is_file());
}

fn compare_state(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("compare.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["state"].as_str().unwrap().to_string()
}

#[test]
fn a_closed_stdout_ends_compare_quietly_marked_interrupted() {
    let dir = TempDir::new("out-pipe-compare");
    let out = dir.file("study");
    let o = with_closed_stdout(&[
        "compare",
        "--workloads",
        "memefficiency-32",
        "--allocs",
        "slab",
        "--jobs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    // compare's progress lines go to stderr: only the table is lost.
    assert_eq!(o.status.code(), Some(141), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert_eq!(compare_state(&out), "interrupted");
    let cells = std::fs::read_dir(out.join("cells")).unwrap().count();
    assert_eq!(cells, 2, "the cell's JSON and CSV are kept");
}

#[test]
fn compare_whose_report_cannot_be_written_exits_non_zero() {
    let dir = TempDir::new("out-report");
    let out = dir.file("study");
    std::fs::create_dir_all(out.join("report.html")).unwrap();
    let o = fraglab()
        .args([
            "compare",
            "--workloads",
            "memefficiency-32",
            "--allocs",
            "slab",
            "--jobs",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("report.html"), "{}", stderr(&o));
    assert!(out.join("report.html").is_dir());
}

#[test]
fn compare_with_stdout_and_stderr_closed_ends_marked_interrupted() {
    // `fraglab compare 2>&1 | head -1`, the reader already gone: its progress lines on stderr
    // must not end it with a panic that leaves compare.json `running`.
    let dir = TempDir::new("out-pipe-both");
    let out = dir.file("study");
    let writer = closed_pipe();
    let child = fraglab()
        .args([
            "compare",
            "--workloads",
            "memefficiency-32",
            "--allocs",
            "slab",
            "--jobs",
            "1",
            "--out",
        ])
        .arg(&out)
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .expect("fraglab starts");
    let o = wait_within(child, Duration::from_secs(120), "compare with closed pipes");
    assert_eq!(o.status.code(), Some(141));
    assert_eq!(compare_state(&out), "interrupted");
    assert_eq!(std::fs::read_dir(out.join("cells")).unwrap().count(), 2);
}

/// A 64 KiB tmpfs mounted on a directory of its own, unmounted when dropped.
struct TinyMount(TempDir);

impl TinyMount {
    /// None when this process may not mount (not root, no CAP_SYS_ADMIN).
    fn new(tag: &str) -> Option<TinyMount> {
        let dir = TempDir::new(tag);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&dir.0)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyMount(dir))
    }
}

impl Drop for TinyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0 .0).status();
    }
}

#[test]
fn a_full_disk_leaves_neither_the_result_nor_its_timeline() {
    // The result (about 96 KB) does not fit in 64 KiB; the timeline (about 19 KB) does. The
    // old code left the timeline without its result.
    let Some(mount) = TinyMount::new("out-enospc") else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let o = run_to(&mount.0.file("r.json"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("No space left"), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(&mount.0 .0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn report_refuses_a_symlinked_document_and_leaves_its_target() {
    let dir = TempDir::new("out-report-link");
    let results = dir.file("results");
    std::fs::create_dir(&results).unwrap();
    assert!(run_to(&results.join("r.json")).status.success());
    let target = dir.file("precious.md");
    std::fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, results.join("report.md")).unwrap();
    let o = fraglab().arg("report").arg(&results).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    assert!(!results.join("report.html").exists(), "nothing written");
}
