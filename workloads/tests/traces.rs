//! Trace readers and writers, against the real oracleGeneral sample in the shared data and
//! against handcrafted files of every format.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

mod common;

use common::{real_trace, TempDir};
use fraglab_workloads::rng::fnv1a64_bytes;
use fraglab_workloads::trace::*;
use fraglab_workloads::{Key, Op, OpKind};

const REAL_REQUESTS: usize = 113_872;
const REAL_OBJECTS: usize = 48_974;
/// The real trace's first and last timestamps, in seconds.
const REAL_FIRST_TIME: u64 = 5_633_898;
const REAL_LAST_TIME: u64 = 5_641_098;

fn opts(format: Option<TraceFormat>, lenient: bool) -> TraceOptions {
    TraceOptions {
        format,
        lenient,
        ..TraceOptions::default()
    }
}

/// Reads a whole trace, stopping at the first error.
fn read_all(path: &Path, opts: &TraceOptions) -> Result<Vec<Op>, TraceError> {
    TraceReader::open(path, opts)?.collect()
}

/// Reads a trace up to its first error: the ops before it, the error, and the reader, to check
/// that it yields nothing more.
fn read_until_error(path: &Path, opts: &TraceOptions) -> (Vec<Op>, TraceError, TraceReader) {
    let mut reader = TraceReader::open(path, opts).unwrap();
    let mut ops = Vec::new();
    loop {
        match reader.next() {
            Some(Ok(op)) => ops.push(op),
            Some(Err(e)) => return (ops, e, reader),
            None => panic!("{}: no error after {} ops", path.display(), ops.len()),
        }
    }
}

fn compress(from: &Path, to: &Path) {
    let data = fs::read(from).unwrap();
    fs::write(to, zstd::stream::encode_all(&data[..], 3).unwrap()).unwrap();
}

/// The raw `(time, obj_id, obj_size, next_access_vtime)` records of an oracleGeneral file.
fn raw_records(bytes: &[u8]) -> Vec<(u32, u64, u32, i64)> {
    assert_eq!(bytes.len() % 24, 0);
    bytes
        .chunks_exact(24)
        .map(|r| {
            (
                u32::from_le_bytes(r[0..4].try_into().unwrap()),
                u64::from_le_bytes(r[4..12].try_into().unwrap()),
                u32::from_le_bytes(r[12..16].try_into().unwrap()),
                i64::from_le_bytes(r[16..24].try_into().unwrap()),
            )
        })
        .collect()
}

/// What `next_access_vtime` should be for each request to `ids`: the 1-based position of the
/// next request to the same id, or -1.
fn expected_vtimes(ids: &[u64]) -> Vec<i64> {
    let mut next: HashMap<u64, i64> = HashMap::new();
    let mut out = vec![-1; ids.len()];
    for (i, id) in ids.iter().enumerate().rev() {
        out[i] = next.insert(*id, i as i64 + 1).unwrap_or(-1);
    }
    out
}

fn op(time_us: u64, kind: OpKind, id: u64, len: u16, value_len: u32) -> Op {
    Op {
        time_us,
        kind,
        key: Key { id, len },
        value_len,
        ttl: 0,
        fill: false,
        phase: 0,
        member: Key::NONE,
    }
}

/// Ops exercising every field of fraglab CSV: every kind, TTLs, fill, phases, key lengths and
/// the extremes of each field.
fn handcrafted_ops() -> Vec<Op> {
    let mut ops = Vec::new();
    let lens = [1u16, 7, 16, 250, 1000, u16::MAX];
    for (i, kind) in OpKind::ALL.into_iter().enumerate() {
        let i = i as u64;
        ops.push(Op {
            time_us: i * 1_234_567,
            kind,
            key: Key {
                id: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                len: lens[i as usize % lens.len()],
            },
            value_len: (i as u32) * 1000,
            ttl: if i % 3 == 0 { 0 } else { 60 * i as u32 },
            fill: i % 2 == 0,
            phase: (i / 4) as u16,
            // Elements of every kind that names one: string ones of a few lengths, integer
            // ones (length 0), the largest id.
            member: if kind.has_member() {
                Key {
                    id: if i % 5 == 0 { u64::MAX } else { i * 77 },
                    len: [0u16, 3, 250][i as usize % 3],
                }
            } else {
                Key::NONE
            },
        });
    }
    ops.push(Op {
        time_us: u64::MAX,
        kind: OpKind::Set,
        key: Key {
            id: u64::MAX,
            len: u16::MAX,
        },
        value_len: fraglab_workloads::gen::VALUE_MAX, // the largest value a reader accepts
        ttl: u32::MAX,
        fill: true,
        phase: u16::MAX,
        member: Key::NONE,
    });
    ops.push(Op {
        time_us: 0,
        kind: OpKind::Get,
        key: Key { id: 0, len: 1 },
        value_len: 0,
        ttl: 0,
        fill: false,
        phase: 0,
        member: Key::NONE,
    });
    ops
}

