//! Model-based property tests: random command programs run against the store and against a
//! `HashMap` model of the layout's semantics (memcached's for the memcached and compact
//! layouts, Redis's for the redis layout), for every layout x allocator pair. Every read must
//! agree, and after every command the stat identities hold.
//!
//! With a memory limit: the store stays within the allocator's limit, evicts only after the
//! allocator refused, every key it still holds has the model's value, and `noeviction` refuses
//! writes without losing anything.

use std::collections::HashMap;

use fraglab_allocators::AllocSpec;
use fraglab_engine::{
    with_store, ActiveExpire, CmdError, Layout, LayoutKind, Policy, SetOptions, Store, StoreConfig,
    Ttl, WithStore,
};
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone)]
enum Cmd {
    Set(usize, Val, Option<i64>, u32),
    Add(usize, Val, Option<i64>),
    Replace(usize, Val),
    Append(usize, Val, bool),
    Incr(usize, i64),
    Get(usize),
    MGet(usize, usize),
    Delete(usize),
    Exists(usize),
    Touch(usize, Option<i64>),
    Ttl(usize),
    Advance(u64),
    Expire,
    Flush,
}

/// A value: bytes of a length, or a number.
#[derive(Debug, Clone)]
enum Val {
    Bytes(usize, u8),
    Number(i64),
}

impl Val {
    fn bytes(&self) -> Vec<u8> {
        match *self {
            Val::Bytes(n, seed) => (0..n).map(|i| seed.wrapping_add((i * 7) as u8)).collect(),
            Val::Number(n) => n.to_string().into_bytes(),
        }
    }
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        6 => (0usize..120, any::<u8>()).prop_map(|(n, s)| Val::Bytes(n, s)),
        2 => (120usize..3000, any::<u8>()).prop_map(|(n, s)| Val::Bytes(n, s)),
        1 => (500_000usize..700_000, any::<u8>()).prop_map(|(n, s)| Val::Bytes(n, s)),
        3 => prop_oneof![0i64..10_000, any::<i64>(), Just(i64::MAX), Just(-1)].prop_map(Val::Number),
    ]
}

fn key() -> impl Strategy<Value = usize> {
    prop_oneof![20 => 0usize..12, 1 => Just(99)]
}

fn ttl() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![4 => Just(None), 2 => (1i64..30).prop_map(Some), 1 => (-3i64..=0).prop_map(Some)]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        8 => (key(), val(), ttl(), prop_oneof![Just(0u32), any::<u32>()]).prop_map(|(k, v, t, f)| Cmd::Set(k, v, t, f)),
        2 => (key(), val(), ttl()).prop_map(|(k, v, t)| Cmd::Add(k, v, t)),
        2 => (key(), val()).prop_map(|(k, v)| Cmd::Replace(k, v)),
        3 => (key(), val(), any::<bool>()).prop_map(|(k, v, p)| Cmd::Append(k, v, p)),
        3 => (key(), prop_oneof![-5i64..5, any::<i64>()]).prop_map(|(k, d)| Cmd::Incr(k, d)),
        8 => key().prop_map(Cmd::Get),
        1 => (key(), key()).prop_map(|(a, b)| Cmd::MGet(a, b)),
        3 => key().prop_map(Cmd::Delete),
        1 => key().prop_map(Cmd::Exists),
        2 => (key(), ttl()).prop_map(|(k, t)| Cmd::Touch(k, t)),
        1 => key().prop_map(Cmd::Ttl),
        3 => (0u64..12).prop_map(Cmd::Advance),
        1 => Just(Cmd::Expire),
        1 => prop_oneof![20 => Just(Cmd::Get(0)), 1 => Just(Cmd::Flush)],
    ]
}

fn key_bytes(k: usize) -> Vec<u8> {
    if k == 99 {
        vec![b'L'; 251] // over memcached's 250-byte limit
    } else {
        format!("key:{k}").into_bytes()
    }
}

#[derive(Debug, Clone)]
struct Item {
    value: Vec<u8>,
    flags: u32,
    exptime: u32,
}

/// The reference: the layout's semantics over a `HashMap`.
struct Model {
    redis: bool,
    items: HashMap<Vec<u8>, Item>,
    hits: u64,
    misses: u64,
    /// The store may evict (limit runs): keys it no longer has are forgotten before each
    /// command, and hit and payload totals are not compared.
    lossy: bool,
}

