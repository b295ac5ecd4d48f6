//! `fraglab serve --protocol resp` against real clients: every command's exact reply (the
//! replies of Redis 7.0.15, recorded), RESP3 after `HELLO 3`, pipelining, protocol errors and
//! garbage closing only their own connection, `redis-cli`, and `redis-benchmark`'s default
//! tests. The server runs on a free port and is stopped by its process id.
//!
//! `redis-benchmark` and `redis-cli` come from Debian's `redis-tools`; without them those
//! tests say so and pass, unless `CI=true`, where a missing tool fails.

#[path = "support/resp_script.rs"]
mod script;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

#[path = "support/serve.rs"]
mod serve_process;
use serve_process::Serve as Server;

/// A client reading whole RESP replies (every RESP2 and RESP3 type).
struct Client {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn new(sock: TcpStream) -> Client {
        Client {
            sock,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, args: &[&[u8]]) {
        self.sock.write_all(&encode(args)).unwrap();
    }

    fn call(&mut self, args: &[&[u8]]) -> String {
        self.send(args);
        self.reply()
    }

    /// The next reply, as text (replies in these tests are ASCII).
    fn reply(&mut self) -> String {
        loop {
            if let Some(end) = reply_end(&self.buf, 0) {
                let r: Vec<u8> = self.buf.drain(..end).collect();
                return String::from_utf8_lossy(&r).into_owned();
            }
            let mut chunk = [0u8; 65536];
            let n = self.sock.read(&mut chunk).expect("reading a reply");
            assert!(n > 0, "closed before a whole reply: {:?}", self.buf);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server closed the connection (after any pending bytes).
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1024];
        matches!(self.sock.read(&mut b), Ok(0) | Err(_))
    }
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Where the reply at `pos` ends, if it is whole.
fn reply_end(b: &[u8], pos: usize) -> Option<usize> {
    let t = *b.get(pos)?;
    let e = pos + b[pos..].windows(2).position(|w| w == b"\r\n")?;
    if b"+-:_,#(".contains(&t) {
        return Some(e + 2);
    }
    let n: i64 = std::str::from_utf8(&b[pos + 1..e]).ok()?.parse().ok()?;
    if n < 0 {
        return Some(e + 2);
    }
    match t {
        b'$' | b'=' | b'!' => {
            let end = e + 2 + n as usize + 2;
            (b.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let k = if t == b'%' || t == b'|' { 2 } else { 1 };
            let mut p = e + 2;
            for _ in 0..n * k {
                p = reply_end(b, p)?;
            }
            Some(p)
        }
        _ => panic!("not a RESP reply at {pos}: {:?}", &b[pos..]),
    }
}

fn args_of(cmd: &str) -> Vec<&[u8]> {
    cmd.split('|').map(str::as_bytes).collect()
}

/// Whether `reply` is what `expected` says (TTL of a key just set may be a second less).
fn same(cmd: &str, reply: &str, expected: &str) -> bool {
    reply == expected || (cmd == "TTL|s" && reply == ":99\r\n")
}

#[test]
fn every_command_replies_as_redis_7() {
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let mut c = Client::new(server.connect());
    for (cmd, expected) in script::SCRIPT {
        let r = c.call(&args_of(cmd));
        assert!(
            same(cmd, &r, expected),
            "{cmd}: got {r:?}, Redis says {expected:?}"
        );
    }
}

#[test]
fn resp3_after_hello_3() {
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let mut c = Client::new(server.connect());
    let hello = c.call(&[b"HELLO", b"3"]);
    assert!(
        hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{hello:?}"
    );
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello:?}");
    let steps = script::SCRIPT.iter().filter(|(c, _)| *c != "SELECT|1");
    for (i, (cmd, resp2)) in steps.enumerate() {
        let expected = script::RESP3
            .iter()
            .find(|(j, _)| *j == i)
            .map_or(*resp2, |(_, r)| *r);
        let r = c.call(&args_of(cmd));
        assert!(
            same(cmd, &r, expected),
            "{cmd}: got {r:?}, Redis says {expected:?}"
        );
    }
    let info = c.call(&[b"INFO", b"memory"]);
    assert!(
        info.starts_with('=') && info.contains("txt:# Memory\r\n"),
        "{info:?}"
    );
    let back = c.call(&[b"HELLO", b"2"]);
    assert!(back.starts_with("*14\r\n"), "{back:?}");
    assert_eq!(c.call(&[b"GET", b"nope"]), "$-1\r\n");
}

#[test]
fn info_config_and_memory_come_from_the_model() {
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let mut c = Client::new(server.connect());
    assert_eq!(c.call(&[b"HSET", b"h", b"f", b"v"]), ":1\r\n");
    let info = c.call(&[b"INFO", b"memory"]);
    for field in [
        "used_memory:",
        "used_memory_human:",
        "used_memory_rss:",
        "mem_fragmentation_ratio:",
        "allocator_allocated:",
        "allocator_active:",
        "allocator_resident:",
        "allocator_frag_ratio:",
        "maxmemory:0\r\n",
        "maxmemory_policy:",
        "mem_allocator:zmalloc",
    ] {
        assert!(info.contains(field), "INFO memory lacks {field}: {info}");
    }
    let usage = c.call(&[b"MEMORY", b"USAGE", b"h", b"SAMPLES", b"5"]);
    let n: u64 = usage.trim_start_matches(':').trim().parse().unwrap();
    assert!(n > 0, "{usage:?}");
    assert_eq!(
        c.call(&[b"CONFIG", b"SET", b"maxmemory", b"10mb"]),
        "+OK\r\n"
    );
    assert!(c
        .call(&[b"INFO", b"memory"])
        .contains("maxmemory:10485760\r\n"));
    let all = c.call(&[b"CONFIG", b"GET", b"*"]);
    assert!(
        all.contains("list-max-listpack-size\r\n$2\r\n-2\r\n"),
        "{all}"
    );
    // Under a limit nothing fits in, a write is refused as Redis refuses it.
    assert_eq!(c.call(&[b"FLUSHALL"]), "+OK\r\n");
    assert_eq!(c.call(&[b"CONFIG", b"SET", b"maxmemory", b"1"]), "+OK\r\n");
    assert_eq!(
        c.call(&[b"SET", b"k", &[b'v'; 1000]]),
        "-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    );
    assert_eq!(c.call(&[b"CONFIG", b"SET", b"maxmemory", b"0"]), "+OK\r\n");
    assert_eq!(c.call(&[b"SET", b"k", b"v"]), "+OK\r\n");
    let keyspace = c.call(&[b"INFO", b"keyspace"]);
    assert!(keyspace.contains("db0:keys=1,"), "{keyspace}");
}

#[test]
fn pipelined_commands_answer_in_order() {
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let mut c = Client::new(server.connect());
    let mut batch = Vec::new();
    for i in 0..50 {
        let k = format!("k{i}");
        let v = format!("v{i}");
        batch.extend(encode(&[b"SET", k.as_bytes(), v.as_bytes()]));
        batch.extend(encode(&[b"GET", k.as_bytes()]));
    }
    c.sock.write_all(&batch).unwrap();
    for i in 0..50 {
        assert_eq!(c.reply(), "+OK\r\n");
        let v = format!("v{i}");
        assert_eq!(c.reply(), format!("${}\r\n{v}\r\n", v.len()));
    }
    // Inline commands, as redis-benchmark's PING_INLINE and a telnet session send them.
    c.sock
        .write_all(b"PING\r\nset a \"b c\"\nGET a\r\n\r\n")
        .unwrap();
    assert_eq!(c.reply(), "+PONG\r\n");
    assert_eq!(c.reply(), "+OK\r\n");
    assert_eq!(c.reply(), "$3\r\nb c\r\n");
    assert_eq!(c.call(&[b"QUIT"]), "+OK\r\n");
    assert!(c.closed());
}

#[test]
fn protocol_errors_close_only_their_client() {
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let mut other = Client::new(server.connect());
    assert_eq!(other.call(&[b"SET", b"k", b"v"]), "+OK\r\n");
    for (garbage, error) in [
        (
            &b"*1\r\n$x\r\n"[..],
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1048577\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$536870913\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"GET \"k\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ] {
        let mut c = Client::new(server.connect());
        assert_eq!(c.call(&[b"PING"]), "+PONG\r\n");
        c.sock.write_all(garbage).unwrap();
        assert_eq!(c.reply(), error, "{:?}", String::from_utf8_lossy(garbage));
        assert!(c.closed(), "still open after {garbage:?}");
        assert_eq!(other.call(&[b"GET", b"k"]), "$1\r\nv\r\n");
    }
}

#[test]
fn a_megabyte_of_random_bytes_leaves_the_server_answering() {
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let mut other = Client::new(server.connect());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut c = server.connect();
    // The server may close mid-write, at its first protocol error.
    let _ = c.write_all(&noise);
    let mut sink = Vec::new();
    let _ = c.read_to_end(&mut sink);
    assert_eq!(other.call(&[b"PING"]), "+PONG\r\n");
    let mut fresh = Client::new(server.connect());
    assert_eq!(
        fresh.call(&[b"ECHO", b"still here"]),
        "$10\r\nstill here\r\n"
    );
}

/// Whether a client tool is installed; in CI its absence fails the test.
fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is missing (Debian: redis-tools) and CI=true"
        );
        eprintln!("skipped: {tool} is not installed (Debian: redis-tools)");
    }
    found
}

#[test]
fn redis_cli_round_trips() {
    if !have("redis-cli") {
        return;
    }
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let port = server.port.to_string();
    let cli = |args: &[&str]| {
        let o = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "redis-cli {args:?}: {o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(cli(&["SET", "k", "v"]), "OK\n");
    assert_eq!(cli(&["GET", "k"]), "v\n");
    assert_eq!(cli(&["RPUSH", "l", "a", "b"]), "2\n");
    assert_eq!(cli(&["LRANGE", "l", "0", "-1"]), "a\nb\n");
    assert_eq!(cli(&["ZADD", "z", "1.5", "m"]), "1\n");
    assert_eq!(cli(&["-3", "ZSCORE", "z", "m"]), "1.5\n");
    assert_eq!(cli(&["-3", "HSET", "h", "f", "v"]), "1\n");
    assert_eq!(cli(&["-3", "HGETALL", "h"]), "f v\n");
    assert_eq!(cli(&["OBJECT", "ENCODING", "h"]), "listpack\n");
    assert_eq!(cli(&["DBSIZE"]), "4\n");
    assert!(cli(&["INFO", "memory"]).contains("used_memory:"));
}

#[test]
fn redis_benchmark_default_tests_run_without_error() {
    if !have("redis-benchmark") {
        return;
    }
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let o = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-q", "--csv", "-n", "2000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "redis-benchmark failed: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "redis-benchmark reported errors: {stderr}"
    );
    let tests: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split("\",\"").next())
        .map(|t| t.trim_start_matches('"'))
        .collect();
    for want in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LRANGE_600 (first 600 elements)",
        "MSET (10 keys)",
    ] {
        assert!(tests.contains(&want), "{want} did not run: {stdout}");
    }
    assert_eq!(tests.len(), 20, "{stdout}");
}

