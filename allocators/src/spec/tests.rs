//! Tests of `spec.rs`.

use super::*;

#[test]
fn specs_parse_and_print_with_defaults_resolved() {
    for (text, canonical) in [
        (
            "slab",
            "slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576",
        ),
        (
            "slab:factor=1.08,min=48,chunk_max=16384",
            "slab:factor=1.08,min=48,chunk_max=16384,item_max=1048576",
        ),
        (
            "slab:sizes=96-192-384",
            "slab:factor=1.25,min=48,chunk_max=524288,item_max=1048576,sizes=96-192-384",
        ),
        (
            "slab:chunk_max=16k,item_max=2m",
            "slab:factor=1.25,min=48,chunk_max=16384,item_max=2097152",
        ),
        ("zmalloc", "zmalloc:backend=glibc,prefix=8"),
        (
            "zmalloc:backend=jemalloc,prefix=0",
            "zmalloc:backend=jemalloc,prefix=0",
        ),
        ("jemalloc", "jemalloc"),
        ("mimalloc", "mimalloc"),
        ("glibc", "glibc"),
        ("bump", "bump:capacity=0"),
        (
            "log",
            "log:segment=8388608,cleaner=cost-benefit,utilization=0.9,free_min=2",
        ),
        (
            "log:segment=1m,cleaner=greedy,utilization=0.75",
            "log:segment=1048576,cleaner=greedy,utilization=0.75,free_min=2",
        ),
    ] {
        let spec: AllocSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(spec.to_string(), canonical);
        assert_eq!(
            canonical.parse::<AllocSpec>().unwrap(),
            spec,
            "round trip of {canonical}"
        );
    }
}

#[test]
fn specs_serialize_with_every_default() {
    let spec: AllocSpec = "slab:factor=2".parse().unwrap();
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"name": "slab", "factor": 2.0, "min": 48, "chunk_max": 524288, "item_max": 1048576})
    );
    let z: AllocSpec = "zmalloc:backend=mimalloc".parse().unwrap();
    assert_eq!(
        serde_json::to_value(&z).unwrap(),
        serde_json::json!({"name": "zmalloc", "backend": "mimalloc", "prefix": true})
    );
    let back: AllocSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn bad_specs_name_the_key_or_value_and_list_the_allowed() {
    let err = |t: &str| t.parse::<AllocSpec>().unwrap_err().to_string();
    assert_eq!(
        err("tcmalloc"),
        "unknown allocator `tcmalloc`; valid: slab, zmalloc, glibc, jemalloc, mimalloc, bump, log"
    );
    assert_eq!(
        err("slab:growth=2"),
        "slab: unknown key `growth`; valid keys: factor, min, chunk_max, item_max, sizes, automove, automove_ratio, automove_window, tick_ops, move_us, huge, prefault, file"
    );
    assert_eq!(
        err("slab:factor=big"),
        "slab: bad value `big` for `factor`: expected a number greater than 1, such as 1.25"
    );
    assert!(err("slab:factor=0.9").contains("factor must be greater than 1"));
    assert_eq!(
        err("zmalloc:backend=tcmalloc"),
        "zmalloc: bad value `tcmalloc` for `backend`: valid: glibc, jemalloc, mimalloc"
    );
    assert_eq!(
        err("zmalloc:prefix=4"),
        "zmalloc: bad value `4` for `prefix`: valid: 8 (size header), 0 (usable size)"
    );
    assert_eq!(
        err("jemalloc:arena=3"),
        "jemalloc: unknown key `arena`; valid keys: none"
    );
    assert_eq!(err("slab:factor"), "slab: `factor` is not key=value");
    assert_eq!(
        err("log:cleaner=lru"),
        "log: bad value `lru` for `cleaner`: valid: cost-benefit, greedy"
    );
    assert!(err("log:segment=1000").contains("multiple of 4096 between 64k and 1g"));
    assert!(err("log:utilization=1.5").contains("between 0 and 1"));
    assert!(err("slab:chunk_max=12q").contains("unknown unit `q`"));
}

#[test]
fn sizes_accept_binary_suffixes() {
    assert_eq!(parse_size("512"), Ok(512));
    assert_eq!(parse_size("64k"), Ok(64 << 10));
    assert_eq!(parse_size("64m"), Ok(64 << 20));
    assert_eq!(parse_size("1g"), Ok(1 << 30));
    assert_eq!(parse_size("1.5k"), Ok(1536));
    assert!(parse_size("").is_err());
    assert!(parse_size("k").is_err());
    assert!(parse_size("1.3").is_err());
}

struct Name;
impl WithAllocator for Name {
    type Output = (&'static str, u64);
    fn run<A: Allocator>(self, mut a: A) -> (&'static str, u64) {
        let b = a.alloc(100).unwrap();
        let used = a.stats().allocated_bytes;
        // SAFETY: live with 100 requested bytes.
        unsafe { a.free(b.ptr, 100) };
        (a.name(), used)
    }
}

#[test]
fn every_spec_builds_its_allocator() {
    let built: Vec<(&str, u64)> = AllocSpec::all()
        .iter()
        .map(|s| s.build(Name).unwrap())
        .collect();
    assert_eq!(built.len(), 12);
    assert_eq!(built[0], ("slab", 120));
    assert_eq!(built[1], ("zmalloc", 108), "size-header zmalloc: 100 + 8");
    assert_eq!(
        built[2],
        ("zmalloc", 104),
        "usable-size zmalloc on glibc: malloc_usable_size"
    );
    assert_eq!(
        built[4],
        ("zmalloc", 112),
        "usable-size zmalloc on jemalloc: 112"
    );
    assert_eq!(built[7], ("glibc", 104));
    assert_eq!(built[8], ("jemalloc", 112));
    assert_eq!(
        built[5],
        ("zmalloc", 108),
        "size-header zmalloc on mimalloc: 100 + 8"
    );
    assert_eq!(
        built[6],
        ("zmalloc", 112),
        "usable-size zmalloc on mimalloc: 112"
    );
    assert_eq!(built[9], ("mimalloc", 112));
    assert_eq!(built[10], ("bump", 104));
    assert_eq!(built[11], ("log", 104), "log: a 4-byte entry header");
}
