//! Malformed and illegal input against the real broker (spec §1.5.3, §2, §3, §4.8).
//!
//! One table lists byte sequences a client must not send, either as the first packet of a
//! fresh connection or after a valid CONNECT/CONNACK. For every row the broker has to close
//! that connection (after CONNACK 0x01 where [MQTT-3.1.2-2] asks for one, with nothing at all
//! otherwise [MQTT-4.8.0-1]), count it, and leave every other client alone. A second part
//! checks that unusual but valid 3.1.1 input is accepted.

#[path = "malformed/cases.rs"]
mod cases;
mod common;

use cases::*;
use common::*;
use supermq::codec::{ConnAck, ConnectReturnCode, Packet, QoS};

/// Closes, protocol violations and refusals: whatever the broker counts for a bad client.
fn error_count(b: &TestBroker) -> u64 {
    metric(b, |m| &m.malformed_packets)
        + metric(b, |m| &m.protocol_errors)
        + metric(b, |m| &m.connects_refused)
}

#[tokio::test]
async fn every_malformed_input_closes_only_its_own_connection() {
    let rows = cases();
    assert!(rows.len() >= 35, "table has {} rows", rows.len());
    let b = start().await;
    let mut bystander = Bystander::connect(b.addr).await;

    for (i, (name, phase, bytes, expected)) in rows.into_iter().enumerate() {
        let mut r = match phase {
            FirstPacket => Raw::open(b.addr).await,
            AfterConnect => Raw::connect(b.addr, &format!("row-{i}")).await,
        };
        let before = error_count(&b);
        r.send_raw(&bytes).await;
        let got = r.expect_closed().await;
        let want = match expected {
            Closed => vec![],
            // A refused CONNECT never has a session [MQTT-3.2.2-4].
            ConnAckThenClose(code) => vec![Packet::ConnAck(ConnAck::new(
                false,
                ConnectReturnCode::from_u8(code).expect("return code"),
            ))],
        };
        assert_eq!(got, want, "row {name:?}: broker sent something else");
        assert!(
            error_count(&b) > before,
            "row {name:?}: the close was not counted as malformed, protocol error or refusal"
        );
        bystander.echo(&format!("row {name:?}")).await;
    }
    // The table's connections are all gone; only the bystander is left.
    wait_until("only the bystander is connected", || {
        metric(&b, |m| &m.clients_connected_current) == 1
    })
    .await;
}

/// `max_packet_size` is enforced from the fixed header alone: a peer announcing 1 MB is cut
/// off at once, not after the broker has buffered (or waited for) the body.
#[tokio::test]
async fn oversized_packet_is_refused_from_its_fixed_header() {
    let b = start_with(|c| c.limits.max_packet_size = 1024).await;
    let mut bystander = Bystander::connect(b.addr).await;
    // 1 MB = 0x100000 in the variable-length encoding of §2.2.3.
    let one_mb = [0x80, 0x80, 0x40];

    // Exactly the limit is accepted: 1 type byte + 2 length bytes + 1021 = 1024, where the
    // 1021 are the topic field "big" (5 bytes) and the payload.
    let mut ok = Raw::connect(b.addr, "ok").await;
    ok.subscribe("big", QoS::AtMostOnce).await;
    let payload = vec![b'p'; 1021 - 5];
    ok.publish("big", &payload, QoS::AtMostOnce, false).await;
    assert_eq!(ok.recv_publish().await.payload.len(), payload.len());
    // One byte more is not.
    let before = metric(&b, |m| &m.malformed_packets);
    ok.publish(
        "big",
        &[payload.clone(), vec![b'p']].concat(),
        QoS::AtMostOnce,
        false,
    )
    .await;
    assert_eq!(ok.expect_closed().await, vec![]);
    assert_eq!(metric(&b, |m| &m.malformed_packets), before + 1);

    for (phase, first) in [(FirstPacket, 0x10), (AfterConnect, 0x30)] {
        let mut r = match phase {
            FirstPacket => Raw::open(b.addr).await,
            AfterConnect => Raw::connect(b.addr, "big-sender").await,
        };
        let before = metric(&b, |m| &m.malformed_packets);
        r.send_raw(&[&[first][..], &one_mb].concat()).await;
        // `expect_closed` gives up after WAIT, far less than the keep-alive or the connect
        // timeout: the close must come from the header, with no body ever sent.
        assert_eq!(r.expect_closed().await, vec![], "{phase:?}");
        assert_eq!(
            metric(&b, |m| &m.malformed_packets),
            before + 1,
            "{phase:?}"
        );
        bystander.echo(&format!("{phase:?}")).await;
    }
}

/// Unusual but valid 3.1.1 input must be accepted and delivered unchanged.
#[tokio::test]
async fn valid_edge_cases_are_accepted() {
    let b = start_with(|c| c.limits.max_client_id_len = 65535).await;
    let mut c = Raw::connect(b.addr, "edges").await;

    // U+FEFF is an ordinary character, not to be stripped or refused [MQTT-1.5.3-3].
    let bom = "a/\u{FEFF}b";
    // A topic of only the level separator has two empty levels (§4.7.1.1, §4.7.3).
    let slash = "/";
    // Multi-byte UTF-8 in a topic name (§1.5.3).
    let utf8 = "日本/é";
    assert_eq!(
        c.subscribe_many(&[
            (bom, QoS::AtLeastOnce),
            (slash, QoS::AtLeastOnce),
            (utf8, QoS::AtLeastOnce)
        ])
        .await,
        vec![1, 1, 1]
    );
    for topic in [bom, slash, utf8] {
        c.publish(topic, topic.as_bytes(), QoS::AtLeastOnce, false)
            .await;
        let p = c.recv_publish().await;
        assert_eq!((&p.topic[..], &p.payload[..]), (topic, topic.as_bytes()));
    }
    // A zero-length payload is valid (§3.3.3), at every QoS.
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        c.publish(slash, b"", qos, false).await;
        let p = c.recv_publish().await;
        assert_eq!((&p.topic[..], p.payload.len()), (slash, 0), "{qos:?}");
    }

    // A client id of 65535 bytes, the longest a string can be (§1.5.3), is accepted when
    // `max_client_id_len` allows it; the spec only requires 1–23 [MQTT-3.1.3-5].
    let long = "i".repeat(65535);
    let mut l = Raw::connect_with(b.addr, connect_packet(&long, true))
        .await
        .0;
    assert!(b.broker.context().sessions.get(&long).is_some());
    l.subscribe("long/id", QoS::AtLeastOnce).await;
    l.publish("long/id", b"x", QoS::AtLeastOnce, false).await;
    assert_eq!(&l.recv_publish().await.payload[..], b"x");
    assert_eq!(error_count(&b), 0, "nothing here is an error");
}

/// One byte over `max_client_id_len` is refused with CONNACK 0x02, not dropped.
#[tokio::test]
async fn client_id_over_the_configured_limit_is_identifier_rejected() {
    let b = start_with(|c| c.limits.max_client_id_len = 23).await;
    Raw::connect(b.addr, &"k".repeat(23)).await.ping().await;
    let mut r = Raw::open(b.addr).await;
    r.send(&Packet::from(connect_packet(&"k".repeat(24), true)))
        .await;
    assert_eq!(
        r.expect_closed().await,
        vec![Packet::ConnAck(ConnAck::new(
            false,
            ConnectReturnCode::IdentifierRejected
        ))]
    );
    assert_eq!(metric(&b, |m| &m.connects_refused), 1);
}
