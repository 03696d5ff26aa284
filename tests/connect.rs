//! CONNECT handling, take-over and keep-alive against the real broker (spec §3.1, §3.2, §4.1).

mod common;

use std::time::{Duration, Instant};

use common::*;
use supermq::codec::{ConnAck, ConnectReturnCode, Packet, ProtocolLevel, QoS};

async fn connack_of(
    addr: std::net::SocketAddr,
    c: supermq::codec::Connect,
) -> (Option<Packet>, Raw) {
    let mut r = Raw::open(addr).await;
    r.send(&Packet::from(c)).await;
    let first = tokio::time::timeout(WAIT, r.try_recv())
        .await
        .expect("answer in time");
    (first, r)
}

fn refused(code: ConnectReturnCode) -> Option<Packet> {
    Some(Packet::ConnAck(ConnAck::new(false, code)))
}

#[tokio::test]
async fn accepted_connect_gets_connack_0_without_session() {
    let b = start().await;
    let (_r, present) = Raw::connect_with(b.addr, connect_packet("c1", false)).await;
    assert!(!present, "a new session is not present [MQTT-3.2.2-3]");
}

#[tokio::test]
async fn empty_client_id_with_clean_session_gets_an_assigned_id() {
    let b = start().await;
    let (mut r, present) = Raw::connect_with(b.addr, connect_packet("", true)).await;
    assert!(!present);
    // The session works: it can subscribe and receive its own message.
    r.subscribe("t", QoS::AtLeastOnce).await;
    r.publish("t", b"x", QoS::AtLeastOnce, false).await;
    assert_eq!(&r.recv_publish().await.payload[..], b"x");
}

#[tokio::test]
async fn empty_client_id_without_clean_session_is_rejected_with_2() {
    let b = start().await;
    let (first, mut r) = connack_of(b.addr, connect_packet("", false)).await;
    assert_eq!(first, refused(ConnectReturnCode::IdentifierRejected));
    r.expect_closed().await;
}

#[tokio::test]
async fn wrong_protocol_level_gets_1_and_close() {
    let b = start().await;
    let mut r = Raw::open(b.addr).await;
    // CONNECT "MQTT" level 6 is no MQTT this broker speaks: it answers 0x01 [MQTT-3.1.2-2].
    r.send_raw(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 6, 2, 0, 60, 0, 0])
        .await;
    let got = r.expect_closed().await;
    assert_eq!(
        got,
        vec![refused(ConnectReturnCode::UnacceptableProtocolVersion).expect("packet")]
    );
}

#[tokio::test]
async fn unknown_protocol_name_is_closed_without_connack() {
    let b = start().await;
    let mut r = Raw::open(b.addr).await;
    r.send_raw(&[0x10, 12, 0, 4, b'M', b'Q', b'X', b'X', 4, 2, 0, 60, 0, 0])
        .await;
    assert_eq!(r.expect_closed().await, vec![]);
}

#[tokio::test]
async fn mqtt_3_1_clients_connect_and_long_ids_are_rejected() {
    let b = start().await;
    let mut c = connect_packet("old-client", true);
    c.level = ProtocolLevel::V31;
    let (mut r, _) = Raw::connect_with(b.addr, c.clone()).await;
    r.subscribe("v31", QoS::AtLeastOnce).await;
    r.publish("v31", b"hi", QoS::AtLeastOnce, false).await;
    assert_eq!(&r.recv_publish().await.payload[..], b"hi");

    c.client_id = "x".repeat(24);
    let (first, _) = connack_of(b.addr, c).await;
    assert_eq!(first, refused(ConnectReturnCode::IdentifierRejected));
}

#[tokio::test]
async fn second_connect_closes_the_connection() {
    let b = start().await;
    let mut r = Raw::connect(b.addr, "twice").await;
    r.send(&Packet::from(connect_packet("twice", true))).await;
    assert_eq!(r.expect_closed().await, vec![]);
    assert_eq!(
        supermq::metrics::get(&b.broker.metrics().protocol_errors),
        1
    );
}

