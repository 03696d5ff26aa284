//! Publish/subscribe behaviour: QoS flows, wildcards, $-topics, overlap, in-flight window
//! (spec §3.3, §3.8, §4.3, §4.7).

mod common;

use bytes::Bytes;
use common::*;
use supermq::codec::{Ack, Packet, Properties, Publish, QoS};

const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

#[tokio::test]
async fn every_publish_and_granted_qos_pair_delivers_at_the_minimum() {
    let b = start().await;
    let mut publisher = Raw::connect(b.addr, "pub").await;
    for granted in QOS {
        let mut sub = Raw::connect(b.addr, &format!("sub{}", granted as u8)).await;
        let filter = format!("m/{}", granted as u8);
        assert_eq!(
            sub.subscribe(&filter, granted).await,
            granted as u8,
            "granted as requested"
        );
        for sent in QOS {
            let payload = format!("{}-{}", sent as u8, granted as u8);
            publisher
                .publish(&filter, payload.as_bytes(), sent, false)
                .await;
            let p = sub.recv_publish().await;
            assert_eq!(&p.payload[..], payload.as_bytes());
            assert_eq!(
                p.qos,
                sent.min(granted),
                "delivery QoS = min(publish, granted) [MQTT-3.8.4-6]"
            );
            assert!(!p.retain && !p.dup);
            assert_eq!(p.pkid != 0, p.qos != QoS::AtMostOnce);
        }
    }
}

#[tokio::test]
async fn qos2_resent_before_pubrel_is_delivered_once() {
    let b = start().await;
    let mut sub = Raw::connect(b.addr, "s").await;
    sub.subscribe("q2/#", QoS::ExactlyOnce).await;
    let mut publisher = Raw::connect(b.addr, "p").await;
    let mut p = Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "q2/x".into(),
        pkid: 42,
        payload: Bytes::from_static(b"once"),
        properties: Properties::new(),
    };
    publisher.send(&Packet::Publish(p.clone())).await;
    assert_eq!(publisher.recv().await, Packet::PubRec(Ack::new(42)));
    p.dup = true;
    publisher.send(&Packet::Publish(p.clone())).await;
    assert_eq!(
        publisher.recv().await,
        Packet::PubRec(Ack::new(42)),
        "re-sent PUBLISH is acknowledged again"
    );
    publisher.send(&Packet::PubRel(Ack::new(42))).await;
    assert_eq!(publisher.recv().await, Packet::PubComp(Ack::new(42)));
    barrier(&mut publisher, "q2/barrier").await;
    let got = until_barrier(&mut sub, "q2/barrier").await;
    assert_eq!(got.len(), 1, "exactly one delivery: {got:?}");
    assert_eq!(&got[0].payload[..], b"once");
}

#[tokio::test]
async fn wildcards_match_per_section_4_7() {
    let b = start().await;
    let mut sub = Raw::connect(b.addr, "w").await;
    sub.subscribe_many(&[
        ("sport/+/player1", QoS::AtLeastOnce),
        ("finance/#", QoS::AtLeastOnce),
        ("end", QoS::AtLeastOnce),
    ])
    .await;
    let mut p = Raw::connect(b.addr, "wp").await;
    for t in [
        "sport/tennis/player1",
        "sport/tennis/player2",
        "sport/player1",
        "finance",
        "finance/a/b",
        "financex/a",
    ] {
        p.publish(t, t.as_bytes(), QoS::AtLeastOnce, false).await;
    }
    barrier(&mut p, "end").await;
    let topics: Vec<String> = until_barrier(&mut sub, "end")
        .await
        .into_iter()
        .map(|p| p.topic)
        .collect();
    assert_eq!(
        topics,
        vec!["sport/tennis/player1", "finance", "finance/a/b"]
    );
}