impl Model {
    fn expired(&self, exptime: u32, now: u64) -> bool {
        exptime != 0
            && if self.redis {
                now > u64::from(exptime)
            } else {
                u64::from(exptime) <= now
            }
    }

    /// Lazy expiry, as the store does on every lookup.
    fn live(&mut self, k: &[u8], now: u64) -> Option<&mut Item> {
        if let Some(it) = self.items.get(k) {
            if self.expired(it.exptime, now) {
                self.items.remove(k);
            }
        }
        self.items.get_mut(k)
    }

    fn exptime(now: u64, ttl: Option<i64>) -> u32 {
        match ttl {
            Some(t) if t > 0 => (now + t as u64).min(u32::MAX as u64) as u32,
            _ => 0,
        }
    }

    fn payload(&self) -> u64 {
        self.items
            .iter()
            .map(|(k, v)| (k.len() + v.value.len()) as u64)
            .sum()
    }
}

struct Program {
    cmds: Vec<Cmd>,
    limit: bool,
}

impl WithStore for Program {
    type Output = Result<(), TestCaseError>;

    fn run<A: fraglab_allocators::Allocator, L: Layout>(
        self,
        mut store: Store<A, L>,
    ) -> Self::Output {
        let redis = L::KIND == LayoutKind::Redis;
        let mut m = Model {
            redis,
            items: HashMap::new(),
            hits: 0,
            misses: 0,
            lossy: self.limit,
        };
        let mut now = 1u64;
        for cmd in &self.cmds {
            step(&mut store, &mut m, cmd, &mut now)?;
            check(&store, &mut m, now)?;
        }
        Ok(())
    }
}

/// Accepts a store error only where the model expects one; returns whether the write happened.
fn expect_err(r: CmdError, m: &Model, what: &str) -> Result<(), TestCaseError> {
    match r {
        CmdError::OutOfMemory if m.lossy => Ok(()),
        CmdError::ValueTooLarge { .. } => Ok(()),
        other => Err(TestCaseError::fail(format!("{what}: unexpected {other}"))),
    }
}

