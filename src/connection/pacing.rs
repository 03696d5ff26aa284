//! The connection's side of flow control: decoding what was read, routing PUBLISH packets
//! in batches, and pausing when a reader they feed asks for it (the rules are
//! [`crate::flow::Pacing`]'s; this file only applies them to packets).

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use tokio::io::AsyncWrite;

use super::read::ReadSide;
use super::{
    inbound, v5, CloseReason, Conn, Deferred, Live, Step, ACK_FIRST, ACK_FIRST_DEPTH, ROUTE_BATCH,
};
use crate::codec::{self, Packet, Publish};
use crate::context::Context;
use crate::flow;
use crate::message::Message;
use crate::metrics;
use crate::router::Routed;
use bytes::BytesMut;
use std::sync::Arc;

/// Whether the acknowledgement of a PUBLISH (`retain`: a retained one) waits for the store:
/// behind acknowledgements still waiting (their order is the order of the PUBLISH packets
/// [MQTT-4.6.0-2]), while some stored session exists, or for a retained message (stored
/// whoever subscribes).
pub(super) fn holds_ack(live: &Live, ctx: &Context, retain: bool) -> bool {
    let waiting = live
        .publishing
        .as_ref()
        .is_some_and(|p| !p.synced.is_empty());
    waiting || ctx.sessions.holds_acks() || (retain && ctx.sessions.keeps())
}

/// Acknowledgements whose messages were just routed (durable store only): if routing set
/// some of them aside, after those; else released as soon as they are durable (or, with
/// `delivered`, as soon as those messages are held by no stored session: see
/// [`release_acks`]).
pub(super) fn after_routed(
    live: &mut Live,
    ctx: &Context,
    acks: BytesMut,
    out: &mut BytesMut,
    delivered: Option<Vec<Arc<Message>>>,
) {
    let pacing = &mut live.publishing().pacing;
    if let Some(Deferred::Acks(acks)) = pacing.arrive(Deferred::Acks(acks)) {
        release_acks(live, ctx, acks, out, delivered);
    }
}

/// Acknowledgements whose messages are routed: written once everything journaled so far is
/// durable (with `sync = "always"`: fsynced), in order behind any still waiting. An
/// acknowledged message is then one a restart keeps. `delivered`: the acknowledged messages,
/// when all are QoS 1 and not retained: then the acknowledgements may also go once none of
/// them is held by a stored session (delivered and acknowledged everywhere), which for a
/// subscriber that keeps up comes well before the fsync.
pub(super) fn release_acks(
    live: &mut Live,
    ctx: &Context,
    acks: BytesMut,
    out: &mut BytesMut,
    delivered: Option<Vec<Arc<Message>>>,
) {
    // This client's own changes first (an inbound QoS 2 id, a PUBREC): a PUBREC must not go
    // out before the id it remembers is durable, or a restart would deliver a resent
    // PUBLISH twice.
    ctx.sessions.commit(&live.session);
    let wait = match delivered {
        Some(msgs) => ctx.sessions.durable_or_delivered(msgs),
        None => ctx.sessions.durable(),
    };
    let p = live.publishing();
    match wait {
        None if p.synced.is_empty() => out.extend_from_slice(&acks),
        // Behind those still waiting (the order of acknowledgements is the order of the
        // PUBLISH packets [MQTT-4.6.0-2]); durable already.
        None => p.synced.push_back((Box::pin(std::future::ready(())), acks)),
        Some(wait) => p.synced.push_back((wait, acks)),
    }
}

/// A paused client's wait for relief.
pub(super) type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Records what routing one message did; pauses the client when a reader asked for it.
/// `rest` are the messages accepted with it and not routed yet: they wait too, in order.
/// True when the client is now paused.
pub(super) fn note_routed(
    live: &mut Live,
    routed: Routed,
    rest: impl DoubleEndedIterator<Item = Message>,
) -> bool {
    let p = live.publishing();
    p.routed += routed.queued;
    p.deepest = p.deepest.max(routed.deepest);
    p.woke_here |= routed.woke_here;
    match routed.pressure {
        Some(pacer) => {
            let rem = routed.remainder.map(Deferred::Remainder);
            p.pacing.pause(pacer, rem, rest.map(Deferred::Accepted));
            true
        }
        None => {
            // Nothing to wait for and nothing refused: routing never leaves a remainder
            // without naming the reader that refused it.
            debug_assert!(routed.remainder.is_none());
            false
        }
    }
}

