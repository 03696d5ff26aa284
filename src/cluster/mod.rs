//! Clustering: brokers that behave as one, linked by NATS-style routes.
//!
//! Owns the route protocol ([`frame`], pure and versioned), one task per peer link
//! (`link`), discovery and redialling (`dial`), and this node's view of the mesh
//! ([`Cluster`]: linked peers, interest ref counts, remote interest, forwarding). It never
//! delivers to local sessions itself: frames from peers go through the router.
//!
//! Design (see also the README's cluster section):
//! - **Full mesh, one hop.** Every node links to every other; a message crosses at most one
//!   route, so routes never forward route traffic and loops cannot form.
//! - **Interest.** A node advertises only its local clients' filters, ref-counted (SUB on
//!   0 → 1, UNSUB on 1 → 0); a peer keeps them in a trie keyed by node and forwards each
//!   matching publish as one frame per interested peer. On link up the full interest set is
//!   sent; on link down the peer's interest is purged.
//! - **No lost first message.** A SUBSCRIBE's SUBACK waits (bounded by `sync_timeout`) until
//!   every linked peer has confirmed it applied everything sent before, including the new
//!   interest; when all interest advertised so far is already confirmed it goes out at once.
//!   The connection keeps serving its client meanwhile (the SUBACK is held, not awaited).
//! - **Strangers on the route port** get little: handshake frames are limited to
//!   [`frame::MAX_HANDSHAKE_FRAME`], the whole handshake to `handshake_timeout`, and accepted
//!   route connections to `max_route_connections`.
//! - **Duplicate links** (simultaneous dials): both sides keep the link dialled by the smaller
//!   node id; a link from the same dialer replaces a stale one. The accepting side decides
//!   and answers WELCOME, and the dialer registers the link only then, so a refused link is
//!   never used. A replacement loses nothing: the peer's interest stays applied until the
//!   new link's snapshot ends (`SnapshotEnd` withdraws what it did not repeat), the old link
//!   is read to its end, and the side that switched first waits for the other to close it.
//!   A dialler does not redial a node that is linked to it the other way round.
//! - **Retained messages** go to every node whatever its interest and merge last-writer-wins
//!   by (timestamp, node id), with tombstones for deletes; a link coming up exchanges the whole
//!   retained set, so a node restarted empty gets it back.
//! - **Client ids** are unique cluster-wide: a connect is announced, and a node holding a live
//!   connection with that id closes it (its will is published as on one node). Session state
//!   itself stays on the node the client used.
//! - **Partitions** keep both sides serving; on heal, links, interest and retained sets
//!   reconcile as on any link up.

mod barrier;
mod dial;
pub mod frame;
mod gate;
mod ingress;
mod link;
mod node;
mod sink;
mod stats;
mod tls;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use barrier::SyncBarrier;
pub use gate::RouteGate;
pub use node::Cluster;
pub use stats::LinkStats;
pub use tls::RouteTls;

use crate::context::Context;
use crate::metrics;

/// Why clustering could not start.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cluster.listen: cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{key} {}: {reason}", path.display())]
    Tls {
        key: &'static str,
        path: std::path::PathBuf,
        reason: String,
    },
}

/// Process-level state the dialers share: which addresses are being dialled, and where dial
/// tasks run: the broker's tracker (so [`crate::Broker::stopped`] waits for them) and its
/// shutdown token (so they end with it).
#[derive(Debug, Default)]
pub(crate) struct Dialing {
    addrs: Mutex<HashSet<String>>,
    tasks: Mutex<Option<(TaskTracker, CancellationToken)>>,
}

impl Cluster {
    /// Marks `addr` as being dialled; false if it already is.
    pub(crate) fn start_dialing(&self, addr: &str) -> bool {
        self.dialing.addrs.lock().insert(addr.to_owned())
    }

    pub(crate) fn stop_dialing(&self, addr: &str) {
        self.dialing.addrs.lock().remove(addr);
    }

    /// The broker's task tracker and shutdown token; `None` before [`start`] set them.
    pub(crate) fn tasks(&self) -> Option<(TaskTracker, CancellationToken)> {
        self.dialing.tasks.lock().clone()
    }
}

/// Binds the route listener, starts accepting and dials the seeds. Returns the cluster and
/// the bound route address.
pub async fn start(
    ctx: Arc<Context>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<(Arc<Cluster>, SocketAddr), ClusterError> {
    let cfg = &ctx.config.cluster;
    let tls = RouteTls::load(cfg)?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ClusterError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ClusterError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let advertise = cfg.advertise.clone().unwrap_or_else(|| bound.to_string());
    let mut node = Cluster::new(cfg, advertise, ctx.metrics.clone());
    node.tls = tls;
    let cluster = Arc::new(node);
    *cluster.dialing.tasks.lock() = Some((tracker.clone(), shutdown.clone()));
    ctx.router.retained().set_node(cluster.node_id.clone());
    ctx.router
        .set_remote(Arc::new(sink::ClusterSink(cluster.clone())));
    tracing::info!(node = %cluster.node_id, route = %bound, advertise = %cluster.advertise, "cluster routes listening");

    let (c, cx, sd, tr) = (
        cluster.clone(),
        ctx.clone(),
        shutdown.clone(),
        tracker.clone(),
    );
    // Anyone can connect to the route port; until a peer has passed the handshake it is a
    // stranger, and each connection costs a task and a buffer. The permit is held until the
    // link is registered (see `link::run`), so strangers can hold at most
    // `max_route_connections` of them, each for at most `handshake_timeout`, and linked peers
    // never count against it; one over the limit is closed at once rather than left in the
    // listen backlog, where a real peer's dial would queue behind it.
    let permits = Arc::new(Semaphore::new(cfg.max_route_connections));
    tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = sd.cancelled() => return,
                r = listener.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        metrics::inc(&cx.metrics.route_handshake_rejected);
                        tracing::debug!(%peer, "route connection refused: cluster.max_route_connections reached");
                        drop(stream);
                        continue;
                    };
                    let link =
                        link::run(stream, None, Some(permit), cx.clone(), c.clone(), sd.clone());
                    tr.spawn(link);
                }
                Err(e) => {
                    tracing::warn!("route accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    for seed in &cfg.seeds {
        if cluster.start_dialing(seed) {
            tracker.spawn(dial::dial_loop(
                seed.clone(),
                true,
                ctx.clone(),
                cluster.clone(),
                shutdown.clone(),
            ));
        }
    }
    Ok((cluster, bound))
}
