//! PUBLISH at MQTT 5 (§3.3–3.7): message properties from publisher to subscriber (and what a
//! 3.1.1 peer sees of them), message expiry (live, queued offline, retained), the reason
//! codes of PUBACK/PUBREC/PUBCOMP, inbound and outbound topic aliases, and the capability
//! limits a PUBLISH can break (Maximum QoS, Retain Available).

use std::time::Duration;

use bytes::Bytes;
use supermq::codec::{Ack, Packet, PayloadFormat, PropertyValues, QoS};

use crate::common::process::{temp_dir, write};
use crate::common::{barrier, metric, start, start_with, until_barrier, wait_until, Raw};
use crate::{expect_disconnect, props, publish5, send_publish, until_pong, v5, v5_with, values};

fn rich() -> PropertyValues {
    props(|v| {
        v.user_properties = vec![
            ("k".into(), "1".into()),
            ("a".into(), "2".into()),
            ("k".into(), "3".into()),
        ];
        v.content_type = Some("text/plain".into());
        v.response_topic = Some("reply/here".into());
        v.correlation_data = Some(Bytes::from_static(b"\x00corr\xff"));
        v.payload_format_indicator = Some(PayloadFormat::Utf8);
        v.message_expiry_interval = Some(60);
    })
}

#[tokio::test]
async fn message_properties_reach_a_v5_subscriber() {
    let b = start().await;
    let mut s = v5(b.addr, "s").await;
    s.subscribe("props/#", QoS::AtLeastOnce).await;
    let mut p = v5(b.addr, "p").await;
    let code = send_publish(
        &mut p,
        publish5("props/a", QoS::AtLeastOnce, 0, b"hello", rich()),
    )
    .await;
    assert_eq!(code, 0, "PUBACK success: a subscriber matched");
    let got = s.recv_publish().await;
    assert_eq!(
        (&got.topic[..], &got.payload[..]),
        ("props/a", &b"hello"[..])
    );
    let v = values(&got.properties);
    let want = rich();
    assert_eq!(
        v.user_properties, want.user_properties,
        "in order [MQTT-3.3.2-18]"
    );
    assert_eq!(v.content_type, want.content_type);
    assert_eq!(v.response_topic, want.response_topic);
    assert_eq!(v.correlation_data, want.correlation_data);
    assert_eq!(v.payload_format_indicator, Some(PayloadFormat::Utf8));
    let left = v.message_expiry_interval.expect("expiry forwarded");
    assert!((55..=60).contains(&left), "expiry counts down: {left}");
}

#[tokio::test]
async fn a_3_1_1_subscriber_gets_no_properties_and_a_v5_one_none_made_up() {
    let b = start().await;
    let mut s3 = Raw::connect(b.addr, "s3").await;
    s3.subscribe("mix/#", QoS::AtLeastOnce).await;
    let mut s5 = v5(b.addr, "s5").await;
    s5.subscribe("mix/#", QoS::AtLeastOnce).await;

    let mut p5 = v5(b.addr, "p5").await;
    send_publish(
        &mut p5,
        publish5("mix/5", QoS::AtLeastOnce, 0, b"from5", rich()),
    )
    .await;
    // Decoded at 3.1.1: any property bytes would have become part of the payload.
    let got = s3.recv_publish().await;
    assert_eq!((&got.topic[..], &got.payload[..]), ("mix/5", &b"from5"[..]));
    assert!(got.properties.is_empty());
    assert_eq!(
        values(&s5.recv_publish().await.properties).content_type,
        rich().content_type
    );

    let mut p3 = Raw::connect(b.addr, "p3").await;
    p3.publish("mix/3", b"from3", QoS::AtLeastOnce, false).await;
    let got = s5.recv_publish().await;
    assert_eq!((&got.topic[..], &got.payload[..]), ("mix/3", &b"from3"[..]));
    assert!(got.properties.is_empty(), "{:?}", got.properties);
    assert_eq!(&s3.recv_publish().await.payload[..], b"from3");
}

