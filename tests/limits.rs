//! Per-client bounds over real TCP: `limits.max_topic_levels`, `limits.max_topic_length`
//! (the connection is closed, as Mosquitto 2.0 does, and counted) and
//! `session.max_subscriptions` (SUBACK 0x80 beyond it).

mod common;

use common::{connect_packet, metric, start_with, will, Raw};
use supermq::codec::{Packet, Properties, QoS, Subscribe, SubscribeFilter, Unsubscribe};

#[tokio::test]
async fn topics_over_the_limits_close_only_that_connection() {
    let b = start_with(|c| {
        c.limits.max_topic_levels = 4;
        c.limits.max_topic_length = 20;
    })
    .await;
    let mut bystander = Raw::connect(b.addr, "bystander").await;
    assert_eq!(bystander.subscribe("a/b/c/d", QoS::AtLeastOnce).await, 1);

    let deep = "a/b/c/d/e";
    let long = "x".repeat(21);
    let attacks: Vec<Packet> = vec![
        Packet::Publish(supermq::codec::Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: deep.into(),
            pkid: 0,
            payload: bytes::Bytes::from_static(b"x"),
            properties: Properties::new(),
        }),
        Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![SubscribeFilter::new(long.clone(), QoS::AtMostOnce)],
            properties: Properties::new(),
        }),
        Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![SubscribeFilter::new("$share/g/+/+/#", QoS::AtMostOnce)],
            properties: Properties::new(),
        }),
        Packet::Unsubscribe(Unsubscribe {
            pkid: 1,
            filters: vec![deep.into()],
            properties: Properties::new(),
        }),
    ];
    let n = attacks.len() as u64;
    for (i, p) in attacks.into_iter().enumerate() {
        let mut c = Raw::connect(b.addr, &format!("attacker{i}")).await;
        c.send(&p).await;
        let before = c.expect_closed().await;
        assert!(before.is_empty(), "no answer before the close: {before:?}");
    }
    // A will topic over the limit: closed at CONNECT, no CONNACK.
    let mut c = Raw::open(b.addr).await;
    let mut cp = connect_packet("will-attacker", true);
    cp.will = Some(will(deep, "w", QoS::AtMostOnce, true));
    c.send(&Packet::from(cp)).await;
    assert!(c.expect_closed().await.is_empty());

    assert_eq!(metric(&b, |m| &m.topics_over_limit), n + 1);
    assert_eq!(b.broker.context().router.retained().len(), 0);
    // At the limits everything works, and the bystander never noticed.
    let mut p = Raw::connect(b.addr, "publisher").await;
    p.publish("a/b/c/d", b"ok", QoS::AtLeastOnce, false).await;
    let got = bystander.recv_publish().await;
    assert_eq!((&got.topic[..], &got.payload[..]), ("a/b/c/d", &b"ok"[..]));
    let max_len = "y".repeat(20);
    assert_eq!(p.subscribe(&max_len, QoS::AtMostOnce).await, 0);
}

#[tokio::test]
async fn subscriptions_beyond_the_session_bound_get_0x80() {
    let b = start_with(|c| c.session.max_subscriptions = 3).await;
    let mut c = Raw::connect(b.addr, "many").await;
    let codes = c
        .subscribe_many(&[
            ("t/1", QoS::AtMostOnce),
            ("t/2", QoS::AtLeastOnce),
            ("$share/g/t/3", QoS::AtLeastOnce),
            ("t/4", QoS::AtLeastOnce),
            ("t/5", QoS::AtMostOnce),
        ])
        .await;
    assert_eq!(codes, vec![0, 1, 1, 0x80, 0x80]);
    // Replacing a held subscription is not a new one [MQTT-3.8.4-3].
    assert_eq!(c.subscribe("t/1", QoS::ExactlyOnce).await, 2);
    assert_eq!(b.broker.context().router.subscription_count(), 2);
    // Nothing was subscribed for the refused filters.
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("t/4", b"refused", QoS::AtLeastOnce, false).await;
    p.publish("t/1", b"held", QoS::AtLeastOnce, false).await;
    assert_eq!(&c.recv_publish().await.payload[..], b"held");
    // Room again after an UNSUBSCRIBE.
    c.unsubscribe("t/2").await;
    assert_eq!(c.subscribe("t/4", QoS::AtLeastOnce).await, 1);
    assert_eq!(metric(&b, |m| &m.subscriptions_rejected), 2);
}
