//! MQTT 5 (level 5) wire vectors, written out byte by byte as MQTT 5.0 §2–3 lays them out:
//! every packet type, every property of table 2-4, and the short forms of the
//! acknowledgements, DISCONNECT and AUTH. Each vector is decoded (whole
//! and a byte at a time) and encoded back; decode-only vectors cover the forms a peer may
//! send but the encoder shortens. The PUBLISH header and the encoder's property filter are
//! in `v5_encode_tests`.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

const V5: ProtocolLevel = ProtocolLevel::V5;

/// `first`, the remaining length of `body` (one byte: every vector here is short), `body`.
pub(super) fn pkt(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128, "vectors use a one-byte remaining length");
    let mut v = vec![first, body.len() as u8];
    v.extend_from_slice(body);
    v
}

/// Decodes `wire` at level 5 whole and byte by byte, and checks it decodes to `expected`.
pub(super) fn check_decode(name: &str, wire: &[u8], expected: &Packet) {
    let limits = DecodeLimits::default();
    let mut buf = BytesMut::from(wire);
    assert_eq!(
        decode(&mut buf, &limits, V5),
        Ok(Some(expected.clone())),
        "{name}: decode"
    );
    assert!(buf.is_empty(), "{name}: decode left {} bytes", buf.len());
    let mut buf = BytesMut::new();
    for (i, &b) in wire.iter().enumerate() {
        buf.put_u8(b);
        let got = decode(&mut buf, &limits, V5);
        if i + 1 < wire.len() {
            assert_eq!(got, Ok(None), "{name}: prefix of {} bytes", i + 1);
            assert_eq!(buf.len(), i + 1, "{name}: prefix consumed");
        } else {
            assert_eq!(got, Ok(Some(expected.clone())), "{name}: last byte");
        }
    }
}

/// Both directions: `wire` decodes to `expected`, which encodes to `wire`.
fn check_vector(name: &str, wire: &[u8], expected: &Packet) {
    check_decode(name, wire, expected);
    let mut out = BytesMut::new();
    encode(expected, V5, &mut out);
    assert_eq!(&out[..], wire, "{name}: encode");
    assert_eq!(encoded_len(expected, V5), wire.len(), "{name}: encoded_len");
}

pub(super) fn props(v: PropertyValues) -> Properties {
    let p = Properties::from(v);
    assert!(!p.is_empty());
    p
}

fn user(k: &str, v: &str) -> Vec<(String, String)> {
    vec![(k.into(), v.into())]
}

pub(super) fn s(v: &str) -> Option<String> {
    Some(v.into())
}

fn b(v: &[u8]) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(v))
}

