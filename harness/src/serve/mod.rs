//! `fraglab serve`: one engine instance behind a real protocol (memcached's text protocol, or
//! RESP), so real clients and load generators (`memccapable`, `memcslap`, `redis-benchmark`,
//! `redis-cli`, an application) drive the model.
//!
//! The server runs on tokio's single-threaded runtime, as memcached's worker or Redis's main
//! thread runs its event loop: every connection is a task on one thread, and the store (which
//! holds raw pointers into the allocator and is not `Send`) is shared between them through an
//! `Rc<RefCell<Ctx>>`. A task reads what the client sent, hands every complete request in its
//! buffer to the protocol ([`Protocol::handle`]), which runs them in order against the store
//! and appends their replies, and writes the replies back: pipelining falls out of this. A
//! request is never half run: the protocol only consumes complete requests.
//!
//! Time in the store is whole seconds since the server started, so TTLs expire in real time.
//! With the redis layout the active expiry pass runs every 100 ms (Redis's `hz 10`).
//!
//! Bounds: at most `--max-clients` connections (more are refused, as memcached and Redis refuse
//! them); a client's unparsed input is capped (`MAX_PENDING`) and its connection closed past
//! it; every read waits at most `--timeout` seconds for the client (idle clients are closed, as
//! Redis's `timeout` does) and every write at most [`WRITE_TIMEOUT`].

mod ctx;
pub mod memcache;
pub mod resp;
mod resp_agg;
mod resp_cmds;
mod resp_conn;
mod resp_info;
mod resp_parse;
mod resp_zset;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};
use fraglab_allocators::{AllocSpec, Allocator};
use fraglab_engine::{with_store, Layout, Policy, Store, StoreConfig, WithStore};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub use ctx::{Ctx, ServeConfig};

/// The longest a write to a client may take before the client is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Unparsed input a client may have pending (a request larger than this can never complete):
/// Redis's `client-query-buffer-limit` default, 1 GiB.
pub const MAX_PENDING: usize = 1 << 30;
/// How much is read from a socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// Which protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolKind {
    /// memcached 1.6's text protocol, with the meta commands.
    Memcached,
    /// Redis's RESP2, and RESP3 after `HELLO 3`.
    Resp,
}

/// `fraglab serve`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The allocator spec (`fraglab list allocators`).
    #[arg(long, default_value = "slab")]
    pub alloc: String,
    /// The layout (default: the allocator's: memcached for slab, redis for zmalloc, compact
    /// otherwise), with its parameters (`redis:hash-max-listpack-entries=128`).
    #[arg(long)]
    pub layout: Option<String>,
    /// The protocol.
    #[arg(long, value_enum)]
    pub protocol: ProtocolKind,
    /// The TCP port (0: any free port; the port taken is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The address to listen on. Loopback by default; any other address is an explicit choice.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// The memory limit (memcached's `-m`, Redis's `maxmemory`), e.g. `64m`.
    #[arg(long)]
    pub memory: Option<String>,
    /// The eviction policy (default: the allocator's).
    #[arg(long)]
    pub evict: Option<String>,
    /// The most clients connected at once.
    #[arg(long, default_value_t = 1024)]
    pub max_clients: usize,
    /// Seconds a client may stay idle before it is closed.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// What one connection's protocol state does with a buffer of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Handled {
    /// Bytes of input consumed (complete requests only).
    pub consumed: usize,
    /// Close the connection once the replies are written (QUIT, or a protocol error).
    pub close: bool,
}

/// A protocol: the state of one connection, and how it runs requests.
pub trait Protocol: Default + 'static {
    /// Runs every complete request at the start of `input` against `ctx`, in order, appending
    /// the replies to `out`; stops at the first incomplete request. A malformed request gets
    /// the protocol's error reply and `close`.
    fn handle<A: Allocator, L: Layout>(
        &mut self,
        ctx: &mut Ctx<A, L>,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Handled;
}

/// Serves until interrupted (Ctrl-C or SIGTERM). Prints `listening on ADDR` first.
pub fn serve_cmd(args: &ServeArgs) -> Result<(), String> {
    let alloc: AllocSpec = args.alloc.parse().map_err(|e| format!("--alloc: {e}"))?;
    let (default_layout, default_policy) = crate::spec::defaults_for(&alloc);
    let (layout, agg) = match &args.layout {
        Some(l) => fraglab_engine::layout::parse_layout(l).map_err(|e| format!("--layout: {e}"))?,
        None => (default_layout, Default::default()),
    };
    let policy = match &args.evict {
        Some(p) => p.parse::<Policy>().map_err(|e| format!("--evict: {e}"))?,
        None => default_policy,
    };
    let memory = args
        .memory
        .as_deref()
        .map(|m| crate::size_arg("memory", m))
        .transpose()?;
    crate::spec::check_file_memory(&alloc, memory)?;
    if args.max_clients == 0 {
        return Err("--max-clients 0: the server needs at least one client".into());
    }
    if args.timeout == 0 {
        return Err("--timeout 0: give the seconds an idle client may stay".into());
    }
    let addr: SocketAddr = format!("{}:{}", args.bind, args.port)
        .parse()
        .map_err(|e| format!("--bind {} --port {}: {e}", args.bind, args.port))?;
    let config = StoreConfig {
        policy,
        seed: 1,
        limited: memory.is_some(),
        agg,
        ..StoreConfig::default()
    };
    let serve = ServeConfig {
        protocol: args.protocol,
        addr,
        max_clients: args.max_clients,
        timeout: Duration::from_secs(args.timeout),
        memory,
        alloc: alloc.to_string(),
        layout,
        policy,
    };
    with_store(&alloc, layout, memory, config, Run { serve }).map_err(|e| e.to_string())?
}

