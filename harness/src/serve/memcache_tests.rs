//! Unit tests of the memcached protocol: the exact bytes of each command's replies and errors
//! (checked against memcached 1.6.18), pipelining, partial input, swallowing.

use std::time::Duration;

use fraglab_allocators::slab::{Slab, SlabConfig};
use fraglab_engine::layout::Memcached;
use fraglab_engine::{LayoutKind, Policy, Store, StoreConfig};

use super::super::{ProtocolKind, ServeConfig};
use super::*;

type C = Ctx<Slab, Memcached>;

fn ctx() -> C {
    let slab = Slab::new(SlabConfig::default()).unwrap();
    let config = StoreConfig {
        policy: Policy::SlabLru,
        ..StoreConfig::default()
    };
    let store: Store<Slab, Memcached> = Store::new(slab, config).unwrap();
    let serve = ServeConfig {
        protocol: ProtocolKind::Memcached,
        addr: "127.0.0.1:0".parse().unwrap(),
        max_clients: 8,
        timeout: Duration::from_secs(60),
        memory: None,
        alloc: "slab".into(),
        layout: LayoutKind::Memcached,
        policy: Policy::SlabLru,
    };
    Ctx::new(store, serve)
}

/// Runs `input` on a fresh connection of `c`; returns the replies, bytes consumed, close.
fn run(c: &mut C, input: &[u8]) -> (Vec<u8>, usize, bool) {
    let mut m = Memcache::default();
    let mut out = Vec::new();
    let h = m.handle(c, input, &mut out);
    (out, h.consumed, h.close)
}

fn reply(c: &mut C, input: &[u8]) -> String {
    String::from_utf8_lossy(&run(c, input).0).into_owned()
}

