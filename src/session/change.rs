//! What changed in one session, as a record a durable store can append and replay.
//!
//! Every mutation of a [`super::SessionState`] that a restart must not lose goes through a
//! method of it that records one [`Change`] in the session's journal, when journaling is on
//! (persistent sessions, with a store that keeps them: see `store::SessionJournal`). With
//! journaling off, recording is one branch and nothing is built.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
    /// A connection began serving the session, for the user it authenticated as: the
    /// identity its subscriptions are read under (the ACL) after a restart, until a client
    /// connects again.
    Attached {
        username: Option<std::sync::Arc<str>>,
    },
    /// The connection serving the session went away at this wall-clock time (the session's
    /// expiry counts from here, across a restart too). `drop_qos0`: the QoS 0 messages
    /// queued (and in the backlog) were dropped with it (`queue_qos0_offline = false`).
    Detached {
        at: std::time::SystemTime,
        drop_qos0: bool,
    },
    /// How long the session outlives its connection changed (see
    /// [`super::SessionState::expiry`]).
    ExpirySet(Option<std::time::Duration>),
    /// The session ended (clean disconnect, replaced by a clean session, or expired).
    Ended,
}

/// How many sessions have their journal on, while they exist. While it is 0 no message can
/// reach a stored session, so a publisher's acknowledgements need not wait for the store
/// (see `connection::pacing`); a session ending late only keeps them waiting a little
/// longer, never too short, since the count rises before the session can subscribe.
#[derive(Debug, Default, Clone)]
pub struct JournaledCount(Arc<AtomicUsize>);

impl JournaledCount {
    /// True when some session's journal is on.
    #[inline]
    pub fn any(&self) -> bool {
        self.0.load(Ordering::Acquire) > 0
    }
}

/// One session's share of a [`JournaledCount`], given back when the session is dropped.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A session's journal: the changes not yet handed to the store.
#[derive(Debug, Default)]
pub(super) struct Journal {
    changes: Option<Vec<Change>>,
    counted: Option<Counted>,
}

impl Journal {
    pub(super) fn enable(&mut self, count: &JournaledCount) {
        self.changes.get_or_insert_with(Vec::new);
        if self.counted.is_none() {
            count.0.fetch_add(1, Ordering::AcqRel);
            self.counted = Some(Counted(count.0.clone()));
        }
    }

    pub(super) fn is_on(&self) -> bool {
        self.changes.is_some()
    }

    /// Records the change `c` builds, if journaling is on.
    #[inline]
    pub(super) fn record(&mut self, c: impl FnOnce() -> Change) {
        if let Some(v) = &mut self.changes {
            v.push(c());
        }
    }

    pub(super) fn take(&mut self) -> Vec<Change> {
        self.changes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }
}
