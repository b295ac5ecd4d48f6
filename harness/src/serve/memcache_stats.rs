//! `stats`, `stats slabs`, `stats items`, `stats settings`, `stats reset`, from the model, in
//! memcached 1.6.18's names (`process_stat`, `server_stats`, `process_stat_settings` in
//! upstream's `proto_text.c`/`memcached.c`, `slabs_stats` in `slabs.c`), so `memcstat` shows
//! the modeled server; and `me`, the meta debug line of one key.
//!
//! `bytes` is memcached's: the sum of the items' sizes (`ITEM_ntotal`: header, CAS, key,
//! suffix, value) with the memcached layout, which is what the allocator was asked for
//! (`requested_bytes`); with the other layouts, the keys' and values' bytes.
//! `total_malloced` is the slab pages' footprint; the per-class figures are the slab model's.
//! A figure memcached has and the model does not (rusage, LRU segment moves) is left out.

use std::fmt::Write as _;

use fraglab_allocators::{Allocator, Detail};
use fraglab_engine::{Layout, LayoutKind, Policy, Ttl};

use super::{line, Counters, Ctx, Memcache, ITEM_SIZE_MAX, VERSION};

fn stat(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "STAT {name} {value}\r\n");
}

/// `stats [sub]`.
pub(super) fn stats<A: Allocator, L: Layout>(
    ctx: &mut Ctx<A, L>,
    toks: &[&[u8]],
    out: &mut Vec<u8>,
) {
    let mut s = String::new();
    match toks.get(1).copied() {
        None => general(ctx, &mut s),
        Some(b"reset") => {
            ctx.memcache.counters = Counters::default();
            return line(out, false, b"RESET");
        }
        Some(b"detail") => {
            let r: &[u8] = match toks.get(2).copied() {
                Some(b"on") | Some(b"off") => b"OK",
                Some(b"dump") => b"END",
                _ => b"CLIENT_ERROR usage: stats detail on|off|dump",
            };
            return line(out, false, r);
        }
        Some(b"cachedump") => return line(out, false, b"CLIENT_ERROR stats cachedump not allowed"),
        Some(b"settings") => settings(ctx, &mut s),
        Some(b"slabs") => slabs(ctx, &mut s),
        Some(b"items") => items(ctx, &mut s),
        Some(b"sizes") => stat(&mut s, "sizes_status", "disabled"),
        Some(_) => return line(out, false, b"ERROR"),
    }
    s.push_str("END\r\n");
    out.extend_from_slice(s.as_bytes());
}

/// The memory limit: the slab's `limit_maxbytes`, or `--memory`, or 0 (none).
fn maxbytes<A: Allocator, L: Layout>(ctx: &Ctx<A, L>) -> u64 {
    match &ctx.store.mem_stats().detail {
        Detail::Slab(d) => d.limit_maxbytes.or(ctx.config.memory).unwrap_or(0),
        _ => ctx.config.memory.unwrap_or(0),
    }
}

fn general<A: Allocator, L: Layout>(ctx: &Ctx<A, L>, s: &mut String) {
    let st = ctx.store.stats();
    let c = &ctx.memcache.counters;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    stat(s, "pid", std::process::id());
    stat(s, "uptime", ctx.uptime());
    stat(s, "time", unix);
    stat(s, "version", VERSION);
    stat(s, "libevent", "tokio");
    stat(s, "pointer_size", 64);
    stat(s, "max_connections", ctx.config.max_clients);
    stat(s, "curr_connections", ctx.clients);
    stat(s, "total_connections", ctx.total_connections);
    stat(s, "rejected_connections", ctx.rejected_connections);
    stat(s, "connection_structures", ctx.clients);
    for (name, v) in [
        ("cmd_get", c.cmd_get),
        ("cmd_set", c.cmd_set),
        ("cmd_flush", c.cmd_flush),
        ("cmd_touch", c.cmd_touch),
        ("cmd_meta", c.cmd_meta),
        ("get_hits", c.get_hits),
        ("get_misses", c.get_misses),
        ("get_expired", 0),
        ("get_flushed", 0),
        ("delete_misses", c.delete_misses),
        ("delete_hits", c.delete_hits),
        ("incr_misses", c.incr_misses),
        ("incr_hits", c.incr_hits),
        ("decr_misses", c.decr_misses),
        ("decr_hits", c.decr_hits),
        ("cas_misses", c.cas_misses),
        ("cas_hits", c.cas_hits),
        ("cas_badval", c.cas_badval),
        ("touch_hits", c.touch_hits),
        ("touch_misses", c.touch_misses),
        ("store_too_large", c.store_too_large),
        ("store_no_memory", c.store_no_memory),
        ("auth_cmds", 0),
        ("auth_errors", 0),
        ("bytes_read", c.bytes_read),
        ("bytes_written", c.bytes_written),
    ] {
        stat(s, name, v);
    }
    stat(s, "limit_maxbytes", maxbytes(ctx));
    stat(s, "accepting_conns", 1);
    stat(s, "threads", 1);
    let bytes = if L::KIND == LayoutKind::Memcached {
        st.mem.requested_bytes
    } else {
        st.payload_bytes
    };
    stat(s, "bytes", bytes);
    stat(s, "curr_items", st.items);
    stat(s, "total_items", c.total_items);
    stat(s, "evictions", st.counters.evictions);
    stat(
        s,
        "reclaimed",
        st.counters.expired_lazy + st.counters.expired_active,
    );
    if let Detail::Slab(d) = &st.mem.detail {
        stat(s, "slab_reassign_rescues", d.moves.rescues);
        stat(s, "slab_reassign_chunk_rescues", d.moves.chunk_rescues);
        stat(s, "slab_reassign_evictions_nomem", d.moves.evictions_nomem);
        stat(s, "slabs_moved", d.moves.slabs_moved);
        stat(s, "slab_global_page_pool", d.pool_pages);
        stat(s, "total_malloced", d.total_malloced);
    } else {
        stat(s, "total_malloced", st.mem.footprint_bytes);
    }
}

