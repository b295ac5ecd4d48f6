//! What a single-pass driver relies on: exact declared lengths, input progress, and traces
//! read through FIFOs, generic readers and stdin exactly as from files.

use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

mod common;

use common::{real_trace, TempDir};
use fraglab_workloads::presets::{self, PresetParams};
use fraglab_workloads::spec::{PhaseSpec, Preload, WorkloadSpec};
use fraglab_workloads::trace::{
    FraglabCsvWriter, TraceError, TraceFormat, TraceOptions, TraceReader,
};
use fraglab_workloads::{Op, OpStream, Workload};

// ---- declared_ops ----

fn small(name: &str) -> PresetParams {
    PresetParams {
        scale: 0.01,
        boundaries: (name == "size-sweep").then(|| vec![64, 96, 128, 192, 256]),
        ..PresetParams::default()
    }
}

/// Streams to the end, counting ops; every op must be good.
fn count(stream: OpStream) -> u64 {
    let mut n = 0;
    for op in stream {
        op.unwrap();
        n += 1;
    }
    n
}

#[test]
fn declared_ops_is_exact_for_every_preset() {
    let mut declared = Vec::new();
    for name in presets::NAMES {
        let w = Workload::preset(name, &small(name)).unwrap();
        for seed in [1, 2] {
            let stream = w.stream(seed).unwrap();
            assert_eq!(stream.input_progress(), None, "{name}");
            let d = stream.declared_ops();
            let n = count(stream);
            if let Some(d) = d {
                assert_eq!(d, n, "{name}, seed {seed}: declared {d}, streamed {n}");
                declared.push(*name);
            }
        }
    }
    // Workloads measured in requests declare their length; those measured in bytes written
    // or deleting a share of their live keys cannot.
    for name in [
        "ycsb-a",
        "ycsb-c",
        "ycsb-d",
        "ycsb-e",
        "etc",
        "memefficiency-64",
    ] {
        assert!(declared.contains(&name), "{name} declares no length");
    }
    for name in ["ramcloud-w1", "ramcloud-w8", "ycsb-f"] {
        assert!(!declared.contains(&name), "{name} declares a length");
    }
}

fn spec_with(phases: Vec<PhaseSpec>, mix: &[(&str, f64)]) -> WorkloadSpec {
    let mut spec = presets::preset("ycsb-a", &small("ycsb-a")).unwrap();
    spec.keyspace = 10;
    spec.preload = Some(Preload {
        keys: None,
        value_size: None,
    });
    spec.mix = mix.iter().map(|&(k, w)| (k.to_string(), w)).collect();
    spec.phases = phases;
    spec
}

fn declared_and_streamed(spec: WorkloadSpec) -> (Option<u64>, u64) {
    let w = Workload::Spec {
        spec: Box::new(spec),
        base: PathBuf::new(),
    };
    let stream = w.stream(9).unwrap();
    (stream.declared_ops(), count(stream))
}

#[test]
fn declared_ops_of_specs() {
    let sets = [("set", 1.0)];
    // Requests, after a preload of the whole keyspace of 10 keys.
    let (d, n) = declared_and_streamed(spec_with(vec![PhaseSpec::ops("run", 500)], &sets));
    assert_eq!(d, Some(n));
    assert_eq!(n, 10 + 500);
    // Every request a read-modify-write: a get and a set each.
    let (d, n) = declared_and_streamed(spec_with(
        vec![PhaseSpec::ops("a", 300), PhaseSpec::ops("b", 7)],
        &[("rmw", 1.0), ("get", 0.0)],
    ));
    assert_eq!((d, n), (Some(10 + 2 * 307), 10 + 2 * 307));
    // A mix of rmw and other ops has a length that depends on the draws.
    let (d, _) = declared_and_streamed(spec_with(
        vec![PhaseSpec::ops("run", 300)],
        &[("rmw", 1.0), ("get", 1.0)],
    ));
    assert_eq!(d, None);
    // A phase measured in bytes written.
    let (d, n) = declared_and_streamed(spec_with(
        vec![PhaseSpec::ops("a", 10), PhaseSpec::bytes("fill", 64 << 10)],
        &sets,
    ));
    assert_eq!(d, None);
    assert!(n > 20);
    // Deleting a fraction of the live keys.
    let (d, _) = declared_and_streamed(spec_with(
        vec![
            PhaseSpec::ops("a", 10),
            PhaseSpec::delete_fraction("half", 0.5),
        ],
        &sets,
    ));
    assert_eq!(d, None);
    // A live cap adds deletes.
    let mut capped = PhaseSpec::ops("capped", 100);
    capped.live_cap = Some(fraglab_workloads::spec::Bytes(4096));
    let (d, _) = declared_and_streamed(spec_with(vec![capped], &sets));
    assert_eq!(d, None);
}

