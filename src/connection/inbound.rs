//! Handling of each packet a connected client sends (spec §3.3–3.14).

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use super::{v5, CloseReason, Live, Publishing};
use crate::codec::{self, Ack, Packet, Publish, QoS, ReasonCode, UnsubAck};
use crate::context::Context;
use crate::hooks::Event;
use crate::message::Message;
use crate::metrics;
use crate::router::{Origin, Routed};

/// Applies one packet; responses are appended to `out`.
pub(super) fn handle(
    p: Packet,
    live: &mut Live,
    ctx: &Arc<Context>,
    out: &mut BytesMut,
    now: Instant,
) -> Result<(), CloseReason> {
    match p {
        Packet::Publish(p) => publish(p, live, ctx, out, now),
        Packet::PubAck(a) => {
            if live.session.lock().on_puback(a.pkid) {
                live.needs_drain = true;
            }
        }
        Packet::PubRec(a) => {
            let failed = a.reason.is_error();
            let known = live.session.lock().on_pubrec(a.pkid, failed);
            if failed {
                // The client refused the message: the exchange ends here, with no PUBREL
                // (MQTT 5.0 §4.3.3), and its window slot is free.
                live.needs_drain |= known;
            } else {
                // PUBREL answers every PUBREC, known or not, so the client can finish
                // [MQTT-4.3.3-1]. With a durable store, once the PUBREC's mark is on disk:
                // a restart must not send the PUBLISH again after the PUBREL.
                let rel = Packet::PubRel(answer(a.pkid, known));
                if ctx.sessions.holds_acks() {
                    let mut b = BytesMut::new();
                    codec::encode(&rel, live.egress.level, &mut b);
                    super::pacing::release_acks(live, ctx, b, out, None);
                } else {
                    codec::encode(&rel, live.egress.level, out);
                }
            }
        }
        Packet::PubComp(a) => {
            if live.session.lock().on_pubcomp(a.pkid) {
                live.needs_drain = true;
            }
        }
        Packet::PubRel(a) => {
            let known = live.session.lock().release_qos2(a.pkid);
            // PUBCOMP answers every PUBREL [MQTT-4.3.3-2].
            let comp = answer(a.pkid, known);
            codec::encode(&Packet::PubComp(comp), live.egress.level, out);
        }
        Packet::Subscribe(s) => super::subscribe::subscribe(s, live, ctx, out, now)?,
        Packet::Unsubscribe(u) => {
            let mut reasons = Vec::with_capacity(u.filters.len());
            for f in &u.filters {
                if ctx.router.unsubscribe(&live.session, f) {
                    ctx.emit(|| Event::Unsubscribed {
                        client_id: &live.session.client_id,
                        filter: f,
                    });
                    reasons.push(ReasonCode::Success);
                } else {
                    // MQTT 5.0 §3.11.3: said so (3.1.1's UNSUBACK has no codes).
                    reasons.push(ReasonCode::NoSubscriptionExisted);
                }
            }
            // UNSUBACK even when nothing matched [MQTT-3.10.4-4, MQTT-3.10.4-5]; behind any
            // SUBACK still held for the cluster, so the client's acknowledgements of
            // subscription changes arrive in the order it asked for them.
            let unsuback = Packet::UnsubAck(UnsubAck {
                reasons,
                ..UnsubAck::new(u.pkid)
            });
            // With a durable store, once the removal is on disk (a restart keeps it removed).
            match (ctx.sessions.durable(), live.held.as_mut()) {
                (None, None) => codec::encode(&unsuback, live.egress.level, out),
                (wait, Some(held)) => held.push(wait, &unsuback, live.egress.level),
                (wait, None) => {
                    let mut held = Box::<super::Held>::default();
                    held.push(wait, &unsuback, live.egress.level);
                    live.held = Some(held);
                }
            }
        }
        Packet::PingReq => codec::encode(&Packet::PingResp, live.egress.level, out), // [MQTT-3.12.4-1]
        Packet::Disconnect(d) => {
            return Err(v5::client_disconnect(
                &d,
                live.v5.as_deref(),
                &live.session,
                ctx,
            ))
        }
        Packet::Connect(_) => return Err(CloseReason::Protocol("second CONNECT [MQTT-3.1.0-2]")),
        Packet::Auth(a) => super::auth::reauthenticate(&a, live, ctx, out)?,
        Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
            return Err(CloseReason::Protocol(
                "server-to-client packet sent by a client",
            ));
        }
    }
    Ok(())
}

/// The PUBREL or PUBCOMP that answers a PUBREC or PUBREL for `pkid`: at MQTT 5 an id the
/// session did not know is said so, 0x92 (§3.6.2.1, §3.7.2.1); 3.1.1 cannot say it, and the
/// encoder leaves the reason out there.
fn answer(pkid: u16, known: bool) -> Ack {
    let reason = if known {
        ReasonCode::Success
    } else {
        ReasonCode::PacketIdentifierNotFound
    };
    Ack {
        reason,
        ..Ack::new(pkid)
    }
}

