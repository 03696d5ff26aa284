//! The session registry: client id → session, with take-over and expiry (spec §3.1.2.4, §3.1.4).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use thiserror::Error;

use super::journal::JournalPages;
use super::SessionJournal;
use crate::metrics::{self, Metrics};
use crate::session::{
    Change, ConnLink, JournaledCount, KickReason, PageSource, Pager, Session, SessionLimits,
};

/// Why a session could not be attached.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("session limit of {0} reached (session.max_sessions)")]
    Full(usize),
}

/// The result of attaching a connection to a client id.
#[derive(Debug)]
pub struct Attached {
    pub session: Arc<Session>,
    /// CONNACK session-present flag [MQTT-3.2.2-1..3].
    pub present: bool,
    /// An offline session that was discarded; the caller removes its subscriptions.
    pub discarded: Option<Arc<Session>>,
}

/// The result of a connection leaving its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetachOutcome {
    /// The connection no longer served the session (it was taken over).
    Stale,
    /// A persistent session is kept offline.
    Offline,
    /// The session ended; the caller removes its subscriptions.
    Removed,
}

/// Writes held back by the journal while it lives (see [`SessionStore::hold_writes`]).
#[derive(Debug)]
pub struct WritesHeld<'a>(&'a dyn SessionJournal);

impl Drop for WritesHeld<'_> {
    fn drop(&mut self) {
        self.0.release_writes();
    }
}

/// Every session, online and offline.
#[derive(Debug)]
pub struct SessionStore {
    // Shard locks are held only while the entry for one client id is examined; a session's
    // own mutex may be taken inside (never the other way round).
    map: DashMap<Arc<str>, Arc<Session>>,
    next_id: AtomicU64,
    // Kept beside the map: `DashMap::len` would lock every shard, including one an entry
    // guard already holds.
    count: AtomicUsize,
    limits: SessionLimits,
    max_sessions: usize,
    metrics: Arc<Metrics>,
    /// Where persistent sessions' changes go (none: in memory only).
    journal: Option<Arc<dyn SessionJournal>>,
    /// Sessions whose journal is on (see [`SessionStore::holds_acks`]).
    journaled: JournaledCount,
    /// The journal as stored sessions read their queues back from, with the window they
    /// keep in memory, when it pages (see `session::Pager`).
    pages: Option<(Arc<dyn PageSource>, usize)>,
}

impl SessionStore {
    /// An empty store.
    pub fn new(limits: SessionLimits, max_sessions: usize, metrics: Arc<Metrics>) -> Self {
        SessionStore {
            map: DashMap::new(),
            next_id: AtomicU64::new(1),
            count: AtomicUsize::new(0),
            limits,
            max_sessions,
            metrics,
            journal: None,
            journaled: JournaledCount::default(),
            pages: None,
        }
    }

    /// Hands every change of persistent sessions to `journal` (see [`SessionJournal`]).
    pub fn with_journal(mut self, journal: Option<Arc<dyn SessionJournal>>) -> Self {
        self.pages = journal.as_ref().and_then(|j| {
            let window = j.page_window()?;
            let source: Arc<dyn PageSource> = Arc::new(JournalPages(j.clone()));
            Some((source, window))
        });
        self.journal = journal;
        self
    }

    /// The pager of a stored session (`None` when the journal does not page).
    fn pager(&self, client_id: &Arc<str>) -> Option<Pager> {
        self.pages.as_ref().map(|(source, window)| Pager {
            source: source.clone(),
            client_id: client_id.clone(),
            window: *window,
        })
    }

    /// Whether acknowledgements wait for the journal: a durable store is kept and some
    /// session's journal is on (while none is, no message can reach a stored session, and
    /// only a retained message is kept: see [`SessionStore::keeps`]). See
    /// [`SessionStore::durable`].
    #[inline]
    pub fn holds_acks(&self) -> bool {
        self.journal.is_some() && self.journaled.any()
    }

