//! The router's view of other nodes: a sink it delivers to, implemented by the cluster.
//!
//! The router owns interest and routing; it tells the sink when local interest changes and
//! hands it the messages peers want. It never names the cluster module (which depends on
//! the router, not the other way round), and connections reach the cluster only through
//! this trait.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::flow::Pacer;
use crate::message::Message;
use crate::topic::GroupKey;

/// Peers chosen for consumer groups while routing one message: (node, group).
pub type RemotePicks = SmallVec<[(Arc<str>, Arc<GroupKey>); 4]>;

/// Resolves once every peer has the interest announced so far (or a deadline passed).
pub type Barrier = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the router needs of the other nodes.
pub trait RemoteSink: Send + Sync + Debug {
    /// A filter gained its first local subscriber (the router's trie says so).
    fn interest_add(&self, filter: &str);
    /// A filter lost its last local subscriber.
    fn interest_remove(&self, filter: &str);
    /// A consumer group has `members` local members now.
    fn group_weight(&self, key: &GroupKey, members: usize);
    /// Forwards a locally published message to `nodes` (the peers whose interest the topic
    /// matched in the router's trie) and to the peers chosen for its groups; a retained one
    /// goes to every peer. A route whose queue fills asks the producer to pause.
    fn forward(
        &self,
        msg: &Message,
        ts: u64,
        nodes: &[Arc<str>],
        picks: &RemotePicks,
    ) -> Option<Pacer>;
    /// Hands one group message to `node` (its member here left).
    fn forward_group(&self, node: &Arc<str>, msg: &Message, key: &GroupKey);
    /// A barrier for the interest announced so far; `None` when there is nothing to wait for.
    fn interest_barrier(&self) -> Option<Barrier>;
    /// A client connected here at `at` (µs since the epoch): the peers close theirs.
    fn announce_client(&self, client_id: &str, at: u64);
}
