//! The `resp` trace format: RESP2 command files read as ops (what each command becomes, errors
//! with byte offsets, lenient skipping), and `RespWriter`. The limits and streaming are in
//! `resp_bounds.rs`.

use fraglab_workloads::trace::{RespWriter, TraceFormat, TraceOptions, TraceReader};
use fraglab_workloads::{Key, Op, OpKind};

mod common;
use common::resp::{cmd, cmds, int, key, op, plain, read, reader};
use common::TempDir;

#[test]
fn every_command_becomes_its_ops() {
    use OpKind::*;
    let bytes = cmds(&[
        "GET user:1",
        "set user:1 hello",
        "SET k vv EX 60 NX",
        "SET k vvv xx px 1500",
        "MSET a 1 bb 22",
        "MGET a bb",
        "DEL a",
        "UNLINK bb k",
        "EXPIRE k 30",
        "PERSIST k",
        "INCR n",
        "DECR n",
        "INCRBY n 1",
        "DECRBY n 1",
        "APPEND k xyz",
        "HSET h f1 v1 7 seven",
        "HMSET h f2 v",
        "HGET h f1",
        "HDEL h f1 7",
        "HGETALL h",
        "HINCRBY h ctr 5",
        "SADD s 1 two",
        "SREM s 1",
        "SISMEMBER s two",
        "SPOP s",
        "SCARD s",
        "LPUSH l a b",
        "RPUSH l 3",
        "LPOP l",
        "RPOP l",
        "LRANGE l 0 9",
        "LTRIM l 0 0",
        "ZRANGE z 0 -1",
        "ZADD z 10 alice 0 7",
        "ZREM z alice",
        "ZSCORE z 7",
        "ZINCRBY z 3 alice",
        "ZPOPMIN z",
    ]);
    let mut r = reader(bytes, false);
    let ops: Vec<Op> = r.by_ref().map(Result::unwrap).collect();
    let m = key;
    let want = vec![
        plain(Get, "user:1", 0, 0),
        plain(Set, "user:1", 5, 0),
        plain(Add, "k", 2, 60),
        plain(Replace, "k", 3, 2),
        plain(Set, "a", 1, 0),
        plain(Set, "bb", 2, 0),
        plain(Get, "a", 0, 0),
        plain(Get, "bb", 0, 0),
        plain(Delete, "a", 0, 0),
        plain(Delete, "bb", 0, 0),
        plain(Delete, "k", 0, 0),
        plain(Touch, "k", 0, 30),
        plain(Touch, "k", 0, 0),
        plain(Incr, "n", 0, 0),
        plain(Decr, "n", 0, 0),
        plain(Incr, "n", 0, 0),
        plain(Decr, "n", 0, 0),
        plain(Append, "k", 3, 0),
        op(Hset, "h", m("f1"), 2, 0),
        op(Hset, "h", int(7), 5, 0),
        op(Hset, "h", m("f2"), 1, 0),
        op(Hget, "h", m("f1"), 0, 0),
        op(Hdel, "h", m("f1"), 0, 0),
        op(Hdel, "h", int(7), 0, 0),
        plain(Hgetall, "h", 0, 0),
        op(Hincrby, "h", m("ctr"), 5, 0),
        op(Sadd, "s", int(1), 0, 0),
        op(Sadd, "s", m("two"), 0, 0),
        op(Srem, "s", int(1), 0, 0),
        op(Sismember, "s", m("two"), 0, 0),
        plain(Spop, "s", 0, 0),
        plain(Scard, "s", 0, 0),
        op(Lpush, "l", m("a"), 0, 0),
        op(Lpush, "l", m("b"), 0, 0),
        op(Rpush, "l", int(3), 0, 0),
        plain(Lpop, "l", 0, 0),
        plain(Rpop, "l", 0, 0),
        plain(Lrange, "l", 10, 0),
        plain(Ltrim, "l", 1, 0),
        plain(Zrange, "z", 0, 0),
        op(Zadd, "z", m("alice"), 10, 0),
        op(Zadd, "z", int(7), 0, 0),
        op(Zrem, "z", m("alice"), 0, 0),
        op(Zscore, "z", int(7), 0, 0),
        op(Zincrby, "z", m("alice"), 3, 0),
        plain(Zpopmin, "z", 0, 0),
    ];
    assert_eq!(ops.len(), want.len());
    for (i, (got, want)) in ops.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "op {i}");
    }
    // A record is a command.
    assert_eq!(r.records(), 38);
    assert_eq!(r.skipped(), 0);
    let (read, total) = r.input_progress();
    assert_eq!((read, total), (read, None));
}

