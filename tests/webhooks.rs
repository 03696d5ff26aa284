//! Webhooks against a real HTTP server started in the test: the body of each event kind,
//! batching, retries with backoff, giving up, and a hanging endpoint that never slows MQTT
//! traffic (its overflow dropped and counted).

mod common;

use std::time::Duration;

use common::hook_server::Collector;
use common::*;
use serde_json::Value;
use supermq::codec::{ConnectReturnCode, QoS};
use supermq::config::{HookEvent, WebhookConfig};

fn hook(url: String, events: &[HookEvent]) -> WebhookConfig {
    WebhookConfig {
        url,
        events: events.to_vec(),
        ..WebhookConfig::default()
    }
}

fn all_events() -> Vec<HookEvent> {
    HookEvent::ALL.iter().map(|(_, e)| *e).collect()
}

/// Fields every body carries.
fn stamped(v: &Value) {
    assert!(
        v["timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{v}"
    );
    assert_eq!(v["node"], "supermq", "{v}");
}

#[tokio::test]
async fn each_event_kind_has_its_emqx_shaped_body() {
    let rx = Collector::start().await;
    let b = start_with(|c| {
        let mut w = hook(rx.url(), &all_events());
        w.topics = vec!["t/#".into()];
        c.webhooks = vec![w];
        c.limits.max_client_id_len = 23;
    })
    .await;
    let mut a = Raw::connect(b.addr, "a").await;
    a.subscribe("t/x", QoS::AtLeastOnce).await;
    a.publish("t/x", b"hello", QoS::AtLeastOnce, false).await;
    assert_eq!(&a.recv_publish().await.payload[..], b"hello");
    a.publish("u/not-matched", b"x", QoS::AtLeastOnce, false)
        .await;
    a.unsubscribe("t/x").await;

    // A refused CONNECT: a client id over limits.max_client_id_len.
    let mut r = Raw::open(b.addr).await;
    let long = "c".repeat(30);
    let code = r.try_connack(connect_packet(&long, true)).await;
    assert_eq!(code, Some(ConnectReturnCode::IdentifierRejected));

    // A drop: a QoS 0 message for an offline persistent session.
    let (mut off, _) = Raw::connect_with(b.addr, connect_packet("off", false)).await;
    off.subscribe("t/drop", QoS::AtMostOnce).await;
    off.disconnect().await;
    rx.wait_event("client.disconnected", |v| v["clientid"] == "off")
        .await;
    a.publish("t/drop", b"lost", QoS::AtLeastOnce, false).await;
    a.disconnect().await;

    let v = rx
        .wait_event("client.connected", |v| v["clientid"] == "a")
        .await;
    stamped(&v);
    assert_eq!(v["proto_name"], "MQTT");
    assert_eq!(v["proto_ver"], 4);
    assert_eq!(v["keepalive"], 60);
    assert_eq!(v["clean_start"], true);
    assert_eq!(v["username"], Value::Null);
    assert!(
        v["peername"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{v}"
    );

    let v = rx
        .wait_event("session.subscribed", |v| v["clientid"] == "a")
        .await;
    stamped(&v);
    assert_eq!(
        (&v["topic"], &v["qos"]),
        (&Value::from("t/x"), &Value::from(1))
    );

    let v = rx
        .wait_event("message.publish", |v| v["topic"] == "t/x")
        .await;
    stamped(&v);
    assert_eq!(v["clientid"], "a");
    assert_eq!(v["payload"], "hello");
    assert_eq!(v["qos"], 1);
    assert_eq!(v["flags"]["retain"], false);

    let v = rx
        .wait_event("message.delivered", |v| v["topic"] == "t/x")
        .await;
    stamped(&v);
    assert_eq!(
        (&v["clientid"], &v["payload"]),
        (&Value::from("a"), &Value::from("hello"))
    );

    let v = rx
        .wait_event("session.unsubscribed", |v| v["clientid"] == "a")
        .await;
    assert_eq!(v["topic"], "t/x");

    let v = rx.wait_event("client.connack", |_| true).await;
    stamped(&v);
    assert_eq!(v["clientid"], long);
    assert_eq!(v["reason_code"], "client_identifier_not_valid");

    let v = rx.wait_event("message.dropped", |_| true).await;
    stamped(&v);
    assert_eq!(v["clientid"], "off");
    assert_eq!(v["topic"], "t/drop");
    assert_eq!(v["reason"], "offline");

    let v = rx
        .wait_event("client.disconnected", |v| v["clientid"] == "a")
        .await;
    stamped(&v);
    assert_eq!(v["reason"], "client sent DISCONNECT");

    // The topic filter applies to the message events.
    assert!(
        !rx.events().iter().any(|v| v["topic"] == "u/not-matched"),
        "{:#?}",
        rx.events()
    );
    assert_eq!(metric(&b, |m| &m.webhook_dropped), 0);
    wait_until("counted as sent", || metric(&b, |m| &m.webhook_sent) >= 10).await;
}

#[tokio::test]
async fn only_the_configured_events_are_sent_in_batches() {
    let rx = Collector::start().await;
    let b = start_with(|c| {
        let mut w = hook(rx.url(), &[HookEvent::ClientConnected]);
        w.batch_max = 50;
        c.webhooks = vec![w];
    })
    .await;
    let mut clients = Vec::new();
    for i in 0..200 {
        clients.push(Raw::connect(b.addr, &format!("c{i}")).await);
    }
    wait_until("200 connects", || rx.events().len() >= 200).await;
    let events = rx.events();
    assert!(events.iter().all(|v| v["event"] == "client.connected"));
    assert_eq!(events.len(), 200);
    // Batched: never more than batch_max per POST, so at least 4 POSTs.
    assert!(
        rx.requests() >= 4 && rx.requests() <= 200,
        "{}",
        rx.requests()
    );
    wait_until("counted as sent", || metric(&b, |m| &m.webhook_sent) == 200).await;
}

#[tokio::test]
async fn a_failed_post_is_retried_until_it_succeeds() {
    let rx = Collector::start().await;
    rx.fail_next(2);
    let b = start_with(|c| {
        let mut w = hook(rx.url(), &[HookEvent::ClientConnected]);
        w.retries = 3;
        c.webhooks = vec![w];
    })
    .await;
    let _c = Raw::connect(b.addr, "retried").await;
    let v = rx
        .wait_event("client.connected", |v| v["clientid"] == "retried")
        .await;
    assert_eq!(v["proto_ver"], 4);
    assert_eq!(rx.requests(), 3, "two 503s, then success");
    wait_until("counted as sent", || metric(&b, |m| &m.webhook_sent) == 1).await;
    assert_eq!(metric(&b, |m| &m.webhook_failed), 0);
}

#[tokio::test]
async fn a_batch_is_dropped_and_counted_after_its_retries() {
    let rx = Collector::start().await;
    rx.fail_next(2);
    let b = start_with(|c| {
        let mut w = hook(rx.url(), &[HookEvent::ClientConnected]);
        w.retries = 1;
        c.webhooks = vec![w];
    })
    .await;
    let _c = Raw::connect(b.addr, "given-up").await;
    wait_until("the batch is given up", || {
        metric(&b, |m| &m.webhook_failed) == 1
    })
    .await;
    assert_eq!(rx.requests(), 2, "the first try and one retry");
    // The next event goes through: the sender carries on.
    let _d = Raw::connect(b.addr, "next").await;
    rx.wait_event("client.connected", |v| v["clientid"] == "next")
        .await;
    assert!(!rx.events().iter().any(|v| v["clientid"] == "given-up"));
}

#[tokio::test]
async fn a_hanging_webhook_never_slows_mqtt_traffic() {
    let rx = Collector::start().await;
    rx.hang();
    let b = start_with(|c| {
        let mut w = hook(
            rx.url(),
            &[HookEvent::MessagePublish, HookEvent::MessageDelivered],
        );
        w.timeout = Duration::from_secs(60);
        w.queue_size = 100;
        w.batch_max = 10;
        c.webhooks = vec![w];
    })
    .await;
    let mut c = Raw::connect(b.addr, "busy").await;
    c.subscribe("t/loop", QoS::AtLeastOnce).await;
    let n = 5_000;
    tokio::time::timeout(Duration::from_secs(120), async {
        for i in 0..n {
            let body = i.to_string();
            c.publish("t/loop", body.as_bytes(), QoS::AtLeastOnce, false)
                .await;
            let p = c.recv_publish().await;
            assert_eq!(p.payload, body.as_bytes());
        }
    })
    .await
    .expect("5,000 QoS 1 round trips with a hanging webhook");
    wait_until("the webhook was tried", || rx.requests() >= 1).await;
    // 10,000 events, one batch in flight and 100 queued: the rest were dropped.
    let dropped = metric(&b, |m| &m.webhook_dropped);
    assert!(dropped >= 2 * n - 200, "dropped {dropped}");
    assert_eq!(metric(&b, |m| &m.webhook_sent), 0);
}

#[tokio::test]
async fn a_broker_with_a_hanging_webhook_shuts_down_promptly() {
    let rx = Collector::start().await;
    rx.hang();
    let mut c = test_config();
    let mut w = hook(rx.url(), &[HookEvent::ClientConnected]);
    w.timeout = Duration::from_secs(60);
    c.webhooks = vec![w];
    let shutdown = tokio_util::sync::CancellationToken::new();
    let broker = supermq::Broker::start_with(c, supermq::Extensions::default(), shutdown.clone())
        .await
        .expect("starts");
    let _c = Raw::connect(broker.local_addr(), "x").await;
    wait_until("the POST hangs", || rx.requests() == 1).await;
    let started = std::time::Instant::now();
    shutdown.cancel();
    broker.stopped().await;
    // Every task ended: after its closing grace (1.5 s, one more try of the batch), not at
    // the drain deadline (5 s).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
