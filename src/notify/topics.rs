//! `$events/...` topics (`[events] enabled`, as EMQX): the hook queues an event's JSON
//! body (the webhook's) and a task publishes it through the router as the broker, at QoS 0.
//!
//! Subscribers need an ACL grant on `$events/...` like any topic (and, being `$` topics,
//! `#` and `+/...` never match them [MQTT-4.7.2-1]). Deliveries and drops of `$events`
//! messages themselves are not events (they would feed on themselves). A full queue drops
//! and counts (`events_dropped`).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::json;
use super::queue::{self, Drain, Queue};
use crate::codec::QoS;
use crate::context::Context;
use crate::hooks::{Event, Hooks};
use crate::message::Message;
use crate::metrics::{self, Metrics};
use crate::router::Origin;

/// Events waiting to be published at most.
const QUEUE: usize = 10_000;
/// The namespace of the broker's event topics.
pub(super) const PREFIX: &str = "$events/";

/// The filling side.
#[derive(Debug)]
pub(super) struct EventTopics {
    node: Arc<str>,
    queue: Queue<(&'static str, serde_json::Value)>,
    metrics: Arc<Metrics>,
}

/// The publishing side, run by [`Publisher::run`].
#[derive(Debug)]
pub(super) struct Publisher {
    drain: Drain<(&'static str, serde_json::Value)>,
}

pub(super) fn build(node: Arc<str>, metrics: &Arc<Metrics>) -> (EventTopics, Publisher) {
    let (queue, drain) = queue::bounded(QUEUE);
    let hook = EventTopics {
        node,
        queue,
        metrics: metrics.clone(),
    };
    (hook, Publisher { drain })
}

/// The `$events/` topic of `e`, if it has one (and is not about an event message).
fn topic_of(e: &Event<'_>) -> Option<&'static str> {
    Some(match *e {
        Event::ClientConnected { .. } => "client_connected",
        Event::ClientDisconnected { .. } => "client_disconnected",
        Event::ClientConnack { .. } => "client_connack",
        Event::Subscribed { .. } => "session_subscribed",
        Event::Unsubscribed { .. } => "session_unsubscribed",
        Event::MessageDelivered { topic, .. } if !topic.starts_with(PREFIX) => "message_delivered",
        Event::MessageDropped { topic, .. } if !topic.starts_with(PREFIX) => "message_dropped",
        _ => return None,
    })
}

impl Hooks for EventTopics {
    fn on_event(&self, e: &Event<'_>) {
        let Some(topic) = topic_of(e) else {
            return;
        };
        let body = json::body(e, &self.node, json::now_ms());
        if self.queue.push((topic, body), json::cost(e)).is_err() {
            metrics::inc(&self.metrics.events_dropped);
        }
    }
}

impl Publisher {
    /// Publishes queued events until `shutdown`.
    pub(super) async fn run(mut self, ctx: Arc<Context>, shutdown: CancellationToken) {
        loop {
            let (name, body) = tokio::select! {
                _ = shutdown.cancelled() => return,
                v = self.drain.recv() => match v {
                    Some(v) => v,
                    None => return,
                },
            };
            let Ok(payload) = serde_json::to_vec(&body) else {
                continue;
            };
            let msg = Message::new(
                format!("{PREFIX}{name}"),
                Bytes::from(payload),
                QoS::AtMostOnce,
                false,
            );
            ctx.router.publish(msg, Origin::broker(), Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_messages_make_no_events() {
        let d = Event::MessageDelivered {
            client_id: "c",
            topic: "$events/client_connected",
            qos: QoS::AtMostOnce,
            payload: b"{}",
        };
        assert_eq!(topic_of(&d), None);
        let d = Event::MessageDelivered {
            client_id: "c",
            topic: "a/b",
            qos: QoS::AtMostOnce,
            payload: b"{}",
        };
        assert_eq!(topic_of(&d), Some("message_delivered"));
    }
}
