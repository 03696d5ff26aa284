//! The session state machine: pure methods that take `now` and write packets into a buffer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::change::{Change, Journal, JournaledCount};
use super::handle::ConnLink;
use super::Grant;
use crate::codec::QoS;
use crate::flow::{high_water, Admission, Watermarks};
use crate::message::{Delivery, Message};
use paging::Paged;
pub use paging::{PageSource, PagedIn, Pager};

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
    /// A connected session that has taken nothing for this long no longer holds back its
    /// publishers (see [`crate::flow::Watermarks::live`]).
    pub stall_timeout: Duration,
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
    /// Not queued for an offline stored session: the store is past its disk bound.
    DroppedStoreFull,
}

/// How ready a session is for one more message, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Readiness {
    /// Below its high watermark: takes it without pausing anyone.
    Room,
    /// Filling, but its client reads: takes it, or blocks the producer until it drains.
    Reading,
    /// Its client has stopped reading (or is offline): only its queue bound is left.
    Stalled,
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
    /// QoS 2 PUBLISH packets written (first sends): with a durable store they wait for
    /// their packet ids to be on disk (see `connection`).
    pub exactly_once: u64,
    /// Messages dropped unsent because they had expired [MQTT-3.3.2-5].
    pub expired: u64,
    /// Messages discarded because they exceed the client's Maximum Packet Size
    /// [MQTT-3.1.2-25].
    pub too_large: u64,
    /// Queued deliveries of a stored session whose message could not be read back from
    /// the store (logged there).
    pub lost: u64,
    /// When the first message written had been routed: one publish-to-deliver sample per
    /// batch for `/metrics` (one per batch keeps the histogram off the per-message path).
    pub first_routed: Option<Instant>,
}

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
    /// How long the session outlives its connection: `Some(ZERO)` ends it with the
    /// connection (3.1.1's CleanSession 1, MQTT 5's Session Expiry Interval 0), `None`
    /// never ends it (§3.1.2.11.2). Set by every CONNECT, and by an MQTT 5 DISCONNECT.
    pub expiry: Option<Duration>,
    /// A will whose Will Delay Interval runs (MQTT 5.0 §3.1.3.2.2): published when it is
    /// due or when the session ends, whichever comes first, and dropped if a connection
    /// resumes the session before [MQTT-3.1.3-9].
    pub pending_will: Option<(Message, Instant)>,
    /// Filter → the subscription's options (its granted QoS among them). B-tree maps here and
    /// below: half the inline size of a hash map (every session carries them, most with few
    /// entries) and no hashing of client input.
    subscriptions: BTreeMap<String, Grant>,
    /// Set when the session has been replaced or discarded; its connection must stop.
    pub discarded: bool,
    /// When the session last went offline (for expiry); `None` while connected.
    pub offline_since: Option<Instant>,
    queue: VecDeque<Delivery>,
    queued_bytes: usize,
    inflight: VecDeque<Inflight>,
    next_pkid: u16,
    incoming_qos2: BTreeSet<u16>,
    /// Retained messages of new subscriptions still to send (§3.3.1.3): streamed into the
    /// window as the client reads, after what was queued before them. They are pointers to
    /// the retained store's messages, so a subscription matching 100,000 of them costs a few
    /// MB here at most, not the messages again.
    backlog: VecDeque<Delivery>,
    limits: SessionLimits,
    link: Option<ConnLink>,
    flow: Watermarks,
    journal: Journal,
    /// Queued deliveries on disk only, after `queue` (see `paging.rs`).
    paged: Paged,
    /// Set for a stored session whose store pages (see `paging.rs`).
    pager: Option<Box<Pager>>,
}

impl SessionState {
    /// A new, empty, offline session.
    pub fn new(expiry: Option<Duration>, limits: SessionLimits) -> Self {
        SessionState {
            expiry,
            pending_will: None,
            subscriptions: BTreeMap::new(),
            discarded: false,
            offline_since: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            inflight: VecDeque::new(),
            next_pkid: 0,
            incoming_qos2: BTreeSet::new(),
            backlog: VecDeque::new(),
            limits,
            link: None,
            flow: Watermarks::default(),
            journal: Journal::default(),
            paged: Paged::default(),
            pager: None,
        }
    }

    /// The connection currently serving this session.
    pub fn link(&self) -> Option<&ConnLink> {
        self.link.as_ref()
    }

    /// Records every later change in the journal (a persistent session whose store keeps
    /// it).
    /// With `pager`, queued deliveries beyond its window stay on disk only (see
    /// `paging.rs`).
    pub fn journal_on(&mut self, count: &JournaledCount, pager: Option<Pager>) {
        self.journal.enable(count);
        self.pager = pager.map(Box::new);
    }

