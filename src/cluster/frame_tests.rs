//! Route frame tests: byte layouts, round trips, malformed frames and the handshake bound.

use super::*;
use crate::codec::{PayloadFormat, PropertyValues};
use proptest::prelude::*;

/// Every property a route frame carries, user properties repeated and in order.
fn full_properties() -> Properties {
    Properties::from(PropertyValues {
        payload_format_indicator: Some(PayloadFormat::Unspecified),
        content_type: Some("application/json".into()),
        response_topic: Some("reply/to".into()),
        correlation_data: Some(Bytes::from_static(&[0, 1, 2])),
        user_properties: vec![
            ("b".into(), "2".into()),
            ("a".into(), "1".into()),
            ("b".into(), "".into()),
        ],
        ..PropertyValues::default()
    })
}

fn samples() -> Vec<Frame> {
    vec![
        Frame::Info(Info {
            node_id: "n1".into(),
            cluster: "c".into(),
            advertise: "127.0.0.1:7000".into(),
            instance: 7,
            nonce: 42,
        }),
        Frame::Auth(Bytes::from_static(&[1, 2, 3])),
        Frame::Ping,
        Frame::Pong,
        Frame::Sub("a/+/c".into()),
        Frame::Unsub("#".into()),
        Frame::Sync(7),
        Frame::SyncAck(7),
        Frame::Msg(RouteMsg {
            topic: "t".into(),
            payload: Bytes::from(vec![0u8; 300]),
            qos: 2,
            retain: true,
            ts: 99,
            groups: vec![("g".into(), "a/+".into()), ("$queue".into(), "#".into())],
            group_only: true,
            redispatched: true,
            expiry_ms: 0,
            properties: Properties::new(),
        }),
        Frame::Msg(RouteMsg {
            topic: "t5".into(),
            payload: Bytes::from_static(b"{}"),
            qos: 1,
            retain: false,
            ts: 100,
            groups: vec![],
            group_only: false,
            redispatched: false,
            expiry_ms: 1_500,
            properties: full_properties(),
        }),
        Frame::Group {
            group: "workers".into(),
            filter: "jobs/#".into(),
            weight: 3,
        },
        Frame::Retain(RetainEntry {
            topic: "r".into(),
            payload: Bytes::new(),
            qos: 1,
            ts: 5,
            origin: "n2".into(),
            expiry_ms: 0,
            properties: Properties::new(),
        }),
        Frame::Retain(RetainEntry {
            topic: "r5".into(),
            payload: Bytes::from_static(b"v"),
            qos: 2,
            ts: 6,
            origin: "n2".into(),
            expiry_ms: 86_400_000,
            properties: full_properties(),
        }),
        Frame::Client {
            id: "dev-1".into(),
            at: 1_700_000_000_000_000,
        },
        Frame::Peer {
            node_id: "n3".into(),
            addr: "10.0.0.3:7000".into(),
        },
        Frame::SnapshotEnd,
        Frame::Welcome,
    ]
}

#[test]
fn every_frame_round_trips_whole_and_byte_by_byte() {
    for f in samples() {
        let mut out = BytesMut::new();
        encode(&f, &mut out);
        let whole = out.clone();
        assert_eq!(decode(&mut out), Ok(Some(f.clone())));
        assert!(out.is_empty());
        let mut partial = BytesMut::new();
        for (i, b) in whole.iter().enumerate() {
            partial.put_u8(*b);
            let r = decode(&mut partial).expect("valid prefix");
            assert_eq!(r.is_some(), i + 1 == whole.len(), "{f:?} at byte {i}");
        }
    }
}

#[test]
fn known_bytes_for_a_sub_frame() {
    let mut out = BytesMut::new();
    encode(&Frame::Sub("a/b".into()), &mut out);
    assert_eq!(&out[..], &[5, 4, 3, b'a', b'/', b'b']);
}

#[test]
fn preamble_rejects_mqtt_and_other_versions() {
    let mut ok = BytesMut::new();
    encode_preamble(&mut ok);
    assert_eq!(decode_preamble(&mut ok), Ok(true));
    let mut mqtt = BytesMut::from(&[0x10u8, 0x0c, 0x00, 0x04][..]);
    assert_eq!(decode_preamble(&mut mqtt), Err(FrameError::BadMagic));
    let mut first_byte_only = BytesMut::from(&b"S"[..]);
    assert_eq!(decode_preamble(&mut first_byte_only), Ok(false));
    let mut v9 = BytesMut::from(&b"SMQR\x09"[..]);
    assert_eq!(decode_preamble(&mut v9), Err(FrameError::BadVersion(9)));
}

