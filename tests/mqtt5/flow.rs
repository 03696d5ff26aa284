//! Flow control at MQTT 5 (§4.9, §3.1.2.11.4, §3.2.2.3.6): the broker's Receive Maximum for
//! a publisher (QoS 2 messages awaiting PUBREL count), the subscriber's Receive Maximum the
//! broker keeps to, and the Maximum Packet Size in both directions.

use supermq::codec::{Ack, Packet, Publish, QoS};

use crate::common::{start, start_with, Raw};
use crate::{expect_disconnect, props, publish5, until_pong, v5, v5_with};

/// PUBLISH packets that arrive before a PINGRESP, not acknowledged.
async fn unacked_before_pong(c: &mut Raw) -> Vec<Publish> {
    c.send(&Packet::PingReq).await;
    let mut got = Vec::new();
    loop {
        match c.recv().await {
            Packet::PingResp => return got,
            Packet::Publish(p) => got.push(p),
            other => panic!("expected PUBLISH or PINGRESP, got {other:?}"),
        }
    }
}

async fn recv_unacked(c: &mut Raw) -> Publish {
    match c.recv().await {
        Packet::Publish(p) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

#[tokio::test]
async fn more_unreleased_qos2_messages_than_receive_maximum_end_the_connection() {
    let b = start().await;
    let mut p = v5(b.addr, "p").await;
    for id in 1..=20u16 {
        p.send(&Packet::Publish(publish5(
            "rm",
            QoS::ExactlyOnce,
            id,
            b"x",
            props(|_| {}),
        )))
        .await;
        match p.recv().await {
            Packet::PubRec(a) => assert_eq!(a.pkid, id),
            other => panic!("expected PUBREC {id}, got {other:?}"),
        }
    }
    // Releasing one frees its slot: one more is accepted.
    p.send(&Packet::PubRel(Ack::new(1))).await;
    p.expect(Packet::PubComp(Ack::new(1))).await;
    p.send(&Packet::Publish(publish5(
        "rm",
        QoS::ExactlyOnce,
        21,
        b"x",
        props(|_| {}),
    )))
    .await;
    match p.recv().await {
        Packet::PubRec(a) => assert_eq!(a.pkid, 21),
        other => panic!("expected PUBREC 21, got {other:?}"),
    }
    p.send(&Packet::Publish(publish5(
        "rm",
        QoS::ExactlyOnce,
        22,
        b"x",
        props(|_| {}),
    )))
    .await;
    expect_disconnect(&mut p, 0x93).await;
}

#[tokio::test]
async fn a_subscriber_never_has_more_than_its_receive_maximum_in_flight() {
    let b = start().await;
    let (mut s, _) = v5_with(b.addr, "s", props(|v| v.receive_maximum = Some(2))).await;
    s.subscribe("win", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "p").await;
    for i in 0..10u8 {
        p.publish("win", &[i], QoS::AtLeastOnce, false).await;
    }
    p.ping().await;
    let mut got = Vec::new();
    while got.len() < 10 {
        let first = recv_unacked(&mut s).await;
        let second = recv_unacked(&mut s).await;
        let extra = unacked_before_pong(&mut s).await;
        assert!(
            extra.is_empty(),
            "more than 2 in flight after {} [MQTT-3.3.4-9]: {extra:?}",
            got.len()
        );
        for m in [first, second] {
            s.ack(&m).await;
            got.push(m.payload[0]);
        }
    }
    assert_eq!(got, (0..10).collect::<Vec<u8>>(), "all, in order");
    assert!(until_pong(&mut s).await.is_empty());
}

#[tokio::test]
async fn a_message_larger_than_the_subscribers_maximum_packet_size_is_skipped() {
    let b = start().await;
    let (mut small, _) = v5_with(
        b.addr,
        "small",
        props(|v| v.maximum_packet_size = Some(100)),
    )
    .await;
    small.subscribe("size", QoS::AtLeastOnce).await;
    let mut any = v5(b.addr, "any").await;
    any.subscribe("size", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("size", &[b'x'; 500], QoS::AtLeastOnce, false)
        .await;
    p.publish("size", b"small", QoS::AtLeastOnce, false).await;
    let got = small.recv_publish().await;
    assert_eq!(
        &got.payload[..],
        b"small",
        "the large one is discarded [MQTT-3.1.2-25]"
    );
    assert_eq!(any.recv_publish().await.payload.len(), 500);
    assert_eq!(&any.recv_publish().await.payload[..], b"small");
}

#[tokio::test]
async fn a_packet_over_the_brokers_maximum_packet_size_ends_the_connection() {
    let b = start_with(|c| c.limits.max_packet_size = 1000).await;
    let mut p = v5(b.addr, "p").await;
    p.send(&Packet::Publish(publish5(
        "big",
        QoS::AtMostOnce,
        0,
        &[0; 2000],
        props(|_| {}),
    )))
    .await;
    expect_disconnect(&mut p, 0x95).await;
}
