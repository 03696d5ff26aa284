//! An acknowledgement that waits for the disk or for the subscribers, whichever comes
//! first (see `SessionJournal::durable_or_delivered`).
//!
//! A QoS 1 message that stored sessions queue is written and fsynced before its publisher is
//! acknowledged; but once every stored session that had it has delivered it and had it
//! acknowledged, a restart has nothing of it to keep, and the publisher may be told at once.
//! A subscriber that keeps up acknowledges within a round trip on the network, well before
//! a batch is fsynced, so a publisher with a bounded window (20 messages by default) is no
//! longer held to one window per fsync. The wait watches each message in turn: the mirror
//! tells a registered [`Notify`] when the last entry naming a message goes.
//!
//! Memory stays bounded all the same: once the writes staged and not yet written pass their
//! share of `max_memory`, acknowledgements wait for the disk again (and a connection stops
//! reading a publisher with too many acknowledgements waiting, `connection::UNSYNCED_MAX`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::Notify;

use super::Durable;
use crate::message::Message;
use crate::store::SyncWait;

impl Durable {
    /// See `SessionJournal::durable_or_delivered`.
    pub(super) fn synced_or_delivered(&self, msgs: Vec<Arc<Message>>) -> Option<SyncWait> {
        if self.backlog.load(Ordering::Acquire) > self.backlog_max {
            // The writer is behind by more than its share of memory: this acknowledgement
            // waits for the disk, which paces its publisher to what the disk takes.
            return crate::store::SessionJournal::durable(self);
        }
        let target = self.target();
        if self.synced_at.load(Ordering::Acquire) >= target {
            return None;
        }
        let notify = Arc::new(Notify::new());
        // Messages no stored session holds need nothing; the first one held is watched.
        let state = self.state.clone();
        let first = {
            let mut st = state.lock();
            msgs.iter().position(|m| st.mirror.watch(m, &notify))
        };
        let mut msgs = msgs;
        match first {
            None => return None,
            Some(i) => drop(msgs.drain(..i)),
        }
        // Told by the writer once the disk has `target` (not woken by every batch, as a
        // watch of `synced` would be: most of these end by delivery, well before).
        self.sync_waiters.add(target, &notify);
        let synced_at = self.synced_at.clone();
        Some(Box::pin(async move {
            let mut rest = msgs.into_iter();
            // Watched already (see above).
            let Some(mut current) = rest.next() else {
                return;
            };
            loop {
                // Checked after registering: the writer stores `synced_at` before it tells
                // the waiters, so a target reached in between is seen here.
                if synced_at.load(Ordering::Acquire) >= target {
                    return;
                }
                notify.notified().await;
                if synced_at.load(Ordering::Acquire) >= target {
                    return;
                }
                let mut st = state.lock();
                if st.mirror.watch(&current, &notify) {
                    // Still held: woken for nothing (a release elsewhere in its batch).
                    continue;
                }
                // Released: watch the next one still held, or done.
                loop {
                    let Some(m) = rest.next() else {
                        return;
                    };
                    if st.mirror.watch(&m, &notify) {
                        current = m;
                        break;
                    }
                }
            }
        }))
    }
}

/// The acknowledgements waiting for delivery or the disk (see [`Durable::synced_or_delivered`]),
/// by target, each told once the writer has made its target durable. A wait that ended by
/// delivery leaves its entry until that target is reached (within a batch or two), so the
/// map holds about the waits of the last batches, and a batch looks only at those it ends.
#[derive(Debug, Default)]
pub(super) struct SyncWaiters(parking_lot::Mutex<BTreeMap<u64, Vec<Weak<Notify>>>>);

impl SyncWaiters {
    /// Tells `n` once every job up to `target` is durable.
    pub fn add(&self, target: u64, n: &Arc<Notify>) {
        self.0
            .lock()
            .entry(target)
            .or_default()
            .push(Arc::downgrade(n));
    }

    /// The writer: every job up to `synced` is durable (and `synced_at` says so).
    pub fn reached(&self, synced: u64) {
        let done = {
            let mut waiters = self.0.lock();
            let later = waiters.split_off(&synced.saturating_add(1));
            std::mem::replace(&mut *waiters, later)
        };
        for n in done.into_values().flatten() {
            if let Some(n) = n.upgrade() {
                n.notify_one();
            }
        }
    }
}
