//! `fraglab-reports`: the results schema, and the reports rendered from saved results.
//!
//! A pipeline in stages, as criterion.rs does it (measure, then analyse saved data, then
//! render through several backends):
//!
//! 1. [`schema`]: one run is one [`RunResult`], saved as JSON with its timeline beside it as
//!    CSV ([`RunResult::save`]), atomically; a run cut short is saved with `complete: false`.
//!    `docs/results-schema.md` describes every field; [`SCHEMA`] is its version.
//! 2. [`set`]: a directory of results loaded and grouped into cells (one configuration, its
//!    repeats), with medians and spreads; files that are not valid results are listed, not
//!    fatal.
//! 3. [`table`] and [`chart`]: the numbers and the figures; [`baseline`]: a set against an
//!    earlier one (ratios, and every memory counter that changed); [`ramcloud`]: RAMCloud's
//!    paper beside the set (its Figure 1 as a table, the log's write amplification);
//!    [`over_time`]: memory over time, memcached's slab automover and Redis's active defrag
//!    (items kept, pages moved, fragmentation before and after).
//! 4. [`render`]: a Markdown file and a self-contained HTML page; [`summary`]: the text
//!    `fraglab run` prints; [`compare`]: `compare.json` (typed) and the table `fraglab
//!    compare` prints. Rendering never re-runs anything.

pub mod aggregates;
pub mod baseline;
pub mod chart;
pub mod compare;
pub mod output;
pub mod over_time;
pub mod ramcloud;
pub mod render;
pub mod schema;
pub mod set;
pub mod summary;
pub mod table;
mod tabular;

pub use aggregates::{AggregateRow, Aggregates, Conversion};
pub use schema::*;
pub use set::{Cell, CellKey, ResultSet, Skipped, Spread};
