//! Listeners: bind every configured address and run one accept loop per listener.
//!
//! Owns sockets up to the point the connection driver takes them: the connection limit,
//! socket options, spawning, and the transport handshakes. There is one accept loop for
//! every protocol: accept TCP → spawn a task → TLS handshake (`tls`, `wss`) → WebSocket
//! upgrade (`ws`, `wss`) → [`connection::serve`]. Handshakes run in the spawned task under
//! a deadline, never in the loop, so a client that stalls mid-handshake holds up nobody
//! else. It never parses MQTT.

mod tls;
mod ws;
mod ws_io;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ListenerConfig};
use crate::connection::{self, ConnInfo};
use crate::context::Context;
use crate::engine::ConnThreads;
use crate::metrics;

pub use tls::TlsSetup;
pub use ws_io::WsIo;

/// A listener that could not be set up.
#[derive(Debug, Error)]
pub enum ListenerError {
    #[error("listener `{name}`: cannot bind {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A certificate, key or CA file that is missing or unusable.
    #[error("listener `{name}`: {what} {}: {reason}", path.display())]
    TlsFile {
        name: String,
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The TLS material loaded but does not make a working configuration.
    #[error("listener `{name}`: {reason}")]
    Tls { name: String, reason: String },
}

/// How a listener turns an accepted socket into an MQTT byte stream.
#[derive(Debug)]
struct Transport {
    name: String,
    tls: Option<tls::TlsSetup>,
    ws: Option<ws::WsSetup>,
    /// Budget for the TLS handshake and WebSocket upgrade together.
    handshake_timeout: Duration,
}

/// A bound, not yet accepting, listener.
#[derive(Debug)]
pub struct BoundListener {
    pub name: String,
    pub addr: SocketAddr,
    tcp: TcpListener,
    transport: Arc<Transport>,
}

impl BoundListener {
    /// This listener's TLS configuration (`tls`, `wss`), the handle a reload goes through.
    pub fn tls(&self) -> Option<TlsSetup> {
        self.transport.tls.clone()
    }
}

/// Loads every listener's TLS material, then binds every listener, failing on the first
/// file or address that is unusable.
pub async fn bind_all(config: &Config) -> Result<Vec<BoundListener>, ListenerError> {
    let transports = config
        .listeners
        .iter()
        .map(|c| transport(c, config))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(transports.len());
    for (c, transport) in config.listeners.iter().zip(transports) {
        let err = |source| ListenerError::Bind {
            name: c.name.clone(),
            addr: c.bind,
            source,
        };
        let tcp = TcpListener::bind(c.bind).await.map_err(err)?;
        let addr = tcp.local_addr().map_err(err)?;
        out.push(BoundListener {
            name: c.name.clone(),
            addr,
            tcp,
            transport: Arc::new(transport),
        });
    }
    Ok(out)
}

/// The TLS acceptor of the HTTP server's `cert_file` and `key_file`, loaded (and its errors
/// named) as a listener's are.
pub fn https_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, ListenerError> {
    let c = ListenerConfig {
        name: "http".to_owned(),
        protocol: crate::config::ListenerProtocol::Tls,
        cert_file: Some(cert.to_owned()),
        key_file: Some(key.to_owned()),
        ..ListenerConfig::default()
    };
    Ok(tls::TlsSetup::load(&c)?.acceptor())
}

/// Loads every listener's TLS material without binding (for `supermq -t`).
pub fn check_all(config: &Config) -> Result<(), ListenerError> {
    for c in &config.listeners {
        transport(c, config)?;
    }
    Ok(())
}

fn transport(c: &ListenerConfig, config: &Config) -> Result<Transport, ListenerError> {
    let tls = if c.protocol.is_tls() {
        Some(tls::TlsSetup::load(c)?)
    } else {
        None
    };
    let ws = c
        .protocol
        .is_ws()
        .then(|| ws::WsSetup::new(c, config.limits.max_packet_size));
    Ok(Transport {
        name: c.name.clone(),
        tls,
        ws,
        handshake_timeout: c
            .tls_handshake_timeout
            .unwrap_or(config.limits.connect_timeout),
    })
}

/// Accepts connections until `shutdown`, spawning one task per connection on `tracker`.
pub async fn accept_loop(
    l: BoundListener,
    ctx: Arc<Context>,
    limit: Arc<Semaphore>,
    threads: Arc<ConnThreads>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    tracing::info!(listener = %l.name, addr = %l.addr, "listening");
    let index = ctx.config.listeners.iter().position(|c| c.name == l.name);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = l.tcp.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on the error.
                tracing::warn!(listener = %l.name, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        metrics::inc(&ctx.metrics.connections_accepted);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            // Closing at once tells the client more than leaving it in the backlog.
            metrics::inc(&ctx.metrics.connections_rejected_limit);
            tracing::debug!(%peer, "connection refused: limits.max_connections reached");
            continue;
        };
        let permit = Open::new(permit, &ctx, index);
        // Small packets (acks, QoS 0 at low rates) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        if l.transport.tls.is_none() && l.transport.ws.is_none() {
            // Plain MQTT over TCP runs on a connection thread (engine.rs), registered there.
            let stream = match stream.into_std() {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, "cannot hand the connection over: {e}");
                    continue;
                }
            };
            let info = ConnInfo {
                peer,
                cert_cn: None,
            };
            // `map`, not an async block: awaiting a captured future would hold it twice, and
            // the task holds the connection's future and nothing else (memory per idle
            // connection).
            let tracker = tracker.clone();
            threads.spawn(move || {
                let serving = connection::serve_tcp(stream, info, ctx, shutdown);
                tracker.track_future(serving.map(move |()| drop(permit)))
            });
            continue;
        }
        let transport = l.transport.clone();
        tracker.spawn(async move {
            handshake_and_serve(stream, peer, &transport, ctx, shutdown).await;
            drop(permit);
        });
    }
    tracing::info!(listener = %l.name, "stopped accepting");
}