#[test]
fn connect_with_every_connect_and_will_property() {
    #[rustfmt::skip]
    let body: &[u8] = &[
        0, 4, b'M', b'Q', b'T', b'T', 5,      // protocol name and level 5
        0xEE,                                 // user, password, will retain, will QoS 1, will, clean start
        0, 60,                                // keep alive
        39,                                   // CONNECT properties (§3.1.2.11)
        0x11, 0, 0, 0, 120,                   //   session expiry interval 120
        0x15, 0, 4, b'S', b'C', b'R', b'M',   //   authentication method
        0x16, 0, 2, 1, 2,                     //   authentication data
        0x17, 0,                              //   request problem information 0
        0x19, 1,                              //   request response information 1
        0x21, 0, 20,                          //   receive maximum 20
        0x22, 0, 10,                          //   topic alias maximum 10
        0x26, 0, 1, b'k', 0, 1, b'v',         //   user property
        0x27, 0, 0, 0x10, 0,                  //   maximum packet size 4096
        0, 3, b'c', b'i', b'd',               // client id
        37,                                   // will properties (§3.1.3.2)
        0x01, 1,                              //   payload format indicator UTF-8
        0x02, 0, 0, 0, 60,                    //   message expiry interval 60
        0x03, 0, 4, b't', b'e', b'x', b't',   //   content type
        0x08, 0, 3, b'r', b'/', b't',         //   response topic
        0x09, 0, 2, 0xAB, 0xCD,               //   correlation data
        0x18, 0, 0, 0, 5,                     //   will delay interval 5
        0x26, 0, 1, b'a', 0, 1, b'b',         //   user property
        0, 3, b'a', b'/', b'b',               // will topic
        0, 2, 0xDE, 0xAD,                     // will payload
        0, 4, b'u', b's', b'e', b'r',         // user name
        0, 2, b'p', b'w',                     // password
    ];
    let packet = Packet::from(Connect {
        level: V5,
        clean_session: true,
        keep_alive: 60,
        client_id: "cid".into(),
        will: Some(LastWill {
            topic: "a/b".into(),
            payload: Bytes::from_static(&[0xDE, 0xAD]),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: props(PropertyValues {
                payload_format_indicator: Some(PayloadFormat::Utf8),
                message_expiry_interval: Some(60),
                content_type: s("text"),
                response_topic: s("r/t"),
                correlation_data: b(&[0xAB, 0xCD]),
                will_delay_interval: Some(5),
                user_properties: user("a", "b"),
                ..PropertyValues::default()
            }),
        }),
        username: s("user"),
        password: Some(Bytes::from_static(b"pw")),
        properties: props(PropertyValues {
            session_expiry_interval: Some(120),
            authentication_method: s("SCRM"),
            authentication_data: b(&[1, 2]),
            request_problem_information: Some(false),
            request_response_information: Some(true),
            receive_maximum: Some(20),
            topic_alias_maximum: Some(10),
            user_properties: user("k", "v"),
            maximum_packet_size: Some(4096),
            ..PropertyValues::default()
        }),
    });
    check_vector("CONNECT v5 full", &pkt(0x10, body), &packet);
    // Decoded at any connection level: a CONNECT carries its own.
    let mut buf = BytesMut::from(&pkt(0x10, body)[..]);
    assert_eq!(
        decode(&mut buf, &DecodeLimits::default(), ProtocolLevel::V311),
        Ok(Some(packet))
    );

    // The smallest: no flags, no properties; at MQTT 5 a password may come alone (§3.1.2.9).
    #[rustfmt::skip]
    let min: &[u8] = &[0, 4, b'M', b'Q', b'T', b'T', 5, 0x40, 0, 0, 0, 0, 0, 0, 1, b'p'];
    let packet = Packet::from(Connect {
        level: V5,
        clean_session: false,
        keep_alive: 0,
        client_id: String::new(),
        will: None,
        username: None,
        password: Some(Bytes::from_static(b"p")),
        properties: Properties::new(),
    });
    check_vector("CONNECT v5 password alone", &pkt(0x10, min), &packet);
}

#[test]
fn connack_with_every_connack_property() {
    #[rustfmt::skip]
    let body: &[u8] = &[
        0x01, 0x00,                      // session present, success
        64,                              // properties (§3.2.2.3)
        0x11, 0, 0, 0, 0,                //   session expiry interval 0
        0x12, 0, 2, b'i', b'd',          //   assigned client identifier
        0x13, 0, 30,                     //   server keep alive 30
        0x15, 0, 1, b'M',                //   authentication method
        0x16, 0, 1, 7,                   //   authentication data
        0x1A, 0, 2, b'r', b'i',          //   response information
        0x1C, 0, 2, b's', b'r',          //   server reference
        0x1F, 0, 2, b'o', b'k',          //   reason string
        0x21, 0, 10,                     //   receive maximum 10
        0x22, 0, 5,                      //   topic alias maximum 5
        0x24, 1,                         //   maximum QoS 1
        0x25, 0,                         //   retain available 0
        0x26, 0, 1, b'x', 0, 1, b'y',    //   user property
        0x27, 0, 1, 0, 0,                //   maximum packet size 65536
        0x28, 1,                         //   wildcard subscription available
        0x29, 0,                         //   subscription identifiers available
        0x2A, 1,                         //   shared subscription available
    ];
    let packet = Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::Success,
        properties: props(PropertyValues {
            session_expiry_interval: Some(0),
            assigned_client_identifier: s("id"),
            server_keep_alive: Some(30),
            authentication_method: s("M"),
            authentication_data: b(&[7]),
            response_information: s("ri"),
            server_reference: s("sr"),
            reason_string: s("ok"),
            receive_maximum: Some(10),
            topic_alias_maximum: Some(5),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            user_properties: user("x", "y"),
            maximum_packet_size: Some(65536),
            wildcard_subscription_available: Some(true),
            subscription_identifiers_available: Some(false),
            shared_subscription_available: Some(true),
            ..PropertyValues::default()
        }),
    });
    check_vector("CONNACK v5 full", &pkt(0x20, body), &packet);
    check_vector(
        "CONNACK v5 success",
        &[0x20, 3, 0, 0, 0],
        &Packet::ConnAck(ConnAck::new(false, ReasonCode::Success)),
    );
    // Reasons 3.1.1 has no return code for go on the wire as they are.
    check_vector(
        "CONNACK v5 quota exceeded",
        &[0x20, 3, 0, 0x97, 0],
        &Packet::ConnAck(ConnAck::new(false, ReasonCode::QuotaExceeded)),
    );
}

