//! The shared session handle and the link to the connection serving it.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::state::{EnqueueOutcome, SessionLimits, SessionState};
use crate::message::Delivery;

/// Why a connection was told to close by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    /// Another connection with the same client id arrived [MQTT-3.1.4-2].
    TakenOver,
    /// Its queue stayed full for longer than `session.slow_consumer_timeout`.
    SlowConsumer,
}

/// How the router reaches the connection task that serves a session.
#[derive(Debug, Clone)]
pub struct ConnLink {
    /// Unique per connection; tells a stale connection from the current one.
    pub gen: u64,
    /// Woken when the queue goes from empty to non-empty.
    pub notify: Arc<Notify>,
    /// Cancelled to make the connection close; `reason` says why.
    pub kick: CancellationToken,
    reason: Arc<Mutex<Option<KickReason>>>,
}

impl ConnLink {
    /// A fresh link for connection `gen`, with its own kick token.
    pub fn new(gen: u64) -> Self {
        Self::with_kick(gen, CancellationToken::new())
    }

    /// A link whose kick token is given, typically a child of the broker's shutdown token,
    /// so a connection waits on one token for both.
    pub fn with_kick(gen: u64, kick: CancellationToken) -> Self {
        ConnLink {
            gen,
            notify: Arc::new(Notify::new()),
            kick,
            reason: Arc::new(Mutex::new(None)),
        }
    }

    /// Asks the connection to close; the first reason given wins.
    pub fn kick(&self, reason: KickReason) {
        self.reason.lock().get_or_insert(reason);
        self.kick.cancel();
    }

    /// Why the connection was kicked, if it was.
    pub fn kick_reason(&self) -> Option<KickReason> {
        *self.reason.lock()
    }
}

/// A session shared between its connection task, the router and the session store.
#[derive(Debug)]
pub struct Session {
    /// Unique per session object (a replaced session gets a new id).
    pub id: u64,
    pub client_id: Arc<str>,
    // Protects all mutable session state; held only for short, non-async sections.
    state: Mutex<SessionState>,
    /// Bumped when a pressured queue drains to its low watermark; paced publishers wait on it
    /// (a watch channel: a publisher that subscribes before checking misses no bump).
    relief: watch::Sender<u64>,
}

impl Session {
    /// A new, offline session.
    pub fn new(id: u64, client_id: Arc<str>, clean: bool, limits: SessionLimits) -> Self {
        Session {
            id,
            client_id,
            state: Mutex::new(SessionState::new(clean, limits)),
            relief: watch::Sender::new(0),
        }
    }

    /// A receiver that resolves when this session's queue is relieved.
    pub fn relief(&self) -> watch::Receiver<u64> {
        self.relief.subscribe()
    }

    /// Wakes the publishers paced by this session.
    pub fn relieve(&self) {
        self.relief.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Locks the state. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock()
    }

    /// Queues a delivery and wakes or kicks the serving connection as needed.
    pub fn deliver(&self, d: Delivery, now: Instant) -> EnqueueOutcome {
        self.deliver_paced(d, now).0
    }

    /// [`Session::deliver`], also telling whether the publisher should pause (see
    /// [`SessionState::pressured`]).
    pub fn deliver_paced(&self, d: Delivery, now: Instant) -> (EnqueueOutcome, bool) {
        let mut st = self.state.lock();
        let outcome = st.enqueue(d, now);
        let pressured = st.pressured_at(now);
        match outcome {
            EnqueueOutcome::Queued { wake: true } => {
                if let Some(l) = st.link() {
                    l.notify.notify_one();
                }
            }
            EnqueueOutcome::SlowConsumer { .. } => {
                if let Some(l) = st.link() {
                    l.kick(KickReason::SlowConsumer);
                }
            }
            _ => {}
        }
        (outcome, pressured)
    }
}
