//! What a peer is: one kind of real server, started and connected, that encodes ops into its
//! protocol, reads their replies and reports its own figures. [`super::pipeline`] drives any
//! of them.

use std::collections::BTreeMap;
use std::io;
use std::time::Instant;

use fraglab_reports::{Memory, ServerInfo};
use fraglab_workloads::Op;

use super::conn::Conn;
use super::server::Server;

/// What a reply is expected to be.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A read of one key: a value or a miss.
    Retrieval,
    /// A read of several keys.
    Multi,
    /// A store (set, add, replace): stored or not.
    Store,
    /// An append or prepend: stored or not; Redis answers the new length.
    Concat,
    /// incr/decr: the new value or not found.
    Arith,
    /// A delete.
    Delete,
    /// A touch / EXPIRE / PERSIST.
    Touch,
    /// `slabs reassign`: `OK`, or a line saying why not.
    Admin,
    /// A command on a hash, set, list or sorted set: any reply but an error is its answer.
    Agg {
        /// Whether it may change the aggregate (counted as a set).
        writes: bool,
    },
}

/// One request in flight.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Pending {
    /// The op it came from (for a demand fill: the get, with `kind` set).
    pub op: Op,
    /// What its reply is.
    pub expect: Expect,
}

/// What a reply said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A read found its key (or a multi-key read ended).
    Hit,
    /// A read did not.
    Miss,
    /// A write stored.
    Stored,
    /// A conditional write did not store.
    NotStored,
    /// A write stored a value of this many bytes (append, incr).
    Len(u64),
    /// A delete removed its key.
    Deleted,
    /// The key was not there (delete, incr, touch).
    NotFound,
    /// A touch changed the key's TTL.
    Touched,
    /// An aggregate command answered.
    Agg {
        /// Whether it was a write.
        writes: bool,
    },
    /// Refused for memory.
    Oom,
    /// Another error, by kind.
    Error(String),
}

/// A server's own figures at a sample.
#[derive(Clone, Debug, Default)]
pub(crate) struct ServerFigures {
    pub memory: Memory,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expired: u64,
}

/// One kind of real server, started and connected.
pub(crate) trait Peer {
    /// The server process.
    fn server(&mut self) -> &mut Server;
    /// The connection for data (Redis replaces it at every sample).
    fn conn(&mut self) -> &mut Conn;
    /// Appends the requests for `op` to `out` and what their replies are to `pending`;
    /// `Err(kind)` when the op cannot be sent (counted as a command error).
    fn encode(
        &mut self,
        op: &Op,
        value: &[u8],
        out: &mut Vec<u8>,
        pending: &mut Vec<Pending>,
    ) -> Result<(), &'static str>;
    /// Reads one reply.
    fn read(conn: &mut Conn, expect: Expect) -> io::Result<Outcome>;
    /// Takes a sample; `settle`: wait until the server's periodic figures are current.
    fn sample(&mut self, settle: bool, payload: u64) -> io::Result<ServerFigures>;
    /// Whether the payload is tracked by the client (Redis) rather than derived (memcached).
    fn tracks_payload(&self) -> bool;
    /// The resident set before any data.
    fn rss_baseline(&self) -> u64;
    /// `allocator_detail` from the last sample.
    fn detail(&self) -> fraglab_reports::AllocatorDetail;
    /// `library_versions`.
    fn library_versions(&self) -> BTreeMap<String, String>;
    /// The server, its version, command line and configuration.
    fn server_info(&self) -> ServerInfo;
    /// Waits for the server's own once-a-second clock to tick and says when it did, so that a
    /// paced replay starts its trace seconds on the server's seconds; `None` (the default)
    /// when the server's clock does not decide what it does with the ops (Redis: the replay
    /// starts at once). Called with nothing in flight.
    fn clock_tick(&mut self) -> io::Result<Option<Instant>> {
        Ok(None)
    }
    /// What the server holds as hashes, sets, lists and sorted sets, read back at the end of
    /// a run that sent aggregate commands (none by default: memcached has no types).
    fn aggregates(&mut self) -> fraglab_reports::Aggregates {
        fraglab_reports::Aggregates::default()
    }
}
