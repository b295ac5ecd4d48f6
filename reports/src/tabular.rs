//! A table's shape, shared by every table of a report ([`crate::table`], [`crate::baseline`]):
//! the [`Table`] type and the columns that name a cell.

use crate::set::{human_bytes, Cell};

/// A table: a title, column headers and rows of cells already formatted.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Anchor id.
    pub id: String,
    /// Title.
    pub title: String,
    /// What the table shows and how to read it.
    pub note: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

fn limit(c: &Cell) -> String {
    c.key
        .memory_limit
        .map_or("none".to_string(), |m| human_bytes(m as f64))
}

pub(crate) fn row_head(c: &Cell) -> Vec<String> {
    vec![
        c.key.workload.clone(),
        match &c.key.defrag {
            Some(d) => format!("{} + defrag {d}", c.key.alloc),
            None => c.key.alloc.clone(),
        },
        c.key.layout.clone(),
        limit(c),
        c.key.target.clone(),
    ]
}

const HEAD: [&str; 5] = ["workload", "allocator", "layout", "memory limit", "target"];

pub(crate) fn headers(rest: &[&str]) -> Vec<String> {
    HEAD.iter().chain(rest).map(|s| s.to_string()).collect()
}
