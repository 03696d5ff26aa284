//! Codec tests against hand-written wire bytes laid out as in the spec (§2–3): one vector per
//! packet type, remaining-length boundaries, partial input, the size limit, owned fields, and a
//! table of malformed packets with the error each must produce.

use bytes::{BufMut, Bytes, BytesMut};

use super::decode::{
    read_remaining_length, RULE_EMPTY_SUBACK, RULE_PASSWORD, RULE_RESERVED_FLAG, RULE_WILL_QOS,
    RULE_WILL_RETAIN,
};
use super::encode::put_remaining_length;
use super::*;

/// Every vector here is 3.1.1 (or a 3.1 CONNECT, which carries its own level).
const V311: ProtocolLevel = ProtocolLevel::V311;

/// Decodes `wire` whole and byte by byte, and encodes `expected` back to `wire`.
fn check_vector(name: &str, wire: &[u8], expected: &Packet) {
    let limits = DecodeLimits::default();

    let mut buf = BytesMut::from(wire);
    assert_eq!(
        decode(&mut buf, &limits, V311),
        Ok(Some(expected.clone())),
        "{name}: decode"
    );
    assert!(buf.is_empty(), "{name}: decode left {} bytes", buf.len());

    // Every strict prefix is "need more" and leaves the buffer untouched.
    let mut buf = BytesMut::new();
    for (i, &b) in wire.iter().enumerate() {
        buf.put_u8(b);
        let got = decode(&mut buf, &limits, V311);
        if i + 1 < wire.len() {
            assert_eq!(got, Ok(None), "{name}: prefix of {} bytes", i + 1);
            assert_eq!(buf.len(), i + 1, "{name}: prefix consumed");
        } else {
            assert_eq!(got, Ok(Some(expected.clone())), "{name}: last byte");
            assert!(buf.is_empty(), "{name}: last byte left bytes");
        }
    }

    let mut out = BytesMut::new();
    encode(expected, V311, &mut out);
    assert_eq!(&out[..], wire, "{name}: encode");
    assert_eq!(
        encoded_len(expected, V311),
        wire.len(),
        "{name}: encoded_len"
    );
}

fn publish(dup: bool, qos: QoS, retain: bool, topic: &str, pkid: u16, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos,
        retain,
        topic: topic.into(),
        pkid,
        payload: Bytes::copy_from_slice(payload),
        properties: Properties::new(),
    })
}

