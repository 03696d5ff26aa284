//! Security and extra transports against a real broker on 127.0.0.1:0: TLS (plain and
//! mutual), WebSocket and secure WebSocket, password files (ours and mosquitto_passwd's),
//! ACLs, the HTTP authentication hook, and reloading on SIGHUP.

mod common;
#[path = "security_support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{barrier, connect_packet, metric, start_with, until_barrier, Raw, TestBroker, WAIT};
use supermq::codec::{ConnectReturnCode, Packet, QoS, SubAck, Subscribe, SubscribeFilter};
use supermq::config::{HttpAuthConfig, ListenerConfig, ListenerProtocol};
use supermq::{Broker, Config};
use support::{tls_connect, tls_connector, write, write_server_files, Ca, HookServer, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use ConnectReturnCode::{Accepted, BadUsernameOrPassword, NotAuthorized};

fn listener(name: &str, protocol: ListenerProtocol) -> ListenerConfig {
    ListenerConfig {
        name: name.to_owned(),
        protocol,
        bind: "127.0.0.1:0".parse().expect("addr"),
        ..ListenerConfig::default()
    }
}

/// A `tls` or `wss` listener with the server files from `dir`.
fn tls_listener(name: &str, protocol: ListenerProtocol, dir: &Path, ca: &Ca) -> ListenerConfig {
    let (_, cert, key) = write_server_files(dir, ca);
    ListenerConfig {
        cert_file: Some(cert),
        key_file: Some(key),
        ..listener(name, protocol)
    }
}

fn addr_of(b: &TestBroker, name: &str) -> std::net::SocketAddr {
    b.broker.listener_addr(name).expect("listener")
}

fn connect_as(id: &str, user: Option<&str>, pass: Option<&str>) -> supermq::codec::Connect {
    let mut c = connect_packet(id, true);
    c.username = user.map(Into::into);
    c.password = pass.map(|p| bytes::Bytes::copy_from_slice(p.as_bytes()));
    c
}

/// CONNECT over plain TCP; the CONNACK code.
async fn connack(b: &TestBroker, c: supermq::codec::Connect) -> ConnectReturnCode {
    let mut r = Raw::open(b.addr).await;
    r.send(&Packet::Connect(c)).await;
    match r.recv().await {
        Packet::ConnAck(a) => a.code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

async fn subscribe<S>(s: &mut Stream<S>, filter: &str) -> u8
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let pkid = s.pkid();
    s.send(&Packet::Subscribe(Subscribe {
        pkid,
        filters: vec![SubscribeFilter {
            filter: filter.to_owned(),
            qos: QoS::AtMostOnce,
        }],
    }))
    .await;
    match s.recv().await {
        Packet::SubAck(SubAck { codes, .. }) => codes[0].to_u8(),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn publish(topic: &str, payload: &str) -> Packet {
    Packet::Publish(supermq::codec::Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        pkid: 0,
        payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
    })
}

fn payload_of(p: Packet) -> (String, String) {
    match p {
        Packet::Publish(p) => (
            p.topic.to_string(),
            String::from_utf8_lossy(&p.payload).into_owned(),
        ),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn tls_pub_sub_with_a_tcp_client() {
    let dir = support::temp_dir("tls");
    let ca = Ca::new("server CA");
    let l = tls_listener("tls", ListenerProtocol::Tls, &dir, &ca);
    let b = start_with(|c| c.listeners.push(l)).await;

    let tls = tls_connect(addr_of(&b, "tls"), &tls_connector(&ca, None))
        .await
        .expect("tls");
    let mut s = Stream::new(tls);
    assert_eq!(
        s.connect(connect_packet("tls-sub", true)).await,
        Some(Accepted)
    );
    assert_eq!(subscribe(&mut s, "t/#").await, 0);

    let mut tcp = Raw::connect(b.addr, "tcp-pub").await;
    tcp.publish("t/1", b"over tls", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(
        payload_of(s.recv().await),
        ("t/1".into(), "over tls".into())
    );

    tcp.subscribe("back", QoS::AtMostOnce).await;
    s.send(&publish("back", "from tls")).await;
    let p = tcp.recv_publish().await;
    assert_eq!(&p.payload[..], b"from tls");
}

/// Connects over TLS with `client`'s certificate and sends CONNECT: the CONNACK code, or
/// `None` when the handshake or the connection failed.
async fn mtls_try(
    b: &TestBroker,
    server_ca: &Ca,
    client: Option<&support::Leaf>,
    c: supermq::codec::Connect,
) -> Option<ConnectReturnCode> {
    let tls = tls_connect(addr_of(b, "mtls"), &tls_connector(server_ca, client))
        .await
        .ok()?;
    let mut s = Stream::new(tls);
    // With TLS 1.3 a refused client certificate shows up after the client's side of the
    // handshake, as an alert or a close on the first read.
    s.io.write_all(&{
        let mut out = bytes::BytesMut::new();
        supermq::codec::encode(&Packet::Connect(c), &mut out);
        out
    })
    .await
    .ok()?;
    match s.try_recv().await? {
        Packet::ConnAck(a) => Some(a.code),
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
    let dir = support::temp_dir("mtls");
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
    common::wait_until("handshake failures counted", || {
        metric(&b, |m| &m.handshake_failures) >= 2
    })
    .await;
}

#[tokio::test]
async fn certificate_cn_is_the_username_for_the_acl() {
    let dir = support::temp_dir("cn");
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
    let tls = tls_connect(addr_of(&b, "mtls"), &tls_connector(&ca, Some(&cert)))
        .await
        .expect("tls");
    let mut s = Stream::new(tls);
    // The CONNECT username is ignored: the certificate says dev1.
    let c = connect_as("x", Some("dev2"), Some("whatever"));
    assert_eq!(s.connect(c).await, Some(Accepted));
    assert_eq!(subscribe(&mut s, "devices/dev1/#").await, 0);
    assert_eq!(subscribe(&mut s, "devices/dev2/#").await, 0x80);
    assert_eq!(metric(&b, |m| &m.acl_denied_subscribe), 1);
}

#[tokio::test]
async fn a_stalled_tls_handshake_blocks_nobody_and_times_out() {
    let dir = support::temp_dir("stall");
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
    let tls = tls_connect(addr, &tls_connector(&ca, None))
        .await
        .expect("tls");
    let mut s = Stream::new(tls);
    assert_eq!(s.connect(connect_packet("ok", true)).await, Some(Accepted));
    assert_eq!(subscribe(&mut s, "x").await, 0);
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
    common::wait_until("stalled handshakes counted", || {
        metric(&b, |m| &m.handshake_failures) >= 2
    })
    .await;
}

#[tokio::test]
async fn bad_certificate_paths_fail_start_with_the_path() {
    let dir = support::temp_dir("badpath");
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

// ---------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------

async fn ws_exchange<S>(mut ws: support::Ws<S>, b: &TestBroker)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    assert_eq!(ws.protocol.as_deref(), Some("mqtt"), "subprotocol echoed");
    // CONNECT split across two frames.
    let mut out = bytes::BytesMut::new();
    supermq::codec::encode(&Packet::Connect(connect_packet("ws", true)), &mut out);
    ws.send_frames(&out, &[3]).await;
    match ws.recv().await {
        Packet::ConnAck(a) => assert_eq!(a.code, Accepted),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    ws.send(&Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: vec![SubscribeFilter {
            filter: "ws/in".into(),
            qos: QoS::AtLeastOnce,
        }],
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

    // Two PUBLISH packets in one frame, then one split over three frames.
    let mut two = bytes::BytesMut::new();
    supermq::codec::encode(&publish("ws/out/1", "a"), &mut two);
    supermq::codec::encode(&publish("ws/out/2", "b"), &mut two);
    ws.send_frames(&two, &[]).await;
    let mut split = bytes::BytesMut::new();
    supermq::codec::encode(&publish("ws/out/3", "c"), &mut split);
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
    let ws = support::ws_handshake(tcp, addr, "/mqtt", Some("mqtt"))
        .await
        .expect("ws");
    ws_exchange(ws, &b).await;
}

#[tokio::test]
async fn secure_websocket_pub_sub() {
    let dir = support::temp_dir("wss");
    let ca = Ca::new("test CA");
    let l = tls_listener("wss", ListenerProtocol::Wss, &dir, &ca);
    let b = start_with(|c| c.listeners.push(l)).await;
    let addr = addr_of(&b, "wss");
    let tls = tls_connect(addr, &tls_connector(&ca, None))
        .await
        .expect("tls");
    let ws = support::ws_handshake(tls, addr, "/mqtt", Some("mqtt"))
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

    match support::ws_handshake(open().await, addr, "/mqtt", Some("mqtt")).await {
        Err(Error::Http(resp)) => assert_eq!(resp.status(), 404),
        Err(e) => panic!("expected HTTP 404, got {e}"),
        Ok(_) => panic!("expected HTTP 404, got an upgrade"),
    }
    match support::ws_handshake(open().await, addr, "/broker", Some("chat")).await {
        Err(Error::Http(resp)) => assert_eq!(resp.status(), 400),
        Err(e) => panic!("expected HTTP 400, got {e}"),
        Ok(_) => panic!("expected HTTP 400, got an upgrade"),
    }
    // The older subprotocol name is accepted and echoed.
    let ws = support::ws_handshake(open().await, addr, "/broker", Some("mqttv3.1"))
        .await
        .expect("mqttv3.1");
    assert_eq!(ws.protocol.as_deref(), Some("mqttv3.1"));
    // No subprotocol offered: accepted (documented), nothing echoed, MQTT works.
    let mut ws = support::ws_handshake(open().await, addr, "/broker", None)
        .await
        .expect("no subprotocol");
    assert_eq!(ws.protocol, None);
    ws.send(&Packet::Connect(connect_packet("plain-ws", true)))
        .await;
    assert!(matches!(ws.recv().await, Packet::ConnAck(a) if a.code == Accepted));
    common::wait_until("refused upgrades counted", || {
        metric(&b, |m| &m.handshake_failures) >= 2
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Password files
// ---------------------------------------------------------------------------------------

fn run(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (apt-get install -y mosquitto)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn mosquitto_passwd_files_work_as_is() {
    let dir = support::temp_dir("mosq");
    let file = dir.join("passwd");
    run(std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&file)
        .args(["alice", "s3cret"]));
    run(std::process::Command::new("mosquitto_passwd")
        .args(["-H", "sha512", "-b"])
        .arg(&file)
        .args(["old", "legacy"]));
    let b = start_with(|c| {
        c.auth.password_file = Some(file.clone());
        c.auth.allow_anonymous = false;
    })
    .await;
    assert_eq!(
        connack(&b, connect_as("a", Some("alice"), Some("s3cret"))).await,
        Accepted
    );
    assert_eq!(
        connack(&b, connect_as("o", Some("old"), Some("legacy"))).await,
        Accepted
    );
    assert_eq!(
        connack(&b, connect_as("a", Some("alice"), Some("wrong"))).await,
        BadUsernameOrPassword
    );
    assert_eq!(
        connack(&b, connect_as("a", Some("alice"), None)).await,
        BadUsernameOrPassword
    );
    assert_eq!(
        connack(&b, connect_as("b", Some("bob"), Some("x"))).await,
        NotAuthorized
    );
    assert_eq!(
        connack(&b, connect_as("n", None, None)).await,
        NotAuthorized
    );
    assert_eq!(metric(&b, |m| &m.auth_failures), 4);
}

#[tokio::test]
async fn supermq_passwd_entries_work_here_and_in_mosquitto() {
    let dir = support::temp_dir("ours");
    let file = dir.join("passwd");
    let bin = env!("CARGO_BIN_EXE_supermq");
    run(std::process::Command::new(bin)
        .args(["passwd", "-c", "-b"])
        .arg(&file)
        .args(["carol", "pw-one"]));
    // Without -b the password is one line of standard input.
    let mut child = std::process::Command::new(bin)
        .arg("passwd")
        .arg(&file)
        .arg("dave")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"pw two\n")
        .expect("write");
    assert!(child.wait().expect("wait").success());
    // Updating a user replaces its line.
    run(std::process::Command::new(bin)
        .args(["passwd", "-b"])
        .arg(&file)
        .args(["carol", "pw-three"]));
    let text = std::fs::read_to_string(&file).expect("read");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().all(|l| l.contains(":$7$101$")), "{text}");

    let b = start_with(|c| {
        c.auth.password_file = Some(file.clone());
        c.auth.allow_anonymous = false;
    })
    .await;
    assert_eq!(
        connack(&b, connect_as("c", Some("carol"), Some("pw-three"))).await,
        Accepted
    );
    assert_eq!(
        connack(&b, connect_as("c", Some("carol"), Some("pw-one"))).await,
        BadUsernameOrPassword
    );
    assert_eq!(
        connack(&b, connect_as("d", Some("dave"), Some("pw two"))).await,
        Accepted
    );

    // mosquitto itself reads the file and accepts the password.
    mosquitto_accepts(&dir, &file, "dave", "pw two").await;
}

/// Starts a real mosquitto broker on `file` and checks that `user` / `pass` connects.
async fn mosquitto_accepts(dir: &Path, file: &Path, user: &str, pass: &str) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let conf = write(
        dir,
        "mosquitto.conf",
        &format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            file.display()
        ),
    );
    let mut child = tokio::process::Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto (apt-get install -y mosquitto)");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + WAIT;
    let stream = loop {
        match TcpStream::connect(addr).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("mosquitto did not start: {e}"),
        }
    };
    let mut s = Stream::new(stream);
    let code = s
        .connect(connect_as("mosq-check", Some(user), Some(pass)))
        .await;
    let mut bad = Stream::new(TcpStream::connect(addr).await.expect("tcp"));
    let wrong = bad
        .connect(connect_as("mosq-bad", Some(user), Some("nope")))
        .await;
    let _ = child.kill().await;
    assert_eq!(code, Some(Accepted), "mosquitto accepts our hash");
    assert_ne!(wrong, Some(Accepted), "and checks it");
}

// ---------------------------------------------------------------------------------------
// ACL
// ---------------------------------------------------------------------------------------

const ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read public/#
topic write public/alice

pattern readwrite devices/%c/#
pattern read inbox/%u
";

#[tokio::test]
async fn acl_controls_subscribe_publish_and_will() {
    let dir = support::temp_dir("acl");
    let acl = write(&dir, "acl", ACL);
    let b = start_with(|c| c.auth.acl_file = Some(acl)).await;

    let (mut alice, _) =
        Raw::connect_with(b.addr, connect_as("c-alice", Some("alice"), None)).await;
    let codes = alice
        .subscribe_many(&[
            ("alice/#", QoS::AtLeastOnce),
            ("public/+", QoS::AtLeastOnce),
            ("inbox/alice", QoS::AtLeastOnce),
            ("inbox/bob", QoS::AtLeastOnce),
            ("#", QoS::AtLeastOnce),
            ("devices/c-alice/#", QoS::AtLeastOnce),
        ])
        .await;
    assert_eq!(codes, vec![1, 1, 1, 0x80, 0x80, 1]);
    assert_eq!(metric(&b, |m| &m.acl_denied_subscribe), 2);

    let (mut anon, _) = Raw::connect_with(b.addr, connect_as("dev9", None, None)).await;
    assert_eq!(anon.subscribe("alice/#", QoS::AtMostOnce).await, 0x80);
    assert_eq!(anon.subscribe("devices/dev9/cmd", QoS::AtMostOnce).await, 0);

    // Denied publishes are dropped, QoS 1 still acknowledged (Raw::publish waits for PUBACK).
    anon.publish("public/news", b"denied", QoS::AtLeastOnce, false)
        .await;
    anon.publish("alice/x", b"denied too", QoS::AtMostOnce, false)
        .await;
    alice
        .publish("public/alice", b"allowed", QoS::AtLeastOnce, false)
        .await;
    alice
        .publish(
            "devices/dev9/cmd",
            b"not alice's device",
            QoS::AtMostOnce,
            false,
        )
        .await;
    barrier(&mut alice, "alice/barrier").await;
    let got = until_barrier(&mut alice, "alice/barrier").await;
    let payloads: Vec<_> = got.iter().map(|p| p.payload.to_vec()).collect();
    assert_eq!(payloads, vec![b"allowed".to_vec()]);
    assert_eq!(metric(&b, |m| &m.acl_denied_publish), 3);

    // A device publishes on its own topics (pattern %c).
    anon.publish("devices/dev9/cmd", b"self", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(&anon.recv_publish().await.payload[..], b"self");

    // A will the client may not publish refuses the CONNECT.
    let mut c = connect_as("dev9w", None, None);
    c.will = Some(common::will("alice/will", "x", QoS::AtMostOnce, false));
    assert_eq!(connack(&b, c).await, NotAuthorized);
    let mut c = connect_as("dev9w", None, None);
    c.will = Some(common::will(
        "devices/dev9w/status",
        "gone",
        QoS::AtMostOnce,
        false,
    ));
    assert_eq!(connack(&b, c).await, Accepted);
}

// ---------------------------------------------------------------------------------------
// HTTP authentication hook
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn http_hook_allows_denies_times_out_and_caches() {
    let hook = HookServer::start().await;
    let mut cfg = HttpAuthConfig::new(hook.url());
    cfg.timeout = Duration::from_millis(300);
    let b = start_with(|c| {
        c.auth.http = Some(cfg);
        c.auth.allow_anonymous = false;
    })
    .await;

    assert_eq!(
        connack(&b, connect_as("h1", Some("good"), Some("pw"))).await,
        Accepted
    );
    assert_eq!(hook.requests(), 1);
    let body = hook.bodies.lock()[0].clone();
    assert_eq!(body["clientid"], "h1");
    assert_eq!(body["username"], "good");
    assert_eq!(body["password"], "pw");
    assert!(body["peer"]
        .as_str()
        .expect("peer")
        .starts_with("127.0.0.1:"));

    // Same credentials again: answered from the cache.
    assert_eq!(
        connack(&b, connect_as("h1", Some("good"), Some("pw"))).await,
        Accepted
    );
    assert_eq!(hook.requests(), 1, "cached");

    assert_eq!(
        connack(&b, connect_as("h2", Some("bad"), Some("pw"))).await,
        BadUsernameOrPassword
    );
    assert_eq!(hook.requests(), 2);

    let started = Instant::now();
    assert_eq!(
        connack(&b, connect_as("h3", Some("slow"), Some("pw"))).await,
        NotAuthorized
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "denied after the timeout: {took:?}"
    );
    // Anonymous clients are not sent to the hook.
    assert_eq!(
        connack(&b, connect_as("h4", None, None)).await,
        NotAuthorized
    );
    assert_eq!(hook.requests(), 3);
    assert_eq!(metric(&b, |m| &m.auth_failures), 3);
}

// ---------------------------------------------------------------------------------------
// Reload (SIGHUP)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reload_swaps_passwords_without_dropping_connections() {
    let dir = support::temp_dir("reload");
    let file = dir.join("passwd");
    supermq::auth::passwd::set_password(&file, "alice", "one", true).expect("passwd");
    let b = start_with(|c| {
        c.auth.password_file = Some(file.clone());
        c.auth.allow_anonymous = false;
    })
    .await;
    let (mut kept, _) =
        Raw::connect_with(b.addr, connect_as("kept", Some("alice"), Some("one"))).await;

    supermq::auth::passwd::set_password(&file, "alice", "two", false).expect("passwd");
    b.broker.reload_auth().expect("reload");
    assert_eq!(
        connack(&b, connect_as("n", Some("alice"), Some("two"))).await,
        Accepted
    );
    assert_eq!(
        connack(&b, connect_as("o", Some("alice"), Some("one"))).await,
        BadUsernameOrPassword
    );
    kept.ping().await;

    // A broken file is refused and the loaded one stays.
    std::fs::write(&file, "alice\n").expect("write");
    let e = b.broker.reload_auth().expect_err("bad file");
    assert!(e.to_string().contains("line 1"), "{e}");
    assert_eq!(
        connack(&b, connect_as("n2", Some("alice"), Some("two"))).await,
        Accepted
    );
    kept.ping().await;
}

#[tokio::test]
async fn sighup_reloads_the_running_binary() {
    let dir = support::temp_dir("hup");
    let file = dir.join("passwd");
    supermq::auth::passwd::set_password(&file, "alice", "one", true).expect("passwd");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let conf = write(
        &dir,
        "supermq.toml",
        &format!(
            "[[listener]]\nbind = \"127.0.0.1:{port}\"\n[auth]\nallow_anonymous = false\n\
             password_file = \"{}\"\n[sys]\ninterval = \"0s\"\n",
            file.display()
        ),
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_supermq"))
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn supermq");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let try_connect = |pass: &'static str| async move {
        let mut s = Stream::new(TcpStream::connect(addr).await.ok()?);
        s.connect(connect_as("hup", Some("alice"), Some(pass)))
            .await
    };
    let deadline = Instant::now() + WAIT;
    while try_connect("one").await != Some(Accepted) {
        assert!(Instant::now() < deadline, "supermq did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut kept = Stream::new(TcpStream::connect(addr).await.expect("tcp"));
    let c = connect_as("kept", Some("alice"), Some("one"));
    assert_eq!(kept.connect(c).await, Some(Accepted));

    supermq::auth::passwd::set_password(&file, "alice", "two", false).expect("passwd");
    let pid = child.id().expect("pid").to_string();
    run(std::process::Command::new("kill").args(["-HUP", &pid]));
    let deadline = Instant::now() + WAIT;
    while try_connect("two").await != Some(Accepted) {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the password file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kept.send(&Packet::PingReq).await;
    assert_eq!(kept.recv().await, Packet::PingResp, "connection kept");
    assert!(child.try_wait().expect("status").is_none(), "still running");
    run(std::process::Command::new("kill").args(["-TERM", &pid]));
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status:?}");
}

#[test]
fn shipped_config_still_parses_with_security_keys_commented() {
    let text = include_str!("../config/appserver.conf");
    let c = Config::from_toml_str(text).expect("shipped config");
    assert_eq!(c.auth.password_file, None);
    assert_eq!(c.listeners[0].protocol, ListenerProtocol::Tcp);
}
