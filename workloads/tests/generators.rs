//! Generators, presets and spec files: samplers against their analytic moments, presets
//! against the published shapes they claim, determinism, and spec errors.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use fraglab_workloads::dist::{SizeDist, SizeSampler, Zipf, ETC_VALUE_HEAD};
use fraglab_workloads::presets::{self, PresetParams, RAMCLOUD_LIVE_CAP};
use fraglab_workloads::rng::Rng;
use fraglab_workloads::spec::WorkloadSpec;
use fraglab_workloads::{describe, Op, OpKind, Workload};

const DRAWS: usize = 1_000_000;

fn compile(d: SizeDist) -> SizeSampler {
    d.compile(Path::new("."), "test").unwrap()
}

fn draws(s: &SizeSampler, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..DRAWS).map(|_| s.quantile(rng.next_f64())).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn share_at_most(v: &[f64], x: f64) -> f64 {
    v.iter().filter(|&&y| y <= x).count() as f64 / v.len() as f64
}

/// Γ(x) by the Lanczos approximation (g = 7, 9 terms; ~15 significant digits).
fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x))
    } else {
        let x = x - 1.0;
        let t = x + 7.5;
        let mut a = G[0];
        for (i, g) in G.iter().enumerate().skip(1) {
            a += g / (x + i as f64);
        }
        (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
    }
}

#[test]
fn lanczos_gamma_is_right() {
    assert!((gamma(5.0) - 24.0).abs() < 1e-9);
    assert!((gamma(0.5) - std::f64::consts::PI.sqrt()).abs() < 1e-12);
}

#[test]
fn gev_matches_its_mean_and_cdf() {
    let (mu, sigma, xi) = (30.7984, 8.20449, 0.078688);
    let v = draws(
        &compile(SizeDist::Gev {
            location: mu,
            scale: sigma,
            shape: xi,
        }),
        1,
    );
    let analytic = mu + sigma * (gamma(1.0 - xi) - 1.0) / xi;
    assert!(
        (mean(&v) - analytic).abs() / analytic < 0.002,
        "{} vs {analytic}",
        mean(&v)
    );
    // F(x) = exp(-(1 + xi (x - mu) / sigma)^(-1/xi))
    for x in [25.0, 31.0, 40.0, 60.0] {
        let f = (-(1.0 + xi * (x - mu) / sigma).powf(-1.0 / xi)).exp();
        assert!((share_at_most(&v, x) - f).abs() < 0.002, "F({x})");
    }
}

#[test]
fn gpd_matches_its_mean_and_cdf() {
    let (mu, sigma, xi) = (15.0, 214.476, 0.348238);
    let v = draws(
        &compile(SizeDist::Gpd {
            location: mu,
            scale: sigma,
            shape: xi,
        }),
        2,
    );
    let analytic = mu + sigma / (1.0 - xi);
    assert!(
        (mean(&v) - analytic).abs() / analytic < 0.01,
        "{} vs {analytic}",
        mean(&v)
    );
    for x in [20.0, 100.0, 300.0, 1000.0, 5000.0] {
        let f = 1.0 - (1.0 + xi * (x - mu) / sigma).powf(-1.0 / xi);
        assert!((share_at_most(&v, x) - f).abs() < 0.002, "F({x})");
    }
}

#[test]
fn lognormal_and_normal_match_their_moments() {
    let (m, s) = (5.0, 0.7);
    let v = draws(&compile(SizeDist::Lognormal { mu: m, sigma: s }), 3);
    let analytic = (m + s * s / 2.0).exp();
    assert!((mean(&v) - analytic).abs() / analytic < 0.005);
    // The median of a lognormal is e^mu.
    assert!((share_at_most(&v, m.exp()) - 0.5).abs() < 0.002);
    let v = draws(
        &compile(SizeDist::Normal {
            mean: 500.0,
            stddev: 50.0,
        }),
        4,
    );
    assert!((mean(&v) - 500.0).abs() < 0.3);
    // Φ(1) = 0.841345
    assert!((share_at_most(&v, 550.0) - 0.841_345).abs() < 0.002);
    let w = SizeDist::lognormal_with_mean(273.0, 1.0);
    let v = draws(&compile(w), 5);
    assert!((mean(&v) - 273.0).abs() / 273.0 < 0.01);
}

