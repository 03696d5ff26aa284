//! Dialling peers: seeds are redialled for ever with capped, jittered exponential backoff;
//! peers learned by gossip are dialled until linked, a bounded number of times.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::link::{self, LinkError};
use super::Cluster;
use crate::context::Context;
use crate::metrics;

/// Attempts for a gossiped (non-seed) address before giving up; it comes back by gossip.
const GOSSIP_ATTEMPTS: u32 = 5;

fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let base = min.saturating_mul(1u32 << attempt.min(16)).min(max);
    // Up to +50 % jitter so that nodes restarted together do not redial in lock step.
    base + base.mul_f64(rand::thread_rng().gen_range(0.0..0.5))
}

/// Dials `addr` until shutdown (seeds) or until linked/exhausted (gossip).
pub async fn dial_loop(
    addr: String,
    seed: bool,
    ctx: Arc<Context>,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
) {
    let cfg = &ctx.config.cluster;
    let mut attempt = 0u32;
    // The node last reached at `addr`. While it is linked (it dialled us after a restart),
    // dialling it again would only make a duplicate link that replaces a working one.
    let mut known: Option<Arc<str>> = None;
    loop {
        if let Some(node) = &known {
            if !wait_unlinked(node, &cluster, cfg.reconnect_max, &shutdown).await {
                return;
            }
        }
        if shutdown.is_cancelled() {
            return;
        }
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr)) => r,
        };
        match connected {
            Ok(Ok(stream)) => {
                let end = link::run(
                    stream,
                    Some(&addr),
                    None,
                    ctx.clone(),
                    cluster.clone(),
                    shutdown.clone(),
                )
                .await;
                if let Some(node) = &end.peer {
                    known = Some(node.clone());
                }
                match end.error {
                    LinkError::SelfLink => {
                        tracing::info!(%addr, "seed is this node itself; not dialling it again");
                        return;
                    }
                    LinkError::Shutdown => return,
                    LinkError::Duplicate(_) => {
                        // Linked the other way round: wait for that link to go down (at the
                        // top of the loop, `known` is that node).
                        attempt = 0;
                    }
                    _ if end.peer.is_some() => {
                        // A link that was up went down: start the backoff afresh.
                        metrics::inc(&ctx.metrics.route_reconnects);
                        attempt = 0;
                    }
                    _ => attempt += 1,
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(%addr, "route dial failed: {e}");
                attempt += 1;
            }
            Err(_) => attempt += 1,
        }
        if !seed && attempt >= GOSSIP_ATTEMPTS {
            tracing::debug!(%addr, "gossiped peer unreachable; waiting to hear of it again");
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff(attempt, cfg.reconnect_min, cfg.reconnect_max)) => {}
        }
    }
}

/// Waits while `node` is linked; false on shutdown.
async fn wait_unlinked(
    node: &str,
    cluster: &Cluster,
    recheck: Duration,
    shutdown: &CancellationToken,
) -> bool {
    while cluster.is_linked(node) {
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = cluster.link_down.notified() => {}
            _ = tokio::time::sleep(recheck) => {}
        }
    }
    true
}

/// Dials an address learned by gossip, unless a dial to it is already running. The dial runs
/// on the broker's task tracker and watches its shutdown token like every other task, so a
/// shutdown neither leaves it running nor returns before it has ended.
pub fn spawn_gossiped(addr: String, ctx: Arc<Context>, cluster: Arc<Cluster>) {
    let Some((tracker, shutdown)) = cluster.tasks() else {
        return;
    };
    if shutdown.is_cancelled() || !cluster.start_dialing(&addr) {
        return;
    }
    tracker.spawn(async move {
        dial_loop(addr.clone(), false, ctx, cluster.clone(), shutdown).await;
        cluster.stop_dialing(&addr);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio_util::task::TaskTracker;

    #[tokio::test]
    async fn a_gossiped_dial_runs_on_the_broker_tracker_and_ends_at_shutdown() {
        let mut config = crate::config::Config::default();
        config.cluster.node_id = "me".into();
        let ctx = Context::new(config).expect("context");
        let cluster = Arc::new(Cluster::new(
            &ctx.config.cluster,
            "127.0.0.1:1".into(),
            ctx.metrics.clone(),
        ));
        let (tracker, shutdown) = (TaskTracker::new(), CancellationToken::new());
        *cluster.dialing.tasks.lock() = Some((tracker.clone(), shutdown.clone()));
        // A gossiped node that accepts and never answers the handshake.
        let ghost = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = ghost.local_addr().expect("addr").to_string();
        spawn_gossiped(addr.clone(), ctx, cluster.clone());
        assert_eq!(tracker.len(), 1, "the dial is the broker's task");
        let (mut s, _) = ghost.accept().await.expect("dialled");
        let mut preamble = [0u8; 5];
        s.read_exact(&mut preamble)
            .await
            .expect("handshake started");

        shutdown.cancel();
        tracker.close();
        tokio::time::timeout(Duration::from_secs(1), tracker.wait())
            .await
            .expect("the dial ends with the broker, not at its handshake timeout");
        assert!(cluster.start_dialing(&addr), "and forgets the address");
    }
}
