//! TLS certificates reloaded under a running broker (what SIGHUP does, through
//! `Broker::reload`): new handshakes on `tls` and `wss` listeners and on routes present the
//! new certificate, connections and links already up carry on, and a bad file is reported
//! (naming it) while the previous certificate stays in use.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{clustered, links, route};
use common::process::{temp_dir, write};
use common::tls::{tls_connect, tls_connector, Ca, Leaf};
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use supermq::codec::{ConnectReturnCode, QoS};
use supermq::config::{ListenerConfig, ListenerProtocol};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A `tls` or `wss` listener on 127.0.0.1:0 using `cert` and `key`.
fn tls_listener(name: &str, protocol: ListenerProtocol, cert: &Path, key: &Path) -> ListenerConfig {
    ListenerConfig {
        name: name.to_owned(),
        protocol,
        bind: "127.0.0.1:0".parse().expect("addr"),
        cert_file: Some(cert.to_owned()),
        key_file: Some(key.to_owned()),
        ..ListenerConfig::default()
    }
}

/// Writes `leaf` as the server's certificate and key files.
fn install(dir: &Path, leaf: &Leaf) -> (PathBuf, PathBuf) {
    (
        write(dir, "server.crt", &leaf.cert_pem),
        write(dir, "server.key", &leaf.key_pem),
    )
}

/// The leaf certificate a new TLS handshake with `addr` is shown.
async fn served_cert(addr: SocketAddr, ca: &Ca) -> CertificateDer<'static> {
    let tls = tls_connect(addr, &tls_connector(ca, None))
        .await
        .expect("TLS handshake");
    leaf_of(tls.get_ref().1.peer_certificates())
}

fn leaf_of(chain: Option<&[CertificateDer<'static>]>) -> CertificateDer<'static> {
    chain
        .and_then(|c| c.first())
        .expect("server sent a certificate")
        .clone()
}

#[tokio::test]
async fn listener_certificates_are_reloaded_for_new_connections_only() {
    let dir = temp_dir("tls-reload");
    let ca = Ca::new("reload CA");
    let (a, b) = (ca.server(), ca.server());
    assert_ne!(a.cert_der, b.cert_der);
    let (cert, key) = install(&dir, &a);
    let (tls, wss) = (
        tls_listener("tls", ListenerProtocol::Tls, &cert, &key),
        tls_listener("wss", ListenerProtocol::Wss, &cert, &key),
    );
    let broker = start_with(|c| c.listeners.extend([tls, wss])).await;
    let tls_addr = broker.broker.listener_addr("tls").expect("tls");
    let wss_addr = broker.broker.listener_addr("wss").expect("wss");
    assert_eq!(served_cert(tls_addr, &ca).await, a.cert_der);
    assert_eq!(served_cert(wss_addr, &ca).await, a.cert_der);

    // A client connected with certificate A before the reload.
    let stream = tls_connect(tls_addr, &tls_connector(&ca, None))
        .await
        .expect("tls");
    let mut before = Raw::new(stream);
    assert_eq!(
        before.try_connack(connect_packet("before", true)).await,
        Some(ConnectReturnCode::Accepted)
    );
    assert_eq!(before.subscribe("reload/#", QoS::AtMostOnce).await, 0);

    install(&dir, &b);
    broker.broker.reload().expect("reload with a good pair");
    assert_eq!(served_cert(tls_addr, &ca).await, b.cert_der, "tls listener");
    assert_eq!(served_cert(wss_addr, &ca).await, b.cert_der, "wss listener");

    // The connection made before the reload still carries traffic.
    let mut p = Raw::connect(broker.addr, "pub").await;
    p.publish("reload/x", b"still here", QoS::AtMostOnce, false)
        .await;
    assert_eq!(&before.recv_publish().await.payload[..], b"still here");

    // A bad certificate file: the error names it, and B stays in use.
    std::fs::write(&cert, "not a certificate\n").expect("write");
    let e = broker.broker.reload().expect_err("bad certificate");
    let msg = e.to_string();
    assert!(
        msg.contains(&cert.display().to_string()) && msg.contains("cert_file"),
        "error names the file: {msg}"
    );
    assert!(msg.contains("`tls`") && msg.contains("`wss`"), "{msg}");
    assert_eq!(served_cert(tls_addr, &ca).await, b.cert_der);
    assert_eq!(served_cert(wss_addr, &ca).await, b.cert_der);

    // A key that does not match the certificate: refused too, B stays.
    let c = ca.server();
    write(&dir, "server.crt", &c.cert_pem);
    let e = broker.broker.reload().expect_err("mismatched pair");
    assert!(e.to_string().contains("usable pair"), "{e}");
    assert_eq!(served_cert(tls_addr, &ca).await, b.cert_der);

    // Fixed files are picked up by the next reload.
    install(&dir, &c);
    broker.broker.reload().expect("reload");
    assert_eq!(served_cert(tls_addr, &ca).await, c.cert_der);
}

/// The first certificate in a PEM file.
fn pem_der(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).expect("PEM certificate")
}

/// The certificate a route handshake with `addr` is shown (the client presents `client`,
/// since routes require one).
async fn route_cert(addr: SocketAddr, ca: &Ca, client: &Leaf) -> CertificateDer<'static> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der()).expect("root");
    let cfg =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![client.cert_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client.key_der.clone())),
            )
            .expect("client cert");
    let tcp = TcpStream::connect(addr).await.expect("connect route");
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let tls = tokio::time::timeout(WAIT, TlsConnector::from(Arc::new(cfg)).connect(name, tcp))
        .await
        .expect("route handshake in time")
        .expect("route handshake");
    leaf_of(tls.get_ref().1.peer_certificates())
}

