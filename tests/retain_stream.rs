//! Retained messages on SUBSCRIBE are a producer like any other: a new subscriber gets every
//! matching retained message, however many there are, streamed as it reads, at the default
//! queue bound (1,000) and with the broker's memory bounded meanwhile.

#[path = "no_loss/client.rs"]
mod client;
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use client::{payload, LoadClient, Reading, Tally};
use common::{start, wait_until, Raw};
use supermq::codec::{self, Packet, Properties, ProtocolLevel, Publish};

const RETAINED: u32 = 100_000;

/// The broker's resident memory may grow by at most this much while it streams the retained
/// set to two subscribers. What it needs is a pointer per message per subscriber (a few MB);
/// a copy of the set per subscriber, or queues holding it all, would show well above it.
const RSS_GROWTH_MAX: u64 = 48 << 20;

/// This process's resident set in bytes (the broker runs in it).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subscriber_gets_all_100000_retained_messages_with_memory_bounded() {
    let b = start().await;
    // The retained set, published in one stream of QoS 0 retained PUBLISH packets.
    let mut feeder = Raw::connect(b.addr, "feeder").await;
    let mut bytes = BytesMut::new();
    for i in 0..RETAINED {
        codec::encode(
            &Packet::Publish(Publish {
                dup: false,
                qos: codec::QoS::AtMostOnce,
                retain: true,
                topic: format!("r/{}/{}", i % 100, i),
                pkid: 0,
                payload: Bytes::from(payload(0, i, 64)),
                properties: Properties::new(),
            }),
            ProtocolLevel::V311,
            &mut bytes,
        );
    }
    feeder.send_raw(&bytes).await;
    let retained = || b.broker.context().router.retained().len();
    wait_until("the retained set is stored", || {
        retained() == RETAINED as usize
    })
    .await;

    let before = rss();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (peak, done) = (peak.clone(), done.clone());
        async move {
            while !done.load(Ordering::Acquire) {
                peak.fetch_max(rss(), Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let mut subs = Vec::new();
    for (id, qos) in [
        ("all-qos0", rumqttc::QoS::AtMostOnce),
        ("all-qos1", rumqttc::QoS::AtLeastOnce),
    ] {
        let mut c = LoadClient::connect(b.addr, id, 20, false, Reading::Fast);
        c.subscribe("#", qos).await;
        subs.push(c);
    }
    for (mut c, name) in subs.into_iter().zip(["QoS 0", "QoS 1"]) {
        let mut t = Tally::default();
        t.collect(&mut c, RETAINED as usize, Duration::from_secs(10))
            .await;
        assert_eq!(
            t.got.len(),
            RETAINED as usize,
            "{name}: every retained message, not the first queue-full"
        );
        assert_eq!(t.duplicates, 0, "{name}");
    }
    done.store(true, Ordering::Release);
    sampler.await.expect("sampler");
    let grew = peak.load(Ordering::Acquire).saturating_sub(before);
    assert!(
        grew <= RSS_GROWTH_MAX,
        "RSS grew by {} MB while streaming (bound {} MB)",
        grew >> 20,
        RSS_GROWTH_MAX >> 20
    );
    assert_eq!(
        supermq::metrics::get(&b.broker.metrics().dropped_qos0_queue_full),
        0
    );
    assert_eq!(
        supermq::metrics::get(&b.broker.metrics().dropped_queue_full),
        0
    );
}
