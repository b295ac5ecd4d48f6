//! memcached's text protocol: ops encoded as commands, and reply lines read as the replay
//! counts them (the op-to-command table is in the module docs of [`super`]).

use std::io::{self, Write as _};

use fraglab_workloads::{Key, Op, OpKind, KEY_MAX};

use super::conn::Conn;
use super::protocol::{Expect, Outcome, Pending};

/// A multi-key get is split into lines of at most this many bytes.
const MAX_GET_LINE: usize = 2000;
/// memcached reads an exptime above 30 days as an absolute Unix time.
const RELATIVE_EXPTIME_MAX: u32 = 30 * 24 * 3600;

/// The exptime memcached gets for a TTL.
fn exptime(ttl: u32) -> u64 {
    if ttl > RELATIVE_EXPTIME_MAX {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // memcached parses exptime into an int32_t: past 2^31 it would wrap negative and the
        // item would be born expired. The latest time it can hold is as far as it goes.
        (now + u64::from(ttl)).min(i32::MAX as u64)
    } else {
        u64::from(ttl)
    }
}

/// An error line as the replay counts it.
fn error_outcome(line: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(line);
    if text.starts_with("SERVER_ERROR out of memory") {
        Outcome::Oom
    } else if text.starts_with("SERVER_ERROR object too large") {
        Outcome::Error("value_too_large".into())
    } else if text.starts_with("CLIENT_ERROR cannot increment or decrement non-numeric") {
        Outcome::Error("not_an_integer".into())
    } else {
        Outcome::Error(format!(
            "other: {}",
            text.chars().take(80).collect::<String>()
        ))
    }
}

/// Appends the text-protocol requests for `op` (see the module docs of `peer`).
pub(super) fn encode_op(
    op: &Op,
    value: &[u8],
    out: &mut Vec<u8>,
    pending: &mut Vec<Pending>,
) -> Result<(), &'static str> {
    if op.kind == OpKind::SlabsReassign {
        // `slabs reassign SRC DST`, with memcached's -1 for any source.
        out.extend_from_slice(b"slabs reassign ");
        if op.key.id == Op::ANY_CLASS {
            out.extend_from_slice(b"-1");
        } else {
            let _ = write!(out, "{}", op.key.id);
        }
        let _ = write!(out, " {}\r\n", op.value_len);
        pending.push(Pending {
            op: *op,
            expect: Expect::Admin,
        });
        return Ok(());
    }
    if op.key.len > KEY_MAX {
        return Err("key_too_long");
    }
    if op.key.len == 0 {
        return Err("empty_key");
    }
    if op.kind.is_aggregate() {
        // memcached has no aggregates (the memcached layout models a client's blobs).
        return Err("unsupported");
    }
    let mut push = |expect| pending.push(Pending { op: *op, expect });
    match op.kind {
        OpKind::Get | OpKind::Gets => {
            out.extend_from_slice(if op.kind == OpKind::Get {
                b"get "
            } else {
                b"gets "
            });
            op.key.write_to(out);
            out.extend_from_slice(b"\r\n");
            push(Expect::Retrieval);
        }
        OpKind::Set | OpKind::Add | OpKind::Replace | OpKind::Cas => {
            out.extend_from_slice(match op.kind {
                OpKind::Set => b"set ",
                OpKind::Add => b"add ",
                _ => b"replace ",
            });
            op.key.write_to(out);
            let _ = write!(out, " 0 {} {}\r\n", exptime(op.ttl), value.len());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
            push(Expect::Store);
        }
        OpKind::Append | OpKind::Prepend => {
            out.extend_from_slice(if op.kind == OpKind::Append {
                b"append "
            } else {
                b"prepend "
            });
            op.key.write_to(out);
            let _ = write!(out, " 0 0 {}\r\n", value.len());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
            push(Expect::Concat);
        }
        OpKind::Incr | OpKind::Decr => {
            out.extend_from_slice(if op.kind == OpKind::Incr {
                b"incr "
            } else {
                b"decr "
            });
            op.key.write_to(out);
            out.extend_from_slice(b" 1\r\n");
            push(Expect::Arith);
        }
        OpKind::Delete => {
            out.extend_from_slice(b"delete ");
            op.key.write_to(out);
            out.extend_from_slice(b"\r\n");
            push(Expect::Delete);
        }
        OpKind::Touch => {
            out.extend_from_slice(b"touch ");
            op.key.write_to(out);
            let _ = write!(out, " {}\r\n", exptime(op.ttl));
            push(Expect::Touch);
        }
        OpKind::Scan => {
            let mut line_start = None;
            for i in 0..u64::from(op.value_len) {
                if let Some(s) = line_start {
                    if out.len() - s + usize::from(op.key.len) + 3 > MAX_GET_LINE {
                        out.extend_from_slice(b"\r\n");
                        push(Expect::Multi);
                        line_start = None;
                    }
                }
                if line_start.is_none() {
                    line_start = Some(out.len());
                    out.extend_from_slice(b"get");
                }
                out.push(b' ');
                Key {
                    id: op.key.id.wrapping_add(i),
                    len: op.key.len,
                }
                .write_to(out);
            }
            if line_start.is_some() {
                out.extend_from_slice(b"\r\n");
                push(Expect::Multi);
            }
        }
        _ => unreachable!("aggregate ops are refused above"),
    }
    Ok(())
}

