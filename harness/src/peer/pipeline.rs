//! A real server as a [`Target`]: ops are encoded into pipelined batches, sent, and their
//! replies counted (see the module docs of [`super`] for the batching and demand-fill rules).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fraglab_reports::Sample;
use fraglab_workloads::{Op, OpKind};
use hdrhistogram::Histogram;

use super::protocol::{Expect, Outcome, Peer, Pending};
use crate::driver::{histogram, latency, Target, TargetEnd, TargetFailure};
use crate::values::{ValueBytes, Values};

/// Ops per pipelined batch.
pub const BATCH: usize = 128;
/// A batch ends early once its requests reach this many bytes.
pub const BATCH_BYTES: usize = 4 << 20;

/// A key's identity for payload tracking: the id as its bytes show it (a key shorter than its
/// id's digits keeps the low digits only), and the length.
fn key_identity(op: &Op) -> (u64, u16) {
    let k = op.key;
    let bits = 6 * u32::from(k.len);
    let id = if bits >= 64 {
        k.id
    } else {
        k.id & ((1u64 << bits) - 1)
    };
    (id, k.len)
}

/// What the client counts from the replies, and the payload it stored.
pub(super) struct ReplyCounters {
    sets: u64,
    deletes: u64,
    oom: u64,
    errors: BTreeMap<String, u64>,
    /// Value length per live key (Redis only).
    live: HashMap<(u64, u16), u32>,
    payload: u64,
    track: bool,
}

impl ReplyCounters {
    /// Nothing counted; `track`: follow the payload per key (the server does not report it).
    pub(super) fn new(track: bool) -> ReplyCounters {
        ReplyCounters {
            sets: 0,
            deletes: 0,
            oom: 0,
            errors: BTreeMap::new(),
            live: HashMap::new(),
            payload: 0,
            track,
        }
    }

    fn store(&mut self, op: &Op, value_len: u64) {
        self.sets += 1;
        if self.track {
            let value_len = value_len.min(u64::from(u32::MAX)) as u32;
            let key_len = u64::from(op.key.len);
            let old = self.live.insert(key_identity(op), value_len);
            if let Some(old) = old {
                self.payload -= key_len + u64::from(old);
            }
            self.payload += key_len + u64::from(value_len);
        }
    }

    fn delete(&mut self, op: &Op) {
        self.deletes += 1;
        if self.track {
            if let Some(old) = self.live.remove(&key_identity(op)) {
                self.payload -= u64::from(op.key.len) + u64::from(old);
            }
        }
    }

    fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_insert(0) += 1;
    }

    /// Counts one reply; returns whether it was a miss of a get to fill.
    fn note(&mut self, p: &Pending, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Miss => return p.op.fill && p.expect == Expect::Retrieval,
            Outcome::Hit | Outcome::NotStored | Outcome::NotFound | Outcome::Touched => {}
            Outcome::Stored => self.store(&p.op, u64::from(p.op.value_len)),
            Outcome::Len(n) => self.store(&p.op, n),
            Outcome::Deleted => self.delete(&p.op),
            // The payload of aggregates is not tracked client-side.
            Outcome::Agg { writes } => self.sets += u64::from(writes),
            Outcome::Oom => self.oom += 1,
            Outcome::Error(kind) => self.error(&kind),
        }
        false
    }
}

/// A demand fill: the set that follows a get that missed.
fn fill_op(get: &Op) -> Op {
    Op {
        kind: OpKind::Set,
        fill: false,
        ..*get
    }
}

/// The longest single sleep of a paced replay: Ctrl-C is read between sleeps.
const PACE_SLICE: Duration = Duration::from_millis(200);

/// A paced replay's clock: op `t` is due `t - first` after `start`.
///
/// The start is set on the server's own clock where it has one that matters
/// ([`Peer::clock_tick`]: memcached's once-a-second `current_time`): the replay waits for the
/// clock to tick, and trace second `k` (from the first op's whole second) begins `k` seconds
/// after that tick, as the engine's ticks fall on the trace's whole seconds. A replay begun at
/// another phase of the server's second lands a second's ops in two of the server's seconds,
/// and memcached's slab automover, which compares items' ages in whole seconds, decides
/// otherwise from run to run.
struct Pace {
    /// The first op's send time and trace time (µs).
    start: Option<(Instant, u64)>,
    /// When the first op of the batch being built was due.
    batch_due: Option<Instant>,
    /// The last op's trace time (µs).
    last_us: u64,
    /// The latest a batch went out after it was due.
    late_max: Duration,
    /// When the last batch's replies were read.
    last_reply: Option<Instant>,
    /// How long the replay waited for the server's clock to tick ([`Peer::clock_tick`]).
    tick_wait: Option<Duration>,
}

