//! Charts rendered from the fixture results: the expected charts exist, every SVG is
//! well-formed with its title and legend drawn as text, every PNG is a real PNG, and odd data
//! renders without a panic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fraglab_reports::chart::{render_all, series_label, ChartOut};
use fraglab_reports::{AllocatorDetail, ResultSet, RunResult, SlabClassDetail, SlabDetail};

fn fixture() -> ResultSet {
    ResultSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results")).unwrap()
}

/// A fresh directory for PNGs, removed on drop. With `FRAGLAB_KEEP_CHARTS=DIR` the charts
/// (PNG and SVG) are written to `DIR/<name>` and kept, to look at them.
struct TempDir(PathBuf, bool);

impl TempDir {
    fn new(name: &str) -> TempDir {
        if let Some(keep) = std::env::var_os("FRAGLAB_KEEP_CHARTS") {
            let dir = PathBuf::from(keep).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            return TempDir(dir, true);
        }
        let dir = std::env::temp_dir().join(format!(
            "fraglab-charts-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir, false)
    }

    fn keep_svgs(&self, charts: &[ChartOut]) {
        if self.1 {
            for c in charts {
                std::fs::write(self.0.join(format!("{}.svg", c.id)), &c.svg).unwrap();
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn render(set: &ResultSet, name: &str) -> (Vec<ChartOut>, TempDir) {
    let dir = TempDir::new(name);
    let charts = render_all(set, Some(&dir.0)).unwrap();
    dir.keep_svgs(&charts);
    (charts, dir)
}

// ---- a small XML well-formedness check ------------------------------------------------------

#[derive(Debug, Default)]
struct Xml {
    root: String,
    root_attrs: Vec<(String, String)>,
    /// The text content of every `<text>` element, entities decoded, trimmed.
    texts: Vec<String>,
    elements: usize,
}

fn decode(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find(';')
            .ok_or_else(|| format!("unterminated entity in {s:?}"))?;
        let name = &rest[i + 1..i + end];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad entity &{n};"))?,
            n if n.starts_with('#') => n[1..]
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad entity &{n};"))?,
            n => return Err(format!("unknown entity &{n};")),
        };
        out.push(c);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_:-.".contains(c))
}

/// Parses `<name attr="v" ...` up to (not including) `>` or `/>`.
fn parse_tag(tag: &str) -> Result<(String, Vec<(String, String)>), String> {
    let name_end = tag.find(|c: char| c.is_whitespace()).unwrap_or(tag.len());
    let name = &tag[..name_end];
    if !is_name(name) {
        return Err(format!("bad element name {name:?}"));
    }
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut rest = tag[name_end..].trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("attribute without value in <{name}: {rest:?}"))?;
        let key = rest[..eq].trim();
        if !is_name(key) {
            return Err(format!("bad attribute name {key:?} in <{name}"));
        }
        let after = rest[eq + 1..].trim_start();
        let q = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| format!("unquoted attribute {key} in <{name}"))?;
        let close = after[1..]
            .find(q)
            .ok_or_else(|| format!("unterminated attribute {key} in <{name}"))?;
        let raw = &after[1..1 + close];
        if raw.contains('<') {
            return Err(format!("`<` in attribute {key} of <{name}"));
        }
        if attrs.iter().any(|(k, _)| k == key) {
            return Err(format!("duplicate attribute {key} in <{name}"));
        }
        attrs.push((key.to_string(), decode(raw)?));
        let next = &after[2 + close..];
        if !next.is_empty() && !next.starts_with(char::is_whitespace) {
            return Err(format!("no space after attribute {key} in <{name}"));
        }
        rest = next.trim_start();
    }
    Ok((name.to_string(), attrs))
}

/// Checks that `s` is one well-formed XML document and collects what the tests look at.
fn check_xml(s: &str) -> Result<Xml, String> {
    let mut xml = Xml::default();
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut rest = s.trim_start();
    if rest.starts_with("<?xml") {
        let end = rest.find("?>").ok_or("unterminated XML declaration")?;
        rest = &rest[end + 2..];
    }
    let mut done = false;
    loop {
        let lt = rest.find('<');
        let text = &rest[..lt.unwrap_or(rest.len())];
        if text.contains('>') && stack.is_empty() && !text.trim().is_empty() {
            return Err(format!("text outside the root: {text:?}"));
        }
        let text = decode(text)?;
        if stack.is_empty() && !text.trim().is_empty() {
            return Err(format!("text outside the root: {text:?}"));
        }
        if let Some(top) = stack.last_mut() {
            top.1.push_str(&text);
        }
        let Some(lt) = lt else { break };
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or("unterminated comment")?;
            rest = &r[end + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or("unterminated processing instruction")?;
            rest = &r[end + 2..];
            continue;
        }
        let gt = rest.find('>').ok_or("unterminated tag")?;
        let inner = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = inner.strip_prefix('/') {
            let (open, content) = stack.pop().ok_or_else(|| format!("stray </{name}>"))?;
            if open != name.trim() {
                return Err(format!("<{open}> closed by </{name}>"));
            }
            if open == "text" {
                // The backend writes the text on its own line.
                xml.texts.push(content.trim().to_string());
            }
            if stack.is_empty() {
                done = true;
            }
            continue;
        }
        if done {
            return Err("a second root element".into());
        }
        let (self_closing, inner) = match inner.strip_suffix('/') {
            Some(i) => (true, i),
            None => (false, inner),
        };
        let (name, attrs) = parse_tag(inner)?;
        xml.elements += 1;
        if xml.elements == 1 {
            xml.root = name.clone();
            xml.root_attrs = attrs;
        }
        if self_closing {
            if stack.is_empty() {
                done = true;
            }
        } else {
            stack.push((name, String::new()));
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed <{}>", stack.last().unwrap().0));
    }
    if !done {
        return Err("no root element".into());
    }
    Ok(xml)
}

#[test]
fn xml_check_rejects_bad_documents() {
    assert!(check_xml("<svg width=\"1\"><text>a &amp; b</text></svg>").is_ok());
    assert!(check_xml("<svg><text>a</svg>").is_err());
    assert!(check_xml("<svg><text>a & b</text></svg>").is_err());
    assert!(check_xml("<svg width=1></svg>").is_err());
    assert!(check_xml("<svg></svg><svg></svg>").is_err());
    assert!(check_xml("<svg a=\"1\" a=\"2\"/>").is_err());
    assert!(check_xml("").is_err());
}

fn attr(xml: &Xml, name: &str) -> Option<f64> {
    xml.root_attrs
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.trim_end_matches("px").parse().ok())
}

// ---- the fixture ----------------------------------------------------------------------------

#[test]
fn fixture_gives_the_expected_charts() {
    let (charts, _dir) = render(&fixture(), "ids");
    let ids: Vec<&str> = charts.iter().map(|c| c.id.as_str()).collect();
    let expected = [
        "memory-needed",
        "throughput",
        "bytes-ramcloud-w3",
        "timeline-ramcloud-w3",
        "utilization-ramcloud-w3",
        "slab-classes-ramcloud-w3",
        "latency-ramcloud-w3",
        "bytes-etc",
        "timeline-etc",
        "utilization-etc",
        "slab-classes-etc",
        "latency-etc",
        "miss-ratio-etc",
    ];
    for e in expected {
        assert!(ids.contains(&e), "no chart {e}; got {ids:?}");
    }
    // ramcloud-w3 ran under one memory setting only: no miss-ratio chart for it. No log
    // configuration: no write-amplification chart.
    assert!(!ids.contains(&"log-write-amplification"), "{ids:?}");
    assert!(!ids.contains(&"miss-ratio-ramcloud-w3"), "{ids:?}");
    assert_eq!(ids.len(), expected.len(), "{ids:?}");
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "ids repeat: {ids:?}");
    for c in &charts {
        assert!(
            !c.id.is_empty()
                && c.id
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'),
            "id {:?} is not file-name safe",
            c.id
        );
        assert!(!c.title.is_empty() && !c.caption.is_empty(), "{}", c.id);
    }
}

#[test]
fn svgs_are_well_formed_with_title_and_text() {
    let (charts, _dir) = render(&fixture(), "svg");
    for c in &charts {
        let xml = check_xml(&c.svg).unwrap_or_else(|e| panic!("{}: not well-formed: {e}", c.id));
        assert_eq!(xml.root, "svg", "{}", c.id);
        let (w, h) = (attr(&xml, "width"), attr(&xml, "height"));
        assert!(
            w.is_some_and(|w| w > 0.0) && h.is_some_and(|h| h > 0.0),
            "{}: root size {w:?} x {h:?}",
            c.id
        );
        // Text is drawn as text (the backend writes <text>), the title among it.
        assert!(
            xml.texts.len() > 5,
            "{}: {} text elements",
            c.id,
            xml.texts.len()
        );
        assert!(
            xml.texts.iter().any(|t| t.trim() == c.title),
            "{}: title {:?} not drawn",
            c.id,
            c.title
        );
        assert!(c.svg.contains("font-family=\"sans-serif\""), "{}", c.id);
        assert!(!c.svg.contains("NaN") && !c.svg.contains("inf"), "{}", c.id);
    }
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "too short for a PNG");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "no PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is not IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn pngs_are_written_beside_each_chart() {
    let (charts, dir) = render(&fixture(), "png");
    assert!(!charts.is_empty());
    for c in &charts {
        let path = dir.0.join(format!("{}.png", c.id));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (w, h) = png_size(&bytes);
        assert!(w > 0 && h > 0, "{}: {w} x {h}", c.id);
        // The same size as the SVG.
        let xml = check_xml(&c.svg).unwrap();
        assert_eq!(
            (Some(f64::from(w)), Some(f64::from(h))),
            (attr(&xml, "width"), attr(&xml, "height")),
            "{}",
            c.id
        );
    }
    // Nothing but the charts: no temporary files left behind.
    let files: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(files.is_empty(), "left behind: {files:?}");
}