#[test]
fn uniform_covers_its_integers_evenly() {
    let s = compile(SizeDist::Uniform {
        min: 100.0,
        max: 150.0,
    });
    let mut rng = Rng::new(6);
    let mut counts = HashMap::new();
    for _ in 0..DRAWS {
        *counts.entry(s.sample(&mut rng, u32::MAX)).or_insert(0u64) += 1;
    }
    assert_eq!(counts.len(), 51);
    assert!(counts.keys().all(|&k| (100..=150).contains(&k)));
    let expect = DRAWS as f64 / 51.0;
    assert!(counts
        .values()
        .all(|&c| (c as f64 - expect).abs() / expect < 0.05));
}

#[test]
fn etc_values_are_small_44_155_percent_of_the_time() {
    let head: f64 = ETC_VALUE_HEAD.iter().sum();
    assert!((head - 0.44155).abs() < 1e-12, "the table sums to {head}");
    let s = compile(SizeDist::Etc);
    let mut rng = Rng::new(7);
    let mut small = [0u64; 15];
    for _ in 0..DRAWS {
        let v = s.sample(&mut rng, u32::MAX);
        if v < 15 {
            small[v as usize] += 1;
        }
    }
    let share = small.iter().sum::<u64>() as f64 / DRAWS as f64;
    assert!((share - 0.44155).abs() < 0.002, "{share}");
    // Each byte size has its own probability (2 bytes: 17.82%, 11 bytes: 8.989%).
    assert!((small[2] as f64 / DRAWS as f64 - 0.17820).abs() < 0.002);
    assert!((small[11] as f64 / DRAWS as f64 - 0.08989).abs() < 0.002);
}

fn harmonic(n: u64, s: f64) -> f64 {
    (1..=n).map(|k| (k as f64).powf(-s)).sum()
}

#[test]
fn zipf_rank_one_frequency_is_exact() {
    for (n, s) in [
        (1000u64, 0.99),
        (100_000, 0.99),
        (1_000_000, 1.3),
        (5000, 0.3),
    ] {
        let z = Zipf::new(n, s);
        let mut rng = Rng::new(8);
        let mut first = 0u64;
        let mut second = 0u64;
        for _ in 0..DRAWS {
            match z.sample(&mut rng) {
                0 => first += 1,
                1 => second += 1,
                r => assert!(r < n),
            }
        }
        let h = harmonic(n, s);
        let (p1, p2) = (1.0 / h, 2f64.powf(-s) / h);
        let f1 = first as f64 / DRAWS as f64;
        let f2 = second as f64 / DRAWS as f64;
        // Four standard errors.
        let tol = |p: f64| 4.0 * (p * (1.0 - p) / DRAWS as f64).sqrt();
        assert!(
            (f1 - p1).abs() < tol(p1),
            "n {n} s {s}: rank 1 {f1} vs {p1}"
        );
        assert!(
            (f2 - p2).abs() < tol(p2),
            "n {n} s {s}: rank 2 {f2} vs {p2}"
        );
    }
}

fn collect(name: &str, params: &PresetParams, seed: u64) -> (Vec<Op>, Vec<String>) {
    let w = Workload::preset(name, params).unwrap();
    let stream = w.stream(seed).unwrap();
    let names = stream.phase_names();
    (stream.map(Result::unwrap).collect(), names)
}

fn small(records: u64, ops: u64) -> PresetParams {
    PresetParams {
        records: Some(records),
        ops: Some(ops),
        ..PresetParams::default()
    }
}

