//! `fraglab serve --protocol memcached` against real clients: libmemcached's `memccapable -a`
//! (every ascii test must pass), garbage on one connection leaving the others served, 100
//! concurrent clients each getting its own replies; and the protocol's fuzzing (arbitrary and
//! mutated input into `handle`: no panic, consumption within the input).
//!
//! The server is started on a free port (`--port 0`, the port read from its `listening on`
//! line) and stopped by its process id. Without `memccapable` (package libmemcached-tools) the
//! memccapable test is skipped with a message, unless `CI=true`, where it fails.
//!
//! `FRAGLAB_FUZZ_INPUTS=1000000 cargo test --release -p fraglab --test serve_memcached fuzz`
//! runs the full fuzz count (20,000 by default), `FRAGLAB_FUZZ_SEED=N` another seed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use fraglab_allocators::slab::{Slab, SlabConfig};
use fraglab_engine::layout::Memcached;
use fraglab_engine::{LayoutKind, Policy, Store, StoreConfig};
use fraglab_harness::serve::memcache::Memcache;
use fraglab_harness::serve::{Ctx, Protocol, ProtocolKind, ServeConfig};
use fraglab_workloads::rng::Rng;

#[path = "support/serve.rs"]
mod serve_process;
use serve_process::Serve as Server;

fn have(program: &str, package: &str) -> bool {
    let found = Command::new(program)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is missing (package {package}); CI must have it"
        );
        eprintln!("SKIPPED: {program} not found (install the {package} package)");
    }
    found
}

/// Sends `req`, reads until `end` is at the end of what came back.
fn ask(s: &mut TcpStream, req: &[u8], end: &[u8]) -> Vec<u8> {
    s.write_all(req).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(end) {
        let n = s.read(&mut buf).expect("a reply");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn memccapable_passes_every_ascii_test() {
    if !have("memccapable", "libmemcached-tools") {
        return;
    }
    let server = Server::start(&["--protocol", "memcached"]);
    let out = Command::new("memccapable")
        .args([
            "-a",
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-t",
            "10",
        ])
        .output()
        .expect("memccapable runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let tests: Vec<&str> = text.lines().filter(|l| l.starts_with("ascii ")).collect();
    let passed = tests.iter().filter(|l| l.ends_with("[pass]")).count();
    assert!(
        tests.len() >= 27,
        "memccapable ran {} ascii tests:\n{text}",
        tests.len()
    );
    assert_eq!(passed, tests.len(), "{text}");
    assert!(text.contains("All tests passed"), "{text}");
    assert!(out.status.success(), "{text}");
}

#[test]
fn a_megabyte_of_garbage_closes_only_its_connection() {
    let server = Server::start(&["--protocol", "memcached"]);
    let mut good = server.connect();
    assert_eq!(
        ask(&mut good, b"set k 0 0 2\r\nok\r\n", b"\r\n"),
        b"STORED\r\n"
    );
    let mut bad = server.connect();
    let mut rng = Rng::new(7);
    let garbage: Vec<u8> = (0..1 << 20).map(|_| rng.next_u64() as u8).collect();
    // The server may close before everything is written.
    let _ = bad.write_all(&garbage);
    let mut sink = Vec::new();
    let _ = bad.read_to_end(&mut sink);
    assert_eq!(
        ask(&mut good, b"get k\r\n", b"END\r\n"),
        b"VALUE k 0 2\r\nok\r\nEND\r\n"
    );
    let mut fresh = server.connect();
    assert_eq!(
        ask(&mut fresh, b"version\r\n", b"\r\n"),
        b"VERSION 1.6.18\r\n"
    );
}

#[test]
fn a_hundred_concurrent_clients_each_get_their_own_replies() {
    let server = Server::start(&["--protocol", "memcached"]);
    let port = server.port;
    let threads: Vec<_> = (0..100)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                for i in 0..50 {
                    let v = format!("client{c}-value{i}");
                    let mut req =
                        format!("set c{c} {c} 0 {}\r\n{v}\r\nget c{c}\r\n", v.len()).into_bytes();
                    req.extend_from_slice(format!("mg c{c} v f\r\n").as_bytes());
                    let want = format!(
                        "STORED\r\nVALUE c{c} {c} {len}\r\n{v}\r\nEND\r\nVA {len} f{c}\r\n{v}\r\n",
                        len = v.len()
                    );
                    let got = ask(&mut s, &req, format!("f{c}\r\n{v}\r\n").as_bytes());
                    assert_eq!(String::from_utf8_lossy(&got), want);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client saw a wrong reply");
    }
}

// ---- Fuzzing. ----

fn inputs() -> u64 {
    std::env::var("FRAGLAB_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn seed() -> u64 {
    std::env::var("FRAGLAB_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_3e3c)
}

fn ctx() -> Ctx<Slab, Memcached> {
    let slab = Slab::new(SlabConfig::default()).unwrap();
    let config = StoreConfig {
        policy: Policy::SlabLru,
        ..StoreConfig::default()
    };
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
    Ctx::new(Store::new(slab, config).unwrap(), serve)
}

/// Requests the mutations start from.
const SEEDS: &[&[u8]] = &[
    b"set a 0 0 1\r\nx\r\n",
    b"get a b c\r\n",
    b"gets a\r\n",
    b"gat 10 a\r\n",
    b"cas a 0 0 1 1\r\ny\r\n",
    b"add b 5 100 2\r\nhi\r\n",
    b"append a 0 0 1 noreply\r\nz\r\n",
    b"incr n 18446744073709551615\r\n",
    b"decr n 1 noreply\r\n",
    b"delete a 0 noreply\r\n",
    b"touch a -1\r\n",
    b"flush_all 1 noreply\r\n",
    b"stats slabs\r\n",
    b"stats\r\n",
    b"ms m 2 T10 F3 c k Oo MA\r\nhi\r\n",
    b"mg m v k f s t c h l O1 N30 R10 q\r\n",
    b"md m q I T5 C1\r\n",
    b"ma c N0 J5 D2 MD v t c\r\n",
    b"me m\r\n",
    b"mn\r\n",
    b"set big 0 0 2000000\r\n",
    b"verbosity 1\r\n",
    b"version\r\n",
    b"quit\r\n",
    b"GET / HTTP/1.1\r\n",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() as u64 + 1) as usize;
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] = rng.next_u64() as u8;
            }
            1 => input.insert(at, b" \r\n0-9x"[rng.below(7) as usize]),
            2 if at < input.len() => {
                input.remove(at);
            }
            3 => {
                let digits = rng.next_u64().to_string();
                input.splice(at..at, digits.bytes().take(1 + rng.below(20) as usize));
            }
            4 => {
                let other = SEEDS[rng.below(SEEDS.len() as u64) as usize];
                input.splice(at..at, other.iter().copied());
            }
            _ => input.truncate(at),
        }
    }
}

