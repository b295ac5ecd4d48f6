//! `fraglab serve` under many clients at once, over both protocols: every client gets its own
//! replies, in order, and a client that sends garbage does not disturb the others.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[path = "support/serve.rs"]
mod serve_process;
use serve_process::Serve;

const CLIENTS: usize = 100;
const ROUNDS: usize = 50;

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads one RESP bulk reply.
fn resp_bulk(r: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let n: i64 = line
        .trim_end()
        .strip_prefix('$')
        .expect("a bulk reply")
        .parse()
        .unwrap();
    if n < 0 {
        return None;
    }
    let mut v = vec![0u8; n as usize + 2];
    r.read_exact(&mut v).unwrap();
    v.truncate(n as usize);
    Some(v)
}

fn resp_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n", a.len()).bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn a_hundred_resp_clients_each_get_their_own_replies() {
    let server = Serve::start(&[
        "--protocol",
        "resp",
        "--alloc",
        "zmalloc:backend=jemalloc,prefix=0",
    ]);
    let port = server.port;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut w = connect(port);
                let mut r = BufReader::new(w.try_clone().unwrap());
                for round in 0..ROUNDS {
                    let key = format!("client:{c}");
                    let value = format!("value-{c}-{round}-{}", "x".repeat(c % 40));
                    // A pipelined SET, GET and INCR: the replies must come back in order and
                    // be this client's.
                    let mut batch = cmd(&[b"SET", key.as_bytes(), value.as_bytes()]);
                    batch.extend(cmd(&[b"GET", key.as_bytes()]));
                    batch.extend(cmd(&[b"INCR", format!("n:{c}").as_bytes()]));
                    w.write_all(&batch).unwrap();
                    assert_eq!(resp_line(&mut r), "+OK");
                    assert_eq!(resp_bulk(&mut r).as_deref(), Some(value.as_bytes()));
                    assert_eq!(resp_line(&mut r), format!(":{}", round + 1));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client saw another's reply, or an error");
    }
    // The server answers after them all, and counted every key.
    let mut w = connect(port);
    let mut r = BufReader::new(w.try_clone().unwrap());
    w.write_all(&cmd(&[b"DBSIZE"])).unwrap();
    assert_eq!(resp_line(&mut r), format!(":{}", 2 * CLIENTS));
}

#[test]
fn a_hundred_memcached_clients_each_get_their_own_replies() {
    let server = Serve::start(&["--protocol", "memcached", "--alloc", "slab"]);
    let port = server.port;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut w = connect(port);
                let mut r = BufReader::new(w.try_clone().unwrap());
                for round in 0..ROUNDS {
                    let key = format!("client:{c}");
                    let value = format!("value-{c}-{round}-{}", "x".repeat(c % 40));
                    let batch = format!(
                        "set {key} {c} 0 {}\r\n{value}\r\nget {key}\r\n",
                        value.len()
                    );
                    w.write_all(batch.as_bytes()).unwrap();
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    assert_eq!(line, "STORED\r\n");
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    assert_eq!(line, format!("VALUE {key} {c} {}\r\n", value.len()));
                    let mut data = vec![0u8; value.len() + 2];
                    r.read_exact(&mut data).unwrap();
                    assert_eq!(&data[..value.len()], value.as_bytes());
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    assert_eq!(line, "END\r\n");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client saw another's reply, or an error");
    }
}

#[test]
fn garbage_on_one_connection_leaves_the_others_answered() {
    for (proto, alloc, probe, answer) in [
        (
            "resp",
            "zmalloc:backend=jemalloc,prefix=0",
            &b"*1\r\n$4\r\nPING\r\n"[..],
            "+PONG",
        ),
        ("memcached", "slab", &b"version\r\n"[..], "VERSION"),
    ] {
        let server = Serve::start(&["--protocol", proto, "--alloc", alloc]);
        let mut other = connect(server.port);
        let mut other_r = BufReader::new(other.try_clone().unwrap());
        let mut bad = connect(server.port);
        // 1 MB of pseudo-random bytes; the server may close this connection at any point.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let junk: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = bad.write_all(&junk);
        drop(bad);
        other.write_all(probe).unwrap();
        let line = resp_line(&mut other_r);
        assert!(line.starts_with(answer), "{proto}: {line}");
        drop(server);
    }
}