fn publish(p: Publish, live: &mut Live, ctx: &Arc<Context>, out: &mut BytesMut, now: Instant) {
    // With a durable store the acknowledgement waits for the message to be routed and
    // durable (see `pacing::after_routed`); without one it goes out at once.
    let mut held = BytesMut::new();
    let hold = super::pacing::holds_ack(live, ctx, p.retain);
    let acks = if hold { &mut held } else { &mut *out };
    let exactly_once = hold && p.qos == QoS::ExactlyOnce;
    // The message and the publisher's packet id in one store batch (see `pacing::route_batch`).
    let _together = exactly_once.then(|| ctx.sessions.hold_writes()).flatten();
    if let Some(msg) = accept(p, live, ctx, acks, now) {
        let routed = route(msg, live, ctx, now);
        super::pacing::note_routed(live, routed, std::iter::empty());
    }
    if !held.is_empty() {
        super::pacing::after_routed(live, ctx, held, out, None);
    }
}

/// Takes ownership of a PUBLISH: answers it (PUBACK, PUBREC) and returns the message to
/// route, or `None` when there is nothing to route (a re-sent QoS 2 id, `$SYS`, refused by the
/// ACL). Split from [`route`] so that a batch of messages can be acknowledged before it is
/// routed: the acknowledgement then reaches a windowed publisher while the batch is routed.
///
/// At MQTT 5 the acknowledgement says what became of the message (§3.4.2.1): 0x87 when the
/// ACL refused it, 0x99 when its payload is not the UTF-8 its format indicator announces,
/// 0x10 when no one subscribes. 3.1.1 can only say success; a refused message is dropped
/// all the same, as 3.1.1 allows.
pub(super) fn accept(
    p: Publish,
    live: &mut Live,
    ctx: &Arc<Context>,
    out: &mut BytesMut,
    now: Instant,
) -> Option<Message> {
    let level = live.egress.level;
    let (qos, pkid) = (p.qos, p.pkid);
    if let Some(v) = live.v5.as_mut() {
        if qos != QoS::AtMostOnce {
            // Answered now: its Receive Maximum slot moves to the QoS 2 set, or frees.
            v.unacked_in = v.unacked_in.saturating_sub(1);
        }
    }
    if qos == QoS::ExactlyOnce && live.session.lock().is_receiving_qos2(pkid) {
        // Delivered on the first PUBLISH with this id; a re-sent one before PUBREL is only
        // acknowledged again [MQTT-4.3.3-2].
        codec::encode(&Packet::PubRec(Ack::new(pkid)), level, out);
        return None;
    }
    let allowed = !refuse_sys(&p.topic, ctx)
        && ctx
            .auth
            .check_publish(&live.session.client_id, live.username.as_deref(), &p.topic);
    // The payload was already copied out of the read buffer by the decoder: a queued or
    // retained message never pins a read chunk.
    let msg = if level.is_v5() {
        v5::message_of(p, now)
    } else {
        Message::new(p.topic, p.payload, p.qos, p.retain)
    };
    let reason = if !level.is_v5() {
        ReasonCode::Success
    } else if !allowed {
        ReasonCode::NotAuthorized
    } else if v5::payload_format_invalid(&msg) {
        tracing::debug!(client_id = %live.session.client_id, topic = %msg.topic, "payload is not the UTF-8 its format indicator says");
        ReasonCode::PayloadFormatInvalid
    } else if qos != QoS::AtMostOnce && !ctx.router.has_subscribers(&msg.topic) {
        ReasonCode::NoMatchingSubscribers
    } else {
        ReasonCode::Success
    };
    let ack = Ack {
        reason,
        ..Ack::new(pkid)
    };
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => codec::encode(&Packet::PubAck(ack), level, out),
        QoS::ExactlyOnce => {
            // A refused QoS 2 message keeps no packet id: the exchange ends at this PUBREC
            // (MQTT 5.0 §4.3.3).
            if !reason.is_error() {
                // Journaled after the message is routed (its PUBREC waits for both: see
                // `pacing::release_acks`): a crash between the two writes then delivers a
                // resent PUBLISH twice rather than lose one the store already knew.
                live.session.lock().receive_qos2(pkid);
            }
            codec::encode(&Packet::PubRec(ack), level, out);
        }
    }
    (allowed && !reason.is_error()).then_some(msg)
}

/// `$SYS` and `$events/` are the broker's own namespaces: a client's PUBLISH or will there
/// is dropped and counted, so no client can forge broker statistics, client events or
/// agent notices.
pub(super) fn refuse_sys(topic: &str, ctx: &Context) -> bool {
    let sys = topic.starts_with("$SYS") || topic.starts_with("$events/");
    if sys {
        metrics::inc(&ctx.metrics.dropped_sys_publish);
        tracing::debug!(topic, "client message to a broker topic dropped");
    }
    sys
}

/// Routes an accepted message (see [`super::pacing::note_routed`] for what the caller does
/// with the answer).
pub(super) fn route(msg: Message, live: &mut Live, ctx: &Arc<Context>, now: Instant) -> Routed {
    let p = live.publishing.get_or_insert_with(Publishing::boxed);
    // A client's own subscription never paces it (the router leaves it out): its own
    // connection is the one draining it.
    ctx.router
        .publish(msg, Origin::client(&live.session, &mut p.memo), now)
}