#[test]
fn a_hundred_concurrent_clients_each_get_their_own_replies() {
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let port = server.port;
    let threads: Vec<_> = (0..100)
        .map(|t| {
            std::thread::spawn(move || {
                let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut c = Client::new(sock);
                for i in 0..20 {
                    let k = format!("c{t}");
                    let v = format!("client {t} value {i}");
                    // Pipelined pairs, so replies of many clients interleave on the server.
                    c.send(&[b"SET", k.as_bytes(), v.as_bytes()]);
                    c.send(&[b"GET", k.as_bytes()]);
                    assert_eq!(c.reply(), "+OK\r\n");
                    assert_eq!(c.reply(), format!("${}\r\n{v}\r\n", v.len()), "client {t}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn smembers_answers_in_the_encodings_order() {
    // Redis 7.0.15 answers these exactly so: an intset's members sorted, a missing key an
    // empty array (a set type in RESP3).
    let server = Server::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let mut c = Client::new(server.connect());
    assert_eq!(c.call(&[b"SADD", b"sm", b"30", b"10", b"20"]), ":3\r\n");
    assert_eq!(
        c.call(&[b"SMEMBERS", b"sm"]),
        "*3\r\n$2\r\n10\r\n$2\r\n20\r\n$2\r\n30\r\n"
    );
    assert_eq!(c.call(&[b"SMEMBERS", b"nope"]), "*0\r\n");
    assert_eq!(c.call(&[b"SADD", b"ss", b"a", b"b"]), ":2\r\n");
    let mut members: Vec<String> = c
        .call(&[b"SMEMBERS", b"ss"])
        .split("\r\n")
        .filter(|l| !l.starts_with(['*', '$']) && !l.is_empty())
        .map(str::to_string)
        .collect();
    members.sort();
    assert_eq!(members, ["a", "b"]);
    c.call(&[b"HELLO", b"3"]);
    assert_eq!(
        c.call(&[b"SMEMBERS", b"sm"]),
        "~3\r\n$2\r\n10\r\n$2\r\n20\r\n$2\r\n30\r\n"
    );
}
