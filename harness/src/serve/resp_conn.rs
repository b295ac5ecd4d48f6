//! RESP connection commands: PING, ECHO, QUIT, HELLO (RESP2/RESP3), SELECT, CLIENT, COMMAND,
//! as Redis 7.0's `server.c` and `networking.c` answer them.

use fraglab_allocators::Allocator;
use fraglab_engine::Layout;

use super::resp::{int_arg, is, unknown_subcommand, Conn, Flow, Out};
use super::resp_parse::string2ll;
use super::Ctx;

pub fn ping<A: Allocator, L: Layout>(
    _: &mut Conn,
    _: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    match args.len() {
        1 => out.simple("PONG"),
        2 => out.bulk(args[1]),
        _ => out.error("wrong number of arguments for 'ping' command"),
    }
    Flow::Next
}

pub fn echo<A: Allocator, L: Layout>(
    _: &mut Conn,
    _: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    out.bulk(args[1]);
    Flow::Next
}

pub fn quit<A: Allocator, L: Layout>(
    _: &mut Conn,
    _: &mut Ctx<A, L>,
    _: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    out.ok();
    Flow::Close
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]` (`helloCommand`).
pub fn hello<A: Allocator, L: Layout>(
    conn: &mut Conn,
    _: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let mut ver = if conn.resp3 { 3 } else { 2 };
    if args.len() >= 2 {
        match string2ll(args[1]) {
            None => {
                out.error("Protocol version is not an integer or out of range");
                return Flow::Next;
            }
            Some(v) if v != 2 && v != 3 => {
                out.error_raw("NOPROTO unsupported protocol version");
                return Flow::Next;
            }
            Some(v) => ver = v,
        }
    }
    let mut name = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(args[i], "auth") && more >= 2 {
            i += 3;
        } else if is(args[i], "setname") && more >= 1 {
            name = Some(args[i + 1].to_vec());
            i += 2;
        } else {
            let opt = String::from_utf8_lossy(super::resp::cstr(args[i])).into_owned();
            out.error(&format!("Syntax error in HELLO option '{opt}'"));
            return Flow::Next;
        }
    }
    if name.is_some() {
        conn.name = name;
    }
    conn.resp3 = ver == 3;
    out.resp3 = conn.resp3;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(b"7.0.15");
    out.bulk(b"proto");
    out.int(ver);
    out.bulk(b"id");
    out.int(conn.id() as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Flow::Next
}

pub fn select<A: Allocator, L: Layout>(
    _: &mut Conn,
    _: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    match int_arg(args[1], out) {
        Some(0) => out.ok(),
        Some(_) => out.error("DB index is out of range"),
        None => {}
    }
    Flow::Next
}

/// CLIENT SETNAME / GETNAME / ID / INFO.
pub fn client<A: Allocator, L: Layout>(
    conn: &mut Conn,
    _: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    let sub = args[1];
    let arity = |n: usize, name: &str, out: &mut Out<'_>| {
        if args.len() != n {
            out.error(&format!(
                "wrong number of arguments for 'client|{name}' command"
            ));
            return false;
        }
        true
    };
    if is(sub, "setname") {
        if arity(3, "setname", out) {
            if args[2].iter().any(|&c| c <= b' ' || c > b'~') {
                out.error("Client names cannot contain spaces, newlines or special characters.");
            } else {
                conn.name = (!args[2].is_empty()).then(|| args[2].to_vec());
                out.ok();
            }
        }
    } else if is(sub, "getname") {
        if arity(2, "getname", out) {
            match &conn.name {
                Some(n) => out.bulk(n),
                None => out.null(),
            }
        }
    } else if is(sub, "id") {
        if arity(2, "id", out) {
            out.int(conn.id() as i64);
        }
    } else if is(sub, "info") {
        if arity(2, "info", out) {
            let name = conn.name.clone().unwrap_or_default();
            let mut line = format!("id={} name=", conn.id()).into_bytes();
            line.extend_from_slice(&name);
            line.extend_from_slice(
                format!(" db=0 resp={}\n", if conn.resp3 { 3 } else { 2 }).as_bytes(),
            );
            out.verbatim(&line);
        }
    } else {
        unknown_subcommand(args, out);
    }
    Flow::Next
}

/// COMMAND: the command table is not served (`COMMAND DOCS`, which `redis-cli` asks for at
/// start, gets an empty answer).
pub fn command<A: Allocator, L: Layout>(
    _: &mut Conn,
    _: &mut Ctx<A, L>,
    args: &[&[u8]],
    out: &mut Out<'_>,
) -> Flow {
    match args.get(1) {
        None => out.array(0),
        Some(s) if is(s, "docs") => out.map(0),
        Some(s) if is(s, "count") => out.int(0),
        Some(s) if is(s, "info") || is(s, "list") => out.array(0),
        Some(_) => unknown_subcommand(args, out),
    }
    Flow::Next
}