#[test]
fn no_png_dir_writes_no_files() {
    let charts = render_all(&fixture(), None).unwrap();
    assert!(charts.len() >= 11);
}

#[test]
fn legends_name_every_series_of_the_workload() {
    let set = fixture();
    let (charts, _dir) = render(&set, "legend");
    let chart = |id: &str| -> Xml {
        let c = charts.iter().find(|c| c.id == id).unwrap();
        check_xml(&c.svg).unwrap()
    };
    for w in set.workloads() {
        let slug = w.to_lowercase();
        for id in [format!("timeline-{slug}"), format!("latency-{slug}")] {
            let xml = chart(&id);
            for cell in set.cells_of(&w) {
                let label = series_label(&cell.key);
                assert!(
                    xml.texts.iter().any(|t| t.contains(&label)),
                    "{id}: no legend entry for {label}; texts: {:?}",
                    xml.texts
                );
            }
        }
        let xml = chart(&format!("bytes-{slug}"));
        for cell in set.cells_of(&w) {
            let label = series_label(&cell.key);
            assert!(
                xml.texts.iter().any(|t| t.contains(&label)),
                "bytes-{slug}: {label}"
            );
        }
    }
    // The charts across workloads name every series of the set.
    for id in ["throughput", "memory-needed"] {
        let xml = chart(id);
        for cell in &set.cells {
            let label = series_label(&cell.key);
            assert!(xml.texts.iter().any(|t| t == &label), "{id}: {label}");
        }
        assert!(
            xml.texts.iter().any(|t| t == "ramcloud-w3") && xml.texts.iter().any(|t| t == "etc")
        );
    }
    // Long specs are shortened in legends, defaults dropped.
    let slab = set
        .cells
        .iter()
        .find(|c| c.key.alloc.starts_with("slab:") && c.key.layout == "memcached")
        .unwrap();
    assert_eq!(series_label(&slab.key), "slab / memcached");
    assert!(!chart("throughput")
        .texts
        .iter()
        .any(|t| t.contains("chunk_max")));
}