#[tokio::test]
async fn a_queued_message_expires_and_the_rest_arrive_with_a_reduced_expiry() {
    let b = start().await;
    let expiry = props(|v| v.session_expiry_interval = Some(60));
    let (mut s, _) = v5_with(b.addr, "off", expiry.clone()).await;
    s.subscribe("exp/#", QoS::AtLeastOnce).await;
    s.disconnect().await;
    wait_until("offline", || {
        metric(&b, |m| &m.clients_connected_current) == 0
    })
    .await;

    let mut p = v5(b.addr, "p").await;
    let short = props(|v| v.message_expiry_interval = Some(1));
    let long = props(|v| v.message_expiry_interval = Some(60));
    send_publish(
        &mut p,
        publish5("exp/short", QoS::AtLeastOnce, 0, b"s", short),
    )
    .await;
    send_publish(
        &mut p,
        publish5("exp/long", QoS::AtLeastOnce, 0, b"l", long),
    )
    .await;
    // Expiry is in whole seconds: let more than one pass.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let (mut s, ack) =
        crate::common::Raw::connect5(b.addr, crate::common::connect5("off", false, expiry)).await;
    assert!(ack.session_present);
    let got = s.recv_publish().await;
    assert_eq!(
        got.topic, "exp/long",
        "the expired message is not delivered [MQTT-3.3.2-5]"
    );
    let left = values(&got.properties)
        .message_expiry_interval
        .expect("expiry");
    assert!(
        left <= 58,
        "the interval is reduced by the time queued [MQTT-3.3.2-6]: {left}"
    );
    assert!(until_pong(&mut s).await.is_empty());
    wait_until("expired message counted", || {
        metric(&b, |m| &m.dropped_expired) >= 1
    })
    .await;
}

#[tokio::test]
async fn an_expired_retained_message_is_not_sent_to_new_subscribers() {
    let b = start().await;
    let mut p = v5(b.addr, "p").await;
    let mut gone = publish5(
        "ret/gone",
        QoS::AtLeastOnce,
        0,
        b"g",
        props(|v| v.message_expiry_interval = Some(1)),
    );
    gone.retain = true;
    send_publish(&mut p, gone).await;
    let mut keep = publish5("ret/keep", QoS::AtLeastOnce, 0, b"k", props(|_| {}));
    keep.retain = true;
    send_publish(&mut p, keep).await;

    let mut early = v5(b.addr, "early").await;
    early.subscribe("ret/gone", QoS::AtLeastOnce).await;
    let got = early.recv_publish().await;
    assert!(got.retain);
    assert!(
        matches!(values(&got.properties).message_expiry_interval, Some(0..=1)),
        "a retained message keeps its (reduced) expiry"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut late = v5(b.addr, "late").await;
    late.subscribe("ret/#", QoS::AtLeastOnce).await;
    let mut p3 = Raw::connect(b.addr, "p3").await;
    barrier(&mut p3, "ret/barrier").await;
    let before: Vec<String> = until_barrier(&mut late, "ret/barrier")
        .await
        .into_iter()
        .map(|p| p.topic)
        .collect();
    assert_eq!(before, ["ret/keep"], "the expired retained message is gone");
}

#[tokio::test]
async fn puback_and_pubrec_say_whether_anyone_subscribes() {
    let b = start().await;
    let mut p = v5(b.addr, "p").await;
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let code = send_publish(&mut p, publish5("nobody", qos, 0, b"x", props(|_| {}))).await;
        assert_eq!(code, 0x10, "{qos:?}: No matching subscribers");
    }
    let mut s = v5(b.addr, "s").await;
    s.subscribe("somebody", QoS::AtLeastOnce).await;
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let code = send_publish(&mut p, publish5("somebody", qos, 0, b"x", props(|_| {}))).await;
        assert_eq!(code, 0, "{qos:?}: success");
        s.recv_publish().await;
    }
}

