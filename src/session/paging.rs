//! Queued messages a stored session keeps on disk only, and reads back as it is served.
//!
//! Owns the session's side of paging: which deliveries stay in memory (a bounded window
//! while its client is connected, none while it is offline), the count, sizes and QoS 0
//! flags of those left on disk (enough to apply the queue bounds and to drop QoS 0 messages
//! at disconnect exactly as the store does), and reading them back in order through a
//! [`PageSource`] (the durable store) when the window runs dry. The store holds every
//! queued delivery anyway (each one is journaled as `Change::Enqueued`); paging out only
//! drops the in-memory copy, so nothing is written twice.
//!
//! Order is kept by one rule: the queue is the in-memory deliveries, then those on disk.
//! Once anything is on disk, every new delivery goes to disk too, until the in-memory part
//! is read back.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::Arc;

use super::SessionState;
use crate::codec::QoS;
use crate::message::Delivery;
use crate::session::Change;

/// Deliveries read back from the store, oldest first.
#[derive(Debug, Default)]
pub struct PagedIn {
    pub deliveries: Vec<Delivery>,
    /// Entries whose message could not be read (logged by the store, and removed from it):
    /// they follow the deliveries in the count, not in order.
    pub lost: usize,
}

/// Where a session's queued deliveries are read back from.
pub trait PageSource: Send + Sync + Debug {
    /// Appends `changes` of `client_id`'s session (so the store's view of its queue is the
    /// session's), then reads up to `max` queued deliveries after the first `skip` (those
    /// in memory). Called with the session's lock held.
    fn page_in(&self, client_id: &str, changes: Vec<Change>, skip: usize, max: usize) -> PagedIn;

    /// Whether the store is past its disk bound (`[persistence] max_disk`,
    /// `min_free_disk`): a session whose client is offline then takes no new message
    /// (`EnqueueOutcome::DroppedStoreFull`).
    fn full(&self) -> bool;
}

/// A stored session's binding to its [`PageSource`].
#[derive(Debug, Clone)]
pub struct Pager {
    pub source: Arc<dyn PageSource>,
    pub client_id: Arc<str>,
    /// Queued deliveries kept in memory while the client is connected.
    pub window: usize,
}

/// What the session knows of one delivery on disk.
#[derive(Debug, Clone, Copy)]
pub(super) struct OnDisk {
    weight: u32,
    qos0: bool,
}

impl OnDisk {
    pub(super) fn of(weight: usize, qos: QoS) -> OnDisk {
        OnDisk {
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
            qos0: qos == QoS::AtMostOnce,
        }
    }
}

/// The deliveries on disk, after those in memory.
#[derive(Debug, Default)]
pub(super) struct Paged {
    entries: VecDeque<OnDisk>,
    bytes: usize,
}

impl Paged {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    fn push_back(&mut self, e: OnDisk) {
        self.bytes += e.weight as usize;
        self.entries.push_back(e);
    }

    fn push_front(&mut self, e: OnDisk) {
        self.bytes += e.weight as usize;
        self.entries.push_front(e);
    }

    pub(super) fn pop_front(&mut self) -> Option<OnDisk> {
        let e = self.entries.pop_front()?;
        self.bytes = self.bytes.saturating_sub(e.weight as usize);
        Some(e)
    }

    /// Forgets the QoS 0 deliveries (dropped at disconnect, as the store drops them).
    fn drop_qos0(&mut self) {
        self.entries.retain(|e| !e.qos0);
        self.bytes = self.entries.iter().map(|e| e.weight as usize).sum();
    }
}

impl SessionState {
    /// Whether a new delivery is kept in memory (else on disk only).
    pub(super) fn keeps_in_memory(&self) -> bool {
        match &self.pager {
            None => true,
            Some(p) => self.paged.len() == 0 && self.link.is_some() && self.queue.len() < p.window,
        }
    }

    /// Counts one delivery the store kept on disk (restore, before the journal is on).
    pub(super) fn paged_restore(&mut self, weight: usize, qos: QoS) {
        self.paged.push_back(OnDisk::of(weight, qos));
    }

    /// Leaves `d` on disk (it is journaled already).
    pub(super) fn page_out(&mut self, d: &Delivery) {
        self.paged.push_back(OnDisk::of(d.weight(), d.qos));
    }

    /// Moves the in-memory queue to disk (the client went offline), after dropping QoS 0
    /// deliveries on disk when `drop_qos0`.
    pub(super) fn page_out_all(&mut self, drop_qos0: bool) {
        if self.pager.is_none() {
            return;
        }
        if drop_qos0 {
            self.paged.drop_qos0();
        }
        while let Some(d) = self.queue.pop_back() {
            self.paged.push_front(OnDisk::of(d.weight(), d.qos));
        }
        self.queued_bytes = 0;
    }

    /// Reads deliveries back from disk into the in-memory queue: up to the window, at least
    /// one. Returns how many could not be read.
    pub(super) fn page_in(&mut self) -> usize {
        let Some(p) = self.pager.as_deref() else {
            return 0;
        };
        if self.paged.len() == 0 {
            return 0;
        }
        let want = p.window.saturating_sub(self.queue.len()).max(1);
        let changes = self.journal.take();
        let got = p
            .source
            .page_in(&p.client_id, changes, self.queue.len(), want);
        for d in got.deliveries {
            if self.paged.pop_front().is_none() {
                // The store had more than the session counted: keep what it gave.
                tracing::warn!("durable store paged in more deliveries than the session held");
            }
            self.queued_bytes += d.weight();
            self.queue.push_back(d);
        }
        for _ in 0..got.lost {
            self.paged.pop_front();
        }
        got.lost
    }

    /// Reads every delivery back from disk (the session's messages are handed elsewhere).
    pub(super) fn page_in_all(&mut self) {
        while self.paged.len() > 0 {
            let before = self.paged.len();
            self.page_in();
            if self.paged.len() == before {
                break;
            }
        }
    }

    /// Deliveries queued, in memory and on disk.
    pub(super) fn queue_len(&self) -> usize {
        self.queue.len() + self.paged.len()
    }

    /// Bytes queued, in memory and on disk.
    pub(super) fn queue_bytes(&self) -> usize {
        self.queued_bytes + self.paged.bytes()
    }
}
