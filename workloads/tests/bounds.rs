//! Bounded input: every length read from a file or a flag is checked against its limit before
//! anything is allocated for it (issue 13, finding 4).

use std::fs;
use std::path::{Path, PathBuf};

use fraglab_workloads::dist::empirical::{EMPIRICAL_FILE_MAX, EMPIRICAL_ROWS_MAX};
use fraglab_workloads::dist::EmpiricalTable;
use fraglab_workloads::gen::VALUE_MAX;
use fraglab_workloads::presets::{self, PresetParams, RECORDS_MAX};
use fraglab_workloads::spec::{WorkloadSpec, PHASES_MAX, SPEC_FILE_MAX};
use fraglab_workloads::trace::{TraceFormat, TraceOptions, TraceReader};

/// A fresh directory under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("fraglab-bounds-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn read_all(name: &str, bytes: Vec<u8>, format: TraceFormat, lenient: bool) -> (Vec<String>, u64) {
    let opts = TraceOptions {
        format: Some(format),
        lenient,
        ..TraceOptions::default()
    };
    let mut reader = TraceReader::from_reader(name, std::io::Cursor::new(bytes), &opts).unwrap();
    let out: Vec<String> = reader
        .by_ref()
        .map(|r| match r {
            Ok(op) => format!("ok {}", op.value_len),
            Err(e) => format!("err {e}"),
        })
        .collect();
    (out, reader.skipped())
}

fn oracle_record(time: u32, id: u64, size: u32) -> Vec<u8> {
    let mut rec = Vec::with_capacity(24);
    rec.extend_from_slice(&time.to_le_bytes());
    rec.extend_from_slice(&id.to_le_bytes());
    rec.extend_from_slice(&size.to_le_bytes());
    rec.extend_from_slice(&(-1i64).to_le_bytes());
    rec
}

#[test]
fn oracle_general_record_declaring_a_4_gib_value_is_refused_before_it_is_replayed() {
    let mut bytes = oracle_record(1, 7, 100);
    bytes.extend(oracle_record(2, 8, u32::MAX));
    let (ops, _) = read_all(
        "t.oracleGeneral.bin",
        bytes.clone(),
        TraceFormat::OracleGeneral,
        false,
    );
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0], "ok 100");
    assert!(
        ops[1].starts_with("err t.oracleGeneral.bin: record 2: obj_size 4294967295 is larger"),
        "{}",
        ops[1]
    );
    assert!(ops[1].contains("1073741823"), "{}", ops[1]);
    let (ops, skipped) = read_all(
        "t.oracleGeneral.bin",
        bytes,
        TraceFormat::OracleGeneral,
        true,
    );
    assert_eq!((ops, skipped), (vec!["ok 100".to_string()], 1));
}

#[test]
fn csv_traces_declaring_values_past_value_max_are_refused() {
    let twitter = format!("1,k1,3,{},0,set,0\n", u64::from(VALUE_MAX) + 1);
    let (ops, _) = read_all("t.csv", twitter.into_bytes(), TraceFormat::Twitter, false);
    assert!(
        ops[0].contains("record 1: value size 1073741824 is larger"),
        "{ops:?}"
    );
    let fraglab = format!(
        "time_us,op,key_id,key_len,value_len,ttl,fill,phase\n0,set,1,8,{VALUE_MAX},0,0,0\n\
         0,set,1,8,4294967295,0,0,0\n"
    );
    let (ops, _) = read_all("t.csv", fraglab.into_bytes(), TraceFormat::Fraglab, false);
    assert_eq!(
        ops[0],
        format!("ok {VALUE_MAX}"),
        "VALUE_MAX itself is a value"
    );
    assert!(
        ops[1].contains("record 3: value_len 4294967295 is larger"),
        "{ops:?}"
    );
}

#[test]
fn empirical_table_from_dev_zero_stops_at_16_mib() {
    let e = EmpiricalTable::load(Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert_eq!(EMPIRICAL_FILE_MAX, 16 << 20);
    assert!(e.starts_with("/dev/zero: "), "{e}");
    assert!(e.contains("larger than 16777216 bytes"), "{e}");
}

#[test]
fn empirical_table_past_a_million_rows_is_refused() {
    let dir = Scratch::new("rows");
    let path = dir.join("sizes.csv");
    fs::write(&path, "100,1\n".repeat(EMPIRICAL_ROWS_MAX + 1)).unwrap();
    let e = EmpiricalTable::load(&path).unwrap_err().to_string();
    assert!(e.contains("line 1000001: more than 1000000 rows"), "{e}");
    fs::write(&path, "100,1\n".repeat(1000)).unwrap();
    assert!(EmpiricalTable::load(&path).is_ok());
}

#[test]
fn spec_file_past_1_mib_is_refused_before_parsing() {
    let dir = Scratch::new("spec");
    let path = dir.join("big.toml");
    let phase = "[[phases]]\nname = \"p\"\nops = 1\n";
    let text = phase.repeat((50 << 20) / phase.len());
    fs::write(&path, &text).unwrap();
    let e = WorkloadSpec::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("larger than 1048576 bytes"), "{e}");
    assert_eq!(SPEC_FILE_MAX, 1 << 20);
    let e = WorkloadSpec::from_toml(&text).unwrap_err();
    assert!(e.contains("more than 1048576"), "{e}");
}

#[test]
fn spec_with_more_than_10000_phases_is_refused() {
    let text = "[[phases]]\n".repeat(PHASES_MAX + 1);
    let e = WorkloadSpec::from_toml(&text).unwrap_err();
    assert_eq!(
        e,
        "the spec has 10001 phases, more than 10000, the most a spec may have"
    );
    let inline = format!(
        "name = \"s\"\nkeyspace = 100\nmix = {{ get = 1.0 }}\n\
         key_size = {{ dist = \"fixed\", size = 8 }}\n\
         value_size = {{ dist = \"fixed\", size = 8 }}\nphases = [{}]\n",
        "{ name = \"p\", ops = 1 },".repeat(PHASES_MAX + 1)
    );
    let e = WorkloadSpec::from_toml(&inline).unwrap_err();
    assert!(e.contains("10001 phases"), "{e}");
}

#[test]
fn toml_error_does_not_echo_a_long_line_back() {
    let text = format!("keyspace = {}x\n", "1".repeat(500_000));
    let e = WorkloadSpec::from_toml(&text).unwrap_err();
    assert!(e.len() < 2_000, "{} bytes", e.len());
    assert!(e.contains("..."), "{e}");
}

#[test]
fn duplicate_keys_in_a_spec_are_refused() {
    let e = WorkloadSpec::from_toml("keyspace = 10\nkeyspace = 20\n").unwrap_err();
    assert!(e.contains("duplicate key"), "{e}");
}

#[test]
fn records_past_2_pow_32_are_refused() {
    let params = |r: u64| PresetParams {
        records: Some(r),
        ..PresetParams::default()
    };
    let e = presets::preset("ycsb-a", &params(100_000_000_000_000)).unwrap_err();
    assert!(e.to_string().contains("more than 4294967296"), "{e}");
    assert!(presets::preset("ycsb-a", &params(RECORDS_MAX)).is_ok());
}