async fn tls_node(
    id: &str,
    seeds: &[SocketAddr],
    files: (PathBuf, PathBuf, PathBuf),
) -> TestBroker {
    let (id, seeds) = (id.to_owned(), seeds.to_vec());
    start_with(move |c| {
        clustered(c, &id, &seeds);
        c.cluster.ping_interval = Duration::from_millis(200);
        c.cluster.reconnect_max = Duration::from_millis(300);
        c.cluster.tls_cert_file = Some(files.0);
        c.cluster.tls_key_file = Some(files.1);
        c.cluster.tls_ca_file = Some(files.2);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_certificates_are_reloaded_and_links_stay_up() {
    let dir = temp_dir("route-tls-reload");
    let ca = Ca::new("cluster CA");
    let probe = ca.client("probe");
    let (cert, key, ca_file) = ca.node_files(&dir, "ra");
    let a = tls_node("ra", &[], (cert.clone(), key.clone(), ca_file.clone())).await;
    let seed = route(&a);
    let first = pem_der(&cert);
    assert_eq!(route_cert(seed, &ca, &probe).await, first);
    let b = tls_node("rb", &[seed], ca.node_files(&dir, "rb")).await;
    wait_until("link a-b", || links(&a) == 1 && links(&b) == 1).await;

    // New certificate for node a (same paths), reloaded.
    ca.node_files(&dir, "ra");
    let second = pem_der(&cert);
    assert_ne!(first, second);
    a.broker.reload().expect("route reload");
    assert_eq!(route_cert(seed, &ca, &probe).await, second);
    assert_eq!(links(&a), 1, "the link up before the reload stays");

    // The link still carries traffic, and a new node links with the new certificate (both
    // directions of the handshake use it).
    let mut s = Raw::connect(b.addr, "sub").await;
    s.subscribe("r/#", QoS::AtLeastOnce).await;
    // The SUBACK waits for the peers to confirm the interest (cluster.sync_timeout).
    let mut p = Raw::connect(a.addr, "pub").await;
    p.publish("r/x", b"across", QoS::AtLeastOnce, false).await;
    assert_eq!(&s.recv_publish().await.payload[..], b"across");
    let c = tls_node("rc", &[seed], ca.node_files(&dir, "rc")).await;
    wait_until("link a-c", || links(&a) == 2 && links(&c) >= 1).await;

    // A bad key file is reported with its key and path; the second certificate stays.
    std::fs::write(&key, "garbage\n").expect("write");
    let e = a.broker.reload().expect_err("bad key");
    let msg = e.to_string();
    assert!(
        msg.contains("cluster.tls_key_file") && msg.contains(&key.display().to_string()),
        "{msg}"
    );
    assert_eq!(route_cert(seed, &ca, &probe).await, second);
}
