//! [`Packet`] → bytes at a given protocol level: the exact wire form of every MQTT 5, 3.1.1
//! and 3.1 control packet (§2–3 of each).
//!
//! Owns serialisation only, and what each level leaves out: at 3.1 and 3.1.1 the wire has no
//! properties, no reason code in PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK or DISCONNECT, and
//! no subscription option but the QoS, so those are dropped; a SUBACK error is written as
//! 0x80 (§3.9.3) and a CONNACK reason as its 3.1.1 return code (§3.2.2.3). At level 5 every
//! reason code and property the packet may carry is written (properties in one fixed order,
//! `encode/props.rs`, and only where table 2-4 allows them), and acknowledgements take the
//! short forms Mosquitto sends: PUBACK, PUBREC, PUBREL and PUBCOMP are a packet id alone for
//! a success without properties, DISCONNECT is empty for a normal disconnection without
//! properties, AUTH empty for a success without properties (MQTT 5.0 §3.4.2.1, §3.14.2.1,
//! §3.15.2.1). AUTH exists at MQTT 5 only and is written in that form whatever the level.
//!
//! Input is trusted: packets built by the broker or returned by `decode`. The length of every
//! packet is computed up front so that encoding costs one `reserve` and no intermediate
//! buffer, and a PUBLISH header can be written apart from its payload so one payload can be
//! shared by every subscriber it is forwarded to.
//!
//! Callers must keep strings and binary fields at most 65,535 bytes (§1.5.3) and packets
//! within the 268,435,455-byte remaining length (§2.2.3); `decode` never produces anything
//! larger, and debug builds assert it.

mod props;

use bytes::{BufMut, BytesMut};

use super::decode::{
    AUTH, CONNACK, CONNECT, DISCONNECT, MAX_REMAINING_LENGTH, PINGREQ, PINGRESP, PUBACK, PUBCOMP,
    PUBLISH, PUBREC, PUBREL, SUBACK, SUBSCRIBE, UNSUBACK, UNSUBSCRIBE,
};
use super::level::ProtocolLevel;
use super::packet::{Ack, Auth, Connect, Disconnect, Packet, PublishHeader, QoS};
use super::properties::{Properties, PropertyContext};
use super::reason::ReasonCode;
use props::Props;

