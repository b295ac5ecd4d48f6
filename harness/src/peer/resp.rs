//! RESP, Redis's protocol: ops encoded as commands, and replies read as the replay counts them
//! (the op-to-command table is in the module docs of [`super`]).

use std::io;

use fraglab_workloads::{Op, OpKind};

use crate::resp_encode::{arg, array, encode, Encoded};

use super::conn::Conn;
use super::protocol::{Expect, Outcome, Pending};

/// A reply, with bulk strings and arrays skipped.
#[derive(Debug)]
pub(super) enum Reply {
    Status(bool),
    Error(String),
    Int(i64),
    Nil,
    Bulk,
    Array,
}

/// The longest bulk string Redis sends (`proto-max-bulk-len`, 512 MB).
const BULK_MAX: i64 = 512 << 20;

pub(super) fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// The header of a reply: its type byte and the rest of the line.
fn header(c: &mut Conn) -> io::Result<(u8, String)> {
    let line = c.line()?;
    let Some((&t, rest)) = line.split_first() else {
        return Err(bad("an empty reply line".into()));
    };
    Ok((t, String::from_utf8_lossy(rest).into_owned()))
}

fn int(s: &str) -> io::Result<i64> {
    s.parse()
        .map_err(|_| bad(format!("a malformed length or integer `{s}`")))
}

/// Reads one reply, skipping the contents of bulk strings and arrays.
pub(super) fn reply(c: &mut Conn) -> io::Result<Reply> {
    let (t, rest) = header(c)?;
    Ok(match t {
        b'+' => Reply::Status(rest == "OK"),
        b'-' => Reply::Error(rest),
        b':' => Reply::Int(int(&rest)?),
        b'$' => {
            let n = int(&rest)?;
            if n < 0 {
                Reply::Nil
            } else if n > BULK_MAX {
                return Err(bad(format!(
                    "a bulk string of {n} bytes (Redis's limit is 512 MB)"
                )));
            } else {
                c.skip(n as usize + 2)?;
                Reply::Bulk
            }
        }
        b'*' => {
            let n = int(&rest)?;
            if n < 0 {
                Reply::Nil
            } else {
                for _ in 0..n {
                    reply(c)?;
                }
                Reply::Array
            }
        }
        other => return Err(bad(format!("an unknown reply type `{}`", other as char))),
    })
}

/// Reads a bulk string.
pub(super) fn bulk(c: &mut Conn) -> io::Result<Vec<u8>> {
    let (t, rest) = header(c)?;
    match t {
        b'$' => {
            let n = int(&rest)?;
            if n < 0 {
                return Err(bad("a nil reply where a string was expected".into()));
            }
            if n > BULK_MAX {
                return Err(bad(format!(
                    "a bulk string of {n} bytes (Redis's limit is 512 MB)"
                )));
            }
            let mut v = c.take(n as usize + 2)?;
            v.truncate(n as usize);
            Ok(v)
        }
        b'-' => Err(bad(format!("error reply: {rest}"))),
        _ => Err(bad(format!("unexpected reply `{}{rest}`", t as char))),
    }
}

/// Reads an array of bulk strings.
pub(super) fn strings(c: &mut Conn) -> io::Result<Vec<String>> {
    let (t, rest) = header(c)?;
    if t != b'*' {
        return Err(bad(format!("unexpected reply `{}{rest}`", t as char)));
    }
    let n = int(&rest)?;
    (0..n.max(0))
        .map(|_| bulk(c).map(|b| String::from_utf8_lossy(&b).into_owned()))
        .collect()
}

/// A command of plain arguments.
pub(super) fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    array(&mut out, args.len());
    for a in args {
        arg(&mut out, a);
    }
    out
}

/// An error reply as the replay counts it.
fn error_outcome(e: &str) -> Outcome {
    let kind = if e.starts_with("OOM") {
        return Outcome::Oom;
    } else if e.contains("not an integer") {
        "not_an_integer"
    } else if e.contains("would overflow") {
        "overflow"
    } else if e.contains("invalid expire time") {
        "invalid_ttl"
    } else if e.contains("exceeds maximum allowed size") {
        "value_too_large"
    } else if e.starts_with("WRONGTYPE") {
        "wrong_type"
    } else {
        return Outcome::Error(format!("other: {}", e.chars().take(80).collect::<String>()));
    };
    Outcome::Error(kind.into())
}

