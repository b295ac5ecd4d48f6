//! A connection to a server: pipelined writes, buffered reads of lines and counted bytes.
//!
//! Every read, write and connect waits in slices of [`SLICE`]: between two slices it reads
//! the Ctrl-C flag ([`crate::STOP`]), so that a server that stopped answering (a SIGSTOP, a
//! hung machine) holds a Ctrl-C for at most a slice; the error is then [`interrupted`]. A
//! server that moves no byte for [`REPLY_TIMEOUT`] is a stalled server: the error says so,
//! and the run ends naming it (its program, pid and port; see the pipeline's `failure`).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a server may move no byte (no reply, or no request read) before the run gives up
/// on it.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest single wait on a socket: the Ctrl-C flag is read between two.
pub(crate) const SLICE: Duration = Duration::from_millis(200);
/// How long a connection may take to be accepted.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The message of the error a wait ends with on Ctrl-C.
pub(crate) const INTERRUPTED: &str = "interrupted";
/// Requests up to this size are written before their replies are read; larger ones are
/// written by a helper thread while this one reads, so that neither side can block the other
/// on a full socket (a server stops reading while its replies cannot be written).
const INLINE_WRITE: usize = 32 << 10;
/// The longest reply line accepted.
const MAX_LINE: usize = 1 << 20;

/// A TCP connection to a server on the loopback interface.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    /// A second handle on the socket, for the writer thread.
    writer: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Whether `e` is a socket timeout (one slice passed).
fn is_slice(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The error of a wait ended by Ctrl-C.
pub(crate) fn interrupted() -> io::Error {
    io::Error::other(INTERRUPTED)
}

/// After a slice with nothing moved since `since`: an error on Ctrl-C or once the server has
/// stalled for [`REPLY_TIMEOUT`]; `what` says what it did not do.
fn keep_waiting(since: Instant, what: &str) -> io::Result<()> {
    if crate::STOP.load(Ordering::Relaxed) {
        return Err(interrupted());
    }
    if since.elapsed() >= REPLY_TIMEOUT {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what} within {} s: the server stopped answering",
                REPLY_TIMEOUT.as_secs()
            ),
        ));
    }
    Ok(())
}

/// `write_all` in slices (see the module docs).
fn write_all(mut w: &TcpStream, mut out: &[u8]) -> io::Result<()> {
    let mut since = Instant::now();
    while !out.is_empty() {
        match w.write(out) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                out = &out[n..];
                since = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_slice(&e) => keep_waiting(since, "no request read")?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes closing the socket reset the connection rather than leave it in TIME_WAIT: Redis
/// samples open and close a connection each, and a long run with frequent samples would
/// otherwise run out of local ports. The replies have all been read by the time a connection
/// is closed.
fn linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd as _;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on the descriptor of a socket we own and keep open for the call,
    // with a pointer to a live `linger` and its exact size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast::<libc::c_void>(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

impl Conn {
    /// Connects to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> io::Result<Conn> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let since = Instant::now();
        let stream = loop {
            match TcpStream::connect_timeout(&addr, SLICE) {
                Ok(s) => break s,
                Err(e) if is_slice(&e) && since.elapsed() < CONNECT_TIMEOUT => {
                    if crate::STOP.load(Ordering::Relaxed) {
                        return Err(interrupted());
                    }
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nodelay(true)?;
        linger_zero(&stream);
        stream.set_read_timeout(Some(SLICE))?;
        stream.set_write_timeout(Some(SLICE))?;
        let writer = stream.try_clone()?;
        Ok(Conn {
            stream,
            writer,
            buf: vec![0; 64 << 10],
            start: 0,
            end: 0,
        })
    }

    /// Reads more bytes into the buffer; the end of the stream is an error.
    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        let since = Instant::now();
        loop {
            match (&self.stream).read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ))
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_slice(&e) => keep_waiting(since, "no reply")?,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line, without its `\r\n`.
    pub fn line(&mut self) -> io::Result<&[u8]> {
        // Bytes after `start` already searched for a newline.
        let mut searched = 0;
        loop {
            if let Some(i) = self.buf[self.start + searched..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                let from = self.start;
                let mut to = self.start + searched + i;
                self.start = to + 1;
                if to > from && self.buf[to - 1] == b'\r' {
                    to -= 1;
                }
                return Ok(&self.buf[from..to]);
            }
            searched = self.end - self.start;
            if searched > MAX_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a reply line longer than {MAX_LINE} bytes"),
                ));
            }
            self.fill()?;
        }
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, mut n: usize) -> io::Result<()> {
        loop {
            let have = (self.end - self.start).min(n);
            self.start += have;
            n -= have;
            if n == 0 {
                return Ok(());
            }
            self.fill()?;
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.end - self.start < n {
            self.fill()?;
        }
        let v = self.buf[self.start..self.start + n].to_vec();
        self.start += n;
        Ok(v)
    }

    /// Writes `out` and reads its replies with `read`; a large `out` is written by a helper
    /// thread while `read` runs.
    pub fn exchange<T>(
        &mut self,
        out: &[u8],
        read: impl FnOnce(&mut Conn) -> io::Result<T>,
    ) -> io::Result<T> {
        if out.len() <= INLINE_WRITE {
            write_all(&self.writer, out)?;
            return read(self);
        }
        let writer = self.writer.try_clone()?;
        std::thread::scope(|s| {
            let w = s.spawn(|| write_all(&writer, out));
            let r = read(self);
            if r.is_err() {
                // Unblocks the writer if the server stopped reading.
                let _ = writer.shutdown(Shutdown::Both);
            }
            let w = w
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")));
            match (r, w) {
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                (Ok(v), Ok(())) => Ok(v),
            }
        })
    }
}
