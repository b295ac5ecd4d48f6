//! The house rules of the workspace's sources, checked on every test run: no source file a
//! reader cannot hold (over 1,000 lines), no two sibling modules of a crate that use each
//! other (directly or round a longer circle), and no doc comment that points outside the
//! repository (the design notes it once cited are `docs/design.md` now).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's library and binary crates, by folder.
const CRATES: &[&str] = &[
    "units",
    "allocators",
    "engine",
    "workloads",
    "reports",
    "harness",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file under `src/` (`[]` for the crate root).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its tests and comment lines.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers of a path written after `prefix` (`crate::a::b::C` gives `a`, `b`, `C`).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    code.match_indices(prefix)
        .filter(|(i, _)| {
            let before = code[..*i].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
        })
        .map(|(i, _)| {
            code[i + prefix.len()..]
                .split("::")
                .map(|seg| {
                    let end = seg
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(seg.len());
                    &seg[..end]
                })
                .take_while(|seg| !seg.is_empty())
                .collect()
        })
        .collect()
}

/// The use of `target` by `module` as an arrow between two siblings: the children of their
/// deepest common ancestor that hold each. None when one holds the other (a module may use its
/// parent's trait, and a parent its children).
fn arrow(module: &[String], target: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let common = module
        .iter()
        .zip(target)
        .take_while(|(a, b)| a == b)
        .count();
    (common < module.len() && common < target.len())
        .then(|| (module[..=common].to_vec(), target[..=common].to_vec()))
}

/// A circle in `arrows`, if there is one, as the modules round it.
fn circle(arrows: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    // Depth-first, with the path being walked: an arrow back into it closes a circle.
    fn walk(
        m: &Vec<String>,
        arrows: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            return Some(path[i..].to_vec());
        }
        if !done.insert(m.clone()) {
            return None;
        }
        path.push(m.clone());
        for n in arrows.get(m).into_iter().flatten() {
            if let Some(c) = walk(n, arrows, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    arrows
        .keys()
        .find_map(|m| walk(m, arrows, &mut Vec::new(), &mut done))
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let mut too_long = Vec::new();
    for krate in CRATES {
        let mut files = Vec::new();
        rust_files(&workspace().join(krate).join("src"), &mut files);
        for f in files {
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            if lines > 1000 {
                too_long.push(format!("{} ({lines} lines)", f.display()));
            }
        }
    }
    assert!(too_long.is_empty(), "split by concept: {too_long:?}");
}

#[test]
fn no_two_sibling_modules_use_each_other() {
    for krate in CRATES {
        let src = workspace().join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        // The binary's root is a crate of its own.
        files.retain(|f| !f.ends_with("src/main.rs"));
        let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
        let mut arrows: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for f in &files {
            let module = module_of(&src, f);
            let code = code(&std::fs::read_to_string(f).unwrap());
            let parent = &module[..module.len().saturating_sub(1)];
            let targets = paths_after(&code, "crate::")
                .into_iter()
                .map(|p| p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .chain(paths_after(&code, "super::").into_iter().map(|p| {
                    parent
                        .iter()
                        .cloned()
                        .chain(p.iter().map(|s| s.to_string()))
                        .collect()
                }));
            for t in targets {
                // The module the path names: its longest prefix that is a module.
                let k = (0..=t.len()).rev().find(|&k| modules.contains(&t[..k]));
                if let Some((from, to)) = k.and_then(|k| arrow(&module, &t[..k])) {
                    arrows.entry(from).or_default().insert(to);
                }
            }
        }
        if let Some(c) = circle(&arrows) {
            let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
            panic!(
                "{krate}: modules use each other round a circle: {}",
                names.join(" -> ")
            );
        }
    }
}

#[test]
fn no_doc_comment_points_outside_the_repository() {
    let mut found = Vec::new();
    for krate in CRATES {
        let mut files = Vec::new();
        rust_files(&workspace().join(krate), &mut files);
        for f in files
            .iter()
            .filter(|f| !f.components().any(|c| c.as_os_str() == "target"))
        {
            let text = std::fs::read_to_string(f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let comment = line.trim_start().starts_with("//");
                if comment && (line.contains("REFERENCE.md") || line.contains("DESIGN.md")) {
                    found.push(format!("{}:{}", f.display(), i + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "cite docs/design.md or the upstream source: {found:?}"
    );
}

#[test]
fn the_rule_sees_a_circle_and_allows_parents() {
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        arrow(&m("peer::redis"), &m("peer::resp")),
        Some((m("peer::redis"), m("peer::resp")))
    );
    assert_eq!(arrow(&m("peer::redis"), &m("peer")), None, "its parent");
    assert_eq!(arrow(&m("peer"), &m("peer::resp")), None, "its child");
    assert_eq!(
        arrow(&m("run"), &m("peer::resp")),
        Some((m("run"), m("peer")))
    );
    let code = "use crate::peer::resp::{bulk, Reply};\nlet x = super::text::read(c);";
    assert_eq!(paths_after(code, "crate::"), [vec!["peer", "resp"]]);
    assert_eq!(paths_after(code, "super::"), [vec!["text", "read"]]);
    let mut arrows = BTreeMap::new();
    arrows.insert(m("a"), BTreeSet::from([m("b")]));
    arrows.insert(m("b"), BTreeSet::from([m("c")]));
    assert_eq!(circle(&arrows), None);
    arrows.insert(m("c"), BTreeSet::from([m("a")]));
    assert_eq!(circle(&arrows), Some(vec![m("a"), m("b"), m("c")]));
}
