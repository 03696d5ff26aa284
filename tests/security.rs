//! Security and extra transports against a real broker on 127.0.0.1:0: TLS (plain and
//! mutual), WebSocket and secure WebSocket ([`transport`]); password files (ours and
//! mosquitto_passwd's), ACLs, the HTTP authentication hook and reloading on SIGHUP
//! ([`auth`]). Helpers shared by both are here; test fixtures are in [`support`].

#[path = "security/auth.rs"]
mod auth;
mod common;
#[path = "security/support.rs"]
mod support;
#[path = "security/transport.rs"]
mod transport;

use std::path::Path;

use common::{connect_packet, Raw, TestBroker};
use supermq::codec::{
    ConnectReturnCode, Packet, Properties, QoS, SubAck, Subscribe, SubscribeFilter,
};
use supermq::config::{ListenerConfig, ListenerProtocol};
use support::{write_server_files, Ca, Stream};

pub(crate) fn listener(name: &str, protocol: ListenerProtocol) -> ListenerConfig {
    ListenerConfig {
        name: name.to_owned(),
        protocol,
        bind: "127.0.0.1:0".parse().expect("addr"),
        ..ListenerConfig::default()
    }
}

/// A `tls` or `wss` listener with the server files from `dir`.
pub(crate) fn tls_listener(
    name: &str,
    protocol: ListenerProtocol,
    dir: &Path,
    ca: &Ca,
) -> ListenerConfig {
    let (_, cert, key) = write_server_files(dir, ca);
    ListenerConfig {
        cert_file: Some(cert),
        key_file: Some(key),
        ..listener(name, protocol)
    }
}

pub(crate) fn addr_of(b: &TestBroker, name: &str) -> std::net::SocketAddr {
    b.broker.listener_addr(name).expect("listener")
}

pub(crate) fn connect_as(
    id: &str,
    user: Option<&str>,
    pass: Option<&str>,
) -> supermq::codec::Connect {
    let mut c = connect_packet(id, true);
    c.username = user.map(Into::into);
    c.password = pass.map(|p| bytes::Bytes::copy_from_slice(p.as_bytes()));
    c
}

/// CONNECT over plain TCP; the CONNACK code.
pub(crate) async fn connack(b: &TestBroker, c: supermq::codec::Connect) -> ConnectReturnCode {
    let mut r = Raw::open(b.addr).await;
    r.send(&Packet::from(c)).await;
    match r.recv().await {
        Packet::ConnAck(a) => a.return_code(),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

pub(crate) async fn subscribe<S>(s: &mut Stream<S>, filter: &str) -> u8
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let pkid = s.pkid();
    s.send(&Packet::Subscribe(Subscribe {
        pkid,
        filters: vec![SubscribeFilter::new(filter.to_owned(), QoS::AtMostOnce)],
        properties: Properties::new(),
    }))
    .await;
    match s.recv().await {
        Packet::SubAck(SubAck { reasons, .. }) => reasons[0].to_u8(),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

pub(crate) fn publish(topic: &str, payload: &str) -> Packet {
    Packet::Publish(supermq::codec::Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        pkid: 0,
        payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
        properties: Properties::new(),
    })
}

pub(crate) fn payload_of(p: Packet) -> (String, String) {
    match p {
        Packet::Publish(p) => (
            p.topic.to_string(),
            String::from_utf8_lossy(&p.payload).into_owned(),
        ),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

pub(crate) fn run(cmd: &mut std::process::Command) -> std::process::Output {
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

#[test]
fn shipped_config_still_parses_with_security_keys_commented() {
    let text = include_str!("../config/appserver.conf");
    let c = supermq::Config::from_toml_str(text).expect("shipped config");
    assert_eq!(c.auth.password_file, None);
    assert_eq!(c.listeners[0].protocol, ListenerProtocol::Tcp);
}