    /// Puts back what a durable store kept of this session (on start, before any client
    /// connects): in-flight deliveries in the order sent (`None`: PUBREC came, PUBREL is
    /// owed), the queue, and the inbound QoS 2 ids. Not journaled (it is what the journal
    /// holds).
    /// `on_disk`: the (weight, QoS) of the queued deliveries the store kept on disk, after
    /// `queue`.
    pub fn restore(
        &mut self,
        inflight: Vec<(u16, Option<Delivery>)>,
        queue: Vec<Delivery>,
        on_disk: impl IntoIterator<Item = (usize, QoS)>,
        incoming_qos2: impl IntoIterator<Item = u16>,
    ) {
        for (w, qos) in on_disk {
            self.paged_restore(w, qos);
        }
        for (pkid, delivery) in inflight {
            let state = match delivery.as_ref().map(|d| d.qos) {
                None => InflightState::Comp,
                Some(QoS::ExactlyOnce) => InflightState::Rec,
                Some(_) => InflightState::Ack,
            };
            self.next_pkid = pkid;
            self.inflight.push_back(Inflight {
                pkid,
                state,
                delivery,
            });
        }
        for d in queue {
            self.queued_bytes += d.weight();
            self.queue.push_back(d);
        }
        self.incoming_qos2.extend(incoming_qos2);
    }

