//! Broker-wide counters and gauges, and their `$SYS` view.
//!
//! Owns numbers only. Hot paths add in batches (one add per read or write batch) so that
//! counters shared across worker threads stay off the per-message path.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! metrics {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// Every counter the broker keeps; all monotonic except the `*_current` gauges.
        #[derive(Debug, Default)]
        pub struct Metrics { $($(#[doc = $doc])* pub $name: AtomicU64,)* }

        impl Metrics {
            /// (name, its doc comment) of every counter, in `snapshot` order (`# HELP`).
            pub const HELP: &'static [(&'static str, &'static str)] =
                &[$((stringify!($name), concat!($($doc),*)),)*];

            /// (name, value) pairs for `$SYS` and logs.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

metrics! {
    /// Connections currently open (after CONNACK 0).
    clients_connected_current,
    /// Network connections accepted.
    connections_accepted,
    /// Connections refused because `limits.max_connections` was reached.
    connections_rejected_limit,
    /// CONNECTs answered with a non-zero CONNACK return code.
    connects_refused,
    /// Connections closed for a malformed packet.
    malformed_packets,
    /// Connections closed for a topic name or filter over `limits.max_topic_levels` or
    /// `limits.max_topic_length` (also counted in `malformed_packets`).
    topics_over_limit,
    /// Connections closed for a protocol violation (e.g. second CONNECT).
    protocol_errors,
    /// Connections closed because no CONNECT came within `limits.connect_timeout`.
    connect_timeouts,
    /// Connections closed by keep-alive expiry.
    keep_alive_timeouts,
    /// Connections closed because another connection took over the client id.
    takeovers,
    /// Connections closed as slow consumers.
    slow_consumer_disconnects,
    /// PUBLISH packets received from clients.
    publish_received,
    /// PUBLISH packets sent to clients.
    publish_sent,
    /// Bytes read from clients.
    bytes_received,
    /// Bytes written to clients.
    bytes_sent,
    /// QoS 0 messages dropped because a subscriber's queue was full.
    dropped_qos0_queue_full,
    /// QoS 1/2 messages dropped because a subscriber's queue was full.
    dropped_queue_full,
    /// QoS 0 messages not queued for an offline session.
    dropped_qos0_offline,
    /// Messages (any QoS) not queued for an offline stored session: the durable store was
    /// past its disk bound (`[persistence] max_disk`, `min_free_disk`).
    dropped_store_full,
    /// MQTT 5 messages whose Message Expiry Interval passed before they could be sent.
    dropped_expired,
    /// Messages not sent because they exceed the client's Maximum Packet Size (MQTT 5).
    dropped_too_large,
    /// Publishes to `$SYS` and `$events/` topics from clients, ignored.
    dropped_sys_publish,
    /// Will messages published.
    wills_published,
    /// Events a webhook delivered (a 2xx answer to the POST that carried them).
    webhook_sent,
    /// Events a webhook gave up on: their POST failed `retries + 1` times.
    webhook_failed,
    /// Events not queued for a webhook: its queue (`queue_size`, or its byte budget) was
    /// full.
    webhook_dropped,
    /// `$events/...` messages not queued for publishing: the queue was full.
    events_dropped,
    /// Agent connects, subscriptions and disconnects not queued for the agent tracker: its
    /// queue was full (a notice may be missed).
    agent_events_dropped,
    /// Agent notices (`agent.connected`, `agent.disconnected`) published.
    agent_notices,
    /// Retained messages currently stored.
    retained_current,
    /// Retained messages refused by `retain.max_messages` or `retain.max_payload_size`.
    retained_rejected,
    /// Sessions (online and offline) currently held.
    sessions_current,
    /// Offline persistent sessions discarded by `session.persistent_session_expiry`.
    sessions_expired,
    /// Sessions ended (clean disconnect, replaced by a clean session, or expired).
    sessions_ended,
    /// Subscriptions currently held.
    subscriptions_current,
    /// SUBSCRIBE filters answered with 0x80.
    subscriptions_rejected,
    /// Group messages handed to another member after theirs left, or to another node.
    group_redispatched,
    /// Group messages no member could take (no member left anywhere, or QoS 0 redispatch).
    group_dropped,
    /// Route links currently up.
    route_links_current,
    /// Route links that went down after being up (each is redialled).
    route_reconnects,
    /// Route handshakes refused (self, wrong cluster, bad secret, duplicate node id, not a peer).
    route_handshake_rejected,
    /// Frames dropped because a peer's route queue was full (`cluster.route_queue`).
    route_frames_dropped,
    /// CONNECTs refused by authentication (bad credentials, unknown user, hook denial).
    auth_failures,
    /// PUBLISH packets (and wills) refused by the ACL and dropped.
    acl_denied_publish,
    /// SUBSCRIBE filters refused by the ACL (answered with 0x80).
    acl_denied_subscribe,
    /// Deliveries withheld by the ACL: a granted filter overlapping a denied topic.
    acl_denied_read,
    /// TLS handshakes or WebSocket upgrades that failed or timed out.
    handshake_failures,
}

/// Adds `n` to a counter.
#[inline]
pub fn add(c: &AtomicU64, n: u64) {
    if n != 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Adds one to a counter.
#[inline]
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Subtracts one from a gauge.
#[inline]
pub fn dec(c: &AtomicU64) {
    c.fetch_sub(1, Ordering::Relaxed);
}

/// Reads a counter.
#[inline]
pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Upper bounds (µs) of the publish-to-deliver latency buckets: 50 µs to 5 s.
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000,
    5_000_000,
];

/// A histogram of publish-to-deliver latency within the broker (from `Router::publish` to
/// the PUBLISH written to the subscriber's buffer), one sample per write batch. Plain
/// atomics, no lock: observed from every connection thread.
#[derive(Debug, Default)]
pub struct Latency {
    /// Non-cumulative counts per bucket of [`LATENCY_BOUNDS_US`], then the overflow.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Latency {
    /// Records one sample.
    pub fn observe(&self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US.partition_point(|&b| b < us);
        inc(&self.buckets[i]);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// (sum in seconds, count, (upper bound in seconds, count) per bucket, not cumulative
    /// (the exposition encoder adds them up), the last `+Inf`, given as `f64::MAX`: what the
    /// encoder writes as `+Inf`).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut total = 0;
        let mut out = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            let n = get(b);
            total += n;
            let le = LATENCY_BOUNDS_US
                .get(i)
                .map_or(f64::MAX, |&us| us as f64 / 1e6);
            out.push((le, n));
        }
        (get(&self.sum_us) as f64 / 1e6, total, out)
    }
}

#[cfg(test)]
mod latency_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn samples_land_in_their_buckets() {
        let l = Latency::default();
        l.observe(Duration::from_micros(40));
        l.observe(Duration::from_micros(50));
        l.observe(Duration::from_millis(3));
        l.observe(Duration::from_secs(60));
        let (sum, count, b) = l.snapshot();
        assert_eq!(count, 4);
        assert_eq!(b[0], (50e-6, 2));
        assert_eq!(b[6], (5e-3, 1));
        assert_eq!(b.last().copied(), Some((f64::MAX, 1)));
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 4);
        assert!((sum - 60.00309).abs() < 1e-9);
    }
}
