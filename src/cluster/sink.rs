//! The cluster as the router sees it: a [`RemoteSink`] the router delivers to, so that the
//! router never depends on this module.

use std::sync::Arc;

use super::node::Cluster;
use crate::flow::Pacer;
use crate::message::Message;
use crate::router::{Barrier, RemotePicks, RemoteSink};
use crate::topic::GroupKey;

/// The router's handle on this node's cluster.
#[derive(Debug)]
pub(super) struct ClusterSink(pub(super) Arc<Cluster>);

impl RemoteSink for ClusterSink {
    fn interest_add(&self, filter: &str) {
        self.0.interest_add(filter);
    }

    fn interest_remove(&self, filter: &str) {
        self.0.interest_remove(filter);
    }

    fn group_weight(&self, key: &GroupKey, members: usize) {
        self.0.group_weight(key, members);
    }

    fn forward(
        &self,
        msg: &Message,
        ts: u64,
        nodes: &[Arc<str>],
        picks: &RemotePicks,
    ) -> Option<Pacer> {
        self.0.forward(msg, ts, nodes, picks).map(|g| g as Pacer)
    }

    fn forward_group(&self, node: &Arc<str>, msg: &Message, key: &GroupKey) {
        self.0.forward_group(node, msg, key);
    }

    fn interest_barrier(&self) -> Option<Barrier> {
        self.0.interest_barrier().map(|b| Box::pin(b) as Barrier)
    }

    fn announce_client(&self, client_id: &str, at: u64) {
        self.0.announce_client(client_id, at);
    }
}