fn step<A: fraglab_allocators::Allocator, L: Layout>(
    s: &mut Store<A, L>,
    m: &mut Model,
    cmd: &Cmd,
    now: &mut u64,
) -> Result<(), TestCaseError> {
    let t = *now;
    let redis = m.redis;
    let long_key_refused = move |k: &[u8]| !redis && k.len() > 250;
    if m.lossy {
        // Under a limit the store may have evicted keys: forget those before the command, so
        // what follows is exact. (EXISTS neither counts as an access nor moves LRU order.)
        let keys: Vec<usize> = match *cmd {
            Cmd::Set(k, ..) | Cmd::Add(k, ..) | Cmd::Replace(k, _) | Cmd::Append(k, ..) => vec![k],
            Cmd::Incr(k, _) | Cmd::Get(k) | Cmd::Delete(k) | Cmd::Exists(k) => vec![k],
            Cmd::Touch(k, _) | Cmd::Ttl(k) => vec![k],
            Cmd::MGet(a, b) => vec![a, b],
            Cmd::Advance(_) | Cmd::Expire | Cmd::Flush => vec![],
        };
        for k in keys.into_iter().map(key_bytes) {
            // Both sides expire lazily here, in step.
            let (in_model, in_store) = (m.live(&k, t).is_some(), s.exists(&k, t));
            prop_assert!(
                in_model || !in_store,
                "the store has a key the model never had"
            );
            if in_model && !in_store {
                m.items.remove(&k);
            }
        }
    }
    match cmd {
        Cmd::Set(k, v, ttl, _) | Cmd::Add(k, v, ttl) => {
            let (k, v) = (key_bytes(*k), v.bytes());
            let flags = if let Cmd::Set(_, _, _, f) = cmd {
                *f
            } else {
                0
            };
            let opts = SetOptions { ttl: *ttl, flags };
            let add = matches!(cmd, Cmd::Add(..));
            let r = if add {
                s.add(&k, &v, opts, t)
            } else {
                s.set(&k, &v, opts, t).map(|()| true)
            };
            if long_key_refused(&k) {
                prop_assert!(matches!(r, Err(CmdError::KeyTooLong { .. })), "{:?}", r);
                return Ok(());
            }
            if let Some(x) = ttl.filter(|&x| x <= 0) {
                prop_assert_eq!(r, Err(CmdError::InvalidTtl(x)));
                return Ok(());
            }
            let present = m.live(&k, t).is_some();
            match r {
                Ok(stored) => {
                    prop_assert_eq!(
                        stored,
                        !(add && present),
                        "add/set of a {} key",
                        if present { "present" } else { "missing" }
                    );
                    if stored {
                        let flags = if m.redis { 0 } else { flags };
                        m.items.insert(
                            k,
                            Item {
                                value: v,
                                flags,
                                exptime: Model::exptime(t, *ttl),
                            },
                        );
                    }
                }
                Err(e) => expect_err(e, m, "set")?,
            }
        }
        Cmd::Replace(k, v) => {
            let (k, v) = (key_bytes(*k), v.bytes());
            let r = s.replace(&k, &v, SetOptions::default(), t);
            if long_key_refused(&k) {
                prop_assert!(r.is_err());
                return Ok(());
            }
            let redis = m.redis;
            match (r, m.live(&k, t)) {
                (Ok(true), Some(it)) => {
                    it.value = v;
                    it.exptime = 0;
                    if !redis {
                        it.flags = 0;
                    }
                }
                (Ok(false), None) => {}
                (Ok(stored), present) => prop_assert!(
                    false,
                    "replace stored={} present={}",
                    stored,
                    present.is_some()
                ),
                (Err(e), _) => expect_err(e, m, "replace")?,
            }
        }
        Cmd::Append(k, v, prepend) => {
            let (k, v) = (key_bytes(*k), v.bytes());
            let r = if *prepend {
                s.prepend(&k, &v, t)
            } else {
                s.append(&k, &v, t)
            };
            if long_key_refused(&k) {
                prop_assert!(r.is_err());
                return Ok(());
            }
            let redis = m.redis;
            match (r, m.live(&k, t)) {
                (Ok(true), Some(it)) => {
                    if *prepend {
                        it.value.splice(0..0, v);
                    } else {
                        it.value.extend(v);
                    }
                }
                (Ok(true), None) if redis => {
                    m.items.insert(
                        k,
                        Item {
                            value: v,
                            flags: 0,
                            exptime: 0,
                        },
                    );
                }
                (Ok(false), None) if !redis => {}
                (Ok(stored), present) => prop_assert!(
                    false,
                    "append stored={} present={}",
                    stored,
                    present.is_some()
                ),
                (Err(e), _) => expect_err(e, m, "append")?,
            }
        }
        Cmd::Incr(k, d) => {
            let k = key_bytes(*k);
            let r = s.incr(&k, *d, t);
            if long_key_refused(&k) {
                prop_assert!(r.is_err());
                return Ok(());
            }
            let redis = m.redis;
            let current = m.live(&k, t).map(|it| it.value.clone());
            if redis {
                let old = match &current {
                    None => Some(0),
                    Some(v) => fraglab_engine::layout::redis::parse_i64(v),
                };
                match (old, r) {
                    (None, Err(CmdError::NotAnInteger)) => {}
                    (Some(o), Err(CmdError::Overflow)) => prop_assert!(o.checked_add(*d).is_none()),
                    (Some(o), Ok(Some(n))) => {
                        let new = o.checked_add(*d).expect("no overflow reported");
                        prop_assert_eq!(n, i128::from(new));
                        let e = m.items.entry(k).or_insert(Item {
                            value: vec![],
                            flags: 0,
                            exptime: 0,
                        });
                        e.value = new.to_string().into_bytes();
                    }
                    (_, Err(e)) => expect_err(e, m, "incr")?,
                    (o, r) => prop_assert!(false, "redis incr of {:?}: {:?}", o, r),
                }
            } else {
                match (current, r) {
                    (None, Ok(None)) => {}
                    (Some(v), r) => {
                        let digits: Vec<u8> = v.to_vec();
                        let trimmed =
                            &digits[..digits.iter().rposition(|&b| b != b' ').map_or(0, |e| e + 1)];
                        let parsed = (!trimmed.is_empty()
                            && trimmed.len() <= 20
                            && trimmed.iter().all(u8::is_ascii_digit))
                        .then(|| std::str::from_utf8(trimmed).unwrap().parse::<u64>().ok())
                        .flatten();
                        match (parsed, r) {
                            (None, Err(CmdError::NotAnInteger)) => {}
                            (Some(o), Ok(Some(n))) => {
                                let new = if *d >= 0 {
                                    o.wrapping_add(*d as u64)
                                } else {
                                    o.saturating_sub(d.unsigned_abs())
                                };
                                prop_assert_eq!(n, i128::from(new));
                                let mut text = new.to_string().into_bytes();
                                if text.len() <= v.len() {
                                    text.resize(v.len(), b' ');
                                }
                                m.items.get_mut(&k).unwrap().value = text;
                            }
                            (_, Err(e)) => expect_err(e, m, "incr")?,
                            (p, r) => prop_assert!(false, "memcached incr of {:?}: {:?}", p, r),
                        }
                    }
                    (None, r) => prop_assert!(false, "incr of a missing key: {:?}", r),
                }
            }
        }
        Cmd::Get(k) => {
            let k = key_bytes(*k);
            let mut out = Vec::new();
            let got = s.get_into(&k, t, &mut out);
            match m.live(&k, t).cloned() {
                Some(it) => match got {
                    Some(flags) => {
                        m.hits += 1;
                        prop_assert_eq!(&out, &it.value);
                        prop_assert_eq!(flags, it.flags);
                    }
                    None => prop_assert!(false, "the store lost {:?}", String::from_utf8_lossy(&k)),
                },
                None => {
                    m.misses += 1;
                    prop_assert_eq!(got, None);
                }
            }
        }
        Cmd::MGet(a, b) => {
            let (ka, kb) = (key_bytes(*a), key_bytes(*b));
            let got = s.mget(&[&ka, &kb], t);
            for (k, g) in [(ka, &got[0]), (kb, &got[1])] {
                match (m.live(&k, t).map(|it| it.value.clone()), g) {
                    (Some(v), Some(x)) => {
                        m.hits += 1;
                        prop_assert_eq!(&v, x);
                    }
                    (None, None) => m.misses += 1,
                    (v, x) => prop_assert!(
                        false,
                        "mget: model {:?} store {:?}",
                        v.is_some(),
                        x.is_some()
                    ),
                }
            }
        }
        Cmd::Delete(k) => {
            let k = key_bytes(*k);
            let present = m.live(&k, t).is_some();
            let r = s.delete(&k, t);
            prop_assert!(
                r == present || (m.lossy && !r),
                "delete: store {} model {}",
                r,
                present
            );
            m.items.remove(&k);
        }
        Cmd::Exists(k) => {
            let k = key_bytes(*k);
            let present = m.live(&k, t).is_some();
            let r = s.exists(&k, t);
            prop_assert_eq!(r, present);
        }
        Cmd::Touch(k, ttl) => {
            let k = key_bytes(*k);
            let r = s.touch(&k, *ttl, t);
            match (m.live(&k, t).is_some(), r) {
                (true, Ok(true)) => match ttl {
                    Some(x) if *x <= 0 => {
                        m.items.remove(&k);
                    }
                    _ => m.items.get_mut(&k).unwrap().exptime = Model::exptime(t, *ttl),
                },
                (false, Ok(false)) => {}
                (_, Err(e)) => expect_err(e, m, "touch")?,
                (p, r) => prop_assert!(false, "touch: model {} store {:?}", p, r),
            }
        }
        Cmd::Ttl(k) => {
            let k = key_bytes(*k);
            let want = match m.live(&k, t) {
                None => Ttl::Missing,
                Some(it) if it.exptime == 0 => Ttl::Persistent,
                Some(it) => Ttl::Seconds(u64::from(it.exptime) - t.min(u64::from(it.exptime))),
            };
            let got = s.ttl(&k, t);
            prop_assert_eq!(got, want);
        }
        Cmd::Advance(dt) => *now += dt,
        Cmd::Expire => {
            s.active_expire(t, ActiveExpire::Crawl);
            let expired: Vec<Vec<u8>> = m
                .items
                .iter()
                .filter(|(_, it)| m.expired(it.exptime, t))
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                m.items.remove(&k);
            }
        }
        Cmd::Flush => {
            s.flush();
            m.items.clear();
        }
    }
    Ok(())
}

