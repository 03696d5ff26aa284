//! `POST /api/v5/publish`: reaching MQTT subscribers (3.1.1 and 5, with properties), and
//! every refusal.

use supermq::codec::{PayloadFormat, PropertyValues, QoS};

use crate::common::http::*;
use crate::common::*;

async fn post(addr: std::net::SocketAddr, body: &str) -> Reply {
    call(
        addr,
        "POST",
        "/api/v5/publish",
        Cred::Key,
        Some(body.as_bytes()),
    )
    .await
}

#[tokio::test]
async fn publish_reaches_mqtt_subscribers() {
    let (b, addr) = start_http(|_| {}).await;
    let mut sub = Raw::connect(b.addr, "sub").await;
    sub.subscribe("t/#", QoS::AtLeastOnce).await;

    let r = post(addr, r#"{"topic":"t/1","payload":"hello","qos":1}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["id"].is_string());
    let p = sub.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.qos),
        ("t/1", &b"hello"[..], QoS::AtLeastOnce)
    );

    let r = post(
        addr,
        r#"{"topic":"t/2","payload":"aGk=","payload_encoding":"base64"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let p = sub.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.qos),
        ("t/2", &b"hi"[..], QoS::AtMostOnce)
    );
    assert_eq!(metric(&b, |m| &m.publish_sent), 2);
}

#[tokio::test]
async fn publish_carries_mqtt5_properties() {
    let (b, addr) = start_http(|_| {}).await;
    let (mut sub, _) =
        Raw::connect5(b.addr, connect5("sub5", true, PropertyValues::default())).await;
    sub.subscribe("p/1", QoS::AtLeastOnce).await;
    let body = r#"{"topic":"p/1","payload":"{}","qos":1,"properties":{
        "payload_format_indicator":1,"message_expiry_interval":60,"response_topic":"p/reply",
        "correlation_data":"c-1","user_properties":{"k":"v"},"content_type":"application/json"}}"#;
    let r = post(addr, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p = sub.recv_publish().await;
    let v = p.properties.values().expect("properties");
    assert_eq!(v.payload_format_indicator, Some(PayloadFormat::Utf8));
    assert_eq!(v.response_topic.as_deref(), Some("p/reply"));
    assert_eq!(v.correlation_data.as_deref(), Some(&b"c-1"[..]));
    assert_eq!(v.content_type.as_deref(), Some("application/json"));
    assert_eq!(v.user_properties, vec![("k".to_owned(), "v".to_owned())]);
    let left = v.message_expiry_interval.expect("expiry forwarded");
    assert!((59..=60).contains(&left), "{left}");
}

#[tokio::test]
async fn bad_publishes_are_refused() {
    let (b, addr) = start_http(|c| c.limits.max_qos = 1).await;
    let mut sub = Raw::connect(b.addr, "sub").await;
    sub.subscribe("#", QoS::AtLeastOnce).await;
    for body in [
        "not json",
        "{}",
        r#"{"topic":""}"#,
        r#"{"topic":"a/+"}"#,
        r#"{"topic":"a/#"}"#,
        r#"{"topic":"$SYS/x"}"#,
        r#"{"topic":"a","qos":2}"#,
        r#"{"topic":"a","qos":7}"#,
        r#"{"topic":"a","payload":"!!","payload_encoding":"base64"}"#,
        r#"{"topic":"a","payload_encoding":"hex"}"#,
        r#"{"topic":"a","surprise":1}"#,
        r#"{"topic":"a","payload":"/w==","payload_encoding":"base64","properties":{"payload_format_indicator":1}}"#,
        r#"{"topic":"a","properties":{"payload_format_indicator":2}}"#,
        r#"{"topic":"a","properties":{"response_topic":"r/#"}}"#,
        r#"{"topic":"a","properties":{"message_expiry_interval":-1}}"#,
    ] {
        post(addr, body).await.assert_error(400, "BAD_REQUEST");
    }
    // Over the body bound: 413, whether it says so up front or not.
    let big = format!(
        r#"{{"topic":"a","payload":"{}"}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    post(addr, &big)
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    // Nothing reached the subscriber: the next message is the marker.
    post(addr, r#"{"topic":"marker"}"#).await;
    assert_eq!(sub.recv_publish().await.topic, "marker");
}

#[tokio::test]
async fn publish_over_the_packet_size_limit_is_refused() {
    let (_b, addr) = start_http(|c| c.limits.max_packet_size = 1024).await;
    let body = format!(r#"{{"topic":"a","payload":"{}"}}"#, "x".repeat(2000));
    post(addr, &body).await.assert_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn publish_needs_json_and_the_same_origin() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    let (_b, addr) = start_http(|_| {}).await;
    let send = |ct: &'static str,
                origin: Option<&'static str>,
                method: &'static str,
                path: &'static str| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("authorization", basic(KEY, SECRET))
            .header("content-type", ct);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let body = Full::new(Bytes::from_static(br#"{"topic":"x"}"#));
        let resp = tx.send_request(req.body(body).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default(),
        )
    };
    let (s, v) = send("text/plain", None, "POST", "/api/v5/publish").await;
    assert_eq!(
        (s, v["code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE"))
    );
    let (s, _) = send(
        "application/json; charset=utf-8",
        None,
        "POST",
        "/api/v5/publish",
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = send(
        "application/json",
        Some("http://evil.example"),
        "POST",
        "/api/v5/publish",
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (403, Some("FORBIDDEN")));
    let (s, _) = send(
        "application/json",
        Some("http://evil.example"),
        "DELETE",
        "/api/v5/clients/x",
    )
    .await;
    assert_eq!(s, 403);
    let own: &'static str = Box::leak(format!("http://{addr}").into_boxed_str());
    let (s, _) = send("application/json", Some(own), "POST", "/api/v5/publish").await;
    assert_eq!(s, 200);
    // Reads are never refused for their origin.
    let (s, _) = send(
        "application/json",
        Some("http://evil.example"),
        "GET",
        "/api/v5/nodes",
    )
    .await;
    assert_eq!(s, 200);
}