#[test]
fn publish_with_every_publish_property() {
    #[rustfmt::skip]
    let body: &[u8] = &[
        0, 3, b'a', b'/', b'b',          // topic
        0, 10,                           // packet id
        34,                              // properties (§3.3.2.3)
        0x01, 1,                         //   payload format indicator UTF-8
        0x02, 0, 0, 0, 60,               //   message expiry interval 60
        0x03, 0, 1, b'j',                //   content type
        0x08, 0, 1, b'r',                //   response topic
        0x09, 0, 1, 0x2A,                //   correlation data
        0x0B, 1,                         //   subscription identifier 1
        0x0B, 0x80, 0x01,                //   subscription identifier 128 (two-byte VBI)
        0x23, 0, 5,                      //   topic alias 5
        0x26, 0, 1, b'k', 0, 1, b'v',    //   user property
        b'h', b'i',                      // payload
    ];
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b".into(),
        pkid: 10,
        payload: Bytes::from_static(b"hi"),
        properties: props(PropertyValues {
            payload_format_indicator: Some(PayloadFormat::Utf8),
            message_expiry_interval: Some(60),
            content_type: s("j"),
            response_topic: s("r"),
            correlation_data: b(&[0x2A]),
            subscription_identifiers: vec![1, 128],
            topic_alias: Some(5),
            user_properties: user("k", "v"),
            ..PropertyValues::default()
        }),
    });
    check_vector("PUBLISH v5 full", &pkt(0x33, body), &packet);

    // An empty topic stands for the one its alias names (§3.3.2.3.4).
    let alias_only = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: String::new(),
        pkid: 0,
        payload: Bytes::from_static(b"x"),
        properties: props(PropertyValues {
            topic_alias: Some(7),
            ..PropertyValues::default()
        }),
    });
    check_vector(
        "PUBLISH v5 alias only",
        &pkt(0x30, &[0, 0, 3, 0x23, 0, 7, b'x']),
        &alias_only,
    );
    let plain = Packet::Publish(Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "a".into(),
        pkid: 1,
        payload: Bytes::new(),
        properties: Properties::new(),
    });
    check_vector(
        "PUBLISH v5 no properties",
        &pkt(0x3C, &[0, 1, b'a', 0, 1, 0]),
        &plain,
    );
}