fn check<A: fraglab_allocators::Allocator, L: Layout>(
    s: &Store<A, L>,
    m: &mut Model,
    _now: u64,
) -> Result<(), TestCaseError> {
    let st = s.stats();
    if m.lossy {
        // Evicted keys leave the model only when a read notices; the store holds at most the
        // model's keys.
        prop_assert!(
            st.items <= m.items.len() as u64,
            "store {} keys, model {}",
            st.items,
            m.items.len()
        );
        prop_assert!(
            st.mem.counters.failed >= st.counters.evictions,
            "an eviction without a refusal"
        );
    } else {
        prop_assert_eq!(st.items, m.items.len() as u64);
        prop_assert_eq!(st.payload_bytes, m.payload());
        prop_assert_eq!((st.counters.hits, st.counters.misses), (m.hits, m.misses));
        prop_assert_eq!(st.counters.evictions, 0);
        prop_assert_eq!(st.counters.oom_errors, 0);
    }
    prop_assert!(st.mem.requested_bytes <= st.mem.allocated_bytes);
    if L::KIND == LayoutKind::Redis {
        prop_assert!(st.mem.live_blocks >= st.items);
        if st.items == 0 {
            prop_assert_eq!(
                st.mem.requested_bytes,
                st.index_in_allocator_bytes,
                "only bucket arrays remain"
            );
        }
    } else if L::KIND == LayoutKind::Segcache {
        // One block per segment: at most one per TTL bucket beyond those holding items.
        prop_assert!(st.mem.live_blocks <= st.items + 1024);
    } else {
        prop_assert_eq!(st.mem.live_blocks, st.items, "one allocation per item");
    }
    if let Some(limit) = s.allocator().limit() {
        if s.allocator().limit_kind() != fraglab_allocators::LimitKind::Pages {
            let used = match s.allocator().limit_kind() {
                fraglab_allocators::LimitKind::Footprint => st.mem.footprint_bytes,
                _ => st.mem.allocated_bytes,
            };
            prop_assert!(used <= limit, "{} over the limit {}", used, limit);
        }
    }
    Ok(())
}

