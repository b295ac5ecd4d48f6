//! Ops as RESP commands: the one mapping from an [`Op`] to the command Redis runs for it,
//! used by the RESP peer (`fraglab run --target redis`) and by `fraglab save FILE.resp`, so a
//! saved file holds exactly what the peer sends (the table is in the module docs of
//! [`crate::peer`]; aggregates are [`crate::agg_ops`]'s commands, as
//! [`fraglab_engine::agg::AggCmd::to_args`] spells them).

use std::io::Write as _;

use fraglab_workloads::{Key, Op, OpKind};

/// What [`encode`] appended for an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoded {
    /// Nothing: the op sends no command (a scan of no keys).
    Nothing,
    /// A command on a string key.
    String,
    /// An aggregate command; `writes` when it may change the aggregate.
    Agg {
        /// Whether the command may change the aggregate.
        writes: bool,
    },
}

/// Why an op has no RESP command: Redis has no PREPEND.
pub const UNSUPPORTED: &str = "unsupported";

/// Appends a RESP array header.
pub fn array(out: &mut Vec<u8>, n: usize) {
    let _ = write!(out, "*{n}\r\n");
}

/// Appends a bulk string.
pub fn arg(out: &mut Vec<u8>, b: &[u8]) {
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

/// Appends the RESP command for `op` to `out`; `value` is the op's value bytes (for the ops
/// that store a value, and HSET's). Gets is a GET, cas a `SET ... XX`, touch an EXPIRE or (for
/// a TTL of 0) a PERSIST, incr and decr `INCRBY`/`DECRBY` by 1, a scan an MGET of its keys
/// (nothing for a scan of none). Prepend is [`UNSUPPORTED`]: Redis has no PREPEND.
pub fn encode(op: &Op, value: &[u8], out: &mut Vec<u8>) -> Result<Encoded, &'static str> {
    match op.kind {
        OpKind::Get | OpKind::Gets => {
            array(out, 2);
            arg(out, b"GET");
            key_arg(out, op.key);
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
        }
        OpKind::Append => {
            array(out, 3);
            arg(out, b"APPEND");
            key_arg(out, op.key);
            arg(out, value);
        }
        OpKind::Prepend => return Err(UNSUPPORTED),
        OpKind::Incr | OpKind::Decr => {
            array(out, 3);
            let name: &[u8] = if op.kind == OpKind::Incr {
                b"INCRBY"
            } else {
                b"DECRBY"
            };
            arg(out, name);
            key_arg(out, op.key);
            arg(out, b"1");
        }
        OpKind::Delete => {
            array(out, 2);
            arg(out, b"DEL");
            key_arg(out, op.key);
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
        }
        OpKind::Scan => {
            if op.value_len == 0 {
                return Ok(Encoded::Nothing);
            }
            array(out, 1 + op.value_len as usize);
            arg(out, b"MGET");
            for i in 0..u64::from(op.value_len) {
                let key = Key {
                    id: op.key.id.wrapping_add(i),
                    len: op.key.len,
                };
                key_arg(out, key);
            }
        }
        _ => {
            let mut member = Vec::new();
            crate::agg_ops::member_bytes(op, &mut member);
            let mut key = Vec::with_capacity(usize::from(op.key.len));
            op.key.write_to(&mut key);
            let Some(cmd) = crate::agg_ops::agg_cmd(op, &member, value) else {
                return Err(UNSUPPORTED);
            };
            let args = cmd.to_args(&key);
            array(out, args.len());
            for a in &args {
                arg(out, a);
            }
            return Ok(Encoded::Agg {
                writes: cmd.writes(),
            });
        }
    }
    Ok(Encoded::String)
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

    fn op(kind: OpKind, ttl: u32, value_len: u32, member: Key) -> Op {
        Op {
            time_us: 0,
            kind,
            key: Key { id: 65, len: 3 },
            value_len,
            ttl,
            fill: false,
            phase: 0,
            member,
        }
    }

    fn text(kind: OpKind, ttl: u32, value: &[u8]) -> Result<String, &'static str> {
        let mut out = Vec::new();
        encode(
            &op(kind, ttl, value.len() as u32, Key::NONE),
            value,
            &mut out,
        )?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn ops_become_resp_commands() {
        assert_eq!(
            text(OpKind::Set, 0, b"AB").unwrap(),
            "*3\r\n$3\r\nSET\r\n$3\r\n11.\r\n$2\r\nAB\r\n"
        );
        assert_eq!(
            text(OpKind::Add, 30, b"A").unwrap(),
            "*6\r\n$3\r\nSET\r\n$3\r\n11.\r\n$1\r\nA\r\n$2\r\nEX\r\n$2\r\n30\r\n$2\r\nNX\r\n"
        );
        assert!(text(OpKind::Cas, 0, b"A")
            .unwrap()
            .ends_with("$2\r\nXX\r\n"));
        assert!(text(OpKind::Incr, 0, b"").unwrap().contains("INCRBY"));
        assert!(text(OpKind::Touch, 0, b"").unwrap().contains("PERSIST"));
        assert!(text(OpKind::Touch, 5, b"").unwrap().contains("EXPIRE"));
        assert_eq!(text(OpKind::Prepend, 0, b"A"), Err(UNSUPPORTED));
        let scan = text(OpKind::Scan, 0, b"ABC").unwrap();
        assert!(scan.starts_with("*4\r\n$4\r\nMGET\r\n"), "{scan}");
        let mut out = Vec::new();
        let none = op(OpKind::Scan, 0, 0, Key::NONE);
        assert_eq!(encode(&none, b"", &mut out), Ok(Encoded::Nothing));
        assert!(out.is_empty());
    }

    #[test]
    fn aggregates_are_their_engine_commands() {
        let mut out = Vec::new();
        let zadd = op(OpKind::Zadd, 0, 7, Key { id: 12, len: 0 });
        assert_eq!(
            encode(&zadd, b"", &mut out),
            Ok(Encoded::Agg { writes: true })
        );
        assert_eq!(
            out,
            b"*4\r\n$4\r\nZADD\r\n$3\r\n11.\r\n$1\r\n7\r\n$2\r\n12\r\n"
        );
        out.clear();
        let lrange = op(OpKind::Lrange, 0, 0, Key::NONE);
        assert_eq!(
            encode(&lrange, b"", &mut out),
            Ok(Encoded::Agg { writes: false })
        );
        assert_eq!(
            out,
            b"*4\r\n$6\r\nLRANGE\r\n$3\r\n11.\r\n$1\r\n0\r\n$2\r\n-1\r\n"
        );
    }
}
