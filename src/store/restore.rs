//! Rebuilding memory from what a durable store kept ([`Recovered`]), on start and before any
//! listener accepts a client.
//!
//! Owns the decisions of recovery: which sessions are still alive (their expiry counted in
//! wall-clock time across the downtime), which wills are due (a session whose connection the
//! crash ended publishes its will when its delay has passed, or at once when the session
//! itself has ended [MQTT-3.1.3-9]), and which messages have expired meanwhile (dropped, never
//! sent [MQTT-3.3.2-5]). A message queued for many sessions comes back as one shared message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Recovered, RecoveredDelivery, RecoveredMessage, RecoveredSession, SessionStore};
use crate::message::{Delivery, Message};
use crate::session::{Grant, Session};

/// What recovery leaves for the router: sessions with the subscriptions to put back in the
/// trie, wills to publish now, and the retained messages.
#[derive(Debug, Default)]
pub struct Restored {
    pub sessions: Vec<RestoredSession>,
    /// Wills whose delay passed during the downtime, or whose session expired meanwhile.
    pub wills_due: Vec<Message>,
    pub retained: Vec<(Arc<Message>, super::Stamp)>,
    /// Sessions that expired during the downtime (already gone from the store's view; the
    /// journal is told they ended).
    pub expired: usize,
}

/// One session back in the store, and what the router must put back for it.
#[derive(Debug)]
pub struct RestoredSession {
    pub session: Arc<Session>,
    /// The username its subscriptions are read under (the ACL).
    pub username: Option<Arc<str>>,
    pub subscriptions: Vec<(String, Grant)>,
}

/// Shares one message among the deliveries that held the same store id.
#[derive(Default)]
struct Shared(HashMap<u64, Arc<Message>>);

impl Shared {
    /// The message of `m`, shared with the deliveries before it that held the same id.
    /// `None` when it expired during the downtime [MQTT-3.3.2-5], unless `in_flight`: a
    /// delivery that began is finished (resent with DUP) whatever its expiry.
    fn get(
        &mut self,
        m: RecoveredMessage,
        in_flight: bool,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Arc<Message>> {
        if let Some(msg) = m.id.and_then(|id| self.0.get(&id)) {
            return Some(msg.clone());
        }
        if m.expired(wall) && !in_flight {
            return None;
        }
        let id = m.id;
        let msg = Arc::new(m.into_message(now, wall));
        if let Some(id) = id {
            self.0.insert(id, msg.clone());
        }
        Some(msg)
    }

    fn delivery(
        &mut self,
        d: RecoveredDelivery,
        in_flight: bool,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Delivery> {
        let msg = self.get(d.message, in_flight, now, wall)?;
        Some(Delivery {
            msg,
            qos: d.qos,
            retain: d.retain,
            group: d.group,
            sub_ids: (!d.sub_ids.is_empty()).then(|| d.sub_ids.into_boxed_slice()),
        })
    }
}

impl SessionStore {
    /// Rebuilds the sessions of `recovered` (see the module doc); the caller puts their
    /// subscriptions back through the router and then turns their journals on.
    pub fn restore(&self, recovered: Recovered, now: Instant, wall: SystemTime) -> Restored {
        let mut shared = Shared::default();
        let mut out = Restored::default();
        for rs in recovered.sessions {
            self.restore_one(rs, now, wall, &mut shared, &mut out);
        }
        for (m, stamp) in recovered.retained {
            if let Some(msg) = shared.get(m, false, now, wall) {
                out.retained.push((msg, stamp));
            }
        }
        out
    }

    fn restore_one(
        &self,
        rs: RecoveredSession,
        now: Instant,
        wall: SystemTime,
        shared: &mut Shared,
        out: &mut Restored,
    ) {
        // Offline since the last write for a session whose connection the stop ended.
        let since = rs.offline_since.unwrap_or(wall);
        let offline = wall.duration_since(since).unwrap_or(Duration::ZERO);
        let alive =
            rs.expiry.map_or(true, |ttl| offline < ttl) && rs.expiry != Some(Duration::ZERO);
        let will = rs.will.map(|w| Message::from_will(w, now));
        if !alive {
            out.expired += 1;
            // Gone from the disk too.
            self.journal_ended(&rs.client_id);
            if let Some((msg, _)) = will {
                out.wills_due.push(msg);
            }
            return;
        }
        let session = self.insert_recovered(&rs.client_id, rs.expiry);
        let inflight = rs
            .inflight
            .into_iter()
            .filter_map(|i| match i.delivery {
                Some(d) => shared
                    .delivery(d, true, now, wall)
                    .map(|d| (i.pkid, Some(d))),
                None => Some((i.pkid, None)),
            })
            .collect();
        let queue = rs
            .queue
            .into_iter()
            // Expired or not: the session drops an expired one as it sends (journaled), so
            // that its queue stays the one the store holds.
            .filter_map(|d| shared.delivery(d, true, now, wall))
            .collect();
        {
            let mut st = session.lock();
            st.restore(inflight, queue, rs.on_disk, rs.incoming_qos2);
            // Offline for as long as it has been, in this process's clock.
            st.offline_since = Some(now.checked_sub(offline).unwrap_or(now));
            if let Some((msg, delay)) = will {
                match delay.checked_sub(offline) {
                    Some(left) if !left.is_zero() => st.pending_will = Some((msg, now + left)),
                    _ => out.wills_due.push(msg),
                }
            }
        }
        out.sessions.push(RestoredSession {
            session,
            username: rs.username.map(Arc::from),
            subscriptions: rs.subscriptions,
        });
    }
}
