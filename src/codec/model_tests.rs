//! Tests of the level-aware model: what the MQTT 5 fields become on a 3.1.1 wire (nothing,
//! or their 3.1.1 form), what 3.1.1 bytes decode to, a level-5 CONNECT decoding whatever the
//! connection's level, and the size of a `Packet`.

use bytes::{Bytes, BytesMut};

use super::*;

const V311: ProtocolLevel = ProtocolLevel::V311;

fn wire(p: &Packet, level: ProtocolLevel) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(p, level, &mut out);
    assert_eq!(out.len(), encoded_len(p, level), "{p:?}: encoded_len");
    out.to_vec()
}

fn decode_all(bytes: &[u8], level: ProtocolLevel) -> Result<Option<Packet>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let got = decode(&mut buf, &DecodeLimits::default(), level);
    if let Ok(Some(_)) = got {
        assert!(buf.is_empty(), "decode left {} bytes", buf.len());
    }
    got
}

/// Properties with something in them, which no 3.1.1 packet can carry.
fn some_properties() -> Properties {
    let mut p = Properties::new();
    p.values_mut().reason_string = Some("why".into());
    p.values_mut()
        .user_properties
        .push(("k".into(), "v".into()));
    p
}

#[test]
fn acks_at_level_4_are_todays_bytes_and_round_trip() {
    type Make = fn(Ack) -> Packet;
    let cases: [(Make, [u8; 4]); 4] = [
        (Packet::PubAck, [0x40, 0x02, 0x12, 0x34]),
        (Packet::PubRec, [0x50, 0x02, 0x12, 0x34]),
        (Packet::PubRel, [0x62, 0x02, 0x12, 0x34]),
        (Packet::PubComp, [0x70, 0x02, 0x12, 0x34]),
    ];
    for (make, bytes) in cases {
        let plain = make(Ack::new(0x1234));
        assert_eq!(wire(&plain, V311), bytes, "{plain:?}");
        assert_eq!(decode_all(&bytes, V311), Ok(Some(plain.clone())));
        // A reason and properties are MQTT 5 only: the same 3.1.1 bytes, and they decode
        // back to the plain acknowledgement.
        let rich = make(Ack {
            pkid: 0x1234,
            reason: ReasonCode::NoMatchingSubscribers,
            properties: some_properties(),
        });
        assert_eq!(wire(&rich, V311), bytes, "{rich:?}");
        assert_eq!(wire(&rich, ProtocolLevel::V31), bytes, "{rich:?} at 3.1");
    }
}

#[test]
fn suback_at_level_4_writes_every_failure_as_0x80() {
    let bytes = [0x90, 0x07, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x80, 0x80];
    let suback = Packet::SubAck(SubAck {
        pkid: 10,
        reasons: vec![
            ReasonCode::GrantedQoS0,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::NotAuthorized,
            ReasonCode::TopicFilterInvalid,
        ],
        properties: some_properties(),
    });
    assert_eq!(wire(&suback, V311), bytes);
    // 0x80 reads back as the unspecified error, without properties.
    let decoded = Packet::SubAck(SubAck::new(
        10,
        vec![
            ReasonCode::GrantedQoS0,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
            ReasonCode::UnspecifiedError,
        ],
    ));
    assert_eq!(decode_all(&bytes, V311), Ok(Some(decoded.clone())));
    assert_eq!(wire(&decoded, V311), bytes);
    // A code that grants no QoS grants no subscription, error or not.
    let odd = Packet::SubAck(SubAck::new(1, vec![ReasonCode::NoSubscriptionExisted]));
    assert_eq!(wire(&odd, V311), [0x90, 0x03, 0x00, 0x01, 0x80]);
}

