//! The application message as it travels through the broker, and one delivery of it.
//!
//! A published message is wrapped in an `Arc` once and shared by every subscriber's queue;
//! its payload was copied once out of the publisher's read buffer, into an allocation of its
//! own.

use std::sync::Arc;

use bytes::Bytes;

use crate::codec::QoS;
use crate::topic::GroupKey;

/// An application message (topic, payload, publish QoS, retain flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
}

/// One message on its way to one subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub msg: Arc<Message>,
    /// min(publish QoS, granted QoS) [MQTT-3.8.4-6].
    pub qos: QoS,
    /// Set only when sent because of a new subscription [MQTT-3.3.1-8, MQTT-3.3.1-9].
    pub retain: bool,
    /// The consumer group this delivery was chosen for: if the member leaves before it
    /// acknowledges, the message goes to another member.
    pub group: Option<Arc<GroupKey>>,
}

impl Delivery {
    /// Bytes this delivery holds in a queue (used for the byte bound).
    pub fn weight(&self) -> usize {
        self.msg.payload.len() + self.msg.topic.len()
    }
}