fn run(
    spec: &str,
    layout: LayoutKind,
    policy: Policy,
    limit: Option<u64>,
    cmds: Vec<Cmd>,
) -> Result<(), TestCaseError> {
    let spec: AllocSpec = spec.parse().unwrap();
    let config = StoreConfig {
        policy,
        seed: 7,
        ..StoreConfig::default()
    };
    with_store(
        &spec,
        layout,
        limit,
        config,
        Program {
            cmds,
            limit: limit.is_some(),
        },
    )
    .unwrap()
}

macro_rules! pairs {
    ($($name:ident: $spec:expr, $layout:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $name(cmds in prop::collection::vec(cmd(), 1..120)) {
                    run($spec, $layout, Policy::Noeviction, None, cmds)?;
                }
            )*
        }
    };
}

pairs! {
    compact_slab: "slab", LayoutKind::Compact;
    compact_zmalloc_glibc: "zmalloc", LayoutKind::Compact;
    compact_glibc: "glibc", LayoutKind::Compact;
    compact_jemalloc: "jemalloc", LayoutKind::Compact;
    compact_mimalloc: "mimalloc", LayoutKind::Compact;
    compact_bump: "bump", LayoutKind::Compact;
    memcached_slab: "slab", LayoutKind::Memcached;
    memcached_zmalloc_jemalloc: "zmalloc:backend=jemalloc,prefix=0", LayoutKind::Memcached;
    memcached_glibc: "glibc", LayoutKind::Memcached;
    memcached_jemalloc: "jemalloc", LayoutKind::Memcached;
    memcached_mimalloc: "mimalloc", LayoutKind::Memcached;
    memcached_bump: "bump", LayoutKind::Memcached;
    redis_slab: "slab", LayoutKind::Redis;
    redis_zmalloc_glibc: "zmalloc", LayoutKind::Redis;
    redis_zmalloc_jemalloc: "zmalloc:backend=jemalloc,prefix=0", LayoutKind::Redis;
    redis_zmalloc_mimalloc: "zmalloc:backend=mimalloc,prefix=0", LayoutKind::Redis;
    redis_glibc: "glibc", LayoutKind::Redis;
    redis_jemalloc: "jemalloc", LayoutKind::Redis;
    redis_mimalloc: "mimalloc", LayoutKind::Redis;
    redis_bump: "bump", LayoutKind::Redis;
    compact_log: "log:segment=64k,utilization=0.5", LayoutKind::Compact;
    memcached_log: "log:segment=64k,utilization=0.5", LayoutKind::Memcached;
    segcache_log: "log:segment=64k", LayoutKind::Segcache;
    segcache_jemalloc: "jemalloc", LayoutKind::Segcache;
    segcache_slab: "slab", LayoutKind::Segcache;
}

