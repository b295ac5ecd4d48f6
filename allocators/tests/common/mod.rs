//! Test helpers: other code that allocates, and a real memcached for tests, started from PATH on 127.0.0.1 and a free port, stopped by its
//! own process id when dropped.
//!
//! Where memcached is not installed the tests that need it print why and pass, except under
//! `CI=true`, where a missing memcached fails them (`.ci/run` installs it).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Allocates and frees a spread of sizes through the global allocator, keeping a third of them
/// and one 8 MiB buffer: "other code" for the isolation tests.
pub fn churn_global() -> Vec<Vec<u8>> {
    let mut kept = Vec::new();
    for i in 0..20_000usize {
        let v = vec![i as u8; 16 + (i * 37) % 5000];
        if i % 3 == 0 {
            kept.push(v);
        }
    }
    kept.push(vec![1u8; 8 << 20]);
    kept
}

/// Whether `program` can be run (`program --version`); panics under CI when it cannot.
fn available(program: &str, package: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is not installed (apt-get install {package}); under CI=true this test must run"
        );
        eprintln!("skipping: {program} is not on PATH (apt-get install {package})");
    }
    ok
}

/// Whether memcached can be run; panics under CI when it cannot.
pub fn memcached_available() -> bool {
    available("memcached", "memcached")
}

/// Whether redis-server can be run; panics under CI when it cannot.
pub fn redis_available() -> bool {
    available("redis-server", "redis-server")
}

/// A running redis-server, stopped by its pid when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts `redis-server --bind 127.0.0.1 --port PORT --save '' --appendonly no ARGS...`.
    pub fn start(args: &[&str]) -> RedisServer {
        'attempt: for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Another test's server may hold the port: it must be ours, by pid.
                    let server = RedisServer { child, port };
                    let pid = match server.connect().cmd(&[b"INFO", b"server"]) {
                        Reply::Bulk(Some(info)) => String::from_utf8_lossy(&info)
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("process_id:")
                                    .map(|p| p.trim().parse::<u32>())
                            })
                            .and_then(Result::ok),
                        _ => None,
                    };
                    if pid == Some(server.child.id()) {
                        return server;
                    }
                    drop(server); // stops our process by its pid
                    continue 'attempt;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
        panic!("redis-server did not start in 5 attempts");
    }

    pub fn connect(&self) -> Resp {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Resp {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child process, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A RESP connection.
pub struct Resp {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

/// A RESP reply, flattened to what the tests need.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Status(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Error(String),
}

impl Resp {
    /// Sends one command (pipelining: call `send` many times, then `read` as many times).
    pub fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend(format!("${}\r\n", a.len()).into_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).unwrap();
    }

    pub fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let (kind, rest) = line.trim_end().split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.reader.read_exact(&mut buf).unwrap();
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
            other => panic!("unexpected RESP reply kind {other:?}"),
        }
    }

    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.read()
    }

    /// `INFO memory`'s `used_memory`.
    pub fn used_memory(&mut self) -> u64 {
        let Reply::Bulk(Some(info)) = self.cmd(&[b"INFO", b"memory"]) else {
            panic!("INFO failed")
        };
        String::from_utf8(info)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .expect("used_memory in INFO")
            .trim()
            .parse()
            .unwrap()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running memcached.
pub struct Memcached {
    child: Child,
    pub port: u16,
    /// Lines memcached wrote to stderr (with `-vv`), collected by a reader thread.
    stderr: mpsc::Receiver<String>,
}

impl Memcached {
    /// Starts `memcached -l 127.0.0.1 -p PORT -U 0 ARGS...` and waits until it accepts.
    pub fn start(args: &[&str]) -> Memcached {
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("memcached");
            cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"]);
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                cmd.args(["-u", "root"]);
            }
            cmd.args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("memcached starts");
            let stderr = child.stderr.take().expect("piped stderr");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let mut server = Memcached {
                child,
                port,
                stderr: rx,
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Another test's server may hold the port: it must be ours, by pid.
                    let pid = server
                        .connect()
                        .stats("")
                        .get("pid")
                        .and_then(|p| p.parse::<u32>().ok());
                    if pid == Some(server.child.id()) {
                        return server;
                    }
                    break;
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // the port was taken meanwhile, or a bad argument: try again
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let lines: Vec<String> = server.stderr.try_iter().collect();
            let port_taken = lines
                .iter()
                .any(|l| l.contains("failed to listen") || l.contains("Address already in use"));
            if port_taken || matches!(server.child.try_wait(), Ok(None)) {
                continue; // dropping `server` stops our process by its pid, if it still runs
            }
            panic!("memcached {args:?} did not start: {lines:?}");
        }
        panic!("memcached did not find a free port in 5 attempts");
    }

    /// The class table memcached printed with `-vv`, as its lines.
    pub fn class_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match self.stderr.recv_timeout(Duration::from_secs(3)) {
                Ok(line) if line.starts_with("slab class") => out.push(line),
                Ok(_) if out.is_empty() => continue,
                _ => return out,
            }
        }
    }

    pub fn connect(&self) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to memcached");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client { stream }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child process, which we have not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A memcached text-protocol connection.
pub struct Client {
    stream: TcpStream,
}

impl Client {
    fn read_until(&mut self, end: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        while !buf.ends_with(end) {
            let n = self.stream.read(&mut chunk).expect("read from memcached");
            assert!(n > 0, "memcached closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
        buf
    }

    /// `set KEY FLAGS 0 LEN` with `len` bytes of value; returns memcached's answer line.
    pub fn set(&mut self, key: &str, flags: u32, len: usize) -> String {
        let mut msg = format!("set {key} {flags} 0 {len}\r\n").into_bytes();
        msg.extend(std::iter::repeat_n(b'v', len));
        msg.extend_from_slice(b"\r\n");
        self.stream.write_all(&msg).unwrap();
        String::from_utf8(self.read_until(b"\r\n"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Sets many keys in one pipelined write; returns how many were STORED.
    pub fn set_many(&mut self, keys: &[String], len: usize) -> usize {
        let mut msg = Vec::new();
        for key in keys {
            msg.extend(format!("set {key} 0 0 {len}\r\n").into_bytes());
            msg.extend(std::iter::repeat_n(b'v', len));
            msg.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&msg).unwrap();
        let mut answers = Vec::new();
        let mut chunk = [0u8; 65536];
        while answers.iter().filter(|&&b| b == b'\n').count() < keys.len() {
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "memcached closed the connection");
            answers.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8(answers)
            .unwrap()
            .lines()
            .filter(|l| *l == "STORED")
            .count()
    }

    /// `stats [ARG]` as a map.
    pub fn stats(&mut self, arg: &str) -> HashMap<String, String> {
        let cmd = if arg.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {arg}\r\n")
        };
        self.stream.write_all(cmd.as_bytes()).unwrap();
        String::from_utf8(self.read_until(b"END\r\n"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some("STAT")).then(|| {
                    (
                        it.next().unwrap().to_string(),
                        it.next().unwrap_or("").to_string(),
                    )
                })
            })
            .collect()
    }
}
