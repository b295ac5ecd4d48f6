//! The `resp` trace format's limits: arrays and bulk strings over them are refused before
//! anything is allocated for them, values stream through without being held, and a command's
//! queue of ops costs 16 bytes an op. A counting allocator measures what each test's thread
//! asks for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Cursor, Read};

use fraglab_workloads::trace::{
    TraceFormat, TraceOptions, TraceReader, RESP_ARRAY_MAX, RESP_BULK_MAX,
};
use fraglab_workloads::{Op, OpKind};

#[allow(dead_code)] // The scratch directory is not needed here.
mod common;
use common::resp::{cmds, key, plain, read, reader};

/// The system allocator, counting the bytes each thread asks for (tests run in parallel, so
/// a global count would mix them).
struct Counting;

thread_local! {
    static ASKED: Cell<u64> = const { Cell::new(0) };
}

fn count(n: usize) {
    let _ = ASKED.try_with(|c| c.set(c.get() + n as u64));
}

// SAFETY: every call is passed on to `System` unchanged; the counter is only arithmetic on a
// thread-local that needs no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract for `alloc` is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: the caller's contract for `realloc` is `System::realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes this thread asked the allocator for while `f` ran.
fn asked<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ASKED.with(Cell::get);
    let out = f();
    (out, ASKED.with(Cell::get) - before)
}

#[test]
fn limits_are_refused_before_anything_is_allocated() {
    let array_over = format!("*{}\r\n", RESP_ARRAY_MAX + 1).into_bytes();
    let err = read(array_over).unwrap_err().to_string();
    assert!(
        err.contains("an array at byte 0 declares more than 1048576 elements; refused"),
        "{err}"
    );
    let mut bulk_over = b"*2\r\n$3\r\nSET\r\n".to_vec();
    bulk_over.extend(format!("${}\r\n", RESP_BULK_MAX + 1).bytes());
    let err = read(bulk_over).unwrap_err().to_string();
    assert!(
        err.contains("a bulk string at byte 13 declares more than 536870912 bytes (512 MiB, Redis's proto-max-bulk-len); refused"),
        "{err}"
    );
    // Huge numbers stop at the digit that passes the limit.
    let err = read(b"*99999999999999999999999999999\r\n".to_vec())
        .unwrap_err()
        .to_string();
    assert!(err.contains("declares more than 1048576 elements"), "{err}");
    // At the limits, declared but not sent: an error about the truncation, and the reader
    // asks for no more than it does for a small command.
    for declared in [
        format!("*{RESP_ARRAY_MAX}\r\n$4\r\nMGET\r\n$1\r\na\r\n"),
        format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${RESP_BULK_MAX}\r\nAAAA"),
    ] {
        let mut r = reader(declared.clone().into_bytes(), false);
        let (err, bytes) = asked(|| r.next().unwrap().unwrap_err());
        assert!(err.message.contains("is cut short"), "{err}");
        assert!(bytes < 64 << 10, "{declared:?}: {bytes} bytes asked for");
    }
}

#[test]
fn large_values_stream_through_without_being_held() {
    const LEN: u64 = 64 << 20;
    let head = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${LEN}\r\n").into_bytes();
    let mut tail = b"\r\n".to_vec();
    tail.extend(cmds(&["GET big"]));
    let input = Cursor::new(head)
        .chain(std::io::repeat(b'A').take(LEN))
        .chain(Cursor::new(tail));
    let opts = TraceOptions {
        format: Some(TraceFormat::Resp),
        ..TraceOptions::default()
    };
    let mut r = TraceReader::from_reader("big.resp", input, &opts).unwrap();
    let (ops, bytes) = asked(|| r.by_ref().collect::<Result<Vec<Op>, _>>());
    let ops = ops.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops,
        [
            plain(OpKind::Set, "big", LEN as u32, 0),
            plain(OpKind::Get, "big", 0, 0)
        ]
    );
    assert!(
        bytes < 1 << 20,
        "{bytes} bytes asked for a {LEN}-byte value"
    );
}

#[test]
fn a_million_element_command_is_queued_compactly() {
    // MGET of 2^20 - 1 keys: the most an array allows.
    let n = RESP_ARRAY_MAX as usize - 1;
    let mut bytes = format!("*{}\r\n$4\r\nMGET\r\n", n + 1).into_bytes();
    for i in 0..n {
        let k = format!("{:x}", i % 4096);
        bytes.extend_from_slice(format!("${}\r\n{k}\r\n", k.len()).as_bytes());
    }
    let mut r = reader(bytes, false);
    let (first, asked_bytes) = asked(|| r.next().unwrap().unwrap());
    assert_eq!(first.key, key("0"));
    // 16 bytes an op (the queue doubles as it grows: at most 32 MiB asked in all).
    assert!(asked_bytes <= 40 << 20, "{asked_bytes}");
    assert_eq!(r.by_ref().count(), n - 1);
    assert_eq!(r.records(), 1);
}