#[tokio::test]
async fn first_packet_other_than_connect_closes() {
    let b = start().await;
    let mut r = Raw::open(b.addr).await;
    r.send(&Packet::PingReq).await;
    assert_eq!(r.expect_closed().await, vec![]);
}

#[tokio::test]
async fn silent_connection_is_closed_after_connect_timeout() {
    let b = start_with(|c| c.limits.connect_timeout = Duration::from_millis(300)).await;
    let mut r = Raw::open(b.addr).await;
    let t = Instant::now();
    assert_eq!(r.expect_closed().await, vec![]);
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "closed only after the timeout"
    );
    assert_eq!(
        supermq::metrics::get(&b.broker.metrics().connect_timeouts),
        1
    );
}

#[tokio::test]
async fn anonymous_refused_when_disabled_but_named_user_accepted() {
    let b = start_with(|c| c.auth.allow_anonymous = false).await;
    let (first, mut r) = connack_of(b.addr, connect_packet("anon", true)).await;
    assert_eq!(first, refused(ConnectReturnCode::NotAuthorized));
    r.expect_closed().await;
    let mut c = connect_packet("named", true);
    c.username = Some("alice".into());
    Raw::connect_with(b.addr, c).await;
}

#[tokio::test]
async fn keep_alive_outside_bounds_is_rejected() {
    let b = start_with(|c| {
        c.limits.max_keep_alive = 100;
        c.limits.allow_zero_keep_alive = false;
    })
    .await;
    let mut c = connect_packet("ka", true);
    c.keep_alive = 101;
    assert_eq!(
        connack_of(b.addr, c.clone()).await.0,
        refused(ConnectReturnCode::IdentifierRejected)
    );
    c.keep_alive = 0;
    assert_eq!(
        connack_of(b.addr, c.clone()).await.0,
        refused(ConnectReturnCode::IdentifierRejected)
    );
    c.keep_alive = 100;
    Raw::connect_with(b.addr, c).await;
}

#[tokio::test]
async fn take_over_closes_the_first_connection() {
    let b = start().await;
    let mut first = Raw::connect(b.addr, "same").await;
    let mut second = Raw::connect(b.addr, "same").await;
    assert_eq!(first.expect_closed().await, vec![]);
    second.ping().await;
    assert_eq!(supermq::metrics::get(&b.broker.metrics().takeovers), 1);
}

#[tokio::test]
async fn keep_alive_expiry_closes_after_one_and_a_half_periods() {
    let b = start().await;
    let mut c = connect_packet("ka1", true);
    c.keep_alive = 1;
    let (mut r, _) = Raw::connect_with(b.addr, c).await;
    let t = Instant::now();
    assert_eq!(r.expect_closed().await, vec![]);
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(1400) && e < Duration::from_millis(3000),
        "closed after {e:?}"
    );
    assert_eq!(
        supermq::metrics::get(&b.broker.metrics().keep_alive_timeouts),
        1
    );
}

#[tokio::test]
async fn pings_keep_a_connection_alive() {
    let b = start().await;
    let mut c = connect_packet("ka2", true);
    c.keep_alive = 1;
    let (mut r, _) = Raw::connect_with(b.addr, c).await;
    // Pacing the client (not waiting for an effect): 4 pings 600 ms apart span 2.4 s,
    // well past 1.5 × keep-alive, and the connection must survive them all.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        r.ping().await;
    }
}

#[tokio::test]
async fn connection_limit_closes_extra_connections() {
    let b = start_with(|c| c.limits.max_connections = 1).await;
    let mut one = Raw::connect(b.addr, "one").await;
    let mut two = Raw::open(b.addr).await;
    assert_eq!(two.expect_closed().await, vec![]);
    one.ping().await;
    assert_eq!(
        supermq::metrics::get(&b.broker.metrics().connections_rejected_limit),
        1
    );
}