#[test]
fn captions_and_titles_say_what_is_shown() {
    let (charts, _dir) = render(&fixture(), "captions");
    let get = |id: &str| charts.iter().find(|c| c.id == id).unwrap();
    // ramcloud-w3 has no gets: its latency chart shows its most frequent kind, and says so.
    let w3 = get("latency-ramcloud-w3");
    assert!(w3.title.contains("set"), "{}", w3.title);
    assert!(w3.caption.contains("most frequent"), "{}", w3.caption);
    let etc = get("latency-etc");
    assert!(etc.title.contains("get"), "{}", etc.title);
    // The slab model holds 25 MiB under a 1 MiB limit (memcached grants each class a first
    // page past the limit): the miss-ratio chart says so. jemalloc stays within its limit as
    // Redis counts it (allocated bytes), though its footprint is over.
    let miss = get("miss-ratio-etc");
    assert!(
        miss.caption
            .contains("slab / memcached (1.00 MiB limit) held 25.00 MiB of slab pages, 24 of"),
        "{}",
        miss.caption
    );
    assert!(
        !miss.caption.contains("jemalloc / compact (1.00 MiB"),
        "{}",
        miss.caption
    );
    let miss_svg = check_xml(&miss.svg).unwrap();
    for limit in ["1.00 MiB", "2.00 MiB", "4.00 MiB", "no limit"] {
        assert!(
            miss_svg.texts.iter().any(|t| t == limit),
            "no x label {limit}"
        );
    }
    // The memory-needed chart has a live-data legend entry and units on its axis.
    let mem = check_xml(&get("memory-needed").svg).unwrap();
    assert!(mem.texts.iter().any(|t| t.contains("live data")));
    assert!(mem
        .texts
        .iter()
        .any(|t| t.contains("MiB)") || t.contains("KiB)")));
    // The w3 slab-classes chart shows the memcached layout and names the one it leaves out.
    let slab = get("slab-classes-ramcloud-w3");
    assert!(slab.title.contains("slab / memcached"), "{}", slab.title);
    assert!(slab.caption.contains("slab / compact"), "{}", slab.caption);
    // Phases are marked on the timeline.
    let tl = check_xml(&get("timeline-ramcloud-w3").svg).unwrap();
    for phase in ["before", "delete", "after"] {
        assert!(
            tl.texts.iter().any(|t| t == phase),
            "phase {phase} not labelled"
        );
    }
}

