//! Malformed and illegal input against the real broker (spec §1.5.3, §2, §3, §4.8).
//!
//! One table lists byte sequences a client must not send, either as the first packet of a
//! fresh connection or after a valid CONNECT/CONNACK. For every row the broker has to close
//! that connection (after CONNACK 0x01 where [MQTT-3.1.2-2] asks for one, with nothing at all
//! otherwise [MQTT-4.8.0-1]), count it, and leave every other client alone. A second part
//! checks that unusual but valid 3.1.1 input is accepted.

mod common;

use common::*;
use supermq::codec::{ConnAck, Connect, ConnectReturnCode, Packet, Properties, ProtocolLevel, QoS};

/// When the row's bytes are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// On a fresh TCP connection, in place of CONNECT.
    FirstPacket,
    /// After a valid CONNECT has been answered with CONNACK 0.
    AfterConnect,
}

/// How the broker must react.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The connection is closed and nothing is sent on it.
    Closed,
    /// A CONNACK with this return code, then the connection is closed.
    ConnAckThenClose(u8),
}

use Expect::*;
use Phase::*;

/// A length-prefixed field (§1.5.3).
fn s(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A CONNECT with the given protocol name, level, flags and payload; keep-alive 60 s.
fn connect(name: &[u8], level: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = s(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    body.extend_from_slice(payload);
    frame(0x10, &body)
}

/// A 3.1.1 CONNECT ("MQTT", level 4) with `flags` and `payload`.
fn connect4(flags: u8, payload: &[u8]) -> Vec<u8> {
    connect(b"MQTT", 4, flags, payload)
}

/// A PUBLISH with first byte `first` and body `topic field ++ rest`.
fn publish(first: u8, topic: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut body = s(topic);
    body.extend_from_slice(rest);
    frame(first, &body)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Every row: (name, phase, bytes, expected reaction).
fn cases() -> Vec<(&'static str, Phase, Vec<u8>, Expect)> {
    let id = s(b"row");
    vec![
        // --- Framing (§2.2) -------------------------------------------------------------
        // Types 0 and 15 are reserved (§2.2.1, table 2.1).
        (
            "reserved type 0 first",
            FirstPacket,
            vec![0x00, 0x00],
            Closed,
        ),
        (
            "reserved type 15 first",
            FirstPacket,
            vec![0xF0, 0x00],
            Closed,
        ),
        ("reserved type 0", AfterConnect, vec![0x00, 0x00], Closed),
        ("reserved type 15", AfterConnect, vec![0xF0, 0x00], Closed),
        // A 4th length byte with its continuation bit set would need a 5th (§2.2.3).
        (
            "remaining length of 5 bytes first",
            FirstPacket,
            vec![0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            Closed,
        ),
        (
            "remaining length of 5 bytes",
            AfterConnect,
            vec![0x30, 0x80, 0x80, 0x80, 0x80, 0x01],
            Closed,
        ),
        // --- Fixed-header flags of each type (table 2.2) [MQTT-2.2.2-1, MQTT-2.2.2-2] ------
        (
            "CONNECT flags 0x11",
            FirstPacket,
            {
                let mut c = connect4(0x02, &id);
                c[0] = 0x11;
                c
            },
            Closed,
        ),
        (
            "PUBACK flags 0x41",
            AfterConnect,
            vec![0x41, 2, 0, 1],
            Closed,
        ),
        (
            "PUBREC flags 0x52",
            AfterConnect,
            vec![0x52, 2, 0, 1],
            Closed,
        ),
        // PUBREL must carry 0b0010 [MQTT-3.6.1-1].
        (
            "PUBREL flags 0x60",
            AfterConnect,
            vec![0x60, 2, 0, 1],
            Closed,
        ),
        (
            "PUBCOMP flags 0x72",
            AfterConnect,
            vec![0x72, 2, 0, 1],
            Closed,
        ),
        // SUBSCRIBE must carry 0b0010 [MQTT-3.8.1-1].
        (
            "SUBSCRIBE flags 0x80",
            AfterConnect,
            frame(0x80, &cat(&[&[0, 1], &s(b"a"), &[0]])),
            Closed,
        ),
        // UNSUBSCRIBE must carry 0b0010 [MQTT-3.10.1-1].
        (
            "UNSUBSCRIBE flags 0xA0",
            AfterConnect,
            frame(0xA0, &cat(&[&[0, 1], &s(b"a")])),
            Closed,
        ),
        ("PINGREQ flags 0xC1", AfterConnect, vec![0xC1, 0], Closed),
        ("DISCONNECT flags 0xE1", AfterConnect, vec![0xE1, 0], Closed),
        // --- CONNECT (§3.1) ---------------------------------------------------------------
        // A foreign protocol name gets no CONNACK at all [MQTT-3.1.2-1].
        (
            "protocol name MQXX",
            FirstPacket,
            connect(b"MQXX", 4, 0x02, &id),
            Closed,
        ),
        (
            "protocol name mqtt",
            FirstPacket,
            connect(b"mqtt", 4, 0x02, &id),
            Closed,
        ),
        // A known name with an unsupported level gets CONNACK 0x01 [MQTT-3.1.2-2].
        (
            "MQTT level 3",
            FirstPacket,
            connect(b"MQTT", 3, 0x02, &id),
            ConnAckThenClose(1),
        ),
        (
            "MQTT level 5",
            FirstPacket,
            connect(b"MQTT", 5, 0x02, &id),
            ConnAckThenClose(1),
        ),
        (
            "MQIsdp level 4",
            FirstPacket,
            connect(b"MQIsdp", 4, 0x02, &id),
            ConnAckThenClose(1),
        ),
        // [MQTT-3.1.2-3]: the reserved flag bit must be 0.
        (
            "CONNECT reserved flag",
            FirstPacket,
            connect4(0x03, &id),
            Closed,
        ),
        // [MQTT-3.1.2-14]: will QoS 3.
        (
            "will QoS 3",
            FirstPacket,
            connect4(0x1E, &cat(&[&id, &s(b"w"), &s(b"m")])),
            Closed,
        ),
        // [MQTT-3.1.2-13]: will QoS without the will flag.
        (
            "will QoS without will flag",
            FirstPacket,
            connect4(0x0A, &id),
            Closed,
        ),
        // [MQTT-3.1.2-15]: will retain without the will flag.
        (
            "will retain without will flag",
            FirstPacket,
            connect4(0x22, &id),
            Closed,
        ),
        // [MQTT-3.1.2-22]: password flag without user name flag.
        (
            "password without username",
            FirstPacket,
            connect4(0x42, &cat(&[&id, &s(b"secret")])),
            Closed,
        ),
        // [MQTT-1.5.3-1]: ill-formed UTF-8 (0xC3 0x28) and an encoded surrogate (U+D800).
        (
            "invalid UTF-8 client id",
            FirstPacket,
            connect4(0x02, &s(&[0xC3, 0x28])),
            Closed,
        ),
        (
            "surrogate in client id",
            FirstPacket,
            connect4(0x02, &s(&[b'a', 0xED, 0xA0, 0x80])),
            Closed,
        ),
        // [MQTT-1.5.3-2]: U+0000 in a string.
        (
            "U+0000 in client id",
            FirstPacket,
            connect4(0x02, &s(b"a\0b")),
            Closed,
        ),
        (
            "U+0000 in will topic",
            FirstPacket,
            connect4(0x06, &cat(&[&id, &s(b"w\0t"), &s(b"m")])),
            Closed,
        ),
        // [MQTT-3.3.2-2] applies to the will topic too (§3.1.3.2).
        (
            "wildcard in will topic",
            FirstPacket,
            connect4(0x06, &cat(&[&id, &s(b"w/#"), &s(b"m")])),
            Closed,
        ),
        // The remaining length ends before the fields it must hold: the client id's length
        // prefix is missing (§2.2.3). The packet is complete, so this is not "wait for more".
        (
            "CONNECT shorter than its fields",
            FirstPacket,
            connect4(0x02, &[]),
            Closed,
        ),
        (
            "CONNECT client id past remaining length",
            FirstPacket,
            connect4(0x02, &[0, 5, b'a', b'b']),
            Closed,
        ),
        (
            "CONNECT trailing bytes",
            FirstPacket,
            connect4(0x02, &cat(&[&id, &[0xAA]])),
            Closed,
        ),
        // [MQTT-3.1.0-1]: the first packet must be CONNECT.
        ("PINGREQ first", FirstPacket, vec![0xC0, 0], Closed),
        (
            "PUBLISH first",
            FirstPacket,
            publish(0x30, b"t", b"x"),
            Closed,
        ),
        // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
        ("second CONNECT", AfterConnect, connect4(0x02, &id), Closed),
        // --- PUBLISH (§3.3) ---------------------------------------------------------------
        // [MQTT-3.3.1-4]: QoS 3.
        (
            "PUBLISH QoS 3",
            AfterConnect,
            publish(0x36, b"t", &[0, 1, b'x']),
            Closed,
        ),
        // [MQTT-3.3.1-2]: DUP must be 0 for QoS 0.
        (
            "PUBLISH QoS 0 with DUP",
            AfterConnect,
            publish(0x38, b"t", b"x"),
            Closed,
        ),
        // [MQTT-3.3.2-2]: no wildcards in a topic name.
        (
            "PUBLISH topic with +",
            AfterConnect,
            publish(0x30, b"a/+/b", b"x"),
            Closed,
        ),
        (
            "PUBLISH topic with #",
            AfterConnect,
            publish(0x30, b"a/#", b"x"),
            Closed,
        ),
        // [MQTT-4.7.3-1]: a topic name is at least one character.
        (
            "PUBLISH empty topic",
            AfterConnect,
            publish(0x30, b"", b"x"),
            Closed,
        ),
        // [MQTT-1.5.3-2], [MQTT-1.5.3-1].
        (
            "PUBLISH topic with U+0000",
            AfterConnect,
            publish(0x30, b"a\0b", b"x"),
            Closed,
        ),
        (
            "PUBLISH topic invalid UTF-8",
            AfterConnect,
            publish(0x30, &[b'a', 0xFF], b"x"),
            Closed,
        ),
        // [MQTT-2.3.1-1]: packet identifiers are non-zero.
        (
            "PUBLISH QoS 1 packet id 0",
            AfterConnect,
            publish(0x32, b"t", &[0, 0]),
            Closed,
        ),
        (
            "PUBLISH QoS 2 packet id 0",
            AfterConnect,
            publish(0x34, b"t", &[0, 0, 7]),
            Closed,
        ),
        // The topic's length prefix runs past the remaining length (§2.2.3).
        (
            "PUBLISH topic past end",
            AfterConnect,
            vec![0x30, 3, 0, 5, b'a'],
            Closed,
        ),
        // --- Acknowledgements: fixed length 2, non-zero id (§3.4–3.7) ---------------------
        (
            "PUBACK remaining length 3",
            AfterConnect,
            vec![0x40, 3, 0, 1, 0],
            Closed,
        ),
        (
            "PUBACK remaining length 1",
            AfterConnect,
            vec![0x40, 1, 0],
            Closed,
        ),
        (
            "PUBACK packet id 0",
            AfterConnect,
            vec![0x40, 2, 0, 0],
            Closed,
        ),
        (
            "PUBREL remaining length 3",
            AfterConnect,
            vec![0x62, 3, 0, 1, 0],
            Closed,
        ),
        // --- SUBSCRIBE (§3.8) -------------------------------------------------------------
        // [MQTT-3.8.3-3]: at least one filter.
        (
            "SUBSCRIBE no filters",
            AfterConnect,
            frame(0x82, &[0, 1]),
            Closed,
        ),
        // [MQTT-3.8.3-4]: requested QoS 3, and reserved bits in the QoS byte.
        (
            "SUBSCRIBE requested QoS 3",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a"), &[3]])),
            Closed,
        ),
        (
            "SUBSCRIBE reserved bits in QoS byte",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a"), &[0x04]])),
            Closed,
        ),
        (
            "SUBSCRIBE QoS byte 0x81",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a"), &[0x81]])),
            Closed,
        ),
        // [MQTT-4.7.3-1]: a filter is at least one character.
        (
            "SUBSCRIBE empty filter",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b""), &[0]])),
            Closed,
        ),
        (
            "SUBSCRIBE filter with U+0000",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a\0"), &[0]])),
            Closed,
        ),
        (
            "SUBSCRIBE packet id 0",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 0], &s(b"a"), &[0]])),
            Closed,
        ),
        // The last filter lacks its QoS byte.
        (
            "SUBSCRIBE filter without QoS byte",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a")])),
            Closed,
        ),
        // --- UNSUBSCRIBE (§3.10) ----------------------------------------------------------
        // [MQTT-3.10.3-2]: at least one filter.
        (
            "UNSUBSCRIBE no filters",
            AfterConnect,
            frame(0xA2, &[0, 1]),
            Closed,
        ),
        (
            "UNSUBSCRIBE empty filter",
            AfterConnect,
            frame(0xA2, &cat(&[&[0, 1], &s(b"")])),
            Closed,
        ),
        // --- Fixed-length packets with trailing bytes (§3.12.1, §3.14.1) ------------------
        (
            "PINGREQ trailing bytes",
            AfterConnect,
            vec![0xC0, 1, 0],
            Closed,
        ),
        (
            "DISCONNECT trailing bytes",
            AfterConnect,
            vec![0xE0, 1, 0],
            Closed,
        ),
        // --- Server-to-client packets sent by a client (§4.8) ----------------------------
        (
            "CONNACK from client",
            AfterConnect,
            vec![0x20, 2, 0, 0],
            Closed,
        ),
        (
            "SUBACK from client",
            AfterConnect,
            vec![0x90, 3, 0, 1, 0],
            Closed,
        ),
        (
            "UNSUBACK from client",
            AfterConnect,
            vec![0xB0, 2, 0, 1],
            Closed,
        ),
        ("PINGRESP from client", AfterConnect, vec![0xD0, 0], Closed),
    ]
}

