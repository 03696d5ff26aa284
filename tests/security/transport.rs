//! TLS (plain and mutual, CN as username, stalled handshakes, bad files) and WebSocket
//! (ws and wss, frame splitting, path and subprotocol rules).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use supermq::codec::{Connect, Packet, Properties, QoS, Subscribe, SubscribeFilter};
use supermq::config::{ListenerConfig, ListenerProtocol};
use supermq::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::common::process::{supermq_command, temp_dir, write};
use crate::common::tls::{tls_connect, tls_connector, Ca, Leaf};
use crate::common::ws::{ws_handshake, Ws};
use crate::common::{
    self, connect_packet, encode_all, metric, publish_packet, start_with, Raw, TestBroker, WAIT,
};
use crate::{addr_of, connect_as, listener, payload_of, tls_listener};
use supermq::codec::ConnectReturnCode::{self, Accepted};

/// Waits until `b` has counted at least `n` failed TLS or WebSocket handshakes.
async fn wait_handshake_failures(b: &TestBroker, n: u64, what: &str) {
    common::wait_until(what, || metric(b, |m| &m.handshake_failures) >= n).await;
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

/// A TLS client of `addr` trusting `ca` (and presenting `cert`, if given), connected with
/// `c`: the CONNACK must be 0.
async fn tls_client(
    addr: SocketAddr,
    ca: &Ca,
    cert: Option<&Leaf>,
    c: Connect,
) -> Raw<TlsStream<TcpStream>> {
    let tls = tls_connect(addr, &tls_connector(ca, cert))
        .await
        .expect("tls");
    let mut s = Raw::new(tls);
    assert_eq!(s.try_connack(c).await, Some(Accepted));
    s
}

#[tokio::test]
async fn tls_pub_sub_with_a_tcp_client() {
    let dir = temp_dir("tls");
    let ca = Ca::new("server CA");
    let l = tls_listener("tls", ListenerProtocol::Tls, &dir, &ca);
    let b = start_with(|c| c.listeners.push(l)).await;

    let mut s = tls_client(
        addr_of(&b, "tls"),
        &ca,
        None,
        connect_packet("tls-sub", true),
    )
    .await;
    assert_eq!(s.subscribe("t/#", QoS::AtMostOnce).await, 0);

    let mut tcp = Raw::connect(b.addr, "tcp-pub").await;
    tcp.publish("t/1", b"over tls", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(
        payload_of(s.recv().await),
        ("t/1".into(), "over tls".into())
    );
    // A payload large enough to be written by reference (vectored) reaches a TLS client
    // whole, in order with the small one after it.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    tcp.publish("t/big", &big, QoS::AtMostOnce, false).await;
    tcp.publish("t/2", b"after", QoS::AtMostOnce, false).await;
    match s.recv().await {
        Packet::Publish(p) => assert!(p.payload[..] == big[..], "large payload differs"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
    assert_eq!(payload_of(s.recv().await), ("t/2".into(), "after".into()));

    tcp.subscribe("back", QoS::AtMostOnce).await;
    s.send(&publish_packet("back", QoS::AtMostOnce, 0, b"from tls"))
        .await;
    let p = tcp.recv_publish().await;
    assert_eq!(&p.payload[..], b"from tls");
}

/// Connects over TLS with `client`'s certificate and sends CONNECT: the CONNACK code, or
/// `None` when the handshake or the connection failed.
async fn mtls_try(
    b: &TestBroker,
    server_ca: &Ca,
    client: Option<&Leaf>,
    c: supermq::codec::Connect,
) -> Option<ConnectReturnCode> {
    let tls = tls_connect(addr_of(b, "mtls"), &tls_connector(server_ca, client))
        .await
        .ok()?;
    let mut s = Raw::new(tls);
    // With TLS 1.3 a refused client certificate shows up after the client's side of the
    // handshake, as an alert or a close on the first read.
    if !s.try_send_raw(&encode_all(&[Packet::from(c)])).await {
        return None;
    }
    match s.recv_or_closed().await? {
        Packet::ConnAck(a) => Some(a.return_code()),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

fn mtls_listener(dir: &Path, ca: &Ca, cn_as_username: bool) -> ListenerConfig {
    let mut l = tls_listener("mtls", ListenerProtocol::Tls, dir, ca);
    l.ca_file = Some(write(dir, "clients-ca.crt", &ca.pem()));
    l.require_client_cert = true;
    l.use_cn_as_username = cn_as_username;
    l
}

#[tokio::test]
async fn mutual_tls_requires_a_certificate_from_the_ca() {
    let dir = temp_dir("mtls");
    let ca = Ca::new("test CA");
    let l = mtls_listener(&dir, &ca, false);
    let b = start_with(|c| c.listeners.push(l)).await;
    let c = || connect_packet("m", true);

    assert_eq!(mtls_try(&b, &ca, None, c()).await, None, "no certificate");
    let stranger = Ca::new("other CA").client("dev1");
    assert_eq!(
        mtls_try(&b, &ca, Some(&stranger), c()).await,
        None,
        "certificate from another CA"
    );
    let good = ca.client("dev1");
    assert_eq!(mtls_try(&b, &ca, Some(&good), c()).await, Some(Accepted));
    wait_handshake_failures(&b, 2, "handshake failures counted").await;
}

#[tokio::test]
async fn certificate_cn_is_the_username_for_the_acl() {
    let dir = temp_dir("cn");
    let ca = Ca::new("test CA");
    let l = mtls_listener(&dir, &ca, true);
    let acl = write(&dir, "acl", "pattern readwrite devices/%u/#\n");
    let b = start_with(|c| {
        c.listeners.push(l);
        c.auth.acl_file = Some(acl);
        c.auth.allow_anonymous = false;
    })
    .await;
    let cert = ca.client("dev1");
    // The CONNECT username is ignored: the certificate says dev1.
    let c = connect_as("x", Some("dev2"), Some("whatever"));
    let mut s = tls_client(addr_of(&b, "mtls"), &ca, Some(&cert), c).await;
    assert_eq!(s.subscribe("devices/dev1/#", QoS::AtMostOnce).await, 0);
    assert_eq!(s.subscribe("devices/dev2/#", QoS::AtMostOnce).await, 0x80);
    assert_eq!(metric(&b, |m| &m.acl_denied_subscribe), 1);
}

#[tokio::test]
async fn a_stalled_tls_handshake_blocks_nobody_and_times_out() {
    let dir = temp_dir("stall");
    let ca = Ca::new("test CA");
    let mut l = tls_listener("tls", ListenerProtocol::Tls, &dir, &ca);
    l.tls_handshake_timeout = Some(Duration::from_millis(1500));
    let b = start_with(|c| c.listeners.push(l)).await;
    let addr = addr_of(&b, "tls");

    // One client connects and sends nothing; another sends half a ClientHello.
    let mut silent = TcpStream::connect(addr).await.expect("tcp");
    let mut half = TcpStream::connect(addr).await.expect("tcp");
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("write");

    let started = Instant::now();
    let mut s = tls_client(addr, &ca, None, connect_packet("ok", true)).await;
    assert_eq!(s.subscribe("x", QoS::AtMostOnce).await, 0);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "not held up"
    );

    // Both stalled sockets are closed after tls_handshake_timeout.
    for sock in [&mut silent, &mut half] {
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(WAIT, sock.read(&mut buf)).await;
        assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "closed: {r:?}");
    }
    wait_handshake_failures(&b, 2, "stalled handshakes counted").await;
}

#[tokio::test]
async fn bad_certificate_paths_fail_start_with_the_path() {
    let dir = temp_dir("badpath");
    let ca = Ca::new("test CA");
    let mut l = tls_listener("secure", ListenerProtocol::Tls, &dir, &ca);
    l.cert_file = Some(dir.join("missing.crt"));
    let mut cfg = common::test_config();
    cfg.listeners.push(l.clone());
    let e = Broker::start(cfg, CancellationToken::new())
        .await
        .expect_err("missing cert");
    let msg = e.to_string();
    assert!(
        msg.contains("secure") && msg.contains("missing.crt"),
        "{msg}"
    );
    assert!(msg.contains("cert_file"), "{msg}");

    // A key file that holds no key.
    let mut l2 = tls_listener("secure", ListenerProtocol::Tls, &dir, &ca);
    l2.key_file = Some(write(&dir, "empty.key", "not a key\n"));
    let mut cfg = common::test_config();
    cfg.listeners.push(l2);
    let msg = Broker::start(cfg, CancellationToken::new())
        .await
        .expect_err("bad key")
        .to_string();
    assert!(
        msg.contains("empty.key") && msg.contains("key_file"),
        "{msg}"
    );
}

#[test]
fn test_config_flag_checks_the_tls_files() {
    let dir = temp_dir("dash-t");
    let ca = Ca::new("test CA");
    let server = ca.server();
    let cert = write(&dir, "server.crt", &server.cert_pem);
    let key = write(&dir, "server.key", &server.key_pem);
    let conf = |cert: &Path| {
        write(
            &dir,
            "supermq.toml",
            &format!(
                "[[listener]]\nname = \"secure\"\nprotocol = \"tls\"\nbind = \"127.0.0.1:0\"\n\
                 cert_file = \"{}\"\nkey_file = \"{}\"\n[http]\nenabled = false\n",
                cert.display(),
                key.display()
            ),
        )
    };
    let check = |conf: &Path| {
        supermq_command()
            .arg("-c")
            .arg(conf)
            .arg("-t")
            .output()
            .expect("run supermq -t")
    };
    let ok = check(&conf(&cert));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = check(&conf(&dir.join("nope.crt")));
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("secure") && stderr.contains("nope.crt"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------

async fn ws_exchange<S>(mut ws: Raw<Ws<S>>, b: &TestBroker)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    assert_eq!(ws.protocol(), Some("mqtt"), "subprotocol echoed");
    // CONNECT split across two frames.
    let out = encode_all(&[Packet::from(connect_packet("ws", true))]);
    ws.send_frames(&out, &[3]).await;
    match ws.recv().await {
        Packet::ConnAck(a) => assert_eq!(a.return_code(), Accepted),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    ws.send(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: vec![SubscribeFilter::new("ws/in", QoS::AtLeastOnce)],
        properties: Properties::new(),
    }))
    .await;
    assert!(matches!(ws.recv().await, Packet::SubAck(_)));

    let mut tcp = Raw::connect(b.addr, "tcp").await;
    tcp.subscribe("ws/out/+", QoS::AtMostOnce).await;
    tcp.publish("ws/in", b"to ws", QoS::AtMostOnce, false).await;
    assert_eq!(
        payload_of(ws.recv().await),
        ("ws/in".into(), "to ws".into())
    );
    // A large payload (copied into the write buffer for WebSocket, see src/session/outbox.rs).
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    tcp.publish("ws/in", &big, QoS::AtMostOnce, false).await;
    match ws.recv().await {
        Packet::Publish(p) => assert!(p.payload[..] == big[..], "large payload differs"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }

    // Two PUBLISH packets in one frame, then one split over three frames.
    let two = encode_all(&[
        publish_packet("ws/out/1", QoS::AtMostOnce, 0, b"a"),
        publish_packet("ws/out/2", QoS::AtMostOnce, 0, b"b"),
    ]);
    ws.send_frames(&two, &[]).await;
    let split = encode_all(&[publish_packet("ws/out/3", QoS::AtMostOnce, 0, b"c")]);
    ws.send_frames(&split, &[1, 4]).await;
    for want in ["a", "b", "c"] {
        assert_eq!(&tcp.recv_publish().await.payload[..], want.as_bytes());
    }
}

#[tokio::test]
async fn websocket_pub_sub_with_split_and_joined_frames() {
    let b = start_with(|c| c.listeners.push(listener("ws", ListenerProtocol::Ws))).await;
    let addr = addr_of(&b, "ws");
    let tcp = TcpStream::connect(addr).await.expect("tcp");
    let ws = ws_handshake(tcp, addr, "/mqtt", Some("mqtt"))
        .await
        .expect("ws");
    ws_exchange(ws, &b).await;
}

#[tokio::test]
async fn secure_websocket_pub_sub() {
    let dir = temp_dir("wss");
    let ca = Ca::new("test CA");
    let l = tls_listener("wss", ListenerProtocol::Wss, &dir, &ca);
    let b = start_with(|c| c.listeners.push(l)).await;
    let addr = addr_of(&b, "wss");
    let tls = tls_connect(addr, &tls_connector(&ca, None))
        .await
        .expect("tls");
    let ws = ws_handshake(tls, addr, "/mqtt", Some("mqtt"))
        .await
        .expect("wss");
    ws_exchange(ws, &b).await;
}

#[tokio::test]
async fn websocket_path_and_subprotocol_rules() {
    use tokio_tungstenite::tungstenite::Error;
    let mut l = listener("ws", ListenerProtocol::Ws);
    l.ws_path = "/broker".into();
    let b = start_with(|c| c.listeners.push(l)).await;
    let addr = addr_of(&b, "ws");
    let open = || async { TcpStream::connect(addr).await.expect("tcp") };

    match ws_handshake(open().await, addr, "/mqtt", Some("mqtt")).await {
        Err(Error::Http(resp)) => assert_eq!(resp.status(), 404),
        Err(e) => panic!("expected HTTP 404, got {e}"),
        Ok(_) => panic!("expected HTTP 404, got an upgrade"),
    }
    match ws_handshake(open().await, addr, "/broker", Some("chat")).await {
        Err(Error::Http(resp)) => assert_eq!(resp.status(), 400),
        Err(e) => panic!("expected HTTP 400, got {e}"),
        Ok(_) => panic!("expected HTTP 400, got an upgrade"),
    }
    // The older subprotocol name is accepted and echoed.
    let ws = ws_handshake(open().await, addr, "/broker", Some("mqttv3.1"))
        .await
        .expect("mqttv3.1");
    assert_eq!(ws.protocol(), Some("mqttv3.1"));
    // No subprotocol offered: accepted (documented), nothing echoed, MQTT works.
    let mut ws = ws_handshake(open().await, addr, "/broker", None)
        .await
        .expect("no subprotocol");
    assert_eq!(ws.protocol(), None);
    ws.send(&Packet::from(connect_packet("plain-ws", true)))
        .await;
    assert!(matches!(ws.recv().await, Packet::ConnAck(a) if a.return_code() == Accepted));
    wait_handshake_failures(&b, 2, "refused upgrades counted").await;
}
