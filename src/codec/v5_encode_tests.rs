//! The MQTT 5 encoder: arbitrary packets with arbitrary valid properties round trip through
//! `decode` at level 5 (whole and a byte at a time), `encoded_len` and `publish_header_len`
//! are exact, a PUBLISH header writes the per-delivery properties, and the encoder leaves out
//! what a packet may not carry. The reason codes each packet may carry are listed here again,
//! from the spec's tables, rather than taken from the decoder.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use super::v5_tests::{check_decode, props, s};
use super::*;

const V5: ProtocolLevel = ProtocolLevel::V5;

#[test]
fn publish_header_writes_the_delivery_properties() {
    let message = props(PropertyValues {
        message_expiry_interval: Some(60),
        topic_alias: Some(5),
        subscription_identifiers: vec![1],
        content_type: s("c"),
        ..PropertyValues::default()
    });
    let ids = [7, 300];
    let header = PublishHeader {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        pkid: 0,
        payload_len: 3,
        properties: &message,
        // What is left of the expiry, no alias, and this copy's subscriptions.
        message_expiry: Some(30),
        topic_alias: None,
        subscription_ids: &ids,
    };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x30, 21,                        // remaining length counts the 3-byte payload
        0, 1, b't',
        14,
        0x02, 0, 0, 0, 30,               // the delivery's expiry, not the message's 60
        0x03, 0, 1, b'c',                // the message's own properties
        0x0B, 7,                         // the delivery's subscription identifiers
        0x0B, 0xAC, 0x02,                //   300
    ];
    let mut out = BytesMut::new();
    encode_publish_header(&header, V5, &mut out);
    assert_eq!(&out[..], expected);
    assert_eq!(publish_header_len(&header, V5), expected.len() + 3);
    out.put_slice(b"abc");
    let mut want = PropertyValues {
        message_expiry_interval: Some(30),
        subscription_identifiers: vec![7, 300],
        content_type: s("c"),
        ..PropertyValues::default()
    };
    check_decode(
        "PUBLISH v5 delivery",
        &out,
        &Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t".into(),
            pkid: 0,
            payload: Bytes::from_static(b"abc"),
            properties: Properties::from(want.clone()),
        }),
    );
    // At 3.1.1 none of it is on the wire, and the length says so.
    let mut out = BytesMut::new();
    encode_publish_header(&header, ProtocolLevel::V311, &mut out);
    assert_eq!(&out[..], &[0x30, 6, 0, 1, b't']);
    assert_eq!(publish_header_len(&header, ProtocolLevel::V311), 5 + 3);
    want.content_type = None;
    assert!(!want.is_empty());
}

#[test]
fn encoder_leaves_out_properties_the_packet_may_not_carry() {
    // A topic alias on a PUBACK, a will delay on a CONNACK: not written (table 2-4).
    let stray = props(PropertyValues {
        topic_alias: Some(3),
        will_delay_interval: Some(1),
        ..PropertyValues::default()
    });
    let p = Packet::PubAck(Ack {
        pkid: 1,
        reason: ReasonCode::Success,
        properties: stray.clone(),
    });
    let mut out = BytesMut::new();
    encode(&p, V5, &mut out);
    assert_eq!(&out[..], &[0x40, 2, 0, 1]);
    assert_eq!(encoded_len(&p, V5), 4);
    let p = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties: stray,
    });
    let mut out = BytesMut::new();
    encode(&p, V5, &mut out);
    assert_eq!(&out[..], &[0x20, 3, 0, 0, 0]);
    // SUBSCRIBE carries one subscription identifier at most (§3.8.2.1.2).
    let p = Packet::Subscribe(Subscribe {
        pkid: 1,
        filters: vec![SubscribeFilter::new("a", QoS::AtMostOnce)],
        properties: props(PropertyValues {
            subscription_identifiers: vec![1, 2],
            ..PropertyValues::default()
        }),
    });
    let mut out = BytesMut::new();
    encode(&p, V5, &mut out);
    assert_eq!(&out[..], &[0x82, 9, 0, 1, 2, 0x0B, 1, 0, 1, b'a', 0]);
    assert_eq!(encoded_len(&p, V5), out.len());
}