#[test]
fn an_empty_set_gives_no_charts() {
    let dir = TempDir::new("empty");
    let empty = ResultSet::default();
    let charts = render_all(&empty, Some(&dir.0)).unwrap();
    assert!(charts.is_empty());
}

/// Odd data: empty timelines, no latency, zero and NaN figures, negative fragmentation, a
/// single series, no slab classes. Everything renders, nothing panics.
#[test]
fn odd_data_renders_without_panic() {
    let base = fixture();
    let mut set = base.clone();
    // One series: etc's slab cell without a limit (it has slab classes to get wrong).
    set.cells.retain(|c| {
        c.key.workload == "etc" && c.key.memory_limit.is_none() && c.key.alloc.starts_with("slab")
    });
    assert_eq!(set.cells.len(), 1);
    let edit = |f: &dyn Fn(&mut RunResult)| {
        let mut s = set.clone();
        for c in &mut s.cells {
            for r in &mut c.runs {
                f(r);
            }
        }
        s
    };
    let cases: Vec<(&str, ResultSet)> = vec![
        ("single", set.clone()),
        (
            "empty-timeline",
            edit(&|r| {
                r.timeline.clear();
                r.phases.clear();
            }),
        ),
        ("no-latency", edit(&|r| r.latency.clear())),
        (
            "zeros",
            edit(&|r| {
                for l in r.latency.values_mut() {
                    l.p50_ns = 0;
                    l.p90_ns = 0;
                    l.p99_ns = 0;
                    l.p999_ns = 0;
                    l.max_ns = 0;
                }
                for s in &mut r.timeline {
                    s.memory = Default::default();
                }
                let s = &mut r.summary;
                s.payload_bytes = 0;
                s.requested_bytes = 0;
                s.allocated_bytes = 0;
                s.footprint_bytes = 0;
                s.index_bytes = 0;
                s.ops_per_sec = 0.0;
                s.hits = 0;
                s.misses = 0;
            }),
        ),
        (
            "nan",
            edit(&|r| {
                r.summary.ops_per_sec = f64::NAN;
                r.summary.elapsed_s = 0.0;
            }),
        ),
        (
            "negative-fragmentation",
            edit(&|r| {
                r.summary.footprint_bytes = r.summary.allocated_bytes / 2;
                r.summary.requested_bytes = r.summary.payload_bytes / 2;
            }),
        ),
        (
            "no-classes",
            // Tagged slab but without the slab fields: kept untyped, no classes to draw.
            edit(&|r| r.allocator_detail = serde_json::json!({"allocator": "slab"}).into()),
        ),
        (
            "odd-classes",
            edit(&|r| {
                r.allocator_detail = SlabDetail {
                    classes: vec![
                        SlabClassDetail {
                            class: 1,
                            ..SlabClassDetail::default()
                        },
                        SlabClassDetail {
                            class: 0,
                            chunk_size: 0,
                            used_chunks: 3,
                            free_chunks: u64::MAX,
                            ..SlabClassDetail::default()
                        },
                    ],
                    ..SlabDetail::default()
                }
                .into()
            }),
        ),
        (
            "huge",
            edit(&|r| {
                r.summary.footprint_bytes = u64::MAX;
                r.summary.index_bytes = u64::MAX;
                r.summary.hits = u64::MAX;
                r.summary.misses = u64::MAX;
                r.summary.ops_per_sec = f64::INFINITY;
                for l in r.latency.values_mut() {
                    l.max_ns = u64::MAX;
                }
                for s in &mut r.timeline {
                    s.memory.footprint_bytes = u64::MAX;
                }
                if let AllocatorDetail::Slab(d) = &mut r.allocator_detail {
                    d.pages_past_limit = Some(u64::MAX);
                    for c in d.classes.iter_mut().take(2) {
                        c.total_pages = u64::MAX;
                        c.mem_requested = u64::MAX;
                    }
                }
            }),
        ),
        (
            "one-point",
            edit(&|r| {
                r.timeline.truncate(1);
            }),
        ),
    ];
    for (name, s) in cases {
        let dir = TempDir::new(name);
        // PNGs (slow to encode in a debug build) where the values themselves are odd; the
        // cases that only take data away draw the same code paths as SVG.
        let png = !matches!(
            name,
            "single" | "no-latency" | "no-classes" | "empty-timeline"
        );
        let charts = render_all(&s, png.then_some(dir.0.as_path()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!charts.is_empty(), "{name}: no charts");
        for c in &charts {
            check_xml(&c.svg).unwrap_or_else(|e| panic!("{name}/{}: {e}", c.id));
            assert!(!c.svg.contains("NaN"), "{name}/{}", c.id);
            if png {
                png_size(&std::fs::read(dir.0.join(format!("{}.png", c.id))).unwrap());
            }
        }
        dir.keep_svgs(&charts);
        let ids: Vec<&str> = charts.iter().map(|c| c.id.as_str()).collect();
        match name {
            "empty-timeline" => assert!(!ids.contains(&"timeline-etc"), "{ids:?}"),
            "no-latency" => assert!(!ids.contains(&"latency-etc"), "{ids:?}"),
            "no-classes" => assert!(!ids.contains(&"slab-classes-etc"), "{ids:?}"),
            "negative-fragmentation" => {
                let c = charts.iter().find(|c| c.id == "bytes-etc").unwrap();
                assert!(c.caption.contains("drawn as zero"), "{}", c.caption);
            }
            "single" | "odd-classes" => {
                assert!(ids.contains(&"slab-classes-etc"), "{name}: {ids:?}")
            }
            _ => {}
        }
    }
}

#[test]
fn many_series_stay_distinguishable() {
    // 20 series: past the 17 palette colours, and labels get long.
    let base = fixture();
    let mut set = base.clone();
    let template = set
        .cells
        .iter()
        .find(|c| c.key.workload == "etc" && c.key.memory_limit.is_none())
        .unwrap()
        .clone();
    set.cells.clear();
    for i in 0..20 {
        let mut c = template.clone();
        c.key.alloc = format!("zmalloc:backend=jemalloc,prefix={i}");
        for r in &mut c.runs {
            r.run.alloc = c.key.alloc.clone();
            r.summary.ops_per_sec *= 1.0 + i as f64 / 10.0;
        }
        set.cells.push(c);
    }
    let (charts, _dir) = render(&set, "many");
    let c = charts.iter().find(|c| c.id == "throughput").unwrap();
    let xml = check_xml(&c.svg).unwrap();
    for i in 0..20 {
        let label = format!(
            "zmalloc:backend=jemalloc,prefix={i} / {}",
            template.key.layout
        );
        assert!(xml.texts.contains(&label), "{label}");
    }
    assert!(attr(&xml, "height").unwrap() >= 540.0);
}

// ---- text placement -------------------------------------------------------------------------

/// The box a `<text>` element of the SVG backend covers, estimated from its anchor, its font
/// size and its length (DejaVu Sans averages about 0.58 em a character): its text and
/// (left, top, right, bottom). Rotated texts (the y axis description) are left out.
fn text_boxes(svg: &str) -> Vec<(String, [f64; 4])> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find("<text ") {
        rest = &rest[i + 1..];
        let gt = rest.find('>').unwrap();
        let (_, attrs) = parse_tag(&rest[..gt]).unwrap();
        let end = rest.find("</text>").unwrap();
        let text = decode(rest[gt + 1..end].trim()).unwrap();
        rest = &rest[end..];
        let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        if get("transform").is_some() || text.is_empty() {
            continue;
        }
        let num = |k: &str| get(k).and_then(|v| v.parse::<f64>().ok()).unwrap();
        let (x, y, size) = (num("x"), num("y"), num("font-size"));
        let w = text.chars().count() as f64 * size * 0.58;
        let h = size * 0.9;
        let left = match get("text-anchor") {
            Some("middle") => x - w / 2.0,
            Some("end") => x - w,
            _ => x,
        };
        let top = match get("dy") {
            Some("0.76em") => y,
            Some("0.5ex") => y - h / 2.0,
            Some("-0.5ex") => y - h,
            _ => y - 0.8 * h,
        };
        out.push((text, [left, top, left + w, top + h]));
    }
    out
}

