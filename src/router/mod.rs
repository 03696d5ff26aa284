//! Routing: subscribe, unsubscribe and publish across sessions (spec §3.3.5, §3.8.4).
//!
//! Owns the sharded subscription trie and the fan-out: a PUBLISH is matched once, overlapping
//! subscriptions of one session are merged into one delivery at the highest granted QoS, and
//! each target gets a shared `Arc` of the message at min(publish QoS, granted QoS). It knows
//! nothing of sockets or wire bytes.

mod shards;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::cluster::Cluster;
use crate::codec::QoS;
use crate::message::{Delivery, Message};
use crate::metrics::{self, Metrics};
use crate::session::{EnqueueOutcome, Session};
use crate::store::{RetainOutcome, RetainedStore, Stamp};
use crate::topic::{validate_filter, FilterError};

use shards::Shards;
pub use shards::Subscriber;

/// The router shared by every connection task.
#[derive(Debug)]
pub struct Router {
    subs: Shards,
    retained: RetainedStore,
    metrics: Arc<Metrics>,
    /// Set once when clustering starts; absent on a single node.
    cluster: OnceLock<Arc<Cluster>>,
}

impl Router {
    /// A router with an empty trie and the given retained store.
    pub fn new(retained: RetainedStore, metrics: Arc<Metrics>) -> Self {
        Router {
            subs: Shards::new(16),
            retained,
            metrics,
            cluster: OnceLock::new(),
        }
    }

    /// Connects the router to the cluster (once).
    pub fn set_cluster(&self, c: Arc<Cluster>) {
        let _ = self.cluster.set(c);
    }

    /// The cluster, when clustering is on.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// The retained-message store.
    pub fn retained(&self) -> &RetainedStore {
        &self.retained
    }

    /// Adds or replaces `session`'s subscription to `filter` [MQTT-3.8.4-3] and records it in
    /// the session. Returns the retained messages to send for it.
    pub fn subscribe(
        &self,
        session: &Arc<Session>,
        filter: &str,
        qos: QoS,
    ) -> Result<Vec<Arc<Message>>, FilterError> {
        validate_filter(filter)?;
        // Lock order: a session's lock is never held while a shard lock is taken (publish
        // holds shard read locks while it locks sessions). Only the session's own connection
        // task subscribes, so recording first and inserting second cannot race with it.
        let new = {
            let mut st = session.lock();
            if st.discarded {
                // The connection is being replaced; its subscriptions would outlive it.
                return Ok(Vec::new());
            }
            st.subscriptions.insert(filter.to_owned(), qos).is_none()
        };
        self.subs.insert(filter, session, qos);
        if new {
            metrics::inc(&self.metrics.subscriptions_current);
            if let Some(c) = self.cluster() {
                c.interest_add(filter);
            }
        }
        Ok(self.retained.matching(filter))
    }

    /// Removes `session`'s subscription to exactly `filter`; true if there was one.
    pub fn unsubscribe(&self, session: &Session, filter: &str) -> bool {
        let had = session.lock().subscriptions.remove(filter).is_some();
        if had {
            self.subs.remove(filter, session.id);
            metrics::dec(&self.metrics.subscriptions_current);
            if let Some(c) = self.cluster() {
                c.interest_remove(filter);
            }
        }
        had
    }

    /// Removes every subscription of a session that ended.
    pub fn remove_all(&self, session: &Session) {
        let filters = std::mem::take(&mut session.lock().subscriptions);
        for filter in filters.keys() {
            self.subs.remove(filter, session.id);
            metrics::dec(&self.metrics.subscriptions_current);
            if let Some(c) = self.cluster() {
                c.interest_remove(filter);
            }
        }
    }

    /// Routes one message published by a local client: updates the retained store if the
    /// retain flag is set, queues one delivery per matching local session, and forwards it to
    /// every interested peer. Returns the number of local deliveries queued.
    pub fn publish(&self, msg: Message, now: Instant) -> usize {
        let msg = Arc::new(msg);
        let mut ts = 0;
        if msg.retain {
            match self.retained.apply(&msg) {
                RetainOutcome::Stored(s) | RetainOutcome::Removed(s) => ts = s.ts,
                RetainOutcome::Refused | RetainOutcome::Stale => {
                    tracing::debug!(topic = %msg.topic, "retained message refused by retain limits");
                }
            }
        }
        let queued = self.deliver_local(&msg, now);
        if let Some(c) = self.cluster() {
            c.forward(&msg, ts);
        }
        queued
    }

    /// Routes one message that arrived from peer `origin`: local sessions only (one hop).
    pub fn publish_from_route(
        &self,
        msg: Message,
        ts: u64,
        origin: Arc<str>,
        now: Instant,
    ) -> usize {
        let msg = Arc::new(msg);
        if msg.retain {
            self.retained.apply_remote(&msg, Stamp { ts, origin });
        }
        self.deliver_local(&msg, now)
    }

    fn deliver_local(&self, msg: &Arc<Message>, now: Instant) -> usize {
        let mut queued = 0;
        self.subs.for_each_target(&msg.topic, |session, granted| {
            let d = Delivery {
                msg: msg.clone(),
                qos: msg.qos.min(granted),
                // Normal deliveries never carry the retain flag [MQTT-3.3.1-9].
                retain: false,
            };
            queued += usize::from(self.account(session.deliver(d, now)));
        });
        queued
    }

    /// Counts a delivery outcome; true if the message was queued.
    pub fn account(&self, outcome: EnqueueOutcome) -> bool {
        let m = &self.metrics;
        match outcome {
            EnqueueOutcome::Queued { .. } => true,
            EnqueueOutcome::QueuedDroppedOldest { dropped_qos0 } => {
                metrics::inc(if dropped_qos0 {
                    &m.dropped_qos0_queue_full
                } else {
                    &m.dropped_queue_full
                });
                true
            }
            EnqueueOutcome::DroppedFull { qos0 } | EnqueueOutcome::SlowConsumer { qos0 } => {
                metrics::inc(if qos0 {
                    &m.dropped_qos0_queue_full
                } else {
                    &m.dropped_queue_full
                });
                false
            }
            EnqueueOutcome::DroppedOffline => {
                metrics::inc(&m.dropped_qos0_offline);
                false
            }
        }
    }

    /// Number of (filter, session) entries in the trie.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }
}