#[test]
fn ycsb_presets_have_their_op_mixes() {
    let n = 200_000u64;
    for (letter, reads, other, other_share) in [
        ("a", OpKind::Get, OpKind::Set, 0.5),
        ("b", OpKind::Get, OpKind::Set, 0.05),
        ("c", OpKind::Get, OpKind::Set, 0.0),
        ("d", OpKind::Get, OpKind::Set, 0.05),
        ("e", OpKind::Scan, OpKind::Set, 0.05),
    ] {
        let (ops, names) = collect(&format!("ycsb-{letter}"), &small(10_000, n), 1);
        assert_eq!(names, ["load", "run"]);
        let load: Vec<_> = ops.iter().filter(|o| o.phase == 0).collect();
        assert_eq!(load.len(), 10_000);
        assert!(load.iter().enumerate().all(|(i, o)| o.kind == OpKind::Set
            && o.key.id == i as u64
            && o.value_len == 1000
            && o.key.len == 23));
        let run: Vec<_> = ops.iter().filter(|o| o.phase == 1).collect();
        assert_eq!(run.len() as u64, n);
        let count = |k| run.iter().filter(|o| o.kind == k).count() as f64 / n as f64;
        assert!(
            (count(other) - other_share).abs() < 0.005,
            "ycsb-{letter}: {}",
            count(other)
        );
        assert!(
            (count(reads) - (1.0 - other_share)).abs() < 0.005,
            "ycsb-{letter}"
        );
        if letter == "d" || letter == "e" {
            // Inserts are sets of new keys, in order.
            let inserts: Vec<u64> = run
                .iter()
                .filter(|o| o.kind == OpKind::Set)
                .map(|o| o.key.id)
                .collect();
            assert!(inserts
                .iter()
                .enumerate()
                .all(|(i, &id)| id == 10_000 + i as u64));
        }
        if letter == "e" {
            assert!(run
                .iter()
                .filter(|o| o.kind == OpKind::Scan)
                .all(|o| (1..=100).contains(&o.value_len)));
        }
    }
    // F: half reads, half read-modify-writes (a get, then a set of the same key).
    let (ops, _) = collect("ycsb-f", &small(10_000, n), 1);
    let run: Vec<&Op> = ops.iter().filter(|o| o.phase == 1).collect();
    let sets = run.iter().filter(|o| o.kind == OpKind::Set).count() as f64;
    let gets = run.iter().filter(|o| o.kind == OpKind::Get).count() as f64;
    assert!((sets / n as f64 - 0.5).abs() < 0.005);
    assert_eq!(gets + sets, run.len() as f64);
    assert!((gets - n as f64).abs() < 1.0, "every request reads: {gets}");
    for w in run.windows(2) {
        if w[1].kind == OpKind::Set {
            assert_eq!((w[0].kind, w[0].key), (OpKind::Get, w[1].key));
        }
    }
}

#[test]
fn ycsb_popularity_is_skewed_and_scrambled() {
    let (ops, _) = collect("ycsb-c", &small(10_000, 500_000), 2);
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for o in ops.iter().filter(|o| o.phase == 1) {
        *counts.entry(o.key.id).or_insert(0) += 1;
    }
    let top = counts.iter().max_by_key(|e| *e.1).unwrap();
    // The hottest key gets about 1/H(10000, 0.99) of requests, ~10%, and it is not key 0.
    let p1 = 1.0 / harmonic(10_000, 0.99);
    assert!((*top.1 as f64 / 500_000.0 - p1).abs() < 0.01, "{}", *top.1);
    assert_ne!(
        *top.0, 0,
        "scrambled: the most popular rank is hashed away from id 0"
    );
}