// ---- The real oracleGeneral trace ----

#[test]
fn real_oracle_general_trace_reads_every_request() {
    let path = real_trace();
    let mut reader = TraceReader::open(&path, &TraceOptions::default()).unwrap();
    assert_eq!(reader.format(), TraceFormat::OracleGeneral);
    assert_eq!(reader.path(), path);
    let ops: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(ops.len(), REAL_REQUESTS);
    assert_eq!(reader.records(), REAL_REQUESTS as u64);
    assert_eq!(reader.skipped(), 0);
    assert_eq!(reader.time_origin(), Some(REAL_FIRST_TIME));
    let ids: HashSet<u64> = ops.iter().map(|op| op.key.id).collect();
    assert_eq!(ids.len(), REAL_OBJECTS);
    assert_eq!(ops.iter().map(|op| op.value_len).min(), Some(512));
    assert_eq!(ops.iter().map(|op| op.value_len).max(), Some(69_632));
    assert!(ops.iter().all(|op| op.kind == OpKind::Get
        && op.fill
        && op.ttl == 0
        && op.phase == 0
        && op.key.len == 16));
    assert_eq!(ops[0].time_us, 0);
    assert_eq!(
        ops.last().unwrap().time_us,
        (REAL_LAST_TIME - REAL_FIRST_TIME) * 1_000_000
    );
    assert!(ops.windows(2).all(|w| w[0].time_us <= w[1].time_us));
}

#[test]
fn real_trace_next_access_vtime_is_the_next_requests_one_based_position() {
    let records = raw_records(&fs::read(real_trace()).unwrap());
    let ids: Vec<u64> = records.iter().map(|r| r.1).collect();
    let vtimes: Vec<i64> = records.iter().map(|r| r.3).collect();
    assert_eq!(vtimes, expected_vtimes(&ids));
    // Spelled out for a few records: the record at 0-based index `vtime - 1` has the same
    // object, and none in between does.
    for (i, &(_, id, _, vtime)) in records.iter().enumerate().take(200) {
        if vtime == -1 {
            assert!(records[i + 1..].iter().all(|r| r.1 != id));
            continue;
        }
        let next = vtime as usize - 1;
        assert_eq!(records[next].1, id, "record {i}");
        assert!(records[i + 1..next].iter().all(|r| r.1 != id), "record {i}");
    }
    assert_eq!(vtimes.iter().filter(|&&v| v == -1).count(), REAL_OBJECTS);
}

#[test]
fn key_len_option_sets_oracle_general_key_lengths() {
    let o = TraceOptions {
        key_len: 40,
        ..TraceOptions::default()
    };
    let mut reader = TraceReader::open(&real_trace(), &o).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().key.len, 40);
    let zero = TraceOptions {
        key_len: 0,
        ..TraceOptions::default()
    };
    let err = TraceReader::open(&real_trace(), &zero).unwrap_err();
    assert!(err.message.contains("key length"), "{err}");
}

#[test]
fn truncated_oracle_general_reports_its_last_record() {
    let dir = TempDir::new("truncated");
    let path = dir.join("cut.oracleGeneral.bin");
    let bytes = fs::read(real_trace()).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 11]).unwrap();
    let (ops, err, mut reader) = read_until_error(&path, &TraceOptions::default());
    assert_eq!(ops.len(), REAL_REQUESTS - 1);
    assert_eq!(err.path, path);
    assert_eq!(err.record, Some(REAL_REQUESTS as u64));
    assert_eq!(err.message, "truncated record: 13 of 24 bytes");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: record 113872: truncated record: 13 of 24 bytes",
            path.display()
        )
    );
    assert!(reader.next().is_none(), "strict reading ends at the error");
}

#[test]
fn lenient_reading_skips_a_truncated_final_record() {
    let dir = TempDir::new("lenient-truncated");
    let path = dir.join("cut.oracleGeneral.bin");
    let bytes = fs::read(real_trace()).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 11]).unwrap();
    let mut reader = TraceReader::open(&path, &opts(None, true)).unwrap();
    let ops: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(ops.len(), REAL_REQUESTS - 1);
    assert_eq!(reader.skipped(), 1);
    assert_eq!(reader.records(), REAL_REQUESTS as u64);
}

