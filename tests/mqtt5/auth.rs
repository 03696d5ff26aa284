//! Enhanced authentication (MQTT 5.0 §4.12): SCRAM-SHA-512 against the password file at
//! CONNECT (with the server's final message checked by the client), a wrong password, an
//! unknown method, re-authentication, and AUTH from a client that never started one.

use bytes::Bytes;
use supermq::auth::scram::SHA512;
use supermq::auth::scram_client::ScramClient;
use supermq::codec::{Auth, Packet, QoS, ReasonCode};

use crate::common::process::temp_dir;
use crate::common::{connect5, start_with, Raw, TestBroker};
use crate::{expect_disconnect, props, v5, values};

const METHOD: &str = "SCRAM-SHA-512";

async fn with_users() -> TestBroker {
    let dir = temp_dir("mqtt5-scram");
    let file = dir.join("passwd");
    supermq::auth::passwd::set_password(&file, "alice", "wonderland", true).expect("passwd");
    start_with(move |c| {
        c.auth.password_file = Some(file);
        c.auth.allow_anonymous = true;
    })
    .await
}

fn auth(reason: ReasonCode, data: Option<String>) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: props(|v| {
            v.authentication_method = Some(METHOD.into());
            v.authentication_data = data.map(Bytes::from);
        })
        .into(),
    })
}

/// The data of an AUTH with `reason`, which must be the next packet.
async fn auth_data(c: &mut Raw, reason: ReasonCode) -> Bytes {
    match c.recv().await {
        Packet::Auth(a) => {
            assert_eq!(a.reason, reason, "{a:?}");
            let v = values(&a.properties);
            assert_eq!(v.authentication_method.as_deref(), Some(METHOD));
            v.authentication_data.expect("Authentication Data")
        }
        other => panic!("expected AUTH {reason:?}, got {other:?}"),
    }
}

/// Runs the SCRAM exchange at CONNECT as `user` with `password`; the connection and its
/// CONNACK's reason code and Authentication Data.
async fn scram_connect(
    b: &TestBroker,
    user: &str,
    password: &str,
) -> (Raw, ScramClient, u8, Option<Bytes>) {
    let mut scram = ScramClient::new(SHA512, user, password.as_bytes());
    let c = connect5(
        "scram",
        true,
        props(|v| {
            v.authentication_method = Some(METHOD.into());
            v.authentication_data = Some(Bytes::from(scram.first()));
        }),
    );
    let mut r = Raw::open(b.addr).await;
    r.send(&Packet::from(c)).await;
    let server_first = auth_data(&mut r, ReasonCode::ContinueAuthentication).await;
    let fin = scram.finish(&server_first).expect("server-first");
    r.send(&auth(ReasonCode::ContinueAuthentication, Some(fin)))
        .await;
    match r.recv().await {
        Packet::ConnAck(a) => {
            let data = values(&a.properties).authentication_data;
            (r, scram, a.reason.to_u8(), data)
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn scram_sha_512_at_connect_authenticates_both_ways() {
    let b = with_users().await;
    let (mut r, scram, code, data) = scram_connect(&b, "alice", "wonderland").await;
    assert_eq!(code, 0);
    scram
        .verify(&data.expect("server-final in the CONNACK"))
        .expect("the server proves it knows the password");
    assert_eq!(
        r.subscribe("t", QoS::AtLeastOnce).await,
        1,
        "the session works"
    );
}

#[tokio::test]
async fn a_wrong_password_gets_connack_0x87() {
    let b = with_users().await;
    let (mut r, _, code, _) = scram_connect(&b, "alice", "looking-glass").await;
    assert_eq!(code, 0x87);
    r.expect_closed().await;
}

#[tokio::test]
async fn an_unknown_method_gets_connack_0x8c() {
    let b = with_users().await;
    let c = connect5(
        "m",
        true,
        props(|v| v.authentication_method = Some("GS2-KRB5".into())),
    );
    let mut r = Raw::open(b.addr).await;
    r.send(&Packet::from(c)).await;
    match r.recv().await {
        Packet::ConnAck(a) => assert_eq!(a.reason.to_u8(), 0x8C),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn re_authentication_ends_with_auth_success() {
    let b = with_users().await;
    let (mut r, _, code, _) = scram_connect(&b, "alice", "wonderland").await;
    assert_eq!(code, 0);
    let mut again = ScramClient::new(SHA512, "alice", b"wonderland");
    r.send(&auth(ReasonCode::ReAuthenticate, Some(again.first())))
        .await;
    let server_first = auth_data(&mut r, ReasonCode::ContinueAuthentication).await;
    let fin = again.finish(&server_first).expect("server-first");
    r.send(&auth(ReasonCode::ContinueAuthentication, Some(fin)))
        .await;
    let server_final = auth_data(&mut r, ReasonCode::Success).await;
    again.verify(&server_final).expect("server-final");
    r.ping().await;
}

#[tokio::test]
async fn auth_without_a_method_at_connect_is_a_protocol_error() {
    let b = with_users().await;
    let mut r = v5(b.addr, "plain").await;
    r.send(&auth(ReasonCode::ReAuthenticate, None)).await;
    expect_disconnect(&mut r, 0x82).await;
}