#[test]
fn spec_vectors_for_every_packet_type() {
    #[rustfmt::skip]
    let connect_full: &[u8] = &[
        0x10, 35,                                   // CONNECT, remaining length 35
        0x00, 0x04, b'M', b'Q', b'T', b'T',         // protocol name
        0x04,                                       // level 4 = 3.1.1
        0xEE,                                       // user, password, will retain, will QoS 1, will, clean
        0x00, 0x3C,                                 // keep alive 60 s
        0x00, 0x03, b'c', b'i', b'd',               // client id
        0x00, 0x03, b'a', b'/', b'b',               // will topic
        0x00, 0x02, 0xDE, 0xAD,                     // will message (binary)
        0x00, 0x04, b'u', b's', b'e', b'r',         // user name
        0x00, 0x03, b'p', b'w', 0x00,               // password (binary: U+0000 is fine)
    ];
    let connect_full_packet = Packet::from(Connect {
        level: ProtocolLevel::V311,
        clean_session: true,
        keep_alive: 60,
        client_id: "cid".into(),
        will: Some(LastWill {
            topic: "a/b".into(),
            payload: Bytes::from_static(&[0xDE, 0xAD]),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::new(),
        }),
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"pw\0")),
        properties: Properties::new(),
    });

    #[rustfmt::skip]
    let connect_v31: &[u8] = &[
        0x10, 18,
        0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', // 3.1 protocol name
        0x03,                                           // level 3
        0x02,                                           // clean session
        0x00, 0x0A,
        0x00, 0x04, b't', b'e', b's', b't',
    ];
    let connect_v31_packet = Packet::from(Connect {
        level: ProtocolLevel::V31,
        clean_session: true,
        keep_alive: 10,
        client_id: "test".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    });

    // Empty client id and no flags: legal on the wire [MQTT-3.1.3-6].
    let connect_min: &[u8] = &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0, 0, 0, 0, 0];
    let connect_min_packet = Packet::from(Connect {
        level: ProtocolLevel::V311,
        clean_session: false,
        keep_alive: 0,
        client_id: String::new(),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    });

    let sub = Packet::Subscribe(Subscribe {
        pkid: 10,
        filters: vec![
            SubscribeFilter::new("a/+", QoS::AtLeastOnce),
            SubscribeFilter::new("#", QoS::ExactlyOnce),
        ],
        properties: Properties::new(),
    });
    let suback = Packet::SubAck(SubAck {
        pkid: 10,
        reasons: vec![
            ReasonCode::GrantedQoS0,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ],
        properties: Properties::new(),
    });
    let unsub = Packet::Unsubscribe(Unsubscribe {
        pkid: 11,
        filters: vec!["a/+".into(), "#".into()],
        properties: Properties::new(),
    });

    #[rustfmt::skip]
    let vectors: Vec<(&str, &[u8], Packet)> = vec![
        ("CONNECT will+user+password", connect_full, connect_full_packet),
        ("CONNECT MQIsdp 3.1", connect_v31, connect_v31_packet),
        ("CONNECT minimal", connect_min, connect_min_packet),
        ("CONNACK session present", &[0x20, 0x02, 0x01, 0x00],
            Packet::ConnAck(ConnAck::new(true, ConnectReturnCode::Accepted))),
        ("CONNACK not authorized", &[0x20, 0x02, 0x00, 0x05],
            Packet::ConnAck(ConnAck::new(false, ConnectReturnCode::NotAuthorized))),
        ("PUBLISH QoS 0", &[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'],
            publish(false, QoS::AtMostOnce, false, "a/b", 0, b"hi")),
        ("PUBLISH QoS 1 dup retain", &[0x3B, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, b'x'],
            publish(true, QoS::AtLeastOnce, true, "a/b", 10, b"x")),
        ("PUBLISH QoS 2 empty payload", &[0x34, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x12, 0x34],
            publish(false, QoS::ExactlyOnce, false, "a/b", 0x1234, b"")),
        // U+FEFF is an ordinary character and must not be stripped [MQTT-1.5.3-3].
        ("PUBLISH topic with U+FEFF", &[0x30, 0x05, 0x00, 0x03, 0xEF, 0xBB, 0xBF],
            publish(false, QoS::AtMostOnce, false, "\u{FEFF}", 0, b"")),
        ("PUBACK", &[0x40, 0x02, 0x00, 0x01], Packet::PubAck(Ack::new(1))),
        ("PUBREC", &[0x50, 0x02, 0x12, 0x34], Packet::PubRec(Ack::new(0x1234))),
        ("PUBREL", &[0x62, 0x02, 0xAB, 0xCD], Packet::PubRel(Ack::new(0xABCD))),
        ("PUBCOMP", &[0x70, 0x02, 0xFF, 0xFF], Packet::PubComp(Ack::new(0xFFFF))),
        ("SUBSCRIBE", &[0x82, 0x0C, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'+', 0x01, 0x00, 0x01, b'#', 0x02],
            sub),
        ("SUBACK", &[0x90, 0x06, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x80], suback),
        ("UNSUBSCRIBE", &[0xA2, 0x0A, 0x00, 0x0B, 0x00, 0x03, b'a', b'/', b'+', 0x00, 0x01, b'#'],
            unsub),
        ("UNSUBACK", &[0xB0, 0x02, 0x00, 0x0B], Packet::UnsubAck(UnsubAck::new(11))),
        ("PINGREQ", &[0xC0, 0x00], Packet::PingReq),
        ("PINGRESP", &[0xD0, 0x00], Packet::PingResp),
        ("DISCONNECT", &[0xE0, 0x00], Packet::Disconnect(Disconnect::default())),
    ];
    for (name, wire, expected) in &vectors {
        check_vector(name, wire, expected);
    }
}

