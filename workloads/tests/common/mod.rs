//! Helpers shared by the trace tests.

#[allow(dead_code)] // Not every test file reads RESP.
pub mod resp;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The real trace, `cloudPhysicsIO.oracleGeneral.bin`: from `$FRAGLAB_DATA` when set, else the
/// shared data folder beside the workspace when present, else decompressed once from the
/// copy checked in at `tests/data/cloudPhysicsIO.oracleGeneral.bin.zst` (so a clean clone
/// tests the same bytes).
#[allow(dead_code)] // Not every test file reads the real trace.
pub fn real_trace() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        const NAME: &str = "cloudPhysicsIO.oracleGeneral.bin";
        if let Some(dir) = std::env::var_os("FRAGLAB_DATA") {
            let path = Path::new(&dir).join(NAME);
            assert!(
                path.exists(),
                "{} is missing (FRAGLAB_DATA is set)",
                path.display()
            );
            return path;
        }
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let shared = manifest.join("../../shared/data").join(NAME);
        if shared.exists() {
            return shared;
        }
        let packed = manifest.join("tests/data").join(format!("{NAME}.zst"));
        let bytes = zstd::decode_all(std::fs::File::open(&packed).expect("checked-in trace"))
            .expect("the checked-in trace decompresses");
        let path = std::env::temp_dir().join(format!("fraglab-{}-{NAME}", std::process::id()));
        std::fs::write(&path, bytes).expect("temp dir is writable");
        path
    })
    .clone()
}

/// A fresh directory under the system's temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "fraglab-trace-test-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of the files in the directory, sorted.
    #[allow(dead_code)] // Not every test file lists directories.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