impl Pace {
    fn new() -> Pace {
        Pace {
            start: None,
            batch_due: None,
            last_us: 0,
            late_max: Duration::ZERO,
            last_reply: None,
            tick_wait: None,
        }
    }

    /// Starts the clock with the first op (`op`): its trace second begins at `tick`.
    fn begin(&mut self, tick: Instant, op: &Op) {
        let into_second = Duration::from_micros(op.time_us % 1_000_000);
        self.start = Some((tick + into_second, op.time_us));
    }

    /// When `op` is due ([`Pace::begin`] first).
    fn due(&mut self, op: &Op) -> Instant {
        let (start, first) = *self.start.get_or_insert((Instant::now(), op.time_us));
        self.last_us = self.last_us.max(op.time_us);
        start + Duration::from_micros(op.time_us.saturating_sub(first))
    }

    fn report(&self) -> Option<fraglab_reports::Pacing> {
        let (start, first) = self.start?;
        Some(fraglab_reports::Pacing {
            trace_s: self.last_us.saturating_sub(first) as f64 / 1e6,
            wall_s: self
                .last_reply
                .map_or(0.0, |t| t.duration_since(start).as_secs_f64()),
            late_max_ms: self.late_max.as_secs_f64() * 1e3,
            tick_wait_ms: self.tick_wait.map(|w| w.as_secs_f64() * 1e3),
        })
    }
}

/// Sleeps until `due`, in slices that read Ctrl-C (which ends the wait).
fn sleep_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due || crate::STOP.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((due - now).min(PACE_SLICE));
    }
}

/// A real server being replayed into, a pipelined batch at a time.
pub struct PeerTarget<P: Peer> {
    peer: P,
    values: Values,
    counters: ReplyCounters,
    out: Vec<u8>,
    pending: Vec<Pending>,
    outcomes: Vec<Outcome>,
    /// Sets to send for gets of the last batch that missed.
    fills: Vec<Op>,
    /// Keys of this batch's gets that fill on a miss.
    fill_keys: HashSet<(u64, u16)>,
    /// Ops of the workload in this batch (fills not counted).
    batch_ops: usize,
    rtt: Histogram<u64>,
    batches: u64,
    time_rtt: bool,
    /// Aggregate ops sent (the server's aggregates are read back at the end if any).
    agg_ops: u64,
    /// With `--pace`: ops go out no earlier than their trace time after the first op's.
    pace: Option<Pace>,
}

impl<P: Peer> PeerTarget<P> {
    /// Drives `peer` (started); `time_rtt`: record every batch's round trip.
    pub fn new(peer: P, values: ValueBytes, time_rtt: bool) -> PeerTarget<P> {
        let track = peer.tracks_payload();
        PeerTarget {
            peer,
            values: Values::new(values),
            counters: ReplyCounters::new(track),
            out: Vec::with_capacity(1 << 16),
            pending: Vec::with_capacity(BATCH * 2),
            outcomes: Vec::with_capacity(BATCH * 2),
            fills: Vec::new(),
            fill_keys: HashSet::new(),
            batch_ops: 0,
            rtt: histogram(600_000_000_000),
            batches: 0,
            time_rtt,
            agg_ops: 0,
            pace: None,
        }
    }

    /// Paces the replay: each op is sent no earlier than its trace time after the first op
    /// (ops already due go out together in a batch; an op not yet due first sends the batch
    /// waiting, then waits for its time).
    pub fn paced(mut self, pace: bool) -> PeerTarget<P> {
        self.pace = pace.then(Pace::new);
        self
    }

    /// Sends one command outside the op stream, after what is queued, and returns its
    /// one-line reply (memcached's `slabs reassign SRC DST`: `OK` or an error).
    pub(crate) fn command(&mut self, line: &[u8]) -> io::Result<String> {
        self.drain().map_err(|e| io::Error::other(e.0))?;
        self.peer.conn().exchange(
            line,
            |c| Ok(String::from_utf8_lossy(c.line()?).into_owned()),
        )
    }

    /// The server's peer (its figures as of the last [`Target::read`]).
    pub(crate) fn peer(&self) -> &P {
        &self.peer
    }

    /// The server's peer, to ask it what the op stream does not (after what is queued is
    /// sent: see [`PeerTarget::command`]).
    pub(crate) fn peer_mut(&mut self) -> &mut P {
        &mut self.peer
    }

    /// Encodes `op` into the batch, or counts why it cannot be sent.
    fn encode(&mut self, op: &Op) {
        let value = self.values.get(op.value_len);
        if let Err(kind) = self
            .peer
            .encode(op, value, &mut self.out, &mut self.pending)
        {
            self.counters.error(kind);
        }
    }

