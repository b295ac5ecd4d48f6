//! The bound on memory, shown on hostile input (issue 13, finding 4): the real binary runs
//! with its address space limited to 2 GiB (`RLIMIT_AS`), and each hostile input ends with a
//! clear error and a non-zero exit, never an out-of-memory abort or a panic; the largest
//! resident set of these runs stays under 256 MiB.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

mod support;

use support::TempDir;

/// The address space the binary gets: 2 GiB.
const ADDRESS_SPACE: u64 = 2 << 30;

/// The resident set every run here stays under.
const RSS_BUDGET_KIB: i64 = 256 << 10;

fn fraglab_limited(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fraglab"));
    cmd.args(args);
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed; it makes one `setrlimit` call on a limit struct on
    // its own stack and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE as libc::rlim_t,
                rlim_max: ADDRESS_SPACE as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// The largest resident set of any child this process has waited for, in KiB.
fn children_max_rss_kib() -> i64 {
    // SAFETY: `usage` is a valid, writable `rusage`; `getrusage` only writes into it.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage.ru_maxrss
    }
}

/// Checks that `out` is a clean refusal: an exit code (not a signal), non-zero, no panic,
/// its output containing `expected`; and that no child so far passed the RSS budget.
fn assert_refused(out: &Output, expected: &str) {
    // A run cut short by a bad record says why in its summary (stdout); a refusal before the
    // run says it on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "status {:?}, stderr {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("memory allocation"), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected `{expected}` in: {stderr}"
    );
    assert!(
        stderr.len() < 4_000,
        "a long output: {} bytes",
        stderr.len()
    );
    let rss = children_max_rss_kib();
    assert!(rss < RSS_BUDGET_KIB, "a child's RSS reached {rss} KiB");
}

/// A 5.4 KB oracleGeneral trace whose 225 records each declare a value of 4 GiB - 1.
#[test]
fn trace_declaring_huge_values_is_refused_within_the_bound() {
    let dir = TempDir::new("bounds-trace");
    let path = dir.file("huge.oracleGeneral.bin");
    let mut bytes = Vec::new();
    for i in 0..225u64 {
        bytes.extend_from_slice(&(i as u32).to_le_bytes());
        bytes.extend_from_slice(&i.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&(-1i64).to_le_bytes());
    }
    assert_eq!(bytes.len(), 5400);
    std::fs::write(&path, &bytes).unwrap();
    let workload = format!("trace:{}", path.display());
    let out = fraglab_limited(&["run", "--workload", &workload, "--quiet"]);
    assert_refused(&out, "record 1: obj_size 4294967295 is larger");
    let out = fraglab_limited(&["run", "--workload", &workload, "--quiet", "--lenient"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some(), "{:?}", out.status);
    assert!(
        stderr.contains("SKIPPED 225 malformed records (--lenient)"),
        "{stderr}"
    );
    assert!(children_max_rss_kib() < RSS_BUDGET_KIB);
}

#[test]
fn empirical_distribution_reading_dev_zero_is_refused_within_the_bound() {
    let dir = TempDir::new("bounds-empirical");
    let spec = dir.file("zero.toml");
    std::fs::write(
        &spec,
        "name = \"z\"\nkeyspace = 100\nmix = { get = 0.9, set = 0.1 }\n\
         key_size = { dist = \"fixed\", size = 8 }\n\
         value_size = { dist = \"empirical\", path = \"/dev/zero\" }\n\
         [[phases]]\nname = \"p\"\nops = 50\n",
    )
    .unwrap();
    let workload = format!("file:{}", spec.display());
    let out = fraglab_limited(&["run", "--workload", &workload, "--quiet"]);
    assert_refused(&out, "/dev/zero: the table is larger than 16777216 bytes");
}

#[test]
fn phases_file_of_50_mb_is_refused_within_the_bound() {
    let dir = TempDir::new("bounds-phases");
    let spec = dir.file("phases.toml");
    let head = "name = \"s\"\nkeyspace = 100\nmix = { get = 0.9, set = 0.1 }\n\
         key_size = { dist = \"fixed\", size = 8 }\n\
         value_size = { dist = \"fixed\", size = 8 }\n";
    let phase = "[[phases]]\nname = \"p\"\nops = 1\n";
    let text = format!("{head}{}", phase.repeat((50 << 20) / phase.len()));
    std::fs::write(&spec, text).unwrap();
    let workload = format!("file:{}", spec.display());
    let out = fraglab_limited(&["run", "--workload", &workload, "--quiet"]);
    assert_refused(&out, "larger than 1048576 bytes (1 MiB)");
}

#[test]
fn huge_records_is_refused_within_the_bound() {
    let out = fraglab_limited(&[
        "run",
        "--workload",
        "ycsb-a",
        "--records",
        "100000000000000",
        "--quiet",
    ]);
    assert_refused(&out, "records 100000000000000 is more than 4294967296");
}
