//! The application message as it travels through the broker, and one delivery of it.
//!
//! A published message is wrapped in an `Arc` once and shared by every subscriber's queue;
//! its payload was copied once out of the publisher's read buffer, into an allocation of its
//! own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{LastWill, Properties, QoS};
use crate::session::SubIds;
use crate::topic::GroupKey;

/// An application message (topic, payload, publish QoS, retain flag) and, from MQTT 5
/// publishers, its properties.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// The PUBLISH properties that travel with the message to its subscribers (MQTT 5.0
    /// §3.3.2.3): payload format, content type, response topic, correlation data and user
    /// properties, in the order sent [MQTT-3.3.2-18]. Never a Topic Alias or Subscription
    /// Identifier (those belong to one connection or one subscription) and never a Message
    /// Expiry Interval (that is `expires`, counted down).
    pub properties: Properties,
    /// When the message expires (its Message Expiry Interval from its arrival): it is not
    /// sent after that [MQTT-3.3.2-5], and what is left is forwarded [MQTT-3.3.2-6]. `None`:
    /// it never expires.
    pub expires: Option<Instant>,
    /// When this node routed it (`Router::publish`, `publish_from_route`): the start of the
    /// publish-to-deliver latency sampled for `/metrics`. `None` before it is routed.
    pub routed: Option<Instant>,
}

/// Equal as messages: when each was routed is bookkeeping, not content.
impl PartialEq for Message {
    fn eq(&self, o: &Message) -> bool {
        self.topic == o.topic
            && self.payload == o.payload
            && self.qos == o.qos
            && self.retain == o.retain
            && self.properties == o.properties
            && self.expires == o.expires
    }
}

impl Eq for Message {}

impl Message {
    /// A message without properties that never expires: what 3.1.1 publishes.
    pub fn new(topic: impl Into<String>, payload: Bytes, qos: QoS, retain: bool) -> Message {
        Message {
            topic: topic.into(),
            payload,
            qos,
            retain,
            properties: Properties::new(),
            expires: None,
            routed: None,
        }
    }

    /// Whether the message has expired at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    /// The Message Expiry Interval to forward at `now`: the whole seconds left, rounded up
    /// so that a message sent just before it expires is not sent with 0. `None` when the
    /// message never expires.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires.map(|at| {
            let left = at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX).max(1)
        })
    }

    /// The message a will becomes when its connection ends at `now`, and its Will Delay
    /// Interval (MQTT 5.0 §3.1.3.2). Its expiry counts from when it is due to be published,
    /// not from the disconnect.
    pub fn from_will(w: LastWill, now: Instant) -> (Message, Duration) {
        let mut msg = Message::new(w.topic, w.payload, w.qos, w.retain);
        let mut delay = Duration::ZERO;
        if let Some(mut props) = w.properties.into_values() {
            delay = Duration::from_secs(u64::from(props.will_delay_interval.take().unwrap_or(0)));
            let due = now.checked_add(delay).unwrap_or(now);
            msg.expires = Message::expiry_from(props.message_expiry_interval.take(), due);
            msg.properties = props.into();
        }
        (msg, delay)
    }

    /// The expiry instant of a message that arrives at `now` with `interval` seconds.
    pub fn expiry_from(interval: Option<u32>, now: Instant) -> Option<Instant> {
        interval.and_then(|s| now.checked_add(Duration::from_secs(u64::from(s))))
    }
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
    /// MQTT 5: the Subscription Identifiers this copy is sent with [MQTT-3.3.4-3].
    pub sub_ids: SubIds,
}

impl Delivery {
    /// Bytes this delivery holds in a queue (used for the byte bound).
    pub fn weight(&self) -> usize {
        self.msg.payload.len() + self.msg.topic.len()
    }
}