/// Pairs of texts whose boxes overlap (by more than a pixel each way).
fn overlapping(svg: &str) -> Vec<(String, String)> {
    let boxes = text_boxes(svg);
    let mut out = Vec::new();
    for (i, (a, p)) in boxes.iter().enumerate() {
        for (b, q) in &boxes[i + 1..] {
            if p[0] + 1.0 < q[2] && q[0] + 1.0 < p[2] && p[1] + 1.0 < q[3] && q[1] + 1.0 < p[3] {
                out.push((a.clone(), b.clone()));
            }
        }
    }
    out
}

#[test]
fn overlap_check_finds_overlaps() {
    let svg = "<svg><text x=\"10\" y=\"10\" font-size=\"12\">long label here</text>\
               <text x=\"40\" y=\"12\" font-size=\"12\">another</text>\
               <text x=\"10\" y=\"40\" font-size=\"12\">apart</text></svg>";
    assert_eq!(
        overlapping(svg),
        [("long label here".to_string(), "another".to_string())]
    );
}

/// The memory chart: one scale (bytes per byte of live data), readable labels with one, many
/// series or many workloads, and the ratios of the fixture.
#[test]
fn memory_chart_is_per_live_byte_and_its_labels_do_not_overlap() {
    let base = fixture();
    // Many series: 20 allocators on one workload.
    let template = base
        .cells
        .iter()
        .find(|c| c.key.workload == "etc" && c.key.memory_limit.is_none())
        .unwrap()
        .clone();
    let mut many = base.clone();
    many.cells.clear();
    for i in 0..20 {
        let mut c = template.clone();
        c.key.alloc = format!("zmalloc:backend=jemalloc,prefix={i}");
        many.cells.push(c);
    }
    // Many workloads: the fixture's unlimited cells under 6 long workload names.
    let mut wide = base.clone();
    wide.cells.clear();
    for w in 0..6 {
        for c in base.cells.iter().filter(|c| c.key.memory_limit.is_none()) {
            let mut c = c.clone();
            c.key.workload = format!("trace:/data/traces/cluster-{w}-with-a-long-name.csv");
            wide.cells.push(c);
        }
    }
    for (name, set) in [("fixture", &base), ("many", &many), ("wide", &wide)] {
        let (charts, _dir) = render(set, &format!("memory-{name}"));
        let c = charts.iter().find(|c| c.id == "memory-needed").unwrap();
        let clash = overlapping(&c.svg);
        assert!(clash.is_empty(), "{name}: texts overlap: {clash:?}");
        let xml = check_xml(&c.svg).unwrap();
        assert!(
            xml.texts.iter().any(|t| t == "bytes per byte of live data"),
            "{name}: {:?}",
            xml.texts
        );
        assert!(xml.texts.iter().any(|t| t.contains("= 1")), "{name}");
        for cell in set.cells.iter().filter(|c| c.key.memory_limit.is_none()) {
            let label = series_label(&cell.key);
            assert!(xml.texts.contains(&label), "{name}: no row {label}");
        }
    }
    // The fixture's ratios: the etc slab run holds 25 MiB of pages for 2.2 MiB of live data.
    let (charts, _dir) = render(&base, "memory-ratios");
    let c = charts.iter().find(|c| c.id == "memory-needed").unwrap();
    let slab = base
        .cells
        .iter()
        .find(|c| {
            c.key.workload == "etc"
                && c.key.memory_limit.is_none()
                && c.key.alloc.starts_with("slab")
        })
        .unwrap();
    let s = &slab.runs[0].summary;
    let texts = check_xml(&c.svg).unwrap().texts;
    let footprint = s.footprint_bytes as f64 / s.payload_bytes as f64;
    let requested = s.requested_bytes as f64 / s.payload_bytes as f64;
    assert!(
        texts.contains(&format!("{footprint:.1}x (25.00 MiB)")),
        "{footprint}: {texts:?}"
    );
    assert!(
        texts.contains(&format!("{requested:.2}x")),
        "{requested}: {texts:?}"
    );
}