/// Replays `ops` and returns the live bytes after every op.
fn live_trace(ops: &[Op]) -> Vec<u64> {
    let mut live: HashMap<u64, u64> = HashMap::new();
    let mut bytes = 0u64;
    ops.iter()
        .map(|o| {
            match o.kind {
                OpKind::Set => {
                    let new = u64::from(o.key.len) + u64::from(o.value_len);
                    bytes = bytes + new - live.insert(o.key.id, new).unwrap_or(0);
                }
                OpKind::Delete => bytes -= live.remove(&o.key.id).expect("deletes live keys"),
                k => panic!("unexpected {k}"),
            }
            bytes
        })
        .collect()
}

#[test]
fn ramcloud_presets_keep_live_data_under_the_cap_and_have_their_phases() {
    let cap = 1u64 << 20;
    let deleted = [0.0, 0.0, 0.9, 0.0, 0.9, 0.5, 0.9, 0.9];
    for w in 1..=8 {
        let name = format!("ramcloud-w{w}");
        let params = PresetParams {
            live_cap: Some(cap),
            ..PresetParams::default()
        };
        let (ops, names) = collect(&name, &params, 3);
        assert_eq!(names, ["before", "delete", "after"], "{name}");
        let live = live_trace(&ops);
        assert!(
            live.iter().all(|&b| b <= cap),
            "{name}: live data passed the cap"
        );
        for phase in [0u16, 2] {
            let written: u64 = ops
                .iter()
                .filter(|o| o.phase == phase)
                .map(Op::bytes_written)
                .sum();
            assert!(
                written >= 5 * cap && written < 5 * cap + 20_000,
                "{name}: {written}"
            );
            // The cap is reached: live data ends each fill phase near it.
            let end = ops.iter().rposition(|o| o.phase == phase).unwrap();
            assert!(
                live[end] > cap - 16_000,
                "{name}: live {} at the end of phase {phase}",
                live[end]
            );
        }
        // The delete phase removes the table's fraction of live objects.
        let before_delete = ops.iter().rposition(|o| o.phase == 0).unwrap();
        let keys_before = {
            let mut l = HashSet::new();
            for o in &ops[..=before_delete] {
                if o.kind == OpKind::Set {
                    l.insert(o.key.id);
                } else {
                    l.remove(&o.key.id);
                }
            }
            l.len() as f64
        };
        let deletes = ops.iter().filter(|o| o.phase == 1).count() as f64;
        assert!(ops
            .iter()
            .filter(|o| o.phase == 1)
            .all(|o| o.kind == OpKind::Delete));
        assert!(
            (deletes - (deleted[w - 1] * keys_before).round()).abs() < 1.0,
            "{name}"
        );
        // Sizes follow the table: W8 after is 5000-15000 B.
        if w == 8 {
            assert!(ops
                .iter()
                .filter(|o| o.phase == 2 && o.kind == OpKind::Set)
                .all(|o| (5000..=15000).contains(&o.value_len)));
        }
    }
    assert_eq!(RAMCLOUD_LIVE_CAP, 32 << 20);
}

#[test]
fn memefficiency_is_redis_s_test() {
    for range in [32u32, 64, 128, 1024, 16384] {
        let (ops, _) = collect(
            &format!("memefficiency-{range}"),
            &PresetParams::default(),
            4,
        );
        assert_eq!(ops.len(), 10_000);
        for (i, o) in ops.iter().enumerate() {
            assert_eq!(o.kind, OpKind::Set);
            assert_eq!(o.key.id, i as u64);
            // `key:` + decimal digits
            assert_eq!(usize::from(o.key.len), 4 + i.to_string().len());
            assert!(o.value_len < range);
        }
        assert!(presets::memefficiency_threshold(u64::from(range)).is_some());
    }
}

