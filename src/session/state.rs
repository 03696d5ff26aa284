//! The session state machine: pure methods that take `now` and write packets into a buffer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::handle::ConnLink;
use super::outbox::Outbox;
use crate::codec::{self, Ack, Packet, Properties, ProtocolLevel, PublishHeader, QoS};
use crate::message::Delivery;

/// What to do with a new message when a session's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFullPolicy {
    /// Keep the queue, drop the arriving message (Mosquitto's behaviour).
    DropNew,
    /// Drop the oldest queued message to make room.
    DropOldest,
}

/// The bounds every session lives within.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub max_inflight: u16,
    pub max_queued: usize,
    pub max_queued_bytes: usize,
    pub policy: QueueFullPolicy,
    pub queue_qos0_offline: bool,
    /// A connected session whose queue stays full this long is a slow consumer.
    pub slow_consumer_timeout: Option<Duration>,
}

/// The result of offering a delivery to a session's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// Queued; `wake` when the serving connection must be notified (queue was empty).
    Queued { wake: bool },
    /// Queued after dropping the oldest entry (`drop_oldest` policy).
    QueuedDroppedOldest { dropped_qos0: bool },
    /// The queue was full and the message was dropped.
    DroppedFull { qos0: bool },
    /// QoS 0 message for an offline session, not queued (as Mosquitto by default).
    DroppedOffline,
    /// Dropped, and the queue has been full longer than the slow-consumer timeout.
    SlowConsumer { qos0: bool },
}

/// What `fill` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FillResult {
    /// PUBLISH packets written.
    pub sent: u64,
    /// True when it stopped only because the buffer reached its bound (call again after a write).
    pub more: bool,
    /// The queue fell below its low watermark after publishers were told to slow down.
    pub relieved: bool,
}

/// How recently a session must have drained to count as a live (merely slow) consumer whose
/// publishers are paced; a stalled one is not waited for (its queue bound applies instead).
const LIVE_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Debug)]
/// What an in-flight entry waits for.
enum InflightState {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    Ack,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    Rec,
    /// PUBREL sent, waiting for PUBCOMP.
    Comp,
}

#[derive(Debug)]
struct Inflight {
    pkid: u16,
    state: InflightState,
    delivery: Option<Delivery>,
}

/// One client's session.
#[derive(Debug)]
pub struct SessionState {
    /// CleanSession of the connection that created the session.
    pub clean: bool,
    /// Filter → granted QoS. B-tree maps here and below: half the inline size of a hash
    /// map (every session carries them, most with few entries) and no hashing of client input.
    pub subscriptions: BTreeMap<String, QoS>,
    /// Set when the session has been replaced or discarded; its connection must stop.
    pub discarded: bool,
    /// When the session last went offline (for expiry); `None` while connected.
    pub offline_since: Option<Instant>,
    queue: VecDeque<Delivery>,
    queued_bytes: usize,
    inflight: VecDeque<Inflight>,
    next_pkid: u16,
    incoming_qos2: BTreeSet<u16>,
    limits: SessionLimits,
    link: Option<ConnLink>,
    full_since: Option<Instant>,
    /// When `fill` last moved messages to the connection.
    last_fill: Option<Instant>,
    /// Publishers were told this queue is filling up; cleared at the low watermark.
    pressured: bool,
    /// When the queue last crossed the high watermark: a consumer gets one liveness window
    /// from then to show it drains (the start of a burst on an idle subscriber).
    high_since: Option<Instant>,
}

impl SessionState {
    /// A new, empty, offline session.
    pub fn new(clean: bool, limits: SessionLimits) -> Self {
        SessionState {
            clean,
            subscriptions: BTreeMap::new(),
            discarded: false,
            offline_since: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            inflight: VecDeque::new(),
            next_pkid: 0,
            incoming_qos2: BTreeSet::new(),
            limits,
            link: None,
            full_since: None,
            last_fill: None,
            pressured: false,
            high_since: None,
        }
    }

    /// The connection currently serving this session.
    pub fn link(&self) -> Option<&ConnLink> {
        self.link.as_ref()
    }