#[test]
fn elements_are_integers_only_in_canonical_form() {
    let cases: [(&str, Key); 8] = [
        ("0", int(0)),
        ("42", int(42)),
        ("18446744073709551615", int(u64::MAX)),
        ("18446744073709551616", key("18446744073709551616")),
        ("042", key("042")),
        ("-1", key("-1")),
        ("+1", key("+1")),
        (" 1", key(" 1")),
    ];
    for (m, want) in cases {
        let ops = read(cmd(&[b"SADD", b"s", m.as_bytes()])).unwrap();
        assert_eq!(ops[0].member, want, "{m}");
    }
    let longest = "m".repeat(250);
    let ops = read(cmd(&[b"SADD", b"s", longest.as_bytes()])).unwrap();
    assert_eq!(ops[0].member.len, 250);
}

/// The error of a one-command file, which starts at byte `at`.
fn error_of(bytes: Vec<u8>) -> String {
    read(bytes).unwrap_err().to_string()
}

#[test]
fn bad_commands_are_errors_naming_the_command_and_its_byte() {
    let first = cmds(&["SET a b"]);
    let at = first.len();
    let with = |line: &[&[u8]]| {
        let mut b = first.clone();
        b.extend(cmd(line));
        error_of(b)
    };
    let cases: Vec<(Vec<&[u8]>, String)> = vec![
        (
            vec![b"setrange", b"k", b"0", b"x"],
            format!("t.resp: record 2: unsupported command SETRANGE at byte {at}"),
        ),
        (
            vec![b"PING"],
            format!("unsupported command PING at byte {at}"),
        ),
        (
            vec![b"MULTI"],
            format!("unsupported command MULTI at byte {at}"),
        ),
        (
            vec![b"LRANGE", b"l", b"1", b"5"],
            format!("LRANGE at byte {at}: start `1` (fraglab reads only 0)"),
        ),
        (
            vec![b"LRANGE", b"l", b"0", b"-2"],
            format!("LRANGE at byte {at}: stop `-2` is not -1"),
        ),
        (
            vec![b"ZRANGE", b"z", b"0", b"5", b"WITHSCORES"],
            format!("unsupported form of ZRANGE at byte {at} (4 arguments): fraglab reads `ZRANGE key 0 stop`"),
        ),
        (
            vec![b"ZADD", b"z", b"1.5", b"m"],
            format!("ZADD at byte {at}: score `1.5` is not a non-negative integer"),
        ),
        (
            vec![b"ZADD", b"z", b"NX", b"1", b"m"],
            format!("unsupported form of ZADD at byte {at} (4 arguments)"),
        ),
        (
            vec![b"ZADD", b"z", b"-3", b"m"],
            format!("ZADD at byte {at}: score `-3`"),
        ),
        (
            vec![b"SET", b"k", b"v", b"KEEPTTL"],
            format!("SET at byte {at}: SET option `KEEPTTL` (fraglab reads EX, PX, NX and XX)"),
        ),
        (
            vec![b"SET", b"k", b"v", b"EX"],
            format!("SET at byte {at}: EX without a time"),
        ),
        (
            vec![b"SET", b"k", b"v", b"EX", b"0"],
            format!("SET at byte {at}: EX time `0` is not a whole number of seconds"),
        ),
        (
            vec![b"SET", b"k", b"v", b"NX", b"XX"],
            format!("SET at byte {at}: a condition (NX or XX) given twice"),
        ),
        (
            vec![b"EXPIRE", b"k", b"0"],
            format!("EXPIRE at byte {at}: EXPIRE time `0`"),
        ),
        (
            vec![b"INCRBY", b"k", b"5"],
            format!("INCRBY at byte {at}: an increment of `5`: only 1 is an incr op"),
        ),
        (
            vec![b"GET", b""],
            format!("GET at byte {at}: an empty key"),
        ),
        (
            vec![b"SADD", b"s", b""],
            format!("SADD at byte {at}: an empty element"),
        ),
        (vec![b"GET"], format!("unsupported form of GET at byte {at} (0 arguments)")),
        (vec![b""], format!("an empty command name at byte {at}")),
    ];
    for (line, want) in cases {
        let got = with(&line);
        assert!(got.contains(&want), "{line:?}: {got}");
    }
    let long_member = vec![b'm'; 251];
    let got = with(&[b"SADD", b"s", &long_member]);
    assert!(
        got.contains("an element of 251 bytes (the longest fraglab replays is 250)"),
        "{got}"
    );
    let long_key = vec![b'k'; 65_536];
    let got = with(&[b"GET", &long_key]);
    assert!(
        got.contains("a key of 65536 bytes (the longest fraglab replays is 65535)"),
        "{got}"
    );
    let long_name = vec![b'X'; 100];
    let got = with(&[&long_name]);
    assert!(
        got.contains("unsupported command XXXXXXXXXXXXXXXXXXXXXXXX... at byte"),
        "{got}"
    );
    let got = error_of(b"*0\r\n".to_vec());
    assert!(got.contains("an empty command at byte 0"), "{got}");
}