struct Run {
    serve: ServeConfig,
}

impl WithStore for Run {
    type Output = Result<(), String>;

    fn run<A: Allocator, L: Layout>(self, store: Store<A, L>) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the runtime: {e}"))?;
        let proto = self.serve.protocol;
        let ctx = RefCell::new(Ctx::new(store, self.serve));
        rt.block_on(async {
            match proto {
                ProtocolKind::Memcached => listen::<A, L, memcache::Memcache>(&ctx).await,
                ProtocolKind::Resp => listen::<A, L, resp::Resp>(&ctx).await,
            }
        })
    }
}

/// Accepts connections until Ctrl-C or SIGTERM. The connections are futures polled by this
/// one (`FuturesUnordered`) on the runtime's one thread, borrowing the shared state.
async fn listen<A: Allocator, L: Layout, P: Protocol>(
    ctx: &RefCell<Ctx<A, L>>,
) -> Result<(), String> {
    let addr = ctx.borrow().config.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listening on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    crate::stdout::print(&format!("listening on {local}\n")).map_err(|e| e.to_string())?;
    let background = {
        let c = ctx.borrow();
        let layout = c.config.layout;
        layout.redis_semantics()
            || layout == fraglab_engine::LayoutKind::Segcache
            || c.store.allocator().automove_mode() != 0
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut conns = FuturesUnordered::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (sock, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        crate::note!("accept: {e}");
                        continue;
                    }
                };
                let admitted = ctx.borrow_mut().admit();
                conns.push(client::<A, L, P>(ctx, sock, peer, admitted));
            }
            Some(()) = conns.next(), if !conns.is_empty() => {}
            _ = tick.tick(), if background => ctx.borrow_mut().background(),
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    crate::note!("serve: stopped");
    Ok(())
}

/// A client from accept to close: refused over `--max-clients` (as Redis refuses with `-ERR
/// max number of clients reached`, memcached with `ERROR Too many open connections`), served
/// otherwise.
async fn client<A: Allocator, L: Layout, P: Protocol>(
    ctx: &RefCell<Ctx<A, L>>,
    mut sock: TcpStream,
    peer: SocketAddr,
    admitted: bool,
) {
    if !admitted {
        let msg: &[u8] = match ctx.borrow().config.protocol {
            ProtocolKind::Resp => b"-ERR max number of clients reached\r\n",
            ProtocolKind::Memcached => b"ERROR Too many open connections\r\n",
        };
        let _ = tokio::time::timeout(WRITE_TIMEOUT, sock.write_all(msg)).await;
        return;
    }
    if let Err(e) = connection::<A, L, P>(ctx, sock).await {
        crate::note!("client {peer}: {e}");
    }
    ctx.borrow_mut().leave();
}

/// One client: read, run the complete requests, write the replies, until it closes.
async fn connection<A: Allocator, L: Layout, P: Protocol>(
    ctx: &RefCell<Ctx<A, L>>,
    mut sock: TcpStream,
) -> Result<(), String> {
    let _ = sock.set_nodelay(true);
    let idle = ctx.borrow().config.timeout;
    let mut proto = P::default();
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut start = 0usize;
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        if input.len() - start > MAX_PENDING {
            return Err(format!(
                "more than {MAX_PENDING} bytes of one request; closed"
            ));
        }
        if start > 0 && start == input.len() {
            input.clear();
            start = 0;
        }
        // Read into the spare capacity (no zeroing of a 64 KiB chunk per read).
        input.reserve(READ_CHUNK);
        let n = match tokio::time::timeout(idle, sock.read_buf(&mut input)).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) => return Err(format!("read: {e}")),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return Ok(());
        }
        let handled = {
            let mut c = ctx.borrow_mut();
            proto.handle(&mut c, &input[start..], &mut out)
        };
        start += handled.consumed;
        if !out.is_empty() {
            match tokio::time::timeout(WRITE_TIMEOUT, sock.write_all(&out)).await {
                Err(_) => return Err("write timed out".into()),
                Ok(Err(e)) => return Err(format!("write: {e}")),
                Ok(Ok(())) => {}
            }
            out.clear();
        }
        if handled.close {
            let _ = sock.shutdown().await;
            return Ok(());
        }
        if start > READ_CHUNK && start * 2 > input.len() {
            input.drain(..start);
            start = 0;
        }
    }
}
