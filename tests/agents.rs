//! Agent notices: a client that subscribes to `agents/<its id>` is announced on
//! `$events/agents/connected/<id>` and `.../disconnected/<id>` and to webhooks, with the host
//! details it announced (a retained `agents/<id>/info` at 3.1.1, a `client_info` user
//! property at 5).

mod common;

use common::hook_server::Collector;
use common::*;
use serde_json::Value;
use supermq::codec::{Packet, PropertyValues, Publish, QoS, Unsubscribe};
use supermq::config::{HookEvent, WebhookConfig};

async fn start_agents(rx: &Collector) -> TestBroker {
    let url = rx.url();
    start_with(|c| {
        c.webhooks = vec![WebhookConfig {
            url,
            events: vec![HookEvent::AgentConnected, HookEvent::AgentDisconnected],
            ..WebhookConfig::default()
        }];
    })
    .await
}

/// A monitor of agent notices (as the management server would be).
async fn monitor(b: &TestBroker) -> Raw {
    let mut m = Raw::connect(b.addr, "monitor").await;
    assert_eq!(m.subscribe("$events/agents/#", QoS::AtLeastOnce).await, 1);
    m
}

fn json(p: &Publish) -> Value {
    serde_json::from_slice(&p.payload).expect("a JSON notice")
}

