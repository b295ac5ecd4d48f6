//! The segcache layout over a log whose segments hold several of its segments: when whole
//! segcache segments are freed, the log's cleaner moves the others, and the table (which holds
//! segment ids and offsets) follows by its segment's new base alone.

use std::ptr::NonNull;

use fraglab_allocators::log::{Log, LogConfig};
use fraglab_allocators::{Allocator, Detail, Relocate};

use super::{Loc, Segcache};
use crate::layout::{Layout, LayoutOptions, NewItem};
use crate::util::hash_key;

struct Follow<'a>(&'a mut Segcache);

impl Relocate for Follow<'_> {
    fn relocated(&mut self, from: NonNull<u8>, to: NonNull<u8>, _size: usize) {
        self.0.relocated(from, to);
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key:{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    (0..100).map(|j| (i as usize * 7 + j) as u8).collect()
}

#[test]
fn the_table_follows_segments_the_log_moves() {
    let mut log = Log::new(LogConfig {
        segment: 256 << 10,
        ..LogConfig::default()
    })
    .unwrap();
    let mut s = Segcache::new(LayoutOptions {
        links: false,
        shared_integers: false,
    });
    // Segcache segments of 60 KiB: four to a log segment.
    s.seg_size = 60 << 10;
    let n = 20_000u32;
    for i in 0..n {
        let (k, v) = (key(i), value(i));
        let item = NewItem {
            key: &k,
            hash: hash_key(&k),
            value: &v,
            flags: 0,
            exptime: 0,
            access: 0,
            now: 0,
        };
        s.insert(&mut log, item).unwrap();
    }
    // Items are appended in order: deleting every other run of 1000 keys frees whole segcache
    // segments, half of each log segment.
    let gone = |i: u32| (i / 1000) % 2 == 0 && i < n - 2000;
    for i in (0..n).filter(|&i| gone(i)) {
        let k = key(i);
        let h = s.find(&mut log, &k, hash_key(&k)).unwrap();
        s.remove(&mut log, h);
    }
    assert!(log.wants_compaction(), "half the log is dead");
    let released = log.compact(&mut Follow(&mut s));
    assert!(released > 0);
    let Detail::Log(d) = log.stats().detail else {
        unreachable!()
    };
    assert!(d.bytes_copied > 0 && d.segments_cleaned > 0, "{d:?}");
    for i in 0..n {
        let k = key(i);
        let found = s.find(&mut log, &k, hash_key(&k));
        if gone(i) {
            assert_eq!(found, None, "key {i}");
            continue;
        }
        let h: Loc = found.unwrap_or_else(|| panic!("key {i} lost"));
        let mut v = Vec::new();
        s.read_value(&log, h, &mut v);
        assert_eq!(v, value(i), "key {i}");
    }
    log.check().unwrap();
    s.release(&mut log);
}