/// Appends the wire form of `packet` at `level` to `out`, reserving exactly [`encoded_len`]
/// first. A CONNECT is written at its own level, whatever `level` is: it is what sets the
/// connection's level.
pub fn encode(packet: &Packet, level: ProtocolLevel, out: &mut BytesMut) {
    let remaining = remaining_len(packet, level);
    out.reserve(1 + remaining_length_len(remaining) + remaining);
    let v5 = level.is_v5();
    match packet {
        Packet::Connect(c) => put_connect(c, remaining, out),
        Packet::ConnAck(a) => {
            put_fixed_header(out, CONNACK << 4, remaining);
            out.put_u8(u8::from(a.session_present));
            if v5 {
                // MQTT 5.0 §3.2.2.2, §3.2.2.3.
                out.put_u8(a.reason.to_u8());
                put_props(out, &Props::of(PropertyContext::ConnAck, &a.properties));
            } else {
                // §3.2.2.3: only return codes 0–5 exist at these levels.
                out.put_u8(a.return_code() as u8);
            }
        }
        Packet::Publish(p) => {
            put_publish_header(&p.header(), remaining, level, out);
            out.put_slice(&p.payload);
        }
        Packet::PubAck(a) => put_ack(out, PUBACK << 4, a, remaining),
        Packet::PubRec(a) => put_ack(out, PUBREC << 4, a, remaining),
        // PUBREL, SUBSCRIBE and UNSUBSCRIBE carry flags 0b0010 [MQTT-3.6.1-1].
        Packet::PubRel(a) => put_ack(out, PUBREL << 4 | 0b0010, a, remaining),
        Packet::PubComp(a) => put_ack(out, PUBCOMP << 4, a, remaining),
        Packet::Subscribe(s) => {
            put_fixed_header(out, SUBSCRIBE << 4 | 0b0010, remaining); // [MQTT-3.8.1-1]
            out.put_u16(s.pkid);
            if v5 {
                put_props(out, &Props::of(PropertyContext::Subscribe, &s.properties));
            }
            for f in &s.filters {
                put_str(out, &f.filter);
                let o = f.options;
                let byte = if v5 {
                    // MQTT 5.0 §3.8.3.1: QoS, No Local, Retain As Published, Retain
                    // Handling; bits 6–7 stay 0 [MQTT-3.8.3-5].
                    o.qos as u8
                        | u8::from(o.no_local) << 2
                        | u8::from(o.retain_as_published) << 3
                        | (o.retain_handling as u8) << 4
                } else {
                    // §3.8.3.1: the QoS alone; the upper six bits are reserved
                    // [MQTT-3.8.3-4].
                    o.qos as u8
                };
                out.put_u8(byte);
            }
        }
        Packet::SubAck(s) => {
            put_fixed_header(out, SUBACK << 4, remaining);
            out.put_u16(s.pkid);
            if v5 {
                put_props(out, &Props::of(PropertyContext::SubAck, &s.properties));
                for &reason in &s.reasons {
                    out.put_u8(reason.to_u8());
                }
            } else {
                for &reason in &s.reasons {
                    out.put_u8(suback_return_code(reason));
                }
            }
        }
        Packet::Unsubscribe(u) => {
            put_fixed_header(out, UNSUBSCRIBE << 4 | 0b0010, remaining); // [MQTT-3.10.1-1]
            out.put_u16(u.pkid);
            if v5 {
                put_props(out, &Props::of(PropertyContext::Unsubscribe, &u.properties));
            }
            for f in &u.filters {
                put_str(out, f);
            }
        }
        Packet::UnsubAck(a) => {
            put_fixed_header(out, UNSUBACK << 4, remaining);
            out.put_u16(a.pkid);
            // §3.11 of 3.1.1: a packet id and nothing else.
            if v5 {
                put_props(out, &Props::of(PropertyContext::UnsubAck, &a.properties));
                for &reason in &a.reasons {
                    out.put_u8(reason.to_u8());
                }
            }
        }
        Packet::PingReq => put_fixed_header(out, PINGREQ << 4, 0),
        Packet::PingResp => put_fixed_header(out, PINGRESP << 4, 0),
        Packet::Disconnect(d) => {
            put_fixed_header(out, DISCONNECT << 4, remaining);
            // The remaining length says which form (`disconnect_len`): 0 is nothing, 1 a
            // reason alone.
            if remaining > 0 {
                out.put_u8(d.reason.to_u8());
            }
            if remaining > 1 {
                put_props(out, &Props::of(PropertyContext::Disconnect, &d.properties));
            }
        }
        Packet::Auth(a) => {
            put_fixed_header(out, AUTH << 4, remaining);
            if remaining > 0 {
                out.put_u8(a.reason.to_u8());
                put_props(out, &Props::of(PropertyContext::Auth, &a.properties));
            }
        }
    }
}

/// The exact number of bytes [`encode`] writes for `packet` at `level`.
pub fn encoded_len(packet: &Packet, level: ProtocolLevel) -> usize {
    let remaining = remaining_len(packet, level);
    1 + remaining_length_len(remaining) + remaining
}

/// Writes a PUBLISH fixed header, topic, packet id (if `qos > 0`) and, at level 5, properties,
/// but not the payload of `header.payload_len` bytes: the caller appends or chains it.
/// `header.pkid` is ignored for QoS 0, which has no packet identifier (§3.3.2.2).
pub fn encode_publish_header(header: &PublishHeader<'_>, level: ProtocolLevel, out: &mut BytesMut) {
    let remaining = publish_remaining_len(header, level);
    // Only the header is reserved: the payload may never be copied into `out`.
    out.reserve(1 + remaining_length_len(remaining) + remaining - header.payload_len);
    put_publish_header(header, remaining, level, out);
}

/// The size of the whole PUBLISH `header` describes, payload included: what
/// [`encode_publish_header`] writes plus `header.payload_len`. A connection compares it with
/// the peer's Maximum Packet Size before sending (MQTT 5.0 §3.1.2.11.4 [MQTT-3.1.2-24]).
pub fn publish_header_len(header: &PublishHeader<'_>, level: ProtocolLevel) -> usize {
    let remaining = publish_remaining_len(header, level);
    1 + remaining_length_len(remaining) + remaining
}