    /// The changes recorded since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        self.journal.take()
    }

    /// Records a change that happened outside the state (a will set, the session ended).
    pub fn record(&mut self, c: impl FnOnce() -> Change) {
        self.journal.record(c);
    }

    /// Adds or replaces the subscription to `filter`; true if it is new.
    pub fn subscribe(&mut self, filter: &str, grant: Grant) -> bool {
        let new = self
            .subscriptions
            .insert(filter.to_owned(), grant)
            .is_none();
        self.journal.record(|| Change::Subscribed {
            filter: filter.to_owned(),
            grant,
        });
        new
    }

    /// Removes the subscription to exactly `filter`; true if there was one.
    pub fn unsubscribe(&mut self, filter: &str) -> bool {
        let had = self.subscriptions.remove(filter).is_some();
        if had {
            self.journal.record(|| Change::Unsubscribed {
                filter: filter.to_owned(),
            });
        }
        had
    }

    /// Filter → what the subscription was granted.
    pub fn subscriptions(&self) -> &BTreeMap<String, Grant> {
        &self.subscriptions
    }

    /// Removes every subscription (the session is ending); returns them.
    pub fn take_subscriptions(&mut self) -> BTreeMap<String, Grant> {
        std::mem::take(&mut self.subscriptions)
    }

    /// Sets how long the session outlives its connection (a CONNECT that resumes it, or an
    /// MQTT 5 DISCONNECT [MQTT-3.14.2-2]).
    pub fn set_expiry(&mut self, expiry: Option<Duration>) {
        if self.expiry != expiry {
            self.expiry = expiry;
            self.journal.record(|| Change::ExpirySet(expiry));
        }
    }

    /// Whether the session ends with its connection (no Session Expiry).
    pub fn ends_with_connection(&self) -> bool {
        self.expiry == Some(Duration::ZERO)
    }

    /// Whether the session has been offline for its whole expiry interval at `now`.
    pub fn expired_at(&self, now: Instant) -> bool {
        match (self.offline_since, self.expiry) {
            (Some(since), Some(ttl)) => now.saturating_duration_since(since) >= ttl,
            _ => false,
        }
    }

    /// Whether connection `gen` still serves this session.
    pub fn is_served_by(&self, gen: u64) -> bool {
        !self.discarded && self.link.as_ref().is_some_and(|l| l.gen == gen)
    }

    /// Binds a connection; returns the one it replaces (which must be closed: take-over).
    pub fn attach(&mut self, link: ConnLink) -> Option<ConnLink> {
        self.offline_since = None;
        self.journal.record(|| Change::Attached {
            username: link.meta().and_then(|m| m.username.clone()),
        });
        self.flow.reset_full();
        self.link.replace(link)
    }

    /// Unbinds connection `gen` if it still serves the session; true if it did.
    pub fn detach(&mut self, gen: u64, now: Instant) -> bool {
        if self.link.as_ref().is_some_and(|l| l.gen == gen) {
            self.link = None;
            self.offline_since = Some(now);
            let drop_qos0 = !self.limits.queue_qos0_offline;
            self.journal.record(|| Change::Detached {
                at: std::time::SystemTime::now(),
                drop_qos0,
            });
            self.flow.reset_full();
            // QoS 0 messages are not kept for an offline session unless configured.
            if drop_qos0 {
                self.queue.retain(|d| d.qos != QoS::AtMostOnce);
                self.queued_bytes = self.queue.iter().map(Delivery::weight).sum();
                self.backlog.retain(|d| d.qos != QoS::AtMostOnce);
            }
            // An offline stored session keeps its queue on disk only.
            self.page_out_all(drop_qos0);
            true
        } else {
            false
        }
    }

    /// Messages waiting to be sent (in memory and, for a stored session, on disk).
    pub fn queued(&self) -> usize {
        self.queue_len()
    }

    /// Outbound QoS 1/2 messages awaiting acknowledgement.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Offers a delivery from a producer that cannot wait (a will, a broker notice, a group
    /// message handed on): the queue bound and policy apply whatever the consumer does.
    #[cfg(test)]
    pub(crate) fn enqueue(&mut self, d: Delivery, now: Instant) -> EnqueueOutcome {
        let qos0 = d.qos == QoS::AtMostOnce;
        // Never refused without `may_block`; should it be, the bound's answer stands.
        self.offer(d, now, false)
            .unwrap_or(EnqueueOutcome::DroppedFull { qos0 })
    }

    /// Offers a delivery. With `may_block` (a publisher or a route, which keep the message
    /// and retry), a full queue whose consumer still reads hands the delivery back
    /// (`Err`) instead of losing it; the producer offers it again on relief.
    pub fn offer(
        &mut self,
        d: Delivery,
        now: Instant,
        may_block: bool,
    ) -> Result<EnqueueOutcome, Delivery> {
        let online = self.link.is_some();
        let qos0 = d.qos == QoS::AtMostOnce;
        if !online && qos0 && !self.limits.queue_qos0_offline {
            return Ok(EnqueueOutcome::DroppedOffline);
        }
        // The store is past its disk bound: an offline session's queue takes nothing more,
        // whatever `queue_full_policy` says, since dropping its oldest would not make room
        // on disk (see `store/durable/space.rs`). Its connected sessions are still served.
        if !online && self.pager.as_ref().is_some_and(|p| p.source.full()) {
            return Ok(EnqueueOutcome::DroppedStoreFull);
        }
        let w = d.weight();
        let full = |s: &Self| {
            s.queue_len() >= s.limits.max_queued || s.queue_bytes() + w > s.limits.max_queued_bytes
        };
        let l = &self.limits;
        match self.flow.admit(
            full(self),
            !self.backlog.is_empty(),
            online,
            may_block,
            now,
            l.stall_timeout,
            l.slow_consumer_timeout,
        ) {
            Admission::Accept => {}
            Admission::Block => return Err(d),
            Admission::SlowConsumer => return Ok(EnqueueOutcome::SlowConsumer { qos0 }),
            Admission::Overflow => {
                if qos0 || self.limits.policy == QueueFullPolicy::DropNew {
                    return Ok(EnqueueOutcome::DroppedFull { qos0 });
                }
                let mut dropped_qos0 = false;
                while full(self) {
                    // The oldest is in memory, or (none there) the first on disk.
                    if let Some(old) = self.queue.pop_front() {
                        self.queued_bytes -= old.weight();
                        dropped_qos0 |= old.qos == QoS::AtMostOnce;
                    } else if self.paged.pop_front().is_none() {
                        break;
                    }
                    self.journal.record(|| Change::DroppedOldest);
                }
                self.push(d);
                return Ok(EnqueueOutcome::QueuedDroppedOldest { dropped_qos0 });
            }
        }
        let wake = online && self.queue_len() == 0 && self.backlog.is_empty();
        self.push(d);
        self.note_pushed(now);
        Ok(EnqueueOutcome::Queued { wake })
    }

    /// Tells the watermarks how much now waits for the client (queue and backlog).
    fn note_pushed(&mut self, now: Instant) {
        let len = self.queue_len() + self.backlog.len();
        let (cap, stall) = (self.limits.max_queued, self.limits.stall_timeout);
        self.flow.pushed(len, cap, self.link.is_some(), now, stall);
    }

    /// Queues the retained messages of a new subscription behind everything queued before
    /// them; they go out as the client reads, whatever their number, and live messages
    /// wait behind them (see [`crate::flow::Watermarks::admit`]). True if the serving
    /// connection must be woken.
    pub fn queue_retained(
        &mut self,
        retained: impl IntoIterator<Item = Delivery>,
        now: Instant,
    ) -> bool {
        let was_idle = self.queue_len() == 0 && self.backlog.is_empty();
        if self.journal.is_on() {
            for d in retained {
                self.journal.record(|| Change::Backlogged(d.clone()));
                self.backlog.push_back(d);
            }
        } else {
            self.backlog.extend(retained);
        }
        // Like any burst, the backlog gives its consumer one stall window to show it reads.
        self.note_pushed(now);
        self.link.is_some() && was_idle && !self.backlog.is_empty()
    }

    /// Whether the session can take a consumer-group message without pausing anyone: its
    /// queue is below the high watermark and no retained backlog waits. A consumer group
    /// passes a member without room over for one with room.
    pub fn has_room(&self) -> bool {
        self.backlog.is_empty()
            && self.queue_len() < high_water(self.limits.max_queued)
            && self.queue_bytes() < self.limits.max_queued_bytes / 2
    }

    /// How ready the session is to take a consumer-group message (see
    /// `Group::pick` in the router).
    pub fn readiness(&self, now: Instant) -> Readiness {
        if self.has_room() {
            Readiness::Room
        } else if self
            .flow
            .live(self.link.is_some(), now, self.limits.stall_timeout)
        {
            Readiness::Reading
        } else {
            Readiness::Stalled
        }
    }

    /// Whether publishers feeding this session should wait before reading more: its queue
    /// is past the high watermark and its consumer is alive. A consumer that stops draining
    /// stops pacing its publishers once `stall_timeout` has passed (its queue bound and
    /// slow-consumer policy apply).
    pub fn pressured_at(&self, now: Instant) -> bool {
        self.flow
            .pressured(self.link.is_some(), now, self.limits.stall_timeout)
    }

    fn push(&mut self, d: Delivery) {
        self.journal.record(|| Change::Enqueued(d.clone()));
        if self.keeps_in_memory() {
            self.queued_bytes += d.weight();
            self.queue.push_back(d);
        } else {
            self.page_out(&d);
        }
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
            Some(p) => {
                self.journal.record(|| Change::Acked { pkid });
                self.inflight.remove(p).is_some()
            }
            None => false,
        }
    }

    /// PUBREC received; the caller answers PUBREL either way [MQTT-4.3.3-1]. A PUBREC with
    /// an error reason (MQTT 5, 0x80 or above) ends the delivery there: no PUBREL follows
    /// and the window slot is free again (§4.3.3, §4.9).
    pub fn on_pubrec(&mut self, pkid: u16, failed: bool) -> bool {
        match self.position(pkid, |s| matches!(s, InflightState::Rec)) {
            Some(p) if failed => {
                self.journal.record(|| Change::Acked { pkid });
                self.inflight.remove(p).is_some()
            }
            Some(p) => {
                let entry = &mut self.inflight[p];
                entry.state = InflightState::Comp;
                entry.delivery = None;
                self.journal.record(|| Change::Received { pkid });
                true
            }
            None => false,
        }
    }

    /// PUBCOMP received; true if it completed a QoS 2 delivery.
    pub fn on_pubcomp(&mut self, pkid: u16) -> bool {
        match self.position(pkid, |s| matches!(s, InflightState::Comp)) {
            Some(p) => {
                self.journal.record(|| Change::Acked { pkid });
                self.inflight.remove(p).is_some()
            }
            None => false,
        }
    }

    /// An inbound QoS 2 PUBLISH; true the first time `pkid` is seen, so the message is
    /// delivered once even if the client re-sends it before PUBREL [MQTT-4.3.3-2].
    pub fn receive_qos2(&mut self, pkid: u16) -> bool {
        let first = self.incoming_qos2.insert(pkid);
        if first {
            self.journal.record(|| Change::Qos2Arrived { pkid });
        }
        first
    }

    /// Whether an inbound QoS 2 PUBLISH `pkid` awaits its PUBREL.
    pub fn is_receiving_qos2(&self, pkid: u16) -> bool {
        self.incoming_qos2.contains(&pkid)
    }

    /// Inbound QoS 2 PUBLISH packets awaiting their PUBREL (they count against the
    /// broker's Receive Maximum [MQTT-3.3.4-7]).
    pub fn receiving_qos2(&self) -> usize {
        self.incoming_qos2.len()
    }

    /// PUBREL received: the id may be reused by the client from now on. False when no
    /// QoS 2 PUBLISH with that id was awaiting it.
    pub fn release_qos2(&mut self, pkid: u16) -> bool {
        let known = self.incoming_qos2.remove(&pkid);
        if known {
            self.journal.record(|| Change::Released { pkid });
        }
        known
    }

    /// Takes every message not yet acknowledged by the client (queued and in flight), for
    /// redelivery elsewhere.
    pub fn take_undelivered(&mut self) -> Vec<Delivery> {
        self.page_in_all();
        let mut v: Vec<Delivery> = self.inflight.drain(..).filter_map(|i| i.delivery).collect();
        v.extend(self.queue.drain(..));
        self.backlog.clear();
        self.queued_bytes = 0;
        v
    }
}

#[path = "fill.rs"]
mod fill;
#[path = "paging.rs"]
mod paging;

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "flow_tests.rs"]
mod flow_tests;
