//! Errors of specs and presets. A leaf module: the distributions ([`crate::dist`]) and the
//! spec ([`crate::spec`]) both report through it.

use std::path::PathBuf;

/// What went wrong with a spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkloadSpecError {
    /// A file could not be read.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        message: String,
    },
    /// A file is not valid TOML or does not fit the schema.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What and where.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}