/// A SUBACK code as 3.1 and 3.1.1 write it: the granted QoS, or 0x80 for any failure
/// (§3.9.3); a code that grants nothing grants no subscription.
fn suback_return_code(reason: ReasonCode) -> u8 {
    reason.granted_qos().map_or(0x80, |qos| qos as u8)
}

/// Appends the remaining length in its 1–4 byte variable-length form (§2.2.3).
pub(super) fn put_remaining_length(out: &mut BytesMut, mut len: usize) {
    debug_assert!(
        len <= MAX_REMAINING_LENGTH,
        "remaining length {len} exceeds §2.2.3"
    );
    loop {
        let mut byte = (len & 0x7F) as u8;
        len >>= 7;
        if len > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if len == 0 {
            return;
        }
    }
}

/// How many bytes [`put_remaining_length`] uses for `len` (§2.2.3, table 2.4).
pub(super) fn remaining_length_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The remaining length of `packet` at `level`: everything after the fixed header.
fn remaining_len(packet: &Packet, level: ProtocolLevel) -> usize {
    let v5 = level.is_v5();
    // A property block at level 5, nothing below.
    let block = |ctx, p: &Properties| {
        if v5 {
            Props::of(ctx, p).block_len()
        } else {
            0
        }
    };
    match packet {
        Packet::Connect(c) => connect_remaining_len(c),
        // Flags, and a return code or (MQTT 5) reason code and properties.
        Packet::ConnAck(a) => 2 + block(PropertyContext::ConnAck, &a.properties),
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            if v5 {
                ack_len(a)
            } else {
                // At 3.1 and 3.1.1 acknowledgements are a packet id, and nothing MQTT 5 adds.
                2
            }
        }
        Packet::Publish(p) => publish_remaining_len(&p.header(), level),
        Packet::Subscribe(s) => {
            2 + block(PropertyContext::Subscribe, &s.properties)
                + s.filters
                    .iter()
                    .map(|f| 2 + f.filter.len() + 1)
                    .sum::<usize>()
        }
        Packet::SubAck(s) => 2 + block(PropertyContext::SubAck, &s.properties) + s.reasons.len(),
        Packet::Unsubscribe(u) => {
            2 + block(PropertyContext::Unsubscribe, &u.properties)
                + u.filters.iter().map(|f| 2 + f.len()).sum::<usize>()
        }
        Packet::UnsubAck(a) => {
            if v5 {
                2 + block(PropertyContext::UnsubAck, &a.properties) + a.reasons.len()
            } else {
                2
            }
        }
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => {
            if v5 {
                disconnect_len(d)
            } else {
                0
            }
        }
        Packet::Auth(a) => auth_len(a),
    }
}

/// An MQTT 5 acknowledgement (§3.4.2): 2 for a success without properties, 3 for a reason
/// without properties, and the full form otherwise.
fn ack_len(a: &Ack) -> usize {
    let body = Props::of(PropertyContext::Ack, &a.properties).body_len();
    match (a.reason, body) {
        (ReasonCode::Success, 0) => 2,
        (_, 0) => 3,
        _ => 3 + remaining_length_len(body) + body,
    }
}

/// An MQTT 5 DISCONNECT (§3.14.2): 0 for a normal disconnection without properties, 1 for a
/// reason without properties, and the full form otherwise.
fn disconnect_len(d: &Disconnect) -> usize {
    let body = Props::of(PropertyContext::Disconnect, &d.properties).body_len();
    match (d.reason, body) {
        (ReasonCode::NormalDisconnection, 0) => 0,
        (_, 0) => 1,
        _ => 1 + remaining_length_len(body) + body,
    }
}

/// An AUTH (§3.15.2): 0 for a success without properties, else reason and properties (the
/// spec knows no reason-only AUTH).
fn auth_len(a: &Auth) -> usize {
    let body = Props::of(PropertyContext::Auth, &a.properties).body_len();
    match (a.reason, body) {
        (ReasonCode::Success, 0) => 0,
        _ => 1 + remaining_length_len(body) + body,
    }
}

/// Everything after the fixed header of the PUBLISH `h` describes, payload included.
fn publish_remaining_len(h: &PublishHeader<'_>, level: ProtocolLevel) -> usize {
    let pkid_len = if h.qos == QoS::AtMostOnce { 0 } else { 2 };
    let props = if level.is_v5() {
        Props::publish(h).block_len()
    } else {
        0
    };
    2 + h.topic.len() + pkid_len + props + h.payload_len
}

