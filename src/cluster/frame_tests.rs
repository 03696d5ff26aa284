//! Route frame tests: byte layouts, round trips, malformed frames and the handshake bound.

use super::*;
use proptest::prelude::*;

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
        });
        let mut out = BytesMut::new();
        encode(&f, &mut out);
        prop_assert_eq!(decode(&mut out), Ok(Some(f)));
    }
}