#[test]
fn malformed_frames_are_errors() {
    let cases: Vec<(&[u8], FrameError)> = vec![
        (&[99, 0], FrameError::UnknownType(99)),
        (
            &[T_SUB, 2, 5, b'a'],
            FrameError::Malformed("field runs past the frame"),
        ),
        (&[T_PING, 1, 0], FrameError::Malformed("trailing bytes")),
        (&[T_SYNC, 2, 0, 0], FrameError::Malformed("truncated")),
        (
            &[T_SUB, 3, 2, 0xff, 0xfe],
            FrameError::Malformed("invalid UTF-8"),
        ),
        (
            &[T_MSG, 12, 1, b't', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            FrameError::Malformed("bad message flags"),
        ),
        (
            &[T_PING, 0xff, 0xff, 0xff, 0xff, 0x0f],
            FrameError::TooLarge(0xffff_ffff),
        ),
        // A 10th varint byte above 1 (caught by the route_frame fuzz target's round trip):
        // it used to be read as 2^63, the value of the canonical ...0x80 0x01.
        (
            &[
                T_CLIENT, 12, 1, b'c', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f,
            ],
            FrameError::Malformed("varint overflows 64 bits"),
        ),
    ];
    for (bytes, err) in cases {
        assert_eq!(decode(&mut BytesMut::from(bytes)), Err(err), "{bytes:?}");
    }
}

#[test]
fn a_handshake_frame_over_the_limit_is_refused_from_its_header() {
    // Only the header of a frame declaring 100 MB: refused without its body.
    let mut header = BytesMut::from(&[T_INFO][..]);
    put_varint(&mut header, 100_000_000);
    assert_eq!(
        decode_limited(&mut header, MAX_HANDSHAKE_FRAME),
        Err(FrameError::TooLarge(100_000_000))
    );
    // After the handshake the general limit applies: the same header just needs more.
    let mut header = BytesMut::from(&[T_INFO][..]);
    put_varint(&mut header, 100_000_000);
    assert_eq!(decode(&mut header), Ok(None));
    // A real INFO fits the handshake limit.
    let mut info = BytesMut::new();
    encode(&samples()[0], &mut info);
    assert!(info.len() < MAX_HANDSHAKE_FRAME);
    assert!(decode_limited(&mut info, MAX_HANDSHAKE_FRAME)
        .expect("valid")
        .is_some());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut b = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = decode(&mut b) {}
    }

    #[test]
    fn messages_round_trip(topic in "[a-z/]{1,20}", payload in proptest::collection::vec(any::<u8>(), 0..500),
                           qos in 0u8..3, retain: bool, ts: u64) {
        let f = Frame::Msg(RouteMsg {
            topic, payload: payload.into(), qos, retain, ts,
            groups: vec![], group_only: false, redispatched: false,
            expiry_ms: 0, properties: Properties::new(),
        });
        let mut out = BytesMut::new();
        encode(&f, &mut out);
        prop_assert_eq!(decode(&mut out), Ok(Some(f)));
    }
}

fn arb_properties() -> impl Strategy<Value = Properties> {
    (
        proptest::option::of(prop_oneof![
            Just(PayloadFormat::Unspecified),
            Just(PayloadFormat::Utf8)
        ]),
        proptest::option::of("[ -~]{0,12}"),
        proptest::option::of("[a-z/]{1,12}"),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        proptest::collection::vec(("[ -~]{0,6}", "\\PC{0,6}"), 0..5),
    )
        .prop_map(|(format, ct, rt, cd, user)| {
            Properties::from(PropertyValues {
                payload_format_indicator: format,
                content_type: ct,
                response_topic: rt,
                correlation_data: cd.map(Bytes::from),
                user_properties: user,
                ..PropertyValues::default()
            })
        })
}

proptest! {
    #[test]
    fn mqtt5_messages_and_retained_entries_round_trip(
        props in arb_properties(), expiry_ms in prop_oneof![Just(0u64), 1u64..u64::MAX],
        qos in 0u8..3, retain: bool, ts: u64,
    ) {
        let msg = Frame::Msg(RouteMsg {
            topic: "t".into(), payload: Bytes::from_static(b"p"), qos, retain, ts,
            groups: vec![("g".into(), "#".into())], group_only: false, redispatched: false,
            expiry_ms, properties: props.clone(),
        });
        let kept = Frame::Retain(RetainEntry {
            topic: "r".into(), payload: Bytes::from_static(b"p"), qos, ts,
            origin: "n".into(), expiry_ms, properties: props,
        });
        for f in [msg, kept] {
            let mut out = BytesMut::new();
            encode(&f, &mut out);
            prop_assert_eq!(decode(&mut out), Ok(Some(f)));
            prop_assert!(out.is_empty());
        }
    }
}

#[test]
fn plain_messages_cost_no_more_than_in_version_2() {
    let f = Frame::Msg(RouteMsg {
        topic: "t".into(),
        payload: Bytes::from_static(b"p"),
        qos: 0,
        retain: false,
        ts: 0,
        groups: vec![],
        group_only: false,
        redispatched: false,
        expiry_ms: 0,
        properties: Properties::new(),
    });
    let mut out = BytesMut::new();
    encode(&f, &mut out);
    // type, length, topic (2), flags, ts (8), group count, payload (2).
    assert_eq!(out.len(), 2 + 2 + 1 + 8 + 1 + 2);
}

