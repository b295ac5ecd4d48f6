//! A real server process: started from PATH on 127.0.0.1 and a free port, confirmed by its
//! process id, and stopped with its whole process group when dropped (SIGTERM and SIGCONT to
//! the group, up to 2 s, or 250 ms after Ctrl-C, then SIGKILL to the group).
//!
//! The server runs in a process group of its own ([`super::group`]), so a Ctrl-C at the
//! terminal reaches fraglab (which stops the run, keeps what it measured and then stops the
//! server) and not the server, and so that a wrapper script that runs the real server as its
//! child, as distributions and version managers install them, is stopped with that child.
//! The server answering on the port must be the process started or a process of its group.
//! The process started also gets `PR_SET_PDEATHSIG`: if fraglab dies without stopping it
//! (SIGKILL), the kernel sends it SIGTERM. That signal follows the *thread* that started the
//! server, so a server must be stopped before the thread that started it ends;
//! [`super::replay`] starts and stops its server on the calling thread. A second Ctrl-C kills
//! every server group before fraglab exits ([`super::group::kill_server_groups`]).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines of the server's output kept for error messages.
const OUTPUT_LINES: usize = 40;
/// How long a server has to accept connections after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server has to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// The same after Ctrl-C, which must end fraglab within a second (memcached takes up to a
/// second to act on SIGTERM: its clock event checks for it).
const INTERRUPTED_STOP_TIMEOUT: Duration = Duration::from_millis(250);
/// How long SIGKILL may take to empty the group.
const KILL_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts at a free port (another process may take the port between our probe and the
/// server's bind).
const ATTEMPTS: usize = 5;

/// How to start one kind of server.
pub(crate) struct Launch<'a> {
    /// The program, looked up on PATH.
    pub program: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
    /// The arguments for a port.
    pub args: &'a dyn Fn(u16) -> Vec<String>,
    /// Asks the server on a port for its process id.
    pub pid_of: &'a dyn Fn(u16) -> io::Result<u32>,
    /// Output that means the port was taken (try another).
    pub port_taken: &'a [&'static str],
}

/// A server we started.
pub(crate) struct Server {
    /// The process started: the server, or a wrapper that runs it. It leads the group and is
    /// reaped only once the group is gone (see [`super::group`]).
    child: Child,
    /// The process group: the child's pid.
    group: libc::pid_t,
    /// The pid that answered on the port: the child's, or one of its group's.
    server_pid: u32,
    /// Whether [`Server::stop`] has stopped the group and reaped the child.
    stopped: bool,
    /// The program.
    pub program: &'static str,
    /// The loopback port it listens on.
    pub port: u16,
    /// Its full command line, the program first.
    pub command: Vec<String>,
    output: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("program", &self.program)
            .field("pid", &self.server_pid)
            .field("group", &self.group)
            .field("port", &self.port)
            .finish()
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// Collects the lines of `pipe` into `output`, keeping the last [`OUTPUT_LINES`].
fn collect(
    pipe: impl Read + Send + 'static,
    output: Arc<Mutex<VecDeque<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
            if out.len() == OUTPUT_LINES {
                out.pop_front();
            }
            out.push_back(line);
        }
    })
}

/// Whether a TCP connection to the port succeeds.
fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

