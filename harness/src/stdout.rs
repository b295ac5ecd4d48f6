//! The one way fraglab writes to stdout.
//!
//! A reader that goes away (`fraglab compare | head -1`) closes the pipe; Rust ignores SIGPIPE,
//! so the write fails with EPIPE, and `print!` would panic. [`print`] reports it as
//! [`StdoutError::Closed`] instead, and the command ends quietly with [`CLOSED_STDOUT`], as a
//! shell reports a process killed by SIGPIPE, with nothing on stderr. Results already on disk
//! are kept; `compare` marks its state `interrupted`.

use std::io::Write;

/// Exit status when stdout was closed under us: 128 + SIGPIPE (13).
pub const CLOSED_STDOUT: u8 = 141;

/// Why [`print`] failed.
#[derive(Debug)]
pub enum StdoutError {
    /// The reader closed the pipe (EPIPE): end quietly with [`CLOSED_STDOUT`].
    Closed,
    /// Any other write error (a full disk behind a redirection): worth an error message.
    Failed(std::io::Error),
}

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StdoutError::Closed => write!(f, "stdout: closed"),
            StdoutError::Failed(e) => write!(f, "stdout: {e}"),
        }
    }
}

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => StdoutError::Closed,
            _ => StdoutError::Failed(e),
        })
}

/// Writes `text` to stderr as is; a closed or failing stderr is ignored (`eprint!` would
/// panic, and a panic mid-`compare` would leave its state `running`).
pub fn note(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `eprintln!` through [`note`]: a line on stderr that never panics.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::stdout::note(&(format!($($arg)*) + "\n"))
    };
}