#[test]
fn twitter_presets_follow_the_cluster_statistics() {
    let (ops, _) = collect("twitter-52", &small(100_000, 300_000), 5);
    let n = ops.len() as f64;
    let share = |k| ops.iter().filter(|o| o.kind == k).count() as f64 / n;
    assert!((share(OpKind::Get) - 0.91 / 0.99).abs() < 0.005);
    assert!((share(OpKind::Add) - 0.04 / 0.99).abs() < 0.005);
    assert!(ops.iter().all(|o| o.key.len == 20));
    assert!(ops.iter().filter(|o| o.kind == OpKind::Get).all(|o| o.fill));
    // Gets and gets fill on a miss, with a TTL from the mix.
    assert!(ops
        .iter()
        .filter(|o| o.kind == OpKind::Gets)
        .all(|o| o.fill));
    let fills = share(OpKind::Get) + share(OpKind::Gets);
    let ttl_day = ops.iter().filter(|o| o.fill && o.ttl == 86_400).count() as f64 / fills / n;
    assert!((ttl_day - 0.65 / 0.99).abs() < 0.01, "{ttl_day}");
    // Logical time runs at 100,000 requests a second.
    assert_eq!(ops.last().unwrap().time_us, 2_999_990);
    let (ops, _) = collect("twitter-37", &small(10_000, 200_000), 5);
    let values: Vec<f64> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Set)
        .map(|o| f64::from(o.value_len))
        .collect();
    assert!(
        (mean(&values) - 20134.0).abs() / 20134.0 < 0.03,
        "{}",
        mean(&values)
    );
}

#[test]
fn etc_has_its_shape() {
    let (ops, names) = collect("etc", &small(20_000, 310_000), 6);
    assert_eq!(names, ["load", "run"]);
    let run: Vec<&Op> = ops.iter().filter(|o| o.phase == 1).collect();
    let sets = run.iter().filter(|o| o.kind == OpKind::Set).count() as f64;
    assert!((sets / run.len() as f64 - 1.0 / 31.0).abs() < 0.002);
    assert!(run.iter().filter(|o| o.kind == OpKind::Get).all(|o| o.fill));
    // Mean inter-arrival of GPD(0, 16.0292, 0.154971) is 16.0292 / (1 - 0.154971) = 18.97 us.
    let gap = run.last().unwrap().time_us as f64 / run.len() as f64;
    assert!((gap - 18.97).abs() < 0.2, "{gap}");
    // Each key keeps one length.
    let mut len = HashMap::new();
    for o in &ops {
        assert_eq!(*len.entry(o.key.id).or_insert(o.key.len), o.key.len);
    }
}

#[test]
fn the_same_seed_gives_the_same_stream() {
    for name in ["etc", "ycsb-d", "twitter-14", "ramcloud-w6"] {
        let p = if name.starts_with("ramcloud") {
            PresetParams {
                live_cap: Some(256 << 10),
                ..PresetParams::default()
            }
        } else {
            small(5_000, 50_000)
        };
        let a = collect(name, &p, 11).0;
        let b = collect(name, &p, 11).0;
        let c = collect(name, &p, 12).0;
        assert_eq!(a, b, "{name}");
        assert_ne!(a, c, "{name}: seeds 11 and 12 gave the same stream");
    }
}

#[test]
fn size_sweep_writes_each_boundary_and_one_past() {
    let params = PresetParams {
        boundaries: Some(vec![96, 120, 152]),
        overhead: 50,
        ..PresetParams::default()
    };
    let (ops, names) = collect("size-sweep", &params, 1);
    assert_eq!(
        names,
        ["size=46", "size=47", "size=70", "size=71", "size=102", "size=103"]
    );
    assert_eq!(ops.len(), 6 * 1000);
    for o in &ops {
        let want: u32 = names[usize::from(o.phase)][5..].parse().unwrap();
        assert_eq!(o.value_len, want);
    }
    let err = presets::preset("size-sweep", &PresetParams::default()).unwrap_err();
    assert!(err.to_string().contains("class boundaries"));
}

