//! `/api/v5/clients`, a client, its subscriptions, `/api/v5/subscriptions`, `/api/v5/topics`
//! and the kick.

use supermq::codec::{Packet, PropertyValues, QoS, ReasonCode};

use crate::common::http::*;
use crate::common::*;

fn with_user(id: &str, user: &str) -> supermq::codec::Connect {
    supermq::codec::Connect {
        username: Some(user.into()),
        ..connect_packet(id, true)
    }
}

#[tokio::test]
async fn lists_clients_with_filters_and_paging() {
    let (b, addr) = start_http(|_| {}).await;
    let (_a, _) = Raw::connect_with(b.addr, with_user("c-a", "alice")).await;
    let (_b2, _) = Raw::connect_with(b.addr, with_user("c-b", "bob")).await;
    let (_c, _) = Raw::connect_with(b.addr, with_user("c-c", "alice")).await;
    // An offline persistent session.
    let (off, _) = Raw::connect_with(b.addr, connect_packet("c-off", false)).await;
    off.disconnect().await;
    wait_until("c-off offline", || {
        metric(&b, |m| &m.clients_connected_current) == 3
    })
    .await;

    let v = get(addr, "/api/v5/clients").await.json();
    assert_eq!(v["meta"]["count"], 4, "{v}");
    assert_eq!(v["meta"]["page"], 1);
    assert_eq!(v["meta"]["hasnext"], false);
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientid"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c-a", "c-b", "c-c", "c-off"]);
    let a = &v["data"][0];
    assert_eq!(a["username"], "alice");
    assert_eq!(a["connected"], true);
    assert_eq!(a["conn_state"], "connected");
    assert_eq!(a["proto_ver"], 4);
    assert_eq!(a["ip_address"], "127.0.0.1");
    assert_eq!(a["keepalive"], 60);
    assert!(a["connected_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["data"][3]["conn_state"], "disconnected");

    let v = get(addr, "/api/v5/clients?username=alice").await.json();
    assert_eq!(v["meta"]["count"], 2);
    let v = get(addr, "/api/v5/clients?conn_state=disconnected")
        .await
        .json();
    assert_eq!(v["meta"]["count"], 1);
    assert_eq!(v["data"][0]["clientid"], "c-off");
    let v = get(addr, "/api/v5/clients?clientid=c-b").await.json();
    assert_eq!(v["meta"]["count"], 1);
    assert_eq!(v["data"][0]["username"], "bob");
    let v = get(addr, "/api/v5/clients?like_clientid=-c").await.json();
    assert_eq!(v["meta"]["count"], 1);

    let v = get(addr, "/api/v5/clients?page=2&limit=3").await.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["meta"]["hasnext"], false);
    let v = get(addr, "/api/v5/clients?page=1&limit=3").await.json();
    assert_eq!(v["meta"]["hasnext"], true);

    for bad in [
        "conn_state=maybe",
        "page=0",
        "page=x",
        "limit=0",
        "limit=10001",
        "limit=-1",
    ] {
        get(addr, &format!("/api/v5/clients?{bad}"))
            .await
            .assert_error(400, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn one_client_and_its_subscriptions() {
    let (b, addr) = start_http(|_| {}).await;
    // A client id with a '/' and a space travels percent-encoded.
    let mut c = Raw::connect(b.addr, "dev/1 x").await;
    c.subscribe("s/+/t", QoS::AtLeastOnce).await;
    c.subscribe("s/#", QoS::AtMostOnce).await;

    let v = get(addr, "/api/v5/clients/dev%2F1%20x").await.json();
    assert_eq!(v["clientid"], "dev/1 x");
    assert_eq!(v["subscriptions_cnt"], 2);
    get(addr, "/api/v5/clients/nobody")
        .await
        .assert_error(404, "NOT_FOUND");

    let v = get(addr, "/api/v5/clients/dev%2F1%20x/subscriptions")
        .await
        .json();
    let subs = v.as_array().unwrap();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0]["topic"], "s/#");
    assert_eq!(subs[0]["qos"], 0);
    assert_eq!(subs[1]["topic"], "s/+/t");
    assert_eq!(subs[1]["qos"], 1);
    get(addr, "/api/v5/clients/nobody/subscriptions")
        .await
        .assert_error(404, "NOT_FOUND");

    let mut other = Raw::connect(b.addr, "other").await;
    other.subscribe("s/#", QoS::ExactlyOnce).await;
    let v = get(addr, "/api/v5/subscriptions").await.json();
    assert_eq!(v["meta"]["count"], 3, "{v}");
    let v = get(addr, "/api/v5/subscriptions?topic=s%2F%23")
        .await
        .json();
    assert_eq!(v["meta"]["count"], 2);
    let v = get(addr, "/api/v5/subscriptions?qos=2").await.json();
    assert_eq!(v["data"][0]["clientid"], "other");
    let v = get(addr, "/api/v5/subscriptions?clientid=other")
        .await
        .json();
    assert_eq!(v["meta"]["count"], 1);
    get(addr, "/api/v5/subscriptions?qos=3")
        .await
        .assert_error(400, "BAD_REQUEST");

    let v = get(addr, "/api/v5/topics").await.json();
    let topics: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, ["s/#", "s/+/t"]);
    let v = get(addr, "/api/v5/topics?topic=s%2F%2B%2Ft").await.json();
    assert_eq!(v["meta"]["count"], 1);
    get(addr, "/api/v5/topics?limit=abc")
        .await
        .assert_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn kick_closes_the_connection_and_publishes_the_will() {
    let (b, addr) = start_http(|_| {}).await;
    let mut watcher = Raw::connect(b.addr, "watcher").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;
    let c = supermq::codec::Connect {
        will: Some(will("wills/victim", "gone", QoS::AtLeastOnce, false)),
        ..connect_packet("victim", true)
    };
    let (mut victim, _) = Raw::connect_with(b.addr, c).await;

    let r = call(addr, "DELETE", "/api/v5/clients/victim", Cred::Key, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Answered after the close: the session is gone already.
    assert_eq!(metric(&b, |m| &m.sessions_current), 1);
    victim.expect_closed().await;
    let p = watcher.recv_publish().await;
    assert_eq!(p.topic, "wills/victim");
    assert_eq!(&p.payload[..], b"gone");
    let r = call(addr, "DELETE", "/api/v5/clients/victim", Cred::Key, None).await;
    r.assert_error(404, "NOT_FOUND");
    let r = call(addr, "DELETE", "/api/v5/clients/victim", Cred::None, None).await;
    r.assert_error(401, "BAD_API_KEY_OR_SECRET");
}

#[tokio::test]
async fn kick_tells_an_mqtt5_client_why() {
    let (b, addr) = start_http(|_| {}).await;
    let (mut c, _) = Raw::connect5(b.addr, connect5("v5", true, PropertyValues::default())).await;
    let r = call(addr, "DELETE", "/api/v5/clients/v5", Cred::Key, None).await;
    assert_eq!(r.status, 204);
    let got = c.expect_closed().await;
    assert!(
        got.iter().any(
            |p| matches!(p, Packet::Disconnect(d) if d.reason == ReasonCode::AdministrativeAction)
        ),
        "{got:?}"
    );
}

#[tokio::test]
async fn kick_of_a_persistent_client_ends_its_session_too() {
    let (b, addr) = start_http(|_| {}).await;
    let (mut c, _) = Raw::connect_with(b.addr, connect_packet("durable", false)).await;
    c.subscribe("d/#", QoS::AtLeastOnce).await;
    let r = call(addr, "DELETE", "/api/v5/clients/durable", Cred::Key, None).await;
    assert_eq!(r.status, 204);
    // Answered once it is done: nothing of the client is left.
    get(addr, "/api/v5/clients/durable")
        .await
        .assert_error(404, "NOT_FOUND");
    assert_eq!(metric(&b, |m| &m.subscriptions_current), 0);
    c.expect_closed().await;
    let (_c, present) = Raw::connect_with(b.addr, connect_packet("durable", false)).await;
    assert!(!present);
}

#[tokio::test]
async fn kick_of_an_offline_session_ends_it() {
    let (b, addr) = start_http(|_| {}).await;
    let (mut c, _) = Raw::connect_with(b.addr, connect_packet("keep", false)).await;
    c.subscribe("k/#", QoS::AtLeastOnce).await;
    c.disconnect().await;
    wait_until("offline", || {
        metric(&b, |m| &m.clients_connected_current) == 0
    })
    .await;
    let r = call(addr, "DELETE", "/api/v5/clients/keep", Cred::Key, None).await;
    assert_eq!(r.status, 204);
    get(addr, "/api/v5/clients/keep")
        .await
        .assert_error(404, "NOT_FOUND");
    assert_eq!(metric(&b, |m| &m.subscriptions_current), 0);
    // Reconnecting finds no session.
    let (_c, present) = Raw::connect_with(b.addr, connect_packet("keep", false)).await;
    assert!(!present);
}
