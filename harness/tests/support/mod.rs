//! What the harness's integration tests share: a scratch directory of their own, and running
//! the binary. (The tests
//! of `fraglab serve` include `serve.rs` beside it for a server process.)

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::SystemTime;

/// Whether `program` runs (`--version`); panics under `CI=true` when it does not, so CI never
/// skips a test against a real server.
#[allow(dead_code)] // Not every test binary needs a real server.
pub fn available(program: &str, package: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is not installed (apt-get install {package}); under CI=true this test \
             must run"
        );
        eprintln!("skipping: {program} is not on PATH (apt-get install {package})");
    }
    ok
}

/// Whether memcached is on PATH (see [`available`]).
#[allow(dead_code)]
pub fn memcached() -> bool {
    available("memcached", "memcached")
}

/// Runs the `fraglab` binary with `args`.
#[allow(dead_code)] // Not every test binary runs it this way.
pub fn fraglab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args(args)
        .output()
        .expect("fraglab runs")
}

/// Bytes as text, for messages.
#[allow(dead_code)]
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `fraglab run ARGS --format json --quiet`'s result; the run must succeed.
#[allow(dead_code)]
pub fn run_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend(["--format", "json", "--quiet"]);
    let o = fraglab(&all);
    assert!(
        o.status.success(),
        "fraglab {all:?} failed: {}",
        text(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("the result JSON")
}

/// A directory under the system's temporary directory, unique to this process, tag and moment,
/// removed when dropped.
pub struct TempDir(pub PathBuf);

#[allow(dead_code)] // Not every test binary makes one.
impl TempDir {
    /// A new, empty directory named after `tag`.
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("fraglab-test-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A path in the directory.
    #[allow(dead_code)] // Not every test binary names files in it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
