//! Eviction policies, expiry, page emptying and bad input, each pinned to what the modeled
//! system does.

use fraglab_allocators::slab::{Slab, SlabConfig};
use fraglab_allocators::zmalloc::Zmalloc;
use fraglab_allocators::{jemalloc::Jemalloc, Allocator};
use fraglab_engine::layout::{Compact, Memcached, Redis};
use fraglab_engine::{ActiveExpire, CmdError, Layout, Policy, SetOptions, Store, StoreConfig, Ttl};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MIB: u64 = 1 << 20;

fn slab_store<L: Layout>(policy: Policy, limit: u64) -> Store<Slab, L> {
    let mut slab = Slab::new(SlabConfig::default()).unwrap();
    slab.set_limit(Some(limit));
    Store::new(
        slab,
        StoreConfig {
            policy,
            limited: true,
            ..StoreConfig::default()
        },
    )
    .unwrap()
}

fn redis_store(policy: Policy, limit: u64) -> Store<Zmalloc<Jemalloc>, Redis> {
    let mut z = Zmalloc::new(Jemalloc::new().unwrap(), false);
    z.set_limit(Some(limit));
    Store::new(
        z,
        StoreConfig {
            policy,
            limited: true,
            seed: 3,
            ..StoreConfig::default()
        },
    )
    .unwrap()
}

fn set<A: Allocator, L: Layout>(s: &mut Store<A, L>, key: &str, len: usize, now: u64) {
    s.set(key.as_bytes(), &vec![b'v'; len], SetOptions::default(), now)
        .unwrap();
}

fn present<A: Allocator, L: Layout>(s: &mut Store<A, L>, prefix: &str, n: usize) -> usize {
    (0..n)
        .filter(|i| s.exists(format!("{prefix}{i}").as_bytes(), 0))
        .count()
}

#[test]
fn slab_lru_calcifies() {
    // Small items fill the 2 MiB limit; then large items get one first page past the limit and
    // evict only each other, while the small items' pages stay where they are.
    let mut s: Store<_, Memcached> = slab_store(Policy::SlabLru, 2 * MIB);
    for i in 0..20_000 {
        set(&mut s, &format!("small{i}"), 100, 0);
    }
    let small_before = present(&mut s, "small", 20_000);
    assert_eq!(
        small_before as u64,
        2 * 5461,
        "two pages of 192-byte chunks"
    );
    assert_eq!(s.stats().counters.evictions, 20_000 - 2 * 5461);
    for i in 0..1000 {
        set(&mut s, &format!("large{i}"), 2000, 0);
    }
    assert_eq!(
        present(&mut s, "small", 20_000),
        small_before,
        "no small item was evicted for a large one"
    );
    assert_eq!(
        present(&mut s, "large", 1000),
        451,
        "one page of 2320-byte chunks"
    );
    assert_eq!(s.stats().mem.footprint_bytes, 3 * MIB);
}

#[test]
fn under_a_page_limit_every_policy_evicts_within_the_class_it_needs() {
    // Evicting a key of another class frees a chunk no page can move: the write would empty
    // the store for nothing. Every policy picks victims of the needed class.
    for policy in [
        Policy::Lru,
        Policy::Fifo,
        Policy::SampledLru,
        Policy::Random,
        Policy::Lfu,
    ] {
        let mut s: Store<_, Compact> = slab_store(policy, 2 * MIB);
        for i in 0..20_000 {
            set(&mut s, &format!("small{i}"), 100, 0);
        }
        let small = present(&mut s, "small", 20_000);
        for i in 0..1000 {
            set(&mut s, &format!("large{i}"), 2000, 0);
        }
        assert_eq!(present(&mut s, "small", 20_000), small, "{policy}");
        assert!(present(&mut s, "large", 1000) > 400, "{policy}");
        assert_eq!(s.stats().counters.oom_errors, 0, "{policy}");
    }
}

#[test]
fn lru_keeps_what_is_read_and_fifo_does_not() {
    for (policy, survives) in [(Policy::Lru, true), (Policy::Fifo, false)] {
        let mut s: Store<_, Compact> = slab_store(policy, MIB);
        set(&mut s, "hot", 100, 0);
        for i in 0..20_000 {
            set(&mut s, &format!("k{i}"), 100, 0);
            assert!(
                s.get(b"hot", 0).is_some() || !survives,
                "{policy}: hot evicted at {i}"
            );
        }
        assert!(s.stats().counters.evictions > 0);
        assert_eq!(s.exists(b"hot", 0), survives, "{policy}");
    }
}