    /// A wait for everything journaled so far to be durable, or for `msgs` to be held by no
    /// stored session (see [`SessionJournal::durable_or_delivered`]).
    pub fn durable_or_delivered(
        &self,
        msgs: Vec<Arc<crate::message::Message>>,
    ) -> Option<super::SyncWait> {
        self.journal
            .as_ref()
            .and_then(|j| j.durable_or_delivered(msgs))
    }

    /// Holds the journal's writes until the guard is dropped (see
    /// [`SessionJournal::hold_writes`]); `None` without a journal.
    pub fn hold_writes(&self) -> Option<WritesHeld<'_>> {
        let j = self.journal.as_deref()?;
        j.hold_writes();
        Some(WritesHeld(j))
    }

    /// Whether a durable store is kept (a retained PUBLISH's acknowledgement waits for it).
    #[inline]
    pub fn keeps(&self) -> bool {
        self.journal.is_some()
    }

    /// A wait for everything journaled so far to be durable, or `None` when nothing is
    /// pending (or there is no journal). See [`SessionJournal::durable`].
    pub fn durable(&self) -> Option<super::SyncWait> {
        self.journal.as_ref().and_then(|j| j.durable())
    }

    /// Hands the changes `session` recorded since the last call to the journal. Cheap when
    /// there is no journal, or nothing changed.
    ///
    /// The session's lock is held while the journal takes them: two threads committing one
    /// session (its connection after a send, a publisher after queueing for it) would
    /// otherwise hand their changes on in either order, and a "sent" could reach the store
    /// before the "queued" it consumes.
    #[inline]
    pub fn commit(&self, session: &Session) {
        // A session whose journal is off records nothing: no lock to take. (Its journal is
        // turned on, and the flag set, by the thread that attaches or restores it, before
        // anything it records.)
        if !session.is_journaled() {
            return;
        }
        if let Some(j) = &self.journal {
            let mut st = session.lock();
            let changes = st.take_changes();
            if !changes.is_empty() {
                j.append(&session.client_id, changes);
            }
        }
    }

    /// The one end of a session (clean disconnect, replaced by a clean session, expired),
    /// after the router has removed its subscriptions and handed its group messages on:
    /// recorded, committed and counted.
    pub fn ended(&self, session: &Session) {
        session.lock().record(|| Change::Ended);
        self.commit(session);
        metrics::inc(&self.metrics.sessions_ended);
    }

    /// A fresh connection-generation number.
    pub fn next_gen(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session of `client_id`, if any.
    pub fn get(&self, client_id: &str) -> Option<Arc<Session>> {
        self.map.get(client_id).map(|e| e.value().clone())
    }

    fn create(&self, client_id: Arc<str>, expiry: Option<Duration>) -> Arc<Session> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let s = Arc::new(Session::new(id, client_id, expiry, self.limits.clone()));
        if expiry != Some(Duration::ZERO) {
            // Only sessions that outlive their connection are kept by a durable store.
            self.journal_on(&s);
        }
        s
    }

    /// Adds a session a durable store kept, offline and with its journal off until
    /// [`SessionStore::journal_on`] (its subscriptions go back in first, unjournaled: they
    /// are what the journal holds). Counted like any other session.
    pub(super) fn insert_recovered(
        &self,
        client_id: &str,
        expiry: Option<Duration>,
    ) -> Arc<Session> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let key: Arc<str> = client_id.into();
        let s = Arc::new(Session::new(id, key.clone(), expiry, self.limits.clone()));
        if self.map.insert(key, s.clone()).is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
            metrics::inc(&self.metrics.sessions_current);
        }
        s
    }

    /// Tells the journal that the stored session of `client_id` ended (it expired while the
    /// broker was down, and is not restored).
    pub(super) fn journal_ended(&self, client_id: &str) {
        if let Some(j) = &self.journal {
            j.append(client_id, vec![Change::Ended]);
            metrics::inc(&self.metrics.sessions_expired);
        }
    }

    /// Turns on the journal of a restored session (see [`SessionStore::insert_recovered`]).
    pub fn journal_on(&self, session: &Session) {
        if self.journal.is_some() {
            session
                .lock()
                .journal_on(&self.journaled, self.pager(&session.client_id));
            session.mark_journaled();
        }
    }

    /// Binds connection `link` to `client_id`, taking over any live connection with that id
    /// [MQTT-3.1.4-2] and keeping or discarding the old state per CleanSession / Clean Start
    /// [MQTT-3.1.2-4, MQTT-3.1.2-6]. `expiry` is how long the session is to outlive this
    /// connection (see `SessionState::expiry`); a resumed session takes it on.
    pub fn attach(
        &self,
        client_id: &str,
        clean_start: bool,
        expiry: Option<Duration>,
        link: ConnLink,
    ) -> Result<Attached, StoreError> {
        let key: Arc<str> = client_id.into();
        match self.map.entry(key.clone()) {
            Entry::Occupied(mut e) => {
                let old = e.get().clone();
                let mut st = old.lock();
                // A session that ends with its connection (CleanSession 1, Session Expiry
                // 0) ends as that connection is taken over: there is nothing to resume
                // [MQTT-3.1.2-6], as Mosquitto has it.
                if !clean_start && !st.discarded && !st.ends_with_connection() {
                    if let Some(prev) = st.attach(link) {
                        prev.kick(KickReason::TakenOver);
                    }
                    st.set_expiry(expiry);
                    // A connection in time cancels a delayed will [MQTT-3.1.3-9].
                    st.pending_will = None;
                    drop(st);
                    return Ok(Attached {
                        session: old,
                        present: true,
                        discarded: None,
                    });
                }
                st.discarded = true;
                let live = st.link().cloned();
                drop(st);
                if let Some(prev) = &live {
                    // Its connection task removes the subscriptions when it exits.
                    prev.kick(KickReason::TakenOver);
                }
                let session = self.create(key, expiry);
                session.lock().attach(link);
                e.insert(session.clone());
                Ok(Attached {
                    session,
                    present: false,
                    discarded: live.is_none().then_some(old),
                })
            }
            Entry::Vacant(e) => {
                // Reserved before the insert, in one atomic step: a check followed by a later
                // increment lets concurrent CONNECTs for other ids (other shards) all pass.
                let reserved = self
                    .count
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < self.max_sessions).then_some(n + 1)
                    });
                if reserved.is_err() {
                    return Err(StoreError::Full(self.max_sessions));
                }
                let session = self.create(key, expiry);
                session.lock().attach(link);
                e.insert(session.clone());
                metrics::inc(&self.metrics.sessions_current);
                Ok(Attached {
                    session,
                    present: false,
                    discarded: None,
                })
            }
        }
    }

    /// Connection `gen` leaves `session`.
    pub fn detach(&self, session: &Arc<Session>, gen: u64, now: Instant) -> DetachOutcome {
        let mut st = session.lock();
        let was_serving = st.detach(gen, now);
        let (discarded, clean) = (st.discarded, st.ends_with_connection());
        drop(st);
        if discarded {
            // Replaced by a clean take-over while this connection served it: the map already
            // holds the successor, and the leaving connection cleans up what it owned.
            return DetachOutcome::Removed;
        }
        if !was_serving {
            return DetachOutcome::Stale;
        }
        if !clean {
            return DetachOutcome::Offline;
        }
        session.lock().discarded = true;
        if self
            .map
            .remove_if(&session.client_id, |_, v| Arc::ptr_eq(v, session))
            .is_some()
        {
            self.count.fetch_sub(1, Ordering::Relaxed);
            metrics::dec(&self.metrics.sessions_current);
        }
        DetachOutcome::Removed
    }

    /// Removes `session` if it is still offline and still the one held for its client id
    /// (an operator's kick of an offline session: HTTP API). True when removed; the caller
    /// then ends it (`Router::end_session`). A connection that attached meanwhile wins.
    pub fn discard_offline(&self, session: &Arc<Session>) -> bool {
        // The map's shard lock, then the session's: the order `attach` takes them in.
        let removed = self
            .map
            .remove_if(&session.client_id, |_, v| {
                if !Arc::ptr_eq(v, session) {
                    return false;
                }
                let mut st = v.lock();
                let offline = st.link().is_none() && !st.discarded;
                if offline {
                    st.discarded = true;
                }
                offline
            })
            .is_some();
        if removed {
            self.count.fetch_sub(1, Ordering::Relaxed);
            metrics::dec(&self.metrics.sessions_current);
        }
        removed
    }

    /// Takes the delayed wills that are due at `now` (MQTT 5.0 §3.1.3.2.2), for publishing.
    pub fn due_wills(&self, now: Instant) -> Vec<crate::message::Message> {
        let mut due = Vec::new();
        let mut spent = Vec::new();
        for e in self.map.iter() {
            let mut st = e.value().lock();
            if st.pending_will.as_ref().is_some_and(|(_, at)| *at <= now) {
                if let Some((will, _)) = st.pending_will.take() {
                    due.push(will);
                    st.record(|| Change::WillSet(None));
                    spent.push(e.value().clone());
                }
            }
        }
        // Committed outside the map's shard locks (the journal only queues, but a session's
        // changes are handed on with no other lock held).
        for s in spent {
            self.commit(&s);
        }
        due
    }

    /// Removes offline sessions whose Session Expiry Interval (or, for 3.1.1 clients,
    /// `session.persistent_session_expiry`) has passed; their delayed wills are still in
    /// them, due now [MQTT-3.1.3-9].
    pub fn expire(&self, now: Instant) -> Vec<Arc<Session>> {
        let mut gone = Vec::new();
        self.map.retain(|_, s| {
            let mut st = s.lock();
            let expired = st.expired_at(now);
            if expired {
                st.discarded = true;
                gone.push(s.clone());
            }
            !expired
        });
        self.count.fetch_sub(gone.len(), Ordering::Relaxed);
        for _ in &gone {
            metrics::dec(&self.metrics.sessions_current);
            metrics::inc(&self.metrics.sessions_expired);
        }
        gone
    }

    /// Every session (for shutdown and `$SYS`).
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.map.iter().map(|e| e.value().clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::QueueFullPolicy;

    fn store(max_sessions: usize) -> SessionStore {
        let limits = SessionLimits {
            max_inflight: 20,
            max_queued: 100,
            max_queued_bytes: 1 << 20,
            policy: QueueFullPolicy::DropNew,
            queue_qos0_offline: false,
            slow_consumer_timeout: None,
            stall_timeout: Duration::from_secs(1),
        };
        SessionStore::new(limits, max_sessions, Arc::default())
    }

    /// Concurrent CONNECTs for distinct ids never hold more than `session.max_sessions`.
    #[test]
    fn the_session_bound_holds_under_concurrent_attaches() {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 500;
        const MAX: usize = 1000;
        for round in 0..5 {
            let s = Arc::new(store(MAX));
            let start = Arc::new(std::sync::Barrier::new(THREADS));
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (s, start) = (s.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        (0..PER_THREAD)
                            .filter(|i| {
                                let id = format!("r{round}-t{t}-{i}");
                                s.attach(
                                    &id,
                                    true,
                                    Some(Duration::ZERO),
                                    ConnLink::new(s.next_gen()),
                                )
                                .is_ok()
                            })
                            .count()
                    })
                })
                .collect();
            let admitted: usize = handles.into_iter().map(|h| h.join().expect("join")).sum();
            assert_eq!(admitted, MAX, "round {round}");
            assert_eq!(s.len(), MAX);
            assert_eq!(s.map.len(), MAX);
        }
    }
}
