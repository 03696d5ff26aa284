//! The shared session handle and the link to the connection serving it.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::task::AtomicWaker;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::watch;

use super::state::{EnqueueOutcome, SessionLimits, SessionState};
use crate::message::Delivery;

/// Why a connection was told to close by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    /// Another connection with the same client id arrived [MQTT-3.1.4-2].
    TakenOver,
    /// Its queue stayed full for longer than `session.slow_consumer_timeout`.
    SlowConsumer,
    /// The broker is shutting down.
    Shutdown,
    /// An operator closed it (HTTP API `DELETE /api/v5/clients/{clientid}`): an abnormal
    /// close, so its will is published.
    Admin,
}

/// What the connection serving a session told the broker about itself at CONNECT: read by
/// the HTTP API's client list, never on the message path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMeta {
    pub username: Option<Arc<str>>,
    pub peer: std::net::SocketAddr,
    /// The CONNECT's protocol level byte (3, 4 or 5).
    pub proto_ver: u8,
    pub keep_alive: u16,
    pub clean_start: bool,
}

/// How the router reaches the connection task that serves a session.
///
/// One small allocation per connection, and no future of its own for the connection to
/// hold while it waits (memory per idle connection counts): a wake-up flag with the task's
/// waker, and the kick, which shares that wake-up.
#[derive(Debug, Clone)]
pub struct ConnLink {
    /// Unique per connection; tells a stale connection from the current one.
    pub gen: u64,
    shared: Arc<LinkShared>,
}

#[derive(Debug, Default)]
struct LinkShared {
    /// The serving task, woken when the queue goes from empty to non-empty and when the
    /// connection is kicked.
    waker: AtomicWaker,
    woken: AtomicBool,
    /// When the connection attached, in µs since the Unix epoch (cluster-wide take-over
    /// order).
    connected_at: u64,
    /// The thread the connection was set up on, which serves it for its life (src/engine.rs).
    thread: Option<std::thread::ThreadId>,
    /// 0 while the connection may go on; else the first [`KickReason`] given, encoded.
    kick: AtomicU8,
    /// Boxed: only the HTTP API reads it, and an idle connection's memory counts.
    meta: Option<Box<ClientMeta>>,
}

impl KickReason {
    fn code(self) -> u8 {
        match self {
            KickReason::TakenOver => 1,
            KickReason::SlowConsumer => 2,
            KickReason::Shutdown => 3,
            KickReason::Admin => 4,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(KickReason::TakenOver),
            2 => Some(KickReason::SlowConsumer),
            3 => Some(KickReason::Shutdown),
            4 => Some(KickReason::Admin),
            _ => None,
        }
    }
}

impl ConnLink {
    /// A fresh link for connection `gen`, connected now.
    pub fn new(gen: u64) -> Self {
        ConnLink::with_meta(gen, None)
    }

    /// A fresh link for connection `gen` of a client described by `meta`.
    pub fn with_meta(gen: u64, meta: Option<ClientMeta>) -> Self {
        let connected_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        ConnLink {
            gen,
            shared: Arc::new(LinkShared {
                connected_at,
                thread: Some(std::thread::current().id()),
                meta: meta.map(Box::new),
                ..LinkShared::default()
            }),
        }
    }

    /// When the connection attached, in µs since the Unix epoch.
    pub fn connected_at(&self) -> u64 {
        self.shared.connected_at
    }

    /// What the client said of itself at CONNECT, when the connection recorded it.
    pub fn meta(&self) -> Option<&ClientMeta> {
        self.shared.meta.as_deref()
    }

