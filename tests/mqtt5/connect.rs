//! CONNECT and CONNACK at MQTT 5 (§3.1, §3.2): the capabilities the CONNACK announces, the
//! Assigned Client Identifier, the Session Expiry Interval (granted, capped, changed at
//! DISCONNECT, really expiring), Server Keep Alive, keep-alive expiry and take-over, each
//! ending with the DISCONNECT reason the broker sends.

use std::time::Duration;

use supermq::codec::{ConnectReturnCode, Disconnect, Packet, QoS, ReasonCode};

use crate::common::{
    connect5, connect_packet, metric, start, start_with, wait_until, Raw, TestBroker,
};
use crate::{expect_disconnect, props, v5, v5_with, values};

/// An MQTT 5 client `id` with Clean Start `clean` asking for a Session Expiry Interval of
/// `expiry`; its CONNACK.
async fn with_expiry(
    b: &TestBroker,
    id: &str,
    clean: bool,
    expiry: u32,
) -> (Raw, supermq::codec::ConnAck) {
    Raw::connect5(
        b.addr,
        connect5(
            id,
            clean,
            props(|v| v.session_expiry_interval = Some(expiry)),
        ),
    )
    .await
}

async fn wait_offline(b: &TestBroker) {
    wait_until("no client connected", || {
        metric(b, |m| &m.clients_connected_current) == 0
    })
    .await;
}

#[tokio::test]
async fn connack_announces_the_default_limits() {
    let b = start().await;
    let (_c, ack) = v5_with(b.addr, "c", props(|_| {})).await;
    let v = values(&ack.properties);
    assert_eq!(v.receive_maximum, Some(20), "Receive Maximum (§3.2.2.3.3)");
    assert_eq!(v.topic_alias_maximum, Some(10), "Topic Alias Maximum");
    assert_eq!(
        v.maximum_packet_size,
        Some(1_048_576),
        "Maximum Packet Size"
    );
    assert_eq!(v.maximum_qos, None, "QoS 2 is supported: no Maximum QoS");
    assert_eq!(v.retain_available, None, "retain is available");
    assert_eq!(v.shared_subscription_available, None, "groups are enabled");
    assert_eq!(
        v.assigned_client_identifier, None,
        "the client named itself"
    );
    assert_eq!(v.session_expiry_interval, None, "0 granted as asked");
    assert_eq!(v.server_keep_alive, None, "60 s is within the limits");
}

#[tokio::test]
async fn connack_announces_configured_limits() {
    let b = start_with(|c| {
        c.limits.receive_maximum = 5;
        c.limits.max_packet_size = 1000;
        c.limits.max_qos = 1;
        c.retain.enabled = false;
        c.groups.enabled = false;
    })
    .await;
    let (_c, ack) = v5_with(b.addr, "c", props(|_| {})).await;
    let v = values(&ack.properties);
    assert_eq!(v.receive_maximum, Some(5));
    assert_eq!(v.maximum_packet_size, Some(1000));
    assert_eq!(v.maximum_qos, Some(QoS::AtLeastOnce));
    assert_eq!(v.retain_available, Some(false));
    assert_eq!(v.shared_subscription_available, Some(false));
}