#[test]
fn unsuback_at_level_4_is_a_packet_id() {
    let bytes = [0xB0, 0x02, 0x00, 0x0B];
    let plain = Packet::UnsubAck(UnsubAck::new(11));
    assert_eq!(wire(&plain, V311), bytes);
    assert_eq!(decode_all(&bytes, V311), Ok(Some(plain)));
    let rich = Packet::UnsubAck(UnsubAck {
        pkid: 11,
        reasons: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
        properties: some_properties(),
    });
    assert_eq!(wire(&rich, V311), bytes);
}

#[test]
fn disconnect_at_level_4_has_no_body() {
    let bytes = [0xE0, 0x00];
    let plain = Packet::Disconnect(Disconnect::default());
    assert_eq!(wire(&plain, V311), bytes);
    let Ok(Some(Packet::Disconnect(d))) = decode_all(&bytes, V311) else {
        panic!("DISCONNECT expected");
    };
    assert_eq!(d.reason, ReasonCode::NormalDisconnection);
    assert!(d.properties.is_empty());
    let rich = Packet::Disconnect(Disconnect {
        reason: ReasonCode::DisconnectWithWillMessage,
        properties: some_properties(),
    });
    assert_eq!(wire(&rich, V311), bytes);
}

#[test]
fn connack_reasons_become_return_codes_at_level_4() {
    #[rustfmt::skip]
    let cases = [
        (ReasonCode::Success, 0x00),
        (ReasonCode::UnsupportedProtocolVersion, 0x01),
        (ReasonCode::ClientIdentifierNotValid, 0x02),
        (ReasonCode::ServerUnavailable, 0x03),
        (ReasonCode::BadUserNameOrPassword, 0x04),
        (ReasonCode::NotAuthorized, 0x05),
        // No 3.1.1 word for these: the nearest return code.
        (ReasonCode::BadAuthenticationMethod, 0x04),
        (ReasonCode::Banned, 0x05),
        (ReasonCode::ServerBusy, 0x03),
        (ReasonCode::QuotaExceeded, 0x03),
    ];
    for (reason, code) in cases {
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties: some_properties(),
        });
        assert_eq!(wire(&connack, V311), [0x20, 0x02, 0x00, code], "{reason:?}");
    }
    // The six return codes decode to the reason codes that mean the same, and back.
    for code in 0..=5u8 {
        let bytes = [0x20, 0x02, 0x01, code];
        let Ok(Some(Packet::ConnAck(a))) = decode_all(&bytes, V311) else {
            panic!("CONNACK expected");
        };
        assert!(a.session_present);
        assert_eq!(a.return_code() as u8, code);
        assert_eq!(a.reason.is_error(), code != 0);
        assert!(a.properties.is_empty());
        assert_eq!(wire(&Packet::ConnAck(a), V311), bytes);
    }
}

#[test]
fn subscribe_at_level_4_decodes_to_the_311_options() {
    let bytes = [
        0x82, 0x0C, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'+', 0x01, 0x00, 0x01, b'#', 0x02,
    ];
    let Ok(Some(Packet::Subscribe(s))) = decode_all(&bytes, V311) else {
        panic!("SUBSCRIBE expected");
    };
    assert!(s.properties.is_empty());
    let want = [("a/+", QoS::AtLeastOnce), ("#", QoS::ExactlyOnce)];
    assert_eq!(s.filters.len(), want.len());
    for (f, (filter, qos)) in s.filters.iter().zip(want) {
        assert_eq!(f.filter, filter);
        assert_eq!(
            f.options,
            SubscriptionOptions {
                qos,
                no_local: false,
                retain_as_published: false,
                retain_handling: RetainHandling::SendAtSubscribe,
            }
        );
        assert_eq!(f.options, SubscriptionOptions::new(qos));
    }
    // The MQTT 5 options have no 3.1.1 bits: only the QoS is written [MQTT-3.8.3-4].
    let mut rich = s.clone();
    rich.filters[0].options.no_local = true;
    rich.filters[0].options.retain_as_published = true;
    rich.filters[1].options.retain_handling = RetainHandling::DoNotSend;
    rich.properties = some_properties();
    assert_eq!(wire(&Packet::Subscribe(rich), V311), bytes);
    // And the bits MQTT 5 gives them are still reserved at 3.1.1.
    let mut no_local = bytes;
    no_local[9] |= 0x04;
    assert_eq!(
        decode_all(&no_local, V311),
        Err(DecodeError::InvalidSubscribeOptions(0x05))
    );
}

