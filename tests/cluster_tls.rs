//! Mutual TLS on cluster routes: nodes with certificates from the cluster CA link and carry
//! traffic; a node with a certificate from another CA, or without TLS, is refused.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::cluster::{clustered, links, route, wait_refused};
use common::process::temp_dir;
use common::tls::Ca;
use common::*;
use supermq::codec::QoS;

async fn tls_node(
    id: &str,
    seeds: &[SocketAddr],
    files: Option<(PathBuf, PathBuf, PathBuf)>,
) -> TestBroker {
    let id = id.to_owned();
    let seeds = seeds.to_vec();
    start_with(move |c| {
        clustered(c, &id, &seeds);
        c.cluster.ping_interval = Duration::from_millis(200);
        c.cluster.reconnect_max = Duration::from_millis(300);
        if let Some((cert, key, ca)) = files {
            c.cluster.tls_cert_file = Some(cert);
            c.cluster.tls_key_file = Some(key);
            c.cluster.tls_ca_file = Some(ca);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_routes_link_and_refuse_strangers() {
    let dir = temp_dir("route-tls");
    let ca = Ca::new("cluster-ca");
    let a = tls_node("ta", &[], Some(ca.node_files(&dir, "ta"))).await;
    let seed = route(&a);
    let b = tls_node("tb", &[seed], Some(ca.node_files(&dir, "tb"))).await;
    wait_until("TLS link up", || links(&a) == 1 && links(&b) == 1).await;

    let mut s = Raw::connect(b.addr, "tls-sub").await;
    s.subscribe("secure/#", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(a.addr, "tls-pub").await;
    p.publish("secure/x", b"over tls", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(&s.recv_publish().await.payload[..], b"over tls");

    // A node whose certificate comes from another CA is refused by both checks.
    let other = Ca::new("other-ca");
    let (cert, key, _) = other.node_files(&dir, "tc");
    let (_, _, right_ca) = ca.node_files(&dir, "tc-ca");
    let stranger = tls_node("tc", &[seed], Some((cert, key, right_ca))).await;
    wait_refused(&a, 1, "stranger refused").await;
    // A node without TLS is refused too.
    let plain = tls_node("td", &[seed], None).await;
    wait_refused(&a, 2, "plain refused").await;
    assert_eq!(
        links(&a),
        1,
        "only the node with a cluster certificate is linked"
    );
    assert_eq!(links(&stranger) + links(&plain), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_route_tls_files_stop_the_start_naming_the_key() {
    let mut c = test_config();
    clustered(&mut c, "bad", &[]);
    c.cluster.tls_cert_file = Some("/nonexistent/route.crt".into());
    c.cluster.tls_key_file = Some("/nonexistent/route.key".into());
    c.cluster.tls_ca_file = Some("/nonexistent/ca.crt".into());
    let err = supermq::Broker::start(c, tokio_util::sync::CancellationToken::new())
        .await
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("cluster.tls_cert_file") && msg.contains("/nonexistent/route.crt"),
        "{msg}"
    );
}