#[test]
fn volatile_ttl_evicts_the_soonest_expiring_and_never_a_persistent_key() {
    let mut s = redis_store(Policy::VolatileTtl, 512 << 10);
    for i in 0..200 {
        set(&mut s, &format!("persistent{i}"), 100, 0);
    }
    let mut i = 0;
    while s.stats().counters.evictions < 200 {
        let ttl = Some(1000 + i as i64);
        s.set(
            format!("v{i}").as_bytes(),
            &[b'v'; 100],
            SetOptions { ttl, flags: 0 },
            0,
        )
        .unwrap();
        i += 1;
    }
    assert_eq!(present(&mut s, "persistent", 200), 200);
    // Sampling is approximate (5 samples into a 16-entry pool), but the evicted keys expire
    // much sooner than the survivors on average.
    let (mut gone, mut kept) = (Vec::new(), Vec::new());
    for j in 0..i {
        if s.exists(format!("v{j}").as_bytes(), 0) {
            kept.push(j as f64)
        } else {
            gone.push(j as f64)
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert_eq!(gone.len(), 200);
    assert!(
        mean(&gone) < 0.6 * mean(&kept),
        "evicted mean {} vs kept mean {}",
        mean(&gone),
        mean(&kept)
    );
    // With only persistent keys left to make room from, writes fail.
    let mut t = redis_store(Policy::VolatileTtl, 64 << 10);
    let mut refused = false;
    for j in 0..2000 {
        match t.set(
            format!("p{j}").as_bytes(),
            &[b'v'; 100],
            SetOptions::default(),
            0,
        ) {
            Ok(()) => {}
            Err(CmdError::OutOfMemory) => refused = true,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused);
    assert_eq!(t.stats().counters.evictions, 0);
}

#[test]
fn lfu_keeps_a_frequently_read_key() {
    let mut s = redis_store(Policy::Lfu, 256 << 10);
    set(&mut s, "hot", 100, 0);
    for _ in 0..200 {
        s.get(b"hot", 0);
    }
    for i in 0..5000 {
        set(&mut s, &format!("k{i}"), 100, 0);
    }
    assert!(s.stats().counters.evictions > 3000);
    assert!(
        s.exists(b"hot", 0),
        "the LFU counter should keep the hot key"
    );
}

#[test]
fn noeviction_counts_oom_errors_and_changes_nothing() {
    let mut s = redis_store(Policy::Noeviction, 64 << 10);
    let mut i = 0;
    while s
        .set(
            format!("k{i}").as_bytes(),
            &[b'v'; 100],
            SetOptions::default(),
            0,
        )
        .is_ok()
    {
        i += 1;
    }
    let before = s.stats();
    assert_eq!(before.counters.oom_errors, 1);
    assert_eq!(
        s.append(b"k0", &[b'x'; 10_000], 0),
        Err(CmdError::OutOfMemory)
    );
    assert_eq!(
        s.get(b"k0", 0),
        Some(vec![b'v'; 100]),
        "a refused APPEND leaves the value"
    );
    let after = s.stats();
    assert_eq!(
        (after.items, after.payload_bytes),
        (before.items, before.payload_bytes)
    );
}

#[test]
fn active_expiry_samples_like_redis_and_crawls_like_memcached() {
    let mut r = redis_store(Policy::Noeviction, 64 * MIB);
    for i in 0..2000 {
        let ttl = (i % 2 == 0).then_some(10);
        r.set(
            format!("k{i}").as_bytes(),
            b"v",
            SetOptions { ttl, flags: 0 },
            0,
        )
        .unwrap();
    }
    assert_eq!(
        r.active_expire(5, ActiveExpire::Sample),
        0,
        "nothing has expired yet"
    );
    let mut expired = 0;
    for _ in 0..200 {
        expired += r.active_expire(20, ActiveExpire::Sample);
    }
    assert_eq!(expired, 1000);
    assert_eq!(r.stats().counters.expired_active, 1000);
    assert_eq!(r.len(), 1000);

    let mut m: Store<_, Memcached> = slab_store(Policy::SlabLru, 64 * MIB);
    for i in 0..2000 {
        let ttl = (i % 4 == 0).then_some(10);
        m.set(
            format!("k{i}").as_bytes(),
            b"v",
            SetOptions { ttl, flags: 0 },
            0,
        )
        .unwrap();
    }
    assert_eq!(
        m.active_expire(10, ActiveExpire::Crawl),
        500,
        "memcached: exptime <= now is expired"
    );
    assert_eq!(m.ttl(b"k1", 10), Ttl::Persistent);
    assert_eq!(m.ttl(b"k0", 10), Ttl::Missing);
}

#[test]
fn a_slab_page_can_be_emptied_and_moved() {
    let mut s: Store<_, Memcached> = slab_store(Policy::SlabLru, 64 * MIB);
    for i in 0..12_000 {
        set(&mut s, &format!("k{i}"), 100, 0); // class 4, 5461 chunks a page: 3 pages
    }
    let pages = s.allocator().class_pages(4).unwrap();
    assert_eq!(pages.len(), 3);
    let page = pages
        .iter()
        .find(|p| p.used_chunks == 5461)
        .unwrap()
        .base
        .as_ptr() as usize;
    assert_eq!(s.evict_range(page, page + (1 << 20)), 5461);
    assert_eq!(s.stats().counters.evictions_page, 5461);
    assert_eq!(s.len(), 12_000 - 5461);
    s.allocator_mut().move_page(4, 20).unwrap();
    // Every surviving key still reads back.
    assert_eq!(present(&mut s, "k", 12_000), 12_000 - 5461);
}

#[test]
fn bad_input_gets_typed_errors() {
    let mut m: Store<_, Memcached> = slab_store(Policy::SlabLru, 64 * MIB);
    let long = vec![b'k'; 251];
    assert_eq!(
        m.set(&long, b"v", SetOptions::default(), 0),
        Err(CmdError::KeyTooLong { len: 251, max: 250 })
    );
    assert!(m.set(&long[..250], b"v", SetOptions::default(), 0).is_ok());
    assert!(matches!(
        m.set(b"big", &vec![0; 1 << 20], SetOptions::default(), 0),
        Err(CmdError::ValueTooLarge { .. })
    ));
    assert_eq!(
        m.set(
            b"k",
            b"v",
            SetOptions {
                ttl: Some(-1),
                flags: 0
            },
            0
        ),
        Err(CmdError::InvalidTtl(-1))
    );
    m.set(b"word", b"abc", SetOptions::default(), 0).unwrap();
    assert_eq!(m.incr(b"word", 1, 0), Err(CmdError::NotAnInteger));
    assert_eq!(m.incr(b"missing", 1, 0), Ok(None));
    m.set(b"n", b"10", SetOptions::default(), 0).unwrap();
    assert_eq!(m.incr(b"n", -1, 0), Ok(Some(9)));
    assert_eq!(
        m.get(b"n", 0),
        Some(b"9 ".to_vec()),
        "memcached pads an in-place DECR with spaces"
    );
    assert_eq!(m.incr(b"n", -100, 0), Ok(Some(0)), "DECR stops at 0");
    assert_eq!(m.len(), 3, "the 250-byte key, word and n");

    let mut r = redis_store(Policy::Noeviction, 64 * MIB);
    assert!(
        r.set(&long, b"v", SetOptions::default(), 0).is_ok(),
        "Redis keys have no 250-byte limit"
    );
    r.set(
        b"max",
        i64::MAX.to_string().as_bytes(),
        SetOptions::default(),
        0,
    )
    .unwrap();
    assert_eq!(r.incr(b"max", 1, 0), Err(CmdError::Overflow));
    assert_eq!(r.incr(b"fresh", 5, 0), Ok(Some(5)));
    assert_eq!(
        r.set(
            b"k",
            b"v",
            SetOptions {
                ttl: Some(0),
                flags: 0
            },
            0
        ),
        Err(CmdError::InvalidTtl(0))
    );
    assert_eq!(
        r.get(b"max", 0),
        Some(i64::MAX.to_string().into_bytes()),
        "a failed INCR changes nothing"
    );
}

#[test]
fn list_policies_need_links_the_redis_layout_does_not_have() {
    let z = Zmalloc::new(Jemalloc::new().unwrap(), false);
    let err = Store::<_, Redis>::new(
        z,
        StoreConfig {
            policy: Policy::Lru,
            ..StoreConfig::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("needs per-item list links"));
}
