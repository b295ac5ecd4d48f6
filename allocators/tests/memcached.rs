//! The slab allocator against the real memcached (Debian's 1.6.18): the class tables it prints
//! with `-vv`, where a chunked item's chunks go, and the page limit with the first-page rule.
//! Each test starts its own server on 127.0.0.1 and a free port and stops it by its pid.

mod common;

use common::{memcached_available, Memcached};
use fraglab_allocators::slab::{Slab, SlabConfig, PAGE_SIZE};
use fraglab_allocators::{AllocError, Allocator, Detail};

fn model_lines(config: SlabConfig) -> Vec<String> {
    config
        .classes()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect()
}

#[test]
fn class_tables_equal_memcached_vv() {
    if !memcached_available() {
        return;
    }
    let d = SlabConfig::default();
    let cases: Vec<(Vec<&str>, SlabConfig)> = vec![
        (vec![], d.clone()),
        (
            vec!["-f", "2"],
            SlabConfig {
                factor: 2.0,
                ..d.clone()
            },
        ),
        (
            vec!["-f", "1.08"],
            SlabConfig {
                factor: 1.08,
                ..d.clone()
            },
        ),
        (
            vec!["-n", "16"],
            SlabConfig {
                min: 16,
                ..d.clone()
            },
        ),
        (
            vec!["-o", "slab_chunk_max=16384"],
            SlabConfig {
                chunk_max: 16384,
                ..d.clone()
            },
        ),
        (
            vec!["-f", "1.5", "-n", "24", "-o", "slab_chunk_max=16384"],
            SlabConfig {
                factor: 1.5,
                min: 24,
                chunk_max: 16384,
                ..d.clone()
            },
        ),
        (
            vec!["-o", "slab_sizes=96-192-384"],
            SlabConfig {
                sizes: Some(vec![96, 192, 384]),
                ..d.clone()
            },
        ),
    ];
    for (args, config) in cases {
        let mut full = vec!["-vv"];
        full.extend(&args);
        let server = Memcached::start(&full);
        let real = server.class_lines();
        assert!(
            !real.is_empty(),
            "memcached {args:?} printed no class table"
        );
        assert_eq!(real, model_lines(config), "memcached {args:?}");
    }
}

fn used_chunks(stats: &std::collections::HashMap<String, String>) -> Vec<(u32, u64)> {
    let mut v: Vec<(u32, u64)> = stats
        .iter()
        .filter_map(|(k, val)| {
            let (class, field) = k.split_once(':')?;
            (field == "used_chunks").then(|| (class.parse().unwrap(), val.parse().unwrap()))
        })
        .filter(|&(_, n)| n > 0)
        .collect();
    v.sort();
    v
}

fn slab_detail(slab: &Slab) -> fraglab_allocators::slab::SlabDetail {
    match slab.stats().detail {
        Detail::Slab(d) => d,
        _ => unreachable!(),
    }
}

#[test]
fn chunked_item_takes_the_same_chunks_as_memcached() {
    if !memcached_available() {
        return;
    }
    let server = Memcached::start(&[]);
    let mut client = server.connect();
    // key "k", flags 0: ntotal = 48 + 2 + (V + 2) + 8.
    let value = 599_940;
    assert_eq!(client.set("k", 0, value), "STORED");
    let real = client.stats("slabs");
    let items = client.stats("items");

    let mut slab = Slab::new(SlabConfig::default()).unwrap();
    slab.alloc_item(48 + 2 + value + 2 + 8, 48 + 2 + 8).unwrap();
    let d = slab_detail(&slab);
    let model: Vec<(u32, u64)> = d
        .classes
        .iter()
        .filter(|c| c.used_chunks > 0)
        .map(|c| (c.class, c.used_chunks))
        .collect();
    assert_eq!(used_chunks(&real), model);
    assert_eq!(
        real["total_malloced"].parse::<u64>().unwrap(),
        d.total_malloced
    );
    assert_eq!(
        items["items:39:mem_requested"].parse::<u64>().unwrap(),
        d.classes[38].mem_requested
    );
}

#[test]
fn page_limit_and_first_page_rule_match_memcached() {
    if !memcached_available() {
        return;
    }
    // No automatic page moves during the run: the model does not move pages by itself.
    let server = Memcached::start(&["-m", "2", "-o", "slab_automove=0"]);
    let mut client = server.connect();
    let mut slab = Slab::new(SlabConfig::default()).unwrap();
    slab.set_limit(Some(2 * PAGE_SIZE as u64));
    // Keys of 5 bytes; ntotal = 48 + 6 + (V + 2) + 8.
    for (i, v) in [30usize, 500, 5000, 50_000].into_iter().enumerate() {
        assert_eq!(client.set(&format!("key{i:02}"), 0, v), "STORED");
        slab.alloc(48 + 6 + v + 2 + 8).unwrap();
    }
    let keys: Vec<String> = (0..12_000).map(|i| format!("a{i:04}")).collect();
    assert_eq!(client.set_many(&keys, 30), keys.len());
    let mut refused = 0u64;
    for _ in &keys {
        match slab.alloc(48 + 6 + 32 + 8) {
            Ok(_) => {}
            Err(AllocError::OutOfMemory { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let real = client.stats("slabs");
    let general = client.stats("");
    let d = slab_detail(&slab);
    assert_eq!(
        real["total_malloced"].parse::<u64>().unwrap(),
        d.total_malloced
    );
    for c in d.classes.iter().filter(|c| c.total_pages > 0) {
        assert_eq!(
            real[&format!("{}:total_pages", c.class)]
                .parse::<u32>()
                .unwrap(),
            c.total_pages,
            "class {}",
            c.class
        );
        assert_eq!(
            real[&format!("{}:used_chunks", c.class)]
                .parse::<u64>()
                .unwrap(),
            c.used_chunks,
            "class {}",
            c.class
        );
    }
    // Every item memcached evicted is one the model could not place.
    assert_eq!(general["evictions"].parse::<u64>().unwrap(), refused);
}