#[test]
fn properties_are_not_on_a_311_wire() {
    let mut p = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "a/b".into(),
        pkid: 10,
        payload: Bytes::from_static(b"x"),
        properties: Properties::new(),
    };
    let plain = wire(&Packet::Publish(p.clone()), V311);
    assert_eq!(
        plain,
        [0x32, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, b'x']
    );
    p.properties = some_properties();
    assert_eq!(wire(&Packet::Publish(p.clone()), V311), plain);

    let mut c = Connect {
        level: V311,
        clean_session: true,
        keep_alive: 0,
        client_id: "c".into(),
        will: Some(LastWill {
            topic: "w".into(),
            payload: Bytes::new(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::new(),
        }),
        username: None,
        password: None,
        properties: Properties::new(),
    };
    let plain = wire(&Packet::from(c.clone()), V311);
    c.properties = some_properties();
    if let Some(w) = &mut c.will {
        w.properties = some_properties();
    }
    assert_eq!(wire(&Packet::from(c), V311), plain);
}

#[test]
fn connect_is_read_and_written_at_its_own_level() {
    let c = Connect {
        level: ProtocolLevel::V31,
        clean_session: true,
        keep_alive: 10,
        client_id: "test".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    };
    let p = Packet::from(c);
    // Whatever the connection's level, a CONNECT is what sets it.
    let bytes = wire(&p, V311);
    assert_eq!(
        &bytes[2..10],
        &[0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p']
    );
    assert_eq!(bytes[10], 3);
    assert_eq!(wire(&p, ProtocolLevel::V31), bytes);
    for level in [ProtocolLevel::V31, V311, ProtocolLevel::V5] {
        assert_eq!(decode_all(&bytes, level), Ok(Some(p.clone())), "{level:?}");
    }
}

#[test]
fn level_5_connect_decodes_at_any_connection_level() {
    // A level-5 CONNECT with no properties: the connection, not the codec, decides on it.
    let connect = [0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0, 0];
    for level in [ProtocolLevel::V31, V311, ProtocolLevel::V5] {
        match decode_all(&connect, level) {
            Ok(Some(Packet::Connect(c))) => {
                assert_eq!(c.level, ProtocolLevel::V5, "{level:?}");
                assert!(c.clean_session && c.properties.is_empty());
            }
            other => panic!("{level:?}: {other:?}"),
        }
    }
    // The same PUBACK bytes mean the same at every level: the short form is a success.
    let puback = [0x40, 0x02, 0x00, 0x01];
    for level in [ProtocolLevel::V31, V311, ProtocolLevel::V5] {
        assert_eq!(
            decode_all(&puback, level),
            Ok(Some(Packet::PubAck(Ack::new(1)))),
            "{level:?}"
        );
    }
}

#[test]
fn packet_stays_small() {
    let packet = std::mem::size_of::<Packet>();
    let publish = std::mem::size_of::<Publish>();
    // PUBLISH pays one pointer for its properties (64 -> 72 bytes), and sets the size of a
    // `Packet` now that CONNECT is boxed (inline, it made every `Packet` 152 bytes).
    assert_eq!(
        std::mem::size_of::<Properties>(),
        std::mem::size_of::<usize>()
    );
    assert!(publish <= 72, "Publish grew to {publish} bytes");
    assert!(packet <= 72, "Packet grew to {packet} bytes");
    assert!(std::mem::size_of::<Ack>() <= 16);
    assert!(std::mem::size_of::<ReasonCode>() == 1);
}
