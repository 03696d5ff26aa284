//! Encoder properties: every packet the model can hold at 3.1 / 3.1.1 round trips through
//! `decode`, byte by byte too, and a split PUBLISH header equals the whole packet.

use super::*;
use crate::codec::decode::{decode, DecodeLimits};
use crate::codec::packet::*;
use crate::codec::reason::ConnectReturnCode;
use bytes::Bytes;
use proptest::prelude::*;

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
        }
    })
}

fn connect() -> impl Strategy<Value = Connect> {
    let protocol = prop_oneof![Just(Protocol::V31), Just(Protocol::V311)];
    // The password flag requires the user name flag [MQTT-3.1.2-22].
    let credentials = prop_oneof![
        Just((None, None)),
        "[^\u{0}]{0,20}".prop_map(|u| (Some(u), None)),
        ("[^\u{0}]{0,20}", bytes(32)).prop_map(|(u, p)| (Some(u), Some(p))),
    ];
    (
        protocol,
        any::<bool>(),
        any::<u16>(),
        "[^\u{0}]{0,23}",
        proptest::option::of(will()),
        credentials,
    )
        .prop_map(
            |(protocol, clean_session, keep_alive, client_id, will, (username, password))| {
                Connect {
                    protocol,
                    clean_session,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                }
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
            }
        })
}

fn connack() -> impl Strategy<Value = ConnAck> {
    (any::<bool>(), 0u8..=5).prop_map(|(session_present, code)| ConnAck {
        session_present,
        code: ConnectReturnCode::from_u8(code).unwrap_or(ConnectReturnCode::Accepted),
    })
}

fn suback_code() -> impl Strategy<Value = SubackCode> {
    prop_oneof![
        qos().prop_map(SubackCode::Granted),
        Just(SubackCode::Failure)
    ]
}

fn packet() -> impl Strategy<Value = Packet> {
    let filters = proptest::collection::vec((topic_filter(), qos()), 1..6);
    prop_oneof![
        connect().prop_map(Packet::Connect),
        connack().prop_map(Packet::ConnAck),
        publish().prop_map(Packet::Publish),
        pkid().prop_map(Packet::PubAck),
        pkid().prop_map(Packet::PubRec),
        pkid().prop_map(Packet::PubRel),
        pkid().prop_map(Packet::PubComp),
        (pkid(), filters).prop_map(|(pkid, f)| Packet::Subscribe(Subscribe {
            pkid,
            filters: f
                .into_iter()
                .map(|(filter, qos)| SubscribeFilter { filter, qos })
                .collect(),
        })),
        (pkid(), proptest::collection::vec(suback_code(), 1..6))
            .prop_map(|(pkid, codes)| Packet::SubAck(SubAck { pkid, codes })),
        (pkid(), proptest::collection::vec(topic_filter(), 1..6))
            .prop_map(|(pkid, filters)| Packet::Unsubscribe(Unsubscribe { pkid, filters })),
        pkid().prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect),
    ]
}

proptest! {
    #[test]
    fn round_trip(packet in packet()) {
        let mut out = BytesMut::new();
        encode(&packet, &mut out);
        prop_assert_eq!(out.len(), encoded_len(&packet));
        let decoded = decode(&mut out, &DecodeLimits::default());
        prop_assert_eq!(decoded, Ok(Some(packet)));
        prop_assert!(out.is_empty());
    }

    /// Every strict prefix of a packet is "need more" and consumes nothing.
    #[test]
    fn byte_at_a_time(packet in packet()) {
        let mut wire = BytesMut::new();
        encode(&packet, &mut wire);
        let limits = DecodeLimits::default();
        let mut buf = BytesMut::new();
        for (i, &b) in wire.iter().enumerate() {
            buf.put_u8(b);
            let result = decode(&mut buf, &limits);
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
        encode(&packet, &mut wire);
        let i = index % wire.len();
        wire[i] = byte;
        let len = wire.len();
        if let Ok(None) = decode(&mut wire, &DecodeLimits::default()) {
            prop_assert_eq!(wire.len(), len);
        }
    }

    #[test]
    fn publish_header_plus_payload_equals_encode(p in publish()) {
        let mut whole = BytesMut::new();
        encode(&Packet::Publish(p.clone()), &mut whole);
        let mut split = BytesMut::new();
        encode_publish_header(p.dup, p.qos, p.retain, &p.topic, p.pkid, p.payload.len(), &mut split);
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