/// PUBLISH round trips across the 1/2/3/4-byte remaining length boundaries (§2.2.3, table 2.4).
#[test]
fn remaining_length_boundaries_in_publish() {
    #[rustfmt::skip]
    let cases: &[(usize, &[u8])] = &[
        (127, &[0x30, 0x7F]),
        (128, &[0x30, 0x80, 0x01]),
        (16_383, &[0x30, 0xFF, 0x7F]),
        (16_384, &[0x30, 0x80, 0x80, 0x01]),
        (2_097_151, &[0x30, 0xFF, 0xFF, 0x7F]),
        (2_097_152, &[0x30, 0x80, 0x80, 0x80, 0x01]),
    ];
    for &(remaining, header) in cases {
        // Topic "t" takes 3 bytes of the remaining length; the payload fills the rest.
        let mut wire = header.to_vec();
        wire.extend_from_slice(&[0x00, 0x01, b't']);
        wire.resize(header.len() + remaining, 0xAB);
        let expected = publish(
            false,
            QoS::AtMostOnce,
            false,
            "t",
            0,
            &vec![0xAB; remaining - 3],
        );

        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(
            decode(&mut buf, &DecodeLimits::default(), V311),
            Ok(Some(expected.clone()))
        );
        let mut out = BytesMut::new();
        encode(&expected, V311, &mut out);
        assert_eq!(out.len(), wire.len(), "remaining {remaining}");
        assert!(
            out[..] == wire[..],
            "remaining {remaining}: encoding differs"
        );
    }
}

#[test]
fn remaining_length_codec_boundaries() {
    #[rustfmt::skip]
    let cases: &[(usize, &[u8])] = &[
        (0, &[0x00]),
        (127, &[0x7F]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xFF, 0x7F]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xFF, 0xFF, 0x7F]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
        (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
    ];
    for &(value, wire) in cases {
        let mut out = BytesMut::new();
        put_remaining_length(&mut out, value);
        assert_eq!(&out[..], wire, "encode {value}");
        assert_eq!(
            read_remaining_length(wire),
            Ok(Some((value, wire.len()))),
            "decode {value}"
        );
    }
}

#[test]
fn largest_remaining_length_is_accepted_from_the_header() {
    let header = [0x30, 0xFF, 0xFF, 0xFF, 0x7F];
    let mut buf = BytesMut::from(&header[..]);
    // Default limit is the protocol maximum: waits for the body.
    assert_eq!(decode(&mut buf, &DecodeLimits::default(), V311), Ok(None));
    assert_eq!(buf.len(), header.len());
    // One byte less of limit: refused from the header alone.
    let limits = DecodeLimits {
        max_packet_size: 268_435_459,
        ..DecodeLimits::default()
    };
    assert_eq!(
        decode(&mut buf, &limits, V311),
        Err(DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: 268_435_459
        })
    );
}

#[test]
fn back_to_back_packets_decode_in_order() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i']);
    buf.extend_from_slice(&[0xC0, 0x00]);
    buf.extend_from_slice(&[0x40, 0x02, 0x00, 0x01]);
    buf.extend_from_slice(&[0x62, 0x02]); // start of a PUBREL
    let limits = DecodeLimits::default();
    let expected = publish(false, QoS::AtMostOnce, false, "a/b", 0, b"hi");
    assert_eq!(decode(&mut buf, &limits, V311), Ok(Some(expected)));
    assert_eq!(decode(&mut buf, &limits, V311), Ok(Some(Packet::PingReq)));
    assert_eq!(
        decode(&mut buf, &limits, V311),
        Ok(Some(Packet::PubAck(Ack::new(1))))
    );
    assert_eq!(decode(&mut buf, &limits, V311), Ok(None));
    assert_eq!(&buf[..], &[0x62, 0x02]);
    buf.extend_from_slice(&[0x00, 0x07]);
    assert_eq!(
        decode(&mut buf, &limits, V311),
        Ok(Some(Packet::PubRel(Ack::new(7))))
    );
    assert!(buf.is_empty());
}