#[tokio::test]
async fn an_agent_at_3_1_1_is_announced_with_its_retained_info() {
    let rx = Collector::start().await;
    let b = start_agents(&rx).await;
    let mut m = monitor(&b).await;
    // Not agents: another client's agent topic, and a wildcard.
    let mut other = Raw::connect(b.addr, "other").await;
    other.subscribe("agents/dev1", QoS::AtMostOnce).await;
    other.subscribe("agents/+", QoS::AtMostOnce).await;

    let mut dev = Raw::connect(b.addr, "dev1").await;
    dev.publish(
        "agents/dev1/info",
        br#"{"os":"linux","host":"h1"}"#,
        QoS::AtLeastOnce,
        true,
    )
    .await;
    dev.subscribe("agents/dev1", QoS::AtLeastOnce).await;

    let p = m.recv_publish().await;
    assert_eq!(p.topic, "$events/agents/connected/dev1");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    let v = json(&p);
    assert_eq!(v["event"], "agent.connected");
    assert_eq!(v["clientid"], "dev1");
    assert_eq!(v["node"], "supermq");
    assert_eq!(v["proto_ver"], 4);
    assert_eq!(v["keepalive"], 60);
    assert_eq!(v["clean_start"], true);
    assert!(v["peername"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(v["timestamp"].as_u64().is_some());
    assert_eq!(v["client_info"]["os"], "linux");
    assert_eq!(v["client_info"]["host"], "h1");

    let w = rx.wait_event("agent.connected", |_| true).await;
    assert_eq!(w["clientid"], "dev1");
    assert_eq!(w["client_info"]["host"], "h1");

    dev.disconnect().await;
    let p = m.recv_publish().await;
    assert_eq!(p.topic, "$events/agents/disconnected/dev1");
    let v = json(&p);
    assert_eq!(v["event"], "agent.disconnected");
    assert_eq!(v["reason"], "client sent DISCONNECT");
    assert_eq!(v["client_info"]["os"], "linux");
    rx.wait_event("agent.disconnected", |v| v["clientid"] == "dev1")
        .await;

    // The tracker handles events in order: "other" was seen before dev1 went.
    assert!(
        !rx.events().iter().any(|v| v["clientid"] == "other"),
        "{:#?}",
        rx.events()
    );
    assert_eq!(metric(&b, |m| &m.agent_notices), 2);
}

#[tokio::test]
async fn an_agent_at_5_is_announced_with_its_client_info_property() {
    let rx = Collector::start().await;
    let b = start_agents(&rx).await;
    let mut m = monitor(&b).await;
    let props = PropertyValues {
        user_properties: vec![("client_info".into(), r#"{"os":"rtos","cpu":2}"#.into())],
        ..PropertyValues::default()
    };
    let (mut dev, _) = Raw::connect5(b.addr, connect5("dev5", true, props)).await;
    dev.subscribe("agents/dev5", QoS::AtMostOnce).await;

    let v = json(&m.recv_publish().await);
    assert_eq!(v["event"], "agent.connected");
    assert_eq!(v["clientid"], "dev5");
    assert_eq!(v["proto_ver"], 5);
    assert_eq!(v["client_info"]["os"], "rtos");
    assert_eq!(v["client_info"]["cpu"], 2);
    let w = rx.wait_event("agent.connected", |_| true).await;
    assert_eq!(w["client_info"]["cpu"], 2);

    // Dropping the subscription stops it being an agent.
    let pkid = dev.pkid();
    let unsub = Unsubscribe::new(pkid, vec!["agents/dev5".into()]);
    dev.send(&Packet::Unsubscribe(unsub)).await;
    match dev.recv().await {
        Packet::UnsubAck(a) => assert_eq!(a.pkid, pkid),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    let p = m.recv_publish().await;
    assert_eq!(p.topic, "$events/agents/disconnected/dev5");
    assert_eq!(json(&p)["reason"], "unsubscribed");
    rx.wait_event("agent.disconnected", |_| true).await;
}

#[tokio::test]
async fn a_resumed_agent_session_is_announced_again() {
    let rx = Collector::start().await;
    let b = start_agents(&rx).await;
    let mut m = monitor(&b).await;
    let (mut dev, _) = Raw::connect_with(b.addr, connect_packet("p1", false)).await;
    dev.subscribe("agents/p1", QoS::AtLeastOnce).await;
    assert_eq!(m.recv_publish().await.topic, "$events/agents/connected/p1");
    dev.disconnect().await;
    assert_eq!(
        m.recv_publish().await.topic,
        "$events/agents/disconnected/p1"
    );
    // Back with its session (and so its subscription): online again, no SUBSCRIBE needed.
    let (_dev, present) = Raw::connect_with(b.addr, connect_packet("p1", false)).await;
    assert!(present);
    let p = m.recv_publish().await;
    assert_eq!(p.topic, "$events/agents/connected/p1");
    assert_eq!(json(&p)["clean_start"], false);
    wait_until("both connects at the webhook", || {
        rx.events()
            .iter()
            .filter(|v| v["event"] == "agent.connected")
            .count()
            == 2
    })
    .await;
}

#[tokio::test]
async fn a_taken_over_agent_goes_then_comes_back() {
    let b = start().await;
    let mut m = monitor(&b).await;
    let (mut first, _) = Raw::connect_with(b.addr, connect_packet("t1", false)).await;
    first.subscribe("agents/t1", QoS::AtLeastOnce).await;
    assert_eq!(m.recv_publish().await.topic, "$events/agents/connected/t1");
    let (_second, present) = Raw::connect_with(b.addr, connect_packet("t1", false)).await;
    assert!(present);
    let p = m.recv_publish().await;
    assert_eq!(p.topic, "$events/agents/disconnected/t1");
    assert_eq!(json(&p)["reason"], "taken over");
    assert_eq!(m.recv_publish().await.topic, "$events/agents/connected/t1");
    // The first connection's own close (seen later) announces nothing more: the next
    // notice, from the tracker that handles events in order, is another agent's.
    first.expect_closed().await;
    let mut z = Raw::connect(b.addr, "z").await;
    z.subscribe("agents/z", QoS::AtMostOnce).await;
    assert_eq!(m.recv_publish().await.topic, "$events/agents/connected/z");
}

#[tokio::test]
async fn a_client_cannot_forge_a_notice() {
    let b = start().await;
    let mut m = monitor(&b).await;
    let mut c = Raw::connect(b.addr, "forger").await;
    c.publish("$events/agents/connected/x", b"{}", QoS::AtLeastOnce, false)
        .await;
    // What the monitor receives next is the real notice of a real agent, not the forgery.
    let mut dev = Raw::connect(b.addr, "real").await;
    dev.subscribe("agents/real", QoS::AtMostOnce).await;
    assert_eq!(
        m.recv_publish().await.topic,
        "$events/agents/connected/real"
    );
    assert_eq!(metric(&b, |m| &m.dropped_sys_publish), 1);
}

#[tokio::test]
async fn agents_off_means_no_notices() {
    let b = start_with(|c| c.agents.enabled = false).await;
    let mut m = monitor(&b).await;
    let mut dev = Raw::connect(b.addr, "dev1").await;
    dev.subscribe("agents/dev1", QoS::AtMostOnce).await;
    dev.disconnect().await;
    m.subscribe("done", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "p").await;
    barrier(&mut p, "done").await;
    assert!(until_barrier(&mut m, "done").await.is_empty());
    assert_eq!(metric(&b, |m| &m.agent_notices), 0);
}

#[tokio::test]
async fn a_shutdown_still_tells_webhooks_of_its_agents_going() {
    let rx = Collector::start().await;
    let mut c = test_config();
    c.webhooks = vec![WebhookConfig {
        url: rx.url(),
        events: vec![HookEvent::AgentConnected, HookEvent::AgentDisconnected],
        ..WebhookConfig::default()
    }];
    let shutdown = tokio_util::sync::CancellationToken::new();
    let broker = supermq::Broker::start_with(c, supermq::Extensions::default(), shutdown.clone())
        .await
        .expect("starts");
    let mut dev = Raw::connect(broker.local_addr(), "dev-s").await;
    dev.subscribe("agents/dev-s", QoS::AtMostOnce).await;
    rx.wait_event("agent.connected", |_| true).await;
    shutdown.cancel();
    broker.stopped().await;
    let events = rx.events();
    let gone = events
        .iter()
        .find(|v| v["event"] == "agent.disconnected")
        .unwrap_or_else(|| panic!("no agent.disconnected in {events:#?}"));
    assert_eq!(gone["clientid"], "dev-s");
}
