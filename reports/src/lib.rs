//! `fraglab-reports`: the results schema, and saving and loading result files.
//!
//! One run is one [`RunResult`], saved as JSON with its timeline beside it as CSV
//! ([`RunResult::save`]). Files are written atomically (a temporary file renamed into place),
//! so a reader never sees half a result, and a run cut short is saved with `complete: false`.
//! `docs/results-schema.md` describes every field; [`SCHEMA`] is its version. Renderers (tables,
//! Markdown, HTML, charts) read these files and never re-run anything; the reports issue adds
//! them.

pub mod schema;

pub use schema::*;