impl<R: ReadSide, W: AsyncWrite + Unpin> Conn<R, W> {
    /// Routes what was set aside, then the rest of the read buffer, while no reader holds
    /// the client back; returns the wait for relief when one does.
    pub(super) fn pace(&mut self, live: &mut Live) -> Result<Option<Wait>, CloseReason> {
        loop {
            let step = match live.publishing.as_mut() {
                Some(p) => p.pacing.step(),
                None => Step::Idle,
            };
            match step {
                Step::Wait => {
                    let relief = live.publishing.as_ref().and_then(|p| p.pacing.relief());
                    // Relieved between the two looks: go on.
                    let Some(rx) = relief else { continue };
                    return Ok(Some(Box::pin(flow::relief_or_recheck(rx))));
                }
                Step::Route(item) => self.route_deferred(item, live, Instant::now())?,
                Step::Idle if live.backlog => {
                    // Only now is the rest of the read buffer handled (and the backlog
                    // cleared): clearing it earlier could strand complete packets there.
                    live.backlog = false;
                    self.handle_buffered(live)?;
                }
                Step::Idle => return Ok(None),
            }
        }
    }

    /// Handles one item set aside while paced.
    pub(super) fn route_deferred(
        &mut self,
        item: Deferred,
        live: &mut Live,
        now: Instant,
    ) -> Result<(), CloseReason> {
        match item {
            Deferred::Unhandled(p) => inbound::handle(p, live, &self.ctx, self.wbuf.buf(), now)?,
            Deferred::Accepted(msg) => {
                let routed = inbound::route(msg, live, &self.ctx, now);
                note_routed(live, routed, std::iter::empty());
            }
            Deferred::Remainder(rem) => {
                let routed = self.ctx.router.resume(rem, now, true);
                note_routed(live, routed, std::iter::empty());
            }
            Deferred::Acks(acks) => release_acks(live, &self.ctx, acks, self.wbuf.buf(), None),
        }
        Ok(())
    }