#[test]
fn acknowledgements_and_their_short_forms() {
    let ack = |pkid, reason, properties| Ack {
        pkid,
        reason,
        properties,
    };
    let why = props(PropertyValues {
        reason_string: s("bad"),
        user_properties: user("k", "v"),
        ..PropertyValues::default()
    });
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<u8>, Packet)> = vec![
        ("PUBACK success", vec![0x40, 2, 0, 1], Packet::PubAck(Ack::new(1))),
        ("PUBACK reason only", vec![0x40, 3, 0, 1, 0x10],
            Packet::PubAck(ack(1, ReasonCode::NoMatchingSubscribers, Properties::new()))),
        ("PUBACK full", pkt(0x40, &[0, 1, 0x80, 13, 0x1F, 0, 3, b'b', b'a', b'd', 0x26, 0, 1, b'k', 0, 1, b'v']),
            Packet::PubAck(ack(1, ReasonCode::UnspecifiedError, why.clone()))),
        ("PUBACK success with a property", pkt(0x40, &[0, 5, 0, 3, 0x1F, 0, 0]),
            Packet::PubAck(ack(5, ReasonCode::Success, props(PropertyValues {
                reason_string: s(""),
                ..PropertyValues::default()
            })))),
        ("PUBREC reason only", vec![0x50, 3, 0, 2, 0x99],
            Packet::PubRec(ack(2, ReasonCode::PayloadFormatInvalid, Properties::new()))),
        ("PUBREC full", pkt(0x50, &[0, 2, 0x97, 13, 0x1F, 0, 3, b'b', b'a', b'd', 0x26, 0, 1, b'k', 0, 1, b'v']),
            Packet::PubRec(ack(2, ReasonCode::QuotaExceeded, why.clone()))),
        ("PUBREL reason only", vec![0x62, 3, 0, 3, 0x92],
            Packet::PubRel(ack(3, ReasonCode::PacketIdentifierNotFound, Properties::new()))),
        ("PUBREL success", vec![0x62, 2, 0, 3], Packet::PubRel(Ack::new(3))),
        ("PUBCOMP success", vec![0x70, 2, 0, 4], Packet::PubComp(Ack::new(4))),
        ("PUBCOMP full", pkt(0x70, &[0, 4, 0x92, 13, 0x1F, 0, 3, b'b', b'a', b'd', 0x26, 0, 1, b'k', 0, 1, b'v']),
            Packet::PubComp(ack(4, ReasonCode::PacketIdentifierNotFound, why))),
    ];
    for (name, wire, packet) in &rows {
        check_vector(name, wire, packet);
    }
    // What a peer may send longer than the encoder does (§3.4.2.1): the same packets.
    check_decode(
        "PUBACK explicit success",
        &[0x40, 4, 0, 1, 0, 0],
        &Packet::PubAck(Ack::new(1)),
    );
    check_decode(
        "PUBREC reason, empty properties",
        &[0x50, 4, 0, 2, 0x10, 0],
        &Packet::PubRec(ack(2, ReasonCode::NoMatchingSubscribers, Properties::new())),
    );
}

#[test]
fn subscription_packets() {
    #[rustfmt::skip]
    let subscribe: &[u8] = &[
        0, 10,                           // packet id
        9, 0x0B, 5,                      // subscription identifier 5
        0x26, 0, 1, b'k', 0, 1, b'v',    // user property
        0, 3, b'a', b'/', b'+', 0x2D,    // QoS 1, No Local, Retain As Published, Retain Handling 2
        0, 1, b'b', 0x1A,                // QoS 2, Retain As Published, Retain Handling 1
        0, 1, b'c', 0x00,                // QoS 0, the defaults
    ];
    let packet = Packet::Subscribe(Subscribe {
        pkid: 10,
        filters: vec![
            SubscribeFilter {
                filter: "a/+".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            },
            SubscribeFilter {
                filter: "b".into(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: false,
                    retain_as_published: true,
                    retain_handling: RetainHandling::SendAtSubscribeIfNew,
                },
            },
            SubscribeFilter::new("c", QoS::AtMostOnce),
        ],
        properties: props(PropertyValues {
            subscription_identifiers: vec![5],
            user_properties: user("k", "v"),
            ..PropertyValues::default()
        }),
    });
    check_vector("SUBSCRIBE v5", &pkt(0x82, subscribe), &packet);

    use ReasonCode as R;
    let reasons = vec![
        R::GrantedQoS1,
        R::GrantedQoS2,
        R::GrantedQoS0,
        R::UnspecifiedError,
        R::TopicFilterInvalid,
        R::SharedSubscriptionsNotSupported,
        R::SubscriptionIdentifiersNotSupported,
        R::WildcardSubscriptionsNotSupported,
        R::QuotaExceeded,
    ];
    #[rustfmt::skip]
    let suback: &[u8] = &[
        0, 10, 4, 0x1F, 0, 1, b'r',
        0x01, 0x02, 0x00, 0x80, 0x8F, 0x9E, 0xA1, 0xA2, 0x97,
    ];
    let packet = Packet::SubAck(SubAck {
        pkid: 10,
        reasons,
        properties: props(PropertyValues {
            reason_string: s("r"),
            ..PropertyValues::default()
        }),
    });
    check_vector("SUBACK v5", &pkt(0x90, suback), &packet);
    check_vector(
        "SUBACK v5 no properties",
        &[0x90, 4, 0, 10, 0, 0x01],
        &Packet::SubAck(SubAck::new(10, vec![R::GrantedQoS1])),
    );

    #[rustfmt::skip]
    let unsubscribe: &[u8] = &[
        0, 11, 7, 0x26, 0, 1, b'k', 0, 1, b'v',
        0, 3, b'a', b'/', b'#',
        0, 1, b'b',
    ];
    let packet = Packet::Unsubscribe(Unsubscribe {
        pkid: 11,
        filters: vec!["a/#".into(), "b".into()],
        properties: props(PropertyValues {
            user_properties: user("k", "v"),
            ..PropertyValues::default()
        }),
    });
    check_vector("UNSUBSCRIBE v5", &pkt(0xA2, unsubscribe), &packet);
    let packet = Packet::UnsubAck(UnsubAck {
        pkid: 11,
        reasons: vec![R::Success, R::NoSubscriptionExisted, R::NotAuthorized],
        properties: Properties::new(),
    });
    check_vector(
        "UNSUBACK v5",
        &[0xB0, 6, 0, 11, 0, 0x00, 0x11, 0x87],
        &packet,
    );
    let packet = Packet::UnsubAck(UnsubAck {
        pkid: 11,
        reasons: vec![R::TopicFilterInvalid],
        properties: props(PropertyValues {
            reason_string: s("no"),
            ..PropertyValues::default()
        }),
    });
    check_vector(
        "UNSUBACK v5 reason string",
        &pkt(0xB0, &[0, 11, 5, 0x1F, 0, 2, b'n', b'o', 0x8F]),
        &packet,
    );
}

