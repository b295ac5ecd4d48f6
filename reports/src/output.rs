//! Output files: what may be replaced, checks made before a run, and atomic writes.
//!
//! The rules (also in `docs/design.md`, "Output files"):
//!
//! - **Only regular files are replaced.** A path that exists and is a symlink (looked at with
//!   `symlink_metadata`, never followed), a directory, a character or block device, a FIFO or
//!   a socket is refused with an error naming the path and what it is, and nothing is written:
//!   `--out /dev/null` must never turn `/dev/null` into a regular file, and a FIFO must never
//!   block the writer.
//! - **Checked before the run.** [`check_output`] refuses a bad target and proves the
//!   directory writable by creating and removing a file in it (permission bits do not stop
//!   root; a read-only mount, a missing directory or a parent that is a file do), so a bad
//!   `--out` costs nothing measured.
//! - **Atomic.** Every file is written to a temporary file in the same directory, synced, and
//!   renamed onto the target ([`write_atomic`]); the target is checked again just before.
//! - **A result and its timeline together.** [`write_pair`] writes the JSON and its timeline
//!   CSV so that a reader finds the new pair, or the old pair, or neither: see its docs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A result file that could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ResultError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

fn err(path: &Path, message: impl ToString) -> ResultError {
    ResultError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// What a file system object is, in words, for anything but a regular file.
fn kind_of(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    Some(if t.is_file() {
        return None;
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    })
}

/// Refuses `path` if it exists and is anything but a regular file (a symlink is not followed).
/// A missing path is fine: it will be created.
///
/// ```
/// let e = fraglab_reports::output::check_target(std::path::Path::new("/dev/null"));
/// assert!(e.unwrap_err().to_string().contains("a character device"));
/// ```
pub fn check_target(path: &Path) -> Result<(), ResultError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => match kind_of(&meta) {
            None => Ok(()),
            Some(kind) => Err(err(
                path,
                format!("is {kind}; fraglab writes only regular files and replaced nothing"),
            )),
        },
        // Nothing there; a parent that is missing or a file is [`check_writable`]'s to name.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(err(path, e)),
    }
}

/// The directory a file at `path` lives in (`.` for a bare name).
pub fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A temporary name beside `target`: hidden, unique across processes and calls.
fn temp_beside(target: &Path, tag: &str) -> Result<PathBuf, ResultError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .ok_or_else(|| err(target, "not a file name"))?
        .to_string_lossy();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ok(dir_of(target).join(format!(".{name}.{tag}{}-{n}.tmp", std::process::id())))
}

/// Creates `path` exclusively (never opens what is there: a FIFO would block).
fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Proves that a file can be created beside `path`: the directory exists, is a directory, and
/// takes a new file (creates one and removes it). Permission bits do not stop root, so only
/// trying tells.
pub fn check_writable(path: &Path) -> Result<(), ResultError> {
    let dir = dir_of(path);
    let tmp = temp_beside(path, "check")?;
    match create_new(&tmp) {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&tmp);
            Ok(())
        }
        Err(e) => Err(err(
            path,
            format!("cannot create a file in {}: {e}", dir.display()),
        )),
    }
}

/// [`check_target`] then [`check_writable`]: everything that can be known about writing
/// `path` before the work that produces it.
pub fn check_output(path: &Path) -> Result<(), ResultError> {
    check_target(path)?;
    check_writable(path)
}

/// A temporary file removed when dropped unless renamed onto its target.
struct Temp {
    path: PathBuf,
    kept: bool,
}

impl Temp {
    /// Writes `bytes` to a new temporary file beside `target` and syncs it.
    fn write(target: &Path, bytes: &[u8]) -> Result<Temp, ResultError> {
        let path = temp_beside(target, "")?;
        let mut f = create_new(&path).map_err(|e| err(target, e))?;
        let temp = Temp { path, kept: false };
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| err(target, e))?;
        Ok(temp)
    }

    fn rename_onto(&mut self, target: &Path) -> Result<(), ResultError> {
        check_target(target)?;
        std::fs::rename(&self.path, target).map_err(|e| err(target, e))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, then renamed.
/// Refuses a target that is not a regular file ([`check_target`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultError> {
    check_target(path)?;
    Temp::write(path, bytes)?.rename_onto(path)
}

