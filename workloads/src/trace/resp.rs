//! RESP command files: a stream of RESP2 arrays of bulk strings (what `redis-cli --pipe`
//! sends), decoded one command at a time into ops. See the [module docs](super) for the
//! command table.
//!
//! Arguments are never held whole: each bulk string is read in the input's own buffer,
//! hashed as it passes (keys and members) and cut to its first [`HEAD`] bytes (command names,
//! options, numbers), so a value of 512 MiB costs nothing but its reading. A command's ops
//! wait in a queue of 16 bytes each until they are returned: at most 16 MiB for the largest
//! array, and no more than the bytes the command took in the file.

use std::io::{self, BufRead};

use super::resp_cmd::{Arg, Command, Elem, HEAD};
use crate::{Key, Op, OpKind};

/// The most elements a command's array may declare (2^20); more is refused before anything is
/// read or allocated for them.
pub const RESP_ARRAY_MAX: u64 = 1 << 20;

/// The longest bulk string, 512 MiB: Redis's default `proto-max-bulk-len`. A longer one is
/// refused before anything is read or allocated for it.
pub const RESP_BULK_MAX: u64 = 512 << 20;

/// FNV-1a's offset basis and prime ([`crate::rng::fnv1a64_bytes`], computed as the bytes
/// pass).
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Why a command yielded no op.
pub(super) enum RespFault {
    /// The command is whole but maps to no op; lenient reading skips it.
    Bad(String),
    /// The input ends inside a command.
    Truncated(String),
    /// The framing is broken or declares more than a limit: nothing after it can be trusted.
    Fatal(String),
    /// The input could not be read.
    Io(io::Error),
}

/// Decodes RESP commands into ops, keeping the byte offset in the (decompressed) input.
pub(super) struct RespDecoder {
    /// Bytes of the input consumed.
    offset: u64,
    /// The current command's op, less what each element sets.
    template: Op,
    /// Whether an element is its op's key (MGET, DEL, MSET) rather than its member.
    per_key: bool,
    /// The current command's ops, returned from `next`.
    elems: Vec<Elem>,
    next: usize,
}

impl RespDecoder {
    pub(super) fn new() -> RespDecoder {
        RespDecoder {
            offset: 0,
            template: Op {
                time_us: 0,
                kind: OpKind::Get,
                key: Key::NONE,
                value_len: 0,
                ttl: 0,
                fill: false,
                phase: 0,
                member: Key::NONE,
            },
            per_key: false,
            elems: Vec::new(),
            next: 0,
        }
    }

    /// The next op: one queued from the last command, or the first of the next command (whose
    /// reading counts one more record). `Ok(None)` at the end of the input.
    pub(super) fn next_op(
        &mut self,
        input: &mut dyn BufRead,
        records: &mut u64,
    ) -> Result<Option<Op>, RespFault> {
        loop {
            if let Some(&e) = self.elems.get(self.next) {
                self.next += 1;
                let mut op = self.template;
                let k = Key {
                    id: e.id,
                    len: e.len,
                };
                if self.per_key {
                    op.key = k;
                } else {
                    op.member = k;
                }
                op.value_len = e.value_len;
                return Ok(Some(op));
            }
            self.elems.clear();
            self.next = 0;
            // A command of a million elements leaves no 16 MiB queue behind.
            self.elems.shrink_to(4096);
            let start = self.offset;
            let Some(first) = self.byte(input)? else {
                return Ok(None);
            };
            *records += 1;
            self.command(input, first, start)?;
        }
    }

    /// Reads one command, whose first byte `first` was at `start`, into the queue.
    fn command(&mut self, input: &mut dyn BufRead, first: u8, start: u64) -> Result<(), RespFault> {
        if first != b'*' {
            return Err(malformed(start, "an array (`*`)", first));
        }
        let n = self.length(input, start, RESP_ARRAY_MAX, "an array")?;
        if n == 0 {
            return Err(RespFault::Bad(format!("an empty command at byte {start}")));
        }
        let name = self.arg(input, start)?;
        let (mut cmd, mut error) = match Command::named(&name, n - 1, start) {
            Ok(c) => (Some(c), None),
            Err(m) => (None, Some(m)),
        };
        for i in 0..n - 1 {
            let a = self.arg(input, start)?;
            if let (Some(c), None) = (cmd.as_mut(), &error) {
                if let Err(m) = c.take(i, &a, &mut self.elems) {
                    error = Some(format!("{} at byte {start}: {m}", c.name));
                }
            }
        }
        let (Some(cmd), None) = (cmd, &error) else {
            self.elems.clear();
            let m = error.unwrap_or_else(|| format!("a bad command at byte {start}"));
            return Err(RespFault::Bad(m));
        };
        if let Err(m) = cmd.finish() {
            self.elems.clear();
            return Err(RespFault::Bad(format!("{} at byte {start}: {m}", cmd.name)));
        }
        self.per_key = cmd.per_key();
        self.template = Op {
            kind: cmd.kind,
            key: cmd.key,
            ttl: cmd.ttl,
            ..RespDecoder::new().template
        };
        if self.elems.is_empty() {
            // A command of one op on its key.
            self.elems.push(Elem {
                id: 0,
                len: 0,
                value_len: cmd.value_len,
            });
        }
        Ok(())
    }