fn limited_policy() -> impl Strategy<Value = (LayoutKind, Policy)> {
    prop_oneof![
        Just((LayoutKind::Memcached, Policy::SlabLru)),
        Just((LayoutKind::Memcached, Policy::Lru)),
        Just((LayoutKind::Compact, Policy::Fifo)),
        Just((LayoutKind::Compact, Policy::SampledLru)),
        Just((LayoutKind::Compact, Policy::Random)),
        Just((LayoutKind::Redis, Policy::SampledLru)),
        Just((LayoutKind::Redis, Policy::Lfu)),
        Just((LayoutKind::Redis, Policy::VolatileLru)),
        Just((LayoutKind::Redis, Policy::VolatileTtl)),
        Just((LayoutKind::Redis, Policy::VolatileRandom)),
        Just((LayoutKind::Memcached, Policy::Noeviction)),
        Just((LayoutKind::Redis, Policy::Noeviction)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Under a limit: within it, evicting only after a refusal, never a wrong value.
    #[test]
    fn limited_stores_keep_their_promises(
        (layout, policy) in limited_policy(),
        spec in prop_oneof![Just("slab"), Just("zmalloc:backend=jemalloc,prefix=0"), Just("mimalloc")],
        limit_kib in 8u64..64,
        cmds in prop::collection::vec(cmd(), 1..150),
    ) {
        let limit = if spec == "slab" { 2 << 20 } else { limit_kib << 10 };
        run(spec, layout, policy, Some(limit), cmds)?;
    }
}

/// `noeviction` refuses writes and loses nothing: every key written before the limit was hit is
/// still readable with its value.
#[test]
fn noeviction_refuses_writes_without_losing_anything() {
    struct Fill;
    impl WithStore for Fill {
        type Output = ();
        fn run<A: fraglab_allocators::Allocator, L: Layout>(self, mut s: Store<A, L>) {
            let mut stored = Vec::new();
            let mut refused = 0;
            for i in 0..20_000u32 {
                let key = format!("k{i}");
                let value = vec![b'v'; 100 + (i as usize % 7) * 40];
                match s.set(key.as_bytes(), &value, SetOptions::default(), 1) {
                    Ok(()) => stored.push((key, value)),
                    Err(CmdError::OutOfMemory) => refused += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(refused > 0, "{}: the limit was never reached", L::KIND);
            let st = s.stats();
            assert_eq!(st.counters.oom_errors, refused);
            assert_eq!(st.counters.evictions, 0);
            assert_eq!(st.items, stored.len() as u64);
            for (k, v) in &stored {
                assert_eq!(
                    s.get(k.as_bytes(), 1).as_ref(),
                    Some(v),
                    "{} lost {k}",
                    L::KIND
                );
            }
        }
    }
    for layout in LayoutKind::ALL {
        for spec in ["slab", "zmalloc:backend=jemalloc,prefix=0", "glibc"] {
            let spec: AllocSpec = spec.parse().unwrap();
            // Segcache's segments are 1 MiB (the slab's: its 512 KiB largest chunk).
            let limit = if matches!(spec, AllocSpec::Slab(_)) || layout == LayoutKind::Segcache {
                3 << 20
            } else {
                256 << 10
            };
            let config = StoreConfig {
                policy: Policy::Noeviction,
                ..StoreConfig::default()
            };
            with_store(&spec, layout, Some(limit), config, Fill).unwrap();
        }
    }
}