#[test]
fn oversize_packet_is_refused_from_the_header() {
    let limits = DecodeLimits {
        max_packet_size: 100,
        ..DecodeLimits::default()
    };
    // PUBLISH announcing 1000 bytes (0xE8 0x07): only the header has arrived.
    let mut buf = BytesMut::from(&[0x30, 0xE8][..]);
    assert_eq!(
        decode(&mut buf, &limits, V311),
        Ok(None),
        "length still incomplete"
    );
    buf.put_u8(0x07);
    assert_eq!(
        decode(&mut buf, &limits, V311),
        Err(DecodeError::PacketTooLarge {
            size: 1003,
            max: 100
        })
    );

    // Exactly at the limit is fine; one byte over is not.
    let at_limit = |total: usize| {
        let mut wire = vec![0x30, (total - 2) as u8, 0x00, 0x01, b't'];
        wire.resize(total, 0);
        BytesMut::from(&wire[..])
    };
    assert!(matches!(
        decode(&mut at_limit(100), &limits, V311),
        Ok(Some(Packet::Publish(_)))
    ));
    assert_eq!(
        decode(&mut at_limit(101), &limits, V311),
        Err(DecodeError::PacketTooLarge {
            size: 101,
            max: 100
        })
    );
}

#[test]
fn payload_and_binary_fields_never_pin_the_read_buffer() {
    // A decoded packet owns its fields: a queued message must not keep a read buffer alive,
    // and the read buffer is advanced in place and reused for the next read.
    // CONNECT: will "t"/"w", user name "", password "p".
    #[rustfmt::skip]
    let wire: &[u8] = &[
        0x10, 23, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC6, 0, 0, // header, flags, keep alive
        0, 0, 0, 1, b't', 0, 1, b'w', 0, 0, 0, 1, b'p',        // payload
    ];
    let mut buf = BytesMut::from(wire);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Ok(Some(Packet::Connect(c))) = decode(&mut buf, &DecodeLimits::default(), V311) else {
        panic!("CONNECT expected");
    };
    let password = c.password.clone().unwrap_or_default();
    assert_eq!(&password[..], b"p");
    assert!(!range.contains(&(password.as_ptr() as usize)));
    assert!(buf.is_empty());

    // Two PUBLISH packets in one buffer: each decode takes exactly one.
    let mut buf = BytesMut::from(
        &[
            0x30, 0x06, 0x00, 0x01, b't', 1, 2, 3, 0x30, 0x04, 0x00, 0x01, b'u', 4,
        ][..],
    );
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Ok(Some(Packet::Publish(p))) = decode(&mut buf, &DecodeLimits::default(), V311) else {
        panic!("PUBLISH expected");
    };
    assert_eq!(&p.payload[..], &[1, 2, 3]);
    assert!(!range.contains(&(p.payload.as_ptr() as usize)));
    assert_eq!(buf.len(), 6);
    let Ok(Some(Packet::Publish(q))) = decode(&mut buf, &DecodeLimits::default(), V311) else {
        panic!("second PUBLISH expected");
    };
    assert_eq!((q.topic.as_str(), &q.payload[..]), ("u", &[4u8][..]));
    assert!(buf.is_empty());
}

