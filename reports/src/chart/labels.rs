//! Names and numbers as charts show them: short allocator specs, series labels, tick
//! numbers, slugs and workload names.

use std::path::Path;

use crate::set::{human_bytes, CellKey, ResultSet};

/// The allocator spec without the settings that are at their defaults, where that stays
/// unambiguous: `slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576` is `slab`, and
/// `slab:factor=1.08,min=48,chunk_max=16384,item_max=1048576` is `slab:factor=1.08,chunk_max=16k`,
/// and `log:segment=1048576,cleaner=cost-benefit,utilization=0.9,free_min=2` is `log:segment=1m`.
/// zmalloc keeps both its settings (its backend and prefix are what tell its variants apart).
pub fn short_alloc(spec: &str) -> String {
    let (name, rest) = match spec.split_once(':') {
        Some((n, r)) => (n, r),
        None => return spec.to_string(),
    };
    let defaults: &[(&str, &str)] = match name {
        "slab" => &[
            ("factor", "1.25"),
            ("min", "48"),
            ("chunk_max", "524288"),
            ("item_max", "1048576"),
            ("automove_ratio", "0.8"),
            ("automove_window", "30"),
            ("tick_ops", "100000"),
            ("move_us", "750"),
        ],
        "bump" => &[("capacity", "0")],
        "log" => &[
            ("segment", "8388608"),
            ("cleaner", "cost-benefit"),
            ("utilization", "0.9"),
            ("free_min", "2"),
        ],
        _ => return spec.to_string(),
    };
    let mut kept = Vec::new();
    for pair in rest.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let default = defaults.iter().find(|(dk, _)| *dk == k).map(|(_, dv)| *dv);
        let is_default = match default {
            Some(d) => match (v.parse::<f64>(), d.parse::<f64>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => v == d,
            },
            None => false,
        };
        if is_default {
            continue;
        }
        let v = if matches!(k, "min" | "chunk_max" | "item_max" | "capacity" | "segment") {
            short_size(v)
        } else {
            v.to_string()
        };
        kept.push(format!("{k}={v}"));
    }
    if kept.is_empty() {
        name.to_string()
    } else {
        format!("{name}:{}", kept.join(","))
    }
}

/// `16384` -> `16k`, `2097152` -> `2m` (the spec syntax, powers of 1024); others unchanged.
pub(super) fn short_size(v: &str) -> String {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => {
            for (unit, suffix) in [(1u64 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")] {
                if n % unit == 0 {
                    return format!("{}{suffix}", n / unit);
                }
            }
            v.to_string()
        }
        _ => v.to_string(),
    }
}

/// The legend name of a cell's series: the short allocator spec ([`short_alloc`]) and the
/// layout, and the target when it is not the engine (`slab / memcached`,
/// `zmalloc:backend=jemalloc,prefix=0 / redis`). The memory limit is not part of it.
pub fn series_label(key: &CellKey) -> String {
    let mut s = format!("{} / {}", short_alloc(&key.alloc), key.layout);
    if key.defrag.is_some() {
        s.push_str(" + defrag");
    }
    if key.target != "engine" {
        s.push_str(&format!(" [{}]", key.target));
    }
    s
}

/// What a series is: allocator spec, layout, target, and active defrag's settings.
pub(super) type Ident = (String, String, String, Option<String>);

pub(super) fn ident(key: &CellKey) -> Ident {
    (
        key.alloc.clone(),
        key.layout.clone(),
        key.target.clone(),
        key.defrag.clone(),
    )
}

/// Every series of a set, with a stable style index (so a series keeps its colour across
/// charts) and a label that is unique within the set.
pub(super) struct Names {
    pub(super) idents: Vec<Ident>,
    pub(super) labels: Vec<String>,
}

impl Names {
    pub(super) fn of(set: &ResultSet) -> Names {
        let mut idents: Vec<Ident> = Vec::new();
        let mut keys: Vec<&CellKey> = Vec::new();
        for c in &set.cells {
            let id = ident(&c.key);
            if !idents.contains(&id) {
                idents.push(id);
                keys.push(&c.key);
            }
        }
        let short: Vec<String> = keys.iter().map(|k| series_label(k)).collect();
        let labels = short
            .iter()
            .zip(&keys)
            .map(|(s, k)| {
                if short.iter().filter(|o| *o == s).count() > 1 {
                    // Two specs shorten alike: fall back to the full spec.
                    let mut l = k.series();
                    if k.target != "engine" {
                        l.push_str(&format!(" [{}]", k.target));
                    }
                    l
                } else {
                    s.clone()
                }
            })
            .collect();
        Names { idents, labels }
    }

    pub(super) fn index(&self, key: &CellKey) -> usize {
        let id = ident(key);
        self.idents.iter().position(|i| *i == id).unwrap_or(0)
    }

    pub(super) fn label(&self, key: &CellKey) -> String {
        self.labels[self.index(key)].clone()
    }

    /// The label with the memory limit, when there is one.
    pub(super) fn label_limited(&self, key: &CellKey) -> String {
        match key.memory_limit {
            Some(m) => format!("{} ({} limit)", self.label(key), human_bytes(m as f64)),
            None => self.label(key),
        }
    }
}

pub(super) fn fin(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

pub(super) fn nice_step(span: f64, ticks: usize) -> f64 {
    let raw = span / ticks.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    step * mag
}

pub(super) fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub(super) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    let s = if a == 0.0 {
        return "0".into();
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    trim(s)
}

pub(super) fn fmt_count(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(format!("{:.2}", v / 1e9)))
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else {
        fmt_num(v)
    }
}

pub(super) fn fmt_nanos(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{} s", fmt_num(ns / 1e9))
    } else if ns >= 1e6 {
        format!("{} ms", fmt_num(ns / 1e6))
    } else if ns >= 1e3 {
        format!("{} µs", fmt_num(ns / 1e3))
    } else {
        format!("{} ns", fmt_num(ns))
    }
}

/// A file-name safe slug: lowercase ASCII letters, digits and single dashes.
pub(super) fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "workload".into()
    } else {
        out
    }
}

/// A workload's name as shown: file and trace workloads by their file name.
pub(super) fn workload_label(w: &str) -> String {
    for prefix in ["file:", "trace:"] {
        if let Some(path) = w.strip_prefix(prefix) {
            let name = Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.to_string());
            return format!("{prefix}{name}");
        }
    }
    w.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_specs_drop_defaults_only() {
        assert_eq!(
            short_alloc("slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576"),
            "slab"
        );
        assert_eq!(
            short_alloc("slab:factor=1.08,min=48,chunk_max=16384,item_max=1048576"),
            "slab:factor=1.08,chunk_max=16k"
        );
        assert_eq!(
            short_alloc("slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576,sizes=96-192"),
            "slab:sizes=96-192"
        );
        assert_eq!(
            short_alloc("zmalloc:backend=jemalloc,prefix=0"),
            "zmalloc:backend=jemalloc,prefix=0"
        );
        assert_eq!(short_alloc("jemalloc"), "jemalloc");
        assert_eq!(short_alloc("bump:capacity=0"), "bump");
        assert_eq!(
            short_alloc("log:segment=8388608,cleaner=cost-benefit,utilization=0.9,free_min=2"),
            "log"
        );
        assert_eq!(
            short_alloc("log:segment=1048576,cleaner=greedy,utilization=0.80,free_min=2"),
            "log:segment=1m,cleaner=greedy,utilization=0.80"
        );
    }
}