#[test]
fn traces_declare_no_length_and_report_progress() {
    let w = Workload::parse(
        &format!("trace:{}", real_trace().display()),
        &PresetParams::default(),
        &TraceOptions::default(),
    )
    .unwrap();
    let stream = w.stream(0).unwrap();
    assert_eq!(stream.declared_ops(), None);
    let size = fs::metadata(real_trace()).unwrap().len();
    assert_eq!(stream.input_progress(), Some((0, Some(size))));
    let mut stream = stream;
    for op in stream.by_ref() {
        op.unwrap();
    }
    assert_eq!(stream.input_progress(), Some((size, Some(size))));
}

// ---- input_progress ----

/// Reads `reader` to its end, checking at every op that no more than 1.10x the input has been
/// consumed; returns the ops and the final progress.
fn read_watching(mut reader: TraceReader, size: u64) -> (Vec<Op>, (u64, Option<u64>)) {
    let mut ops = Vec::new();
    while let Some(op) = reader.next() {
        ops.push(op.unwrap());
        let (read, _) = reader.input_progress();
        assert!(read as f64 <= size as f64 * 1.10, "{read} of {size}");
    }
    (ops, reader.input_progress())
}

#[test]
fn a_trace_file_is_read_once() {
    let size = fs::metadata(real_trace()).unwrap().len();
    let reader = TraceReader::open(&real_trace(), &TraceOptions::default()).unwrap();
    let (ops, progress) = read_watching(reader, size);
    assert_eq!(ops.len(), 113_872);
    assert_eq!(progress, (size, Some(size)));

    // Compressed: the compressed bytes.
    let dir = TempDir::new("progress");
    let zst = dir.join("real.oracleGeneral.bin.zst");
    let packed = zstd::stream::encode_all(&fs::read(real_trace()).unwrap()[..], 3).unwrap();
    fs::write(&zst, &packed).unwrap();
    let packed_size = packed.len() as u64;
    let reader = TraceReader::open(&zst, &TraceOptions::default()).unwrap();
    let (unpacked, progress) = read_watching(reader, packed_size);
    assert!(unpacked == ops);
    assert_eq!(progress, (packed_size, Some(packed_size)));
}

// ---- FIFOs, readers and stdin ----

/// Makes a FIFO at `path` with mkfifo(1).
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Writes `bytes` into the FIFO at `path` from another thread: the first few bytes alone, a
/// pause, then the rest, so that the reader's first read sees only part of a header.
fn feed_fifo(path: &Path, bytes: Vec<u8>) -> thread::JoinHandle<()> {
    let path = path.to_path_buf();
    thread::spawn(move || {
        let mut fifo = fs::OpenOptions::new().write(true).open(&path).unwrap();
        let split = bytes.len().min(10);
        fifo.write_all(&bytes[..split]).unwrap();
        fifo.flush().unwrap();
        thread::sleep(Duration::from_millis(30));
        fifo.write_all(&bytes[split..]).unwrap();
    })
}

/// Reads `bytes` as the file `name` and through a FIFO of the same name (in another
/// directory); both must give the same ops. Returns them.
fn file_and_fifo_agree(name: &str, bytes: &[u8], opts: &TraceOptions) -> Vec<Op> {
    let dir = TempDir::new("fifo");
    fs::create_dir(dir.join("file")).unwrap();
    fs::create_dir(dir.join("fifo")).unwrap();
    let file = dir.join("file").join(name);
    fs::write(&file, bytes).unwrap();
    let from_file: Vec<Op> = TraceReader::open(&file, opts)
        .unwrap()
        .map(Result::unwrap)
        .collect();

    let fifo = dir.join("fifo").join(name);
    mkfifo(&fifo);
    let writer = feed_fifo(&fifo, bytes.to_vec());
    let mut reader = TraceReader::open(&fifo, opts).unwrap();
    let from_fifo: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
    writer.join().unwrap();
    assert!(from_fifo == from_file, "{name}: FIFO and file differ");
    // A FIFO has no size; every byte written was read.
    assert_eq!(reader.input_progress(), (bytes.len() as u64, None));
    from_file
}

/// A generated workload written as fraglab CSV: its bytes and its ops.
fn fraglab_csv(dir: &TempDir) -> (Vec<u8>, Vec<Op>) {
    let w = Workload::preset("ycsb-f", &small("ycsb-f")).unwrap();
    let ops: Vec<Op> = w.stream(3).unwrap().map(Result::unwrap).collect();
    let path = dir.join("ops.csv");
    let mut writer = FraglabCsvWriter::create(&path).unwrap();
    for op in &ops {
        writer.write(op).unwrap();
    }
    writer.finish().unwrap();
    (fs::read(&path).unwrap(), ops)
}

