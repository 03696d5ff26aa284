//! Will messages (spec §3.1.2.5): published on abnormal disconnect, never after DISCONNECT.

mod common;

use common::*;
use supermq::codec::QoS;

async fn with_will(addr: std::net::SocketAddr, id: &str, retain: bool, qos: QoS) -> Raw {
    let mut c = connect_packet(id, true);
    c.will = Some(will(&format!("will/{id}"), "gone", qos, retain));
    Raw::connect_with(addr, c).await.0
}

async fn watcher(addr: std::net::SocketAddr) -> Raw {
    let mut w = Raw::connect(addr, "watcher").await;
    w.subscribe("will/#", QoS::ExactlyOnce).await;
    w
}

#[tokio::test]
async fn will_is_published_when_the_socket_drops() {
    let b = start().await;
    let mut w = watcher(b.addr).await;
    let c = with_will(b.addr, "drop", false, QoS::AtLeastOnce).await;
    drop(c);
    let p = w.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.qos),
        ("will/drop", &b"gone"[..], QoS::AtLeastOnce)
    );
}

#[tokio::test]
async fn will_is_not_published_after_disconnect() {
    let b = start().await;
    let mut w = watcher(b.addr).await;
    let c = with_will(b.addr, "clean", false, QoS::AtLeastOnce).await;
    c.disconnect().await;
    // The session is gone once the DISCONNECT is processed; wait for that event.
    wait_until("session removed after DISCONNECT", || {
        b.broker.context().sessions.get("clean").is_none()
    })
    .await;
    let mut p = Raw::connect(b.addr, "p").await;
    barrier(&mut p, "will/barrier").await;
    assert!(
        until_barrier(&mut w, "will/barrier").await.is_empty(),
        "no will after DISCONNECT [MQTT-3.14.4-3]"
    );
}

#[tokio::test]
async fn will_is_published_on_protocol_error_and_keep_alive_expiry() {
    let b = start().await;
    let mut w = watcher(b.addr).await;
    let mut bad = with_will(b.addr, "bad", false, QoS::AtMostOnce).await;
    bad.send_raw(&[0xF0, 0x00]).await; // reserved packet type 15
    assert_eq!(w.recv_publish().await.topic, "will/bad");

    let mut c = connect_packet("ka", true);
    c.keep_alive = 1;
    c.will = Some(will("will/ka", "timeout", QoS::AtMostOnce, false));
    let (_quiet, _) = Raw::connect_with(b.addr, c).await;
    assert_eq!(w.recv_publish().await.topic, "will/ka");
}

#[tokio::test]
async fn will_is_published_on_take_over() {
    let b = start().await;
    let mut w = watcher(b.addr).await;
    let mut old = with_will(b.addr, "dup", false, QoS::AtMostOnce).await;
    let _new = Raw::connect(b.addr, "dup").await;
    old.expect_closed().await;
    assert_eq!(w.recv_publish().await.topic, "will/dup");
}

#[tokio::test]
async fn will_retain_and_qos_are_honoured() {
    let b = start().await;
    let c = with_will(b.addr, "ret", true, QoS::ExactlyOnce).await;
    let mut w = watcher(b.addr).await;
    drop(c);
    let live = w.recv_publish().await;
    assert_eq!((live.qos, live.retain), (QoS::ExactlyOnce, false));
    let mut late = Raw::connect(b.addr, "late").await;
    late.subscribe("will/ret", QoS::AtLeastOnce).await;
    let kept = late.recv_publish().await;
    assert!(kept.retain, "a will with retain set is stored as retained");
    assert_eq!(&kept.payload[..], b"gone");
    // Retained copies are queued during SUBSCRIBE, before this PINGREQ is read.
    late.ping().await;
}

#[tokio::test]
async fn a_will_on_sys_is_neither_published_nor_retained() {
    let b = start().await;
    let mut w = Raw::connect(b.addr, "sys-watcher").await;
    w.subscribe_many(&[("$SYS/#", QoS::AtLeastOnce), ("b", QoS::AtLeastOnce)])
        .await;
    let mut c = connect_packet("forger", true);
    c.will = Some(will("$SYS/broker/fake", "forged", QoS::AtLeastOnce, true));
    let (forger, _) = Raw::connect_with(b.addr, c).await;
    drop(forger);
    wait_until("the forger's session is gone", || {
        b.broker.context().sessions.get("forger").is_none()
    })
    .await;
    let mut p = Raw::connect(b.addr, "p").await;
    barrier(&mut p, "b").await;
    assert!(until_barrier(&mut w, "b").await.is_empty(), "no $SYS will");
    assert_eq!(b.broker.context().router.retained().len(), 0);
    assert_eq!(metric(&b, |m| &m.dropped_sys_publish), 1);
    assert_eq!(metric(&b, |m| &m.wills_published), 0);
}
