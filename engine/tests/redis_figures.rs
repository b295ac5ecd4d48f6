//! The redis layout over `zmalloc:backend=jemalloc,prefix=0` (Redis's own setup: used_memory
//! counts jemalloc's usable sizes) against the sizes Redis 7.0's sources give: the dict entry
//! (`src/dict.h`, `src/dict.c`), the SDS headers (`src/sds.h`), `robj` and the shared integers
//! (`src/server.h`), the encodings (`src/object.c`).

use fraglab_allocators::jemalloc::Jemalloc;
use fraglab_allocators::zmalloc::Zmalloc;
use fraglab_allocators::Allocator;
use fraglab_engine::layout::Redis;
use fraglab_engine::{Policy, SetOptions, Store, StoreConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A store whose dict already has room: 9 keys in a 16-slot table, so the next 7 SETs do
/// not expand it.
fn store(config: StoreConfig) -> Store<Zmalloc<Jemalloc>, Redis> {
    let mut s: Store<_, Redis> =
        Store::new(Zmalloc::new(Jemalloc::new().unwrap(), false), config).unwrap();
    for i in 0..9 {
        s.set(
            format!("pre:{i}").as_bytes(),
            b"x",
            SetOptions::default(),
            1,
        )
        .unwrap();
    }
    for _ in 0..64 {
        s.exists(b"finish the rehash", 1);
    }
    assert_eq!(s.layout().main_slots(), 16);
    s
}

fn used(s: &Store<Zmalloc<Jemalloc>, Redis>) -> u64 {
    s.stats().mem.allocated_bytes
}

/// `used_memory` growth of one SET, with the dict's table already in place.
fn growth(
    s: &mut Store<Zmalloc<Jemalloc>, Redis>,
    key: &[u8],
    value: &[u8],
    ttl: Option<i64>,
) -> u64 {
    let before = used(s);
    s.set(key, value, SetOptions { ttl, flags: 0 }, 1).unwrap();
    used(s) - before
}

#[test]
fn a_16_byte_key_and_100_byte_value_cost_192_bytes() {
    let mut s = store(StoreConfig::default());
    // entry 24 -> 32, key SDS 1 + 16 + 1 = 18 -> 32, robj 16, value SDS 3 + 100 + 1 = 104 -> 112
    assert_eq!(growth(&mut s, b"0123456789abcdef", &[b'v'; 100], None), 192);
}

#[test]
fn embedded_strings_end_at_44_bytes() {
    let mut s = store(StoreConfig::default());
    // 44: one allocation of 16 + 3 + 44 + 1 = 64.   entry 32 + key (1 + 2 + 1 -> 8) + 64
    assert_eq!(growth(&mut s, b"k1", &[b'v'; 44], None), 32 + 8 + 64);
    // 45: robj 16 + SDS 3 + 45 + 1 = 49 -> 64.
    assert_eq!(growth(&mut s, b"k2", &[b'v'; 45], None), 32 + 8 + 16 + 64);
}

#[test]
fn small_integers_are_shared_unless_an_lru_policy_has_a_limit() {
    let mut s = store(StoreConfig::default());
    assert_eq!(
        growth(&mut s, b"k1", b"9999", None),
        32 + 8,
        "shared: no value allocation"
    );
    assert_eq!(
        growth(&mut s, b"k2", b"10000", None),
        32 + 8 + 16,
        "an integer in the robj"
    );
    assert_eq!(growth(&mut s, b"k3", b"-5", None), 32 + 8 + 16);
    assert_eq!(
        growth(&mut s, b"k4", b"007", None),
        32 + 8 + 32,
        "not canonical: a string"
    );
    // With maxmemory and an LRU policy, Redis stops sharing (each key needs its own lru field).
    let mut lru = store(StoreConfig {
        policy: Policy::SampledLru,
        limited: true,
        ..StoreConfig::default()
    });
    assert_eq!(growth(&mut lru, b"k1", b"9999", None), 32 + 8 + 16);
}

#[test]
fn a_ttl_adds_one_expires_entry() {
    let mut s = store(StoreConfig::default());
    s.set(
        b"k0",
        b"x",
        SetOptions {
            ttl: Some(100),
            flags: 0,
        },
        1,
    )
    .unwrap(); // the expires table
    let plain = growth(&mut s, b"k1", &[b'v'; 100], None);
    let with_ttl = growth(&mut s, b"k2", &[b'v'; 100], Some(100));
    assert_eq!(
        with_ttl - plain,
        32,
        "a 24-byte dict entry in the expires dict"
    );
    // Removing the TTL frees it again.
    let before = used(&s);
    s.touch(b"k2", None, 2).unwrap();
    assert_eq!(before - used(&s), 32);
}

#[test]
fn bucket_arrays_grow_at_powers_of_two() {
    let mut s = Store::<_, Redis>::new(
        Zmalloc::new(Jemalloc::new().unwrap(), false),
        StoreConfig::default(),
    )
    .unwrap();
    let mut sizes = Vec::new();
    for i in 0..40 {
        s.set(format!("key{i}").as_bytes(), b"v", SetOptions::default(), 1)
            .unwrap();
        // Finish any incremental rehash so one table remains.
        for _ in 0..64 {
            s.exists(b"nothing", 1);
        }
        sizes.push(s.layout().main_slots());
    }
    // 4 slots for 1..=4 keys, 8 for 5..=8, 16 for 9..=16, 32 for 17..=32, 64 after.
    for (i, &slots) in sizes.iter().enumerate() {
        let keys = i + 1;
        assert_eq!(slots, keys.max(4).next_power_of_two(), "{keys} keys");
    }
    assert_eq!(s.stats().index_in_allocator_bytes, 64 * 8);
}

#[test]
fn append_grows_greedily_through_realloc() {
    let mut s = store(StoreConfig::default());
    s.set(b"k", &[b'a'; 50], SetOptions::default(), 1).unwrap();
    let reallocs = s.allocator().stats().counters.reallocs;
    s.append(b"k", &[b'b'; 10], 1).unwrap();
    // 60 bytes wanted: sdsMakeRoomFor asks for 3 + 120 + 1, in place of the 54-byte SDS.
    assert_eq!(s.allocator().stats().counters.reallocs, reallocs + 1);
    let before = used(&s);
    s.append(b"k", &[b'c'; 50], 1).unwrap(); // 110 <= 120: no allocation
    assert_eq!(used(&s), before);
    let mut want = vec![b'a'; 50];
    want.extend([b'b'; 10]);
    want.extend([b'c'; 50]);
    assert_eq!(s.get(b"k", 1), Some(want));
}