const TWITTER: &str = "0,alpha,5,100,1,get,0\n1,beta,4,20,1,set,600\n\n2,alpha,5,0,2,delete,0\n";

#[test]
fn fifos_read_as_files_do() {
    let dir = TempDir::new("fifo-src");
    let (csv, ops) = fraglab_csv(&dir);
    let read = file_and_fifo_agree("ops.csv", &csv, &TraceOptions::default());
    assert!(read == ops);

    let oracle = fs::read(real_trace()).unwrap();
    let read = file_and_fifo_agree("real.oracleGeneral.bin", &oracle, &TraceOptions::default());
    assert_eq!(read.len(), 113_872);
    let packed = zstd::stream::encode_all(&oracle[..], 3).unwrap();
    let unpacked = file_and_fifo_agree(
        "real.oracleGeneral.bin.zst",
        &packed,
        &TraceOptions::default(),
    );
    assert!(unpacked == read);

    let twitter = file_and_fifo_agree("t.csv", TWITTER.as_bytes(), &TraceOptions::default());
    assert_eq!(twitter.len(), 3);
    let csv_zst = zstd::stream::encode_all(&csv[..], 3).unwrap();
    let read = file_and_fifo_agree("ops.csv.zst", &csv_zst, &TraceOptions::default());
    assert!(read == ops);
}

fn from_cursor(name: &str, bytes: &[u8], opts: &TraceOptions) -> Result<Vec<Op>, TraceError> {
    TraceReader::from_reader(name, Cursor::new(bytes.to_vec()), opts)?.collect()
}

#[test]
fn any_reader_reads_as_a_file_does() {
    let dir = TempDir::new("reader");
    let (csv, ops) = fraglab_csv(&dir);
    let plain = TraceOptions::default();
    assert!(from_cursor("ops.csv", &csv, &plain).unwrap() == ops);
    // Compression is told by the name or by the zstd magic number.
    let packed = zstd::stream::encode_all(&csv[..], 3).unwrap();
    assert!(from_cursor("ops.csv.zst", &packed, &plain).unwrap() == ops);
    assert!(from_cursor("ops.csv", &packed, &plain).unwrap() == ops);
    assert_eq!(
        from_cursor("t.csv", TWITTER.as_bytes(), &plain)
            .unwrap()
            .len(),
        3
    );

    let oracle = fs::read(real_trace()).unwrap();
    let file = TraceReader::open(&real_trace(), &plain).unwrap();
    let expected: Vec<Op> = file.map(Result::unwrap).collect();
    let named = from_cursor("x.oracleGeneral.bin", &oracle, &plain).unwrap();
    assert!(named == expected);
    let explicit = TraceOptions {
        format: Some(TraceFormat::OracleGeneral),
        ..TraceOptions::default()
    };
    let mut reader = TraceReader::from_reader("-", Cursor::new(oracle.clone()), &explicit).unwrap();
    let unnamed: Vec<Op> = reader.by_ref().map(Result::unwrap).collect();
    assert!(unnamed == expected);
    assert_eq!(reader.input_progress(), (oracle.len() as u64, None));

    // A bad record is reported under the reader's name.
    let bad = b"0,alpha,5,100,1,frobnicate,0\n";
    let err = from_cursor("piped.csv", bad, &plain).unwrap_err();
    assert_eq!(err.path, Path::new("piped.csv"));
    assert_eq!(err.record, Some(1));
    // Without a format, the name must tell it.
    let err = from_cursor("-", &oracle, &plain).unwrap_err();
    assert!(err.message.contains("--trace-format"), "{err}");
}

#[test]
fn stdin_needs_an_explicit_format() {
    let err = TraceReader::stdin(&TraceOptions::default()).unwrap_err();
    assert_eq!(err.path, Path::new("stdin"));
    assert!(err.message.contains("--trace-format"), "{err}");
    assert!(err.message.contains("stdin"), "{err}");
    let err = TraceReader::open(Path::new("-"), &TraceOptions::default()).unwrap_err();
    assert!(err.to_string().starts_with("stdin: "), "{err}");
    let err = Workload::parse(
        "trace:-",
        &PresetParams::default(),
        &TraceOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("--trace-format"), "{err}");
    // With a format, `trace:-` is a trace on stdin.
    let fraglab = TraceOptions {
        format: Some(TraceFormat::Fraglab),
        ..TraceOptions::default()
    };
    let w = Workload::parse("trace:-", &PresetParams::default(), &fraglab).unwrap();
    assert_eq!(w.name(), "trace:-");
}
