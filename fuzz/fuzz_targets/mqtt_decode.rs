//! `mqtt_decode`: the MQTT packet decoder, `supermq::codec::decode`, on untrusted bytes.
//!
//! The first input byte is a selector; the rest is the wire input.
//! - bits 0–1 pick the [`DecodeLimits`]: the protocol maximum, a 64-byte packet limit, tight
//!   topic limits (3 levels, 16 bytes), or what the broker's default config gives a connection;
//! - bits 2–3 pick the framing: a raw byte stream (any packets, back to back), or the rest as
//!   the body of a CONNECT after the protocol name and level of MQTT 3.1 (`MQIsdp`, level 3),
//!   3.1.1 (`MQTT`, level 4) or 5 (`MQTT`, level 5);
//! - bits 4–7 pick the chunk size (1–16 bytes) the stream is fed in for the incremental check.
//!
//! Checked, besides "never panics":
//! - `Ok(None)` ("need more bytes") leaves the buffer untouched, and feeding the stream in
//!   chunks yields exactly the packets and the error that decoding it whole does;
//! - every decoded packet re-encodes to `encoded_len` bytes that decode to the same packet;
//!   at 3.1.1 to the very input bytes when the input used the minimal remaining-length
//!   encoding (at MQTT 5 a peer may send longer forms the encoder shortens, or properties in
//!   another order, so there the re-encoding must only be stable: encode, decode, encode
//!   gives the same bytes);
//! - a CONNECT of a known name and level decodes with its level or fails on a later field,
//!   never on the name or level;
//! - every error names a failure reason code (`DecodeError::reason_code`).
//!
//! The stream is read at 3.1.1, the level before (and, for 3.1, after) a CONNECT: 3.1 and
//! 3.1.1 decode every packet alike; and again, separately, at 5.
#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use supermq::codec::{self, DecodeError, DecodeLimits, Packet, ProtocolLevel};

/// The levels the stream is read and re-encoded at, each on its own.
const LEVELS: [ProtocolLevel; 2] = [ProtocolLevel::V311, ProtocolLevel::V5];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let limits = limits(selector & 0b11);
    let chunk = usize::from(selector >> 4) + 1;
    match (selector >> 2) & 0b11 {
        0 => {
            for level in LEVELS {
                stream(rest, &limits, chunk, level);
            }
        }
        1 => connect(b"MQIsdp", 3, rest, &limits),
        2 => connect(b"MQTT", 4, rest, &limits),
        _ => connect(b"MQTT", 5, rest, &limits),
    }
});

fn limits(variant: u8) -> DecodeLimits {
    match variant {
        0 => DecodeLimits::default(),
        1 => DecodeLimits {
            max_packet_size: 64,
            ..DecodeLimits::default()
        },
        2 => DecodeLimits {
            max_topic_levels: 3,
            max_topic_length: 16,
            ..DecodeLimits::default()
        },
        _ => {
            let l = supermq::Config::default().limits;
            DecodeLimits {
                max_packet_size: l.max_packet_size,
                max_topic_levels: l.max_topic_levels,
                max_topic_length: l.max_topic_length,
            }
        }
    }
}

/// One decode step: the result and the input bytes it consumed.
type Step = (Result<Packet, DecodeError>, usize);

/// Decodes `buf` until it is exhausted, needs more bytes or fails; returns every step.
fn drain(
    buf: &mut BytesMut,
    limits: &DecodeLimits,
    level: ProtocolLevel,
    steps: &mut Vec<Step>,
) -> bool {
    loop {
        let before = buf.len();
        match codec::decode(buf, limits, level) {
            Ok(Some(p)) => steps.push((Ok(p), before - buf.len())),
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed input");
                return true;
            }
            Err(e) => {
                assert!(e.reason_code().is_error(), "{e:?} has no failure reason");
                steps.push((Err(e), before - buf.len()));
                return false;
            }
        }
    }
}

