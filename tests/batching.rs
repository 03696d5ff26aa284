//! Many packets in one read: a batch of PUBLISH packets is acknowledged before it is routed,
//! which must not change what the spec orders: acknowledgements in the order of the PUBLISH
//! packets [MQTT-4.6.0-2], delivery in publish order [MQTT-4.6.0-6], QoS 2 once per id
//! [MQTT-4.3.3-2], and packets after a PUBLISH never acting before it.

mod common;

use common::{encode_all, publish_packet, start, Raw};
use supermq::codec::{Ack, Packet, Properties, QoS, Subscribe, SubscribeFilter};

#[tokio::test]
async fn a_burst_in_one_write_is_acknowledged_and_delivered_in_order() {
    let b = start().await;
    let mut sub = Raw::connect(b.addr, "burst-sub").await;
    assert_eq!(sub.subscribe("burst/#", QoS::ExactlyOnce).await, 2);
    let mut publisher = Raw::connect(b.addr, "burst-pub").await;

    // 300 PUBLISH packets in one write (larger than one routing batch), QoS 0, 1 and 2
    // interleaved, with every QoS 2 packet sent twice in a row before its PUBREL.
    const N: u16 = 300;
    let mut packets = Vec::new();
    let mut expected_acks = Vec::new();
    for i in 1..=N {
        let qos = match i % 3 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        let pkid = if qos == QoS::AtMostOnce { 0 } else { i };
        let p = publish_packet(&format!("burst/{}", i % 7), qos, pkid, &i.to_be_bytes());
        packets.push(p.clone());
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => expected_acks.push(Packet::PubAck(Ack::new(i))),
            QoS::ExactlyOnce => {
                // The duplicate is acknowledged again but not delivered again.
                packets.push(p);
                expected_acks.push(Packet::PubRec(Ack::new(i)));
                expected_acks.push(Packet::PubRec(Ack::new(i)));
            }
        }
    }
    publisher.send_raw(&encode_all(&packets)).await;

    let mut acks = Vec::new();
    while acks.len() < expected_acks.len() {
        acks.push(publisher.recv().await);
    }
    assert_eq!(acks, expected_acks, "acknowledgements in PUBLISH order");
    for i in (1..=N).filter(|i| i % 3 == 2) {
        publisher.send(&Packet::PubRel(Ack::new(i))).await;
        publisher.expect(Packet::PubComp(Ack::new(i))).await;
    }

    // Every message once, in publish order (one publisher, one subscription).
    let mut got = Vec::new();
    for _ in 0..N {
        let p = sub.recv_publish().await;
        got.push(u16::from_be_bytes([p.payload[0], p.payload[1]]));
    }
    assert_eq!(got, (1..=N).collect::<Vec<_>>());
    // Nothing more may come before the PINGRESP: no message was delivered twice.
    sub.ping().await;
}

#[tokio::test]
async fn a_subscribe_after_publishes_in_the_same_write_does_not_receive_them() {
    let b = start().await;
    let mut c = Raw::connect(b.addr, "self-sub").await;

    // 40 QoS 1 PUBLISH packets, then a SUBSCRIBE to their topic, then one more PUBLISH, all
    // in one write: only the PUBLISH after the SUBSCRIBE may come back.
    let mut packets: Vec<Packet> = (1..=40)
        .map(|i| publish_packet("self/t", QoS::AtLeastOnce, i, b"before"))
        .collect();
    packets.push(Packet::Subscribe(Subscribe {
        pkid: 41,
        filters: vec![SubscribeFilter::new("self/t", QoS::AtLeastOnce)],
        properties: Properties::new(),
    }));
    packets.push(publish_packet("self/t", QoS::AtLeastOnce, 42, b"after"));
    c.send_raw(&encode_all(&packets)).await;

    for i in 1..=40 {
        c.expect(Packet::PubAck(Ack::new(i))).await;
    }
    match c.recv().await {
        Packet::SubAck(s) => assert_eq!(s.pkid, 41),
        other => panic!("expected SUBACK, got {other:?}"),
    }
    c.expect(Packet::PubAck(Ack::new(42))).await;
    let p = c.recv_publish().await;
    assert_eq!(&p.payload[..], b"after");
    // Nothing more may come before the PINGRESP: no PUBLISH from before the SUBSCRIBE.
    c.ping().await;
}
