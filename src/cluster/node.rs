//! This node's view of the cluster: linked peers, local interest ref counts, remote interest,
//! forwarding and SUBSCRIBE synchronisation.
//!
//! Interest itself lives in the router's trie (local sessions and peer nodes alike); this
//! module keeps per link which filters a peer advertised, to withdraw them with the link.
//!
//! Locks: `peers`, `local_groups` and `syncs` are each held only for short, non-async
//! sections. They nest in one order only, outer first (the router's interest lock, which
//! orders SUB/UNSUB, comes before all of them):
//! - `local_groups` → `peers`: a group change is queued to every peer under the weight
//!   lock, so that GROUP frames are in the order of the weights.
//! - `peers` → a router trie shard: a peer's filters and the router's remote interest
//!   change together (`on_sub`, `on_unsub`, `on_snapshot_end`, `unregister`).
//! - `peers` → `syncs`: a sync is registered for exactly the peers it is sent to.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::barrier::{SyncBarrier, SyncWait};
use super::frame::{self, Frame, RouteMsg};
use super::gate::RouteGate;
use super::stats::LinkStats;
use crate::message::Message;
use crate::metrics::{self, Metrics};
use crate::router::RemotePicks;
use crate::router::Router;
use crate::topic::GroupKey;

/// A registered link to a peer.
#[derive(Debug)]
struct Peer {
    link_id: u64,
    instance: u64,
    /// Node id of the side that dialled this link (duplicate resolution).
    dialer: Arc<str>,
    advertise: String,
    tx: mpsc::Sender<Bytes>,
    kick: CancellationToken,
    filters: HashSet<String>,
    /// Consumer groups this peer advertised members for (purged with the link).
    groups: HashSet<GroupKey>,
    /// Interest learned on the link this one replaced, still applied until this link's
    /// snapshot ends: what the snapshot repeats moves to `filters`/`groups`, the rest is
    /// withdrawn then. Replacing a link so never leaves a gap in which the peer's
    /// subscribers miss messages.
    carried: HashSet<String>,
    carried_groups: HashSet<GroupKey>,
    stats: Arc<LinkStats>,
    gate: Arc<RouteGate>,
}

/// Why a link could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// A better link to the same node exists (kept by the smaller-node-id-dials rule).
    Duplicate,
    /// Another running node uses the same node id.
    DuplicateNodeId,
}

/// What `register` hands the link task.
#[derive(Debug)]
pub struct Registered {
    pub link_id: u64,
    pub rx: mpsc::Receiver<Bytes>,
    pub kick: CancellationToken,
    pub stats: Arc<LinkStats>,
    pub gate: Arc<RouteGate>,
}

/// The cluster state shared by link tasks, the router and connections.
#[derive(Debug)]
pub struct Cluster {
    pub node_id: Arc<str>,
    pub name: String,
    pub advertise: String,
    pub instance: u64,
    pub secret: Option<String>,
    pub ping_interval: Duration,
    pub sync_timeout: Duration,
    route_queue: usize,
    peers: Mutex<HashMap<Arc<str>, Peer>>,
    local_groups: Mutex<HashMap<GroupKey, u32>>,
    pub(super) syncs: Mutex<HashMap<u64, SyncWait>>,
    /// Interest frames (SUB, and GROUP frames adding members) queued to at least one peer so
    /// far; counted after they are queued.
    interest_sent: AtomicU64,
    /// The largest `interest_sent` that every peer linked at the time has confirmed applying
    /// (a sync they all answered).
    pub(super) interest_confirmed: AtomicU64,
    next_id: AtomicU64,
    /// Wakes dialers waiting for a node's link to go down.
    pub link_down: Notify,
    pub(crate) dialing: super::Dialing,
    /// Route TLS, when configured.
    pub tls: Option<super::RouteTls>,
    metrics: Arc<Metrics>,
}

