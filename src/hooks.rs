//! The hooks seam: what happens to clients and messages, observable without touching the
//! connection or the router. Webhooks, agent notices, audit logs and tests attach here.
//!
//! One trait, [`Hooks`], receives every [`Event`] synchronously on the thread where it
//! happened, so an implementation must be quick and never block (queue the work and return;
//! a webhook sender drops and counts when its queue is full). The broker holds an
//! `Option<Arc<dyn Hooks>>`: without hooks (the default) each event costs one branch, and no
//! event value is even built.

use std::fmt::Debug;
use std::net::SocketAddr;

use crate::codec::QoS;

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
}

/// Something that happened, borrowed from where it happened.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A client's CONNECT was accepted (after CONNACK 0 was queued).
    ClientConnected {
        client_id: &'a str,
        username: Option<&'a str>,
        peer: SocketAddr,
        clean_session: bool,
        keep_alive: u16,
        session_present: bool,
    },
    /// A connected client's connection ended; `reason` is its close reason, as logged.
    ClientDisconnected { client_id: &'a str, reason: &'a str },
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
    },
    /// A PUBLISH was written towards a client (at `qos`, after any downgrade).
    MessageDelivered {
        client_id: &'a str,
        topic: &'a str,
        qos: QoS,
    },
    /// A message was not delivered to a session, and why.
    MessageDropped {
        client_id: &'a str,
        topic: &'a str,
        reason: DropReason,
    },
}

/// An observer of broker events.
pub trait Hooks: Send + Sync + Debug {
    /// Called for every event, on the thread where it happened. Must not block.
    fn on_event(&self, event: &Event<'_>);
}