/// Appends the RESP request for `op` ([`crate::resp_encode`]) and what its reply will say.
pub(super) fn encode_op(
    op: &Op,
    value: &[u8],
    out: &mut Vec<u8>,
    pending: &mut Vec<Pending>,
) -> Result<(), &'static str> {
    let expect = match encode(op, value, out)? {
        Encoded::Nothing => return Ok(()),
        Encoded::Agg { writes } => Expect::Agg { writes },
        Encoded::String => match op.kind {
            OpKind::Get | OpKind::Gets => Expect::Retrieval,
            OpKind::Set | OpKind::Add | OpKind::Replace | OpKind::Cas => Expect::Store,
            OpKind::Append => Expect::Concat,
            OpKind::Incr | OpKind::Decr => Expect::Arith,
            OpKind::Delete => Expect::Delete,
            OpKind::Touch => Expect::Touch,
            _ => Expect::Multi,
        },
    };
    pending.push(Pending { op: *op, expect });
    Ok(())
}

/// Reads the reply to a request of kind `expect`.
pub(super) fn read_outcome(c: &mut Conn, expect: Expect) -> io::Result<Outcome> {
    let r = reply(c)?;
    Ok(match (expect, r) {
        (_, Reply::Error(e)) => error_outcome(&e),
        (Expect::Retrieval, Reply::Bulk) => Outcome::Hit,
        (Expect::Retrieval, Reply::Nil) => Outcome::Miss,
        (Expect::Multi, Reply::Array) => Outcome::Hit,
        (Expect::Agg { writes }, _) => Outcome::Agg { writes },
        (Expect::Store, Reply::Status(true)) => Outcome::Stored,
        (Expect::Store, Reply::Nil) => Outcome::NotStored,
        (Expect::Concat, Reply::Int(n)) => Outcome::Len(n.max(0) as u64),
        (Expect::Arith, Reply::Int(n)) => Outcome::Len(n.to_string().len() as u64),
        (Expect::Delete, Reply::Int(n)) => {
            if n > 0 {
                Outcome::Deleted
            } else {
                Outcome::NotFound
            }
        }
        (Expect::Touch, Reply::Int(n)) => {
            if n > 0 {
                Outcome::Touched
            } else {
                Outcome::NotFound
            }
        }
        (e, r) => Outcome::Error(format!("other: unexpected reply {r:?} to a {e:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a request for an op of `kind` expects, or why it is not sent.
    fn expect(kind: OpKind, value_len: u32) -> Result<Option<Expect>, &'static str> {
        let op = Op {
            time_us: 0,
            kind,
            key: fraglab_workloads::Key { id: 65, len: 3 },
            value_len,
            ttl: 0,
            fill: false,
            phase: 0,
            member: fraglab_workloads::Key { id: 1, len: 0 },
        };
        let (mut out, mut pending) = (Vec::new(), Vec::new());
        encode_op(&op, &vec![b'A'; value_len as usize], &mut out, &mut pending)?;
        assert_eq!(out.is_empty(), pending.is_empty());
        Ok(pending.first().map(|p| p.expect))
    }

    #[test]
    fn each_request_expects_its_reply() {
        use OpKind::*;
        for (kind, want) in [
            (Get, Expect::Retrieval),
            (Gets, Expect::Retrieval),
            (Scan, Expect::Multi),
            (Set, Expect::Store),
            (Cas, Expect::Store),
            (Append, Expect::Concat),
            (Incr, Expect::Arith),
            (Delete, Expect::Delete),
            (Touch, Expect::Touch),
            (Hget, Expect::Agg { writes: false }),
            (Zadd, Expect::Agg { writes: true }),
        ] {
            assert_eq!(expect(kind, 2), Ok(Some(want)), "{kind}");
        }
        assert_eq!(expect(Scan, 0), Ok(None));
        assert_eq!(expect(Prepend, 2), Err("unsupported"));
    }

    #[test]
    fn error_replies_are_classified() {
        assert_eq!(
            error_outcome("OOM command not allowed when used memory > 'maxmemory'."),
            Outcome::Oom
        );
        assert_eq!(
            error_outcome("ERR value is not an integer or out of range"),
            Outcome::Error("not_an_integer".into())
        );
        assert_eq!(
            error_outcome("ERR increment or decrement would overflow"),
            Outcome::Error("overflow".into())
        );
        assert_eq!(
            error_outcome("ERR invalid expire time in 'set' command"),
            Outcome::Error("invalid_ttl".into())
        );
    }
}