impl Cluster {
    /// A node with no links yet.
    pub fn new(
        cfg: &crate::config::ClusterConfig,
        advertise: String,
        metrics: Arc<Metrics>,
    ) -> Self {
        Cluster {
            node_id: Arc::from(cfg.node_id.as_str()),
            name: cfg.name.clone(),
            advertise,
            instance: rand::random(),
            secret: cfg.secret.clone(),
            ping_interval: cfg.ping_interval,
            sync_timeout: cfg.sync_timeout,
            route_queue: cfg.route_queue,
            peers: Mutex::new(HashMap::new()),
            local_groups: Mutex::new(HashMap::new()),
            syncs: Mutex::new(HashMap::new()),
            interest_sent: AtomicU64::new(0),
            interest_confirmed: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            link_down: Notify::new(),
            dialing: super::Dialing::default(),
            tls: None,
            metrics,
        }
    }

    fn send(&self, p: &Peer, bytes: Bytes) {
        match p.tx.try_send(bytes) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::inc(&self.metrics.route_frames_dropped)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Queues `f` to every peer; false when there is none.
    fn broadcast(&self, f: &Frame) -> bool {
        let bytes = frame::to_bytes(f);
        let peers = self.peers.lock();
        for p in peers.values() {
            self.send(p, bytes.clone());
        }
        !peers.is_empty()
    }

    /// Counts an interest frame queued to peers (after it is queued: a barrier that sees the
    /// count sends its SYNC behind the frame).
    fn interest_queued(&self, queued: bool) {
        if queued {
            self.interest_sent.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Registers a handshaken link; the losing link of a duplicate pair is closed.
    pub fn register(
        &self,
        node: Arc<str>,
        instance: u64,
        dialer: Arc<str>,
        advertise: String,
        shutdown: &CancellationToken,
    ) -> Result<Registered, RegisterError> {
        let mut peers = self.peers.lock();
        if let Some(old) = peers.get(&node) {
            if old.instance != instance {
                return Err(RegisterError::DuplicateNodeId);
            }
            // Two links to one node: both sides keep the one dialled by the smaller node id
            // (the acceptor decides first and tells the dialer with WELCOME). A link dialled by the same side as the existing
            // one replaces it (the old one is dead but not yet noticed).
            let preferred: &str = if *self.node_id < *node {
                &self.node_id
            } else {
                &node
            };
            if old.dialer != dialer && &*old.dialer == preferred {
                return Err(RegisterError::Duplicate);
            }
            old.kick.cancel();
        }
        let (tx, rx) = mpsc::channel(self.route_queue);
        // A SUBSCRIBE waiting on a replaced or lost link would wait for an answer that never
        // comes: its sync is asked again on the new link (after the snapshot, like everything
        // queued), so its SUBACK still follows the peer's having the interest.
        for (seq, w) in self.syncs.lock().iter() {
            if w.pending.contains(&node) {
                let _ = tx.try_send(frame::to_bytes(&Frame::Sync(*seq)));
            }
        }
        let link_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kick = shutdown.child_token();
        let stats = Arc::new(LinkStats::default());
        let gate = Arc::new(RouteGate::new(self.route_queue));
        let mut peer = Peer {
            link_id,
            instance,
            dialer,
            advertise,
            tx,
            kick: kick.clone(),
            filters: HashSet::new(),
            groups: HashSet::new(),
            carried: HashSet::new(),
            carried_groups: HashSet::new(),
            stats: stats.clone(),
            gate: gate.clone(),
        };
        match peers.remove(&node) {
            // Same process on the other end (checked above): its interest stays applied
            // until the new link's snapshot says what still holds.
            Some(old) => {
                tracing::debug!(peer = %node, old = old.link_id, new = link_id, "link replaced");
                peer.carried = old.filters;
                peer.carried.extend(old.carried);
                peer.carried_groups = old.groups;
                peer.carried_groups.extend(old.carried_groups);
            }
            None => metrics::inc(&self.metrics.route_links_current),
        }
        peers.insert(node, peer);
        Ok(Registered {
            link_id,
            rx,
            kick,
            stats,
            gate,
        })
    }

    /// Whether `link_id` is the link this node uses for `node` now.
    pub fn is_current(&self, node: &str, link_id: u64) -> bool {
        self.peers
            .lock()
            .get(node)
            .is_some_and(|p| p.link_id == link_id)
    }

    /// A link ended: if it was the current one, its node's interest is purged. Returns the
    /// consumer groups it had members in, for the caller to withdraw.
    pub fn unregister(&self, node: &Arc<str>, link_id: u64, router: &Router) -> Vec<GroupKey> {
        let removed = {
            let mut peers = self.peers.lock();
            match peers.get(node) {
                Some(p) if p.link_id == link_id => peers.remove(node),
                _ => None,
            }
        };
        let Some(p) = removed else { return Vec::new() };
        metrics::dec(&self.metrics.route_links_current);
        for f in p.filters.iter().chain(&p.carried) {
            router.remote_unsubscribe(f, node);
        }
        // A SUBSCRIBE waiting for this node's confirmation keeps waiting (bounded by
        // `sync_timeout`): a link that went down is often replaced at once (a duplicate
        // resolved, a peer restarted), and the new link answers the sync after its snapshot.
        self.link_down.notify_waiters();
        p.groups.into_iter().chain(p.carried_groups).collect()
    }

    /// A peer gained interest in `filter`.
    pub fn on_sub(&self, node: &Arc<str>, link_id: u64, filter: String, router: &Router) {
        if crate::topic::validate_filter(&filter).is_err() {
            return;
        }
        let mut peers = self.peers.lock();
        let Some(p) = peers.get_mut(node).filter(|p| p.link_id == link_id) else {
            tracing::debug!(peer = %node, link_id, %filter, "SUB on a replaced link ignored");
            return;
        };
        // Interest carried over from the replaced link is already in the trie.
        let carried = p.carried.remove(&filter);
        if p.filters.insert(filter.clone()) && !carried {
            router.remote_subscribe(&filter, node);
        }
    }

    /// A peer lost interest in `filter`.
    pub fn on_unsub(&self, node: &Arc<str>, link_id: u64, filter: &str, router: &Router) {
        let mut peers = self.peers.lock();
        let Some(p) = peers.get_mut(node).filter(|p| p.link_id == link_id) else {
            return;
        };
        if p.filters.remove(filter) | p.carried.remove(filter) {
            router.remote_unsubscribe(filter, node);
        }
    }

    /// The snapshot on link `link_id` ended: interest carried over from the replaced link
    /// that it did not repeat is withdrawn. Returns the consumer groups to withdraw.
    pub fn on_snapshot_end(&self, node: &Arc<str>, link_id: u64, router: &Router) -> Vec<GroupKey> {
        let mut peers = self.peers.lock();
        let Some(p) = peers.get_mut(node).filter(|p| p.link_id == link_id) else {
            return Vec::new();
        };
        tracing::debug!(peer = %node, link_id, withdrawn = p.carried.len(), "snapshot ended");
        for f in p.carried.drain() {
            router.remote_unsubscribe(&f, node);
        }
        p.carried_groups.drain().collect()
    }

    /// A peer advertised `weight` members in group `key`; false when the link is stale.
    pub fn on_group(&self, node: &Arc<str>, link_id: u64, key: &GroupKey, weight: u32) -> bool {
        let mut peers = self.peers.lock();
        let Some(p) = peers.get_mut(node).filter(|p| p.link_id == link_id) else {
            return false;
        };
        p.carried_groups.remove(key);
        if weight == 0 {
            p.groups.remove(key);
        } else {
            p.groups.insert(key.clone());
        }
        true
    }

    /// The local member count of group `key` changed: peers weigh their choice by it.
    pub fn group_weight(&self, key: &GroupKey, members: usize) {
        let weight = u32::try_from(members).unwrap_or(u32::MAX);
        let mut local = self.local_groups.lock();
        let before = if weight == 0 {
            local.remove(key)
        } else {
            local.insert(key.clone(), weight)
        };
        let queued = self.broadcast(&Frame::Group {
            group: key.group.to_string(),
            filter: key.filter.to_string(),
            weight,
        });
        // A new member is interest a SUBACK must wait for (peers pick this node for it); a
        // member leaving is not.
        self.interest_queued(queued && weight > before.unwrap_or(0));
    }

    /// `filter` got its first local subscriber (the router's trie says so, and orders these
    /// calls): advertised to every peer.
    pub fn interest_add(&self, filter: &str) {
        let queued = self.broadcast(&Frame::Sub(filter.to_owned()));
        self.interest_queued(queued);
    }

    /// `filter` lost its last local subscriber: withdrawn from every peer.
    pub fn interest_remove(&self, filter: &str) {
        self.broadcast(&Frame::Unsub(filter.to_owned()));
    }

    /// The frames a newly linked peer needs first: every local interest (`local`, from the
    /// router) and consumer group membership.
    pub fn interest_snapshot(&self, local: Vec<String>) -> Vec<Frame> {
        let mut frames: Vec<Frame> = local.into_iter().map(Frame::Sub).collect();
        frames.extend(self.local_groups.lock().iter().map(|(k, w)| Frame::Group {
            group: k.group.to_string(),
            filter: k.filter.to_string(),
            weight: *w,
        }));
        frames
    }

    /// What a SUBSCRIBE's SUBACK must wait for: `None` when every interest frame queued to
    /// peers so far has been confirmed (nothing to wait for: a subscription that changed no
    /// interest, its filter already advertised and applied), else a barrier that resolves
    /// once every linked peer has applied everything sent to it so far (bounded by
    /// `sync_timeout`). A SUBACK sent after it cannot lose a message published on another
    /// node. Call after the subscription was added.
    ///
    /// Not "did this SUBSCRIBE send a frame": a filter another client advertised a moment
    /// ago changes no count, yet its SUB may still be on its way, and this SUBACK must not
    /// overtake it either.
    pub fn interest_barrier(self: &Arc<Self>) -> Option<SyncBarrier> {
        let target = self.interest_sent.load(Ordering::SeqCst);
        if target <= self.interest_confirmed.load(Ordering::SeqCst) {
            return None;
        }
        let seq = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, acked) = oneshot::channel();
        {
            let peers = self.peers.lock();
            if peers.is_empty() {
                // No peer lacks anything: one that links later gets the interest in its
                // snapshot.
                self.interest_confirmed.fetch_max(target, Ordering::SeqCst);
                return None;
            }
            // Registered before the SYNC frames go out, so no answer can come first.
            self.syncs.lock().insert(
                seq,
                SyncWait {
                    pending: peers.keys().cloned().collect(),
                    done: Some(tx),
                },
            );
            let bytes = frame::to_bytes(&Frame::Sync(seq));
            for p in peers.values() {
                self.send(p, bytes.clone());
            }
        }
        Some(SyncBarrier {
            cluster: self.clone(),
            seq,
            target,
            acked,
            deadline: Box::pin(tokio::time::sleep(self.sync_timeout)),
        })
    }

    /// A peer confirmed sync `seq`.
    pub fn on_sync_ack(&self, node: &Arc<str>, seq: u64) {
        if let Some(w) = self.syncs.lock().get_mut(&seq) {
            if w.pending.remove(node) && w.pending.is_empty() {
                if let Some(done) = w.done.take() {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Sends a locally published message to every peer with matching interest, and to every
    /// peer chosen for a consumer group, one frame per peer carrying the groups chosen there.
    /// A retained one goes to every peer so each node holds the retained set.
    pub fn forward(
        &self,
        msg: &Message,
        ts: u64,
        nodes: &[Arc<str>],
        picks: &RemotePicks,
    ) -> Option<Arc<RouteGate>> {
        if msg.topic.starts_with("$SYS/") {
            // Each node's statistics are its own; replicating them would overwrite the peers'.
            return None;
        }
        // The expiry left is counted now; an expired message is not forwarded at all
        // [MQTT-3.3.2-5].
        let Some(expiry_ms) = frame::expiry_ms(msg.expires, Instant::now()) else {
            tracing::debug!(topic = %msg.topic, "expired message not forwarded to peers");
            return None;
        };
        let mut interested: smallvec::SmallVec<[Arc<str>; 8]> = smallvec::SmallVec::new();
        if msg.retain {
            interested.extend(self.peers.lock().keys().cloned());
        } else {
            interested.extend(nodes.iter().cloned());
        }
        if interested.is_empty() && picks.is_empty() {
            return None;
        }
        let mut pressure: Option<Arc<RouteGate>> = None;
        interested.sort_unstable();
        interested.dedup();
        let frame = |groups: Vec<(String, String)>, group_only: bool| {
            frame::to_bytes(&Frame::Msg(RouteMsg {
                topic: msg.topic.clone(),
                payload: msg.payload.clone(),
                qos: msg.qos as u8,
                retain: msg.retain,
                ts,
                groups,
                group_only,
                redispatched: false,
                expiry_ms,
                properties: msg.properties.clone(),
            }))
        };
        let groups_for = |node: &Arc<str>| -> Vec<(String, String)> {
            picks
                .iter()
                .filter(|(n, _)| n == node)
                .map(|(_, k)| (k.group.to_string(), k.filter.to_string()))
                .collect()
        };
        // Peers without group picks share one encoding.
        let mut plain: Option<Bytes> = None;
        let peers = self.peers.lock();
        for node in &interested {
            let Some(p) = peers.get(node) else { continue };
            let mine = groups_for(node);
            let bytes = if mine.is_empty() {
                plain
                    .get_or_insert_with(|| frame(Vec::new(), false))
                    .clone()
            } else {
                frame(mine, false)
            };
            metrics::inc(&p.stats.msgs_out);
            self.send(p, bytes);
            if p.gate.note_queued(p.tx.capacity()) && pressure.is_none() {
                pressure = Some(p.gate.clone());
            }
        }
        // Peers chosen only for groups get a group-only frame (no ordinary delivery there).
        let mut only: smallvec::SmallVec<[&Arc<str>; 4]> = picks
            .iter()
            .map(|(n, _)| n)
            .filter(|n| interested.binary_search(n).is_err())
            .collect();
        only.sort_unstable();
        only.dedup();
        for node in only {
            let Some(p) = peers.get(node) else { continue };
            metrics::inc(&p.stats.msgs_out);
            self.send(p, frame(groups_for(node), true));
        }
        pressure
    }

    /// Hands one group message to `node` after the member chosen for it left.
    pub fn forward_group(&self, node: &Arc<str>, msg: &Message, key: &GroupKey) {
        let Some(expiry_ms) = frame::expiry_ms(msg.expires, Instant::now()) else {
            tracing::debug!(topic = %msg.topic, "expired group message not handed to a peer");
            return;
        };
        let bytes = frame::to_bytes(&Frame::Msg(RouteMsg {
            topic: msg.topic.clone(),
            payload: msg.payload.clone(),
            qos: msg.qos as u8,
            retain: false,
            ts: 0,
            groups: vec![(key.group.to_string(), key.filter.to_string())],
            group_only: true,
            redispatched: true,
            expiry_ms,
            properties: msg.properties.clone(),
        }));
        if let Some(p) = self.peers.lock().get(node) {
            metrics::inc(&p.stats.msgs_out);
            self.send(p, bytes);
        }
    }

    /// Tells every peer that `client_id` connected here (cluster-wide take-over).
    pub fn announce_client(&self, client_id: &str, at: u64) {
        self.broadcast(&Frame::Client {
            id: client_id.to_owned(),
            at,
        });
    }

    /// Tells every other peer about `node` (gossip discovery).
    pub fn gossip(&self, node: &Arc<str>, addr: &str) {
        let bytes = frame::to_bytes(&Frame::Peer {
            node_id: node.to_string(),
            addr: addr.to_owned(),
        });
        for (id, p) in self.peers.lock().iter() {
            if id != node {
                self.send(p, bytes.clone());
            }
        }
    }
}

#[path = "node_peers.rs"]
mod peers;

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
