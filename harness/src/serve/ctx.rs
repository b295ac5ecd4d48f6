//! What every connection shares: the store, the clock, the server's counters and settings.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fraglab_allocators::Allocator;
use fraglab_engine::{ActiveExpire, Layout, LayoutKind, Policy, Store};

use super::ProtocolKind;

/// How the server was started.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The protocol.
    pub protocol: ProtocolKind,
    /// The address asked for (the port may be 0).
    pub addr: SocketAddr,
    /// The most clients at once.
    pub max_clients: usize,
    /// How long a client may stay idle.
    pub timeout: Duration,
    /// The memory limit, if any.
    pub memory: Option<u64>,
    /// The allocator spec, resolved.
    pub alloc: String,
    /// The layout.
    pub layout: LayoutKind,
    /// The eviction policy.
    pub policy: Policy,
}

/// The server's shared state.
#[derive(Debug)]
pub struct Ctx<A: Allocator, L: Layout> {
    /// The store.
    pub store: Store<A, L>,
    /// The settings.
    pub config: ServeConfig,
    /// When the server started.
    pub started: Instant,
    /// Clients connected now.
    pub clients: usize,
    /// Clients ever accepted.
    pub total_connections: u64,
    /// Clients refused over `--max-clients`.
    pub rejected_connections: u64,
    /// Requests run.
    pub commands: u64,
    /// The memcached protocol's shared state (CAS uniques, counters; see `memcache`).
    pub memcache: super::memcache::Shared,
}

impl<A: Allocator, L: Layout> Ctx<A, L> {
    /// A server around `store`.
    pub fn new(store: Store<A, L>, config: ServeConfig) -> Self {
        Ctx {
            store,
            config,
            started: Instant::now(),
            clients: 0,
            total_connections: 0,
            rejected_connections: 0,
            commands: 0,
            memcache: Default::default(),
        }
    }

    /// The store's clock: whole seconds since the server started, plus one (memcached's
    /// `current_time` also starts past 0, so that 0 can mean "no expiry").
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_secs() + 1
    }

    /// Seconds since the server started.
    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Takes a client if there is room.
    pub fn admit(&mut self) -> bool {
        if self.clients >= self.config.max_clients {
            self.rejected_connections += 1;
            return false;
        }
        self.clients += 1;
        self.total_connections += 1;
        true
    }

    /// A client left.
    pub fn leave(&mut self) {
        self.clients -= 1;
    }

    /// The background work of every 100 ms: the active expiry (Redis's sampling, or
    /// Segcache's expiry of whole segments) where the layout has one, and the slab maintainer
    /// (a page an eviction asked for; the automover once a second) where the allocator has one.
    pub fn background(&mut self) {
        let now = self.now();
        let layout = self.config.layout;
        if layout.redis_semantics() || layout == fraglab_engine::LayoutKind::Segcache {
            let mode = if layout == fraglab_engine::LayoutKind::Segcache {
                ActiveExpire::Segments
            } else {
                ActiveExpire::Sample
            };
            self.store.active_expire(now, mode);
        }
        self.store.maintain(now);
    }
}