    /// Asks the connection to close; the first reason given wins.
    pub fn kick(&self, reason: KickReason) {
        let _ = self.shared.kick.compare_exchange(
            0,
            reason.code(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.wake();
    }

    /// Why the connection was kicked, if it was.
    pub fn kick_reason(&self) -> Option<KickReason> {
        KickReason::from_code(self.shared.kick.load(Ordering::Acquire))
    }

    /// Wakes the connection: its queue has something to send.
    pub fn wake(&self) {
        self.shared.woken.store(true, Ordering::Release);
        self.shared.waker.wake();
    }

    /// Ready once after each [`ConnLink::wake`] or [`ConnLink::kick`]; a wake that comes
    /// before the connection waits is not lost.
    pub fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        // Register first, then look: a wake between the two is seen by the look.
        self.shared.waker.register(cx.waker());
        if self.shared.woken.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// What [`Session::deliver_paced`] did.
#[derive(Debug)]
pub struct Paced {
    /// `Err`: refused by a full queue whose consumer still reads; the producer keeps it.
    pub outcome: Result<EnqueueOutcome, Delivery>,
    /// The publisher should pause (see [`SessionState::pressured_at`]).
    pub pressured: bool,
    /// Messages in the queue after this one was offered.
    pub depth: usize,
    /// The serving connection was woken, and it runs on the calling thread.
    pub woke_here: bool,
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
    /// (a watch channel: a publisher that subscribes before checking misses no bump). Made
    /// when a publisher first waits: most sessions never pace anyone, and the channel is
    /// larger than the rest of an idle session.
    relief: OnceLock<watch::Sender<u64>>,
    /// Set once the session's journal is on (a stored session): a commit of any other
    /// session takes no lock (see `SessionStore::commit`).
    journaled: std::sync::atomic::AtomicBool,
}

impl Session {
    /// A new, offline session.
    /// `expiry`: see [`SessionState::expiry`].
    pub fn new(
        id: u64,
        client_id: Arc<str>,
        expiry: Option<std::time::Duration>,
        limits: SessionLimits,
    ) -> Self {
        Session {
            id,
            client_id,
            state: Mutex::new(SessionState::new(expiry, limits)),
            relief: OnceLock::new(),
            journaled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Marks the session as stored (its journal is on).
    pub fn mark_journaled(&self) {
        self.journaled
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the session's journal is on.
    #[inline]
    pub fn is_journaled(&self) -> bool {
        self.journaled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A receiver that resolves when this session's queue is relieved.
    pub fn relief(&self) -> watch::Receiver<u64> {
        self.relief
            .get_or_init(|| watch::Sender::new(0))
            .subscribe()
    }

    /// Wakes the publishers paced by this session. Before any publisher has waited there is
    /// no one to wake: a publisher subscribes before it checks the pressure, so it either
    /// sees this bump or finds the queue relieved.
    pub fn relieve(&self) {
        if let Some(tx) = self.relief.get() {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Locks the state. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock()
    }

    /// Queues the retained messages of a new subscription (see
    /// [`SessionState::queue_retained`]) and wakes the serving connection.
    pub fn deliver_retained(&self, retained: impl IntoIterator<Item = Delivery>, now: Instant) {
        let mut st = self.state.lock();
        if st.queue_retained(retained, now) {
            if let Some(l) = st.link() {
                l.wake();
            }
        }
    }

    /// Offers a delivery (see [`SessionState::offer`]), also telling whether the producer
    /// should pause (see [`SessionState::pressured_at`]).
    pub fn deliver_paced(&self, d: Delivery, now: Instant, may_block: bool) -> Paced {
        let mut st = self.state.lock();
        let outcome = st.offer(d, now, may_block);
        let pressured = st.pressured_at(now);
        let depth = st.queued();
        let mut woke_here = false;
        match outcome {
            Ok(EnqueueOutcome::Queued { wake: true }) => {
                if let Some(l) = st.link() {
                    l.wake();
                    woke_here = l.shared.thread == Some(std::thread::current().id());
                }
            }
            Ok(EnqueueOutcome::SlowConsumer { .. }) => {
                if let Some(l) = st.link() {
                    l.kick(KickReason::SlowConsumer);
                }
            }
            _ => {}
        }
        Paced {
            outcome,
            pressured,
            depth,
            woke_here,
        }
    }
}

impl crate::flow::Backpressure for Session {
    fn pressured(&self) -> bool {
        self.state.lock().pressured_at(Instant::now())
    }

    fn relief(&self) -> watch::Receiver<u64> {
        Session::relief(self)
    }
}