#[test]
fn malformed_resp_ends_the_trace_even_when_lenient() {
    let ok = cmds(&["GET a"]);
    let n = ok.len();
    let cases: [(&[u8], String); 8] = [
        (
            b"GET a\r\n",
            format!("malformed RESP at byte {n}: expected an array (`*`), found `G`"),
        ),
        (
            b"*1\r\n:1\r\n",
            format!(
                "malformed RESP at byte {}: expected a bulk string (`$`), found `:`",
                n + 4
            ),
        ),
        (
            b"*x\r\n",
            format!(
                "malformed RESP at byte {}: expected a length (a decimal digit), found `x`",
                n + 1
            ),
        ),
        (
            b"*-1\r\n",
            format!("malformed RESP at byte {}: expected a length", n + 1),
        ),
        (
            b"*01\r\n",
            format!(
                "malformed RESP at byte {}: expected CRLF after a length of 0, found `1`",
                n + 2
            ),
        ),
        (
            b"*1\n",
            format!(
                "malformed RESP at byte {}: expected a digit or CRLF, found `\\n`",
                n + 2
            ),
        ),
        (
            b"*1\r\n$3\r\nGETX\r\n",
            format!(
                "malformed RESP at byte {}: expected CRLF after the bulk string's bytes, found `X`",
                n + 11
            ),
        ),
        (
            b"*1\r\n$3\r\nGET\rx",
            format!(
                "malformed RESP at byte {}: expected `\\n` after `\\r`, found `x`",
                n + 12
            ),
        ),
    ];
    for (bad, want) in cases {
        for lenient in [false, true] {
            let mut bytes = ok.clone();
            bytes.extend_from_slice(bad);
            bytes.extend(cmds(&["GET after"]));
            let mut r = reader(bytes, lenient);
            assert_eq!(r.next().unwrap().unwrap().key, key("a"));
            let err = r.next().unwrap().unwrap_err().to_string();
            assert!(err.contains(&want), "{bad:?}: {err}");
            assert!(err.starts_with("t.resp: record 2: "), "{err}");
            assert!(r.next().is_none(), "nothing after malformed framing");
        }
    }
}

#[test]
fn a_truncated_command_is_an_error_or_the_last_skip() {
    let mut bytes = cmds(&["SET a b", "MSET c d e f"]);
    let whole = bytes.len();
    bytes.truncate(whole - 3);
    let start = cmds(&["SET a b"]).len();
    let err = read(bytes.clone()).unwrap_err();
    assert_eq!(err.record, Some(2));
    assert_eq!(
        err.message,
        format!(
            "the command at byte {start} is cut short: the input ends at byte {}",
            whole - 3
        )
    );
    // Lenient: the whole commands before it, then one skip; none of the cut command's ops.
    let mut r = reader(bytes, true);
    let ops: Vec<Op> = r.by_ref().map(Result::unwrap).collect();
    assert_eq!(ops, [plain(OpKind::Set, "a", 1, 0)]);
    assert_eq!((r.records(), r.skipped()), (2, 1));
}