#[test]
fn zstd_compressed_trace_reads_identically() {
    let dir = TempDir::new("zstd");
    let path = dir.join("cloudPhysicsIO.oracleGeneral.bin.zst");
    compress(&real_trace(), &path);
    assert_eq!(
        TraceFormat::detect(&path).unwrap(),
        TraceFormat::OracleGeneral
    );
    let plain = read_all(&real_trace(), &TraceOptions::default()).unwrap();
    let compressed = read_all(&path, &TraceOptions::default()).unwrap();
    assert_eq!(plain.len(), REAL_REQUESTS);
    assert!(plain == compressed);
}

#[test]
fn bad_zstd_stream_is_an_error() {
    let dir = TempDir::new("bad-zstd");
    let path = dir.join("garbage.oracleGeneral.zst");
    fs::write(&path, b"this is not a zstd frame at all, just text").unwrap();
    let (ops, err, mut reader) = read_until_error(&path, &opts(None, true));
    assert!(ops.is_empty());
    assert_eq!(err.path, path);
    assert!(err.message.starts_with("bad zstd stream"), "{err}");
    assert!(reader.next().is_none());

    // A compressed stream cut short is bad too, not a quiet end of the trace.
    let cut = dir.join("cut.oracleGeneral.bin.zst");
    let data = zstd::stream::encode_all(&fs::read(real_trace()).unwrap()[..], 3).unwrap();
    fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let (ops, err, _) = read_until_error(&cut, &opts(None, true));
    assert!(ops.len() < REAL_REQUESTS);
    assert!(err.message.contains("zstd"), "{err}");
}

#[test]
fn missing_file_error_names_the_path_and_the_os_error() {
    let dir = TempDir::new("missing");
    let path = dir.join("nowhere.oracleGeneral.bin");
    let err = TraceReader::open(&path, &TraceOptions::default()).unwrap_err();
    assert_eq!(err.path, path);
    assert_eq!(err.record, None);
    assert!(err.message.starts_with("cannot open: "), "{err}");
    assert!(err.message.contains("os error"), "{err}");
    assert!(err
        .to_string()
        .starts_with(&format!("{}: cannot open", path.display())));
    // Sniffing a `.csv` file's first line needs the file too.
    let err = TraceFormat::detect(&dir.join("nowhere.csv")).unwrap_err();
    assert!(err.message.starts_with("cannot open: "), "{err}");
}

// ---- Writers ----

#[test]
fn fraglab_csv_round_trip_is_exact() {
    let ops = handcrafted_ops();
    for name in ["ops.csv", "ops.csv.zst"] {
        let dir = TempDir::new("fraglab-round-trip");
        let path = dir.join(name);
        let mut w = FraglabCsvWriter::create(&path).unwrap();
        for op in &ops {
            w.write(op).unwrap();
        }
        assert_eq!(w.finish().unwrap(), ops.len() as u64);
        assert_eq!(dir.listing(), [name], "only the trace is left");
        assert_eq!(TraceFormat::detect(&path).unwrap(), TraceFormat::Fraglab);
        let mut reader = TraceReader::open(&path, &TraceOptions::default()).unwrap();
        let back: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(back, ops, "{name}");
        assert_eq!(reader.records(), ops.len() as u64);
        assert_eq!(reader.time_origin(), None);
    }
}

#[test]
fn fraglab_csv_file_format() {
    let dir = TempDir::new("fraglab-format");
    let path = dir.join("ops.csv");
    let mut w = FraglabCsvWriter::create(&path).unwrap();
    let mut o = op(1_500_000, OpKind::Set, 42, 16, 100);
    o.ttl = 60;
    o.phase = 2;
    w.write(&o).unwrap();
    w.write(&Op {
        fill: true,
        ..op(2, OpKind::Get, 7, 8, 5)
    })
    .unwrap();
    w.finish().unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "time_us,op,key_id,key_len,value_len,ttl,fill,phase\n\
         1500000,set,42,16,100,60,0,2\n\
         2,get,7,8,5,0,1,0\n"
    );
}