    /// Decodes and handles every complete packet in the read buffer.
    pub(super) fn handle_buffered(&mut self, live: &mut Live) -> Result<(), CloseReason> {
        let limits = self.ctx.decode_limits;
        let now = Instant::now();
        let mut received = 0;
        // Accepted PUBLISH packets not yet routed, and how many of them were acknowledged.
        let mut batch = Vec::new();
        let mut acks = 0;
        // With a durable store the acknowledgements of a batch wait for its messages to be
        // routed and durable (see `release_acks`); without one they go out at once.
        // Decided once for the batch (see `holds_ack`); only a retained PUBLISH can change it.
        let mut holding = holds_ack(live, &self.ctx, false);
        let keeps = self.ctx.sessions.keeps();
        let mut held = BytesMut::new();
        let result = loop {
            match codec::decode(&mut self.rbuf, &limits, live.egress.level) {
                Ok(Some(Packet::Publish(mut p))) => {
                    received += 1;
                    // Checked on arrival, in order, before the PUBLISH may be set aside: an
                    // alias it sets up is for the packets behind it, and the Receive
                    // Maximum counts what was sent, not what was handled.
                    if let Err(r) = self.arrived(&mut p, live) {
                        break Err(r);
                    }
                    let pacing = &mut live.publishing().pacing;
                    let Some(Deferred::Unhandled(Packet::Publish(p))) =
                        pacing.arrive(Deferred::Unhandled(Packet::Publish(p)))
                    else {
                        if !pacing.may_read() {
                            live.backlog = true;
                            break Ok(());
                        }
                        continue;
                    };
                    acks += usize::from(p.qos != codec::QoS::AtMostOnce);
                    // A retained message is stored whoever subscribes.
                    holding |= keeps && p.retain;
                    let out = if holding { &mut held } else { self.wbuf.buf() };
                    if let Some(msg) = inbound::accept(p, live, &self.ctx, out, now) {
                        batch.push(msg);
                    }
                    if batch.len() >= ROUTE_BATCH {
                        let n = std::mem::take(&mut acks);
                        self.route_batch(&mut batch, n, &mut held, live, now);
                    }
                }
                Ok(Some(p)) => {
                    // Anything else is handled after the PUBLISH packets before it are routed
                    // (a SUBSCRIBE must not see an earlier PUBLISH, for one).
                    let n = std::mem::take(&mut acks);
                    self.route_batch(&mut batch, n, &mut held, live, now);
                    if let Err(r) = inbound::handle(p, live, &self.ctx, self.wbuf.buf(), now) {
                        break Err(r);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(CloseReason::Malformed(e)),
            }
        };
        self.route_batch(&mut batch, acks, &mut held, live, now);
        metrics::add(&self.ctx.metrics.publish_received, received);
        result
    }

    /// The checks of a PUBLISH as it arrives (see `v5::inbound_publish`).
    fn arrived(&mut self, p: &mut Publish, live: &mut Live) -> Result<(), CloseReason> {
        v5::check_publish_capabilities(p, live.egress.level, &self.ctx)?;
        match live.v5.as_mut() {
            Some(v) => v5::inbound_publish(p, v, &live.session, &self.ctx),
            None => Ok(()),
        }
    }

    /// Routes the accepted messages of a batch, in order. A batch carrying `acks` or more
    /// acknowledgements has them written first, when the socket takes them at once: a
    /// publisher that waits on a window of unacknowledged messages then sends its next ones
    /// while this batch is being routed, instead of after (the round trip bounds a windowed
    /// publisher's rate). The acknowledgement means the broker owns the message (§4.3.2),
    /// which it does from the moment it is accepted.
    ///
    /// `held` are the batch's acknowledgements when a durable store holds them back: they
    /// follow the batch (see [`after_routed`]).
    fn route_batch(
        &mut self,
        batch: &mut Vec<Message>,
        acks: usize,
        held: &mut BytesMut,
        live: &mut Live,
        now: Instant,
    ) {
        // A QoS 2 message and the publisher's packet id, journaled when its PUBREC is
        // released below, go to the store in one batch (see `SessionJournal::hold_writes`).
        let together = (!held.is_empty() && batch.iter().any(|m| m.qos == codec::QoS::ExactlyOnce))
            .then(|| self.ctx.clone());
        let _held = together.as_ref().and_then(|c| c.sessions.hold_writes());
        let deepest = live.publishing.as_ref().map_or(0, |p| p.deepest);
        let ack_first = acks >= ACK_FIRST && deepest < ACK_FIRST_DEPTH;
        if ack_first {
            self.flush_now();
        }
        // The QoS 1 messages of held acknowledgements (see `release_acks`); `None` once one
        // needs the disk whatever happens to it (retained, QoS 2) or the batch was cut short.
        let mut delivered = (!held.is_empty()).then(Vec::new);
        if !batch.is_empty() {
            let p = live.publishing();
            p.deepest = 0;
            p.woke_here = false;
            let mut rest = batch.drain(..);
            while let Some(msg) = rest.next() {
                let mut routed = inbound::route(msg, live, &self.ctx, now);
                if let Some(v) = delivered.as_mut() {
                    match routed.msg.take() {
                        Some(m) if m.qos == codec::QoS::AtMostOnce => {}
                        Some(m) if m.qos == codec::QoS::AtLeastOnce && !m.retain => v.push(m),
                        _ => delivered = None,
                    }
                }
                // A reader asked for pacing mid-batch: the rest waits, as later packets
                // do, so a publisher runs at most one message past the reader's high
                // watermark.
                if note_routed(live, routed, rest.by_ref()) {
                    delivered = None;
                    break;
                }
            }
            let p = live.publishing();
            p.deliveries_first |= acks > 0 && !ack_first && p.woke_here;
        }
        if !held.is_empty() {
            let acks = std::mem::take(held);
            after_routed(live, &self.ctx, acks, self.wbuf.buf(), delivered);
        }
    }
}
