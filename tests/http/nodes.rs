//! `/api/v5/nodes`, `/api/v5/stats`, `/api/v5/listeners`.

use supermq::codec::QoS;

use crate::common::http::*;
use crate::common::*;

#[tokio::test]
async fn nodes_stats_and_listeners_describe_this_broker() {
    let (b, addr) = start_http(|_| {}).await;
    let mut c = Raw::connect(b.addr, "one").await;
    c.subscribe("a/b", QoS::AtMostOnce).await;
    c.publish("a/b", b"x", QoS::AtLeastOnce, false).await;
    let _ = c.recv_publish().await;

    let v = get(addr, "/api/v5/nodes").await.json();
    let n = &v[0];
    assert_eq!(n["node_status"], "running");
    assert_eq!(n["self"], true);
    assert_eq!(n["connections"], 1);
    assert!(n["uptime"].as_u64().is_some());
    assert_eq!(v.as_array().unwrap().len(), 1);

    let v = get(addr, "/api/v5/stats").await.json();
    let s = &v[0];
    assert_eq!(s["connections.count"], 1);
    assert_eq!(s["subscriptions.count"], 1);
    assert_eq!(s["topics.count"], 1);
    assert_eq!(s["messages.received"], 1);
    assert_eq!(s["messages.sent"], 1);

    let v = get(addr, "/api/v5/listeners").await.json();
    let l = &v[0];
    assert_eq!(l["name"], "tcp");
    assert_eq!(l["type"], "tcp");
    assert_eq!(l["bind"], b.addr.to_string());
    assert_eq!(l["current_connections"], 1);
}

/// Node "a" with HTTP on and `ready_min_links = 1`: not ready alone; once "b" links, ready,
/// with "b" among its nodes and in the per-peer route metrics.
#[tokio::test]
async fn cluster_peers_in_nodes_readiness_and_metrics() {
    use crate::common::cluster::{clustered, route, wait_meshed};
    let (a, addr) = start_http(|c| {
        clustered(c, "a", &[]);
        c.http.ready_min_links = 1;
    })
    .await;
    let r = get(addr, "/readyz").await;
    assert_eq!(r.status, 503, "{}", r.text());
    let why = r.json()["not_ready"][0].as_str().unwrap().to_owned();
    assert!(why.contains("cluster"), "{why}");

    let seed = route(&a);
    let b = start_with(|c| clustered(c, "b", &[seed])).await;
    let nodes = [a, b];
    wait_meshed(&nodes).await;
    let r = get(addr, "/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text());

    let v = get(addr, "/api/v5/nodes").await.json();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(list[0]["node"], "a");
    assert_eq!(list[1]["node"], "b");
    assert_eq!(list[1]["node_status"], "running");
    assert!(list[1]["link"]["msgs_out"].is_u64(), "{v}");

    let text = get(addr, "/metrics").await.text();
    assert!(
        text.contains("supermq_route_link_up{peer=\"b\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("supermq_route_messages_out_total{peer=\"b\"}"),
        "{text}"
    );
}
