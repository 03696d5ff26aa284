//! Handling of each packet a connected client sends (spec §3.3–3.14).

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use super::{CloseReason, Live, Publishing};
use crate::codec::{self, Ack, Packet, Publish, QoS, ReasonCode, SubAck, Subscribe, UnsubAck};
use crate::context::Context;
use crate::hooks::Event;
use crate::message::{Delivery, Message};
use crate::metrics;
use crate::router::{Origin, Routed};
use crate::topic::{parse_subscription, Subscription};

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
            live.session.lock().on_pubrec(a.pkid);
            // PUBREL answers every PUBREC, known or not, so the client can finish [MQTT-4.3.3-1].
            codec::encode(&Packet::PubRel(Ack::new(a.pkid)), live.level, out);
        }
        Packet::PubComp(a) => {
            if live.session.lock().on_pubcomp(a.pkid) {
                live.needs_drain = true;
            }
        }
        Packet::PubRel(a) => {
            live.session.lock().release_qos2(a.pkid);
            codec::encode(&Packet::PubComp(Ack::new(a.pkid)), live.level, out); // [MQTT-4.3.3-2]
        }
        Packet::Subscribe(s) => subscribe(s, live, ctx, out, now),
        Packet::Unsubscribe(u) => {
            for f in &u.filters {
                if ctx.router.unsubscribe(&live.session, f) {
                    ctx.emit(|| Event::Unsubscribed {
                        client_id: &live.session.client_id,
                        filter: f,
                    });
                }
            }
            // UNSUBACK even when nothing matched [MQTT-3.10.4-4, MQTT-3.10.4-5]; behind any
            // SUBACK still held for the cluster, so the client's acknowledgements of
            // subscription changes arrive in the order it asked for them.
            let unsuback = Packet::UnsubAck(UnsubAck::new(u.pkid));
            match live.held.as_mut() {
                Some(held) => held.push(None, &unsuback, live.level),
                None => codec::encode(&unsuback, live.level, out),
            }
        }
        Packet::PingReq => codec::encode(&Packet::PingResp, live.level, out), // [MQTT-3.12.4-1]
        Packet::Disconnect(_) => return Err(CloseReason::ClientDisconnect),
        Packet::Connect(_) => return Err(CloseReason::Protocol("second CONNECT [MQTT-3.1.0-2]")),
        Packet::ConnAck(_)
        | Packet::SubAck(_)
        | Packet::UnsubAck(_)
        | Packet::PingResp
        | Packet::Auth(_) => {
            return Err(CloseReason::Protocol(
                "server-to-client packet sent by a client",
            ));
        }
    }
    Ok(())
}

fn publish(p: Publish, live: &mut Live, ctx: &Arc<Context>, out: &mut BytesMut, now: Instant) {
    if let Some(msg) = accept(p, live, ctx, out) {
        let routed = route(msg, live, ctx, now);
        super::pacing::note_routed(live, routed, std::iter::empty());
    }
}

/// Takes ownership of a PUBLISH: answers it (PUBACK, PUBREC) and returns the message to
/// route, or `None` when there is nothing to route (a re-sent QoS 2 id, `$SYS`, refused by the
/// ACL). Split from [`route`] so that a batch of messages can be acknowledged before it is
/// routed: the acknowledgement then reaches a windowed publisher while the batch is routed.
pub(super) fn accept(
    p: Publish,
    live: &mut Live,
    ctx: &Arc<Context>,
    out: &mut BytesMut,
) -> Option<Message> {
    let first = match p.qos {
        QoS::AtMostOnce => true,
        QoS::AtLeastOnce => {
            codec::encode(&Packet::PubAck(Ack::new(p.pkid)), live.level, out);
            true
        }
        QoS::ExactlyOnce => {
            // Delivered on the first PUBLISH with this id; a re-sent one before PUBREL is
            // only acknowledged again [MQTT-4.3.3-2].
            let first = live.session.lock().receive_qos2(p.pkid);
            codec::encode(&Packet::PubRec(Ack::new(p.pkid)), live.level, out);
            first
        }
    };
    if !first {
        return None;
    }
    if refuse_sys(&p.topic, ctx) {
        return None;
    }
    // ACL: a refused PUBLISH is dropped; QoS 1/2 were still acknowledged, as 3.1.1 allows.
    if !ctx
        .auth
        .check_publish(&live.session.client_id, live.username.as_deref(), &p.topic)
    {
        return None;
    }
    // The payload was already copied out of the read buffer by the decoder: a queued or
    // retained message never pins a read chunk.
    Some(Message::new(p.topic, p.payload, p.qos, p.retain))
}

