//! What the cluster shows of its linked peers (ids, addresses, advertised filters, link
//! counters) to `$SYS`, the HTTP API and logs: read-only views, each under the peers' lock
//! only while it copies.

use std::sync::Arc;

use super::Cluster;
use crate::cluster::stats::LinkStats;

impl Cluster {
    /// Node ids of the linked peers.
    pub fn peer_ids(&self) -> Vec<Arc<str>> {
        self.peers.lock().keys().cloned().collect()
    }

    /// Whether `node` is linked.
    pub fn is_linked(&self, node: &str) -> bool {
        self.peers.lock().contains_key(node)
    }

    /// (node id, advertised address) of every linked peer.
    pub fn peer_addrs(&self) -> Vec<(Arc<str>, String)> {
        self.peers
            .lock()
            .iter()
            .map(|(k, p)| (k.clone(), p.advertise.clone()))
            .collect()
    }

    /// (node id, filter) of every filter a linked peer advertised (the HTTP API's topics).
    pub fn peer_interest(&self) -> Vec<(Arc<str>, String)> {
        let peers = self.peers.lock();
        let mut v = Vec::new();
        for (k, p) in peers.iter() {
            v.extend(p.filters.iter().map(|f| (k.clone(), f.clone())));
        }
        v
    }

    /// Per-link counters, for `$SYS` and logs.
    pub fn link_stats(&self) -> Vec<(Arc<str>, Arc<LinkStats>)> {
        self.peers
            .lock()
            .iter()
            .map(|(k, p)| (k.clone(), p.stats.clone()))
            .collect()
    }
}