/// Closes, protocol violations and refusals: whatever the broker counts for a bad client.
fn error_count(b: &TestBroker) -> u64 {
    metric(b, |m| &m.malformed_packets)
        + metric(b, |m| &m.protocol_errors)
        + metric(b, |m| &m.connects_refused)
}

/// The bystander publishes `tag` to itself at QoS 1 and must get it back.
async fn bystander_works(bystander: &mut Raw, tag: &str) {
    bystander
        .publish("bystander/echo", tag.as_bytes(), QoS::AtLeastOnce, false)
        .await;
    let p = bystander.recv_publish().await;
    assert_eq!(
        (&p.topic[..], &p.payload[..]),
        ("bystander/echo", tag.as_bytes()),
        "bystander after row {tag:?}"
    );
}

#[tokio::test]
async fn every_malformed_input_closes_only_its_own_connection() {
    let rows = cases();
    assert!(rows.len() >= 35, "table has {} rows", rows.len());
    let b = start().await;
    let mut bystander = Raw::connect(b.addr, "bystander").await;
    assert_eq!(
        bystander
            .subscribe("bystander/echo", QoS::AtLeastOnce)
            .await,
        1
    );

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
        bystander_works(&mut bystander, name).await;
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
    let mut bystander = Raw::connect(b.addr, "bystander").await;
    bystander
        .subscribe("bystander/echo", QoS::AtLeastOnce)
        .await;
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
        bystander_works(&mut bystander, &format!("{phase:?}")).await;
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
    let mut l = Raw::connect_with(
        b.addr,
        Connect {
            level: ProtocolLevel::V311,
            clean_session: true,
            keep_alive: 60,
            client_id: long.clone(),
            will: None,
            username: None,
            password: None,
            properties: Properties::new(),
        },
    )
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