#[tokio::test]
async fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let b = start().await;
    let mut all = Raw::connect(b.addr, "all").await;
    all.subscribe_many(&[("#", QoS::AtLeastOnce), ("+/status", QoS::AtLeastOnce)])
        .await;
    let mut dollar = Raw::connect(b.addr, "dollar").await;
    dollar.subscribe("$app/#", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("$app/status", b"d", QoS::AtLeastOnce, false)
        .await;
    p.publish("dev/status", b"n", QoS::AtLeastOnce, false).await;
    assert_eq!(dollar.recv_publish().await.topic, "$app/status");
    let got = all.recv_publish().await;
    assert_eq!(
        got.topic, "dev/status",
        "#/+ must skip $app/status [MQTT-4.7.2-1]"
    );
    // The ordinary topic was matched by both `#` and `+/status`: still one copy.
    barrier(&mut p, "barrier").await;
    assert!(until_barrier(&mut all, "barrier").await.is_empty());
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_one_copy_at_the_highest_qos() {
    let b = start().await;
    let mut sub = Raw::connect(b.addr, "o").await;
    sub.subscribe_many(&[
        ("a/#", QoS::AtMostOnce),
        ("a/+", QoS::ExactlyOnce),
        ("a/b", QoS::AtLeastOnce),
    ])
    .await;
    let mut p = Raw::connect(b.addr, "op").await;
    p.publish("a/b", b"x", QoS::ExactlyOnce, false).await;
    barrier(&mut p, "a/barrier").await;
    let got = sub.recv_publish().await;
    assert_eq!((got.topic.as_str(), got.qos), ("a/b", QoS::ExactlyOnce));
    assert!(
        until_barrier(&mut sub, "a/barrier").await.is_empty(),
        "one copy only [MQTT-3.3.5-1]"
    );
}

#[tokio::test]
async fn bad_filters_get_0x80_and_good_ones_in_the_same_subscribe_work() {
    let b = start().await;
    let mut s = Raw::connect(b.addr, "bf").await;
    let codes = s
        .subscribe_many(&[
            ("ok/+", QoS::AtLeastOnce),
            ("bad/#/x", QoS::AtLeastOnce),
            ("bad+", QoS::AtMostOnce),
            ("ok2", QoS::ExactlyOnce),
        ])
        .await;
    assert_eq!(codes, vec![1, 0x80, 0x80, 2]);
    s.publish("ok/1", b"y", QoS::AtLeastOnce, false).await;
    assert_eq!(s.recv_publish().await.topic, "ok/1");
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_resubscribe_replaces_qos() {
    let b = start().await;
    let mut s = Raw::connect(b.addr, "u").await;
    s.subscribe("u/t", QoS::AtLeastOnce).await;
    s.subscribe("u/t", QoS::AtMostOnce).await;
    let mut p = Raw::connect(b.addr, "up").await;
    p.publish("u/t", b"1", QoS::AtLeastOnce, false).await;
    assert_eq!(
        s.recv_publish().await.qos,
        QoS::AtMostOnce,
        "the second SUBSCRIBE replaced the first [MQTT-3.8.4-3]"
    );
    s.unsubscribe("u/t").await;
    s.unsubscribe("never/subscribed").await;
    s.subscribe("u/barrier", QoS::AtLeastOnce).await;
    p.publish("u/t", b"2", QoS::AtLeastOnce, false).await;
    barrier(&mut p, "u/barrier").await;
    assert!(until_barrier(&mut s, "u/barrier").await.is_empty());
}

#[tokio::test]
async fn inflight_window_bounds_unacknowledged_messages() {
    let b = start_with(|c| c.session.max_inflight = 2).await;
    let mut s = Raw::connect(b.addr, "win").await;
    s.subscribe("win", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "winp").await;
    for i in 0..5u8 {
        p.publish("win", &[i], QoS::AtLeastOnce, false).await;
    }
    // Unacknowledged: exactly two arrive, then the broker waits.
    let mut held = Vec::new();
    for _ in 0..2 {
        match s.recv().await {
            Packet::Publish(x) => held.push(x),
            other => panic!("{other:?}"),
        }
    }
    s.ping().await; // nothing else was sent before the PINGRESP
    for x in held {
        s.ack(&x).await;
    }
    for i in 2..5u8 {
        assert_eq!(s.recv_publish().await.payload[..], [i]);
    }
}

#[tokio::test]
async fn sys_topics_cannot_be_published_by_clients() {
    let b = start().await;
    let mut s = Raw::connect(b.addr, "sys").await;
    s.subscribe_many(&[("$SYS/#", QoS::AtLeastOnce), ("b", QoS::AtLeastOnce)])
        .await;
    s.publish("$SYS/fake", b"x", QoS::AtLeastOnce, false).await;
    barrier(&mut s, "b").await;
    assert!(until_barrier(&mut s, "b").await.is_empty());
    assert_eq!(
        supermq::metrics::get(&b.broker.metrics().dropped_sys_publish),
        1
    );
}

#[tokio::test]
async fn sys_metrics_are_published_when_enabled() {
    let b = start_with(|c| c.sys.interval = std::time::Duration::from_millis(100)).await;
    let mut s = Raw::connect(b.addr, "sysr").await;
    s.subscribe("$SYS/broker/version", QoS::AtMostOnce).await;
    let p = s.recv_publish().await;
    assert!(p.payload.starts_with(b"supermq "), "{p:?}");
}

#[tokio::test]
async fn a_publisher_repeating_one_topic_follows_every_subscription_change() {
    // One publisher on one topic, message after message (what the broker memoises), while
    // subscriptions come and go around it.
    let b = start().await;
    let mut p = Raw::connect(b.addr, "memo-pub").await;
    let mut s1 = Raw::connect(b.addr, "memo-s1").await;
    s1.subscribe("memo/t", QoS::AtLeastOnce).await;
    p.publish("memo/t", b"1", QoS::AtLeastOnce, false).await;
    assert_eq!(&s1.recv_publish().await.payload[..], b"1");

    // A new subscriber through a wildcard (another shard of the trie).
    let mut s2 = Raw::connect(b.addr, "memo-s2").await;
    s2.subscribe("+/t", QoS::AtLeastOnce).await;
    p.publish("memo/t", b"2", QoS::AtLeastOnce, false).await;
    assert_eq!(&s1.recv_publish().await.payload[..], b"2");
    assert_eq!(&s2.recv_publish().await.payload[..], b"2");

    // Another topic in between, then back.
    p.publish("memo/other", b"x", QoS::AtLeastOnce, false).await;
    p.publish("memo/t", b"3", QoS::AtLeastOnce, false).await;
    assert_eq!(&s1.recv_publish().await.payload[..], b"3");
    assert_eq!(&s2.recv_publish().await.payload[..], b"3");

    // An unsubscribe stops delivery at once.
    s1.unsubscribe("memo/t").await;
    p.publish("memo/t", b"4", QoS::AtLeastOnce, false).await;
    assert_eq!(&s2.recv_publish().await.payload[..], b"4");
    s1.ping().await;

    // A take-over with a clean session replaces s2's session: the new one gets the next
    // message once, at the QoS it asked for; the old one gets nothing.
    let mut s3 = Raw::connect(b.addr, "memo-s2").await;
    s3.subscribe("memo/#", QoS::AtMostOnce).await;
    p.publish("memo/t", b"5", QoS::AtLeastOnce, false).await;
    let got = s3.recv_publish().await;
    assert_eq!((&got.payload[..], got.qos), (&b"5"[..], QoS::AtMostOnce));
    s3.ping().await;

    // s1 subscribes again, through an overlapping pair: one copy at the higher QoS.
    s1.subscribe_many(&[("memo/t", QoS::AtMostOnce), ("memo/+", QoS::AtLeastOnce)])
        .await;
    p.publish("memo/t", b"6", QoS::AtLeastOnce, false).await;
    let got = s1.recv_publish().await;
    assert_eq!((&got.payload[..], got.qos), (&b"6"[..], QoS::AtLeastOnce));
    assert_eq!(&s3.recv_publish().await.payload[..], b"6");
    s1.ping().await;
    s3.ping().await;
}