/// `$SYS` is the broker's own namespace: a client's PUBLISH or will there is dropped and
/// counted, so no client can forge or retain broker statistics.
pub(super) fn refuse_sys(topic: &str, ctx: &Context) -> bool {
    let sys = topic.starts_with("$SYS");
    if sys {
        metrics::inc(&ctx.metrics.dropped_sys_publish);
        tracing::debug!(topic, "client message to $SYS dropped");
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

fn subscribe(s: Subscribe, live: &mut Live, ctx: &Arc<Context>, out: &mut BytesMut, now: Instant) {
    let mut codes = Vec::with_capacity(s.filters.len());
    let mut retained = Vec::new();
    for f in &s.filters {
        // The ACL judges the topics a subscription reaches: for a consumer group that is the
        // filter inside `$share/<group>/`, not the prefixed string.
        let reach = match parse_subscription(&f.filter) {
            Ok(Subscription::Plain(x) | Subscription::Shared { filter: x, .. }) => x,
            Err(_) => &f.filter,
        };
        if !ctx
            .auth
            .check_subscribe(&live.session.client_id, live.username.as_deref(), reach)
        {
            metrics::inc(&ctx.metrics.subscriptions_rejected);
            codes.push(ReasonCode::NotAuthorized);
            continue;
        }
        match ctx
            .router
            .subscribe(&live.session, &f.filter, f.options, live.read.as_ref())
        {
            Ok(msgs) => {
                ctx.emit(|| Event::Subscribed {
                    client_id: &live.session.client_id,
                    filter: &f.filter,
                    qos: f.options.qos,
                });
                codes.push(ReasonCode::granted(f.options.qos));
                retained.extend(msgs.into_iter().map(|m| (m, f.options.qos)));
            }
            Err(e) => {
                tracing::debug!(client_id = %live.session.client_id, filter = %f.filter, "subscription refused: {e}");
                metrics::inc(&ctx.metrics.subscriptions_rejected);
                codes.push(ReasonCode::UnspecifiedError);
            }
        }
    }
    // In a cluster, the SUBACK waits until every peer has the interest this SUBSCRIBE (or
    // one just before it) advertised, so that a message published anywhere after the SUBACK
    // is delivered; one that changed nothing already known goes out at once. The wait is
    // not done here: the SUBACK is held (with the ones behind it) while the connection goes
    // on serving its client (reads, PINGRESP, keep-alive, take-over). The retained messages
    // travel through the queue, which is not drained while a SUBACK is held, so they still
    // follow it (the spec would let them go first [MQTT-3.8.4]).
    let suback = Packet::SubAck(SubAck::new(s.pkid, codes));
    let barrier = ctx.router.remote().and_then(|c| c.interest_barrier());
    match (barrier, live.held.as_mut()) {
        (None, None) => codec::encode(&suback, live.level, out),
        (barrier, Some(held)) => held.push(barrier, &suback, live.level),
        (barrier, None) => {
            let mut held = Box::<super::Held>::default();
            held.push(barrier, &suback, live.level);
            live.held = Some(held);
        }
    }
    // Every matching retained message is sent, however many: they stream out as the client
    // reads (see `SessionState::queue_retained`), not cut at the queue bound.
    live.session.deliver_retained(
        retained.into_iter().map(|(msg, granted)| Delivery {
            qos: msg.qos.min(granted),
            msg,
            retain: true, // [MQTT-3.3.1-8]
            group: None,
        }),
        now,
    );
    live.needs_drain = true;
}