#[test]
fn dropped_writers_leave_nothing_behind() {
    let dir = TempDir::new("dropped");
    {
        let mut w = FraglabCsvWriter::create(&dir.join("a.csv")).unwrap();
        w.write(&op(0, OpKind::Get, 1, 4, 10)).unwrap();
        let mut w2 = OracleGeneralWriter::create(&dir.join("b.oracleGeneral.bin.zst")).unwrap();
        w2.write(&op(0, OpKind::Get, 1, 4, 10)).unwrap();
        assert_eq!(
            dir.listing().len(),
            2,
            "the temporary files exist meanwhile"
        );
    }
    assert!(dir.listing().is_empty(), "{:?}", dir.listing());

    // An unfinished rewrite leaves the old file as it was; a finished one replaces it.
    let path = dir.join("c.csv");
    fs::write(&path, "old").unwrap();
    let mut w = FraglabCsvWriter::create(&path).unwrap();
    w.write(&op(0, OpKind::Get, 1, 4, 10)).unwrap();
    drop(w);
    assert_eq!(fs::read_to_string(&path).unwrap(), "old");
    let mut w = FraglabCsvWriter::create(&path).unwrap();
    w.write(&op(0, OpKind::Get, 1, 4, 10)).unwrap();
    w.finish().unwrap();
    assert_eq!(read_all(&path, &TraceOptions::default()).unwrap().len(), 1);
    assert_eq!(dir.listing(), ["c.csv"]);
}

#[test]
fn oracle_general_writer_round_trip_and_next_access_vtime() {
    // Times in between whole seconds, repeated and unique objects, every kind (the format
    // keeps none of the kinds, TTLs or key lengths).
    let ids = [5u64, 9, 5, 5, 100, 9, u64::MAX, 7, 100, 5, 0, 0];
    let ops: Vec<Op> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| Op {
            ttl: i as u32,
            ..op(
                i as u64 * 700_000,
                OpKind::ALL[i % OpKind::ALL.len()],
                id,
                i as u16 + 1,
                i as u32 * 1000 + 1,
            )
        })
        .collect();
    for name in ["w.oracleGeneral.bin", "w.oracleGeneral.bin.zst"] {
        let dir = TempDir::new("oracle-writer");
        let path = dir.join(name);
        let mut w = OracleGeneralWriter::create(&path).unwrap();
        for op in &ops {
            w.write(op).unwrap();
        }
        assert_eq!(w.finish().unwrap(), ops.len() as u64);
        assert_eq!(dir.listing(), [name]);

        let back = read_all(&path, &TraceOptions::default()).unwrap();
        assert_eq!(back.len(), ops.len());
        for (a, b) in ops.iter().zip(&back) {
            assert_eq!(b.time_us, a.time_us / 1_000_000 * 1_000_000);
            assert_eq!(b.key.id, a.key.id);
            assert_eq!(b.value_len, a.value_len);
            assert_eq!((b.kind, b.fill, b.ttl), (OpKind::Get, true, 0));
        }

        let mut bytes = fs::read(&path).unwrap();
        if name.ends_with(".zst") {
            bytes = zstd::stream::decode_all(&bytes[..]).unwrap();
        }
        let records = raw_records(&bytes);
        let vtimes: Vec<i64> = records.iter().map(|r| r.3).collect();
        assert_eq!(vtimes, [3, 6, 4, 10, 9, -1, -1, -1, -1, -1, 12, -1]);
        assert_eq!(vtimes, expected_vtimes(&ids));
        let times: Vec<u32> = records.iter().map(|r| r.0).collect();
        assert_eq!(times, [0, 0, 1, 2, 2, 3, 4, 4, 5, 6, 7, 7]);
    }
}

#[test]
fn oracle_general_writer_patches_records_already_written() {
    // Reuse distances longer than the writer's in-memory window.
    let ids: Vec<u64> = (0..250_000u64).map(|i| (i * 7) % 90_001).collect();
    let dir = TempDir::new("oracle-late");
    let path = dir.join("late.oracleGeneral");
    let mut w = OracleGeneralWriter::create(&path)
        .unwrap()
        .with_time_origin(10);
    for (i, &id) in ids.iter().enumerate() {
        w.write(&op(i as u64 * 1000, OpKind::Get, id, 16, 1))
            .unwrap();
    }
    w.finish().unwrap();
    let records = raw_records(&fs::read(&path).unwrap());
    assert_eq!(records.len(), ids.len());
    assert_eq!(records[0].0, 10);
    assert_eq!(records.last().unwrap().0, 10 + 249);
    let vtimes: Vec<i64> = records.iter().map(|r| r.3).collect();
    assert!(vtimes == expected_vtimes(&ids));
}