fn stream(input: &[u8], limits: &DecodeLimits, chunk: usize, level: ProtocolLevel) {
    let mut whole = Vec::new();
    let mut buf = BytesMut::from(input);
    let clean = drain(&mut buf, limits, level, &mut whole);

    let mut offset = 0;
    for (result, consumed) in &whole {
        let original = &input[offset..offset + consumed];
        offset += consumed;
        if let Ok(p) = result {
            round_trip(p, original, limits, level);
        }
    }

    // The same bytes arriving a few at a time.
    let mut pieces = Vec::new();
    let mut inc = BytesMut::new();
    let mut inc_clean = true;
    for part in input.chunks(chunk) {
        inc.extend_from_slice(part);
        if !drain(&mut inc, limits, level, &mut pieces) {
            inc_clean = false;
            break;
        }
    }
    let whole_results: Vec<_> = whole.iter().map(|(r, _)| r).collect();
    let piece_results: Vec<_> = pieces.iter().map(|(r, _)| r).collect();
    assert_eq!(
        whole_results, piece_results,
        "chunked decoding differs from whole"
    );
    assert_eq!(clean, inc_clean);
    if clean {
        assert_eq!(buf.len(), inc.len(), "different leftover");
    }
}

fn round_trip(p: &Packet, original: &[u8], limits: &DecodeLimits, level: ProtocolLevel) {
    let mut out = BytesMut::new();
    codec::encode(p, level, &mut out);
    assert_eq!(
        out.len(),
        codec::encoded_len(p, level),
        "encoded_len of {p:?}"
    );
    if let Packet::Publish(publish) = p {
        let header = publish.header();
        assert_eq!(
            codec::publish_header_len(&header, level),
            out.len(),
            "publish_header_len of {p:?}"
        );
    }
    // A CONNECT is written at its own level, which decides the check below.
    let wire_level = match p {
        Packet::Connect(c) => c.level,
        _ => level,
    };
    if wire_level.is_v5() {
        // Stable rather than identical: the input may use the longer forms.
        let again = match codec::decode(&mut out.clone(), limits, level) {
            Ok(Some(q)) => q,
            other => panic!("re-decoding {p:?} at 5 gave {other:?}"),
        };
        assert_eq!(&again, p, "re-decoding at 5");
        let mut twice = BytesMut::new();
        codec::encode(&again, level, &mut twice);
        assert_eq!(twice, out, "re-encoding at 5 is not stable");
        return;
    }
    if out.len() == original.len() {
        // Same length means the same (minimal) remaining-length encoding: the encoding of a
        // decoded packet is otherwise unique.
        assert_eq!(&out[..], original, "re-encoding of {p:?} differs");
    } else {
        assert!(out.len() < original.len(), "re-encoding of {p:?} grew");
    }
    let again = codec::decode(&mut out, limits, level);
    assert_eq!(again, Ok(Some(p.clone())), "re-decoding");
    assert!(out.is_empty(), "re-decoding left bytes");
}

/// A complete CONNECT whose body after the protocol level is `body`.
fn connect(name: &[u8], level: u8, body: &[u8], limits: &DecodeLimits) {
    let remaining = 2 + name.len() + 1 + body.len();
    let mut wire = BytesMut::new();
    wire.put_u8(0x10);
    let mut len = remaining;
    loop {
        let byte = (len & 0x7F) as u8;
        len >>= 7;
        if len == 0 {
            wire.put_u8(byte);
            break;
        }
        wire.put_u8(byte | 0x80);
    }
    wire.put_u16(name.len() as u16);
    wire.put_slice(name);
    wire.put_u8(level);
    wire.put_slice(body);
    let original = wire.clone();

    // A CONNECT decodes at its own level, whatever the connection's.
    let got = codec::decode(&mut wire, limits, ProtocolLevel::V311);
    if let Err(DecodeError::PacketTooLarge { .. }) = got {
        return;
    }
    match got {
        Ok(Some(Packet::Connect(c))) => {
            let want = ProtocolLevel::from_u8(level).expect("3, 4 or 5");
            assert_eq!(c.level, want);
            assert!(wire.is_empty());
            round_trip(&Packet::Connect(c), &original, limits, want);
        }
        Ok(other) => panic!("a complete CONNECT decoded as {other:?}"),
        Err(
            e @ (DecodeError::InvalidProtocolName
            | DecodeError::UnsupportedProtocolLevel(_)
            | DecodeError::ReservedPacketType(_)
            | DecodeError::InvalidFixedHeaderFlags { .. }
            | DecodeError::MalformedRemainingLength),
        ) => panic!("a well-framed level-{level} CONNECT refused as {e:?}"),
        Err(_) => {}
    }
}
