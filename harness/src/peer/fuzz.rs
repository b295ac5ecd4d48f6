//! Fuzzing the reply readers: generated and mutated server replies, memcached's text protocol
//! and RESP, read as the replay reads them, over a real loopback connection. Every input must
//! give outcomes or an error, never a panic; a declared length is never allocated before the
//! bytes arrive ([`super::conn::Conn::take`] grows with what is read). The short pass is part
//! of the tests; `FRAGLAB_FUZZ_INPUTS=1000000` (a tenth of it here) runs more.

use std::io::Write as _;
use std::net::{Shutdown, TcpListener};

use fraglab_workloads::rng::Rng;

use super::conn::Conn;
use super::protocol::{Expect, Outcome};

/// A protocol's reader of one reply.
type ReadReply = fn(&mut Conn, Expect) -> std::io::Result<Outcome>;

const EXPECTS: [Expect; 7] = [
    Expect::Retrieval,
    Expect::Multi,
    Expect::Store,
    Expect::Concat,
    Expect::Arith,
    Expect::Delete,
    Expect::Touch,
];

/// Replies a server can send, valid ones.
const TEXT_SEEDS: &[&[u8]] = &[
    b"VALUE k 0 3\r\nabc\r\nEND\r\n",
    b"VALUE k 0 0\r\n\r\nVALUE j 0 2\r\nxy\r\nEND\r\n",
    b"END\r\nSTORED\r\nNOT_STORED\r\nEXISTS\r\nNOT_FOUND\r\n",
    b"12345\r\nDELETED\r\nTOUCHED\r\n",
    b"SERVER_ERROR out of memory storing object\r\nCLIENT_ERROR bad data chunk\r\n",
];
const RESP_SEEDS: &[&[u8]] = &[
    b"+OK\r\n$3\r\nabc\r\n$-1\r\n:42\r\n",
    b"*2\r\n$1\r\na\r\n$-1\r\n*0\r\n*-1\r\n",
    b"-OOM command not allowed\r\n-ERR value is not an integer\r\n:0\r\n:1\r\n",
    b"*3\r\n*1\r\n:1\r\n$2\r\nab\r\n+QUEUED\r\n",
];

fn mutate(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len() as u64) as usize].to_vec();
    const EDGE: &[u8] = b"\0\xff\r\n$*:+-0123456789 ";
    for _ in 0..=rng.below(4) {
        let at = if v.is_empty() {
            0
        } else {
            rng.below(v.len() as u64) as usize
        };
        match rng.below(5) {
            0 if !v.is_empty() => v[at] = EDGE[rng.below(EDGE.len() as u64) as usize],
            1 => {
                let huge = ["4294967295", "536870913", "99999999999999999999", "-2"];
                v.splice(at..at, huge[rng.below(4) as usize].bytes());
            }
            2 if !v.is_empty() => {
                let end = (at + 1 + rng.below(8) as usize).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let copy = v.clone();
                v.splice(at..at, copy);
            }
            _ => v.truncate(at),
        }
    }
    v
}

/// Reads replies to `input`, sent by a loopback peer that then closes, until an error.
fn read_all(input: &[u8], read: ReadReply) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    let bytes = input.to_vec();
    let server = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.write_all(&bytes);
            let _ = s.shutdown(Shutdown::Write);
            // Hold the socket open until the reader is done (it closes its end).
            let _ = std::io::copy(&mut s, &mut std::io::sink());
        }
    });
    let mut conn = Conn::connect(port).expect("a connection");
    let mut outcomes = 0;
    for i in 0.. {
        match read(&mut conn, EXPECTS[i % EXPECTS.len()]) {
            Ok(_) => outcomes += 1,
            Err(_) => break,
        }
    }
    drop(conn);
    server.join().expect("the peer thread");
    outcomes
}

fn inputs() -> u64 {
    std::env::var("FRAGLAB_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(2_000, |n| n / 10)
}

#[test]
fn reply_readers_give_outcomes_or_errors() {
    let mut rng = Rng::new(7);
    let n = inputs();
    let mut outcomes = 0;
    for i in 0..n {
        let (seeds, read): (&[&[u8]], ReadReply) = if i % 2 == 0 {
            (TEXT_SEEDS, super::text::read_outcome)
        } else {
            (RESP_SEEDS, super::resp::read_outcome)
        };
        outcomes += read_all(&mutate(&mut rng, seeds), read);
    }
    eprintln!("fuzz: {n} reply inputs, {outcomes} outcomes read");
    assert!(outcomes > 0);
}