impl Server {
    /// Starts the server and waits until it answers on its port with its own process id.
    pub fn start(l: &Launch<'_>) -> Result<Server, String> {
        let mut last_error = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port()?;
            let args = (l.args)(port);
            let mut cmd = Command::new(l.program);
            cmd.args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0);
            // SAFETY: the closure runs in the child between fork and exec and only makes the
            // prctl(2) system call, which is async-signal-safe and touches no memory of ours.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(format!(
                        "{} is not installed (not found on PATH): install it with \
                         `apt-get install {}`",
                        l.program, l.package
                    ))
                }
                Err(e) => return Err(format!("cannot start {}: {e}", l.program)),
            };
            let output = Arc::new(Mutex::new(VecDeque::new()));
            let mut readers = Vec::new();
            if let Some(p) = child.stdout.take() {
                readers.push(collect(p, Arc::clone(&output)));
            }
            if let Some(p) = child.stderr.take() {
                readers.push(collect(p, Arc::clone(&output)));
            }
            let group = libc::pid_t::try_from(child.id()).unwrap_or(0);
            super::group::register(group);
            let mut command = vec![l.program.to_string()];
            command.extend(args);
            let mut server = Server {
                server_pid: child.id(),
                child,
                group,
                stopped: false,
                program: l.program,
                port,
                command,
                output,
                readers,
            };
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some(status) = server.exit_status() {
                    // Let the readers drain the pipes: the message is in the output.
                    for r in server.readers.drain(..) {
                        let _ = r.join();
                    }
                    let tail = server.output_tail();
                    if l.port_taken.iter().any(|m| tail.contains(m)) {
                        last_error = format!("port {port} was taken: {tail}");
                        break; // another port
                    }
                    return Err(format!(
                        "{} exited at start ({status}): `{}`{}",
                        l.program,
                        server.command.join(" "),
                        if tail.is_empty() {
                            String::new()
                        } else {
                            format!("\n{tail}")
                        }
                    ));
                }
                if crate::STOP.load(Ordering::Relaxed) {
                    return Err(format!("interrupted while starting {}", l.program));
                }
                if accepts(port) {
                    match (l.pid_of)(port) {
                        Ok(pid) if server.owns(pid) => {
                            server.server_pid = pid;
                            return Ok(server);
                        }
                        Ok(pid) => {
                            // Someone else's server holds the port: stop ours, try another.
                            last_error = format!(
                                "port {port} answered with pid {pid}, not ours ({})",
                                server.pid()
                            );
                            break;
                        }
                        Err(e) => last_error = format!("port {port}: {e}"),
                    }
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "{} (pid {}) did not answer on 127.0.0.1:{port} within {} s: \
                         {last_error}\n{}",
                        l.program,
                        server.pid(),
                        START_TIMEOUT.as_secs(),
                        server.output_tail()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(server); // stops it by its pid, if it still runs
        }
        Err(format!(
            "{} did not start in {ATTEMPTS} attempts: {last_error}",
            l.program
        ))
    }

    /// The server's process id: the process that answers on the port.
    pub fn pid(&self) -> u32 {
        self.server_pid
    }

    /// Whether `pid` is the process started or one of its process group.
    fn owns(&self, pid: u32) -> bool {
        pid == self.child.id() || super::group::pgid_of(pid) == Some(self.group)
    }

    /// How the process started exited, if it has (leaving it unreaped; see
    /// [`super::group`]). A wrapper's child that dies ends the wrapper too.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.stopped {
            return self.child.try_wait().ok().flatten();
        }
        super::group::exited(self.child.id())
    }

    /// Whether no process of the group runs any more.
    fn group_gone(&self) -> bool {
        super::group::members(self.group).is_empty()
    }

    /// Waits up to `wait` for the group to be gone.
    fn group_gone_within(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if self.group_gone() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `wait` for the server to exit; describes how it did.
    pub fn exited_within(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(s) = self.exit_status() {
                return Some(s.to_string());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last lines the server printed, one string.
    pub fn output_tail(&self) -> String {
        let out = self.output.lock().unwrap_or_else(|e| e.into_inner());
        out.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The server's resident set (`VmRSS` of `/proc/PID/status`), 0 if unknown.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }

    /// Stops the server's whole process group: SIGTERM and SIGCONT (a stopped server acts on
    /// SIGTERM only once continued), up to [`STOP_TIMEOUT`] ([`INTERRUPTED_STOP_TIMEOUT`]
    /// after Ctrl-C) for every process of it to exit, then SIGKILL; reaps the child.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        let g = self.group;
        if !self.group_gone() {
            super::group::signal(g, libc::SIGTERM);
            super::group::signal(g, libc::SIGCONT);
            let wait = if crate::STOP.load(Ordering::Relaxed) {
                INTERRUPTED_STOP_TIMEOUT
            } else {
                STOP_TIMEOUT
            };
            if !self.group_gone_within(wait) {
                super::group::signal(g, libc::SIGKILL);
                self.group_gone_within(KILL_TIMEOUT);
            }
        }
        // The leader has exited (or was killed with its group): reap it, and only then let
        // its pid and group id go.
        let _ = self.child.wait();
        self.stopped = true;
        super::group::unregister(g);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The resident set of a process in bytes (`VmRSS`), 0 if unknown.
pub(crate) fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