    /// Whether connection `gen` still serves this session.
    pub fn is_served_by(&self, gen: u64) -> bool {
        !self.discarded && self.link.as_ref().is_some_and(|l| l.gen == gen)
    }

    /// Binds a connection; returns the one it replaces (which must be closed: take-over).
    pub fn attach(&mut self, link: ConnLink) -> Option<ConnLink> {
        self.offline_since = None;
        self.full_since = None;
        self.link.replace(link)
    }

    /// Unbinds connection `gen` if it still serves the session; true if it did.
    pub fn detach(&mut self, gen: u64, now: Instant) -> bool {
        if self.link.as_ref().is_some_and(|l| l.gen == gen) {
            self.link = None;
            self.offline_since = Some(now);
            self.full_since = None;
            // QoS 0 messages are not kept for an offline session unless configured.
            if !self.limits.queue_qos0_offline {
                self.queue.retain(|d| d.qos != QoS::AtMostOnce);
                self.queued_bytes = self.queue.iter().map(Delivery::weight).sum();
            }
            true
        } else {
            false
        }
    }

    /// Messages waiting to be sent.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Outbound QoS 1/2 messages awaiting acknowledgement.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Offers a delivery to the queue, applying the configured bound and policy.
    pub fn enqueue(&mut self, d: Delivery, now: Instant) -> EnqueueOutcome {
        let online = self.link.is_some();
        let qos0 = d.qos == QoS::AtMostOnce;
        if !online && qos0 && !self.limits.queue_qos0_offline {
            return EnqueueOutcome::DroppedOffline;
        }
        let w = d.weight();
        let full = |s: &Self| {
            s.queue.len() >= s.limits.max_queued || s.queued_bytes + w > s.limits.max_queued_bytes
        };
        if full(self) {
            if self.draining(now) {
                self.pressured = true;
            }
            if online {
                let since = *self.full_since.get_or_insert(now);
                if self
                    .limits
                    .slow_consumer_timeout
                    .is_some_and(|t| now.duration_since(since) >= t)
                {
                    return EnqueueOutcome::SlowConsumer { qos0 };
                }
            }
            if qos0 || self.limits.policy == QueueFullPolicy::DropNew {
                return EnqueueOutcome::DroppedFull { qos0 };
            }
            let mut dropped_qos0 = false;
            while full(self) {
                let Some(old) = self.queue.pop_front() else {
                    break;
                };
                self.queued_bytes -= old.weight();
                dropped_qos0 |= old.qos == QoS::AtMostOnce;
            }
            self.push(d);
            return EnqueueOutcome::QueuedDroppedOldest { dropped_qos0 };
        }
        let wake = online && self.queue.is_empty();
        self.push(d);
        if self.queue.len() >= self.high_water() {
            self.high_since.get_or_insert(now);
            if !self.pressured && self.draining(now) {
                self.pressured = true;
            }
        }
        EnqueueOutcome::Queued { wake }
    }

    /// Queue length at which publishers are asked to slow down: half the bound, and never so
    /// deep that pacing comes only after seconds of queueing.
    fn high_water(&self) -> usize {
        (self.limits.max_queued / 2).clamp(1, 4096)
    }

