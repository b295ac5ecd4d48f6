//! RESP, Redis's protocol: ops encoded as commands, and replies read as the replay counts them
//! (the op-to-command table is in the module docs of [`super`]).

use std::io::{self, Write as _};

use fraglab_workloads::{Key, Op, OpKind};

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

/// Appends a RESP array header.
fn array(out: &mut Vec<u8>, n: usize) {
    let _ = write!(out, "*{n}\r\n");
}

/// Appends a bulk string.
fn arg(out: &mut Vec<u8>, b: &[u8]) {
    let _ = write!(out, "${}\r\n", b.len());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// Appends a number as a bulk string, formatted on the stack: this is on the replay's path.
fn num_arg(out: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    arg(out, &digits[i..]);
}

/// Appends a key as a bulk string.
fn key_arg(out: &mut Vec<u8>, key: Key) {
    let _ = write!(out, "${}\r\n", key.len);
    key.write_to(out);
    out.extend_from_slice(b"\r\n");
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

/// Appends the RESP requests for `op` (see the module docs of `peer`).
pub(super) fn encode_op(
    op: &Op,
    value: &[u8],
    out: &mut Vec<u8>,
    pending: &mut Vec<Pending>,
) -> Result<(), &'static str> {
    let expect = match op.kind {
        OpKind::Get | OpKind::Gets => {
            array(out, 2);
            arg(out, b"GET");
            key_arg(out, op.key);
            Expect::Retrieval
        }
        OpKind::Set | OpKind::Add | OpKind::Replace | OpKind::Cas => {
            let cond: Option<&[u8]> = match op.kind {
                OpKind::Set => None,
                OpKind::Add => Some(b"NX"),
                _ => Some(b"XX"),
            };
            array(
                out,
                3 + if op.ttl > 0 { 2 } else { 0 } + usize::from(cond.is_some()),
            );
            arg(out, b"SET");
            key_arg(out, op.key);
            arg(out, value);
            if op.ttl > 0 {
                arg(out, b"EX");
                num_arg(out, op.ttl);
            }
            if let Some(c) = cond {
                arg(out, c);
            }
            Expect::Store
        }
        OpKind::Append => {
            array(out, 3);
            arg(out, b"APPEND");
            key_arg(out, op.key);
            arg(out, value);
            Expect::Concat
        }
        OpKind::Prepend => return Err("unsupported"),
        OpKind::Incr | OpKind::Decr => {
            array(out, 3);
            arg(
                out,
                if op.kind == OpKind::Incr {
                    b"INCRBY"
                } else {
                    b"DECRBY"
                },
            );
            key_arg(out, op.key);
            arg(out, b"1");
            Expect::Arith
        }
        OpKind::Delete => {
            array(out, 2);
            arg(out, b"DEL");
            key_arg(out, op.key);
            Expect::Delete
        }
        OpKind::Touch => {
            if op.ttl > 0 {
                array(out, 3);
                arg(out, b"EXPIRE");
                key_arg(out, op.key);
                num_arg(out, op.ttl);
            } else {
                array(out, 2);
                arg(out, b"PERSIST");
                key_arg(out, op.key);
            }
            Expect::Touch
        }
        OpKind::Scan => {
            if op.value_len == 0 {
                return Ok(());
            }
            array(out, 1 + op.value_len as usize);
            arg(out, b"MGET");
            for i in 0..u64::from(op.value_len) {
                key_arg(
                    out,
                    Key {
                        id: op.key.id.wrapping_add(i),
                        len: op.key.len,
                    },
                );
            }
            Expect::Multi
        }
        _ => {
            let mut member = Vec::new();
            crate::agg_ops::member_bytes(op, &mut member);
            let mut key = Vec::with_capacity(usize::from(op.key.len));
            op.key.write_to(&mut key);
            let cmd = crate::agg_ops::agg_cmd(op, &member, value).expect("an aggregate op");
            let args = cmd.to_args(&key);
            array(out, args.len());
            for a in &args {
                arg(out, a);
            }
            Expect::Agg {
                writes: cmd.writes(),
            }
        }
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

    #[test]
    fn numbers_are_bulk_strings() {
        for (n, want) in [
            (0u32, "$1\r\n0\r\n"),
            (3600, "$4\r\n3600\r\n"),
            (u32::MAX, "$10\r\n4294967295\r\n"),
        ] {
            let mut out = Vec::new();
            num_arg(&mut out, n);
            assert_eq!(out, want.as_bytes());
        }
    }

    fn encode(kind: OpKind, ttl: u32, value: &[u8]) -> Result<String, &'static str> {
        let op = Op {
            time_us: 0,
            kind,
            key: Key { id: 65, len: 3 },
            value_len: value.len() as u32,
            ttl,
            fill: false,
            phase: 0,
            member: Key::NONE,
        };
        let mut out = Vec::new();
        let mut pending = Vec::new();
        encode_op(&op, value, &mut out, &mut pending)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn ops_become_resp_commands() {
        assert_eq!(
            encode(OpKind::Set, 0, b"AB").unwrap(),
            "*3\r\n$3\r\nSET\r\n$3\r\n11.\r\n$2\r\nAB\r\n"
        );
        assert_eq!(
            encode(OpKind::Add, 30, b"A").unwrap(),
            "*6\r\n$3\r\nSET\r\n$3\r\n11.\r\n$1\r\nA\r\n$2\r\nEX\r\n$2\r\n30\r\n$2\r\nNX\r\n"
        );
        assert!(encode(OpKind::Cas, 0, b"A")
            .unwrap()
            .ends_with("$2\r\nXX\r\n"));
        assert!(encode(OpKind::Incr, 0, b"").unwrap().contains("INCRBY"));
        assert!(encode(OpKind::Touch, 0, b"").unwrap().contains("PERSIST"));
        assert!(encode(OpKind::Touch, 5, b"").unwrap().contains("EXPIRE"));
        assert_eq!(encode(OpKind::Prepend, 0, b"A"), Err("unsupported"));
        let scan = encode(OpKind::Scan, 0, b"ABC").unwrap();
        assert!(scan.starts_with("*4\r\n$4\r\nMGET\r\n"), "{scan}");
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
