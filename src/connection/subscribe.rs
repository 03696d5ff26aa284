//! SUBSCRIBE (spec §3.8–3.9): each filter checked, granted and answered, and the retained
//! messages of the new subscriptions queued behind the SUBACK.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use super::{CloseReason, Live};
use crate::codec::{self, Packet, QoS, ReasonCode, SubAck, Subscribe, SubscribeFilter};
use crate::context::Context;
use crate::hooks::Event;
use crate::message::Delivery;
use crate::metrics;
use crate::router::SubscribeError;
use crate::session::Grant;
use crate::topic::{parse_subscription, Subscription};

/// Handles one SUBSCRIBE. A No Local shared subscription is a protocol error that ends the
/// connection [MQTT-3.8.3-4]; every other refusal is a reason code in the SUBACK.
pub(super) fn subscribe(
    s: Subscribe,
    live: &mut Live,
    ctx: &Arc<Context>,
    out: &mut BytesMut,
    now: Instant,
) -> Result<(), CloseReason> {
    // One Subscription Identifier for every filter of the packet (§3.8.2.1.2).
    let id = s
        .properties
        .values()
        .and_then(|v| v.subscription_identifiers.first().copied())
        .and_then(NonZeroU32::new);
    let mut codes = Vec::with_capacity(s.filters.len());
    let mut retained = Vec::new();
    for f in &s.filters {
        let code = one(f, id, live, ctx, &mut retained)?;
        if code.is_error() {
            metrics::inc(&ctx.metrics.subscriptions_rejected);
        }
        codes.push(code);
    }
    // In a cluster, the SUBACK waits until every peer has the interest this SUBSCRIBE (or
    // one just before it) advertised, so that a message published anywhere after the SUBACK
    // is delivered; one that changed nothing already known goes out at once. The wait is
    // not done here: the SUBACK is held (with the ones behind it) while the connection goes
    // on serving its client (reads, PINGRESP, keep-alive, take-over). The retained messages
    // travel through the queue, which is not drained while a SUBACK is held, so they still
    // follow it (the spec would let them go first [MQTT-3.8.4]).
    let suback = Packet::SubAck(SubAck::new(s.pkid, codes));
    let level = live.egress.level;
    // With a durable store the SUBACK also waits for the subscription to be on disk: a
    // restart after it keeps the subscription.
    let barrier = both(
        ctx.router.remote().and_then(|c| c.interest_barrier()),
        ctx.sessions.durable(),
    );
    match (barrier, live.held.as_mut()) {
        (None, None) => codec::encode(&suback, level, out),
        (barrier, Some(held)) => held.push(barrier, &suback, level),
        (barrier, None) => {
            let mut held = Box::<super::Held>::default();
            held.push(barrier, &suback, level);
            live.held = Some(held);
        }
    }
    // Every matching retained message is sent, however many: they stream out as the client
    // reads (see `SessionState::queue_retained`), not cut at the queue bound.
    live.session.deliver_retained(retained, now);
    live.needs_drain = true;
    Ok(())
}

/// One filter of a SUBSCRIBE: its reason code, and its retained messages added to
/// `retained`.
fn one(
    f: &SubscribeFilter,
    id: Option<NonZeroU32>,
    live: &Live,
    ctx: &Arc<Context>,
    retained: &mut Vec<Delivery>,
) -> Result<ReasonCode, CloseReason> {
    let client_id = &live.session.client_id;
    // The ACL judges the topics a subscription reaches: for a consumer group that is the
    // filter inside `$share/<group>/`, not the prefixed string.
    let parsed = parse_subscription(&f.filter);
    let reach = match parsed {
        Ok(Subscription::Plain(x) | Subscription::Shared { filter: x, .. }) => x,
        Err(_) => &f.filter,
    };
    if let Ok(Subscription::Shared { .. }) = parsed {
        if f.options.no_local && live.egress.level.is_v5() {
            return Err(CloseReason::Violation {
                code: ReasonCode::ProtocolError,
                rule: "No Local on a shared subscription [MQTT-3.8.3-4]",
            });
        }
        if !ctx.config.groups.enabled {
            return Ok(ReasonCode::SharedSubscriptionsNotSupported);
        }
    }
    if !ctx
        .auth
        .check_subscribe(client_id, live.username.as_deref(), reach)
    {
        return Ok(ReasonCode::NotAuthorized);
    }
    // Granted at most the broker's Maximum QoS [MQTT-3.2.2-12, MQTT-3.9.3-... §3.9.3].
    let mut grant = Grant {
        options: f.options,
        id,
    };
    grant.options.qos = grant.options.qos.min(max_qos(ctx));
    match ctx
        .router
        .subscribe(&live.session, &f.filter, grant, live.read.as_ref())
    {
        Ok(msgs) => {
            ctx.emit(|| Event::Subscribed {
                client_id,
                filter: &f.filter,
                qos: grant.options.qos,
            });
            let sub_ids = grant.id.map(|id| Box::from([id.get()]));
            retained.extend(msgs.into_iter().map(|msg| Delivery {
                qos: msg.qos.min(grant.options.qos),
                msg,
                retain: true, // [MQTT-3.3.1-8]
                group: None,
                sub_ids: sub_ids.clone(),
            }));
            Ok(ReasonCode::granted(grant.options.qos))
        }
        Err(e) => {
            tracing::debug!(client_id = %client_id, filter = %f.filter, "subscription refused: {e}");
            Ok(match e {
                SubscribeError::Filter(_) => ReasonCode::TopicFilterInvalid,
                SubscribeError::TooMany(_) => ReasonCode::QuotaExceeded,
            })
        }
    }
}

/// The highest QoS the broker grants (`limits.max_qos`).
pub(super) fn max_qos(ctx: &Context) -> QoS {
    QoS::from_u8(ctx.config.limits.max_qos).unwrap_or(QoS::ExactlyOnce)
}

/// A wait for both `a` and `b` (either may be absent).
pub(super) fn both(
    a: Option<crate::router::Barrier>,
    b: Option<crate::router::Barrier>,
) -> Option<crate::router::Barrier> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Box::pin(async move {
            a.await;
            b.await;
        })),
        (a, b) => a.or(b),
    }
}
