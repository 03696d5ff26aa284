//! Reading a stored session's queued deliveries back from disk (see `session::PageSource`):
//! the mirror says which entries follow those the session holds in memory, and each one's
//! message is taken from memory when some session still holds it (or its write is still
//! pending), else read from the `messages` partition.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::record::{self, Entry};
use super::{Durable, Part};
use crate::message::{Delivery, Message};
use crate::session::{Change, PagedIn};
use crate::store::RecoveredMessage;

impl Durable {
    /// See `SessionJournal::page_in`.
    pub(super) fn read_back(
        &self,
        client_id: &str,
        changes: Vec<Change>,
        skip: usize,
        max: usize,
    ) -> PagedIn {
        // The session's changes first, so that the mirror's queue is the session's; then
        // which entries to read, and the messages still in memory.
        let wanted: Vec<(u64, Entry, Option<Arc<Message>>)> = {
            let mut st = self.state.lock();
            self.stage_locked(&mut st, |m| m.apply(client_id, changes));
            let Some(s) = st.mirror.sessions.get(client_id) else {
                return PagedIn::default();
            };
            s.queue
                .iter()
                .skip(skip)
                .take(max)
                .map(|(seq, e)| (*seq, e.clone(), st.mirror.in_memory(e.msg)))
                .collect()
        };
        // Read outside the lock: the entries are this session's, whose lock the caller
        // holds, so nothing can release their messages meanwhile.
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut out = PagedIn::default();
        let mut lost = Vec::new();
        for (seq, e, live) in wanted {
            let msg = match live {
                Some(m) => m,
                None => match self.read_message(e.msg, now, wall) {
                    Some(m) => Arc::new(m),
                    None => {
                        lost.push(seq);
                        continue;
                    }
                },
            };
            out.deliveries.push(Delivery {
                msg,
                qos: e.qos,
                retain: e.retain,
                group: e.group,
                sub_ids: (!e.sub_ids.is_empty()).then(|| e.sub_ids.into_boxed_slice()),
            });
        }
        if !lost.is_empty() {
            out.lost = lost.len();
            self.forget_entries(client_id, &lost);
        }
        out
    }

    /// Message `id` from the `messages` partition, or `None` (logged) when it cannot be read.
    fn read_message(&self, id: u64, now: Instant, wall: SystemTime) -> Option<Message> {
        let v = match self.parts.get(Part::Messages).get(id.to_be_bytes()) {
            Ok(Some(v)) => v,
            Ok(None) => {
                tracing::error!(id, "durable store: a queued message is missing; its delivery is dropped (run `supermq store check`)");
                return None;
            }
            Err(e) => {
                tracing::error!(
                    id,
                    "durable store: reading a queued message failed: {e}; its delivery is dropped"
                );
                return None;
            }
        };
        match record::decode_message(&v) {
            Ok((message, expires_at)) => Some(
                RecoveredMessage {
                    id: Some(id),
                    message,
                    expires_at,
                }
                .into_message(now, wall),
            ),
            Err(e) => {
                tracing::error!(id, "durable store: a queued message cannot be decoded: {e}; its delivery is dropped (run `supermq store check`)");
                None
            }
        }
    }

    /// Removes the queue entries `seqs` of `client_id` that could not be read.
    fn forget_entries(&self, client_id: &str, seqs: &[u64]) {
        let mut st = self.state.lock();
        self.stage_locked(&mut st, |m| {
            let mut ops = Vec::new();
            m.drop_queued(client_id, |seq, _| seqs.contains(&seq), &mut ops);
            ops
        });
    }
}