#[test]
fn malformed_packets() {
    use DecodeError::*;
    let flags = |flags, rule| InvalidConnectFlags { flags, rule };
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], DecodeError)] = &[
        // Fixed header (§2.2).
        ("reserved type 0", &[0x00, 0x00], ReservedPacketType(0)),
        ("reserved type 15", &[0xF0, 0x00], ReservedPacketType(15)),
        ("remaining length of 5 bytes", &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], MalformedRemainingLength),
        ("CONNECT flags 0001", &[0x11, 0x00], InvalidFixedHeaderFlags { packet_type: 1, flags: 1 }),
        ("CONNACK flags 1000", &[0x28, 0x02, 0, 0], InvalidFixedHeaderFlags { packet_type: 2, flags: 8 }),
        ("PUBACK flags 0010", &[0x42, 0x02, 0, 1], InvalidFixedHeaderFlags { packet_type: 4, flags: 2 }),
        ("PUBREL flags 0000", &[0x60, 0x02, 0, 1], InvalidFixedHeaderFlags { packet_type: 6, flags: 0 }),
        ("SUBSCRIBE flags 0000", &[0x80, 0x06, 0, 1, 0, 1, b'a', 0], InvalidFixedHeaderFlags { packet_type: 8, flags: 0 }),
        ("UNSUBSCRIBE flags 0011", &[0xA3, 0x05, 0, 1, 0, 1, b'a'], InvalidFixedHeaderFlags { packet_type: 10, flags: 3 }),
        ("PINGREQ flags 0001", &[0xC1, 0x00], InvalidFixedHeaderFlags { packet_type: 12, flags: 1 }),
        ("DISCONNECT flags 1111", &[0xEF, 0x00], InvalidFixedHeaderFlags { packet_type: 14, flags: 15 }),
        // PUBLISH (§3.3).
        ("PUBLISH QoS 3", &[0x36, 0x05, 0, 1, b'a', 0, 1], InvalidQoS),
        ("PUBLISH DUP with QoS 0", &[0x38, 0x03, 0, 1, b'a'], InvalidFixedHeaderFlags { packet_type: 3, flags: 8 }),
        ("PUBLISH empty topic", &[0x30, 0x02, 0, 0], InvalidTopicName),
        ("PUBLISH topic with +", &[0x30, 0x05, 0, 3, b'a', b'/', b'+'], InvalidTopicName),
        ("PUBLISH topic with #", &[0x30, 0x03, 0, 1, b'#'], InvalidTopicName),
        ("PUBLISH topic with U+0000", &[0x30, 0x05, 0, 3, b'a', 0, b'b'], InvalidUtf8),
        ("PUBLISH topic invalid UTF-8", &[0x30, 0x03, 0, 1, 0xFF], InvalidUtf8),
        ("PUBLISH topic encodes a surrogate", &[0x30, 0x05, 0, 3, 0xED, 0xA0, 0x80], InvalidUtf8),
        ("PUBLISH topic overlong U+0000", &[0x30, 0x04, 0, 2, 0xC0, 0x80], InvalidUtf8),
        ("PUBLISH QoS 1 zero packet id", &[0x32, 0x05, 0, 1, b'a', 0, 0], ZeroPacketId),
        ("PUBLISH QoS 2 missing packet id", &[0x34, 0x03, 0, 1, b'a'], Truncated),
        ("PUBLISH topic longer than packet", &[0x30, 0x03, 0, 5, b'a'], Truncated),
        ("PUBLISH remaining length 1", &[0x30, 0x01, 0x00], Truncated),
        // CONNECT (§3.1).
        ("CONNECT protocol name MQTX", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'X', 4, 2, 0, 60, 0, 0], InvalidProtocolName),
        ("CONNECT protocol name lowercase", &[0x10, 12, 0, 4, b'm', b'q', b't', b't', 4, 2, 0, 60, 0, 0], InvalidProtocolName),
        ("CONNECT MQTT level 3", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 3, 2, 0, 60, 0, 0], UnsupportedProtocolLevel(3)),
        ("CONNECT MQTT level 6", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 6, 2, 0, 60, 0, 0], UnsupportedProtocolLevel(6)),
        // A level-5 CONNECT decodes now; without its property length it is short a field.
        ("CONNECT MQTT level 5 without properties", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0], Truncated),
        ("CONNECT MQIsdp level 4", &[0x10, 14, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 4, 2, 0, 60, 0, 0], UnsupportedProtocolLevel(4)),
        ("CONNECT reserved flag bit", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 60, 0, 0], flags(0x03, RULE_RESERVED_FLAG)),
        ("CONNECT will QoS without will", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x0A, 0, 60, 0, 0], flags(0x0A, RULE_WILL_QOS)),
        ("CONNECT will retain without will", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x22, 0, 60, 0, 0], flags(0x22, RULE_WILL_RETAIN)),
        ("CONNECT will QoS 3", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x1E, 0, 60, 0, 0], InvalidQoS),
        ("CONNECT password without user name", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x42, 0, 60, 0, 0], flags(0x42, RULE_PASSWORD)),
        ("CONNECT will topic with wildcard", &[0x10, 19, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x06, 0, 60, 0, 0, 0, 3, b'a', b'/', b'#', 0, 0], InvalidTopicName),
        ("CONNECT will message missing", &[0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x06, 0, 60, 0, 0, 0, 3, b'a', b'/', b'b'], Truncated),
        ("CONNECT trailing byte", &[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0, 0xFF], TrailingBytes),
        ("CONNECT user name flag, no user name", &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x82, 0, 60, 0, 0], Truncated),
        ("CONNECT client id invalid UTF-8", &[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, 0xC3], InvalidUtf8),
        ("CONNECT user name with U+0000", &[0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x82, 0, 60, 0, 0, 0, 2, b'u', 0], InvalidUtf8),
        ("CONNECT protocol name cut short", &[0x10, 4, 0, 4, b'M', b'Q'], Truncated),
        // CONNACK (§3.2).
        ("CONNACK remaining length 3", &[0x20, 0x03, 0, 0, 0], TrailingBytes),
        ("CONNACK remaining length 1", &[0x20, 0x01, 0], Truncated),
        ("CONNACK reserved flag bit", &[0x20, 0x02, 0x02, 0x00], InvalidConnAckFlags(0x02)),
        ("CONNACK return code 6", &[0x20, 0x02, 0x00, 0x06], InvalidReturnCode(6)),
        // Acknowledgements (§3.4–3.7, §3.11).
        ("PUBACK remaining length 3", &[0x40, 0x03, 0, 1, 0], TrailingBytes),
        ("PUBACK remaining length 1", &[0x40, 0x01, 1], Truncated),
        ("PUBACK zero packet id", &[0x40, 0x02, 0, 0], ZeroPacketId),
        ("PUBREC zero packet id", &[0x50, 0x02, 0, 0], ZeroPacketId),
        ("PUBREL zero packet id", &[0x62, 0x02, 0, 0], ZeroPacketId),
        ("PUBCOMP zero packet id", &[0x70, 0x02, 0, 0], ZeroPacketId),
        ("UNSUBACK zero packet id", &[0xB0, 0x02, 0, 0], ZeroPacketId),
        ("UNSUBACK remaining length 4", &[0xB0, 0x04, 0, 1, 0, 2], TrailingBytes),
        // SUBSCRIBE / SUBACK (§3.8, §3.9).
        ("SUBSCRIBE zero packet id", &[0x82, 0x06, 0, 0, 0, 1, b'a', 0], ZeroPacketId),
        ("SUBSCRIBE no filters", &[0x82, 0x02, 0, 1], NoTopicFilters),
        ("SUBSCRIBE empty filter", &[0x82, 0x05, 0, 1, 0, 0, 0], EmptyTopicFilter),
        ("SUBSCRIBE requested QoS 3", &[0x82, 0x06, 0, 1, 0, 1, b'a', 3], InvalidQoS),
        ("SUBSCRIBE reserved option bits", &[0x82, 0x06, 0, 1, 0, 1, b'a', 0x04], InvalidSubscribeOptions(0x04)),
        ("SUBSCRIBE missing QoS byte", &[0x82, 0x05, 0, 1, 0, 1, b'a'], Truncated),
        ("SUBSCRIBE filter invalid UTF-8", &[0x82, 0x06, 0, 1, 0, 1, 0xFE, 0], InvalidUtf8),
        ("SUBSCRIBE filter with U+0000", &[0x82, 0x07, 0, 1, 0, 2, b'a', 0, 0], InvalidUtf8),
        ("SUBSCRIBE filter longer than packet", &[0x82, 0x05, 0, 1, 0, 9, b'a'], Truncated),
        ("SUBACK code 3", &[0x90, 0x03, 0, 1, 3], InvalidSubackCode(3)),
        ("SUBACK code 0x81", &[0x90, 0x03, 0, 1, 0x81], InvalidSubackCode(0x81)),
        ("SUBACK no codes", &[0x90, 0x02, 0, 1], Malformed(RULE_EMPTY_SUBACK)),
        ("SUBACK zero packet id", &[0x90, 0x03, 0, 0, 0], ZeroPacketId),
        // UNSUBSCRIBE (§3.10).
        ("UNSUBSCRIBE no filters", &[0xA2, 0x02, 0, 1], NoTopicFilters),
        ("UNSUBSCRIBE empty filter", &[0xA2, 0x04, 0, 1, 0, 0], EmptyTopicFilter),
        ("UNSUBSCRIBE zero packet id", &[0xA2, 0x05, 0, 0, 0, 1, b'a'], ZeroPacketId),
        ("UNSUBSCRIBE filter longer than packet", &[0xA2, 0x05, 0, 1, 0, 2, b'a'], Truncated),
        // Packets without a body (§3.12–3.14), refused from the header alone.
        ("PINGREQ remaining length 1", &[0xC0, 0x01, 0x00], TrailingBytes),
        ("PINGRESP remaining length 1", &[0xD0, 0x01, 0x00], TrailingBytes),
        ("DISCONNECT remaining length 2", &[0xE0, 0x02, 0, 0], TrailingBytes),
        ("PINGREQ announcing a megabyte", &[0xC0, 0x80, 0x80, 0x40], TrailingBytes),
    ];
    assert!(rows.len() >= 35);
    let mut failures = Vec::new();
    for (name, wire, expected) in rows {
        let mut buf = BytesMut::from(*wire);
        let got = decode(&mut buf, &DecodeLimits::default(), V311);
        if got != Err(expected.clone()) {
            failures.push(format!("{name}: expected Err({expected:?}), got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} malformed rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn topics_over_the_configured_limits_are_refused() {
    let limits = DecodeLimits {
        max_topic_levels: 3,
        max_topic_length: 8,
        ..DecodeLimits::default()
    };
    let encode_one = |p: &Packet| {
        let mut b = BytesMut::new();
        crate::codec::encode(p, V311, &mut b);
        b
    };
    let publish_to = |t: &str| publish(false, QoS::AtMostOnce, false, t, 0, b"x");
    let subscribe_to = |f: &str| {
        Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![SubscribeFilter::new(f, QoS::AtMostOnce)],
            properties: Properties::new(),
        })
    };
    let unsubscribe_from = |f: &str| {
        Packet::Unsubscribe(Unsubscribe {
            pkid: 1,
            filters: vec![f.into()],
            properties: Properties::new(),
        })
    };
    // At the limits: accepted.
    for p in [
        publish_to("a/b/c"),
        subscribe_to("a/+/#"),
        unsubscribe_from("12345678"),
    ] {
        let mut b = encode_one(&p);
        assert_eq!(decode(&mut b, &limits, V311), Ok(Some(p)));
    }
    let deep = DecodeError::TopicTooDeep { levels: 4, max: 3 };
    let long = DecodeError::TopicTooLong { len: 9, max: 8 };
    for (p, want) in [
        (publish_to("a/b/c/d"), deep.clone()),
        (subscribe_to("+/+/+/#"), deep.clone()),
        (unsubscribe_from("///"), deep.clone()),
        (publish_to("123456789"), long.clone()),
        (subscribe_to("123456789"), long.clone()),
        (unsubscribe_from("123456789"), long.clone()),
    ] {
        let mut b = encode_one(&p);
        let got = decode(&mut b, &limits, V311);
        assert_eq!(got, Err(want), "{p:?}");
        assert!(got.unwrap_err().is_topic_limit());
    }
    // The will topic of a CONNECT is a topic name like any other.
    let mut c = Connect {
        level: ProtocolLevel::V311,
        clean_session: true,
        keep_alive: 0,
        client_id: "c".into(),
        will: Some(LastWill {
            topic: "w/x/y/z".into(),
            payload: Bytes::new(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::new(),
        }),
        username: None,
        password: None,
        properties: Properties::new(),
    };
    let mut b = encode_one(&Packet::from(c.clone()));
    assert_eq!(decode(&mut b, &limits, V311), Err(deep));
    if let Some(w) = &mut c.will {
        w.topic = "w/x/y".into();
    }
    let mut b = encode_one(&Packet::from(c.clone()));
    assert_eq!(decode(&mut b, &limits, V311), Ok(Some(Packet::from(c))));
}
