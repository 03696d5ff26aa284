//! Encoder properties: every packet the model can hold at 3.1 / 3.1.1 round trips through
//! `decode`, byte by byte too, and a split PUBLISH header equals the whole packet.

use super::*;
use crate::codec::decode::{decode, DecodeLimits};
use crate::codec::packet::*;
use crate::codec::properties::Properties;
use crate::codec::reason::{ConnectReturnCode, ReasonCode};
use bytes::Bytes;
use proptest::prelude::*;

/// Encoding and decoding at 3.1.1 (3.1 differs only in CONNECT, which carries its level).
const V311: ProtocolLevel = ProtocolLevel::V311;

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn pkid() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

/// Any characters but the wildcards and U+0000, including multi-byte ones and U+FEFF.
fn topic_name() -> impl Strategy<Value = String> {
    "[^+#\u{0}]{1,40}"
}

fn topic_filter() -> impl Strategy<Value = String> {
    "[^\u{0}]{1,40}"
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn will() -> impl Strategy<Value = LastWill> {
    (topic_name(), bytes(64), qos(), any::<bool>()).prop_map(|(topic, payload, qos, retain)| {
        LastWill {
            topic,
            payload,
            qos,
            retain,
            properties: Properties::new(),
        }
    })
}

fn connect() -> impl Strategy<Value = Connect> {
    let level = prop_oneof![Just(ProtocolLevel::V31), Just(ProtocolLevel::V311)];
    // The password flag requires the user name flag [MQTT-3.1.2-22].
    let credentials = prop_oneof![
        Just((None, None)),
        "[^\u{0}]{0,20}".prop_map(|u| (Some(u), None)),
        ("[^\u{0}]{0,20}", bytes(32)).prop_map(|(u, p)| (Some(u), Some(p))),
    ];
    (
        level,
        any::<bool>(),
        any::<u16>(),
        "[^\u{0}]{0,23}",
        proptest::option::of(will()),
        credentials,
    )
        .prop_map(
            |(level, clean_session, keep_alive, client_id, will, (username, password))| Connect {
                level,
                clean_session,
                keep_alive,
                client_id,
                will,
                username,
                password,
                properties: Properties::new(),
            },
        )
}

fn publish() -> impl Strategy<Value = Publish> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        pkid(),
        bytes(300),
    )
        .prop_map(|(dup, qos, retain, topic, pkid, payload)| {
            // QoS 0 has neither a packet id nor a DUP flag [MQTT-2.3.1-1, MQTT-3.3.1-2].
            let (dup, pkid) = if qos == QoS::AtMostOnce {
                (false, 0)
            } else {
                (dup, pkid)
            };
            Publish {
                dup,
                qos,
                retain,
                topic,
                pkid,
                payload,
                properties: Properties::new(),
            }
        })
}

fn connack() -> impl Strategy<Value = ConnAck> {
    // The reason codes a 3.1.1 return code decodes to.
    (any::<bool>(), 0u8..=5).prop_map(|(session_present, code)| {
        let code = ConnectReturnCode::from_u8(code).unwrap_or(ConnectReturnCode::Accepted);
        ConnAck::new(session_present, code)
    })
}

/// The SUBACK codes 3.1.1 can carry, as they decode.
fn suback_code() -> impl Strategy<Value = ReasonCode> {
    prop_oneof![
        qos().prop_map(ReasonCode::granted),
        Just(ReasonCode::UnspecifiedError)
    ]
}

fn ack() -> impl Strategy<Value = Ack> {
    pkid().prop_map(Ack::new)
}