#[test]
fn rewriting_the_real_trace_reproduces_it_byte_for_byte() {
    let original = fs::read(real_trace()).unwrap();
    let mut reader = TraceReader::open(&real_trace(), &TraceOptions::default()).unwrap();
    let ops: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
    let origin = reader.time_origin().unwrap();
    let dir = TempDir::new("rewrite");
    for name in ["copy.oracleGeneral.bin", "copy.oracleGeneral.bin.zst"] {
        let path = dir.join(name);
        let mut w = OracleGeneralWriter::create(&path)
            .unwrap()
            .with_time_origin(origin);
        for op in &ops {
            w.write(op).unwrap();
        }
        assert_eq!(w.finish().unwrap(), REAL_REQUESTS as u64);
        let mut bytes = fs::read(&path).unwrap();
        if name.ends_with(".zst") {
            bytes = zstd::stream::decode_all(&bytes[..]).unwrap();
        }
        assert!(bytes == original, "{name} differs from the original");
    }
}

// ---- Twitter CSV ----

fn twitter_file(dir: &TempDir, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn twitter_csv_decodes_every_field() {
    let dir = TempDir::new("twitter");
    let path = twitter_file(
        &dir,
        "cluster.csv",
        &[
            "100,keyA,4,300,7,get,0",
            "101,keyB,5,10,7,set,3600",
            "99,keyA,4,300,8,gets,0",
            "",
            "105,k,1,0,1,delete,0\r",
        ],
    );
    assert_eq!(TraceFormat::detect(&path).unwrap(), TraceFormat::Twitter);
    let mut reader = TraceReader::open(&path, &TraceOptions::default()).unwrap();
    let ops: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
    let a = fnv1a64_bytes(b"keyA");
    let expected = [
        Op {
            fill: true,
            ..op(0, OpKind::Get, a, 4, 300)
        },
        Op {
            ttl: 3600,
            ..op(1_000_000, OpKind::Set, fnv1a64_bytes(b"keyB"), 5, 10)
        },
        // A timestamp before the first saturates to the start.
        Op {
            fill: true,
            ..op(0, OpKind::Gets, a, 4, 300)
        },
        op(5_000_000, OpKind::Delete, fnv1a64_bytes(b"k"), 1, 0),
    ];
    assert_eq!(ops, expected);
    assert_eq!(reader.records(), 4, "blank lines are not records");
    assert_eq!(reader.time_origin(), Some(100));
}

#[test]
fn twitter_csv_knows_every_memcached_op() {
    let names = [
        ("get", OpKind::Get),
        ("gets", OpKind::Gets),
        ("set", OpKind::Set),
        ("add", OpKind::Add),
        ("replace", OpKind::Replace),
        ("cas", OpKind::Cas),
        ("append", OpKind::Append),
        ("prepend", OpKind::Prepend),
        ("delete", OpKind::Delete),
        ("incr", OpKind::Incr),
        ("decr", OpKind::Decr),
    ];
    let lines: Vec<String> = names
        .iter()
        .map(|(name, _)| format!("1,key,3,10,1,{name},0"))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let dir = TempDir::new("twitter-ops");
    let path = twitter_file(&dir, "ops.csv", &lines);
    let ops = read_all(&path, &TraceOptions::default()).unwrap();
    let kinds: Vec<OpKind> = ops.iter().map(|op| op.kind).collect();
    assert_eq!(kinds, names.map(|(_, k)| k));
    for op in &ops {
        assert_eq!(op.fill, matches!(op.kind, OpKind::Get | OpKind::Gets));
    }
}

/// Each bad line, after two good ones (so it is line 3), and the message it must give.
const TWITTER_BAD: [(&str, &str); 5] = [
    ("1,k,1,2,3,get", "expected 7 columns, found 6"),
    ("1,k,1,abc,3,get,0", "value size `abc` is not a number"),
    ("1,k,1,2,3,fetch,0", "unknown op `fetch`"),
    ("1,k,0,2,3,get,0", "key size 0"),
    (
        "1,k,70000,2,3,get,0",
        "key size `70000` is out of range (max 65535)",
    ),
];

#[test]
fn twitter_csv_bad_lines_are_errors_naming_the_line() {
    let dir = TempDir::new("twitter-bad");
    for (i, (bad, message)) in TWITTER_BAD.iter().enumerate() {
        let path = twitter_file(
            &dir,
            &format!("bad{i}.csv"),
            &["1,a,1,2,3,get,0", "2,b,1,2,3,set,0", bad, "3,c,1,2,3,get,0"],
        );
        let (ops, err, mut reader) = read_until_error(&path, &TraceOptions::default());
        assert_eq!(ops.len(), 2, "{bad}");
        assert_eq!(err.path, path);
        assert_eq!(err.record, Some(3), "{bad}");
        assert!(err.message.starts_with(message), "{bad}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: record 3: {message}", path.display())),
            "{err}"
        );
        assert!(reader.next().is_none());
    }
}