#[tokio::test]
async fn empty_client_id_is_assigned_at_5_and_accepted_silently_at_3_1_1() {
    let b = start().await;
    let mut ids = Vec::new();
    for clean in [true, false] {
        let (c, ack) = Raw::connect5(b.addr, connect5("", clean, props(|_| {}))).await;
        let id = values(&ack.properties)
            .assigned_client_identifier
            .expect("Assigned Client Identifier [MQTT-3.2.2-16]");
        assert!(!id.is_empty());
        assert!(
            b.broker.context().sessions.get(&id).is_some(),
            "the session is under the assigned id"
        );
        ids.push(id);
        c.disconnect().await;
    }
    assert_ne!(ids[0], ids[1], "each empty id gets its own");
    let mut c = Raw::open(b.addr).await;
    c.send(&Packet::from(connect_packet("", true))).await;
    match c.recv().await {
        Packet::ConnAck(a) => {
            assert_eq!(a.reason, ReasonCode::Success);
            assert!(a.properties.is_empty(), "3.1.1 has no properties");
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn session_expiry_zero_ends_the_session_with_the_connection() {
    let b = start().await;
    let (mut c, ack) = with_expiry(&b, "s0", false, 0).await;
    assert!(!ack.session_present);
    c.subscribe("t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    wait_until("session ended", || {
        b.broker.context().sessions.get("s0").is_none()
    })
    .await;
    let (_c, ack) = with_expiry(&b, "s0", false, 0).await;
    assert!(!ack.session_present, "no session survives expiry 0");
}

#[tokio::test]
async fn session_expiry_keeps_the_session_and_its_subscriptions() {
    let b = start().await;
    let (mut c, ack) = with_expiry(&b, "s60", true, 60).await;
    assert_eq!(
        values(&ack.properties).session_expiry_interval,
        None,
        "granted as asked: not echoed"
    );
    c.subscribe("keep/#", QoS::AtLeastOnce).await;
    c.disconnect().await;
    wait_offline(&b).await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("keep/a", b"queued", QoS::AtLeastOnce, false)
        .await;
    let (mut c, ack) = with_expiry(&b, "s60", false, 60).await;
    assert!(ack.session_present, "session present [MQTT-3.2.2-2]");
    assert_eq!(&c.recv_publish().await.payload[..], b"queued");
}

#[tokio::test]
async fn session_expiry_is_capped_and_the_cap_echoed() {
    let b = start_with(|c| c.session.persistent_session_expiry = Duration::from_secs(30)).await;
    for asked in [3600, u32::MAX] {
        let (_c, ack) = with_expiry(&b, "cap", true, asked).await;
        assert_eq!(
            values(&ack.properties).session_expiry_interval,
            Some(30),
            "asked {asked}: the broker's cap is told (§3.2.2.3.2)"
        );
    }
    let (_c, ack) = with_expiry(&b, "under", true, 10).await;
    assert_eq!(values(&ack.properties).session_expiry_interval, None);
}

#[tokio::test]
async fn a_short_session_expiry_really_expires() {
    let b = start().await;
    let (mut c, _) = with_expiry(&b, "short", true, 1).await;
    c.subscribe("t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    wait_offline(&b).await;
    assert!(
        b.broker.context().sessions.get("short").is_some(),
        "kept while its expiry runs"
    );
    wait_until("session expired after 1 s", || {
        b.broker.context().sessions.get("short").is_none()
    })
    .await;
    let (_c, ack) = with_expiry(&b, "short", false, 60).await;
    assert!(!ack.session_present, "the expired session is gone");
}

#[tokio::test]
async fn disconnect_can_change_the_session_expiry() {
    let b = start().await;
    let (mut c, _) = with_expiry(&b, "shorten", true, 600).await;
    c.subscribe("t", QoS::AtLeastOnce).await;
    c.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: props(|v| v.session_expiry_interval = Some(0)).into(),
    }))
    .await;
    wait_until("session ended by DISCONNECT's expiry 0", || {
        b.broker.context().sessions.get("shorten").is_none()
    })
    .await;

    // Raising it from a CONNECT's 0 is a protocol error [MQTT-3.14.2-2].
    let (mut c, _) = with_expiry(&b, "raise", true, 0).await;
    c.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: props(|v| v.session_expiry_interval = Some(60)).into(),
    }))
    .await;
    expect_disconnect(&mut c, 0x82).await;
    wait_until("session ended", || {
        b.broker.context().sessions.get("raise").is_none()
    })
    .await;
}

#[tokio::test]
async fn keep_alive_above_the_limit_is_told_at_5_and_refused_at_3_1_1() {
    let b = start_with(|c| c.limits.max_keep_alive = 30).await;
    let mut c5 = connect5("ka5", true, props(|_| {}));
    c5.keep_alive = 120;
    let (_c, ack) = Raw::connect5(b.addr, c5).await;
    assert_eq!(
        values(&ack.properties).server_keep_alive,
        Some(30),
        "Server Keep Alive (§3.2.2.3.14)"
    );
    let mut c3 = connect_packet("ka3", true);
    c3.keep_alive = 120;
    let mut r = Raw::open(b.addr).await;
    assert_eq!(
        r.try_connack(c3).await,
        Some(ConnectReturnCode::IdentifierRejected)
    );
}

#[tokio::test]
async fn keep_alive_expiry_sends_disconnect_0x8d() {
    let b = start().await;
    let mut c = connect5("idle", true, props(|_| {}));
    c.keep_alive = 1;
    let (mut c, _) = Raw::connect5(b.addr, c).await;
    expect_disconnect(&mut c, 0x8D).await;
}

#[tokio::test]
async fn take_over_sends_disconnect_0x8e_to_the_old_connection() {
    let b = start().await;
    let mut old = v5(b.addr, "dup").await;
    let _new = v5(b.addr, "dup").await;
    expect_disconnect(&mut old, 0x8E).await;
}