#[test]
fn ping_disconnect_and_auth() {
    check_vector("PINGREQ v5", &[0xC0, 0], &Packet::PingReq);
    check_vector("PINGRESP v5", &[0xD0, 0], &Packet::PingResp);

    let disconnect = |reason, properties| Packet::Disconnect(Disconnect { reason, properties });
    check_vector(
        "DISCONNECT normal",
        &[0xE0, 0],
        &Packet::Disconnect(Disconnect::default()),
    );
    check_vector(
        "DISCONNECT reason only",
        &[0xE0, 1, 0x04],
        &disconnect(ReasonCode::DisconnectWithWillMessage, Properties::new()),
    );
    #[rustfmt::skip]
    let full: &[u8] = &[
        0x8B, 20,
        0x11, 0, 0, 0, 0,                // session expiry interval 0
        0x1C, 0, 1, b's',                // server reference
        0x1F, 0, 1, b'x',                // reason string
        0x26, 0, 1, b'k', 0, 1, b'v',    // user property
    ];
    check_vector(
        "DISCONNECT full",
        &pkt(0xE0, full),
        &disconnect(
            ReasonCode::ServerShuttingDown,
            props(PropertyValues {
                session_expiry_interval: Some(0),
                server_reference: s("s"),
                reason_string: s("x"),
                user_properties: user("k", "v"),
                ..PropertyValues::default()
            }),
        ),
    );
    check_decode(
        "DISCONNECT explicit normal",
        &[0xE0, 2, 0, 0],
        &Packet::Disconnect(Disconnect::default()),
    );

    let auth = |reason, properties| Packet::Auth(Auth { reason, properties });
    check_vector("AUTH success", &[0xF0, 0], &Packet::Auth(Auth::default()));
    #[rustfmt::skip]
    let full: &[u8] = &[
        0x18, 22,
        0x15, 0, 3, b'S', b'C', b'R',    // authentication method
        0x16, 0, 2, 1, 2,                // authentication data
        0x1F, 0, 1, b'r',                // reason string
        0x26, 0, 1, b'k', 0, 1, b'v',    // user property
    ];
    check_vector(
        "AUTH continue",
        &pkt(0xF0, full),
        &auth(
            ReasonCode::ContinueAuthentication,
            props(PropertyValues {
                authentication_method: s("SCR"),
                authentication_data: b(&[1, 2]),
                reason_string: s("r"),
                user_properties: user("k", "v"),
                ..PropertyValues::default()
            }),
        ),
    );
    // The encoder always writes AUTH's property length; a reason alone is read too.
    check_vector(
        "AUTH re-authenticate",
        &[0xF0, 2, 0x19, 0],
        &auth(ReasonCode::ReAuthenticate, Properties::new()),
    );
    check_decode(
        "AUTH reason only",
        &[0xF0, 1, 0x19],
        &auth(ReasonCode::ReAuthenticate, Properties::new()),
    );
}
