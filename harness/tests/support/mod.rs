//! What the harness's integration tests share: a scratch directory of their own. (The tests
//! of `fraglab serve` include `serve.rs` beside it for a server process.)

use std::path::PathBuf;
use std::time::SystemTime;

/// A directory under the system's temporary directory, unique to this process, tag and moment,
/// removed when dropped.
pub struct TempDir(pub PathBuf);

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
