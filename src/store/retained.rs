//! Retained messages (spec §3.3.1.3): the last retained PUBLISH per topic, bounded.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::message::Message;
use crate::metrics::{self, Metrics};
use crate::topic::RetainTree;

/// What happened to a PUBLISH with the retain flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainOutcome {
    Stored,
    /// Empty payload: the retained message for the topic was removed [MQTT-3.3.1-10].
    Removed,
    /// Refused by `retain.max_messages` or `retain.max_payload_size`, or retain is disabled.
    Refused,
}

/// The retained-message store.
#[derive(Debug)]
pub struct RetainedStore {
    // Readers (SUBSCRIBE look-ups) share; a retained PUBLISH takes it briefly to write.
    tree: RwLock<RetainTree<Arc<Message>>>,
    enabled: bool,
    max_messages: usize,
    max_payload: usize,
    metrics: Arc<Metrics>,
}

impl RetainedStore {
    /// An empty store with the configured bounds.
    pub fn new(
        enabled: bool,
        max_messages: usize,
        max_payload: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        RetainedStore {
            tree: RwLock::new(RetainTree::default()),
            enabled,
            max_messages,
            max_payload,
            metrics,
        }
    }

    /// Stores, replaces or deletes the retained message for `msg.topic` [MQTT-3.3.1-5, -7, -10].
    pub fn apply(&self, msg: &Arc<Message>) -> RetainOutcome {
        if msg.payload.is_empty() {
            if self.tree.write().remove(&msg.topic).is_some() {
                metrics::dec(&self.metrics.retained_current);
            }
            return RetainOutcome::Removed;
        }
        if !self.enabled || msg.payload.len() > self.max_payload {
            metrics::inc(&self.metrics.retained_rejected);
            return RetainOutcome::Refused;
        }
        let mut tree = self.tree.write();
        if tree.len() >= self.max_messages && tree.get(&msg.topic).is_none() {
            metrics::inc(&self.metrics.retained_rejected);
            return RetainOutcome::Refused;
        }
        // Only QoS 0 is guaranteed to be kept [MQTT-3.3.1-7]: any QoS replaces the previous one.
        if tree.insert(&msg.topic, msg.clone()).is_none() {
            metrics::inc(&self.metrics.retained_current);
        }
        RetainOutcome::Stored
    }

    /// Every retained message whose topic matches `filter`.
    pub fn matching(&self, filter: &str) -> Vec<Arc<Message>> {
        let mut v = Vec::new();
        self.tree
            .read()
            .for_each_match(filter, |m| v.push(m.clone()));
        v
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.tree.read().len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
