//! `$events/...` topics (`[events] enabled`): delivered to subscribers of `$events/#`, never
//! to `#`, gated by the ACL, never about themselves, and not forgeable by clients.

mod common;

use common::process::{temp_dir, write};
use common::*;
use serde_json::Value;
use supermq::codec::{Connect, QoS};

fn json(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).expect("a JSON event")
}

fn as_user(id: &str, user: &str) -> Connect {
    Connect {
        username: Some(user.into()),
        ..connect_packet(id, true)
    }
}

#[tokio::test]
async fn events_reach_dollar_events_subscribers_and_never_hash() {
    let b = start_with(|c| c.events.enabled = true).await;
    let mut ev = Raw::connect(b.addr, "ev").await;
    ev.subscribe("$events/#", QoS::AtMostOnce).await;
    let mut all = Raw::connect(b.addr, "all").await;
    all.subscribe("#", QoS::AtMostOnce).await;

    let mut c = Raw::connect(b.addr, "c").await;
    c.subscribe("t/a", QoS::AtMostOnce).await;
    c.publish("t/a", b"m", QoS::AtMostOnce, false).await;
    assert_eq!(&c.recv_publish().await.payload[..], b"m");
    c.unsubscribe("t/a").await;
    c.publish(
        "$events/client_connected",
        b"{\"forged\":1}",
        QoS::AtLeastOnce,
        false,
    )
    .await;
    c.disconnect().await;

    // Every event of c, in order (ev also hears of "all" connecting and of its own
    // deliveries of "t/a"... none: ev does not subscribe to t/a).
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|(t, v): &(String, Value)| t == "$events/client_disconnected" && v["clientid"] == "c")
    {
        let p = ev.recv_publish().await;
        let v = json(&p.payload);
        assert!(v.get("forged").is_none(), "a client's forgery got through");
        seen.push((p.topic.clone(), v));
    }
    let of_c: Vec<&str> = seen
        .iter()
        .filter(|(_, v)| v["clientid"] == "c")
        .map(|(t, _)| t.as_str())
        .collect();
    assert_eq!(
        of_c,
        [
            "$events/client_connected",
            "$events/session_subscribed",
            "$events/message_delivered",
            "$events/session_unsubscribed",
            "$events/client_disconnected",
        ]
    );
    let delivered = &seen
        .iter()
        .find(|(t, v)| t == "$events/message_delivered" && v["clientid"] == "c")
        .expect("delivered")
        .1;
    assert_eq!(delivered["event"], "message.delivered");
    assert_eq!(delivered["topic"], "t/a");
    assert_eq!(delivered["payload"], "m");
    // The deliveries of the $events messages to ev made no events of their own.
    assert!(
        !seen.iter().any(|(t, v)| t == "$events/message_delivered"
            && v["topic"]
                .as_str()
                .is_some_and(|t| t.starts_with("$events/"))),
        "{seen:#?}"
    );
    assert_eq!(metric(&b, |m| &m.dropped_sys_publish), 1);

    // "#" got c's message but no $events message.
    let mut p = Raw::connect(b.addr, "p").await;
    barrier(&mut p, "done").await;
    let got = until_barrier(&mut all, "done").await;
    assert!(got.iter().any(|p| p.topic == "t/a"));
    assert!(got.iter().all(|p| !p.topic.starts_with('$')), "{got:?}");
    assert_eq!(metric(&b, |m| &m.events_dropped), 0);
}

#[tokio::test]
async fn a_refused_connect_and_a_drop_are_events() {
    let b = start_with(|c| {
        c.events.enabled = true;
        c.limits.max_client_id_len = 23;
    })
    .await;
    let mut ev = Raw::connect(b.addr, "ev").await;
    ev.subscribe("$events/client_connack", QoS::AtMostOnce)
        .await;
    ev.subscribe("$events/message_dropped", QoS::AtMostOnce)
        .await;
    let mut r = Raw::open(b.addr).await;
    assert!(r
        .try_connack(connect_packet(&"x".repeat(24), true))
        .await
        .is_some());
    let p = ev.recv_publish().await;
    assert_eq!(p.topic, "$events/client_connack");
    assert_eq!(
        json(&p.payload)["reason_code"],
        "client_identifier_not_valid"
    );

    let (mut off, _) = Raw::connect_with(b.addr, connect_packet("off", false)).await;
    off.subscribe("d/t", QoS::AtMostOnce).await;
    off.disconnect().await;
    let mut pb = Raw::connect(b.addr, "pb").await;
    // The drop needs "off" to be offline: retry until the event comes.
    let deadline = tokio::time::Instant::now() + WAIT;
    let v = loop {
        pb.publish("d/t", b"x", QoS::AtMostOnce, false).await;
        pb.ping().await;
        // Bounded: while "off" is still being detached the message is not dropped, and no
        // event comes for it; the next round publishes again.
        let next = tokio::time::timeout(std::time::Duration::from_millis(100), ev.try_recv());
        if let Ok(Some(supermq::codec::Packet::Publish(p))) = next.await {
            break json(&p.payload);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message.dropped event"
        );
    };
    assert_eq!(v["event"], "message.dropped");
    assert_eq!(
        (&v["clientid"], &v["reason"]),
        (&Value::from("off"), &Value::from("offline"))
    );
}

#[tokio::test]
async fn the_acl_gates_dollar_events() {
    let dir = temp_dir("events-acl");
    let acl = write(
        &dir,
        "acl",
        "user ops\ntopic read $events/#\nuser bob\ntopic readwrite #\n",
    );
    let b = start_with(|c| {
        c.events.enabled = true;
        c.auth.acl_file = Some(acl);
    })
    .await;
    let (mut bob, _) = Raw::connect_with(b.addr, as_user("bob", "bob")).await;
    assert_eq!(bob.subscribe("$events/#", QoS::AtMostOnce).await, 0x80);
    assert_eq!(bob.subscribe("#", QoS::AtMostOnce).await, 0);
    let (mut ops, _) = Raw::connect_with(b.addr, as_user("ops", "ops")).await;
    assert_eq!(ops.subscribe("$events/#", QoS::AtMostOnce).await, 0);
    let _c = Raw::connect_with(b.addr, as_user("c", "bob")).await;
    // (Published by a task, ops's own connect and subscription may come first.)
    loop {
        let p = ops.recv_publish().await;
        let v = json(&p.payload);
        if v["clientid"] == "c" {
            assert_eq!(p.topic, "$events/client_connected");
            break;
        }
        assert_eq!(v["clientid"], "ops", "{v}");
    }
    // bob (on "#", with read rights everywhere) gets none of it.
    let (mut p, _) = Raw::connect_with(b.addr, as_user("p", "bob")).await;
    barrier(&mut p, "done").await;
    assert!(until_barrier(&mut bob, "done").await.is_empty());
}

#[tokio::test]
async fn events_off_means_no_event_topics() {
    let b = start().await;
    let mut ev = Raw::connect(b.addr, "ev").await;
    ev.subscribe("$events/#", QoS::AtMostOnce).await;
    ev.subscribe("done", QoS::AtMostOnce).await;
    let mut c = Raw::connect(b.addr, "c").await;
    c.subscribe("x", QoS::AtMostOnce).await;
    barrier(&mut c, "done").await;
    assert!(until_barrier(&mut ev, "done").await.is_empty());
}
