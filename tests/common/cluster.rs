//! Cluster nodes in the test process: the config that makes a broker a node on loopback,
//! its route listener, its route links (how many, waiting for a full mesh) and the route
//! handshakes it refused.

use std::net::SocketAddr;

use supermq::Config;

use super::{metric, wait_until, TestBroker};

/// Makes `c` cluster node `id`, with its route listener on 127.0.0.1:0 (an OS-chosen port)
/// and `seeds` to dial; every other cluster setting stays as it is.
pub fn clustered(c: &mut Config, id: &str, seeds: &[SocketAddr]) {
    c.cluster.enabled = true;
    c.cluster.node_id = id.to_owned();
    c.cluster.listen = "127.0.0.1:0".parse().expect("addr");
    c.cluster.seeds = seeds.iter().map(SocketAddr::to_string).collect();
}

/// The route listener of a clustered test broker.
pub fn route(b: &TestBroker) -> SocketAddr {
    b.broker.route_addr().expect("cluster enabled")
}

/// Route links currently up on `b`.
pub fn links(b: &TestBroker) -> usize {
    b.broker.cluster().map_or(0, |c| c.peer_ids().len())
}

/// Waits until every node has a link to every other one.
pub async fn wait_meshed(nodes: &[TestBroker]) {
    let peers = nodes.len() - 1;
    for b in nodes {
        wait_until("full mesh", || links(b) == peers).await;
    }
}

/// Waits until `b` has refused at least `n` route handshakes.
pub async fn wait_refused(b: &TestBroker, n: u64, what: &str) {
    wait_until(what, || metric(b, |m| &m.route_handshake_rejected) >= n).await;
}
