//! Periodic `$SYS/broker/...` topics: the metrics as retained messages (a Mosquitto habit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::codec::QoS;
use crate::context::Context;
use crate::message::Message;
use crate::router::Origin;

/// Publishes every metric under `$SYS/broker/` each `interval` until `shutdown`; with a
/// `cluster`, each route's counters too.
pub async fn run(
    ctx: Arc<Context>,
    cluster: Option<Arc<Cluster>>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let mut entries = vec![(
            "$SYS/broker/version".to_string(),
            format!("supermq {}", env!("CARGO_PKG_VERSION")),
        )];
        entries.extend(
            ctx.metrics
                .snapshot()
                .into_iter()
                .map(|(k, v)| (format!("$SYS/broker/{k}"), v.to_string())),
        );
        if let Some(c) = &cluster {
            // One subtree per linked peer: a route that is down has no fresh entry.
            for (node, st) in c.link_stats() {
                for (k, v) in [
                    ("msgs_in", &st.msgs_in),
                    ("msgs_out", &st.msgs_out),
                    ("bytes_in", &st.bytes_in),
                    ("bytes_out", &st.bytes_out),
                ] {
                    let topic = format!("$SYS/broker/routes/{node}/{k}");
                    entries.push((topic, crate::metrics::get(v).to_string()));
                }
            }
        }
        for (name, value) in entries {
            let msg = Message::new(name, Bytes::from(value), QoS::AtMostOnce, true);
            ctx.router.publish(msg, Origin::broker(), now);
        }
    }
}

/// Discards offline sessions past their expiry and publishes the delayed wills that are due
/// (theirs among them [MQTT-3.1.3-9]), checking every `every`.
pub async fn expire_sessions(ctx: Arc<Context>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        for s in ctx.sessions.expire(now) {
            ctx.router.end_session(&s);
        }
        for will in ctx.sessions.due_wills(now) {
            publish_will(&ctx, will, now);
        }
    }
}

/// Publishes a will message (at its delay, or as its session ends), counted.
pub fn publish_will(ctx: &Context, will: Message, now: Instant) {
    crate::metrics::inc(&ctx.metrics.wills_published);
    ctx.router.publish(will, Origin::broker(), now);
}
