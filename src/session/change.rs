//! What changed in one session, as a record a durable store can append and replay.
//!
//! Every mutation of a [`super::SessionState`] that a restart must not lose goes through a
//! method of it that records one [`Change`] in the session's journal, when journaling is on
//! (persistent sessions, with a store that keeps them: see `store::SessionJournal`). With
//! journaling off, recording is one branch and nothing is built.

use super::Grant;
use crate::message::Delivery;

/// One change to a session.
#[derive(Debug, Clone)]
pub enum Change {
    /// A subscription was added or replaced [MQTT-3.8.4-3].
    Subscribed { filter: String, grant: Grant },
    /// A subscription was removed.
    Unsubscribed { filter: String },
    /// A message was queued for the client.
    Enqueued(Delivery),
    /// A retained message of a new subscription was queued in the backlog, which is sent
    /// after everything in the queue, including what is queued later (see
    /// [`super::SessionState::queue_retained`]): `Sent` takes the queue's front, or the
    /// backlog's when the queue is empty; `DroppedOldest` only ever drops from the queue.
    Backlogged(Delivery),
    /// The oldest queued message was dropped to make room (`drop_oldest`).
    DroppedOldest,
    /// The front of the queue (of the backlog when the queue is empty) was sent as packet
    /// `pkid` (QoS 0: `pkid` 0, and it is gone).
    Sent { pkid: u16 },
    /// The client acknowledged `pkid` (PUBACK, or PUBCOMP): the delivery is complete.
    Acked { pkid: u16 },
    /// The client's PUBREC for `pkid`: PUBREL sent, PUBCOMP awaited [MQTT-4.3.3].
    Received { pkid: u16 },
    /// An inbound QoS 2 PUBLISH `pkid` was accepted; its PUBREL is awaited [MQTT-4.3.3-2].
    Qos2Arrived { pkid: u16 },
    /// The client's PUBREL for its QoS 2 PUBLISH `pkid`.
    Released { pkid: u16 },
    /// The will of the connection serving the session (`None`: cleared).
    WillSet(Option<crate::codec::LastWill>),
    /// A connection began serving the session.
    Attached,
    /// The connection serving the session went away at this wall-clock time (the session's
    /// expiry counts from here, across a restart too).
    Detached { at: std::time::SystemTime },
    /// How long the session outlives its connection changed (see
    /// [`super::SessionState::expiry`]).
    ExpirySet(Option<std::time::Duration>),
    /// The session ended (clean disconnect, replaced by a clean session, or expired).
    Ended,
}

/// A session's journal: the changes not yet handed to the store.
#[derive(Debug, Default)]
pub(super) struct Journal(Option<Vec<Change>>);

impl Journal {
    pub(super) fn enable(&mut self) {
        self.0.get_or_insert_with(Vec::new);
    }

    pub(super) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Records the change `c` builds, if journaling is on.
    #[inline]
    pub(super) fn record(&mut self, c: impl FnOnce() -> Change) {
        if let Some(v) = &mut self.0 {
            v.push(c());
        }
    }

    pub(super) fn take(&mut self) -> Vec<Change> {
        self.0.as_mut().map(std::mem::take).unwrap_or_default()
    }
}
