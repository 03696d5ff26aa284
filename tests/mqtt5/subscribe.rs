//! SUBSCRIBE and UNSUBSCRIBE at MQTT 5 (§3.8–3.11): Subscription Identifiers on delivered
//! messages, the subscription options (No Local, Retain As Published, Retain Handling), the
//! SUBACK and UNSUBACK reason codes (beside what 3.1.1 gets for the same filters), and No
//! Local on a shared subscription.

use supermq::codec::{Packet, QoS, RetainHandling, UnsubAck, Unsubscribe};

use crate::common::{barrier, start, start_with, until_barrier, Raw};
use crate::{
    expect_disconnect, props, publish5, send_publish, sub, subscribe5, until_pong, v5, values,
};

#[tokio::test]
async fn subscription_identifiers_arrive_on_the_message_one_per_matching_subscription() {
    let b = start().await;
    let mut s = v5(b.addr, "s").await;
    assert_eq!(
        subscribe5(
            &mut s,
            vec![sub("sid/#", QoS::AtLeastOnce, |_| {})],
            Some(1)
        )
        .await,
        [1]
    );
    assert_eq!(
        subscribe5(
            &mut s,
            vec![sub("sid/a", QoS::AtLeastOnce, |_| {})],
            Some(2)
        )
        .await,
        [1]
    );
    assert_eq!(
        subscribe5(&mut s, vec![sub("sid/+", QoS::AtLeastOnce, |_| {})], None).await,
        [1]
    );
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("sid/a", b"both", QoS::AtLeastOnce, false).await;
    p.publish("sid/b", b"one", QoS::AtLeastOnce, false).await;
    barrier(&mut p, "sid/barrier").await;
    let got = until_barrier(&mut s, "sid/barrier").await;
    assert_eq!(
        got.len(),
        2,
        "one PUBLISH per message however many subscriptions match"
    );
    let mut ids = values(&got[0].properties).subscription_identifiers;
    ids.sort_unstable();
    assert_eq!((&got[0].payload[..], ids), (&b"both"[..], vec![1, 2]));
    assert_eq!(values(&got[1].properties).subscription_identifiers, [1]);
}

#[tokio::test]
async fn no_local_keeps_a_clients_own_messages_from_it() {
    let b = start().await;
    let mut own = v5(b.addr, "own").await;
    subscribe5(
        &mut own,
        vec![sub("nl", QoS::AtLeastOnce, |o| o.no_local = true)],
        None,
    )
    .await;
    let mut echo = v5(b.addr, "echo").await;
    subscribe5(&mut echo, vec![sub("nl", QoS::AtLeastOnce, |_| {})], None).await;

    send_publish(
        &mut own,
        publish5("nl", QoS::AtLeastOnce, 0, b"mine", props(|_| {})),
    )
    .await;
    send_publish(
        &mut echo,
        publish5("nl", QoS::AtLeastOnce, 0, b"echo's", props(|_| {})),
    )
    .await;
    // Without No Local a client gets its own message back.
    assert_eq!(&echo.recv_publish().await.payload[..], b"mine");
    assert_eq!(&echo.recv_publish().await.payload[..], b"echo's");
    let got = own.recv_publish().await;
    assert_eq!(&got.payload[..], b"echo's", "not its own [MQTT-3.8.3-3]");
    assert!(until_pong(&mut own).await.is_empty());
}

#[tokio::test]
async fn retain_as_published_keeps_the_retain_flag_on_live_delivery() {
    let b = start().await;
    let mut rap = v5(b.addr, "rap").await;
    subscribe5(
        &mut rap,
        vec![sub("rap", QoS::AtLeastOnce, |o| {
            o.retain_as_published = true
        })],
        None,
    )
    .await;
    let mut plain = v5(b.addr, "plain").await;
    subscribe5(&mut plain, vec![sub("rap", QoS::AtLeastOnce, |_| {})], None).await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("rap", b"r", QoS::AtLeastOnce, true).await;
    assert!(rap.recv_publish().await.retain, "kept [MQTT-3.3.1-13]");
    assert!(
        !plain.recv_publish().await.retain,
        "cleared [MQTT-3.3.1-12]"
    );
}

