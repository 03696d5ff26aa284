//! Persistent sessions: offline queues, redelivery of unacknowledged messages, bounds
//! (spec §3.1.2.4, §4.4).

mod common;

use common::*;
use supermq::codec::{Ack, Packet, Properties, Publish, QoS};

async fn persistent(addr: std::net::SocketAddr, id: &str) -> (Raw, bool) {
    Raw::connect_with(addr, connect_packet(id, false)).await
}

/// A new persistent session `id` subscribed to `filter`, then left offline: its client has
/// disconnected and no client is connected any more.
async fn offline_subscriber(b: &TestBroker, id: &str, filter: &str, qos: QoS) {
    let (mut s, present) = persistent(b.addr, id).await;
    assert!(!present, "a new session is not present [MQTT-3.2.2-3]");
    s.subscribe(filter, qos).await;
    s.disconnect().await;
    wait_until("session offline", || {
        metric(b, |m| &m.clients_connected_current) == 0
    })
    .await;
}

#[tokio::test]
async fn offline_session_keeps_subscriptions_and_queues_qos1_and_2_only() {
    let b = start().await;
    offline_subscriber(&b, "dev", "cmd/#", QoS::ExactlyOnce).await;

    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("cmd/a", b"q1", QoS::AtLeastOnce, false).await;
    p.publish("cmd/b", b"q0", QoS::AtMostOnce, false).await;
    p.publish("cmd/c", b"q2", QoS::ExactlyOnce, false).await;

    let (mut s, present) = persistent(b.addr, "dev").await;
    assert!(present, "session present [MQTT-3.2.2-2]");
    let a = s.recv_publish().await;
    let c = s.recv_publish().await;
    assert_eq!((&a.payload[..], a.qos), (&b"q1"[..], QoS::AtLeastOnce));
    assert_eq!((&c.payload[..], c.qos), (&b"q2"[..], QoS::ExactlyOnce));
    assert_eq!(
        metric(&b, |m| &m.dropped_qos0_offline),
        1,
        "QoS 0 is not queued offline"
    );
    // Subscriptions survived: live traffic still arrives.
    p.publish("cmd/d", b"live", QoS::AtLeastOnce, false).await;
    assert_eq!(&s.recv_publish().await.payload[..], b"live");
}

#[tokio::test]
async fn unacknowledged_messages_are_resent_with_dup_on_reconnect() {
    let b = start().await;
    let (mut s, _) = persistent(b.addr, "r").await;
    s.subscribe_many(&[("r1", QoS::AtLeastOnce), ("r2", QoS::ExactlyOnce)])
        .await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("r1", b"one", QoS::AtLeastOnce, false).await;
    p.publish("r2", b"two", QoS::ExactlyOnce, false).await;
    p.publish("r2", b"three", QoS::ExactlyOnce, false).await;
    let first = match s.recv().await {
        Packet::Publish(x) => x,
        o => panic!("{o:?}"),
    };
    let second = match s.recv().await {
        Packet::Publish(x) => x,
        o => panic!("{o:?}"),
    };
    let third = match s.recv().await {
        Packet::Publish(x) => x,
        o => panic!("{o:?}"),
    };
    // Acknowledge nothing for `one`, PUBREC `two` (so PUBREL is owed), nothing for `three`.
    s.send(&Packet::PubRec(Ack::new(second.pkid))).await;
    assert_eq!(s.recv().await, Packet::PubRel(Ack::new(second.pkid)));
    drop(s);
    wait_until("session offline", || {
        metric(&b, |m| &m.clients_connected_current) == 1
    })
    .await;

    let (mut s, present) = persistent(b.addr, "r").await;
    assert!(present);
    let resent = |x: Packet| match x {
        Packet::Publish(p) => p,
        o => panic!("expected PUBLISH, got {o:?}"),
    };
    let a = resent(s.recv().await);
    assert!(
        a.dup && a.pkid == first.pkid && &a.payload[..] == b"one",
        "{a:?} [MQTT-4.4.0-1]"
    );
    assert_eq!(
        s.recv().await,
        Packet::PubRel(Ack::new(second.pkid)),
        "PUBREL is re-sent, in order"
    );
    let c = resent(s.recv().await);
    assert!(c.dup && c.pkid == third.pkid && &c.payload[..] == b"three");
    s.send(&Packet::PubAck(Ack::new(a.pkid))).await;
    s.send(&Packet::PubComp(Ack::new(second.pkid))).await;
    s.ack(&c).await;
    s.ping().await;
}