    /// Whether the connection drained this queue within the last moments (a live consumer).
    fn draining(&self, now: Instant) -> bool {
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < LIVE_WINDOW);
        self.link.is_some() && (recent(self.last_fill) || recent(self.high_since))
    }

    /// Whether publishers feeding this session should wait before reading more: its queue
    /// is past the high watermark and its consumer is alive. A consumer that stops draining
    /// stops pacing its publishers at once (its queue bound and slow-consumer policy apply).
    pub fn pressured_at(&self, now: Instant) -> bool {
        self.pressured && self.draining(now)
    }

    /// [`SessionState::pressured_at`] now.
    pub fn pressured(&self) -> bool {
        self.pressured_at(Instant::now())
    }

    fn push(&mut self, d: Delivery) {
        self.queued_bytes += d.weight();
        self.queue.push_back(d);
    }

    /// Moves queued messages into `out` as PUBLISH packets (at the client's `level`) while the
    /// in-flight window has credit and `out` is below `max_bytes`. Queue order is kept
    /// [MQTT-4.6.0-6].
    pub fn fill(
        &mut self,
        out: &mut Outbox,
        max_bytes: usize,
        vectored: bool,
        level: ProtocolLevel,
    ) -> FillResult {
        let mut res = FillResult::default();
        while out.len() < max_bytes {
            let Some(front) = self.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce
                && self.inflight.len() >= usize::from(self.limits.max_inflight)
            {
                break;
            }
            let Some(d) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= d.weight();
            res.sent += 1;
            let pkid = match d.qos {
                QoS::AtMostOnce => 0,
                _ => self.alloc_pkid(),
            };
            write_publish(out, &d, pkid, false, vectored, level);
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
        res.more = out.len() >= max_bytes && !self.queue.is_empty();
        if res.sent > 0 {
            self.last_fill = Some(Instant::now());
        }
        if self.queue.len() < self.high_water() {
            self.high_since = None;
        }
        if self.pressured && self.queue.len() <= self.high_water() / 2 {
            self.pressured = false;
            res.relieved = true;
        }
        if self.queue.len() < self.limits.max_queued {
            self.full_since = None;
        }
        res
    }

    /// Re-sends every unacknowledged PUBLISH (DUP set) and PUBREL, in order, at the client's
    /// `level`, after a reconnect with CleanSession 0 [MQTT-4.4.0-1, MQTT-3.3.1-1].
    pub fn resend_inflight(&self, out: &mut Outbox, vectored: bool, level: ProtocolLevel) -> u64 {
        let mut n = 0;
        for i in &self.inflight {
            match (&i.state, &i.delivery) {
                (InflightState::Comp, _) => {
                    codec::encode(&Packet::PubRel(Ack::new(i.pkid)), level, out.buf())
                }
                (_, Some(d)) => {
                    write_publish(out, d, i.pkid, true, vectored, level);
                    n += 1;
                }
                (_, None) => {}
            }
        }
        n
    }

    fn alloc_pkid(&mut self) -> u16 {
        // Ids are handed out in sequence, skipping 0 [MQTT-2.3.1-1] and any id still in
        // flight [MQTT-2.3.1-2]; the window is smaller than the id space, so this ends.
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1);
            let id = self.next_pkid;
            if id != 0 && !self.inflight.iter().any(|i| i.pkid == id) {
                return id;
            }
        }
    }

    fn position(&self, pkid: u16, pred: impl Fn(&InflightState) -> bool) -> Option<usize> {
        // Acknowledgements nearly always arrive in order: the front is checked first.
        self.inflight
            .iter()
            .position(|i| i.pkid == pkid && pred(&i.state))
    }

    /// PUBACK received; true if it completed a QoS 1 delivery.
    pub fn on_puback(&mut self, pkid: u16) -> bool {
        match self.position(pkid, |s| matches!(s, InflightState::Ack)) {
            Some(p) => self.inflight.remove(p).is_some(),
            None => false,
        }
    }

    /// PUBREC received; the caller answers PUBREL either way [MQTT-4.3.3-1].
    pub fn on_pubrec(&mut self, pkid: u16) -> bool {
        match self.position(pkid, |s| matches!(s, InflightState::Rec)) {
            Some(p) => {
                let entry = &mut self.inflight[p];
                entry.state = InflightState::Comp;
                entry.delivery = None;
                true
            }
            None => false,
        }
    }

    /// PUBCOMP received; true if it completed a QoS 2 delivery.
    pub fn on_pubcomp(&mut self, pkid: u16) -> bool {
        match self.position(pkid, |s| matches!(s, InflightState::Comp)) {
            Some(p) => self.inflight.remove(p).is_some(),
            None => false,
        }
    }

    /// An inbound QoS 2 PUBLISH; true the first time `pkid` is seen, so the message is
    /// delivered once even if the client re-sends it before PUBREL [MQTT-4.3.3-2].
    pub fn receive_qos2(&mut self, pkid: u16) -> bool {
        self.incoming_qos2.insert(pkid)
    }

    /// PUBREL received: the id may be reused by the client from now on.
    pub fn release_qos2(&mut self, pkid: u16) {
        self.incoming_qos2.remove(&pkid);
    }

    /// Takes every message not yet acknowledged by the client (queued and in flight), for
    /// redelivery elsewhere.
    pub fn take_undelivered(&mut self) -> Vec<Delivery> {
        let mut v: Vec<Delivery> = self.inflight.drain(..).filter_map(|i| i.delivery).collect();
        v.extend(self.queue.drain(..));
        self.queued_bytes = 0;
        v
    }
}

