//! Wills at MQTT 5 (§3.1.2.5, §3.1.3.2): the Will Delay Interval (published late, cancelled
//! by a reconnect, cut short when the session ends), DISCONNECT 0x04 that asks for the
//! will, and the will's properties reaching subscribers.

use std::time::{Duration, Instant};

use supermq::codec::{Disconnect, Packet, PropertyValues, QoS, ReasonCode};

use crate::common::{
    barrier, connect5, metric, start, until_barrier, wait_until, will, Raw, TestBroker,
};
use crate::{props, v5, values};

/// A v5 client `id` (Clean Start 1) with session expiry `expiry` and a will on `will/<id>`
/// with `will_props`.
async fn with_will(b: &TestBroker, id: &str, expiry: u32, will_props: PropertyValues) -> Raw {
    let mut c = connect5(
        id,
        true,
        props(|v| v.session_expiry_interval = Some(expiry)),
    );
    let mut w = will(&format!("will/{id}"), "gone", QoS::AtLeastOnce, false);
    w.properties = will_props.into();
    c.will = Some(w);
    Raw::connect5(b.addr, c).await.0
}

fn delay(secs: u32) -> PropertyValues {
    props(|v| v.will_delay_interval = Some(secs))
}

async fn watcher(b: &TestBroker) -> Raw {
    let mut w = v5(b.addr, "watcher").await;
    w.subscribe("will/#", QoS::AtLeastOnce).await;
    w
}

/// Waits until only `n` clients are connected (a dropped one has been handled).
async fn connected(b: &TestBroker, n: u64) {
    wait_until("clients connected", || {
        metric(b, |m| &m.clients_connected_current) == n
    })
    .await;
}

/// Nothing but the barrier reaches the watcher now.
async fn no_will_yet(b: &TestBroker, w: &mut Raw) {
    let mut p = Raw::connect(b.addr, "barrier-pub").await;
    barrier(&mut p, "will/barrier").await;
    let got = until_barrier(w, "will/barrier").await;
    assert!(got.is_empty(), "no will yet: {got:?}");
    p.disconnect().await;
}

#[tokio::test]
async fn a_delayed_will_is_published_after_its_delay() {
    let b = start().await;
    let mut w = watcher(&b).await;
    let c = with_will(&b, "late", 60, delay(2)).await;
    let dropped = Instant::now();
    drop(c);
    connected(&b, 1).await;
    no_will_yet(&b, &mut w).await;
    let p = w.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("will/late", &b"gone"[..])
    );
    assert!(
        dropped.elapsed() >= Duration::from_millis(1500),
        "published after the delay [MQTT-3.1.3-9], not after {:?}",
        dropped.elapsed()
    );
}

#[tokio::test]
async fn reconnecting_within_the_will_delay_cancels_the_will() {
    let b = start().await;
    let mut w = watcher(&b).await;
    let c = with_will(&b, "back", 60, delay(1)).await;
    drop(c);
    connected(&b, 1).await;
    let (_back, ack) = Raw::connect5(
        b.addr,
        connect5(
            "back",
            false,
            props(|v| v.session_expiry_interval = Some(60)),
        ),
    )
    .await;
    assert!(ack.session_present);
    // Past the delay (whole seconds, checked every quarter second).
    tokio::time::sleep(Duration::from_millis(1600)).await;
    no_will_yet(&b, &mut w).await;
    assert_eq!(metric(&b, |m| &m.wills_published), 0);
}

#[tokio::test]
async fn a_will_is_published_at_once_when_the_session_ends_first() {
    let b = start().await;
    let mut w = watcher(&b).await;
    let c = with_will(&b, "ends", 0, delay(60)).await;
    drop(c);
    // Within WAIT (5 s), far before the 60 s delay [MQTT-3.1.3-9].
    assert_eq!(w.recv_publish().await.topic, "will/ends");
}

#[tokio::test]
async fn a_will_delayed_beyond_the_session_expiry_is_published_as_the_session_ends() {
    let b = start().await;
    let mut w = watcher(&b).await;
    let c = with_will(&b, "expires", 1, delay(60)).await;
    let dropped = Instant::now();
    drop(c);
    connected(&b, 1).await;
    no_will_yet(&b, &mut w).await;
    // The session ends after 1 s, long before the 60 s delay [MQTT-3.1.3-9].
    assert_eq!(w.recv_publish().await.topic, "will/expires");
    assert!(dropped.elapsed() >= Duration::from_millis(500));
    assert!(b.broker.context().sessions.get("expires").is_none());
}

#[tokio::test]
async fn disconnect_0x04_publishes_the_will_and_a_normal_one_does_not() {
    let b = start().await;
    let mut w = watcher(&b).await;
    let mut c = with_will(&b, "normal", 0, props(|_| {})).await;
    c.send(&Packet::Disconnect(Disconnect::default())).await;
    c.expect_closed().await;
    let mut c = with_will(&b, "asked", 0, props(|_| {})).await;
    c.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::DisconnectWithWillMessage,
        ..Disconnect::default()
    }))
    .await;
    c.expect_closed().await;
    assert_eq!(
        w.recv_publish().await.topic,
        "will/asked",
        "only the will asked for [MQTT-3.14.4-3]"
    );
    assert_eq!(metric(&b, |m| &m.wills_published), 1);
}

#[tokio::test]
async fn will_properties_reach_subscribers() {
    let b = start().await;
    let mut w5 = watcher(&b).await;
    let mut w3 = Raw::connect(b.addr, "w3").await;
    w3.subscribe("will/#", QoS::AtLeastOnce).await;
    let wp = props(|v| {
        v.user_properties = vec![("why".into(), "test".into())];
        v.content_type = Some("text/plain".into());
    });
    drop(with_will(&b, "props", 0, wp).await);
    let got = w5.recv_publish().await;
    let v = values(&got.properties);
    assert_eq!(v.user_properties, [("why".to_string(), "test".to_string())]);
    assert_eq!(v.content_type.as_deref(), Some("text/plain"));
    assert_eq!(v.will_delay_interval, None, "not a PUBLISH property");
    let got = w3.recv_publish().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("will/props", &b"gone"[..])
    );
}
