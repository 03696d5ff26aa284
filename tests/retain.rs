//! Retained messages (spec §3.3.1.3).

mod common;

use common::*;
use supermq::codec::QoS;

#[tokio::test]
async fn retained_is_sent_on_subscribe_with_the_flag_and_live_copies_without_it() {
    let b = start().await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("r/a", b"first", QoS::AtLeastOnce, true).await;
    let mut s = Raw::connect(b.addr, "s").await;
    s.subscribe("r/a", QoS::AtLeastOnce).await;
    let got = s.recv_publish().await;
    assert!(
        got.retain,
        "sent because of the subscription: retain set [MQTT-3.3.1-8]"
    );
    assert_eq!(&got.payload[..], b"first");
    p.publish("r/a", b"second", QoS::AtLeastOnce, true).await;
    let live = s.recv_publish().await;
    assert!(
        !live.retain,
        "a live delivery has retain cleared [MQTT-3.3.1-9]"
    );
    assert_eq!(&live.payload[..], b"second");
}

#[tokio::test]
async fn retained_is_replaced_and_deleted_by_an_empty_payload() {
    let b = start().await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("r/x", b"1", QoS::AtMostOnce, true).await;
    p.publish("r/x", b"2", QoS::AtLeastOnce, true).await;
    let mut s = Raw::connect(b.addr, "s1").await;
    s.subscribe("r/x", QoS::AtLeastOnce).await;
    assert_eq!(
        &s.recv_publish().await.payload[..],
        b"2",
        "replaced [MQTT-3.3.1-5]"
    );
    p.publish("r/x", b"", QoS::AtLeastOnce, true).await;
    let del = s.recv_publish().await;
    assert!(
        del.payload.is_empty(),
        "the delete is delivered to current subscribers as normal"
    );
    let mut s2 = Raw::connect(b.addr, "s2").await;
    s2.subscribe_many(&[("r/x", QoS::AtLeastOnce), ("r/end", QoS::AtLeastOnce)])
        .await;
    barrier(&mut p, "r/end").await;
    assert!(
        until_barrier(&mut s2, "r/end").await.is_empty(),
        "deleted [MQTT-3.3.1-10]"
    );
    assert_eq!(
        supermq::metrics::get(&b.broker.metrics().retained_current),
        0
    );
}

#[tokio::test]
async fn wildcard_subscribe_gets_every_matching_retained_at_min_qos() {
    let b = start().await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("home/kitchen/temp", b"21", QoS::ExactlyOnce, true)
        .await;
    p.publish("home/hall/temp", b"19", QoS::AtLeastOnce, true)
        .await;
    p.publish("home/hall/hum", b"40", QoS::AtMostOnce, true)
        .await;
    p.publish("$home/temp", b"x", QoS::AtMostOnce, true).await;
    let mut s = Raw::connect(b.addr, "s").await;
    s.subscribe("+/+/temp", QoS::AtLeastOnce).await;
    let mut got: Vec<(String, QoS)> = Vec::new();
    for _ in 0..2 {
        let x = s.recv_publish().await;
        assert!(x.retain);
        got.push((x.topic, x.qos));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("home/hall/temp".into(), QoS::AtLeastOnce),
            ("home/kitchen/temp".into(), QoS::AtLeastOnce)
        ]
    );
    s.subscribe("end", QoS::AtLeastOnce).await;
    barrier(&mut p, "end").await;
    assert!(until_barrier(&mut s, "end").await.is_empty());
}

#[tokio::test]
async fn retained_store_is_bounded_by_max_messages() {
    let b = start_with(|c| c.retain.max_messages = 2).await;
    let mut p = Raw::connect(b.addr, "p").await;
    for t in ["b/1", "b/2", "b/3"] {
        p.publish(t, t.as_bytes(), QoS::AtLeastOnce, true).await;
    }
    // Replacing an existing topic is still allowed at the bound.
    p.publish("b/1", b"b/1 again", QoS::AtLeastOnce, true).await;
    let m = b.broker.metrics();
    assert_eq!(supermq::metrics::get(&m.retained_current), 2);
    assert_eq!(supermq::metrics::get(&m.retained_rejected), 1);
    let mut s = Raw::connect(b.addr, "s").await;
    s.subscribe_many(&[("b/#", QoS::AtLeastOnce)]).await;
    let mut got = vec![
        s.recv_publish().await.payload,
        s.recv_publish().await.payload,
    ];
    got.sort();
    assert_eq!(got, vec![&b"b/1 again"[..], &b"b/2"[..]]);
}

#[tokio::test]
async fn retain_disabled_delivers_but_does_not_store() {
    let b = start_with(|c| c.retain.enabled = false).await;
    let mut s = Raw::connect(b.addr, "s").await;
    s.subscribe("nr", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("nr", b"v", QoS::AtLeastOnce, true).await;
    assert_eq!(&s.recv_publish().await.payload[..], b"v");
    let mut late = Raw::connect(b.addr, "late").await;
    late.subscribe_many(&[("nr", QoS::AtLeastOnce), ("end", QoS::AtLeastOnce)])
        .await;
    barrier(&mut p, "end").await;
    assert!(until_barrier(&mut late, "end").await.is_empty());
}

/// `retain.max_bytes` bounds what all retained messages together hold: a message that would
/// grow the store past it is delivered but not stored; shrinking or clearing makes room.
#[tokio::test]
async fn retained_store_is_bounded_by_max_bytes() {
    let b = start_with(|c| c.retain.max_bytes = 1024).await;
    let store = || b.broker.context().router.retained();
    let mut p = Raw::connect(b.addr, "p").await;
    let mut live = Raw::connect(b.addr, "live").await;
    live.subscribe("r/#", QoS::AtMostOnce).await;
    p.publish("r/a", &[1; 600], QoS::AtLeastOnce, true).await;
    assert_eq!(store().bytes(), 3 + 600);
    p.publish("r/b", &[2; 600], QoS::AtLeastOnce, true).await;
    assert_eq!(metric(&b, |m| &m.retained_rejected), 1);
    assert_eq!((store().len(), store().bytes()), (1, 603));
    // Delivered live all the same.
    assert_eq!(live.recv_publish().await.payload.len(), 600);
    assert_eq!(live.recv_publish().await.topic, "r/b");
    // Replacing with a smaller one and clearing both free room.
    p.publish("r/a", &[3; 100], QoS::AtLeastOnce, true).await;
    assert_eq!(store().bytes(), 103);
    p.publish("r/b", &[2; 600], QoS::AtLeastOnce, true).await;
    assert_eq!((store().len(), store().bytes()), (2, 706));
    p.publish("r/a", b"", QoS::AtLeastOnce, true).await;
    assert_eq!((store().len(), store().bytes()), (1, 603));
}