/// Appends one PUBLISH for `d` with the shared payload.
fn write_publish(
    out: &mut Outbox,
    d: &Delivery,
    pkid: u16,
    dup: bool,
    vectored: bool,
    level: ProtocolLevel,
) {
    let m = &d.msg;
    let header = PublishHeader {
        dup,
        qos: d.qos,
        retain: d.retain,
        topic: &m.topic,
        pkid,
        properties: &Properties::new(),
        payload_len: m.payload.len(),
    };
    codec::encode_publish_header(&header, level, out.buf());
    out.put_payload(m, vectored);
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

#[cfg(test)]
mod pressure_tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::message::Message;
    use crate::session::ConnLink;

    fn d() -> Delivery {
        Delivery {
            msg: Arc::new(Message {
                topic: "t".into(),
                payload: Bytes::from_static(b"x"),
                qos: QoS::AtLeastOnce,
                retain: false,
            }),
            qos: QoS::AtMostOnce,
            retain: false,
            group: None,
        }
    }

    fn session(max_queued: usize) -> SessionState {
        let mut s = SessionState::new(
            true,
            SessionLimits {
                max_inflight: 10,
                max_queued,
                max_queued_bytes: 1 << 20,
                policy: QueueFullPolicy::DropNew,
                queue_qos0_offline: false,
                slow_consumer_timeout: None,
            },
        );
        s.attach(ConnLink::new(1));
        s
    }

    #[test]
    fn a_draining_consumer_paces_publishers_and_relieves_them() {
        let mut s = session(100);
        let mut out = Outbox::default();
        s.enqueue(d(), Instant::now());
        s.fill(&mut out, usize::MAX, false, ProtocolLevel::V311);
        for _ in 0..50 {
            s.enqueue(d(), Instant::now());
        }
        assert!(
            s.pressured(),
            "half the bound reached while the consumer drains"
        );
        out.buf().clear();
        // Each of these QoS 0 packets is 6 bytes: draining 24 leaves 26, still above the low
        // watermark (a quarter of the bound); one more relieves the publishers.
        assert!(
            !s.fill(&mut out, 24 * 6, false, ProtocolLevel::V311)
                .relieved
        );
        assert!(s.pressured());
        out.buf().clear();
        assert!(s.fill(&mut out, 6, false, ProtocolLevel::V311).relieved);
        assert!(!s.pressured());
    }

    #[test]
    fn a_consumer_that_stalls_after_pacing_releases_its_publishers() {
        let mut s = session(100);
        let mut out = Outbox::default();
        s.enqueue(d(), Instant::now());
        s.fill(&mut out, usize::MAX, false, ProtocolLevel::V311);
        for _ in 0..50 {
            s.enqueue(d(), Instant::now());
        }
        assert!(s.pressured_at(Instant::now()));
        // No drain for longer than the liveness window: publishers are no longer held.
        assert!(!s.pressured_at(Instant::now() + LIVE_WINDOW * 2));
    }

    #[test]
    fn a_burst_on_an_idle_consumer_paces_until_it_proves_stalled() {
        let mut s = session(100);
        let t0 = Instant::now();
        for _ in 0..50 {
            s.enqueue(d(), t0);
        }
        assert!(
            s.pressured_at(t0),
            "an idle consumer gets a chance to drain the burst"
        );
        // It never drains: once the liveness window has passed it paces nobody, and the
        // queue bound (drops) applies instead.
        assert!(!s.pressured_at(t0 + LIVE_WINDOW * 2));
    }
}
