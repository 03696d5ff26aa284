//! Large payloads leave a TCP connection by reference (vectored writes, src/session/outbox.rs)
//! while small packets and headers are copied: whatever the mix, every subscriber must get
//! every packet whole and in publish order [MQTT-4.6.0-6], and a re-sent unacknowledged
//! message must carry its full payload [MQTT-4.4.0-1].

mod common;

use common::{connect_packet, start, Raw};
use supermq::codec::{Packet, QoS};

/// A payload of `len` bytes that says which message it is at every position.
fn payload(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n * 31 + i) as u8).collect()
}

/// Sizes around and well above the reference threshold, mixed with small ones.
const SIZES: [usize; 8] = [10, 70_000, 4_095, 4_096, 0, 300_000, 5_000, 1];

#[tokio::test]
async fn mixed_sizes_reach_every_subscriber_whole_and_in_order() {
    let b = start().await;
    let mut subs = Vec::new();
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let mut s = Raw::connect(b.addr, &format!("big-sub-{i}")).await;
        assert_eq!(s.subscribe("big/t", qos).await, qos as u8);
        subs.push(s);
    }
    let mut publisher = Raw::connect(b.addr, "big-pub").await;
    let rounds = 3;
    for r in 0..rounds {
        for (k, &len) in SIZES.iter().enumerate() {
            let qos = [QoS::AtMostOnce, QoS::AtLeastOnce][k % 2];
            publisher
                .publish("big/t", &payload(r * SIZES.len() + k, len), qos, false)
                .await;
        }
    }
    for s in &mut subs {
        for n in 0..rounds * SIZES.len() {
            let p = s.recv_publish().await;
            let len = SIZES[n % SIZES.len()];
            assert_eq!(p.payload.len(), len, "message {n}");
            assert!(p.payload[..] == payload(n, len)[..], "message {n} differs");
        }
    }
}

#[tokio::test]
async fn an_unacknowledged_large_message_is_resent_whole() {
    let b = start().await;
    let (mut s, _) = Raw::connect_with(b.addr, connect_packet("big-persist", false)).await;
    s.subscribe("big/r", QoS::AtLeastOnce).await;
    let mut publisher = Raw::connect(b.addr, "big-pub2").await;
    let body = payload(7, 200_000);
    publisher
        .publish("big/r", &body, QoS::AtLeastOnce, false)
        .await;
    // Received, not acknowledged, then the connection drops.
    match s.recv().await {
        Packet::Publish(p) => assert!(!p.dup && p.payload[..] == body[..]),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
    drop(s);
    let (mut s, present) = Raw::connect_with(b.addr, connect_packet("big-persist", false)).await;
    assert!(present);
    match s.recv().await {
        Packet::Publish(p) => {
            assert!(p.dup, "a re-sent PUBLISH has DUP set [MQTT-3.3.1-1]");
            assert!(p.payload[..] == body[..], "the re-sent payload differs");
            s.ack(&p).await;
        }
        other => panic!("expected the re-sent PUBLISH, got {other:?}"),
    }
}
