//! Decoder framing tests: remaining lengths, limits and byte-at-a-time input.

use super::reader::check_topic_name;
use super::*;
use proptest::prelude::*;

/// Decodes until the buffer is exhausted, an error occurs or more input is needed.
fn drain(bytes: &[u8], limits: &DecodeLimits) {
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(_)) = decode(&mut buf, limits, ProtocolLevel::V311) {}
}

/// Whether `s` may be used as a PUBLISH or will topic name: at least one character
/// [MQTT-4.7.3-1], no wildcard [MQTT-3.3.2-2], no U+0000 [MQTT-1.5.3-2].
fn is_valid_topic_name(s: &str) -> bool {
    check_topic_name(s, &DecodeLimits::default()).is_ok()
}

#[test]
fn topic_name_validity() {
    assert!(is_valid_topic_name("a"));
    assert!(is_valid_topic_name("/"));
    assert!(is_valid_topic_name("sport/tennis/player1"));
    assert!(is_valid_topic_name("\u{FEFF}é/日本"));
    assert!(!is_valid_topic_name(""));
    assert!(!is_valid_topic_name("a/+/b"));
    assert!(!is_valid_topic_name("a/#"));
    assert!(!is_valid_topic_name("a\0b"));
}

#[test]
fn remaining_length_needs_more_bytes() {
    assert_eq!(read_remaining_length(&[]), Ok(None));
    assert_eq!(read_remaining_length(&[0x80]), Ok(None));
    assert_eq!(read_remaining_length(&[0xFF, 0xFF, 0xFF]), Ok(None));
    assert_eq!(
        read_remaining_length(&[0xFF, 0xFF, 0xFF, 0xFF]),
        Err(DecodeError::MalformedRemainingLength)
    );
    // Non-minimal but within 4 bytes: accepted.
    assert_eq!(read_remaining_length(&[0x80, 0x00]), Ok(Some((0, 2))));
}

#[test]
fn default_limit_is_the_protocol_maximum() {
    assert_eq!(DecodeLimits::default().max_packet_size, 268_435_460);
}

#[test]
fn empty_buffer_needs_more() {
    let mut buf = BytesMut::new();
    assert_eq!(
        decode(&mut buf, &DecodeLimits::default(), ProtocolLevel::V311),
        Ok(None)
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        drain(&bytes, &DecodeLimits::default());
        drain(
            &bytes,
            &DecodeLimits {
                max_packet_size: 16,
                ..DecodeLimits::default()
            },
        );
    }

    /// Random bytes rarely get past the first field; a valid header with a random body
    /// reaches the per-type parsers.
    #[test]
    fn random_bodies_never_panic(
        first in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..128),
        announced in 0u8..128,
    ) {
        // Sometimes the announced length matches the body, sometimes not.
        let len = if announced % 2 == 0 { body.len() as u8 } else { announced };
        let mut bytes = vec![first, len];
        bytes.extend_from_slice(&body);
        drain(&bytes, &DecodeLimits::default());
    }
}