fn packet() -> impl Strategy<Value = Packet> {
    let filters = proptest::collection::vec((topic_filter(), qos()), 1..6);
    prop_oneof![
        connect().prop_map(Packet::from),
        connack().prop_map(Packet::ConnAck),
        publish().prop_map(Packet::Publish),
        ack().prop_map(Packet::PubAck),
        ack().prop_map(Packet::PubRec),
        ack().prop_map(Packet::PubRel),
        ack().prop_map(Packet::PubComp),
        (pkid(), filters).prop_map(|(pkid, f)| Packet::Subscribe(Subscribe {
            pkid,
            filters: f
                .into_iter()
                .map(|(filter, qos)| SubscribeFilter::new(filter, qos))
                .collect(),
            properties: Properties::new(),
        })),
        (pkid(), proptest::collection::vec(suback_code(), 1..6)).prop_map(|(pkid, reasons)| {
            Packet::SubAck(SubAck {
                pkid,
                reasons,
                properties: Properties::new(),
            })
        }),
        (pkid(), proptest::collection::vec(topic_filter(), 1..6)).prop_map(|(pkid, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                pkid,
                filters,
                properties: Properties::new(),
            })
        }),
        pkid().prop_map(|pkid| Packet::UnsubAck(UnsubAck::new(pkid))),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect(Disconnect::default())),
    ]
}

proptest! {
    #[test]
    fn round_trip(packet in packet()) {
        // 3.1 and 3.1.1 write every packet alike (a CONNECT at its own level).
        let mut at_311 = BytesMut::new();
        encode(&packet, V311, &mut at_311);
        let mut out = BytesMut::new();
        encode(&packet, ProtocolLevel::V31, &mut out);
        prop_assert_eq!(&out, &at_311);
        prop_assert_eq!(out.len(), encoded_len(&packet, V311));
        let decoded = decode(&mut out, &DecodeLimits::default(), ProtocolLevel::V31);
        prop_assert_eq!(decoded, Ok(Some(packet.clone())));
        prop_assert!(out.is_empty());
        let decoded = decode(&mut at_311, &DecodeLimits::default(), V311);
        prop_assert_eq!(decoded, Ok(Some(packet)));
    }

    /// Every strict prefix of a packet is "need more" and consumes nothing.
    #[test]
    fn byte_at_a_time(packet in packet()) {
        let mut wire = BytesMut::new();
        encode(&packet, V311, &mut wire);
        let limits = DecodeLimits::default();
        let mut buf = BytesMut::new();
        for (i, &b) in wire.iter().enumerate() {
            buf.put_u8(b);
            let result = decode(&mut buf, &limits, V311);
            if i + 1 < wire.len() {
                prop_assert_eq!(result, Ok(None));
                prop_assert_eq!(buf.len(), i + 1);
            } else {
                prop_assert_eq!(result, Ok(Some(packet.clone())));
                prop_assert!(buf.is_empty());
            }
        }
    }

    /// Corrupting one byte of a valid packet reaches deep into the field parsers; whatever
    /// the result, decoding must not panic and must not consume a partial packet.
    #[test]
    fn mutated_packets_never_panic(packet in packet(), index in any::<usize>(), byte in any::<u8>()) {
        let mut wire = BytesMut::new();
        encode(&packet, V311, &mut wire);
        let i = index % wire.len();
        wire[i] = byte;
        let len = wire.len();
        if let Ok(None) = decode(&mut wire, &DecodeLimits::default(), V311) {
            prop_assert_eq!(wire.len(), len);
        }
    }

    #[test]
    fn publish_header_plus_payload_equals_encode(p in publish()) {
        let mut whole = BytesMut::new();
        encode(&Packet::Publish(p.clone()), V311, &mut whole);
        let mut split = BytesMut::new();
        encode_publish_header(&p.header(), V311, &mut split);
        split.extend_from_slice(&p.payload);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn remaining_length_round_trip(len in 0..=MAX_REMAINING_LENGTH) {
        let mut out = BytesMut::new();
        put_remaining_length(&mut out, len);
        prop_assert_eq!(out.len(), remaining_length_len(len));
        prop_assert_eq!(
            crate::codec::decode::read_remaining_length(&out),
            Ok(Some((len, out.len())))
        );
    }
}