fn settings<A: Allocator, L: Layout>(ctx: &Ctx<A, L>, s: &mut String) {
    let cfg = &ctx.config;
    stat(s, "maxbytes", maxbytes(ctx));
    stat(s, "maxconns", cfg.max_clients);
    stat(s, "tcpport", cfg.addr.port());
    stat(s, "udpport", 0);
    stat(s, "inter", cfg.addr.ip());
    stat(s, "verbosity", ctx.memcache.verbosity);
    stat(s, "oldest", 0);
    stat(
        s,
        "evictions",
        if cfg.policy == Policy::Noeviction {
            "off"
        } else {
            "on"
        },
    );
    stat(s, "domain_socket", "NULL");
    stat(s, "umask", 700);
    stat(s, "growth_factor", "1.25");
    stat(s, "chunk_size", 48);
    stat(s, "num_threads", 1);
    stat(s, "stat_key_prefix", ":");
    stat(s, "detail_enabled", "no");
    stat(s, "reqs_per_event", 20);
    stat(s, "cas_enabled", "yes");
    stat(s, "tcp_backlog", 1024);
    stat(s, "binding_protocol", "ascii");
    stat(s, "auth_enabled_sasl", "no");
    stat(s, "auth_enabled_ascii", "no");
    stat(s, "item_size_max", ITEM_SIZE_MAX);
    stat(s, "maxconns_fast", "yes");
    let (reassign, automove) = match &ctx.store.mem_stats().detail {
        Detail::Slab(d) => ("yes", d.automove),
        _ => ("no", 0),
    };
    stat(s, "slab_reassign", reassign);
    stat(s, "slab_automove", automove);
    stat(s, "slab_chunk_max", ITEM_SIZE_MAX / 2);
    stat(s, "lru_crawler", "no");
    stat(s, "flush_enabled", "yes");
    stat(s, "dump_enabled", "no");
    stat(s, "idle_timeout", cfg.timeout.as_secs());
    stat(s, "fraglab_alloc", &cfg.alloc);
    stat(s, "fraglab_layout", cfg.layout);
    stat(s, "fraglab_policy", cfg.policy);
}

fn slabs<A: Allocator, L: Layout>(ctx: &Ctx<A, L>, s: &mut String) {
    let mem = ctx.store.mem_stats();
    let Detail::Slab(d) = &mem.detail else {
        stat(s, "active_slabs", 0);
        stat(s, "total_malloced", mem.footprint_bytes);
        return;
    };
    let mut active = 0;
    for c in d.classes.iter().filter(|c| c.total_pages > 0) {
        active += 1;
        let id = c.class;
        stat(s, &format!("{id}:chunk_size"), c.chunk_size);
        stat(s, &format!("{id}:chunks_per_page"), c.chunks_per_page);
        stat(s, &format!("{id}:total_pages"), c.total_pages);
        stat(s, &format!("{id}:total_chunks"), c.total_chunks);
        stat(s, &format!("{id}:used_chunks"), c.used_chunks);
        stat(s, &format!("{id}:free_chunks"), c.free_chunks);
        stat(s, &format!("{id}:free_chunks_end"), 0);
        stat(s, &format!("{id}:mem_requested"), c.mem_requested);
    }
    stat(s, "active_slabs", active);
    stat(s, "total_malloced", d.total_malloced);
}

fn items<A: Allocator, L: Layout>(ctx: &Ctx<A, L>, s: &mut String) {
    let mem = ctx.store.mem_stats();
    let Detail::Slab(d) = &mem.detail else {
        return;
    };
    for c in d.classes.iter().filter(|c| c.used_chunks > 0) {
        let id = c.class;
        stat(s, &format!("items:{id}:number"), c.used_chunks);
        stat(s, &format!("items:{id}:mem_requested"), c.mem_requested);
    }
}

/// `me`: memcached's debug line for a key.
pub(super) fn me<A: Allocator, L: Layout>(
    conn: &mut Memcache,
    ctx: &mut Ctx<A, L>,
    key: &[u8],
    now: u64,
    out: &mut Vec<u8>,
) {
    conn.buf.clear();
    let Some(flags) = ctx.store.get_into(key, now, &mut conn.buf) else {
        return line(out, false, b"EN");
    };
    let exp = match ctx.store.ttl(key, now) {
        Ttl::Seconds(s) => -(s as i64),
        _ => -1,
    };
    let e = *ctx.memcache.entry(key, now);
    let size = fraglab_engine::layout::memcached::ntotal(key.len(), conn.buf.len(), flags);
    out.extend_from_slice(b"ME ");
    out.extend_from_slice(key);
    out.extend_from_slice(
        format!(
            " exp={exp} la={} cas={} fetch={} cls=1 size={size}\r\n",
            now.saturating_sub(e.last),
            e.cas,
            if e.fetched { "yes" } else { "no" }
        )
        .as_bytes(),
    );
}