/// The reason codes of each packet type at MQTT 5 (§3.2.2.2, §3.4.2.1, §3.5.2.1, §3.6.2.1,
/// §3.7.2.1, §3.9.3, §3.11.3, §3.14.2.1, §3.15.2.1).
const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];
const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

fn code(table: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    prop::sample::select(table).prop_map(|b| ReasonCode::from_u8(b).expect("table 2-6 code"))
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn topic_name() -> impl Strategy<Value = String> {
    "[^+#\u{0}]{1,20}"
}

fn topic_filter() -> impl Strategy<Value = String> {
    // No `$share/` filters: No Local is refused on those (checked in the malformed table).
    "[^$\u{0}][^\u{0}]{0,19}"
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Which properties a packet (or will) may carry, from table 2-4, as written in the spec.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ctx {
    Connect,
    Will,
    ConnAck,
    Publish,
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// Arbitrary valid values for every property, then those `ctx` may not carry cleared.
fn properties(ctx: Ctx) -> impl Strategy<Value = Properties> {
    use Ctx::*;
    let message = (
        prop::option::of(prop_oneof![
            Just(PayloadFormat::Unspecified),
            Just(PayloadFormat::Utf8)
        ]),
        prop::option::of(any::<u32>()),
        prop::option::of(text()),
        prop::option::of(topic_name()),
        prop::option::of(bytes(8)),
        prop::collection::vec(1..=268_435_455u32, 0..4),
        prop::option::of(1..=u16::MAX),
        prop::option::of(any::<u32>()),
    );
    let session = (
        prop::option::of(any::<u32>()),
        prop::option::of(text()),
        prop::option::of(any::<u16>()),
        prop::option::of(text()),
        prop::option::of(bytes(8)),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
    );
    let limits = (
        prop::option::of(1..=u16::MAX),
        prop::option::of(any::<u16>()),
        prop::option::of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
        prop::option::of(any::<bool>()),
        prop::collection::vec((text(), text()), 0..3),
        prop::option::of(1..=u32::MAX),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
    );
    (message, session, limits).prop_map(move |(m, s, l)| {
        let allowed = |yes: &[Ctx]| yes.contains(&ctx);
        let mut v = PropertyValues::default();
        if allowed(&[Publish, Will]) {
            v.payload_format_indicator = m.0;
            v.message_expiry_interval = m.1;
            v.content_type = m.2;
            v.response_topic = m.3;
            v.correlation_data = m.4;
        }
        if ctx == Publish {
            v.subscription_identifiers = m.5;
            v.topic_alias = m.6;
        } else if ctx == Subscribe {
            v.subscription_identifiers = m.5.into_iter().take(1).collect();
        }
        if ctx == Will {
            v.will_delay_interval = m.7;
        }
        if allowed(&[Connect, ConnAck, Disconnect]) {
            v.session_expiry_interval = s.0;
        }
        if ctx == ConnAck {
            v.assigned_client_identifier = s.1;
            v.server_keep_alive = s.2;
            v.response_information = s.7;
            v.maximum_qos = l.2;
            v.retain_available = l.3;
            v.wildcard_subscription_available = l.6;
            v.subscription_identifiers_available = l.7;
            v.shared_subscription_available = l.8;
        }
        if allowed(&[Connect, ConnAck, Auth]) {
            v.authentication_method = s.3;
            // Data only with a method (§3.1.2.11.10).
            if v.authentication_method.is_some() {
                v.authentication_data = s.4;
            }
        }
        if ctx == Connect {
            v.request_problem_information = s.5;
            v.request_response_information = s.6;
        }
        if allowed(&[ConnAck, Disconnect]) {
            v.server_reference = s.8;
        }
        if allowed(&[ConnAck, Ack, SubAck, UnsubAck, Disconnect, Auth]) {
            v.reason_string = s.9;
        }
        if allowed(&[Connect, ConnAck]) {
            v.receive_maximum = l.0;
            v.topic_alias_maximum = l.1;
            v.maximum_packet_size = l.5;
        }
        v.user_properties = l.4;
        Properties::from(v)
    })
}

fn will() -> impl Strategy<Value = LastWill> {
    (
        topic_name(),
        bytes(16),
        qos(),
        any::<bool>(),
        properties(Ctx::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

fn connect() -> impl Strategy<Value = Connect> {
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        prop::option::of(will()),
        prop::option::of(text()),
        prop::option::of(bytes(8)),
        properties(Ctx::Connect),
    )
        .prop_map(
            |(clean_session, keep_alive, client_id, will, username, password, properties)| {
                Connect {
                    level: V5,
                    clean_session,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }
            },
        )
}

fn publish() -> impl Strategy<Value = Publish> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        prop_oneof![topic_name(), Just(String::new())],
        1..=u16::MAX,
        bytes(32),
        properties(Ctx::Publish),
        1..=u16::MAX,
    )
        .prop_map(
            |(dup, qos, retain, topic, pkid, payload, mut properties, alias)| {
                // An empty topic needs an alias (§3.3.2.3.4).
                if topic.is_empty() && properties.values().and_then(|v| v.topic_alias).is_none() {
                    properties.values_mut().topic_alias = Some(alias);
                }
                let qos0 = qos == QoS::AtMostOnce;
                Publish {
                    dup: dup && !qos0,
                    qos,
                    retain,
                    topic,
                    pkid: if qos0 { 0 } else { pkid },
                    payload,
                    properties,
                }
            },
        )
}

fn ack(codes: &'static [u8]) -> impl Strategy<Value = Ack> {
    (1..=u16::MAX, code(codes), properties(Ctx::Ack)).prop_map(|(pkid, reason, properties)| Ack {
        pkid,
        reason,
        properties,
    })
}

fn options() -> impl Strategy<Value = SubscriptionOptions> {
    let rh = prop_oneof![
        Just(RetainHandling::SendAtSubscribe),
        Just(RetainHandling::SendAtSubscribeIfNew),
        Just(RetainHandling::DoNotSend)
    ];
    (qos(), any::<bool>(), any::<bool>(), rh).prop_map(|(qos, no_local, rap, retain_handling)| {
        SubscriptionOptions {
            qos,
            no_local,
            retain_as_published: rap,
            retain_handling,
        }
    })
}

fn packet() -> impl Strategy<Value = Packet> {
    let filters = prop::collection::vec(
        (topic_filter(), options())
            .prop_map(|(filter, options)| SubscribeFilter { filter, options }),
        1..5,
    );
    prop_oneof![
        connect().prop_map(Packet::from),
        (any::<bool>(), code(CONNACK_CODES), properties(Ctx::ConnAck)).prop_map(
            |(session_present, reason, properties)| Packet::ConnAck(ConnAck {
                session_present,
                reason,
                properties
            })
        ),
        publish().prop_map(Packet::Publish),
        ack(PUBACK_CODES).prop_map(Packet::PubAck),
        ack(PUBACK_CODES).prop_map(Packet::PubRec),
        ack(PUBREL_CODES).prop_map(Packet::PubRel),
        ack(PUBREL_CODES).prop_map(Packet::PubComp),
        (1..=u16::MAX, filters, properties(Ctx::Subscribe)).prop_map(
            |(pkid, filters, properties)| Packet::Subscribe(Subscribe {
                pkid,
                filters,
                properties
            })
        ),
        (
            1..=u16::MAX,
            prop::collection::vec(code(SUBACK_CODES), 1..5),
            properties(Ctx::SubAck)
        )
            .prop_map(|(pkid, reasons, properties)| Packet::SubAck(SubAck {
                pkid,
                reasons,
                properties
            })),
        (
            1..=u16::MAX,
            prop::collection::vec(topic_filter(), 1..5),
            properties(Ctx::Unsubscribe)
        )
            .prop_map(
                |(pkid, filters, properties)| Packet::Unsubscribe(Unsubscribe {
                    pkid,
                    filters,
                    properties
                })
            ),
        (
            1..=u16::MAX,
            prop::collection::vec(code(UNSUBACK_CODES), 1..5),
            properties(Ctx::UnsubAck)
        )
            .prop_map(|(pkid, reasons, properties)| Packet::UnsubAck(UnsubAck {
                pkid,
                reasons,
                properties
            })),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        (code(DISCONNECT_CODES), properties(Ctx::Disconnect))
            .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties })),
        (code(AUTH_CODES), properties(Ctx::Auth))
            .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties })),
    ]
}