/// The per-connection transport stack: optional TLS, then optional WebSocket, then MQTT.
async fn handshake_and_serve(
    stream: TcpStream,
    peer: SocketAddr,
    t: &Transport,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) {
    let deadline = Instant::now() + t.handshake_timeout;
    let Some(tls) = &t.tls else {
        let info = ConnInfo {
            peer,
            cert_cn: None,
        };
        return upgrade_and_serve(stream, info, t, deadline, ctx, shutdown).await;
    };
    // Boxed: the TLS path's states (rustls session, TLS stream) would otherwise sit inline in
    // every connection's task, plain TCP ones included, and idle memory is per task.
    Box::pin(tls_and_serve(stream, peer, tls, t, deadline, ctx, shutdown)).await;
}

async fn tls_and_serve(
    stream: TcpStream,
    peer: SocketAddr,
    tls: &tls::TlsSetup,
    t: &Transport,
    deadline: Instant,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) {
    match bounded(deadline, &shutdown, tls.accept(stream)).await {
        None => {}
        Some(Ok((stream, cert_cn))) => {
            let info = ConnInfo { peer, cert_cn };
            upgrade_and_serve(stream, info, t, deadline, ctx, shutdown).await;
        }
        Some(Err(e)) => handshake_failed(&ctx, t, peer, "TLS handshake", &e),
    }
}

/// Runs one transport handshake until `deadline`: `None` on shutdown, else its outcome with a
/// timeout reported as an error.
async fn bounded<T, E: std::fmt::Display>(
    deadline: Instant,
    shutdown: &CancellationToken,
    handshake: impl std::future::Future<Output = Result<T, E>>,
) -> Option<Result<T, String>> {
    tokio::select! {
        r = tokio::time::timeout_at(deadline, handshake) => Some(match r {
            Ok(Ok(x)) => Ok(x),
            Ok(Err(e)) => Err(format!("failed: {e}")),
            Err(_) => Err("timed out".to_owned()),
        }),
        _ = shutdown.cancelled() => None,
    }
}

async fn upgrade_and_serve<S>(
    stream: S,
    info: ConnInfo,
    t: &Transport,
    deadline: Instant,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(ws) = &t.ws else {
        return connection::serve(stream, info, ctx, shutdown).await;
    };
    // Boxed for the same reason as TLS: WebSocket state stays out of plain connections.
    Box::pin(ws_and_serve(stream, info, ws, t, deadline, ctx, shutdown)).await;
}

async fn ws_and_serve<S>(
    stream: S,
    info: ConnInfo,
    ws: &ws::WsSetup,
    t: &Transport,
    deadline: Instant,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    match bounded(deadline, &shutdown, ws.accept(stream)).await {
        None => {}
        Some(Ok(io)) => connection::serve(io, info, ctx, shutdown).await,
        Some(Err(e)) => handshake_failed(&ctx, t, info.peer, "WebSocket upgrade", &e),
    }
}

fn handshake_failed(
    ctx: &Context,
    t: &Transport,
    peer: SocketAddr,
    what: &str,
    e: &dyn std::fmt::Display,
) {
    metrics::inc(&ctx.metrics.handshake_failures);
    tracing::debug!(listener = %t.name, %peer, "{what}: {e}");
}

/// A connection's place under `limits.max_connections`, and its count in its listener's
/// open connections (`/metrics`): both given back when the connection task ends.
#[derive(Debug)]
struct Open {
    _permit: tokio::sync::OwnedSemaphorePermit,
    ctx: Arc<Context>,
    index: Option<usize>,
}

impl Open {
    fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        ctx: &Arc<Context>,
        index: Option<usize>,
    ) -> Self {
        if let Some(c) = index.and_then(|i| ctx.listener_connections.get(i)) {
            metrics::inc(c);
        }
        Open {
            _permit: permit,
            ctx: ctx.clone(),
            index,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(c) = self
            .index
            .and_then(|i| self.ctx.listener_connections.get(i))
        {
            metrics::dec(c);
        }
    }
}