/// A message frame whose QoS byte is `flags` and whose body after the group count is
/// `tail` (expiry / properties), then a one-byte payload.
fn msg_with(flags: u8, tail: &[u8]) -> BytesMut {
    let mut body = vec![1, b't', flags, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(tail);
    body.extend_from_slice(&[1, b'p']);
    let mut out = BytesMut::from(&[T_MSG][..]);
    put_varint(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

#[test]
fn malformed_mqtt5_fields_are_errors() {
    let cases: Vec<(BytesMut, FrameError)> = vec![
        (msg_with(0x04, &[0]), FrameError::Malformed("zero expiry")),
        (
            msg_with(0x08, &[0]),
            FrameError::Malformed("bad property presence byte"),
        ),
        (
            msg_with(0x08, &[0x20]),
            FrameError::Malformed("bad property presence byte"),
        ),
        (
            msg_with(0x08, &[0x01, 2]),
            FrameError::Malformed("bad payload format indicator"),
        ),
        (
            msg_with(0x08, &[0x10, 0]),
            FrameError::Malformed("user property count"),
        ),
        // A count far beyond the bytes that follow: refused before allocating.
        (
            msg_with(0x08, &[0x10, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            FrameError::Malformed("user property count"),
        ),
        (
            msg_with(0x08, &[0x02, 9, b'x']),
            FrameError::Malformed("field runs past the frame"),
        ),
        (
            msg_with(0x08, &[0x02, 1, 0xff]),
            FrameError::Malformed("invalid UTF-8"),
        ),
    ];
    for (mut bytes, err) in cases {
        let shown = format!("{bytes:?}");
        assert_eq!(decode(&mut bytes), Err(err), "{shown}");
    }
    // A well-formed one, for contrast: expiry 1 ms and a content type.
    let mut ok = msg_with(0x0c, &[1, 0x02, 1, b'x']);
    let Ok(Some(Frame::Msg(m))) = decode(&mut ok) else {
        panic!("valid frame")
    };
    assert_eq!(m.expiry_ms, 1);
    assert_eq!(
        m.properties.values_or_empty().content_type.as_deref(),
        Some("x")
    );
}

#[test]
fn a_version_2_peer_is_refused_with_both_versions_named() {
    assert_eq!(VERSION, 3);
    let mut v2 = BytesMut::from(&b"SMQR\x02"[..]);
    let e = decode_preamble(&mut v2).expect_err("old peer");
    assert_eq!(e, FrameError::BadVersion(2));
    let text = e.to_string();
    assert!(
        text.contains("version 2") && text.contains("speaks 3"),
        "{text}"
    );
    assert!(
        text.contains("same supermq version on every node"),
        "{text}"
    );
}

#[test]
fn expiry_is_sent_as_milliseconds_left_rounded_up() {
    let now = Instant::now();
    assert_eq!(expiry_ms(None, now), Some(0));
    assert_eq!(expiry_ms(Some(now), now), None, "expired");
    assert_eq!(expiry_ms(Some(now), now + Duration::from_secs(1)), None);
    let left = Duration::from_micros(1_500);
    assert_eq!(expiry_ms(Some(now + left), now), Some(2));
    assert_eq!(expiry_ms(Some(now + Duration::from_nanos(1)), now), Some(1));
    assert_eq!(expires_at(0, now), None);
    assert_eq!(
        expires_at(1_500, now),
        Some(now + Duration::from_millis(1_500))
    );
    assert_eq!(
        expires_at(u64::MAX, now),
        now.checked_add(Duration::from_millis(u64::MAX))
    );
}

#[test]
fn the_fuzz_seeds_are_valid_version_3_streams() {
    // Each seed: a selector byte (bit 0: the stream starts with the preamble), then bytes.
    let seeds: [&[u8]; 4] = [
        include_bytes!("../../fuzz/seeds/route_frame/msg5"),
        include_bytes!("../../fuzz/seeds/route_frame/retain5"),
        include_bytes!("../../fuzz/seeds/route_frame/handshake"),
        include_bytes!("../../fuzz/seeds/route_frame/snapshot"),
    ];
    for seed in seeds {
        let mut b = BytesMut::from(&seed[1..]);
        if seed[0] & 1 != 0 {
            assert_eq!(decode_preamble(&mut b), Ok(true), "{seed:?}");
        }
        let mut n = 0;
        while let Some(f) = decode(&mut b).expect("valid seed") {
            if let Frame::Msg(RouteMsg { properties, .. })
            | Frame::Retain(RetainEntry { properties, .. }) = &f
            {
                n += usize::from(!properties.is_empty());
            }
        }
        assert!(b.is_empty(), "{seed:?}");
        assert!(
            n > 0 || seed[0] & 1 != 0,
            "{seed:?}: the MQTT 5 fields are covered"
        );
    }
}
