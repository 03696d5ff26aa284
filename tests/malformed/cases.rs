//! The table of `tests/malformed.rs`: byte sequences a client must not send, each with the
//! moment it is sent and the reaction the spec asks of the broker.

use crate::common::{connect_frame, frame, s};

/// When the row's bytes are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// On a fresh TCP connection, in place of CONNECT.
    FirstPacket,
    /// After a valid CONNECT has been answered with CONNACK 0.
    AfterConnect,
}

/// How the broker must react.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// The connection is closed and nothing is sent on it.
    Closed,
    /// A CONNACK with this return code, then the connection is closed.
    ConnAckThenClose(u8),
}

pub(crate) use Expect::*;
pub(crate) use Phase::*;

/// A 3.1.1 CONNECT ("MQTT", level 4) with `flags` and `payload`.
fn connect4(flags: u8, payload: &[u8]) -> Vec<u8> {
    connect_frame(b"MQTT", 4, flags, payload)
}

/// A PUBLISH with first byte `first` and body `topic field ++ rest`.
fn publish(first: u8, topic: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut body = s(topic);
    body.extend_from_slice(rest);
    frame(first, &body)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Every row: (name, phase, bytes, expected reaction).
pub(crate) fn cases() -> Vec<(&'static str, Phase, Vec<u8>, Expect)> {
    let id = s(b"row");
    vec![
        // --- Framing (§2.2) -------------------------------------------------------------
        // Types 0 and 15 are reserved (§2.2.1, table 2.1).
        (
            "reserved type 0 first",
            FirstPacket,
            vec![0x00, 0x00],
            Closed,
        ),
        (
            "reserved type 15 first",
            FirstPacket,
            vec![0xF0, 0x00],
            Closed,
        ),
        ("reserved type 0", AfterConnect, vec![0x00, 0x00], Closed),
        ("reserved type 15", AfterConnect, vec![0xF0, 0x00], Closed),
        // A 4th length byte with its continuation bit set would need a 5th (§2.2.3).
        (
            "remaining length of 5 bytes first",
            FirstPacket,
            vec![0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            Closed,
        ),
        (
            "remaining length of 5 bytes",
            AfterConnect,
            vec![0x30, 0x80, 0x80, 0x80, 0x80, 0x01],
            Closed,
        ),
        // --- Fixed-header flags of each type (table 2.2) [MQTT-2.2.2-1, MQTT-2.2.2-2] ------
        (
            "CONNECT flags 0x11",
            FirstPacket,
            {
                let mut c = connect4(0x02, &id);
                c[0] = 0x11;
                c
            },
            Closed,
        ),
        (
            "PUBACK flags 0x41",
            AfterConnect,
            vec![0x41, 2, 0, 1],
            Closed,
        ),
        (
            "PUBREC flags 0x52",
            AfterConnect,
            vec![0x52, 2, 0, 1],
            Closed,
        ),
        // PUBREL must carry 0b0010 [MQTT-3.6.1-1].
        (
            "PUBREL flags 0x60",
            AfterConnect,
            vec![0x60, 2, 0, 1],
            Closed,
        ),
        (
            "PUBCOMP flags 0x72",
            AfterConnect,
            vec![0x72, 2, 0, 1],
            Closed,
        ),
        // SUBSCRIBE must carry 0b0010 [MQTT-3.8.1-1].
        (
            "SUBSCRIBE flags 0x80",
            AfterConnect,
            frame(0x80, &cat(&[&[0, 1], &s(b"a"), &[0]])),
            Closed,
        ),
        // UNSUBSCRIBE must carry 0b0010 [MQTT-3.10.1-1].
        (
            "UNSUBSCRIBE flags 0xA0",
            AfterConnect,
            frame(0xA0, &cat(&[&[0, 1], &s(b"a")])),
            Closed,
        ),
        ("PINGREQ flags 0xC1", AfterConnect, vec![0xC1, 0], Closed),
        ("DISCONNECT flags 0xE1", AfterConnect, vec![0xE1, 0], Closed),
        // --- CONNECT (§3.1) ---------------------------------------------------------------
        // A foreign protocol name gets no CONNACK at all [MQTT-3.1.2-1].
        (
            "protocol name MQXX",
            FirstPacket,
            connect_frame(b"MQXX", 4, 0x02, &id),
            Closed,
        ),
        (
            "protocol name mqtt",
            FirstPacket,
            connect_frame(b"mqtt", 4, 0x02, &id),
            Closed,
        ),
        // A known name with an unsupported level gets CONNACK 0x01 [MQTT-3.1.2-2].
        (
            "MQTT level 3",
            FirstPacket,
            connect_frame(b"MQTT", 3, 0x02, &id),
            ConnAckThenClose(1),
        ),
        (
            "MQTT level 6",
            FirstPacket,
            connect_frame(b"MQTT", 6, 0x02, &id),
            ConnAckThenClose(1),
        ),
        // Level 5 in 3.1.1's layout: the properties length is missing, so the CONNECT is
        // malformed, and a CONNECT that cannot be read is closed without a CONNACK.
        (
            "MQTT level 5 without properties",
            FirstPacket,
            connect_frame(b"MQTT", 5, 0x02, &id),
            Closed,
        ),
        (
            "MQIsdp level 4",
            FirstPacket,
            connect_frame(b"MQIsdp", 4, 0x02, &id),
            ConnAckThenClose(1),
        ),
        // [MQTT-3.1.2-3]: the reserved flag bit must be 0.
        (
            "CONNECT reserved flag",
            FirstPacket,
            connect4(0x03, &id),
            Closed,
        ),
        // [MQTT-3.1.2-14]: will QoS 3.
        (
            "will QoS 3",
            FirstPacket,
            connect4(0x1E, &cat(&[&id, &s(b"w"), &s(b"m")])),
            Closed,
        ),
        // [MQTT-3.1.2-13]: will QoS without the will flag.
        (
            "will QoS without will flag",
            FirstPacket,
            connect4(0x0A, &id),
            Closed,
        ),
        // [MQTT-3.1.2-15]: will retain without the will flag.
        (
            "will retain without will flag",
            FirstPacket,
            connect4(0x22, &id),
            Closed,
        ),
        // [MQTT-3.1.2-22]: password flag without user name flag.
        (
            "password without username",
            FirstPacket,
            connect4(0x42, &cat(&[&id, &s(b"secret")])),
            Closed,
        ),
        // [MQTT-1.5.3-1]: ill-formed UTF-8 (0xC3 0x28) and an encoded surrogate (U+D800).
        (
            "invalid UTF-8 client id",
            FirstPacket,
            connect4(0x02, &s(&[0xC3, 0x28])),
            Closed,
        ),
        (
            "surrogate in client id",
            FirstPacket,
            connect4(0x02, &s(&[b'a', 0xED, 0xA0, 0x80])),
            Closed,
        ),
        // [MQTT-1.5.3-2]: U+0000 in a string.
        (
            "U+0000 in client id",
            FirstPacket,
            connect4(0x02, &s(b"a\0b")),
            Closed,
        ),
        (
            "U+0000 in will topic",
            FirstPacket,
            connect4(0x06, &cat(&[&id, &s(b"w\0t"), &s(b"m")])),
            Closed,
        ),
        // [MQTT-3.3.2-2] applies to the will topic too (§3.1.3.2).
        (
            "wildcard in will topic",
            FirstPacket,
            connect4(0x06, &cat(&[&id, &s(b"w/#"), &s(b"m")])),
            Closed,
        ),
        // The remaining length ends before the fields it must hold: the client id's length
        // prefix is missing (§2.2.3). The packet is complete, so this is not "wait for more".
        (
            "CONNECT shorter than its fields",
            FirstPacket,
            connect4(0x02, &[]),
            Closed,
        ),
        (
            "CONNECT client id past remaining length",
            FirstPacket,
            connect4(0x02, &[0, 5, b'a', b'b']),
            Closed,
        ),
        (
            "CONNECT trailing bytes",
            FirstPacket,
            connect4(0x02, &cat(&[&id, &[0xAA]])),
            Closed,
        ),
        // [MQTT-3.1.0-1]: the first packet must be CONNECT.
        ("PINGREQ first", FirstPacket, vec![0xC0, 0], Closed),
        (
            "PUBLISH first",
            FirstPacket,
            publish(0x30, b"t", b"x"),
            Closed,
        ),
        // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
        ("second CONNECT", AfterConnect, connect4(0x02, &id), Closed),
        // --- PUBLISH (§3.3) ---------------------------------------------------------------
        // [MQTT-3.3.1-4]: QoS 3.
        (
            "PUBLISH QoS 3",
            AfterConnect,
            publish(0x36, b"t", &[0, 1, b'x']),
            Closed,
        ),
        // [MQTT-3.3.1-2]: DUP must be 0 for QoS 0.
        (
            "PUBLISH QoS 0 with DUP",
            AfterConnect,
            publish(0x38, b"t", b"x"),
            Closed,
        ),
        // [MQTT-3.3.2-2]: no wildcards in a topic name.
        (
            "PUBLISH topic with +",
            AfterConnect,
            publish(0x30, b"a/+/b", b"x"),
            Closed,
        ),
        (
            "PUBLISH topic with #",
            AfterConnect,
            publish(0x30, b"a/#", b"x"),
            Closed,
        ),
        // [MQTT-4.7.3-1]: a topic name is at least one character.
        (
            "PUBLISH empty topic",
            AfterConnect,
            publish(0x30, b"", b"x"),
            Closed,
        ),
        // [MQTT-1.5.3-2], [MQTT-1.5.3-1].
        (
            "PUBLISH topic with U+0000",
            AfterConnect,
            publish(0x30, b"a\0b", b"x"),
            Closed,
        ),
        (
            "PUBLISH topic invalid UTF-8",
            AfterConnect,
            publish(0x30, &[b'a', 0xFF], b"x"),
            Closed,
        ),
        // [MQTT-2.3.1-1]: packet identifiers are non-zero.
        (
            "PUBLISH QoS 1 packet id 0",
            AfterConnect,
            publish(0x32, b"t", &[0, 0]),
            Closed,
        ),
        (
            "PUBLISH QoS 2 packet id 0",
            AfterConnect,
            publish(0x34, b"t", &[0, 0, 7]),
            Closed,
        ),
        // The topic's length prefix runs past the remaining length (§2.2.3).
        (
            "PUBLISH topic past end",
            AfterConnect,
            vec![0x30, 3, 0, 5, b'a'],
            Closed,
        ),
        // --- Acknowledgements: fixed length 2, non-zero id (§3.4–3.7) ---------------------
        (
            "PUBACK remaining length 3",
            AfterConnect,
            vec![0x40, 3, 0, 1, 0],
            Closed,
        ),
        (
            "PUBACK remaining length 1",
            AfterConnect,
            vec![0x40, 1, 0],
            Closed,
        ),
        (
            "PUBACK packet id 0",
            AfterConnect,
            vec![0x40, 2, 0, 0],
            Closed,
        ),
        (
            "PUBREL remaining length 3",
            AfterConnect,
            vec![0x62, 3, 0, 1, 0],
            Closed,
        ),
        // --- SUBSCRIBE (§3.8) -------------------------------------------------------------
        // [MQTT-3.8.3-3]: at least one filter.
        (
            "SUBSCRIBE no filters",
            AfterConnect,
            frame(0x82, &[0, 1]),
            Closed,
        ),
        // [MQTT-3.8.3-4]: requested QoS 3, and reserved bits in the QoS byte.
        (
            "SUBSCRIBE requested QoS 3",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a"), &[3]])),
            Closed,
        ),
        (
            "SUBSCRIBE reserved bits in QoS byte",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a"), &[0x04]])),
            Closed,
        ),
        (
            "SUBSCRIBE QoS byte 0x81",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a"), &[0x81]])),
            Closed,
        ),
        // [MQTT-4.7.3-1]: a filter is at least one character.
        (
            "SUBSCRIBE empty filter",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b""), &[0]])),
            Closed,
        ),
        (
            "SUBSCRIBE filter with U+0000",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a\0"), &[0]])),
            Closed,
        ),
        (
            "SUBSCRIBE packet id 0",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 0], &s(b"a"), &[0]])),
            Closed,
        ),
        // The last filter lacks its QoS byte.
        (
            "SUBSCRIBE filter without QoS byte",
            AfterConnect,
            frame(0x82, &cat(&[&[0, 1], &s(b"a")])),
            Closed,
        ),
        // --- UNSUBSCRIBE (§3.10) ----------------------------------------------------------
        // [MQTT-3.10.3-2]: at least one filter.
        (
            "UNSUBSCRIBE no filters",
            AfterConnect,
            frame(0xA2, &[0, 1]),
            Closed,
        ),
        (
            "UNSUBSCRIBE empty filter",
            AfterConnect,
            frame(0xA2, &cat(&[&[0, 1], &s(b"")])),
            Closed,
        ),
        // --- Fixed-length packets with trailing bytes (§3.12.1, §3.14.1) ------------------
        (
            "PINGREQ trailing bytes",
            AfterConnect,
            vec![0xC0, 1, 0],
            Closed,
        ),
        (
            "DISCONNECT trailing bytes",
            AfterConnect,
            vec![0xE0, 1, 0],
            Closed,
        ),
        // --- Server-to-client packets sent by a client (§4.8) ----------------------------
        (
            "CONNACK from client",
            AfterConnect,
            vec![0x20, 2, 0, 0],
            Closed,
        ),
        (
            "SUBACK from client",
            AfterConnect,
            vec![0x90, 3, 0, 1, 0],
            Closed,
        ),
        (
            "UNSUBACK from client",
            AfterConnect,
            vec![0xB0, 2, 0, 1],
            Closed,
        ),
        ("PINGRESP from client", AfterConnect, vec![0xD0, 0], Closed),
    ]
}