/// Reads the reply to a request of kind `expect`.
pub(super) fn read_outcome(c: &mut Conn, expect: Expect) -> io::Result<Outcome> {
    match expect {
        Expect::Retrieval | Expect::Multi => {
            let mut hit = false;
            loop {
                let line = c.line()?;
                if line == b"END" {
                    return Ok(if hit { Outcome::Hit } else { Outcome::Miss });
                }
                if let Some(rest) = line.strip_prefix(b"VALUE ") {
                    let n = String::from_utf8_lossy(rest)
                        .split(' ')
                        .nth(2)
                        .and_then(|n| n.parse::<usize>().ok())
                        .ok_or_else(|| {
                            io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "a malformed VALUE line: {}",
                                    String::from_utf8_lossy(line)
                                ),
                            )
                        })?;
                    let n = n.checked_add(2).ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "a VALUE line with an impossible length",
                        )
                    })?;
                    c.skip(n)?;
                    hit = true;
                    continue;
                }
                return Ok(error_outcome(line));
            }
        }
        _ => {
            let line = c.line()?;
            Ok(match (expect, line) {
                (Expect::Store | Expect::Concat, b"STORED") => Outcome::Stored,
                (Expect::Store | Expect::Concat, b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND") => {
                    Outcome::NotStored
                }
                (Expect::Arith, l) if !l.is_empty() && l.iter().all(u8::is_ascii_digit) => {
                    Outcome::Len(l.len() as u64)
                }
                (Expect::Delete, b"DELETED") => Outcome::Deleted,
                (Expect::Touch, b"TOUCHED") => Outcome::Touched,
                (Expect::Arith | Expect::Delete | Expect::Touch, b"NOT_FOUND") => Outcome::NotFound,
                (Expect::Admin, b"OK") => Outcome::Agg { writes: false },
                // BUSY, BADCLASS, NOSPARE, NOTFULL, UNSAFE, SAME (`process_slabs_command`).
                (Expect::Admin, _) => Outcome::Error("slabs_reassign_refused".into()),
                (_, l) => error_outcome(l),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The requests `Memcached::encode` writes for `op`, without a server.
    fn encode(op: Op, value: &[u8]) -> (String, Vec<Expect>) {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        encode_op(&op, value, &mut out, &mut pending).unwrap();
        (
            String::from_utf8(out).unwrap(),
            pending.iter().map(|p| p.expect).collect(),
        )
    }

    fn op(kind: OpKind, len: u16, value_len: u32, ttl: u32) -> Op {
        Op {
            time_us: 0,
            kind,
            key: Key { id: 65, len },
            value_len,
            ttl,
            fill: false,
            phase: 0,
            member: Key::NONE,
        }
    }

    #[test]
    fn slabs_reassign_is_one_line_with_minus_one_for_any_source() {
        let mut o = op(OpKind::SlabsReassign, 1, 12, 0);
        o.key.id = 5;
        assert_eq!(
            encode(o, b""),
            ("slabs reassign 5 12\r\n".to_string(), vec![Expect::Admin])
        );
        o.key.id = Op::ANY_CLASS;
        o.value_len = 0;
        assert_eq!(encode(o, b"").0, "slabs reassign -1 0\r\n");
    }

    #[test]
    fn ops_become_text_protocol_commands() {
        assert_eq!(
            encode(op(OpKind::Set, 5, 3, 0), b"ABC"),
            ("set 11... 0 0 3\r\nABC\r\n".into(), vec![Expect::Store])
        );
        assert_eq!(
            encode(op(OpKind::Cas, 3, 1, 60), b"A").0,
            "replace 11. 0 60 1\r\nA\r\n"
        );
        assert_eq!(encode(op(OpKind::Gets, 2, 9, 0), b"").0, "gets 11\r\n");
        assert_eq!(encode(op(OpKind::Decr, 2, 0, 0), b"").0, "decr 11 1\r\n");
        assert_eq!(encode(op(OpKind::Touch, 2, 0, 7), b"").0, "touch 11 7\r\n");
        assert_eq!(
            encode(op(OpKind::Prepend, 2, 2, 9), b"AB").0,
            "prepend 11 0 0 2\r\nAB\r\n"
        );
        // A TTL past 30 days is sent as an absolute time.
        let (t, _) = encode(op(OpKind::Set, 2, 0, 40 * 86_400), b"");
        let abs: u64 = t.split(' ').nth(3).unwrap().parse().unwrap();
        assert!(abs > 1_600_000_000, "{t}");
    }

    #[test]
    fn a_scan_is_split_into_get_lines() {
        let (text, expects) = encode(op(OpKind::Scan, 200, 30, 0), b"");
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), expects.len());
        assert!(lines.len() > 1);
        let keys: usize = lines
            .iter()
            .map(|l| {
                assert!(l.len() <= MAX_GET_LINE, "{}", l.len());
                assert!(l.starts_with("get "));
                l.split(' ').count() - 1
            })
            .sum();
        assert_eq!(keys, 30);
        assert_eq!(encode(op(OpKind::Scan, 5, 0, 0), b"").0, "");
    }

    #[test]
    fn long_and_empty_keys_are_not_sent() {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        let e = encode_op(&op(OpKind::Get, 251, 0, 0), b"", &mut out, &mut pending);
        assert_eq!(e, Err("key_too_long"));
        let e = encode_op(&op(OpKind::Get, 0, 0, 0), b"", &mut out, &mut pending);
        assert_eq!(e, Err("empty_key"));
        assert!(out.is_empty() && pending.is_empty());
    }

    #[test]
    fn error_replies_are_classified() {
        assert_eq!(
            error_outcome(b"SERVER_ERROR out of memory storing object"),
            Outcome::Oom
        );
        assert_eq!(
            error_outcome(b"SERVER_ERROR object too large for cache"),
            Outcome::Error("value_too_large".into())
        );
        assert_eq!(
            error_outcome(b"CLIENT_ERROR cannot increment or decrement non-numeric value"),
            Outcome::Error("not_an_integer".into())
        );
        assert_eq!(
            error_outcome(b"ERROR"),
            Outcome::Error("other: ERROR".into())
        );
    }
}