#[test]
fn fuzz_arbitrary_bytes_into_handle_never_panic() {
    let n = inputs();
    let mut rng = Rng::new(seed());
    let mut c = ctx();
    let mut out = Vec::new();
    let (mut closed, mut bytes) = (0u64, 0u64);
    for case in 0..n {
        let input: Vec<u8> = if case % 3 == 0 {
            let len = rng.below(if case % 100 == 0 { 5000 } else { 200 });
            (0..len).map(|_| rng.next_u64() as u8).collect()
        } else {
            let mut v = SEEDS[rng.below(SEEDS.len() as u64) as usize].to_vec();
            mutate(&mut rng, &mut v);
            v
        };
        bytes += input.len() as u64;
        // One connection, the input delivered in up to three pieces.
        let mut conn = Memcache::default();
        let mut pending: Vec<u8> = Vec::new();
        let mut rest = &input[..];
        for _ in 0..3 {
            let cut = if rest.is_empty() {
                0
            } else {
                rng.below(rest.len() as u64 + 1) as usize
            };
            pending.extend_from_slice(&rest[..cut]);
            rest = &rest[cut..];
            out.clear();
            let h = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                conn.handle(&mut c, &pending, &mut out)
            }))
            .unwrap_or_else(|_| {
                panic!(
                    "seed {} case {case}: panic on {:?}",
                    seed(),
                    String::from_utf8_lossy(&input)
                )
            });
            assert!(
                h.consumed <= pending.len(),
                "case {case}: consumed past the input"
            );
            pending.drain(..h.consumed);
            if h.close {
                closed += 1;
                break;
            }
        }
        if case % 1000 == 999 {
            c.store.flush();
            c.memcache.clear();
        }
    }
    eprintln!("fuzz: {n} inputs, {bytes} bytes, {closed} connections closed, no panic");
    let mut conn = Memcache::default();
    out.clear();
    conn.handle(&mut c, b"version\r\n", &mut out);
    assert_eq!(out, b"VERSION 1.6.18\r\n", "the server still answers");
}

#[test]
fn slabs_reassign_moves_a_page_and_answers_as_memcached() {
    let server = Server::start(&["--protocol", "memcached", "--alloc", "slab:automove=2"]);
    let mut s = server.connect();
    // Three pages of class 1 (96-byte chunks, 10,922 a page): 2 pages spare.
    let mut req = Vec::new();
    for k in 0..3 * 10_922 {
        req.extend_from_slice(format!("set k{k} 0 0 1 noreply\r\nv\r\n").as_bytes());
    }
    s.write_all(&req).unwrap();
    let settings = ask(&mut s, b"stats settings\r\n", b"END\r\n");
    let settings = String::from_utf8_lossy(&settings);
    assert!(
        settings.contains("STAT slab_reassign yes\r\n"),
        "{settings}"
    );
    assert!(settings.contains("STAT slab_automove 2\r\n"), "{settings}");
    assert_eq!(ask(&mut s, b"slabs reassign 1 5\r\n", b"\r\n"), b"OK\r\n");
    assert_eq!(
        ask(&mut s, b"slabs reassign 5 5\r\n", b"\r\n"),
        b"SAME src and dst class are identical\r\n"
    );
    assert_eq!(
        ask(&mut s, b"slabs reassign 99 1\r\n", b"\r\n"),
        b"BADCLASS invalid src or dst class id\r\n"
    );
    assert_eq!(
        ask(&mut s, b"slabs reassign 5 1\r\n", b"\r\n"),
        b"NOSPARE source class has no spare pages\r\n"
    );
    let stats = ask(&mut s, b"stats\r\n", b"END\r\n");
    let stats = String::from_utf8_lossy(&stats);
    assert!(stats.contains("STAT slabs_moved 1\r\n"), "{stats}");
    // The moved page's items were rescued into free chunks or evicted: every key still there
    // reads back its value.
    assert!(stats.contains("STAT slab_reassign_rescues "), "{stats}");
    let got = ask(&mut s, b"get k0 k30000\r\n", b"END\r\n");
    let got = String::from_utf8_lossy(&got);
    assert!(got.ends_with("END\r\n") && !got.contains("ERROR"), "{got}");
    let slabs = ask(&mut s, b"stats slabs\r\n", b"END\r\n");
    let slabs = String::from_utf8_lossy(&slabs);
    assert!(slabs.contains("STAT 1:total_pages 2\r\n"), "{slabs}");
    assert!(slabs.contains("STAT 5:total_pages 1\r\n"), "{slabs}");
}