/// The retained messages a subscription to `rh` with `handling` sends `s`: those that
/// arrive before a live barrier message on `rh`.
async fn retained_on_subscribe(s: &mut Raw, p: &mut Raw, handling: RetainHandling) -> usize {
    subscribe5(
        s,
        vec![sub("rh", QoS::AtLeastOnce, |o| {
            o.retain_handling = handling
        })],
        None,
    )
    .await;
    barrier(p, "rh").await;
    until_barrier(s, "rh").await.len()
}

#[tokio::test]
async fn retain_handling_decides_when_retained_messages_are_sent() {
    let b = start().await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("rh", b"kept", QoS::AtLeastOnce, true).await;
    let mut s = v5(b.addr, "s").await;
    let h = RetainHandling::SendAtSubscribeIfNew;
    assert_eq!(
        retained_on_subscribe(&mut s, &mut p, h).await,
        1,
        "1: new subscription"
    );
    assert_eq!(
        retained_on_subscribe(&mut s, &mut p, h).await,
        0,
        "1: not on re-subscribe"
    );
    let h = RetainHandling::SendAtSubscribe;
    assert_eq!(
        retained_on_subscribe(&mut s, &mut p, h).await,
        1,
        "0: on every subscribe"
    );
    let mut never = v5(b.addr, "never").await;
    let h = RetainHandling::DoNotSend;
    assert_eq!(
        retained_on_subscribe(&mut never, &mut p, h).await,
        0,
        "2: never"
    );
}

#[tokio::test]
async fn suback_reason_codes_at_5_and_3_1_1() {
    let b = start_with(|c| {
        c.groups.enabled = false;
        c.limits.max_qos = 1;
        c.session.max_subscriptions = 3;
    })
    .await;
    let filters = [
        ("ok/1", QoS::ExactlyOnce),
        ("bad/#/x", QoS::AtLeastOnce),
        ("$share/g/x", QoS::AtLeastOnce),
        ("ok/2", QoS::AtMostOnce),
        ("ok/3", QoS::AtLeastOnce),
        ("ok/4", QoS::AtLeastOnce),
    ];
    let mut s5 = v5(b.addr, "s5").await;
    assert_eq!(
        s5.subscribe_many(&filters).await,
        [0x01, 0x8F, 0x9E, 0x00, 0x01, 0x97],
        "capped QoS, invalid filter, shared unsupported, quota exceeded"
    );
    let mut s3 = Raw::connect(b.addr, "s3").await;
    assert_eq!(
        s3.subscribe_many(&filters).await,
        [0x01, 0x80, 0x80, 0x00, 0x01, 0x80]
    );
}

#[tokio::test]
async fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let b = start().await;
    let mut s = v5(b.addr, "s").await;
    s.send(&Packet::Subscribe(supermq::codec::Subscribe::new(
        1,
        vec![sub("$share/g/x", QoS::AtLeastOnce, |o| o.no_local = true)],
    )))
    .await;
    expect_disconnect(&mut s, 0x82).await;
}

#[tokio::test]
async fn unsuback_says_which_subscriptions_existed() {
    let b = start().await;
    let mut s = v5(b.addr, "s").await;
    s.subscribe("there", QoS::AtLeastOnce).await;
    s.send(&Packet::Unsubscribe(Unsubscribe::new(
        9,
        vec!["there".into(), "never".into()],
    )))
    .await;
    match s.recv().await {
        Packet::UnsubAck(UnsubAck { pkid, reasons, .. }) => {
            let codes: Vec<u8> = reasons.iter().map(|r| r.to_u8()).collect();
            assert_eq!((pkid, codes), (9, vec![0x00, 0x11]));
        }
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}
