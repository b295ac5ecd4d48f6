//! Result files round-trip: the typed `allocator_detail` reads the files written before it
//! (slab classes with `perslab`, untyped details, none at all) and writes memcached's
//! `chunks_per_page`.

use std::path::{Path, PathBuf};

use fraglab_reports::{AllocatorDetail, RedisDetail, RunResult};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/results")
        .join(name)
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("fraglab-schema-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Saves `r` in `dir`, returns the JSON text written and the result read back.
fn save_and_load(r: &RunResult, dir: &TempDir, name: &str) -> (String, RunResult) {
    let path = dir.0.join(name);
    r.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    (text, RunResult::load(&path).unwrap())
}

#[test]
fn old_slab_files_load_and_save_chunks_per_page() {
    let old_text = std::fs::read_to_string(fixture("etc-slab.json")).unwrap();
    assert!(
        old_text.contains("\"perslab\""),
        "the fixture is an old file"
    );
    let old = RunResult::load(&fixture("etc-slab.json")).unwrap();
    let slab = old.allocator_detail.slab().expect("a typed slab detail");
    assert_eq!(slab.classes.len(), 25);
    let raw: serde_json::Value = serde_json::from_str(&old_text).unwrap();
    for (c, raw) in slab
        .classes
        .iter()
        .zip(raw["allocator_detail"]["classes"].as_array().unwrap())
    {
        assert_eq!(c.chunks_per_page, raw["perslab"].as_u64().unwrap());
        assert_eq!(c.chunk_size, raw["chunk_size"].as_u64().unwrap());
        assert_eq!(c.used_chunks, raw["used_chunks"].as_u64().unwrap());
    }
    assert_eq!(slab.total_malloced, old.summary.footprint_bytes);
    assert_eq!(slab.limit_maxbytes, None);
    assert_eq!(slab.pages_past_limit, Some(0));

    let dir = TempDir::new("slab");
    let (text, back) = save_and_load(&old, &dir, "slab.json");
    assert!(!text.contains("perslab"), "perslab written again");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let d = &json["allocator_detail"];
    assert_eq!(d["allocator"], "slab");
    assert_eq!(d["classes"][0]["chunks_per_page"], 10922);
    assert!(d["limit_maxbytes"].is_null());
    assert_eq!(back, old);
}

#[test]
fn a_redis_detail_round_trips() {
    let mut r = RunResult::load(&fixture("w3-jemalloc.json")).unwrap();
    let redis = RedisDetail {
        used_memory: 3_145_728,
        used_memory_baseline: 901_232,
        allocator_allocated: 3_200_000,
        allocator_active: 3_500_032,
        allocator_resident: 6_291_456,
        mem_fragmentation_ratio: 2.37,
        mem_allocator: "jemalloc-5.3.0".into(),
        used_memory_reported: 3_162_112,
        client_reply_buffer: 16_384,
    };
    r.allocator_detail = redis.clone().into();
    let dir = TempDir::new("redis");
    let (text, back) = save_and_load(&r, &dir, "redis.json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let d = &json["allocator_detail"];
    assert_eq!(d["allocator"], "redis");
    assert_eq!(d["used_memory_reported"], 3_162_112);
    assert_eq!(d["mem_allocator"], "jemalloc-5.3.0");
    assert_eq!(back.allocator_detail.redis(), Some(&redis));
    assert_eq!(back, r);
    // As the Redis peer writes it, built as JSON.
    let peer = serde_json::json!({
        "allocator": "redis", "used_memory": 1, "used_memory_baseline": 2,
        "allocator_allocated": 3, "allocator_active": 4, "allocator_resident": 5,
        "mem_fragmentation_ratio": 1.5, "mem_allocator": "libc", "used_memory_reported": 6,
        "client_reply_buffer": 7
    });
    let d = AllocatorDetail::from(peer.clone());
    assert_eq!(d.redis().map(|r| r.client_reply_buffer), Some(7));
    assert_eq!(d.to_value(), peer);
}

#[test]
fn other_and_absent_details_load() {
    // jemalloc's detail is kept as written.
    let je = RunResult::load(&fixture("w3-jemalloc.json")).unwrap();
    assert!(matches!(je.allocator_detail, AllocatorDetail::Other(_)));
    assert_eq!(je.allocator_detail.allocator(), Some("jemalloc"));
    let dir = TempDir::new("other");
    let (text, back) = save_and_load(&je, &dir, "je.json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["allocator_detail"]["arena"], 9);
    assert_eq!(back, je);
    // A file without the field, or with null, loads with no detail.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("w3-mimalloc.json")).unwrap())
            .unwrap();
    for (name, edit) in [
        ("absent.json", None),
        ("null.json", Some(serde_json::Value::Null)),
    ] {
        let obj = json.as_object_mut().unwrap();
        match edit {
            None => {
                obj.remove("allocator_detail");
            }
            Some(v) => {
                obj.insert("allocator_detail".into(), v);
            }
        }
        let path = dir.0.join(name);
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
        let r = RunResult::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.allocator_detail, AllocatorDetail::Absent, "{name}");
    }
}