#[test]
fn classic_commands_reply_as_memcached() {
    let mut c = ctx();
    let cases: &[(&[u8], &str)] = &[
        (b"set a 0 0 1\r\nx\r\nget a b\r\n", "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
        (b"set a 5 0 3\r\nabc\r\nget a\r\n", "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\n"),
        (b"get\r\n", "ERROR\r\n"),
        (b"g\r\n", "ERROR\r\n"),
        (b"\r\n", "ERROR\r\n"),
        (b"   \r\n", "ERROR\r\n"),
        (b"foo bar\r\n", "ERROR\r\n"),
        (b"set a 0 0 2\r\nabc\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
        (b"set a 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n"),
        (b"set a x 0 1\r\n", "CLIENT_ERROR bad command line format\r\n"),
        (b"set a 0 0\r\n", "ERROR\r\n"),
        (b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\n", "STORED\r\n15\r\n0\r\n"),
        (b"incr n x\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"),
        (b"incr n -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"),
        (b"incr nope 1\r\n", "NOT_FOUND\r\n"),
        (
            b"set s 0 0 3\r\nabc\r\nincr s 1\r\n",
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (b"set n 0 0 2\r\n99\r\nincr n 18446744073709551615\r\n", "STORED\r\n98\r\n"),
        (
            b"delete a 1\r\ndelete a 0\r\ndelete a\r\n",
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nDELETED\r\nNOT_FOUND\r\n",
        ),
        (b"delete a noreply\r\ndelete\r\n", "ERROR\r\n"),
        (
            b"touch a 10\r\nset a 0 0 1\r\nx\r\ntouch a 10\r\ntouch a x\r\n",
            "NOT_FOUND\r\nSTORED\r\nTOUCHED\r\nCLIENT_ERROR invalid exptime argument\r\n",
        ),
        (
            b"gat 10 a b\r\ngats x a\r\ngat 10\r\n",
            "VALUE a 0 1\r\nx\r\nEND\r\nCLIENT_ERROR invalid exptime argument\r\nEND\r\n",
        ),
        (
            b"flush_all\r\nflush_all 0\r\nflush_all noreply\r\nflush_all x\r\nflush_all 1 2 3\r\n",
            "OK\r\nOK\r\nCLIENT_ERROR invalid exptime argument\r\nERROR\r\n",
        ),
        (b"version\r\n", "VERSION 1.6.18\r\n"),
        (
            b"verbosity\r\nverbosity 1\r\nverbosity x\r\nverbosity 1 noreply\r\n",
            "ERROR\r\nOK\r\nCLIENT_ERROR bad command line format\r\n",
        ),
        (b"cas a 0 0 1 5\r\nx\r\ncas a 0 0 1\r\n", "NOT_FOUND\r\nERROR\r\n"),
        (b"set a 0 -1 1\r\nx\r\nget a\r\n", "STORED\r\nEND\r\n"),
        (
            b"add a 0 0 1\r\nx\r\nadd a 0 0 1\r\ny\r\nreplace b 0 0 1\r\nz\r\n",
            "STORED\r\nNOT_STORED\r\nNOT_STORED\r\n",
        ),
        (
            b"append a 0 0 2\r\nzz\r\nprepend a 0 0 2\r\nyy\r\nget a\r\n",
            "STORED\r\nSTORED\r\nVALUE a 0 5\r\nyyxzz\r\nEND\r\n",
        ),
        (b"append zz 0 0 1\r\nq\r\n", "NOT_STORED\r\n"),
        (
            b"set a 0 0 1 noreply\r\nx\r\nset a 0 0 1 noreply\r\nxyz\r\nget a\r\n",
            "ERROR\r\nVALUE a 0 1\r\nx\r\nEND\r\n",
        ),
        (
            b"stats nope\r\nstats noreply\r\nstats reset\r\nstats detail\r\n",
            "ERROR\r\nERROR\r\nRESET\r\nCLIENT_ERROR usage: stats detail on|off|dump\r\n",
        ),
        (b"shutdown\r\n", "ERROR: shutdown not enabled\r\n"),
        (b"set x 4294967296 0 1\r\nx\r\nget x\r\n", "STORED\r\nVALUE x 0 1\r\nx\r\nEND\r\n"),
    ];
    for (input, want) in cases {
        assert_eq!(
            reply(&mut c, input),
            *want,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn long_keys_are_refused() {
    let mut c = ctx();
    let long = "k".repeat(251);
    let ok = "k".repeat(250);
    assert_eq!(
        reply(&mut c, format!("set {long} 0 0 1\r\nx\r\n").as_bytes()),
        "CLIENT_ERROR bad command line format\r\nERROR\r\n"
    );
    assert_eq!(
        reply(
            &mut c,
            format!("set {ok} 0 0 1\r\nx\r\nget {ok} {long}\r\n").as_bytes()
        ),
        "STORED\r\nCLIENT_ERROR bad command line format\r\n"
    );
    for cmd in ["incr", "touch", "delete"] {
        assert_eq!(
            reply(&mut c, format!("{cmd} {long} 1\r\n").as_bytes()),
            if cmd == "delete" {
                "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            } else {
                "CLIENT_ERROR bad command line format\r\n"
            }
        );
    }
    assert_eq!(
        reply(&mut c, format!("mg {long} v\r\n").as_bytes()),
        "CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn gets_and_cas_follow_the_unique() {
    let mut c = ctx();
    let out = reply(&mut c, b"set k 0 0 1\r\na\r\ngets k\r\n");
    let unique: u64 = out
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        reply(
            &mut c,
            format!("cas k 0 0 1 {}\r\nb\r\n", unique + 1).as_bytes()
        ),
        "EXISTS\r\n"
    );
    assert_eq!(
        reply(
            &mut c,
            format!("cas k 0 0 1 {unique}\r\nb\r\ncas k 0 0 1 {unique}\r\nc\r\n").as_bytes()
        ),
        "STORED\r\nEXISTS\r\n"
    );
    reply(&mut c, b"delete k\r\n");
    assert_eq!(c.memcache.len(), 0, "a delete drops the unique");
    assert_eq!(
        reply(&mut c, format!("cas k 0 0 1 {unique}\r\nb\r\n").as_bytes()),
        "NOT_FOUND\r\n"
    );
}

#[test]
fn meta_commands_reply_as_memcached() {
    let mut c = ctx();
    let cases: &[(&[u8], &str)] = &[
        (b"mn\r\nmg\r\nmg missing\r\n", "MN\r\nERROR\r\nEN\r\n"),
        (b"mg missing v k Oabc\r\nmg missing q\r\nmn\r\n", "EN kmissing Oabc\r\nMN\r\n"),
        (
            b"ms m 2\r\nhi\r\nmg m v s f t k Oxy\r\nmg m\r\nmg m q v\r\n",
            "HD\r\nVA 2 s2 f0 t-1 km Oxy\r\nhi\r\nHD\r\nVA 2\r\nhi\r\n",
        ),
        (b"ms m 2 T100 F5 k Oq\r\nhi\r\nmg m v f t\r\n", "HD km Oq\r\nVA 2 f5 t100\r\nhi\r\n"),
        (b"ms m\r\nms m x\r\n", "CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n"),
        (b"ms m 2 Z\r\nhi\r\nms m 2 MX\r\nhi\r\n", "CLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid mode for ms M token\r\n"),
        (b"ms m 2 ME\r\nhi\r\nms m 2 MA\r\nyo\r\nmg m v\r\n", "NS\r\nHD\r\nVA 4\r\nhiyo\r\n"),
        (b"ms m 2 q\r\nhi\r\nmd m q\r\nmd m q\r\nmd m\r\nmd m Oz k\r\nmn\r\n", "NF\r\nNF\r\nNF Oz km\r\nMN\r\n"),
        (
            b"ma c\r\nma c N0 J10 v\r\nma c v\r\nma c MD D3 v t\r\nma c MX\r\nma c q\r\nmn\r\n",
            "NF\r\nVA 2\r\n10\r\nVA 2\r\n11\r\nVA 1 t-1\r\n8\r\nCLIENT_ERROR invalid mode for ma M token\r\nMN\r\n",
        ),
        (
            b"ms t 3\r\nabc\r\nma t\r\nmg t E5\r\nmg t v v\r\nmx\r\nme\r\n",
            "HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR duplicate flag\r\nERROR\r\nCLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"mg newk N30 v\r\nmg newk v\r\n",
            "VA 0 W\r\n\r\nVA 0 Z\r\n\r\n",
        ),
        (
            b"md nope I\r\nms st 1\r\na\r\nmd st I T30\r\nmg st v\r\nmg st v\r\n",
            "NF\r\nHD\r\nHD\r\nVA 1 X W\r\na\r\nVA 1 Z X\r\na\r\n",
        ),
        (
            b"mg t O123456789012345678901234567890123\r\n",
            "CLIENT_ERROR opaque token too long\r\n",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            reply(&mut c, input),
            *want,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    // CAS through the meta commands.
    let out = reply(&mut c, b"ms cc 1 c\r\na\r\n");
    let cas: u64 = out
        .trim_end()
        .strip_prefix("HD c")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        reply(&mut c, format!("ms cc 1 C{}\r\nb\r\n", cas + 1).as_bytes()),
        "EX\r\n"
    );
    assert_eq!(
        reply(&mut c, format!("md cc C{}\r\n", cas + 1).as_bytes()),
        "EX\r\n"
    );
    assert_eq!(reply(&mut c, b"mg cc c\r\n"), format!("HD c{cas}\r\n"));
    assert_eq!(
        reply(&mut c, format!("ms cc 1 C{cas}\r\nb\r\n").as_bytes()),
        "HD\r\n"
    );
}

#[test]
fn too_large_values_are_refused_and_swallowed_as_they_stream_in() {
    let mut c = ctx();
    let mut m = Memcache::default();
    let mut out = Vec::new();
    let big = 2_000_000usize;
    let h = m.handle(
        &mut c,
        format!("set big 0 0 {big}\r\n").as_bytes(),
        &mut out,
    );
    assert_eq!(out, b"SERVER_ERROR object too large for cache\r\n");
    assert!(!h.close);
    out.clear();
    // The block arrives in pieces: each is swallowed whole, nothing is buffered.
    let chunk = vec![b'z'; 65536];
    let mut left = big + 2;
    while left > chunk.len() {
        let h = m.handle(&mut c, &chunk, &mut out);
        assert_eq!(h.consumed, chunk.len());
        left -= chunk.len();
    }
    let mut last = vec![b'z'; left];
    last.extend_from_slice(b"get big\r\n");
    let h = m.handle(&mut c, &last, &mut out);
    assert_eq!(h.consumed, last.len());
    assert_eq!(out, b"END\r\n");
    // The largest item that fits: 1 MiB of item, CAS and header included.
    let fits = ITEM_SIZE_MAX - fraglab_engine::layout::memcached::ntotal(1, 0, 0);
    let mut req = format!("set k 0 0 {fits}\r\n").into_bytes();
    req.extend(std::iter::repeat_n(b'v', fits));
    req.extend_from_slice(b"\r\n");
    assert_eq!(reply(&mut c, &req), "STORED\r\n");
    assert_eq!(
        reply(&mut c, format!("set k 0 0 {}\r\n", fits + 1).as_bytes()),
        "SERVER_ERROR object too large for cache\r\n"
    );
    // A SET refused for size drops the old value, as memcached does.
    assert_eq!(reply(&mut c, b"get k\r\n"), "END\r\n");
}

#[test]
fn partial_requests_wait_and_complete() {
    let mut c = ctx();
    let mut m = Memcache::default();
    let mut out = Vec::new();
    let req = b"set a 0 0 5\r\nhello\r\nget a\r\n";
    for cut in 0..req.len() {
        out.clear();
        let h = m.handle(&mut c, &req[..cut], &mut out);
        let h2 = m.handle(&mut c, &req[h.consumed..], &mut out);
        assert_eq!(h.consumed + h2.consumed, req.len(), "cut at {cut}");
        assert_eq!(
            out, b"STORED\r\nVALUE a 0 5\r\nhello\r\nEND\r\n",
            "cut at {cut}"
        );
    }
}

#[test]
fn a_hundred_pipelined_commands_get_their_replies_in_order() {
    let mut c = ctx();
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..100 {
        match i % 4 {
            0 => {
                req.extend_from_slice(
                    format!("set k{i} {i} 0 {}\r\nv{i}\r\n", format!("v{i}").len()).as_bytes(),
                );
                want.extend_from_slice(b"STORED\r\n");
            }
            1 => {
                let k = i - 1;
                req.extend_from_slice(format!("get k{k}\r\n").as_bytes());
                want.extend_from_slice(
                    format!(
                        "VALUE k{k} {k} {}\r\nv{k}\r\nEND\r\n",
                        format!("v{k}").len()
                    )
                    .as_bytes(),
                );
            }
            2 => {
                req.extend_from_slice(format!("delete k{}\r\n", i - 2).as_bytes());
                want.extend_from_slice(b"DELETED\r\n");
            }
            _ => {
                req.extend_from_slice(format!("mg k{} v\r\n", i - 3).as_bytes());
                want.extend_from_slice(b"EN\r\n");
            }
        }
    }
    let (out, consumed, close) = run(&mut c, &req);
    assert_eq!(consumed, req.len());
    assert!(!close);
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn lines_past_2048_bytes_close_unless_a_multiget() {
    let mut c = ctx();
    let (out, _, close) = run(&mut c, &vec![b'x'; 3000]);
    assert!(close && out.is_empty());
    let mut get = b"get ".to_vec();
    for i in 0..1000 {
        get.extend_from_slice(format!("k{i} ").as_bytes());
    }
    let (_, consumed, close) = run(&mut c, &get);
    assert!(
        !close && consumed == 0,
        "a long multiget waits for its newline"
    );
    get.extend_from_slice(b"\r\n");
    let (out, consumed, close) = run(&mut c, &get);
    assert!(!close && consumed == get.len());
    assert_eq!(out, b"END\r\n");
    let (_, _, close) = run(&mut c, b"GET / HTTP/1.1\r\n");
    assert!(close, "HTTP closes the connection");
    let (out, _, close) = run(&mut c, b"quit\r\nversion\r\n");
    assert!(close && out.is_empty());
}

#[test]
fn stats_come_from_the_model() {
    let mut c = ctx();
    reply(&mut c, b"set a 0 0 1\r\nx\r\nget a\r\nget b\r\n");
    let s = reply(&mut c, b"stats\r\n");
    for want in [
        "STAT curr_items 1\r\n",
        "STAT total_items 1\r\n",
        "STAT cmd_get 2\r\n",
        "STAT get_hits 1\r\n",
        "STAT get_misses 1\r\n",
        "STAT bytes 61\r\n",
        "STAT total_malloced 1048576\r\n",
    ] {
        assert!(s.contains(want), "{want:?} not in {s}");
    }
    assert!(s.ends_with("END\r\n"));
    let slabs = reply(&mut c, b"stats slabs\r\n");
    for want in [
        "STAT 1:chunk_size 96\r\n",
        "STAT 1:chunks_per_page 10922\r\n",
        "STAT 1:total_pages 1\r\n",
        "STAT 1:used_chunks 1\r\n",
        "STAT 1:free_chunks 10921\r\n",
        "STAT 1:mem_requested 61\r\n",
        "STAT active_slabs 1\r\nSTAT total_malloced 1048576\r\nEND\r\n",
    ] {
        assert!(slabs.contains(want), "{want:?} not in {slabs}");
    }
    assert_eq!(
        reply(&mut c, b"stats items\r\n"),
        "STAT items:1:number 1\r\nSTAT items:1:mem_requested 61\r\nEND\r\n"
    );
    let settings = reply(&mut c, b"stats settings\r\n");
    assert!(settings.contains("STAT item_size_max 1048576\r\n"));
    assert!(settings.ends_with("END\r\n"));
}

#[test]
fn the_cas_table_is_pruned_of_keys_the_store_lost() {
    let mut c = ctx();
    for i in 0..3000 {
        reply(&mut c, format!("set k{i} 0 0 1\r\nx\r\n").as_bytes());
    }
    reply(&mut c, b"flush_all\r\n");
    assert!(c.memcache.is_empty());
    for i in 0..3000 {
        reply(
            &mut c,
            format!("set k{i} 0 -1 1\r\nx\r\nset j{i} 0 0 1\r\nx\r\n").as_bytes(),
        );
        c.store.delete(format!("j{i}").as_bytes(), 1);
    }
    assert!(
        c.memcache.len() <= 2 * c.store.len() + 1025,
        "{}",
        c.memcache.len()
    );
}