#[tokio::test]
async fn puback_0x87_when_the_acl_refuses() {
    let dir = temp_dir("mqtt5-acl");
    let acl = write(&dir, "acl", "topic readwrite open/#\n");
    let b = start_with(|c| c.auth.acl_file = Some(acl)).await;
    let mut s = v5(b.addr, "s").await;
    s.subscribe("open/#", QoS::AtLeastOnce).await;
    let mut p = v5(b.addr, "p").await;
    let code = send_publish(
        &mut p,
        publish5("closed/x", QoS::AtLeastOnce, 0, b"x", props(|_| {})),
    )
    .await;
    assert_eq!(code, 0x87, "Not authorized");
    let code = send_publish(
        &mut p,
        publish5("open/x", QoS::AtLeastOnce, 0, b"x", props(|_| {})),
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(s.recv_publish().await.topic, "open/x");
}

#[tokio::test]
async fn puback_0x99_for_a_payload_that_is_not_the_utf8_it_claims() {
    let b = start().await;
    let mut s = v5(b.addr, "s").await;
    s.subscribe("fmt/#", QoS::AtLeastOnce).await;
    let mut p = v5(b.addr, "p").await;
    let utf8 = props(|v| v.payload_format_indicator = Some(PayloadFormat::Utf8));
    let code = send_publish(
        &mut p,
        publish5("fmt/bad", QoS::AtLeastOnce, 0, b"\xff\xfe", utf8.clone()),
    )
    .await;
    assert_eq!(code, 0x99, "Payload format invalid");
    let code = send_publish(
        &mut p,
        publish5("fmt/ok", QoS::AtLeastOnce, 0, "é".as_bytes(), utf8),
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        s.recv_publish().await.topic,
        "fmt/ok",
        "the invalid one is not delivered"
    );
}

#[tokio::test]
async fn inbound_topic_alias_is_resolved_for_subscribers() {
    let b = start().await;
    let mut s = Raw::connect(b.addr, "s").await;
    s.subscribe("alias/#", QoS::AtLeastOnce).await;
    let mut p = v5(b.addr, "p").await;
    let alias = |a| props(|v| v.topic_alias = Some(a));
    send_publish(
        &mut p,
        publish5("alias/one", QoS::AtLeastOnce, 0, b"1", alias(3)),
    )
    .await;
    send_publish(&mut p, publish5("", QoS::AtLeastOnce, 0, b"2", alias(3))).await;
    // Re-pointed alias: the new topic from now on.
    send_publish(
        &mut p,
        publish5("alias/two", QoS::AtLeastOnce, 0, b"3", alias(3)),
    )
    .await;
    send_publish(&mut p, publish5("", QoS::AtLeastOnce, 0, b"4", alias(3))).await;
    let mut topics = Vec::new();
    for _ in 0..4 {
        topics.push(s.recv_publish().await.topic);
    }
    assert_eq!(topics, ["alias/one", "alias/one", "alias/two", "alias/two"]);
}

#[tokio::test]
async fn bad_inbound_topic_aliases_end_the_connection() {
    let b = start().await;
    // Above the Topic Alias Maximum (10) and 0 [MQTT-3.3.2-8]: 0x94 Topic Alias invalid
    // (§4.13), as Mosquitto answers both. An alias never set up: Protocol Error.
    for (alias, topic, code) in [(11, "t", 0x94), (0, "t", 0x94), (2, "", 0x82)] {
        let mut p = v5(b.addr, "p").await;
        let pv = props(|v| v.topic_alias = Some(alias));
        p.send(&Packet::Publish(publish5(
            topic,
            QoS::AtMostOnce,
            0,
            b"x",
            pv,
        )))
        .await;
        expect_disconnect(&mut p, code).await;
    }
    let mut p = v5(b.addr, "p").await;
    p.send(&Packet::Publish(publish5(
        "",
        QoS::AtMostOnce,
        0,
        b"x",
        props(|_| {}),
    )))
    .await;
    expect_disconnect(&mut p, 0x82).await;
}

#[tokio::test]
async fn outbound_topic_aliases_only_for_a_client_that_allows_them() {
    let b = start().await;
    let (mut with, _) = v5_with(b.addr, "with", props(|v| v.topic_alias_maximum = Some(4))).await;
    with.subscribe("out/#", QoS::AtLeastOnce).await;
    let mut without = v5(b.addr, "without").await;
    without.subscribe("out/#", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("out/a", b"1", QoS::AtLeastOnce, false).await;
    p.publish("out/a", b"2", QoS::AtLeastOnce, false).await;

    let first = with.recv_publish().await;
    let alias = values(&first.properties)
        .topic_alias
        .expect("an alias is set up");
    assert!(
        (1..=4).contains(&alias),
        "within the client's maximum [MQTT-3.3.2-9]"
    );
    assert_eq!(first.topic, "out/a");
    let second = with.recv_publish().await;
    assert_eq!(
        (
            second.topic.as_str(),
            values(&second.properties).topic_alias
        ),
        ("", Some(alias)),
        "the alias alone replaces the topic"
    );
    assert_eq!(&second.payload[..], b"2");

    for n in [1, 2] {
        let got = without.recv_publish().await;
        assert_eq!(got.topic, "out/a", "message {n}");
        assert_eq!(
            values(&got.properties).topic_alias,
            None,
            "never an alias [MQTT-3.3.2-9]"
        );
    }
}

#[tokio::test]
async fn a_publish_above_the_maximum_qos_ends_the_connection() {
    let b = start_with(|c| c.limits.max_qos = 1).await;
    let mut p = v5(b.addr, "p").await;
    p.send(&Packet::Publish(publish5(
        "q",
        QoS::ExactlyOnce,
        1,
        b"x",
        props(|_| {}),
    )))
    .await;
    expect_disconnect(&mut p, 0x9B).await;
    let mut p3 = Raw::connect(b.addr, "p3").await;
    p3.send(&crate::common::publish_packet(
        "q",
        QoS::ExactlyOnce,
        1,
        b"x",
    ))
    .await;
    let before = p3.expect_closed().await;
    assert!(before.is_empty(), "3.1.1 is just closed: {before:?}");
}

#[tokio::test]
async fn a_retained_publish_while_retain_is_off_ends_a_v5_connection_only() {
    let b = start_with(|c| c.retain.enabled = false).await;
    let mut s = Raw::connect(b.addr, "s").await;
    s.subscribe("r", QoS::AtLeastOnce).await;
    let mut p3 = Raw::connect(b.addr, "p3").await;
    p3.publish("r", b"3", QoS::AtLeastOnce, true).await;
    assert_eq!(
        &s.recv_publish().await.payload[..],
        b"3",
        "3.1.1: delivered, not stored"
    );
    let mut p = v5(b.addr, "p").await;
    let mut r = publish5("r", QoS::AtLeastOnce, 1, b"5", props(|_| {}));
    r.retain = true;
    p.send(&Packet::Publish(r)).await;
    expect_disconnect(&mut p, 0x9A).await;
}

#[tokio::test]
async fn pubrel_for_an_unknown_packet_id_gets_pubcomp_0x92_at_5() {
    let b = start().await;
    let mut p = v5(b.addr, "p").await;
    p.send(&Packet::PubRel(Ack::new(77))).await;
    match p.recv().await {
        Packet::PubComp(a) => assert_eq!((a.pkid, a.reason.to_u8()), (77, 0x92)),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    let mut p3 = Raw::connect(b.addr, "p3").await;
    p3.send(&Packet::PubRel(Ack::new(77))).await;
    p3.expect(Packet::PubComp(Ack::new(77))).await;
}
