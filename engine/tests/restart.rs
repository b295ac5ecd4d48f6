//! A warm restart (`slab:file=PATH`, memcached's `-e`): every item is intact afterwards, bytes
//! compared, after eviction, deletes, overwrites and appends; the store goes on working.

use std::collections::BTreeMap;

use fraglab_allocators::slab::{Slab, SlabConfig};
use fraglab_allocators::{AllocSpec, Allocator};
use fraglab_engine::layout::Memcached;
use fraglab_engine::{with_store, LayoutKind, Policy, SetOptions, Store, StoreConfig};

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fraglab-restart-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("slabs")
}

fn value(i: u64, round: u64) -> Vec<u8> {
    let len = 10 + (i * 7919 + round * 31) as usize % 3000;
    (0..len)
        .map(|j| b'a' + ((i + j as u64 + round) % 26) as u8)
        .collect()
}

#[test]
fn every_item_is_intact_after_a_restart() {
    let (path, mut store) = small_store("intact");
    let classes = store.allocator().class_stats();
    assert_eq!(classes.len(), 13);
    assert!(
        classes.iter().all(|c| c.total_pages == 1),
        "a page of every class at the start: {classes:?}"
    );
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for i in 0..30_000u64 {
        let key = format!("key:{}", i % 12_000).into_bytes();
        let round = i / 12_000;
        let v = value(i, round);
        let ttl = (i % 9 == 0).then_some(1000);
        let flags = (i % 4) as u32;
        store.set(&key, &v, SetOptions { ttl, flags }, 1).unwrap();
        model.insert(key.clone(), v);
        if i % 5 == 0 {
            let k = format!("key:{}", (i * 3) % 12_000).into_bytes();
            store.delete(&k, 1);
            model.remove(&k);
        }
        if i % 11 == 0 && store.append(&key, b"+tail", 1).unwrap() {
            model.get_mut(&key).unwrap().extend_from_slice(b"+tail");
        }
    }
    assert!(store.stats().counters.evictions > 0, "the limit evicted");
    // What the store holds, as the model says it should be.
    let mut held = BTreeMap::new();
    for (k, v) in &model {
        if let Some(got) = store.get(k, 2) {
            assert_eq!(&got, v);
            held.insert(k.clone(), (got, store.ttl(k, 2)));
        }
    }
    assert_eq!(held.len(), store.len());
    let before = store.mem_stats();
    let r = store.restart().unwrap();
    assert_eq!(r.bad_items, 0, "{:?}", r.bad_reasons);
    assert!(r.lists_kept, "the LRU links moved with the mapping");
    assert_eq!(r.items_before, held.len() as u64);
    assert_eq!(r.items_after, r.items_before);
    assert!(r.meta_bytes > 0);
    assert!(super_meta_exists(&path));
    let after = store.mem_stats();
    assert_eq!(
        after.footprint_bytes, before.footprint_bytes,
        "the same pages"
    );
    assert_eq!(
        after.requested_bytes, before.requested_bytes,
        "the same items"
    );
    for (k, (v, ttl)) in &held {
        assert_eq!(
            store.get(k, 2).as_ref(),
            Some(v),
            "{}",
            String::from_utf8_lossy(k)
        );
        assert_eq!(&store.ttl(k, 2), ttl);
    }
    // The store goes on: new keys, overwrites, deletes, and eviction under the same limit.
    for i in 0..20_000u64 {
        let key = format!("new:{i}").into_bytes();
        store
            .set(&key, &value(i, 9), SetOptions::default(), 3)
            .unwrap();
    }
    assert_eq!(store.get(b"new:19999", 3), Some(value(19_999, 9)));
    // A second restart of the restarted store.
    let n = store.len() as u64;
    let r = store.restart().unwrap();
    assert_eq!((r.items_after, r.bad_items), (n, 0));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// A store over a 16 MiB file-backed slab of factor 2: 13 classes take a page each at the
/// start, and 3 more pages go to the classes used.
fn small_store(name: &str) -> (std::path::PathBuf, Store<Slab, Memcached>) {
    let path = temp(name);
    let config = SlabConfig {
        item_max: 512 << 10,
        factor: 2.0,
        file: Some(path.clone()),
        ..SlabConfig::default()
    };
    let mut slab = Slab::new(config).unwrap();
    slab.set_limit(Some(16 << 20));
    let store_config = StoreConfig {
        policy: Policy::SlabLru,
        limited: true,
        ..StoreConfig::default()
    };
    (path, Store::new(slab, store_config).unwrap())
}

fn key(i: u64) -> Vec<u8> {
    format!("k{i:06}").into_bytes()
}

/// The eviction order survives: after a restart the items go in the order they would have
/// gone without it (memcached moves its LRU links to the new mapping, `restart.c`).
#[test]
fn the_eviction_order_survives_a_restart() {
    let (path, mut store) = small_store("order");
    let v = vec![b'x'; 200];
    let opts = SetOptions::default();
    for i in 0..20_000 {
        store.set(&key(i), &v, opts, 0).unwrap();
    }
    let first = (0..20_000)
        .find(|&i| store.get(&key(i), 0).is_some())
        .unwrap();
    assert!(first > 0, "the limit evicted the oldest");
    // A minute and more later, the oldest 1,000 left are read: memcached bumps them to the
    // head of the list.
    for i in first..first + 1000 {
        assert!(store.get(&key(i), 100).is_some());
    }
    let r = store.restart().unwrap();
    assert!(r.lists_kept);
    for i in 20_000..22_000 {
        store.set(&key(i), &v, opts, 100).unwrap();
    }
    let gone: Vec<u64> = (first..20_000)
        .filter(|&i| store.get(&key(i), 101).is_none())
        .collect();
    let want: Vec<u64> = (first + 1000..first + 3000).collect();
    assert_eq!(gone, want, "the 2,000 oldest not read, and no other");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// A damaged item is dropped with its reason, the lists (which linked it) are rebuilt by last
/// access instead of moved, and the store goes on evicting soundly.
#[test]
fn a_damaged_item_is_dropped_and_the_lists_rebuilt() {
    use std::os::unix::fs::FileExt;
    let (path, mut store) = small_store("damaged");
    let v = vec![b'x'; 200];
    for i in 0..5_000 {
        store.set(&key(i), &v, SetOptions::default(), 0).unwrap();
    }
    // The file is mapped shared: a write to it is a write to the item. The key's NUL goes.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut needle = key(2_500);
    needle.push(0);
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the key is in the file");
    file.write_all_at(b"X", (at + needle.len() - 1) as u64)
        .unwrap();
    let r = store.restart().unwrap();
    assert_eq!(r.bad_items, 1, "{:?}", r.bad_reasons);
    assert!(r.bad_reasons[0].contains("NUL"), "{:?}", r.bad_reasons);
    assert!(!r.lists_kept);
    assert_eq!(r.items_after, 4_999);
    assert!(store.get(&key(2_500), 1).is_none());
    assert_eq!(store.get(&key(2_501), 1), Some(v.clone()));
    // Evicting walks the rebuilt lists.
    for i in 5_000..40_000 {
        store.set(&key(i), &v, SetOptions::default(), 1).unwrap();
    }
    assert!(store.stats().counters.evictions > 0);
    assert_eq!(store.get(&key(39_999), 1), Some(v));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

fn super_meta_exists(path: &std::path::Path) -> bool {
    let mut m = path.as_os_str().to_owned();
    m.push(".meta");
    std::path::Path::new(&m).is_file()
}

struct TryRestart;

impl fraglab_engine::WithStore for TryRestart {
    type Output = Result<fraglab_engine::Restarted, String>;
    fn run<A: Allocator, L: fraglab_engine::Layout>(self, mut store: Store<A, L>) -> Self::Output {
        store.set(b"k", b"v", SetOptions::default(), 0).unwrap();
        store.restart()
    }
}

#[test]
fn a_restart_is_refused_without_a_file_or_with_another_layout() {
    let slab: AllocSpec = "slab".parse().unwrap();
    let e = with_store(
        &slab,
        LayoutKind::Memcached,
        None,
        StoreConfig::default(),
        TryRestart,
    )
    .unwrap()
    .unwrap_err();
    assert!(e.contains("slab:file=PATH"), "{e}");
    let path = temp("refused");
    let spec: AllocSpec = format!("slab:file={},item_max=524288", path.display())
        .parse()
        .unwrap();
    let e = with_store(
        &spec,
        LayoutKind::Compact,
        None,
        StoreConfig::default(),
        TryRestart,
    )
    .unwrap()
    .unwrap_err();
    assert!(e.contains("only memcached's"), "{e}");
    let e = "slab:file=/tmp/x"
        .parse::<AllocSpec>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("item_max"), "{e}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
