//! The `fraglab` binary's commands, run as a user runs them.

use std::process::{Command, Output};

fn fraglab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraglab"))
        .args(args)
        .output()
        .expect("fraglab runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn slab_classes_prints_memcached_vv_lines() {
    let o = fraglab(&["slab-classes"]);
    assert!(o.status.success());
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 39);
    assert_eq!(
        lines[0],
        "slab class   1: chunk size        96 perslab   10922"
    );
    assert_eq!(
        lines[38],
        "slab class  39: chunk size    524288 perslab       2"
    );
}

#[test]
fn slab_classes_json() {
    let o = fraglab(&["slab-classes", "--factor", "2", "--format", "json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let classes = v.as_array().unwrap();
    assert_eq!(classes.len(), 13);
    assert_eq!(
        classes[0],
        serde_json::json!({"class": 1, "chunk_size": 96, "chunks_per_page": 10922})
    );
    assert_eq!(
        classes[12],
        serde_json::json!({"class": 13, "chunk_size": 524288, "chunks_per_page": 2})
    );
}

#[test]
fn slab_classes_settings() {
    let o = fraglab(&[
        "slab-classes",
        "--min-size",
        "16",
        "--chunk-max",
        "16k",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["chunk_size"], 64);
    assert_eq!(v.as_array().unwrap().last().unwrap()["chunk_size"], 16384);
    let o = fraglab(&["slab-classes", "--slab-sizes", "96,192,384"]);
    assert_eq!(
        stdout(&o),
        "slab class   1: chunk size        96 perslab   10922\n\
         slab class   2: chunk size       192 perslab    5461\n\
         slab class   3: chunk size       384 perslab    2730\n\
         slab class   4: chunk size    524288 perslab       2\n"
    );
}

#[test]
fn bad_settings_fail_with_a_clear_error() {
    for (args, needle) in [
        (
            vec!["slab-classes", "--factor", "1"],
            "factor must be greater than 1",
        ),
        (
            vec!["slab-classes", "--chunk-max", "12q"],
            "--chunk-max 12q: unknown unit `q`",
        ),
        (vec!["slab-classes", "--chunk-max", "1000"], "divide evenly"),
        (
            vec!["slab-classes", "--slab-sizes", "96,90"],
            "slab size 90",
        ),
    ] {
        let o = fraglab(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let o = fraglab(&["slab-classes", "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2), "clap rejects unknown values");
}