/// Writes a result (`json` at `json_path`) and its timeline (`csv` at `csv_path`, in the same
/// directory) so that a reader finds the new pair, the old pair, or neither; never a result
/// without its timeline, and never a timeline paired with nothing.
///
/// 1. Both are written to temporary files and synced. A failure here (ENOSPC, EIO) removes
///    the temporary files and leaves whatever was there untouched.
/// 2. The old timeline, if any, is kept under a temporary hard link.
/// 3. The CSV is renamed into place first and the JSON last, so a result file is never
///    visible before its timeline.
/// 4. If a rename fails, the old timeline is put back when an old result is there to go
///    with it; otherwise the timeline at `csv_path` (the new one, or a stale one from an
///    earlier run that left no result) is removed, so no timeline is left paired with
///    nothing.
pub fn write_pair(
    json_path: &Path,
    json: &[u8],
    csv_path: &Path,
    csv: &[u8],
) -> Result<(), ResultError> {
    check_target(csv_path)?;
    check_target(json_path)?;
    let mut csv_tmp = Temp::write(csv_path, csv)?;
    let mut json_tmp = Temp::write(json_path, json)?;
    let backup = temp_beside(csv_path, "old")?;
    let backed_up = std::fs::hard_link(csv_path, &backup).is_ok();
    let renamed = csv_tmp
        .rename_onto(csv_path)
        .and_then(|()| json_tmp.rename_onto(json_path));
    if renamed.is_err() {
        let old_result = std::fs::symlink_metadata(json_path).is_ok_and(|m| m.is_file());
        if old_result && backed_up {
            let _ = std::fs::rename(&backup, csv_path);
        } else if !old_result {
            let _ = std::fs::remove_file(csv_path);
        }
    }
    let _ = std::fs::remove_file(&backup);
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fraglab-output-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn special_files_are_named_and_refused() {
        let d = scratch("special");
        std::os::unix::fs::symlink("/etc/hostname", d.join("link")).unwrap();
        let cases = [
            (d.join("link"), "a symbolic link"),
            (d.clone(), "a directory"),
            (PathBuf::from("/dev/null"), "a character device"),
        ];
        for (p, kind) in cases {
            let e = write_atomic(&p, b"x").unwrap_err().to_string();
            assert!(e.contains(kind) && e.contains(&*p.to_string_lossy()), "{e}");
        }
        assert!(std::fs::symlink_metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_symlink()
            .eq(&false));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn unwritable_directories_are_found_before_writing() {
        let d = scratch("unwritable");
        std::fs::write(d.join("file"), b"x").unwrap();
        assert!(check_output(&d.join("file/out.json")).is_err());
        assert!(check_output(&d.join("missing/out.json")).is_err());
        // /proc is not writable even by root.
        assert!(check_writable(Path::new("/proc/fraglab-out.json")).is_err());
        assert!(check_output(&d.join("out.json")).is_ok());
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no file left");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_pair_replaces_both_and_leaves_no_temporary() {
        let d = scratch("pair");
        let (j, c) = (d.join("r.json"), d.join("r.timeline.csv"));
        write_pair(&j, b"old", &c, b"old").unwrap();
        write_pair(&j, b"new", &c, b"new").unwrap();
        assert_eq!(std::fs::read(&j).unwrap(), b"new");
        assert_eq!(std::fs::read(&c).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2);
        // A JSON target that is a directory: refused before anything is replaced, and nothing
        // temporary stays.
        std::fs::remove_file(&j).unwrap();
        std::fs::create_dir(&j).unwrap();
        assert!(write_pair(&j, b"x", &c, b"x").is_err());
        assert_eq!(std::fs::read(&c).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2);
        let _ = std::fs::remove_dir_all(&d);
    }
}