#[test]
fn scale_and_overrides_size_presets() {
    let s = presets::preset(
        "etc",
        &PresetParams {
            scale: 0.01,
            ..PresetParams::default()
        },
    )
    .unwrap();
    assert_eq!(s.keyspace, 10_000);
    assert_eq!(s.phases[0].ops, Some(20_000));
    let s = presets::preset(
        "ramcloud-w1",
        &PresetParams {
            scale: 0.5,
            ..PresetParams::default()
        },
    )
    .unwrap();
    assert_eq!(s.phases[0].live_cap.unwrap().0, 16 << 20);
    assert_eq!(s.phases[0].bytes.unwrap().0, 80 << 20);
    let err = presets::preset(
        "etc",
        &PresetParams {
            live_cap: Some(1),
            ..PresetParams::default()
        },
    );
    assert!(err.unwrap_err().to_string().contains("no live-data cap"));
    let err = presets::preset("ycsb-z", &PresetParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown workload `ycsb-z`") && err.contains("ramcloud-w8"),
        "{err}"
    );
    for name in presets::NAMES.iter().filter(|n| **n != "size-sweep") {
        presets::preset(name, &PresetParams::default()).unwrap();
    }
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workload.toml")
}

#[test]
fn the_example_spec_covers_every_field_and_runs() {
    let spec = WorkloadSpec::from_file(&example()).unwrap();
    assert_eq!(spec.phases.len(), 3);
    assert!(spec.preload.is_some() && spec.demand_fill);
    let w = Workload::parse(
        &format!("file:{}", example().display()),
        &PresetParams::default(),
        &Default::default(),
    )
    .unwrap();
    let summary = describe(w.stream(1).unwrap()).unwrap();
    assert_eq!(summary.phases.len(), 4);
    assert_eq!(summary.phases[0].requests, 50_000);
    assert_eq!(summary.phases[1].requests, 200_000);
    assert!(summary.phases[2].bytes_written >= 16 << 20);
    assert!(summary.ops["delete"] > 0);
    // A spec survives a trip through TOML.
    assert_eq!(WorkloadSpec::from_toml(&spec.to_toml()).unwrap(), spec);
}

fn spec_error(text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("fraglab-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "bad-{:x}.toml",
        fraglab_workloads::rng::fnv1a64_bytes(text.as_bytes())
    ));
    std::fs::write(&path, text).unwrap();
    let err = WorkloadSpec::from_file(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(err.starts_with(&path.display().to_string()), "{err}");
    err
}

#[test]
fn bad_specs_say_what_and_where() {
    let ok = "keyspace = 10\nvalue_size = { dist = \"fixed\", size = 1 }\nmix = { get = 1 }\n";
    let phase = "[[phases]]\nname = \"run\"\nops = 10\n";
    let e = spec_error(&format!("{ok}{phase}colour = 3\n"));
    assert!(e.contains("unknown field `colour`"), "{e}");
    let e = spec_error(&format!("{ok}{phase}").replace("get = 1", "fetch = 1"));
    assert!(e.contains("unknown op `fetch`"), "{e}");
    let e =
        spec_error(&format!("{ok}{phase}").replace("\"fixed\", size = 1", "\"gev\", location = 1"));
    assert!(e.contains("missing field `scale`"), "{e}");
    let e = spec_error(&format!("{ok}{phase}").replace("ops = 10", "ops = 10\nbytes = \"1m\""));
    assert!(e.contains("exactly one of"), "{e}");
    let e = spec_error(ok);
    assert!(e.contains("missing field `phases`"), "{e}");
    let e = spec_error(
        &format!("{ok}{phase}").replace("\"fixed\", size = 1", "\"uniform\", min = 9, max = 2"),
    );
    assert!(
        e.contains("value_size: uniform needs 0 <= min <= max, got min 9, max 2"),
        "{e}"
    );
    let w = Workload::parse(
        "file:/nonexistent/w.toml",
        &PresetParams::default(),
        &Default::default(),
    );
    assert!(w.unwrap_err().to_string().contains("/nonexistent/w.toml"));
    // Range errors appear when the generator compiles the spec.
    let spec = WorkloadSpec::from_toml(
        &format!("{ok}{phase}").replace("\"fixed\", size = 1", "\"uniform\", min = 9, max = 2"),
    )
    .unwrap();
    let err = fraglab_workloads::Generator::new(&spec, Path::new("."), 1).unwrap_err();
    assert!(
        err.to_string().contains("value_size: uniform needs"),
        "{err}"
    );
}