fn connect_remaining_len(c: &Connect) -> usize {
    let v5 = c.level.is_v5();
    let name = c.level.protocol_name();
    // Name, level, flags, keep alive (§3.1.2), properties at MQTT 5 (§3.1.2.11), then the
    // payload fields (§3.1.3), the will's properties first at MQTT 5 (§3.1.3.2).
    let properties = if v5 {
        Props::of(PropertyContext::Connect, &c.properties).block_len()
    } else {
        0
    };
    let variable_header = 2 + name.len() + 1 + 1 + 2 + properties;
    let will = c.will.as_ref().map_or(0, |w| {
        let properties = if v5 {
            Props::of(PropertyContext::Will, &w.properties).block_len()
        } else {
            0
        };
        properties + 2 + w.topic.len() + 2 + w.payload.len()
    });
    let username = c.username.as_ref().map_or(0, |u| 2 + u.len());
    let password = c.password.as_ref().map_or(0, |p| 2 + p.len());
    variable_header + 2 + c.client_id.len() + will + username + password
}

fn put_connect(c: &Connect, remaining: usize, out: &mut BytesMut) {
    let v5 = c.level.is_v5();
    put_fixed_header(out, CONNECT << 4, remaining);
    // §3.1.2.1, §3.1.2.2: the name and level byte of the CONNECT's own level.
    put_str(out, c.level.protocol_name());
    out.put_u8(c.level.to_u8());
    // §3.1.2.3: bit 0 stays 0 [MQTT-3.1.2-3]; will QoS/retain only with a will. Bit 1 is
    // Clean Session at 3.1.1 and Clean Start at MQTT 5 (§3.1.2.4).
    let mut flags = 0u8;
    if c.clean_session {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos as u8) << 3;
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    if v5 {
        put_props(out, &Props::of(PropertyContext::Connect, &c.properties));
    }
    // Payload order is fixed [MQTT-3.1.3-1].
    put_str(out, &c.client_id);
    if let Some(w) = &c.will {
        if v5 {
            put_props(out, &Props::of(PropertyContext::Will, &w.properties));
        }
        put_str(out, &w.topic);
        put_binary(out, &w.payload);
    }
    if let Some(u) = &c.username {
        put_str(out, u);
    }
    if let Some(p) = &c.password {
        put_binary(out, p);
    }
}

fn put_publish_header(
    h: &PublishHeader<'_>,
    remaining: usize,
    level: ProtocolLevel,
    out: &mut BytesMut,
) {
    // §3.3.1: DUP bit 3, QoS bits 2–1, RETAIN bit 0.
    let first = PUBLISH << 4 | u8::from(h.dup) << 3 | (h.qos as u8) << 1 | u8::from(h.retain);
    put_fixed_header(out, first, remaining);
    put_str(out, h.topic);
    if h.qos != QoS::AtMostOnce {
        out.put_u16(h.pkid);
    }
    if level.is_v5() {
        put_props(out, &Props::publish(h));
    }
}

/// A property block: its length, then the properties.
fn put_props(out: &mut BytesMut, props: &Props<'_>) {
    props.put(out, props.body_len());
}

fn put_fixed_header(out: &mut BytesMut, first: u8, remaining: usize) {
    out.put_u8(first);
    put_remaining_length(out, remaining);
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id, then at MQTT 5 the reason and properties
/// when the remaining length ([`ack_len`]) has room for them.
fn put_ack(out: &mut BytesMut, first: u8, a: &Ack, remaining: usize) {
    put_fixed_header(out, first, remaining);
    out.put_u16(a.pkid);
    if remaining > 2 {
        out.put_u8(a.reason.to_u8());
    }
    if remaining > 3 {
        put_props(out, &Props::of(PropertyContext::Ack, &a.properties));
    }
}

/// A UTF-8 string with its 2-byte big-endian length prefix (§1.5.3).
fn put_str(out: &mut BytesMut, s: &str) {
    put_binary(out, s.as_bytes());
}

/// Binary data with its 2-byte big-endian length prefix (§3.1.3.3, §3.1.3.5).
fn put_binary(out: &mut BytesMut, data: &[u8]) {
    debug_assert!(
        data.len() <= usize::from(u16::MAX),
        "field of {} bytes",
        data.len()
    );
    out.put_u16(data.len() as u16);
    out.put_slice(data);
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
