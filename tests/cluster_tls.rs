//! Mutual TLS on cluster routes: nodes with certificates from the cluster CA link and carry
//! traffic; a node with a certificate from another CA, or without TLS, is refused.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use supermq::codec::QoS;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).expect("ca");
        Ca { cert, key }
    }

    /// Writes a node certificate (server and client use, SAN 127.0.0.1), its key and this CA.
    fn node_files(&self, dir: &Path, node: &str) -> (PathBuf, PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        p.distinguished_name.push(DnType::CommonName, node);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign");
        let files = (
            dir.join(format!("{node}.crt")),
            dir.join(format!("{node}.key")),
            dir.join(format!("{node}-ca.crt")),
        );
        std::fs::write(&files.0, cert.pem()).expect("write");
        std::fs::write(&files.1, key.serialize_pem()).expect("write");
        std::fs::write(&files.2, self.cert.pem()).expect("write");
        files
    }
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("supermq-route-tls-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("dir");
    d
}

async fn tls_node(
    id: &str,
    seeds: Vec<String>,
    files: Option<(PathBuf, PathBuf, PathBuf)>,
) -> TestBroker {
    let id = id.to_owned();
    start_with(move |c| {
        c.cluster.enabled = true;
        c.cluster.node_id = id;
        c.cluster.listen = "127.0.0.1:0".parse().expect("addr");
        c.cluster.seeds = seeds;
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
    let dir = temp_dir();
    let ca = Ca::new("cluster-ca");
    let a = tls_node("ta", vec![], Some(ca.node_files(&dir, "ta"))).await;
    let seed = a.broker.route_addr().expect("route").to_string();
    let b = tls_node("tb", vec![seed.clone()], Some(ca.node_files(&dir, "tb"))).await;
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
    let stranger = tls_node("tc", vec![seed.clone()], Some((cert, key, right_ca))).await;
    wait_until("stranger refused", || {
        metric(&a, |m| &m.route_handshake_rejected) >= 1
    })
    .await;
    // A node without TLS is refused too.
    let plain = tls_node("td", vec![seed], None).await;
    wait_until("plain refused", || {
        metric(&a, |m| &m.route_handshake_rejected) >= 2
    })
    .await;
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
    c.cluster.enabled = true;
    c.cluster.node_id = "bad".into();
    c.cluster.listen = "127.0.0.1:0".parse().expect("addr");
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