#[test]
fn lenient_reading_skips_and_counts_bad_commands() {
    let bytes = cmds(&[
        "SET a 1",
        "PING",
        "MSET b 2 c 3",
        "ZADD z 1.5 m 2 n",
        "SELECT 0",
        "DEL a b",
        "EXPIRE a -1",
        "CONFIG SET maxmemory 1",
        "GET a",
    ]);
    let mut r = reader(bytes, true);
    let kinds: Vec<(OpKind, Key)> = r
        .by_ref()
        .map(|o| o.unwrap())
        .map(|o| (o.kind, o.key))
        .collect();
    assert_eq!(
        kinds,
        [
            (OpKind::Set, key("a")),
            (OpKind::Set, key("b")),
            (OpKind::Set, key("c")),
            (OpKind::Delete, key("a")),
            (OpKind::Delete, key("b")),
            (OpKind::Get, key("a")),
        ]
    );
    assert_eq!((r.records(), r.skipped()), (9, 5));
    let reasons = r.skipped_reasons();
    assert_eq!(reasons.len(), 5);
    let ping = format!(
        "t.resp: record 2: unsupported command PING at byte {}",
        cmds(&["SET a 1"]).len()
    );
    assert_eq!(reasons[0], ping);
    assert!(
        reasons[1].contains("record 4: ZADD at byte"),
        "{}",
        reasons[1]
    );
    assert!(reasons[1].contains("score `1.5`"), "{}", reasons[1]);
    // A bad pair drops the whole command: neither of ZADD's pairs was read.
    assert!(
        reasons[4].contains("unsupported command CONFIG"),
        "{}",
        reasons[4]
    );
}

#[test]
fn resp_files_are_detected_written_and_read_compressed() {
    let dir = TempDir::new("resp");
    let bytes = cmds(&["SET a hello EX 5", "SADD s 12 x", "GET a"]);
    for name in ["cmds.resp", "cmds.resp.zst"] {
        let path = dir.join(name);
        let mut w = RespWriter::create(&path).unwrap();
        w.write_command(&cmds(&["SET a hello EX 5"])).unwrap();
        w.write_command(&cmds(&["SADD s 12 x", "GET a"])).unwrap();
        assert!(!path.exists(), "appears only when complete");
        assert_eq!(w.finish().unwrap(), 2);
        if name.ends_with(".zst") {
            let raw = zstd::decode_all(std::fs::File::open(&path).unwrap()).unwrap();
            assert_eq!(raw, bytes);
        } else {
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
        assert_eq!(TraceFormat::detect(&path).unwrap(), TraceFormat::Resp);
        let mut r = TraceReader::open(&path, &TraceOptions::default()).unwrap();
        let ops: Vec<Op> = r.by_ref().map(Result::unwrap).collect();
        assert_eq!(
            ops,
            [
                plain(OpKind::Set, "a", 5, 5),
                op(OpKind::Sadd, "s", int(12), 0, 0),
                op(OpKind::Sadd, "s", key("x"), 0, 0),
                plain(OpKind::Get, "a", 0, 0),
            ]
        );
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(r.input_progress(), (size, Some(size)));
        // A compressed stream without a name is told by its magic number.
        let opts = TraceOptions {
            format: Some(TraceFormat::Resp),
            ..TraceOptions::default()
        };
        let file = std::fs::File::open(&path).unwrap();
        let again = TraceReader::from_reader("-", file, &opts).unwrap();
        assert_eq!(again.map(Result::unwrap).collect::<Vec<_>>(), ops);
    }
    // A writer dropped unfinished leaves nothing.
    let path = dir.join("dropped.resp");
    let mut w = RespWriter::create(&path).unwrap();
    w.write_command(&bytes).unwrap();
    drop(w);
    assert_eq!(dir.listing(), ["cmds.resp", "cmds.resp.zst"]);
}