    /// The next byte, `None` at the end of the input.
    fn byte(&mut self, input: &mut dyn BufRead) -> Result<Option<u8>, RespFault> {
        loop {
            match input.fill_buf() {
                Ok([]) => return Ok(None),
                Ok(&[b, ..]) => {
                    input.consume(1);
                    self.offset += 1;
                    return Ok(Some(b));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RespFault::Io(e)),
            }
        }
    }

    /// The next byte of the command that started at `start`; the end of the input is a
    /// truncation.
    fn byte_in(&mut self, input: &mut dyn BufRead, start: u64) -> Result<u8, RespFault> {
        self.byte(input)?.ok_or_else(|| self.truncated(start))
    }

    fn truncated(&self, start: u64) -> RespFault {
        RespFault::Truncated(format!(
            "the command at byte {start} is cut short: the input ends at byte {}",
            self.offset
        ))
    }

    /// A length after its type byte: canonical decimal digits then CRLF, at most `max`
    /// (refused as soon as the digits pass it).
    fn length(
        &mut self,
        input: &mut dyn BufRead,
        start: u64,
        max: u64,
        what: &str,
    ) -> Result<u64, RespFault> {
        let header = self.offset - 1;
        let mut n: u64 = 0;
        let mut digits = 0;
        loop {
            let at = self.offset;
            match self.byte_in(input, start)? {
                d @ b'0'..=b'9' => {
                    if digits == 1 && n == 0 {
                        return Err(malformed(at, "CRLF after a length of 0", d));
                    }
                    n = n * 10 + u64::from(d - b'0');
                    digits += 1;
                    if n > max {
                        let unit = if max == RESP_BULK_MAX {
                            "bytes (512 MiB, Redis's proto-max-bulk-len)"
                        } else {
                            "elements"
                        };
                        return Err(RespFault::Fatal(format!(
                            "{what} at byte {header} declares more than {max} {unit}; refused"
                        )));
                    }
                }
                b'\r' if digits > 0 => {
                    let at = self.offset;
                    return match self.byte_in(input, start)? {
                        b'\n' => Ok(n),
                        other => Err(malformed(at, "`\\n` after `\\r`", other)),
                    };
                }
                other => {
                    let expected = if digits == 0 {
                        "a length (a decimal digit)"
                    } else {
                        "a digit or CRLF"
                    };
                    return Err(malformed(at, expected, other));
                }
            }
        }
    }

    /// One bulk string of the command that started at `start`, read through.
    fn arg(&mut self, input: &mut dyn BufRead, start: u64) -> Result<Arg, RespFault> {
        let at = self.offset;
        match self.byte_in(input, start)? {
            b'$' => {}
            other => return Err(malformed(at, "a bulk string (`$`)", other)),
        }
        let len = self.length(input, start, RESP_BULK_MAX, "a bulk string")?;
        let mut a = Arg {
            len,
            hash: FNV_OFFSET,
            head: [0; HEAD],
        };
        let hashing = len <= u64::from(u16::MAX);
        let mut done = 0u64;
        while done < len {
            let buf = match input.fill_buf() {
                Ok([]) => return Err(self.truncated(start)),
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RespFault::Io(e)),
            };
            let n = buf.len().min((len - done) as usize);
            let chunk = &buf[..n];
            if (done as usize) < HEAD {
                let from = done as usize;
                let k = (HEAD - from).min(n);
                a.head[from..from + k].copy_from_slice(&chunk[..k]);
            }
            if hashing {
                for &b in chunk {
                    a.hash = (a.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
                }
            }
            input.consume(n);
            self.offset += n as u64;
            done += n as u64;
        }
        for want in [b'\r', b'\n'] {
            let at = self.offset;
            let b = self.byte_in(input, start)?;
            if b != want {
                let what = if want == b'\r' {
                    "CRLF after the bulk string's bytes"
                } else {
                    "`\\n` after `\\r`"
                };
                return Err(malformed(at, what, b));
            }
        }
        Ok(a)
    }
}

fn malformed(at: u64, expected: &str, found: u8) -> RespFault {
    let found = match found {
        b' '..=b'~' => format!("`{}`", found as char),
        b'\r' => "`\\r`".into(),
        b'\n' => "`\\n`".into(),
        other => format!("byte 0x{other:02x}"),
    };
    RespFault::Fatal(format!(
        "malformed RESP at byte {at}: expected {expected}, found {found}"
    ))
}
