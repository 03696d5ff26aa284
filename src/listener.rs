//! Listeners: bind every configured address and run one accept loop per listener.
//!
//! Owns sockets up to the point a connection task takes them: the connection limit, socket
//! options, and spawning. It never parses MQTT, and never awaits a client inside the loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ListenerConfig;
use crate::context::Context;
use crate::metrics;

/// A listener that could not be set up.
#[derive(Debug, Error)]
pub enum ListenerError {
    #[error("listener `{name}`: cannot bind {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, not yet accepting, listener.
#[derive(Debug)]
pub struct BoundListener {
    pub name: String,
    pub addr: SocketAddr,
    tcp: TcpListener,
}

/// Binds every listener, failing on the first address that cannot be bound.
pub async fn bind_all(cfgs: &[ListenerConfig]) -> Result<Vec<BoundListener>, ListenerError> {
    let mut out = Vec::with_capacity(cfgs.len());
    for c in cfgs {
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
        });
    }
    Ok(out)
}

/// Accepts connections until `shutdown`, spawning one task per connection on `tracker`.
pub async fn accept_loop(
    l: BoundListener,
    ctx: Arc<Context>,
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    tracing::info!(listener = %l.name, addr = %l.addr, "listening");
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
        // Small packets (acks, QoS 0 at low rates) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            crate::connection::serve(stream, peer, ctx, shutdown).await;
            drop(permit);
        });
    }
    tracing::info!(listener = %l.name, "stopped accepting");
}
