//! What the reports tests share: exact snapshots of rendered text.
//!
//! A snapshot is a file under `tests/snapshots/`; a rendering is compared with it byte for
//! byte, and a failure shows the lines that differ. `UPDATE_SNAPSHOTS=1 cargo test -p
//! fraglab-reports` rewrites the snapshots after an intended change.

use std::path::Path;

/// Compares `got` with the snapshot `name`, or writes it under `UPDATE_SNAPSHOTS=1`.
pub fn check_snapshot(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        eprintln!("UPDATE_SNAPSHOTS=1: wrote {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; UPDATE_SNAPSHOTS=1 cargo test -p fraglab-reports writes it",
            path.display()
        )
    });
    if got != want {
        panic!(
            "the rendering differs from {}:\n{}\nIf the change is intended: \
             UPDATE_SNAPSHOTS=1 cargo test -p fraglab-reports",
            path.display(),
            line_diff(&want, got)
        );
    }
}

/// The lines that differ between `want` and `got`, numbered, with a line of context: a
/// readable failure rather than two whole documents.
fn line_diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out = String::new();
    let mut shown = 0;
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i), g.get(i));
        if a == b {
            continue;
        }
        if shown == 20 {
            out.push_str("... (more lines differ)\n");
            break;
        }
        if let Some(prev) = i.checked_sub(1).and_then(|p| w.get(p)) {
            out.push_str(&format!("  {:>4}   {prev}\n", i));
        }
        out.push_str(&format!(
            "- {:>4}   {}\n+ {:>4}   {}\n",
            i + 1,
            a.copied().unwrap_or("<end of file>"),
            i + 1,
            b.copied().unwrap_or("<end of file>")
        ));
        shown += 1;
    }
    if w.len() != g.len() {
        out.push_str(&format!("expected {} lines, got {}\n", w.len(), g.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn line_diff_names_the_lines_that_differ() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert!(d.contains("-    2   b\n+    2   B\n"), "{d}");
        assert!(d.contains("-    4   <end of file>\n+    4   d\n"), "{d}");
        assert!(d.contains("expected 3 lines, got 4"), "{d}");
        assert_eq!(line_diff("same\n", "same\n"), "");
    }
}