    /// Starts a batch: the fills of the last one go first.
    fn start_batch(&mut self) {
        let fills = std::mem::take(&mut self.fills);
        for f in &fills {
            self.encode(f);
        }
        self.fill_keys.clear();
    }

    /// Sends the batch, reads its replies and counts them; misses to fill are queued.
    fn send(&mut self) -> io::Result<()> {
        self.batch_ops = 0;
        if self.pending.is_empty() {
            self.out.clear();
            if let Some(p) = &mut self.pace {
                p.batch_due = None;
            }
            return Ok(());
        }
        let t = Instant::now();
        self.outcomes.clear();
        let (pending, outcomes) = (&self.pending, &mut self.outcomes);
        let r = self.peer.conn().exchange(&self.out, |c| {
            for p in pending {
                outcomes.push(P::read(c, p.expect)?);
            }
            Ok(())
        });
        let took = t.elapsed();
        r?;
        if let Some(p) = &mut self.pace {
            if let Some(due) = p.batch_due.take() {
                p.late_max = p.late_max.max(t.saturating_duration_since(due));
            }
            p.last_reply = Some(Instant::now());
        }
        self.batches += 1;
        if self.time_rtt {
            self.rtt.saturating_record((took.as_nanos() as u64).max(1));
        }
        for (p, o) in self.pending.iter().zip(self.outcomes.drain(..)) {
            if self.counters.note(p, o) {
                self.fills.push(fill_op(&p.op));
            }
        }
        self.out.clear();
        self.pending.clear();
        Ok(())
    }
}

fn failed(e: io::Error) -> TargetFailure {
    TargetFailure(e.to_string())
}

impl<P: Peer> Target for PeerTarget<P> {
    fn rss_baseline(&mut self) -> u64 {
        self.peer.rss_baseline()
    }