#[tokio::test]
async fn clean_session_discards_previous_state() {
    let b = start().await;
    offline_subscriber(&b, "x", "x/#", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("x/1", b"queued", QoS::AtLeastOnce, false).await;
    let (mut s, present) = Raw::connect_with(b.addr, connect_packet("x", true)).await;
    assert!(
        !present,
        "CleanSession 1 discards the session [MQTT-3.1.2-6]"
    );
    s.subscribe("x/end", QoS::AtLeastOnce).await;
    barrier(&mut p, "x/end").await;
    assert!(
        until_barrier(&mut s, "x/end").await.is_empty(),
        "neither queue nor subscription survived"
    );
    assert_eq!(b.broker.context().router.subscription_count(), 1);
}

#[tokio::test]
async fn offline_queue_is_bounded_and_drops_are_counted() {
    let b = start_with(|c| c.session.max_queued_messages = 5).await;
    offline_subscriber(&b, "bounded", "b", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "p").await;
    for i in 0..10u8 {
        p.publish("b", &[i], QoS::AtLeastOnce, false).await;
    }
    assert_eq!(metric(&b, |m| &m.dropped_queue_full), 5);
    let (mut s, _) = persistent(b.addr, "bounded").await;
    for i in 0..5u8 {
        assert_eq!(
            s.recv_publish().await.payload[..],
            [i],
            "drop_new keeps the oldest five"
        );
    }
    s.ping().await;
}

#[tokio::test]
async fn inbound_qos2_state_survives_reconnect() {
    let b = start().await;
    let mut sub = Raw::connect(b.addr, "sub").await;
    sub.subscribe("q2", QoS::AtLeastOnce).await;
    let (mut p, _) = persistent(b.addr, "pub2").await;
    let mut publish = Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "q2".into(),
        pkid: 9,
        payload: bytes::Bytes::from_static(b"x"),
        properties: Properties::new(),
    };
    p.send(&Packet::Publish(publish.clone())).await;
    assert_eq!(p.recv().await, Packet::PubRec(Ack::new(9)));
    drop(p);
    let (mut p, present) = persistent(b.addr, "pub2").await;
    assert!(present);
    publish.dup = true;
    p.send(&Packet::Publish(publish)).await;
    assert_eq!(p.recv().await, Packet::PubRec(Ack::new(9)));
    p.send(&Packet::PubRel(Ack::new(9))).await;
    assert_eq!(p.recv().await, Packet::PubComp(Ack::new(9)));
    barrier(&mut p, "q2").await;
    let got = until_barrier(&mut sub, "q2").await;
    assert_eq!(got.len(), 1, "delivered once across the reconnect: {got:?}");
}

#[tokio::test]
async fn persistent_take_over_keeps_the_session() {
    let b = start().await;
    let (mut one, _) = persistent(b.addr, "t").await;
    one.subscribe("t", QoS::AtLeastOnce).await;
    let (mut two, present) = persistent(b.addr, "t").await;
    assert!(present);
    one.expect_closed().await;
    two.publish("t", b"still subscribed", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(&two.recv_publish().await.payload[..], b"still subscribed");
}

#[tokio::test]
async fn expired_offline_sessions_are_discarded() {
    let b =
        start_with(|c| c.session.persistent_session_expiry = std::time::Duration::from_millis(200))
            .await;
    let (mut s, _) = persistent(b.addr, "exp").await;
    s.subscribe("e", QoS::AtLeastOnce).await;
    s.disconnect().await;
    wait_until("session expired", || {
        metric(&b, |m| &m.sessions_expired) == 1
    })
    .await;
    let (_s, present) = persistent(b.addr, "exp").await;
    assert!(!present);
    assert_eq!(b.broker.context().router.subscription_count(), 0);
}