#[test]
fn empirical_tables_are_read_relative_to_the_spec() {
    let dir = std::env::temp_dir().join(format!("fraglab-empirical-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sizes.csv"), "size,weight\n100,3\n200,1\n").unwrap();
    std::fs::write(
        dir.join("w.toml"),
        "keyspace = 100\nvalue_size = { dist = \"empirical\", path = \"sizes.csv\" }\n\
         mix = { set = 1 }\n[[phases]]\nname = \"run\"\nops = 100000\n",
    )
    .unwrap();
    let w = Workload::parse(
        &format!("file:{}", dir.join("w.toml").display()),
        &PresetParams::default(),
        &Default::default(),
    )
    .unwrap();
    let ops: Vec<Op> = w.stream(1).unwrap().map(Result::unwrap).collect();
    let small = ops.iter().filter(|o| o.value_len == 100).count() as f64 / ops.len() as f64;
    assert!((small - 0.75).abs() < 0.01);
    assert!(ops.iter().all(|o| o.value_len == 100 || o.value_len == 200));
    std::fs::write(dir.join("sizes.csv"), "100,3\n200,lots\n").unwrap();
    let err = w.stream(1).unwrap_err().to_string();
    assert!(
        err.contains("sizes.csv: line 2: weight `lots` is not a number"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn describe_reports_the_required_fields() {
    let w = Workload::preset("twitter-14", &small(1000, 20_000)).unwrap();
    let s = describe(w.stream(1).unwrap()).unwrap();
    let json = serde_json::to_value(&s).unwrap();
    for field in [
        "requests",
        "distinct_keys",
        "ops",
        "key_size",
        "value_size",
        "working_set_bytes",
        "ttl",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
    for stat in ["mean", "p50", "p90", "p99", "max"] {
        assert!(json["value_size"].get(stat).is_some());
    }
    assert_eq!(s.requests, 20_000);
    assert!(s.distinct_keys <= 1000 && s.distinct_keys > 500);
    assert_eq!(s.key_size.p50, 96);
    assert_eq!(s.ttl.len(), 1);
    assert_eq!(s.ttl[0].ttl, 86_400);
    assert!((s.ttl[0].share - 1.0).abs() < 1e-12);
    assert_eq!(s.ops.values().sum::<u64>(), 20_000);
}

fn spec_with(extra: &str, phases: &str) -> WorkloadSpec {
    WorkloadSpec::from_toml(&format!(
        "keyspace = 100\nvalue_size = {{ dist = \"fixed\", size = 10 }}\nmix = {{ set = 1 }}\n{extra}\n{phases}"
    ))
    .unwrap()
}

#[test]
fn inconsistent_specs_are_refused() {
    let bytes_no_writes = spec_with(
        "",
        "[[phases]]\nname = \"r\"\nbytes = \"1m\"\nmix = { get = 1 }\n",
    );
    let e = bytes_no_writes.validate().unwrap_err().to_string();
    assert!(e.contains("needs writes in its mix"), "{e}");
    // Regression: two phases of one name were accepted, and results name phases.
    let twins = spec_with(
        "",
        "[[phases]]\nname = \"r\"\nops = 1\n[[phases]]\nname = \"r\"\nops = 2\n",
    );
    let e = twins.validate().unwrap_err().to_string();
    assert!(
        e.contains("phases[1] `r`: phases[0] has the same name"),
        "{e}"
    );
    // Regression: a phase of 0 requests replayed one.
    for length in ["ops = 0", "bytes = 0"] {
        let empty = spec_with(
            "",
            &format!("[[phases]]\nname = \"r\"\n{length}\nmix = {{ set = 1 }}\n"),
        );
        let e = empty.validate().unwrap_err().to_string();
        assert!(e.contains("a phase of length 0"), "{length}: {e}");
    }
    let preload = spec_with(
        "[preload]\nkeys = 200\n",
        "[[phases]]\nname = \"r\"\nops = 1\n",
    );
    assert!(preload
        .validate()
        .unwrap_err()
        .to_string()
        .contains("preload.keys 200"));
    let huge = spec_with("", "[[phases]]\nname = \"r\"\nops = 1\n");
    let huge = WorkloadSpec {
        keyspace: u64::MAX,
        ..huge
    };
    assert!(huge.validate().unwrap_err().to_string().contains("2^53"));
    let decimal_values = spec_with("", "[[phases]]\nname = \"r\"\nops = 1\n");
    let decimal_values = WorkloadSpec {
        value_size: SizeDist::Decimal { prefix: 1 },
        ..decimal_values
    };
    let e = fraglab_workloads::Generator::new(&decimal_values, Path::new("."), 1).unwrap_err();
    assert!(e.to_string().contains("key sizes only"), "{e}");
    let e = spec_with("", "[[phases]]\nname = \"r\"\nops = 1\n");
    let e = WorkloadSpec {
        mix: [("get".to_string(), 1e308), ("set".to_string(), 1e308)].into(),
        ..e
    };
    let err = fraglab_workloads::Generator::new(&e, Path::new("."), 1).unwrap_err();
    assert!(err.to_string().contains("weights"), "{err}");
}

#[test]
fn a_write_larger_than_the_cap_deletes_nothing() {
    let spec = spec_with(
        "",
        "[[phases]]\nname = \"w\"\nops = 50\nlive_cap = 100\npopularity = { dist = \"sequential\" }\n",
    );
    let spec = WorkloadSpec {
        value_size: SizeDist::Uniform {
            min: 10.0,
            max: 200.0,
        },
        ..spec
    };
    let ops: Vec<Op> = fraglab_workloads::Generator::new(&spec, Path::new("."), 3)
        .unwrap()
        .collect();
    let mut live: HashMap<u64, u64> = HashMap::new();
    for o in &ops {
        let size = u64::from(o.key.len) + u64::from(o.value_len);
        match o.kind {
            OpKind::Set => {
                let before: u64 = live.values().sum();
                live.insert(o.key.id, size);
                // Either the cap holds, or this one write is too big for it and deleted nothing.
                let after: u64 = live.values().sum();
                assert!(after <= 100 || (size > 100 && after >= before), "{after}");
            }
            OpKind::Delete => {
                live.remove(&o.key.id).expect("deletes name live keys");
            }
            k => panic!("{k}"),
        }
    }
    assert!(
        ops.iter().any(|o| o.value_len > 84),
        "the seed draws oversized writes"
    );
}

#[test]
fn read_modify_write_keeps_demand_fill_on_the_read() {
    let spec = spec_with(
        "demand_fill = true",
        "[[phases]]\nname = \"r\"\nops = 1000\n",
    );
    let spec = WorkloadSpec {
        mix: [("rmw".to_string(), 1.0), ("gets".to_string(), 1.0)].into(),
        ..spec
    };
    let ops: Vec<Op> = fraglab_workloads::Generator::new(&spec, Path::new("."), 3)
        .unwrap()
        .collect();
    assert!(ops
        .iter()
        .filter(|o| o.kind == OpKind::Set)
        .all(|o| !o.fill));
    assert!(ops
        .iter()
        .filter(|o| o.kind == OpKind::Gets)
        .all(|o| o.fill && o.value_len == 10));
}
