//! What a durable store hands back on start: the persistent sessions and retained messages it
//! kept, in the shapes the broker rebuilds its memory from.
//!
//! Owns [`Recovered`] and its parts. A backend (see `SessionJournal`, `RetainedJournal`)
//! fills them from disk; `Broker::start_with` turns them into sessions, subscriptions and
//! retained messages before any listener accepts a client. Times are wall-clock
//! ([`SystemTime`]) on disk and here, because a restart loses every `Instant`.

use std::time::{Duration, SystemTime};

use crate::codec::{LastWill, QoS};
use crate::message::Message;
use crate::session::Grant;
use crate::store::Stamp;

/// Everything a durable store kept.
#[derive(Debug, Default)]
pub struct Recovered {
    pub sessions: Vec<RecoveredSession>,
    /// Retained messages with their cluster stamps, each message's expiry already rebased
    /// (see [`RecoveredMessage`]).
    pub retained: Vec<(RecoveredMessage, Stamp)>,
}

/// A message as kept on disk: the message, and its expiry as a wall-clock deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredMessage {
    /// The store's id of the message: one message queued for many sessions is kept once, and
    /// comes back once (sessions that held the same id share it again). `None`: not shared
    /// (a retained message).
    pub id: Option<u64>,
    /// `expires` is `None` here; [`RecoveredMessage::into_message`] sets it from `expires_at`.
    pub message: Message,
    pub expires_at: Option<SystemTime>,
}

impl RecoveredMessage {
    /// Whether the message had expired at `wall`.
    pub fn expired(&self, wall: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= wall)
    }

    /// The message with its expiry as an `Instant` (one that expired by `wall` expires at
    /// `now`).
    pub fn into_message(self, now: std::time::Instant, wall: SystemTime) -> Message {
        let mut m = self.message;
        if let Some(at) = self.expires_at {
            let left = at.duration_since(wall).unwrap_or_default();
            m.expires = now.checked_add(left);
        }
        m
    }
}

/// One persistent session as it was when the store last synced.
#[derive(Debug, Default)]
pub struct RecoveredSession {
    pub client_id: String,
    /// The username of the connection that last served it: the identity its subscriptions
    /// are read under (the ACL) until a client connects again.
    pub username: Option<String>,
    /// How long the session outlives its connection (see `SessionState::expiry`).
    pub expiry: Option<Duration>,
    /// When it went offline, if it was offline; a session that was connected when the broker
    /// stopped went offline then (the backend uses the time of its last write).
    pub offline_since: Option<SystemTime>,
    pub subscriptions: Vec<(String, Grant)>,
    /// The will of the connection that served it, with its Will Delay Interval.
    pub will: Option<LastWill>,
    /// QoS 1/2 PUBLISH packets sent and not yet completed, in the order sent: resent with DUP
    /// on reconnect [MQTT-4.4.0-1].
    pub inflight: Vec<RecoveredInflight>,
    /// Messages queued and not yet sent, oldest first.
    pub queue: Vec<RecoveredDelivery>,
    /// The queued deliveries after `queue` that the store keeps on disk only, as (weight,
    /// QoS), oldest first: read back as the session is served (see
    /// `SessionJournal::page_in`).
    pub on_disk: Vec<(usize, QoS)>,
    /// Inbound QoS 2 packet ids whose PUBREL is awaited [MQTT-4.3.3-2].
    pub incoming_qos2: Vec<u16>,
}

/// One queued delivery.
#[derive(Debug, Clone)]
pub struct RecoveredDelivery {
    pub message: RecoveredMessage,
    /// The delivery's QoS (the publish QoS capped by the subscription's).
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
    /// The consumer group it was handed to this session by (see `message::Delivery`).
    pub group: Option<std::sync::Arc<crate::topic::GroupKey>>,
}

/// One in-flight outbound QoS 1/2 delivery.
#[derive(Debug, Clone)]
pub struct RecoveredInflight {
    pub pkid: u16,
    /// `None` once PUBREC arrived (PUBREL sent, PUBCOMP awaited): only the id is left.
    pub delivery: Option<RecoveredDelivery>,
}