    fn apply(&mut self, op: &Op) -> Result<(), TargetFailure> {
        if let Some(p) = &mut self.pace {
            if p.start.is_none() {
                let asked = Instant::now();
                match self.peer.clock_tick().map_err(failed)? {
                    Some(tick) => {
                        p.tick_wait = Some(tick.saturating_duration_since(asked));
                        p.begin(tick, op);
                    }
                    None => p.begin(asked, op),
                }
            }
            let due = p.due(op);
            if Instant::now() < due {
                // What is queued is due already: send it, then wait for this op's time.
                self.send().map_err(failed)?;
                sleep_until(due);
            }
            if let Some(p) = &mut self.pace {
                p.batch_due.get_or_insert(due);
            }
        }
        if self.batch_ops == 0 && self.pending.is_empty() {
            self.start_batch();
        }
        // A key whose get may need a fill ends the batch: the fill goes first.
        if !self.fill_keys.is_empty() && self.fill_keys.contains(&key_identity(op)) {
            self.send().map_err(failed)?;
            self.start_batch();
        }
        if op.fill && matches!(op.kind, OpKind::Get | OpKind::Gets) {
            self.fill_keys.insert(key_identity(op));
        }
        self.encode(op);
        self.agg_ops += u64::from(op.kind.is_aggregate());
        self.batch_ops += 1;
        if self.batch_ops >= BATCH || self.out.len() >= BATCH_BYTES {
            self.send().map_err(failed)?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<(), TargetFailure> {
        self.send().map_err(failed)?;
        // The fills of that batch in a round trip of their own.
        if !self.fills.is_empty() {
            self.start_batch();
            self.send().map_err(failed)?;
        }
        Ok(())
    }

    fn times_ops(&self) -> bool {
        false
    }

    fn read(&mut self, phase_end: bool) -> Result<Sample, TargetFailure> {
        let f = self
            .peer
            .sample(phase_end, self.counters.payload)
            .map_err(failed)?;
        Ok(Sample {
            op: 0,
            phase: 0,
            time_s: 0.0,
            elapsed_s: 0.0,
            memory: f.memory,
            hits: f.hits,
            misses: f.misses,
            sets: self.counters.sets,
            deletes: self.counters.deletes,
            evictions: f.evictions,
            expired: f.expired,
            oom_errors: self.counters.oom,
            class_pages: None,
        })
    }

    fn failure(&mut self, e: &TargetFailure, ops: u64) -> String {
        let in_flight = self.batch_ops as u64;
        let server = self.peer.server();
        let (program, pid, port) = (server.program, server.pid(), server.port);
        let done = ops.saturating_sub(in_flight);
        if crate::STOP.load(Ordering::Relaxed) {
            // Ctrl-C ended a wait on the server: the driver says "interrupted".
            return format!(
                "no last sample: {program} (pid {pid}, 127.0.0.1:{port}) was not answering"
            );
        }
        let died = server
            .exited_within(Duration::from_millis(500))
            .map(|s| s.to_string());
        // A server run by a wrapper is not our child: its status is the wrapper's.
        let died = died.or_else(|| {
            (!super::group::running(pid)).then(|| "its status is its parent's".to_string())
        });
        match died {
            Some(status) => format!(
                "{program} (pid {pid}) died ({status}) after {done} ops: {}",
                e.0
            ),
            None => format!(
                "the connection to {program} (pid {pid}, 127.0.0.1:{port}) failed after {done} \
                 ops: {}",
                e.0
            ),
        }
    }

    fn end(mut self) -> TargetEnd {
        let mut latency = BTreeMap::new();
        if self.batches > 0 && self.time_rtt {
            latency.insert(
                "round_trip".to_string(),
                self::latency(self.batches, &self.rtt),
            );
        }
        let mut server = self.peer.server_info();
        server.pacing = self.pace.as_ref().and_then(Pace::report);
        TargetEnd {
            command_errors: std::mem::take(&mut self.counters.errors),
            latency,
            allocator_detail: self.peer.detail(),
            library_versions: self.peer.library_versions(),
            server: Some(server),
            aggregates: if self.agg_ops > 0 {
                fraglab_reports::Aggregates {
                    commands: self.agg_ops,
                    ..self.peer.aggregates()
                }
            } else {
                fraglab_reports::Aggregates::default()
            },
            defrag: None,
            snapshot: None,
            aof: None,
            restart: None,
        }
        // The server stops when `self.peer` drops, here.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fraglab_workloads::Key;

    fn op(kind: OpKind, id: u64, len: u16, value_len: u32) -> Op {
        Op {
            time_us: 0,
            kind,
            key: Key { id, len },
            value_len,
            ttl: 0,
            fill: false,
            phase: 0,
            member: Key::NONE,
        }
    }

    #[test]
    fn a_paced_replay_starts_the_first_ops_second_on_the_tick() {
        let tick = Instant::now();
        let at = |us| Op {
            time_us: us,
            ..op(OpKind::Get, 1, 8, 0)
        };
        let mut p = Pace::new();
        // The first op is 0.3 s into its trace second (second 4): that second began on the tick.
        p.begin(tick, &at(4_300_000));
        assert_eq!(p.due(&at(4_300_000)), tick + Duration::from_millis(300));
        // Second 5 of the trace begins a second after the tick, second 6 two.
        assert_eq!(p.due(&at(5_000_000)), tick + Duration::from_secs(1));
        assert_eq!(p.due(&at(6_250_000)), tick + Duration::from_millis(2250));
        let r = p.report().unwrap();
        assert!((r.trace_s - 1.95).abs() < 1e-9, "{r:?}");
        assert_eq!(r.tick_wait_ms, None);
    }

    #[test]
    fn the_payload_follows_stores_and_deletes() {
        let mut c = ReplyCounters::new(true);
        let set = |id, v| Pending {
            op: op(OpKind::Set, id, 8, v),
            expect: Expect::Store,
        };
        assert!(!c.note(&set(1, 100), Outcome::Stored));
        assert!(!c.note(&set(2, 50), Outcome::Stored));
        assert!(!c.note(&set(1, 10), Outcome::Stored));
        assert_eq!(c.payload, 8 + 10 + 8 + 50);
        let del = Pending {
            op: op(OpKind::Delete, 2, 8, 0),
            expect: Expect::Delete,
        };
        c.note(&del, Outcome::Deleted);
        assert_eq!(c.payload, 18);
        let append = Pending {
            op: op(OpKind::Append, 1, 8, 5),
            expect: Expect::Concat,
        };
        c.note(&append, Outcome::Len(15));
        assert_eq!(c.payload, 23);
        // A key shorter than its id's digits is the key of the id's low digits.
        let alias = Pending {
            op: op(OpKind::Set, 1 + (1 << 48), 8, 1),
            expect: Expect::Store,
        };
        c.note(&alias, Outcome::Stored);
        assert_eq!(c.payload, 9);
        c.note(&set(3, 1), Outcome::Oom);
        c.note(&set(3, 1), Outcome::Error("not_an_integer".into()));
        assert_eq!((c.sets, c.deletes, c.oom), (5, 1, 1));
        assert_eq!(c.errors["not_an_integer"], 1);
        let get = Pending {
            op: Op {
                fill: true,
                ..op(OpKind::Get, 9, 8, 30)
            },
            expect: Expect::Retrieval,
        };
        assert!(c.note(&get, Outcome::Miss), "a miss to fill");
        assert!(!c.note(&get, Outcome::Hit));
        let f = fill_op(&get.op);
        assert_eq!((f.kind, f.fill, f.value_len), (OpKind::Set, false, 30));
    }
}
