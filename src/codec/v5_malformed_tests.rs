//! Malformed MQTT 5 input: a table of packets, each with the error it must produce and the
//! reason code (0x81 Malformed Packet, 0x82 Protocol Error, ...) the connection answers it
//! with (MQTT 5.0 §4.13). Rows cover duplicate, misplaced, unknown and ill-valued properties,
//! property lengths that are cut short or overrun the packet, reason codes outside each
//! packet's table, the subscription options byte, topic and alias rules, and AUTH below 5.

use bytes::{BufMut, BytesMut};

use super::v5_tests::pkt;
use super::*;

use super::decode::{RULE_EMPTY_SUBACK, RULE_EMPTY_UNSUBACK};

const V5: ProtocolLevel = ProtocolLevel::V5;
const V311: ProtocolLevel = ProtocolLevel::V311;

/// A property block of `inner` (shorter than 128 bytes).
fn props(inner: &[u8]) -> Vec<u8> {
    let mut v = vec![inner.len() as u8];
    v.extend_from_slice(inner);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// QoS 0 PUBLISH to `a` with properties `inner` and no payload.
fn publish(inner: &[u8]) -> Vec<u8> {
    pkt(0x30, &cat(&[&[0, 1, b'a'], &props(inner)]))
}

/// Level-5 CONNECT (clean start, client id `c`) with CONNECT properties `inner`.
fn connect(inner: &[u8]) -> Vec<u8> {
    let head: &[u8] = &[0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60];
    pkt(0x10, &cat(&[head, &props(inner), &[0, 1, b'c']]))
}

/// Level-5 CONNECT with a will (topic `t`, empty message) whose properties are `inner`.
fn will(inner: &[u8]) -> Vec<u8> {
    let head: &[u8] = &[0, 4, b'M', b'Q', b'T', b'T', 5, 0x06, 0, 60, 0, 0, 1, b'c'];
    pkt(0x10, &cat(&[head, &props(inner), &[0, 1, b't', 0, 0]]))
}

/// Level-5 CONNECT with the flags byte `flags` and nothing else set.
fn connect_flags(flags: u8) -> Vec<u8> {
    pkt(
        0x10,
        &[0, 4, b'M', b'Q', b'T', b'T', 5, flags, 0, 60, 0, 0, 1, b'c'],
    )
}

fn connack(inner: &[u8]) -> Vec<u8> {
    pkt(0x20, &cat(&[&[0, 0], &props(inner)]))
}

/// PUBACK-like packet `first` (pkid 1, reason 0) with properties `inner`.
fn ack(first: u8, inner: &[u8]) -> Vec<u8> {
    pkt(first, &cat(&[&[0, 1, 0], &props(inner)]))
}

/// SUBSCRIBE of `a` at QoS 0 with properties `inner`.
fn subscribe(inner: &[u8]) -> Vec<u8> {
    pkt(0x82, &cat(&[&[0, 1], &props(inner), &[0, 1, b'a', 0]]))
}

/// SUBSCRIBE of `filter` with options byte `options`.
fn subscribe_options(filter: &[u8], options: u8) -> Vec<u8> {
    let len: &[u8] = &[0, filter.len() as u8];
    pkt(0x82, &cat(&[&[0, 1, 0], len, filter, &[options]]))
}

fn unsubscribe(inner: &[u8]) -> Vec<u8> {
    pkt(0xA2, &cat(&[&[0, 1], &props(inner), &[0, 1, b'a']]))
}

fn suback(inner: &[u8], codes: &[u8]) -> Vec<u8> {
    pkt(0x90, &cat(&[&[0, 1], &props(inner), codes]))
}

fn unsuback(inner: &[u8], codes: &[u8]) -> Vec<u8> {
    pkt(0xB0, &cat(&[&[0, 1], &props(inner), codes]))
}

fn disconnect(inner: &[u8]) -> Vec<u8> {
    pkt(0xE0, &cat(&[&[0x00], &props(inner)]))
}

fn auth(inner: &[u8]) -> Vec<u8> {
    pkt(0xF0, &cat(&[&[0x18], &props(inner)]))
}

#[test]
fn malformed_v5_packets() {
    use DecodeError::*;
    const MALFORMED: u8 = 0x81;
    const PROTOCOL: u8 = 0x82;
    let dup = DuplicateProperty;
    let wrong = |id, packet| PropertyNotAllowed { id, packet };
    let value = |id, rule| InvalidPropertyValue { id, rule };
    let reason = |packet_type, code| InvalidReasonCode { packet_type, code };
    let opt = |options, rule| InvalidSubscriptionOption { options, rule };
    let zero_or_one = "a byte property must be 0 or 1 (MQTT 5.0 §3.1.2.11, §3.2.2.3, §3.3.2.3.2)";
    let rh3 = "Retain Handling is 3 (MQTT 5.0 §3.8.3.1)";
    let qos3 = "Maximum QoS is 3 (MQTT 5.0 §3.8.3.1)";
    let shared = "No Local on a shared subscription [MQTT-3.8.3-4]";
    let (ack_name, connack_name) = ("PUBACK/PUBREC/PUBREL/PUBCOMP", "CONNACK");
    let user: &[u8] = &[0x26, 0, 1, b'k', 0, 1, b'v'];
    #[rustfmt::skip]
    let rows: Vec<(&str, ProtocolLevel, Vec<u8>, DecodeError, u8)> = vec![
        // A property twice: "It is a Protocol Error to include ... more than once".
        ("PUBLISH payload format twice", V5, publish(&[0x01, 0, 0x01, 1]), dup(0x01), PROTOCOL),
        ("PUBLISH message expiry twice", V5, publish(&[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1]), dup(0x02), PROTOCOL),
        ("PUBLISH content type twice", V5, publish(&[0x03, 0, 1, b'x', 0x03, 0, 0]), dup(0x03), PROTOCOL),
        ("PUBLISH response topic twice", V5, publish(&[0x08, 0, 1, b'r', 0x08, 0, 1, b'r']), dup(0x08), PROTOCOL),
        ("PUBLISH correlation data twice", V5, publish(&[0x09, 0, 0, 0x09, 0, 0]), dup(0x09), PROTOCOL),
        ("PUBLISH topic alias twice", V5, publish(&[0x23, 0, 1, 0x23, 0, 2]), dup(0x23), PROTOCOL),
        ("SUBSCRIBE two subscription ids", V5, subscribe(&[0x0B, 1, 0x0B, 2]), dup(0x0B), PROTOCOL),
        ("CONNECT session expiry twice", V5, connect(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1]), dup(0x11), PROTOCOL),
        ("CONNECT receive maximum twice", V5, connect(&[0x21, 0, 1, 0x21, 0, 1]), dup(0x21), PROTOCOL),
        ("CONNECT maximum packet size twice", V5, connect(&[0x27, 0, 0, 1, 0, 0x27, 0, 0, 1, 0]), dup(0x27), PROTOCOL),
        ("CONNECT topic alias maximum twice", V5, connect(&[0x22, 0, 1, 0x22, 0, 1]), dup(0x22), PROTOCOL),
        ("CONNECT request problem info twice", V5, connect(&[0x17, 1, 0x17, 1]), dup(0x17), PROTOCOL),
        ("CONNECT request response info twice", V5, connect(&[0x19, 0, 0x19, 0]), dup(0x19), PROTOCOL),
        ("CONNECT authentication method twice", V5, connect(&[0x15, 0, 1, b'M', 0x15, 0, 1, b'M']), dup(0x15), PROTOCOL),
        ("CONNECT authentication data twice", V5, connect(&[0x15, 0, 1, b'M', 0x16, 0, 0, 0x16, 0, 0]), dup(0x16), PROTOCOL),
        ("will delay twice", V5, will(&[0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 1]), dup(0x18), PROTOCOL),
        ("CONNACK server keep alive twice", V5, connack(&[0x13, 0, 1, 0x13, 0, 1]), dup(0x13), PROTOCOL),
        ("CONNACK maximum QoS twice", V5, connack(&[0x24, 0, 0x24, 0]), dup(0x24), PROTOCOL),
        ("CONNACK retain available twice", V5, connack(&[0x25, 1, 0x25, 1]), dup(0x25), PROTOCOL),
        ("CONNACK assigned client id twice", V5, connack(&[0x12, 0, 1, b'i', 0x12, 0, 1, b'i']), dup(0x12), PROTOCOL),
        ("PUBACK reason string twice", V5, ack(0x40, &[0x1F, 0, 1, b'x', 0x1F, 0, 1, b'y']), dup(0x1F), PROTOCOL),
        ("DISCONNECT server reference twice", V5, disconnect(&[0x1C, 0, 0, 0x1C, 0, 0]), dup(0x1C), PROTOCOL),
        ("AUTH method twice", V5, auth(&[0x15, 0, 1, b'M', 0x15, 0, 1, b'M']), dup(0x15), PROTOCOL),
        // A property on a packet that may not carry it (table 2-4).
        ("PUBLISH session expiry", V5, publish(&[0x11, 0, 0, 0, 1]), wrong(0x11, "PUBLISH"), PROTOCOL),
        ("PUBLISH will delay", V5, publish(&[0x18, 0, 0, 0, 1]), wrong(0x18, "PUBLISH"), PROTOCOL),
        ("PUBLISH reason string", V5, publish(&[0x1F, 0, 0]), wrong(0x1F, "PUBLISH"), PROTOCOL),
        ("CONNECT topic alias", V5, connect(&[0x23, 0, 1]), wrong(0x23, "CONNECT"), PROTOCOL),
        ("CONNECT will delay outside the will", V5, connect(&[0x18, 0, 0, 0, 1]), wrong(0x18, "CONNECT"), PROTOCOL),
        ("CONNECT payload format", V5, connect(&[0x01, 1]), wrong(0x01, "CONNECT"), PROTOCOL),
        ("will session expiry", V5, will(&[0x11, 0, 0, 0, 1]), wrong(0x11, "will"), PROTOCOL),
        ("will topic alias", V5, will(&[0x23, 0, 1]), wrong(0x23, "will"), PROTOCOL),
        ("CONNACK request problem info", V5, connack(&[0x17, 1]), wrong(0x17, connack_name), PROTOCOL),
        ("CONNACK topic alias", V5, connack(&[0x23, 0, 1]), wrong(0x23, connack_name), PROTOCOL),
        ("PUBACK session expiry", V5, ack(0x40, &[0x11, 0, 0, 0, 1]), wrong(0x11, ack_name), PROTOCOL),
        ("PUBREL content type", V5, ack(0x62, &[0x03, 0, 0]), wrong(0x03, ack_name), PROTOCOL),
        ("SUBSCRIBE reason string", V5, subscribe(&[0x1F, 0, 0]), wrong(0x1F, "SUBSCRIBE"), PROTOCOL),
        ("SUBSCRIBE topic alias", V5, subscribe(&[0x23, 0, 1]), wrong(0x23, "SUBSCRIBE"), PROTOCOL),
        ("UNSUBSCRIBE subscription id", V5, unsubscribe(&[0x0B, 1]), wrong(0x0B, "UNSUBSCRIBE"), PROTOCOL),
        ("SUBACK subscription id", V5, suback(&[0x0B, 1], &[0]), wrong(0x0B, "SUBACK"), PROTOCOL),
        ("UNSUBACK session expiry", V5, unsuback(&[0x11, 0, 0, 0, 1], &[0]), wrong(0x11, "UNSUBACK"), PROTOCOL),
        ("DISCONNECT authentication method", V5, disconnect(&[0x15, 0, 1, b'M']), wrong(0x15, "DISCONNECT"), PROTOCOL),
        ("AUTH session expiry", V5, auth(&[0x11, 0, 0, 0, 1]), wrong(0x11, "AUTH"), PROTOCOL),
        // Identifiers MQTT 5.0 does not define: the rest cannot be parsed.
        ("PUBLISH property 0x00", V5, publish(&[0x00, 1]), UnknownProperty(0x00), MALFORMED),
        ("PUBLISH property 0x04", V5, publish(&[0x04, 1]), UnknownProperty(0x04), MALFORMED),
        ("CONNECT property 0x7F", V5, connect(&[0x7F]), UnknownProperty(0x7F), MALFORMED),
        ("PUBACK property 0x2B", V5, ack(0x40, &[0x2B, 0]), UnknownProperty(0x2B), MALFORMED),
        ("PUBLISH property 0x80 (two-byte id)", V5, publish(&[0x80, 0x01]), UnknownProperty(0x80), MALFORMED),
        // Values the spec forbids.
        ("PUBLISH topic alias 0", V5, publish(&[0x23, 0, 0]), value(0x23, "Topic Alias is 0 [MQTT-3.3.2-8]"), 0x94),
        ("PUBLISH subscription id 0", V5, publish(&[0x0B, 0]), value(0x0B, "Subscription Identifier is 0 (MQTT 5.0 §3.3.2.3.8, §3.8.2.1.2)"), PROTOCOL),
        ("SUBSCRIBE subscription id 0", V5, subscribe(&[0x0B, 0]), value(0x0B, "Subscription Identifier is 0 (MQTT 5.0 §3.3.2.3.8, §3.8.2.1.2)"), PROTOCOL),
        ("CONNECT receive maximum 0", V5, connect(&[0x21, 0, 0]), value(0x21, "Receive Maximum is 0 (MQTT 5.0 §3.1.2.11.3)"), PROTOCOL),
        ("CONNACK receive maximum 0", V5, connack(&[0x21, 0, 0]), value(0x21, "Receive Maximum is 0 (MQTT 5.0 §3.1.2.11.3)"), PROTOCOL),
        ("CONNECT maximum packet size 0", V5, connect(&[0x27, 0, 0, 0, 0]), value(0x27, "Maximum Packet Size is 0 (MQTT 5.0 §3.1.2.11.4)"), PROTOCOL),
        ("PUBLISH payload format 2", V5, publish(&[0x01, 2]), value(0x01, zero_or_one), PROTOCOL),
        ("will payload format 5", V5, will(&[0x01, 5]), value(0x01, zero_or_one), PROTOCOL),
        ("CONNECT request problem info 2", V5, connect(&[0x17, 2]), value(0x17, zero_or_one), PROTOCOL),
        ("CONNECT request response info 2", V5, connect(&[0x19, 2]), value(0x19, zero_or_one), PROTOCOL),
        ("CONNACK maximum QoS 2", V5, connack(&[0x24, 2]), value(0x24, zero_or_one), PROTOCOL),
        ("CONNACK retain available 2", V5, connack(&[0x25, 2]), value(0x25, zero_or_one), PROTOCOL),
        ("CONNACK wildcard available 2", V5, connack(&[0x28, 2]), value(0x28, zero_or_one), PROTOCOL),
        ("CONNACK subscription ids available 2", V5, connack(&[0x29, 2]), value(0x29, zero_or_one), PROTOCOL),
        ("CONNACK shared available 0xFF", V5, connack(&[0x2A, 0xFF]), value(0x2A, zero_or_one), PROTOCOL),
        ("CONNECT auth data without method", V5, connect(&[0x16, 0, 1, 1]), value(0x16, "Authentication Data without an Authentication Method (MQTT 5.0 §3.1.2.11.10)"), PROTOCOL),
        // Encodings: Variable Byte Integers, lengths, strings.
        ("subscription id of 5 bytes", V5, publish(&[0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), MalformedVariableByteInteger, MALFORMED),
        ("property length of 5 bytes", V5, pkt(0x30, &[0, 1, b'a', 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), MalformedVariableByteInteger, MALFORMED),
        ("property length cut short", V5, pkt(0x30, &[0, 1, b'a', 0x80]), Truncated, MALFORMED),
        ("property length beyond the packet", V5, pkt(0x30, &[0, 1, b'a', 5, 0x01]), Truncated, MALFORMED),
        ("property value beyond its block", V5, pkt(0x30, &[0, 1, b'a', 2, 0x02, 0, 0, 0, 1]), Truncated, MALFORMED),
        ("PUBACK property length beyond the packet", V5, pkt(0x40, &[0, 1, 0, 9]), Truncated, MALFORMED),
        ("CONNECT without its property length", V5, pkt(0x10, &[0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60]), Truncated, MALFORMED),
        ("content type invalid UTF-8", V5, publish(&[0x03, 0, 1, 0xFF]), InvalidUtf8, MALFORMED),
        ("user property value invalid UTF-8", V5, publish(&[0x26, 0, 1, b'k', 0, 1, 0xC0]), InvalidUtf8, MALFORMED),
        ("reason string with U+0000", V5, ack(0x40, &[0x1F, 0, 1, 0]), InvalidUtf8, MALFORMED),
        ("response topic with a wildcard", V5, publish(&[0x08, 0, 1, b'#']), InvalidTopicName, MALFORMED),
        ("PUBACK byte after the properties", V5, pkt(0x40, &[0, 1, 0, 0, 0xFF]), TrailingBytes, MALFORMED),
        // Reason codes outside the packet's table (§2.4, table 2-6).
        ("PUBACK 0x01", V5, pkt(0x40, &[0, 1, 0x01]), reason(4, 0x01), MALFORMED),
        ("PUBACK 0x92", V5, pkt(0x40, &[0, 1, 0x92]), reason(4, 0x92), MALFORMED),
        ("PUBACK 0x05 (undefined)", V5, pkt(0x40, &[0, 1, 0x05]), reason(4, 0x05), MALFORMED),
        ("PUBREC 0x11", V5, pkt(0x50, &[0, 1, 0x11]), reason(5, 0x11), MALFORMED),
        ("PUBREL 0x10", V5, pkt(0x62, &[0, 1, 0x10]), reason(6, 0x10), MALFORMED),
        ("PUBCOMP 0x80", V5, pkt(0x70, &[0, 1, 0x80]), reason(7, 0x80), MALFORMED),
        ("CONNACK 0x04", V5, pkt(0x20, &[0, 0x04, 0]), reason(2, 0x04), MALFORMED),
        ("CONNACK 0x8B", V5, pkt(0x20, &[0, 0x8B, 0]), reason(2, 0x8B), MALFORMED),
        ("SUBACK 0x03", V5, suback(&[], &[0x03]), reason(9, 0x03), MALFORMED),
        ("SUBACK 0x11", V5, suback(&[], &[0x00, 0x11]), reason(9, 0x11), MALFORMED),
        ("UNSUBACK 0x01", V5, unsuback(&[], &[0x01]), reason(11, 0x01), MALFORMED),
        ("UNSUBACK 0x92", V5, unsuback(&[], &[0x92]), reason(11, 0x92), MALFORMED),
        ("DISCONNECT 0x01", V5, pkt(0xE0, &[0x01]), reason(14, 0x01), MALFORMED),
        ("DISCONNECT 0x84", V5, pkt(0xE0, &[0x84, 0]), reason(14, 0x84), MALFORMED),
        ("AUTH 0x01", V5, pkt(0xF0, &[0x01, 0]), reason(15, 0x01), MALFORMED),
        ("AUTH 0x80", V5, pkt(0xF0, &[0x80]), reason(15, 0x80), MALFORMED),
        // SUBSCRIBE options (§3.8.3.1).
        ("Retain Handling 3", V5, subscribe_options(b"a", 0x30), opt(0x30, rh3), PROTOCOL),
        ("options QoS 3", V5, subscribe_options(b"a", 0x03), opt(0x03, qos3), PROTOCOL),
        ("options reserved bit 6", V5, subscribe_options(b"a", 0x40), InvalidSubscribeOptions(0x40), MALFORMED),
        ("options reserved bit 7", V5, subscribe_options(b"a", 0x81), InvalidSubscribeOptions(0x81), MALFORMED),
        ("No Local on a shared subscription", V5, subscribe_options(b"$share/g/a", 0x04), opt(0x04, shared), PROTOCOL),
        ("SUBSCRIBE without filters", V5, pkt(0x82, &cat(&[&[0, 1], &props(user)])), NoTopicFilters, PROTOCOL),
        ("UNSUBSCRIBE without filters", V5, pkt(0xA2, &[0, 1, 0]), NoTopicFilters, PROTOCOL),
        ("SUBACK without codes", V5, suback(&[], &[]), Malformed(RULE_EMPTY_SUBACK), MALFORMED),
        ("UNSUBACK without codes", V5, unsuback(&[], &[]), Malformed(RULE_EMPTY_UNSUBACK), MALFORMED),
        // Topics and aliases (§3.3.2.1, §3.3.2.3.4).
        ("PUBLISH empty topic without alias", V5, pkt(0x30, &[0, 0, 0]), MissingTopicAlias, PROTOCOL),
        ("PUBLISH empty topic, other properties", V5, pkt(0x30, &[0, 0, 2, 0x01, 1, b'x']), MissingTopicAlias, PROTOCOL),
        ("PUBLISH wildcard topic with alias", V5, pkt(0x30, &[0, 1, b'+', 3, 0x23, 0, 1]), InvalidTopicName, MALFORMED),
        ("PUBLISH QoS 1 zero packet id", V5, pkt(0x32, &[0, 1, b'a', 0, 0, 0]), ZeroPacketId, MALFORMED),
        // Fixed header and CONNECT flags.
        ("AUTH at level 4", V311, vec![0xF0, 0x00], ReservedPacketType(15), MALFORMED),
        ("AUTH at level 3", ProtocolLevel::V31, vec![0xF0, 0x00], ReservedPacketType(15), MALFORMED),
        ("AUTH flags 0001", V5, vec![0xF1, 0x00], InvalidFixedHeaderFlags { packet_type: 15, flags: 1 }, MALFORMED),
        ("PUBACK remaining length 1", V5, vec![0x40, 0x01, 0x00], Truncated, MALFORMED),
        ("PINGREQ remaining length 1", V5, vec![0xC0, 0x01, 0x00], TrailingBytes, MALFORMED),
        ("CONNECT v5 reserved flag", V5, connect_flags(0x03), InvalidConnectFlags { flags: 0x03, rule: super::decode::RULE_RESERVED_FLAG }, MALFORMED),
        ("CONNECT v5 will QoS without will", V5, connect_flags(0x08), InvalidConnectFlags { flags: 0x08, rule: super::decode::RULE_WILL_QOS }, MALFORMED),
        ("CONNECT v5 will QoS 3", V5, connect_flags(0x1C), InvalidQoS, MALFORMED),
        ("CONNACK v5 reserved flags", V5, pkt(0x20, &[0x02, 0, 0]), InvalidConnAckFlags(0x02), MALFORMED),
        ("CONNECT level 6", V5, pkt(0x10, &[0, 4, b'M', b'Q', b'T', b'T', 6, 2, 0, 60, 0, 0, 1, b'c']), UnsupportedProtocolLevel(6), 0x84),
    ];
    assert!(rows.len() >= 60, "{} rows", rows.len());
    let limits = DecodeLimits::default();
    let mut failures = Vec::new();
    for (name, level, bytes, want, code) in &rows {
        let mut buf = BytesMut::from(&bytes[..]);
        let got = decode(&mut buf, &limits, *level);
        if got.as_ref() != Err(want) {
            failures.push(format!("{name}: expected Err({want:?}), got {got:?}"));
        } else if want.reason_code().to_u8() != *code {
            failures.push(format!(
                "{name}: reason {:#04x}, expected {code:#04x}",
                want.reason_code().to_u8()
            ));
        }
        // A cut-short copy never panics either, and is "need more" or an error.
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert!(
                !matches!(decode(&mut buf, &limits, *level), Ok(Some(_))),
                "{name} cut at {cut}"
            );
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
fn limits_and_their_reason_codes_at_level_5() {
    let small = DecodeLimits {
        max_packet_size: 8,
        ..DecodeLimits::default()
    };
    let mut buf = BytesMut::from(&publish(&[0x26, 0, 1, b'k', 0, 1, b'v'])[..]);
    let err = decode(&mut buf, &small, V5).expect_err("too large");
    assert!(matches!(err, DecodeError::PacketTooLarge { .. }));
    assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);

    // Topic limits apply to every topic field: topic, will topic, response topic, filters.
    let tight = DecodeLimits {
        max_topic_levels: 2,
        max_topic_length: 8,
        ..DecodeLimits::default()
    };
    let deep = pkt(0x30, &[0, 5, b'a', b'/', b'b', b'/', b'c', 0]);
    let response = publish(&[0x08, 0, 5, b'a', b'/', b'b', b'/', b'c']);
    let filter = subscribe_options(b"a/b/c", 0);
    let mut long = BytesMut::new();
    long.put_slice(&pkt(
        0x30,
        &[
            0, 9, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i', 0,
        ],
    ));
    for (name, bytes) in [
        ("topic", deep),
        ("response topic", response),
        ("filter", filter),
    ] {
        let mut buf = BytesMut::from(&bytes[..]);
        let err = decode(&mut buf, &tight, V5).expect_err(name);
        assert_eq!(
            err,
            DecodeError::TopicTooDeep { levels: 3, max: 2 },
            "{name}"
        );
        assert_eq!(err.reason_code(), ReasonCode::ImplementationSpecificError);
    }
    let err = decode(&mut long, &tight, V5).expect_err("long");
    assert_eq!(err, DecodeError::TopicTooLong { len: 9, max: 8 });
    assert_eq!(err.reason_code(), ReasonCode::ImplementationSpecificError);
}
