//! The hooks seam: what happens to clients and messages, observable without touching the
//! connection or the router. Webhooks, agent notices, audit logs and tests attach here.
//!
//! One trait, [`Hooks`], receives every [`Event`] synchronously on the thread where it
//! happened, so an implementation must be quick and never block (queue the work and return;
//! a webhook sender drops and counts when its queue is full). The broker holds an
//! `Option<Arc<dyn Hooks>>` ([`compose`]d from the configured notifiers, see `notify`, and an
//! embedder's): without hooks each event costs one branch, and no event value is even built.
//! The per-message events (published, delivered, dropped) go through a second such option,
//! set only when some hook [wants them](Hooks::wants_messages), so agent notices (on by
//! default) cost nothing per message.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::codec::{ProtocolLevel, QoS, ReasonCode};

/// Why a message was not delivered to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The session's queue was full and its client had stopped reading (or the producer was
    /// the broker itself, which cannot wait): `queue_full_policy`.
    QueueFull,
    /// A QoS 0 message for an offline session (`queue_qos0_offline = false`).
    Offline,
    /// The client has not read for `slow_consumer_timeout`; it is disconnected.
    SlowConsumer,
    /// For an offline stored session while the durable store is past its disk bound.
    StoreFull,
}

/// Something that happened, borrowed from where it happened.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A client's CONNECT was accepted (after CONNACK 0 was queued).
    ClientConnected {
        client_id: &'a str,
        username: Option<&'a str>,
        peer: SocketAddr,
        /// The CONNECT's protocol level (3, 4 or 5).
        level: ProtocolLevel,
        clean_session: bool,
        keep_alive: u16,
        session_present: bool,
        /// This connection's number (its session generation): tells a connection that took
        /// a session over from the one it replaced, whose disconnect is seen later.
        conn: u64,
        /// The CONNECT's MQTT 5 user properties (empty below level 5).
        user_properties: &'a [(String, String)],
    },
    /// A CONNECT was refused with `reason` (a CONNACK refusal, or a connection closed before
    /// one could be sent). `client_id` is as the CONNECT gave it (empty when it gave none or
    /// no CONNECT was read).
    ClientConnack {
        client_id: &'a str,
        username: Option<&'a str>,
        peer: SocketAddr,
        level: ProtocolLevel,
        reason: ReasonCode,
    },
    /// A connected client's connection ended; `reason` is its close reason, as logged.
    ClientDisconnected {
        client_id: &'a str,
        username: Option<&'a str>,
        reason: &'a str,
        /// The connection's number, as in [`Event::ClientConnected`].
        conn: u64,
    },
    /// A subscription was granted (or replaced) at `qos`.
    Subscribed {
        client_id: &'a str,
        filter: &'a str,
        qos: QoS,
    },
    /// A subscription was removed by UNSUBSCRIBE.
    Unsubscribed { client_id: &'a str, filter: &'a str },
    /// A message was accepted for routing: from a client (`client_id`), or from the broker
    /// itself (a will, `$SYS`: `None`).
    MessagePublished {
        client_id: Option<&'a str>,
        topic: &'a str,
        qos: QoS,
        retain: bool,
        payload_len: usize,
        payload: &'a [u8],
    },
    /// A PUBLISH was written towards a client (at `qos`, after any downgrade).
    MessageDelivered {
        client_id: &'a str,
        topic: &'a str,
        qos: QoS,
        payload: &'a [u8],
    },
    /// A message was not delivered to a session, and why.
    MessageDropped {
        client_id: &'a str,
        topic: &'a str,
        qos: QoS,
        payload: &'a [u8],
        reason: DropReason,
    },
    /// An agent came online (`connected`) or went offline (see `notify::agents`).
    Agent {
        connected: bool,
        notice: &'a AgentNotice,
    },
}

impl Event<'_> {
    /// Whether this is one of the per-message events (published, delivered, dropped): the
    /// hot path tells only hooks that asked for them ([`Hooks::wants_messages`]).
    pub fn is_message(&self) -> bool {
        matches!(
            self,
            Event::MessagePublished { .. }
                | Event::MessageDelivered { .. }
                | Event::MessageDropped { .. }
        )
    }
}

/// What an agent notice says about the agent's connection (built, owned, by the task that
/// tracks agents, never on a client's path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentNotice {
    pub client_id: String,
    pub username: Option<String>,
    pub peer: SocketAddr,
    pub level: ProtocolLevel,
    pub keep_alive: u16,
    pub clean_session: bool,
    /// The host details the agent announced, as JSON text: its CONNECT's `client_info`
    /// user property (MQTT 5), or its retained `<prefix><id>/info` message.
    pub client_info: Option<String>,
    /// Why it went offline (a disconnect notice only).
    pub reason: Option<String>,
}

/// An observer of broker events.
pub trait Hooks: Send + Sync + Debug {
    /// Called for every event, on the thread where it happened. Must not block.
    fn on_event(&self, event: &Event<'_>);

    /// Whether this observer wants the per-message events ([`Event::is_message`]). Those
    /// who do not cost nothing per message.
    fn wants_messages(&self) -> bool {
        true
    }
}

/// Several observers as one: what the broker holds when more than one is configured.
#[derive(Debug)]
pub struct Fanout {
    all: Vec<Arc<dyn Hooks>>,
    /// Those of `all` that want the per-message events.
    messages: Vec<Arc<dyn Hooks>>,
}

impl Hooks for Fanout {
    fn on_event(&self, event: &Event<'_>) {
        let to = if event.is_message() {
            &self.messages
        } else {
            &self.all
        };
        for h in to {
            h.on_event(event);
        }
    }

    fn wants_messages(&self) -> bool {
        !self.messages.is_empty()
    }
}

/// One observer for all of `hooks`: `None` when there are none (the broker then skips
/// every event with one branch), the observer itself when there is one.
pub fn compose(mut hooks: Vec<Arc<dyn Hooks>>) -> Option<Arc<dyn Hooks>> {
    match hooks.len() {
        0 => None,
        1 => hooks.pop(),
        _ => {
            let messages = hooks
                .iter()
                .filter(|h| h.wants_messages())
                .cloned()
                .collect();
            Some(Arc::new(Fanout {
                all: hooks,
                messages,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Count {
        messages: bool,
        seen: AtomicUsize,
    }

    impl Hooks for Count {
        fn on_event(&self, _: &Event<'_>) {
            self.seen.fetch_add(1, Ordering::Relaxed);
        }
        fn wants_messages(&self) -> bool {
            self.messages
        }
    }

    #[test]
    fn a_composite_tells_message_events_only_to_those_that_want_them() {
        assert!(compose(Vec::new()).is_none());
        let quiet = Arc::new(Count::default());
        let loud = Arc::new(Count {
            messages: true,
            ..Count::default()
        });
        let one = compose(vec![quiet.clone() as Arc<dyn Hooks>]).expect("one");
        assert!(!one.wants_messages());
        let both = compose(vec![quiet.clone(), loud.clone() as Arc<dyn Hooks>]).expect("two");
        assert!(both.wants_messages());
        both.on_event(&Event::Unsubscribed {
            client_id: "c",
            filter: "f",
        });
        both.on_event(&Event::MessageDelivered {
            client_id: "c",
            topic: "t",
            qos: QoS::AtMostOnce,
            payload: b"",
        });
        assert_eq!(quiet.seen.load(Ordering::Relaxed), 1);
        assert_eq!(loud.seen.load(Ordering::Relaxed), 2);
    }
}
