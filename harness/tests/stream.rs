//! A trace is decoded once, as a stream: replays from stdin, a pipe and a FIFO give the
//! result of the file they carry (no counting pass: a pipe can be read only once).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;
use support::TempDir;

use fraglab_reports::RunResult;

fn fraglab(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fraglab runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        // A writer thread, so a reader that stops early cannot block the test.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `workload` (with `extra` arguments) into jemalloc and loads the result.
fn replay(
    dir: &TempDir,
    name: &str,
    workload: &str,
    extra: &[&str],
    stdin: Option<&[u8]>,
) -> RunResult {
    let out = dir.file(&format!("{name}.json"));
    let mut args = vec![
        "run",
        "--workload",
        workload,
        "--alloc",
        "jemalloc",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend(extra);
    let o = fraglab(&args, stdin);
    assert!(o.status.success(), "{name}: {}", text(&o.stderr));
    RunResult::load(&out).unwrap()
}

/// One sample's op count, items, payload, requested, allocated, footprint, hits and misses.
type SampleCounters = (u64, u64, u64, u64, u64, u64, u64, u64);

/// What must not depend on where the bytes came from: every counter of every sample and
/// phase, but the resident set and the times.
fn figures(r: &RunResult) -> Vec<SampleCounters> {
    r.timeline
        .iter()
        .chain(r.phases.iter().map(|p| &p.end))
        .map(|s| {
            let m = s.memory;
            (
                s.op,
                m.items,
                m.payload_bytes,
                m.requested_bytes,
                m.allocated_bytes,
                m.footprint_bytes,
                s.hits,
                s.misses,
            )
        })
        .collect()
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success(), "mkfifo {}", path.display());
}

/// Writes `bytes` into the FIFO at `path` from a thread (opening blocks until a reader comes).
fn feed_fifo(path: &Path, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all(&bytes).unwrap();
    })
}

#[test]
fn stdin_pipes_and_fifos_replay_as_the_file_they_carry() {
    let dir = TempDir::new("sources");
    for (name, format) in [
        ("t.csv", "fraglab"),
        ("t.oracleGeneral.bin", "oracle-general"),
        ("t.csv.zst", "fraglab"),
    ] {
        let trace = dir.file(name);
        let o = fraglab(
            &[
                "save",
                "etc",
                "--scale",
                "0.01",
                "--out",
                trace.to_str().unwrap(),
            ],
            None,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let bytes = std::fs::read(&trace).unwrap();
        let file = replay(
            &dir,
            "file",
            &format!("trace:{}", trace.display()),
            &[],
            None,
        );
        assert!(file.complete && file.summary.ops > 10_000, "{name}");
        // Read once: every byte of the file, and no byte twice.
        let size = bytes.len() as u64;
        let input = file.run.trace_input.expect("a trace's input");
        assert_eq!((input.bytes_read, input.size), (size, Some(size)), "{name}");
        assert_eq!(
            file.run.ops, file.summary.ops,
            "{name}: the ops the stream held"
        );

        let stdin = replay(
            &dir,
            "stdin",
            "trace:-",
            &["--trace-format", format],
            Some(&bytes),
        );
        assert!(stdin.complete);
        assert_eq!(figures(&stdin), figures(&file), "{name} from stdin");
        let input = stdin.run.trace_input.expect("a trace's input");
        assert_eq!((input.bytes_read, input.size), (size, None), "{name}");

        let fifo = dir.file(&format!("fifo-{name}"));
        mkfifo(&fifo);
        let writer = feed_fifo(&fifo, bytes.clone());
        let from_fifo = replay(
            &dir,
            "fifo",
            &format!("trace:{}", fifo.display()),
            &[],
            None,
        );
        writer.join().unwrap();
        assert!(from_fifo.complete);
        assert_eq!(figures(&from_fifo), figures(&file), "{name} from a FIFO");
        assert_eq!(from_fifo.summary.ops, file.summary.ops);
    }
}

#[test]
fn stdin_needs_a_format_and_a_bad_record_keeps_what_came_before() {
    let dir = TempDir::new("stdin-errors");
    let o = fraglab(&["run", "--workload", "trace:-", "--quiet"], Some(b""));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--trace-format"),
        "{}",
        text(&o.stderr)
    );

    // A pipe with a bad record after 500 good ones: the 500 are measured and kept.
    let mut csv = String::from("time_us,op,key_id,key_len,value_len,ttl,fill,phase\n");
    for i in 0..500 {
        csv += &format!("{i},set,{i},10,100,0,0,0\n");
    }
    csv += "500,set,x,10,100,0,0,0\n";
    let out = dir.file("bad.json");
    let o = fraglab(
        &[
            "run",
            "--workload",
            "trace:-",
            "--trace-format",
            "fraglab",
            "--alloc",
            "jemalloc",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        Some(csv.as_bytes()),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let r = RunResult::load(&out).unwrap();
    assert!(!r.complete);
    assert_eq!((r.summary.ops, r.summary.items), (500, 500));
    let why = r.incomplete_reason.unwrap();
    assert!(why.contains("record 502"), "{why}");
}

#[test]
fn a_long_stream_of_unknown_length_keeps_a_bounded_even_timeline() {
    let dir = TempDir::new("adaptive");
    let trace = dir.file("long.csv");
    let o = fraglab(
        &[
            "save",
            "ycsb-a",
            "--records",
            "1000",
            "--ops",
            "200000",
            "--out",
            trace.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r = replay(
        &dir,
        "long",
        &format!("trace:{}", trace.display()),
        &[],
        None,
    );
    let ends: Vec<u64> = r.phases.iter().map(|p| p.end.op).collect();
    assert_eq!(ends, [1000, 201_000], "the preload and the run");
    let n = r.timeline.len();
    assert!((200..=402).contains(&n), "{n} samples");
    // The periodic samples are evenly spaced at the final interval (a power of two times the
    // first); the phase ends are kept besides them.
    let periodic: Vec<u64> = r
        .timeline
        .iter()
        .map(|s| s.op)
        .filter(|op| !ends.contains(op))
        .collect();
    let every = r.run.sample_every;
    assert!(every.is_power_of_two(), "{every}");
    assert_eq!(periodic[0], every);
    for w in periodic.windows(2) {
        assert_eq!(w[1] - w[0], every, "{periodic:?}");
    }
    assert_eq!(r.timeline.last().unwrap().op, r.summary.ops);
    assert_eq!(r.summary.ops, 201_000);
}
