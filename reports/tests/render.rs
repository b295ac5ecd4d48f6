//! Reports rendered from the checked-in fixture: the tables' numbers against the fixture
//! files, every document and chart written, broken files skipped and listed, the baseline
//! comparison, and the HTML loaded by a real headless Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use fraglab_reports::render::{render, RenderOptions};
use fraglab_reports::{baseline, table};
use fraglab_reports::{ResultSet, RunResult};

mod support;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results")
}

struct TempDir(PathBuf);

impl TempDir {
    /// A copy of the fixture in a fresh directory.
    fn fixture_copy(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("fraglab-report-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        for e in std::fs::read_dir(fixture()).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), p.join(e.file_name())).unwrap();
        }
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(name: &str) -> RunResult {
    RunResult::load(&fixture().join(name)).unwrap()
}

const ALL: RenderOptions = RenderOptions {
    markdown: true,
    html: true,
    png: true,
};

fn mib(b: u64) -> String {
    fraglab_reports::set::human_bytes(b as f64)
}

#[test]
fn tables_carry_the_fixture_numbers() {
    let set = ResultSet::load(&fixture()).unwrap();
    assert!(set.skipped.is_empty(), "{:?}", set.skipped);
    // 6 ramcloud-w3 files in 4 cells (jemalloc three times), 8 etc cells.
    assert_eq!(set.cells.len(), 4 + 8);
    assert_eq!(set.workloads(), ["etc", "ramcloud-w3"]);

    let summary = table::summary(&set);
    let row = |t: &table::Table, alloc: &str, layout: &str, limit: &str, workload: &str| {
        t.rows
            .iter()
            .find(|r| {
                r[0] == workload && r[1].starts_with(alloc) && r[2] == layout && r[3] == limit
            })
            .unwrap_or_else(|| panic!("no row {workload} {alloc} {layout} {limit}"))
            .clone()
    };
    // jemalloc on ramcloud-w3: three runs; the throughput spread is the three files'.
    let runs: Vec<RunResult> = [
        "w3-jemalloc.json",
        "w3-jemalloc-r1.json",
        "w3-jemalloc-r2.json",
    ]
    .map(load)
    .into();
    let mut tput: Vec<f64> = runs.iter().map(|r| r.summary.ops_per_sec / 1e6).collect();
    tput.sort_by(|a, b| a.total_cmp(b));
    let r = row(&summary, "jemalloc", "compact", "none", "ramcloud-w3");
    assert_eq!(r[5], "3");
    assert_eq!(
        r[6],
        format!("{:.2} [{:.2}–{:.2}]", tput[1], tput[0], tput[2])
    );
    assert_eq!(r[8], mib(runs[0].summary.footprint_bytes));
    // slab on ramcloud-w3: one run, exact figures.
    let slab = load("w3-slab.json");
    let r = row(&summary, "slab", "memcached", "none", "ramcloud-w3");
    assert_eq!(r[5], "1");
    assert_eq!(r[7], mib(slab.summary.payload_bytes));
    assert_eq!(r[8], mib(slab.summary.footprint_bytes));
    assert_eq!(r[10], format!("{:.3}", slab.summary.efficiency));

    let bytes = table::bytes(&set);
    let r = row(&bytes, "slab", "memcached", "none", "ramcloud-w3");
    assert_eq!(r[6], mib(slab.summary.metadata_bytes as u64));
    assert_eq!(r[7], mib(slab.summary.internal_waste_bytes as u64));
    assert_eq!(r[8], mib(slab.summary.external_fragmentation_bytes as u64));
    assert_eq!(
        r[10],
        mib(slab.summary.footprint_bytes + slab.summary.index_bytes)
    );
    // Chart 1's figures: bytes held and requested per byte of live data.
    let payload = slab.summary.payload_bytes as f64;
    assert_eq!(
        r[12],
        format!("{:.2}", slab.summary.footprint_bytes as f64 / payload)
    );
    assert_eq!(
        r[13],
        format!("{:.2}", slab.summary.requested_bytes as f64 / payload)
    );

    // Slab classes: one row per class with pages, for every slab cell.
    let classes = table::slab_classes(&set);
    let w3_rows: Vec<_> = classes
        .rows
        .iter()
        .filter(|r| r[0] == "ramcloud-w3" && r[2] == "memcached")
        .collect();
    let detail = &slab.allocator_detail.slab().expect("a slab detail").classes;
    assert_eq!(w3_rows.len(), detail.len());
    for (r, c) in w3_rows.iter().zip(detail) {
        assert_eq!(r[5], c.class.to_string());
        assert_eq!(r[8], c.used_chunks.to_string());
        assert_eq!(r[10], c.mem_requested.to_string());
    }

    // The memory sweep: etc at 1m, 2m, 4m and unlimited, for slab and jemalloc.
    let miss = table::miss_ratio_table(&set).expect("a sweep");
    assert_eq!(miss.rows.len(), 8);
    let j1 = load("etc-jemalloc-1m.json");
    let r = row(&miss, "jemalloc", "compact", "1.00 MiB", "etc");
    let ratio = j1.summary.misses as f64 / (j1.summary.hits + j1.summary.misses) as f64;
    assert_eq!(r[5], format!("{ratio:.4}"));
    assert_eq!(r[8], format!("{:.4}", 1.0 - ratio));

    // Latency and phases come from the median-throughput run.
    let lat = table::latency(&set);
    let r = row(&lat, "slab", "memcached", "none", "ramcloud-w3");
    assert_eq!(r[5], "delete");
    assert_eq!(r[8], slab.latency["delete"].p50_ns.to_string());
    let phases = table::phases(&set);
    assert_eq!(
        phases
            .rows
            .iter()
            .filter(|r| r[0] == "ramcloud-w3" && r[1].starts_with("slab") && r[2] == "memcached")
            .count(),
        3
    );
    // The method names the command, the allocator's version and the machine of every run.
    let method = table::method(&set);
    assert_eq!(method.rows.len(), 14);
    assert!(method
        .rows
        .iter()
        .all(|r| r[1].contains(" run ") && !r[4].is_empty()));
    assert!(method.rows.iter().any(|r| r[3].contains("jemalloc 5.3.0")));
}

#[test]
fn documents_and_every_chart_are_written() {
    let dir = TempDir::fixture_copy("docs");
    let set = ResultSet::load(&dir.0).unwrap();
    let r = render(&set, None, ALL, &dir.0).unwrap();
    let md = std::fs::read_to_string(dir.0.join("report.md")).unwrap();
    let html = std::fs::read_to_string(dir.0.join("report.html")).unwrap();
    let svgs: Vec<PathBuf> = r
        .files
        .iter()
        .filter(|f| f.extension().unwrap() == "svg")
        .cloned()
        .collect();
    assert!(svgs.len() >= 7, "{svgs:?}");
    for svg in &svgs {
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(
            text.trim_start().starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{}",
            svg.display()
        );
        let id = svg.file_stem().unwrap().to_string_lossy().into_owned();
        // The Markdown links the PNG, the HTML inlines the SVG.
        assert!(md.contains(&format!("charts/{id}.png")), "{id}");
        assert!(html.contains(&format!("id=\"chart-{id}\"")), "{id}");
        let png = std::fs::read(svg.with_extension("png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert!(w > 0 && h > 0);
    }
    for t in [
        "Summary",
        "Where the bytes go",
        "Phases",
        "Latency (ns)",
        "Slab classes",
        "Miss ratio against memory limit",
        "Method",
    ] {
        assert!(md.contains(&format!("## {t}")), "{t}");
        assert!(html.contains(&format!(">{t}</h2>")), "{t}");
    }
    // Self-contained: nothing fetched from elsewhere (the SVG namespace URI is a name, not a
    // fetch).
    for fetch in ["src=", "href=\"http", "<link", "@import", "url("] {
        assert!(!html.contains(fetch), "{fetch}");
    }
}

#[test]
fn broken_files_are_skipped_and_listed() {
    let dir = TempDir::fixture_copy("broken");
    std::fs::write(dir.0.join("garbage.json"), "{ not json").unwrap();
    std::fs::write(dir.0.join("other.json"), "{\"schema\": 99}").unwrap();
    let set = ResultSet::load(&dir.0).unwrap();
    assert_eq!(set.cells.len(), 12);
    assert_eq!(set.skipped.len(), 2);
    let r = render(&set, None, RenderOptions { png: false, ..ALL }, &dir.0).unwrap();
    assert_eq!(r.skipped.len(), 2);
    let md = std::fs::read_to_string(dir.0.join("report.md")).unwrap();
    assert!(md.contains("## Skipped files"));
    assert!(
        md.contains("garbage.json") && md.contains("not JSON"),
        "{md}"
    );
    assert!(md.contains("other.json") && md.contains("schema 99"));
    let err = ResultSet::load(Path::new("/nonexistent/results")).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/results: "),
        "{err}"
    );
}

#[test]
fn a_baseline_gives_ratios_cell_by_cell() {
    let set = ResultSet::load(&fixture()).unwrap();
    let t = baseline::ratios(&set, &set);
    assert_eq!(t.rows.len(), 12);
    assert!(
        t.rows.iter().all(|r| r[5..].iter().all(|c| c == "1.000")),
        "{:?}",
        t.rows
    );
    // A baseline with a cell missing says so.
    let dir = TempDir::fixture_copy("baseline");
    std::fs::remove_file(dir.0.join("w3-mimalloc.json")).unwrap();
    let base = ResultSet::load(&dir.0).unwrap();
    let t = baseline::ratios(&set, &base);
    assert_eq!(
        t.rows.iter().filter(|r| r[5] == "not in baseline").count(),
        1
    );
}

#[test]
fn a_baseline_lists_every_memory_counter_that_changed() {
    let set = ResultSet::load(&fixture()).unwrap();
    let t = baseline::counters(&set, &set);
    assert!(t.rows.is_empty(), "{:?}", t.rows);
    assert!(
        t.note.contains("12 of the cells in both sets"),
        "{}",
        t.note
    );

    // One cell whose run ended with one more item and 4 KiB more footprint.
    let dir = TempDir::fixture_copy("counters");
    let path = dir.0.join("w3-mimalloc.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let items = v["summary"]["items"].as_u64().unwrap();
    let footprint = v["summary"]["footprint_bytes"].as_u64().unwrap();
    v["summary"]["items"] = (items + 1).into();
    v["summary"]["footprint_bytes"] = (footprint + 4096).into();
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let changed = ResultSet::load(&dir.0).unwrap();
    let t = baseline::counters(&changed, &set);
    assert_eq!(t.rows.len(), 1, "{:?}", t.rows);
    let row = &t.rows[0];
    assert_eq!(
        (row[5].as_str(), row[6].as_str()),
        ("2", "end or phase end")
    );
    assert!(
        row[7].contains(&format!("end.items {items} -> {}", items + 1))
            && row[7].contains(&format!(
                "end.footprint_bytes {footprint} -> {}",
                footprint + 4096
            )),
        "{}",
        row[7]
    );
}

/// Chromium, when installed: `.ci/run` installs Debian's `chromium`; under `CI=true` this test
/// fails without it rather than skip.
fn chromium() -> Option<String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(name.to_string());
        }
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: chromium must be installed"
    );
    eprintln!("chromium is not installed: skipping the browser check");
    None
}

#[test]
fn headless_chromium_draws_every_chart() {
    let Some(browser) = chromium() else { return };
    let dir = TempDir::fixture_copy("chromium");
    let set = ResultSet::load(&dir.0).unwrap();
    render(
        &set,
        None,
        RenderOptions {
            markdown: false,
            png: false,
            html: true,
        },
        &dir.0,
    )
    .unwrap();
    let html = std::fs::read_to_string(dir.0.join("report.html")).unwrap();
    let figures = html.matches("<figure class=\"chart\"").count();
    assert!(figures >= 7);
    let profile = dir.0.join("chromium-profile");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
        ])
        .arg(format!("file://{}", dir.0.join("report.html").display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("<pre id=\"chart-check\">")
        .expect("the page loaded")
        + 22;
    let end = start + dom[start..].find("</pre>").unwrap();
    let lines: Vec<&str> = dom[start..end].lines().collect();
    assert_eq!(lines.len(), figures, "{}", &dom[start..end]);
    for l in lines {
        let parts: Vec<&str> = l.split(' ').collect();
        let (w, h): (f64, f64) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
        assert!(w > 100.0 && h > 50.0, "{l}");
    }
}

/// The Markdown report of the fixture, compared exactly with `tests/snapshots/report.md`.
/// Nothing in it depends on the machine or the time: the results directory is given relative
/// to the package (where cargo runs tests), and every other figure comes from the fixture
/// files.
#[test]
fn markdown_matches_the_snapshot() {
    let set = ResultSet::load(Path::new("tests/fixtures/results")).unwrap();
    let charts = fraglab_reports::chart::render_all(&set, None).unwrap();
    let md = fraglab_reports::render::markdown(&set, &table::all(&set, None), &charts, "svg");
    support::check_snapshot("report.md", &md);
}
