//! Writing a session's queue to its connection: `fill` moves queued messages into the
//! outbox as PUBLISH packets within the in-flight window, and `resend_inflight` writes again
//! what a resumed session had in flight.

use std::time::Instant;

use super::{FillResult, Inflight, InflightState, SessionState};
use crate::codec::{self, Ack, Packet, QoS};
use crate::message::Delivery;
use crate::session::egress::Egress;
use crate::session::outbox::Outbox;
use crate::session::Change;

impl SessionState {
    /// Moves queued messages into `out` as PUBLISH packets (as `egress` writes them) while
    /// the in-flight window has credit and `out` is below `max_bytes`. Queue order is kept
    /// [MQTT-4.6.0-6]. Expired messages are dropped unsent [MQTT-3.3.2-5], and messages too
    /// large for the client are discarded as if sent [MQTT-3.1.2-25]; both are counted in
    /// the result.
    pub fn fill(
        &mut self,
        out: &mut Outbox,
        max_bytes: usize,
        egress: &mut Egress,
        now: Instant,
    ) -> FillResult {
        self.fill_with(out, max_bytes, egress, now, |_| {})
    }

    /// [`SessionState::fill`], calling `sent` with each delivery written (for the hooks;
    /// `fill` passes a closure that compiles to nothing).
    pub fn fill_with(
        &mut self,
        out: &mut Outbox,
        max_bytes: usize,
        egress: &mut Egress,
        now: Instant,
        mut sent: impl FnMut(&Delivery),
    ) -> FillResult {
        let mut res = FillResult::default();
        // Read again after paging in: a message read back from disk has its expiry set
        // against the clock of that read.
        let mut now = now;
        // The client's Receive Maximum bounds the window too [MQTT-3.3.4-9].
        let window = usize::from(self.limits.max_inflight.min(egress.receive_maximum));
        while out.len() < max_bytes {
            if self.queue.is_empty() && self.paged.len() > 0 {
                // A stored session's window ran dry: read the next deliveries back. Until
                // they are, nothing else goes (the backlog comes after the whole queue).
                res.lost += self.page_in() as u64;
                now = Instant::now();
                if self.queue.is_empty() && self.paged.len() > 0 {
                    break;
                }
            }
            // What was queued before a retained backlog goes first, then the backlog.
            let from_queue = !self.queue.is_empty();
            let Some(front) = self.queue.front().or_else(|| self.backlog.front()) else {
                break;
            };
            let expired = front.msg.expired(now);
            if !expired && front.qos != QoS::AtMostOnce && self.inflight.len() >= window {
                break;
            }
            let d = if from_queue {
                let Some(d) = self.queue.pop_front() else {
                    break;
                };
                self.queued_bytes -= d.weight();
                d
            } else {
                let Some(d) = self.backlog.pop_front() else {
                    break;
                };
                d
            };
            if expired {
                // Journaled like a QoS 0 send: the entry leaves the queue and nothing waits.
                self.journal.record(|| Change::Sent { pkid: 0 });
                res.expired += 1;
                continue;
            }
            let pkid = match d.qos {
                QoS::AtMostOnce => 0,
                _ => self.alloc_pkid(),
            };
            if !egress.write_publish(out, &d, pkid, false, now) {
                self.journal.record(|| Change::Sent { pkid: 0 });
                res.too_large += 1;
                continue;
            }
            if res.sent == 0 {
                res.first_routed = d.msg.routed;
            }
            res.sent += 1;
            res.exactly_once += u64::from(d.qos == QoS::ExactlyOnce && self.journal.is_on());
            sent(&d);
            self.journal.record(|| Change::Sent { pkid });
            let state = match d.qos {
                QoS::AtMostOnce => continue,
                QoS::AtLeastOnce => InflightState::Ack,
                QoS::ExactlyOnce => InflightState::Rec,
            };
            self.inflight.push_back(Inflight {
                pkid,
                state,
                delivery: Some(d),
            });
        }
        res.more = out.len() >= max_bytes && !(self.queue_len() == 0 && self.backlog.is_empty());
        res.relieved = self.flow.drained(
            res.sent + res.expired + res.too_large,
            self.queue_len(),
            self.backlog.len(),
            self.limits.max_queued,
            now,
        );
        res
    }

    /// Re-sends every unacknowledged PUBLISH (DUP set) and PUBREL, in order, after a
    /// reconnect that resumed the session [MQTT-4.4.0-1, MQTT-3.3.1-1]. A message in flight
    /// is sent even when it has expired since: its delivery has begun (MQTT 5.0 §4.3.2 has
    /// the receiver own it from the PUBLISH on).
    pub fn resend_inflight(&self, out: &mut Outbox, egress: &mut Egress, now: Instant) -> u64 {
        let mut n = 0;
        for i in &self.inflight {
            match (&i.state, &i.delivery) {
                (InflightState::Comp, _) => {
                    codec::encode(&Packet::PubRel(Ack::new(i.pkid)), egress.level, out.buf())
                }
                (_, Some(d)) => {
                    n += u64::from(egress.write_publish(out, d, i.pkid, true, now));
                }
                (_, None) => {}
            }
        }
        n
    }
}