proptest! {
    #[test]
    fn round_trip(packet in packet()) {
        let mut out = BytesMut::new();
        encode(&packet, V5, &mut out);
        prop_assert_eq!(out.len(), encoded_len(&packet, V5));
        let mut buf = out.clone();
        let got = decode(&mut buf, &DecodeLimits::default(), V5);
        prop_assert_eq!(got, Ok(Some(packet.clone())));
        prop_assert!(buf.is_empty());
        // Encoding is deterministic: the decoded packet writes the same bytes.
        let mut again = BytesMut::new();
        encode(&packet, V5, &mut again);
        prop_assert_eq!(&again[..], &out[..]);
    }

    #[test]
    fn byte_at_a_time(packet in packet()) {
        let mut out = BytesMut::new();
        encode(&packet, V5, &mut out);
        let limits = DecodeLimits::default();
        let mut buf = BytesMut::new();
        for (i, &b) in out.iter().enumerate() {
            buf.put_u8(b);
            let got = decode(&mut buf, &limits, V5);
            if i + 1 < out.len() {
                prop_assert_eq!(got, Ok(None));
            } else {
                prop_assert_eq!(got, Ok(Some(packet.clone())));
            }
        }
    }

    #[test]
    fn mutated_packets_never_panic(packet in packet(), index in any::<usize>(), byte in any::<u8>()) {
        let mut out = BytesMut::new();
        encode(&packet, V5, &mut out);
        let i = index % out.len();
        out[i] = byte;
        let mut buf = out.clone();
        if let Ok(Some(p)) = decode(&mut buf, &DecodeLimits::default(), V5) {
            // Whatever decodes re-encodes to something that decodes the same.
            let mut re = BytesMut::new();
            encode(&p, V5, &mut re);
            prop_assert_eq!(re.len(), encoded_len(&p, V5));
            prop_assert_eq!(decode(&mut re, &DecodeLimits::default(), V5), Ok(Some(p)));
        }
    }

    #[test]
    fn publish_header_is_exact_and_writes_the_delivery(
        p in publish(),
        expiry in prop::option::of(any::<u32>()),
        alias in prop::option::of(1..=u16::MAX),
        ids in prop::collection::vec(1..=268_435_455u32, 0..4),
    ) {
        for level in [ProtocolLevel::V311, V5] {
            // The packet's own header: the same bytes as `encode`.
            let mut whole = BytesMut::new();
            encode(&Packet::Publish(p.clone()), level, &mut whole);
            let mut split = BytesMut::new();
            let h = p.header();
            if !level.is_v5() && p.topic.is_empty() {
                continue;
            }
            encode_publish_header(&h, level, &mut split);
            prop_assert_eq!(publish_header_len(&h, level), split.len() + p.payload.len());
            split.put_slice(&p.payload);
            prop_assert_eq!(&split[..], &whole[..]);
        }
        // A delivery's own expiry, alias and subscription identifiers replace the message's.
        let h = PublishHeader {
            message_expiry: expiry,
            topic_alias: alias,
            subscription_ids: &ids,
            ..p.header()
        };
        let mut out = BytesMut::new();
        encode_publish_header(&h, V5, &mut out);
        prop_assert_eq!(publish_header_len(&h, V5), out.len() + p.payload.len());
        out.put_slice(&p.payload);
        let got = decode(&mut out, &DecodeLimits::default(), V5);
        if p.topic.is_empty() && alias.is_none() {
            prop_assert_eq!(got, Err(DecodeError::MissingTopicAlias));
        } else {
            let mut want = p.properties.values_or_empty().clone();
            want.message_expiry_interval = expiry;
            want.topic_alias = alias;
            want.subscription_identifiers = ids.clone();
            let want = Publish { properties: Properties::from(want), ..p };
            prop_assert_eq!(got, Ok(Some(Packet::Publish(want))));
        }
    }
}