#[test]
fn twitter_csv_lenient_skips_and_counts_bad_lines() {
    let dir = TempDir::new("twitter-lenient");
    let mut lines = vec!["1,a,1,2,3,get,0"];
    for (bad, _) in TWITTER_BAD {
        lines.push(bad);
        lines.push("2,b,1,2,3,set,0");
    }
    let path = twitter_file(&dir, "t.csv", &lines);
    let mut reader = TraceReader::open(&path, &opts(None, true)).unwrap();
    let ops: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(ops.len(), 1 + TWITTER_BAD.len());
    assert_eq!(reader.skipped(), TWITTER_BAD.len() as u64);
    assert_eq!(reader.records(), lines.len() as u64);
}

// ---- fraglab CSV ----

fn fraglab_file(dir: &TempDir, name: &str, rows: &[&str]) -> PathBuf {
    let mut text = String::from("time_us,op,key_id,key_len,value_len,ttl,fill,phase\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// Each bad row, after two good ones (so it is line 4, after the header), and its message.
const FRAGLAB_BAD: [(&str, &str); 8] = [
    ("5,get,1,16,100,0,1", "expected 8 columns"),
    ("5,hset,1,16,100,0,0,0", "op `hset` names an element"),
    ("5,get,1,16,100,0,0,0,7,3", "op `get` names no element"),
    (
        "5,sadd,1,16,100,0,0,0,7,251",
        "member_len `251` is out of range",
    ),
    ("5,get,1,16,abc,0,1,0", "value_len `abc` is not a number"),
    ("5,fetch,1,16,100,0,1,0", "unknown op `fetch`"),
    ("5,get,1,16,100,0,2,0", "fill `2` is not 0 or 1"),
    ("-5,get,1,16,100,0,1,0", "time_us `-5` is not a number"),
];

#[test]
fn fraglab_csv_bad_lines_are_errors_naming_the_line() {
    let dir = TempDir::new("fraglab-bad");
    for (i, (bad, message)) in FRAGLAB_BAD.iter().enumerate() {
        let path = fraglab_file(
            &dir,
            &format!("bad{i}.csv"),
            &[
                "1,get,1,16,100,0,1,0",
                "2,set,2,16,100,0,0,1",
                bad,
                "3,get,1,16,100,0,1,0",
            ],
        );
        let (ops, err, mut reader) = read_until_error(&path, &TraceOptions::default());
        assert_eq!(ops.len(), 2, "{bad}");
        assert_eq!(err.path, path);
        assert_eq!(err.record, Some(4), "{bad}");
        assert!(err.message.starts_with(message), "{bad}: {err}");
        assert!(reader.next().is_none());
    }
}

#[test]
fn fraglab_csv_lenient_skips_and_counts_bad_lines() {
    let dir = TempDir::new("fraglab-lenient");
    let mut rows = vec!["1,get,1,16,100,0,1,0"];
    for (bad, _) in FRAGLAB_BAD {
        rows.push(bad);
        rows.push("2,set,2,16,100,0,0,1");
    }
    let path = fraglab_file(&dir, "f.csv", &rows);
    let mut reader = TraceReader::open(&path, &opts(None, true)).unwrap();
    let ops: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(ops.len(), 1 + FRAGLAB_BAD.len());
    assert_eq!(reader.skipped(), FRAGLAB_BAD.len() as u64);
    assert_eq!(reader.records(), rows.len() as u64);
}

#[test]
fn fraglab_csv_needs_its_header() {
    let dir = TempDir::new("fraglab-header");
    let fraglab = Some(TraceFormat::Fraglab);
    let path = dir.join("noheader.csv");
    fs::write(&path, "1,get,1,16,100,0,1,0\n").unwrap();
    let err = TraceReader::open(&path, &opts(fraglab, true)).unwrap_err();
    assert_eq!((err.path.as_path(), err.record), (path.as_path(), Some(1)));
    assert!(
        err.message.starts_with("expected the header `time_us,op,"),
        "{err}"
    );

    // The 7-column header of an older file is detected as fraglab's, then rejected.
    let old = dir.join("old.csv");
    fs::write(
        &old,
        "time_us,op,key_id,key_len,value_len,ttl,fill\n1,get,1,16,100,0,1\n",
    )
    .unwrap();
    assert_eq!(TraceFormat::detect(&old).unwrap(), TraceFormat::Fraglab);
    let err = TraceReader::open(&old, &TraceOptions::default()).unwrap_err();
    assert!(err.message.starts_with("expected the header"), "{err}");

    let empty = dir.join("empty.csv");
    fs::write(&empty, "").unwrap();
    let err = TraceReader::open(&empty, &opts(fraglab, false)).unwrap_err();
    assert!(err.message.starts_with("missing the header"), "{err}");
}

// ---- Segcache binary ----

/// A Segcache record, packed as `reader.c` unpacks it.
fn seg_record(time: u32, id: u64, key_len: u32, val_len: u32, op: u32, ttl: u32) -> Vec<u8> {
    let kv_len = (key_len << 22) | val_len;
    let op_ttl = (op << 24) | ttl;
    let mut r = Vec::with_capacity(20);
    r.extend_from_slice(&time.to_le_bytes());
    r.extend_from_slice(&id.to_le_bytes());
    r.extend_from_slice(&kv_len.to_le_bytes());
    r.extend_from_slice(&op_ttl.to_le_bytes());
    r
}

#[test]
fn segcache_records_decode_as_pelikan_reads_them() {
    let dir = TempDir::new("segcache");
    let path = dir.join("w.sbin");
    let mut bytes = Vec::new();
    bytes.extend(seg_record(1000, 42, 10, 100, 1, 0));
    bytes.extend(seg_record(1001, 43, 1023, 0x3f_ffff, 3, 0xff_ffff));
    bytes.extend(seg_record(999, u64::MAX, 1, 0, 5, 60));
    // Every op code, in reader.c's order.
    for code in 1..=11 {
        bytes.extend(seg_record(1010, code.into(), 16, 8, code, 0));
    }
    fs::write(&path, &bytes).unwrap();
    assert_eq!(TraceFormat::detect(&path).unwrap(), TraceFormat::Segcache);
    let mut reader = TraceReader::open(&path, &TraceOptions::default()).unwrap();
    let ops: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(
        ops[..3],
        [
            Op {
                fill: true,
                ..op(0, OpKind::Get, 42, 10, 100)
            },
            Op {
                ttl: 0xff_ffff,
                ..op(1_000_000, OpKind::Set, 43, 1023, 0x3f_ffff)
            },
            Op {
                ttl: 60,
                ..op(0, OpKind::Cas, u64::MAX, 1, 0)
            },
        ]
    );
    let kinds: Vec<OpKind> = ops[3..].iter().map(|op| op.kind).collect();
    use OpKind::*;
    assert_eq!(
        kinds,
        [Get, Gets, Set, Add, Cas, Replace, Append, Prepend, Delete, Incr, Decr]
    );
    assert!(ops[3..].iter().all(|op| op.time_us == 10_000_000
        && op.fill == matches!(op.kind, Get | Gets)
        && op.key.len == 16
        && op.value_len == 8));
    assert_eq!(reader.time_origin(), Some(1000));
}

#[test]
fn segcache_bad_records_and_truncation() {
    let dir = TempDir::new("segcache-bad");
    let good = seg_record(1, 1, 8, 8, 1, 0);
    let cases: [(Vec<u8>, &str); 3] = [
        (
            seg_record(1, 2, 8, 8, 12, 0),
            "unknown op code 12 (expected 1 to 11)",
        ),
        (
            seg_record(1, 2, 8, 8, 0, 0),
            "unknown op code 0 (expected 1 to 11)",
        ),
        (seg_record(1, 2, 0, 8, 1, 0), "key size 0"),
    ];
    for (i, (bad, message)) in cases.iter().enumerate() {
        let path = dir.join(&format!("bad{i}.sbin"));
        fs::write(&path, [&good[..], &good, bad, &good].concat()).unwrap();
        let (ops, err, _) = read_until_error(&path, &TraceOptions::default());
        assert_eq!(ops.len(), 2);
        assert_eq!((err.path.as_path(), err.record), (path.as_path(), Some(3)));
        assert_eq!(err.message, *message);
        let mut lenient = TraceReader::open(&path, &opts(None, true)).unwrap();
        assert_eq!(lenient.by_ref().count(), 3);
        assert_eq!(lenient.skipped(), 1);
    }

    let path = dir.join("cut.sbin");
    fs::write(&path, [&good[..], &good, &good[..7]].concat()).unwrap();
    let (ops, err, _) = read_until_error(&path, &TraceOptions::default());
    assert_eq!(ops.len(), 2);
    assert_eq!(err.record, Some(3));
    assert_eq!(err.message, "truncated record: 7 of 20 bytes");
}

// ---- Formats and detection ----

#[test]
fn format_names_round_trip() {
    for f in TraceFormat::ALL {
        assert_eq!(f.to_string().parse::<TraceFormat>().unwrap(), f);
    }
    let names: Vec<String> = TraceFormat::ALL.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        names,
        ["twitter", "oracle-general", "segcache", "fraglab", "resp"]
    );
    let err = "oracle".parse::<TraceFormat>().unwrap_err().to_string();
    assert!(
        err.contains("`oracle`") && err.contains("oracle-general, segcache"),
        "{err}"
    );
}

#[test]
fn formats_are_detected_by_extension() {
    let by_name = [
        ("a.oracleGeneral", TraceFormat::OracleGeneral),
        ("a.oracleGeneral.bin", TraceFormat::OracleGeneral),
        ("a.oracleGeneral.zst", TraceFormat::OracleGeneral),
        (
            "cloudPhysicsIO.oracleGeneral.bin.zst",
            TraceFormat::OracleGeneral,
        ),
        ("w01_oracleGeneral_sample", TraceFormat::OracleGeneral),
        ("w.sbin", TraceFormat::Segcache),
        ("w.sbin.zst", TraceFormat::Segcache),
        ("cmds.resp", TraceFormat::Resp),
        ("CMDS.RESP.zst", TraceFormat::Resp),
    ];
    for (name, format) in by_name {
        // No file needed: the name decides.
        assert_eq!(
            TraceFormat::detect(Path::new(name)).unwrap(),
            format,
            "{name}"
        );
    }

    let dir = TempDir::new("detect");
    let twitter = twitter_file(&dir, "cluster52.csv", &["1,a,1,2,3,get,0"]);
    assert_eq!(TraceFormat::detect(&twitter).unwrap(), TraceFormat::Twitter);
    let fraglab = fraglab_file(&dir, "ops.csv", &["1,get,1,16,100,0,1,0"]);
    assert_eq!(TraceFormat::detect(&fraglab).unwrap(), TraceFormat::Fraglab);
    let fraglab_zst = dir.join("ops.csv.zst");
    compress(&fraglab, &fraglab_zst);
    assert_eq!(
        TraceFormat::detect(&fraglab_zst).unwrap(),
        TraceFormat::Fraglab
    );
    let twitter_zst = dir.join("cluster52.csv.zst");
    compress(&twitter, &twitter_zst);
    assert_eq!(
        TraceFormat::detect(&twitter_zst).unwrap(),
        TraceFormat::Twitter
    );
    assert_eq!(
        read_all(&twitter_zst, &TraceOptions::default())
            .unwrap()
            .len(),
        1
    );

    for name in ["trace.txt", "trace.bin", "trace.zst", "trace"] {
        let err = TraceFormat::detect(Path::new(name)).unwrap_err();
        assert_eq!(err.path, Path::new(name));
        for word in [
            ".oracleGeneral",
            ".sbin",
            ".csv",
            "--trace-format",
            "oracle-general",
        ] {
            assert!(err.message.contains(word), "{err}");
        }
        assert!(TraceReader::open(Path::new(name), &TraceOptions::default()).is_err());
    }
}

#[test]
fn an_explicit_format_overrides_the_name() {
    let dir = TempDir::new("explicit");
    let path = dir.join("requests.dat");
    fs::copy(real_trace(), &path).unwrap();
    let o = opts(Some(TraceFormat::OracleGeneral), false);
    let reader = TraceReader::open(&path, &o).unwrap();
    assert_eq!(reader.format(), TraceFormat::OracleGeneral);
    assert_eq!(reader.count(), REAL_REQUESTS);
}

#[test]
fn garbage_never_panics() {
    // Arbitrary bytes under every format, strict and lenient: errors, never a panic.
    let dir = TempDir::new("garbage");
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut bytes = Vec::new();
    for _ in 0..50_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push(if state % 5 == 0 { b',' } else { state as u8 });
    }
    let path = dir.join("garbage");
    fs::write(&path, &bytes).unwrap();
    for format in TraceFormat::ALL {
        for lenient in [false, true] {
            match TraceReader::open(&path, &opts(Some(format), lenient)) {
                Ok(reader) => {
                    for item in reader {
                        let _ = item;
                    }
                }
                Err(e) => assert_eq!(e.path, path),
            }
        }
    }
}
