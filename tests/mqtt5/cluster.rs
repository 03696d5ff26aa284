//! MQTT 5 across a cluster: a message published on one node keeps its properties (user
//! properties, content type, correlation data) and its expiry on the way to a subscriber on
//! another node.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use supermq::codec::QoS;

use crate::common::cluster::{clustered, route, wait_meshed};
use crate::common::{start_with, TestBroker};
use crate::{props, publish5, send_publish, sub, subscribe5, v5, values};

async fn node(id: &str, seeds: &[SocketAddr]) -> TestBroker {
    let id = id.to_owned();
    let seeds = seeds.to_vec();
    start_with(move |c| {
        clustered(c, &id, &seeds);
        c.cluster.ping_interval = Duration::from_millis(200);
        c.cluster.reconnect_max = Duration::from_millis(500);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_and_expiry_cross_the_cluster() {
    let n1 = node("n1", &[]).await;
    let n2 = node("n2", &[route(&n1)]).await;
    let nodes = [n1, n2];
    wait_meshed(&nodes).await;

    let mut s = v5(nodes[1].addr, "s").await;
    // The SUBACK is held until every peer knows the interest.
    subscribe5(&mut s, vec![sub("x/#", QoS::AtLeastOnce, |_| {})], Some(5)).await;
    let mut p = v5(nodes[0].addr, "p").await;
    let pv = props(|v| {
        v.user_properties = vec![("a".into(), "1".into()), ("b".into(), "2".into())];
        v.content_type = Some("application/json".into());
        v.correlation_data = Some(Bytes::from_static(b"c-1"));
        v.message_expiry_interval = Some(30);
    });
    let code = send_publish(
        &mut p,
        publish5("x/y", QoS::AtLeastOnce, 0, b"{}", pv.clone()),
    )
    .await;
    assert_eq!(code, 0, "the remote subscriber counts as a match");
    let got = s.recv_publish().await;
    let v = values(&got.properties);
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("x/y", &b"{}"[..]));
    assert_eq!(v.user_properties, pv.user_properties);
    assert_eq!(v.content_type, pv.content_type);
    assert_eq!(v.correlation_data, pv.correlation_data);
    assert_eq!(
        v.subscription_identifiers,
        [5],
        "the subscriber's own identifier"
    );
    let left = v.message_expiry_interval.expect("expiry crosses the route");
    assert!(left <= 30, "never more than the original: {left}");
}
