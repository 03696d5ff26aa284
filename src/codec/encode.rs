//! [`Packet`] → bytes at a given protocol level: the exact wire form of every MQTT 3.1.1 / 3.1
//! control packet (§2–3).
//!
//! Owns serialisation only, and what each level leaves out: at 3.1 and 3.1.1 the wire has no
//! properties, no reason code in PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK or DISCONNECT, and
//! no subscription option but the QoS, so those are dropped; a SUBACK error is written as
//! 0x80 (§3.9.3) and a CONNACK reason as its 3.1.1 return code (§3.2.2.3). Level 5 has no
//! encoder yet: no connection reaches it (its CONNECT is refused), debug builds assert that,
//! and release builds would write the 3.1.1 form.
//!
//! Input is trusted: packets built by the broker or returned by `decode`. The length of every
//! packet is computed up front so that encoding costs one `reserve` and no intermediate
//! buffer, and a PUBLISH header can be written apart from its payload so one payload can be
//! shared by every subscriber it is forwarded to.
//!
//! Callers must keep strings and binary fields at most 65,535 bytes (§1.5.3) and packets
//! within the 268,435,455-byte remaining length (§2.2.3); `decode` never produces anything
//! larger, and debug builds assert it.

use bytes::{BufMut, BytesMut};

use super::decode::{
    CONNACK, CONNECT, DISCONNECT, MAX_REMAINING_LENGTH, PINGREQ, PINGRESP, PUBACK, PUBCOMP,
    PUBLISH, PUBREC, PUBREL, SUBACK, SUBSCRIBE, UNSUBACK, UNSUBSCRIBE,
};
use super::level::ProtocolLevel;
use super::packet::{Connect, Packet, PublishHeader, QoS};
use super::reason::ReasonCode;

/// Appends the wire form of `packet` at `level` to `out`, reserving exactly [`encoded_len`]
/// first. A CONNECT is written at its own level, whatever `level` is: it is what sets the
/// connection's level.
pub fn encode(packet: &Packet, level: ProtocolLevel, out: &mut BytesMut) {
    debug_assert_encodable(packet, level);
    let remaining = remaining_len(packet);
    out.reserve(1 + remaining_length_len(remaining) + remaining);
    match packet {
        Packet::Connect(c) => put_connect(c, remaining, out),
        Packet::ConnAck(a) => {
            put_fixed_header(out, CONNACK << 4, remaining);
            out.put_u8(u8::from(a.session_present));
            // §3.2.2.3: only return codes 0–5 exist at these levels.
            out.put_u8(a.return_code() as u8);
        }
        Packet::Publish(p) => {
            put_publish_header(&p.header(), remaining, out);
            out.put_slice(&p.payload);
        }
        Packet::PubAck(a) => put_ack(out, PUBACK << 4, a.pkid),
        Packet::PubRec(a) => put_ack(out, PUBREC << 4, a.pkid),
        // PUBREL, SUBSCRIBE and UNSUBSCRIBE carry flags 0b0010 [MQTT-3.6.1-1].
        Packet::PubRel(a) => put_ack(out, PUBREL << 4 | 0b0010, a.pkid),
        Packet::PubComp(a) => put_ack(out, PUBCOMP << 4, a.pkid),
        Packet::Subscribe(s) => {
            put_fixed_header(out, SUBSCRIBE << 4 | 0b0010, remaining); // [MQTT-3.8.1-1]
            out.put_u16(s.pkid);
            for f in &s.filters {
                put_str(out, &f.filter);
                // §3.8.3.1: the QoS alone; the upper six bits are reserved [MQTT-3.8.3-4].
                out.put_u8(f.options.qos as u8);
            }
        }
        Packet::SubAck(s) => {
            put_fixed_header(out, SUBACK << 4, remaining);
            out.put_u16(s.pkid);
            for &reason in &s.reasons {
                out.put_u8(suback_return_code(reason));
            }
        }
        Packet::Unsubscribe(u) => {
            put_fixed_header(out, UNSUBSCRIBE << 4 | 0b0010, remaining); // [MQTT-3.10.1-1]
            out.put_u16(u.pkid);
            for f in &u.filters {
                put_str(out, f);
            }
        }
        Packet::UnsubAck(a) => put_ack(out, UNSUBACK << 4, a.pkid),
        Packet::PingReq => put_fixed_header(out, PINGREQ << 4, 0),
        Packet::PingResp => put_fixed_header(out, PINGRESP << 4, 0),
        Packet::Disconnect(_) => put_fixed_header(out, DISCONNECT << 4, 0),
        // MQTT 5 only; `debug_assert_encodable` rejects it below level 5.
        Packet::Auth(_) => put_fixed_header(out, 15 << 4, 0),
    }
}

/// The exact number of bytes [`encode`] writes for `packet` at `level`.
pub fn encoded_len(packet: &Packet, level: ProtocolLevel) -> usize {
    debug_assert_encodable(packet, level);
    let remaining = remaining_len(packet);
    1 + remaining_length_len(remaining) + remaining
}

/// Writes a PUBLISH fixed header, topic and (if `qos > 0`) packet id at `level`, but not the
/// payload of `header.payload_len` bytes: the caller appends or chains it. `header.pkid` is
/// ignored for QoS 0, which has no packet identifier (§3.3.2.2).
pub fn encode_publish_header(header: &PublishHeader<'_>, level: ProtocolLevel, out: &mut BytesMut) {
    debug_assert!(!level.is_v5(), "MQTT 5 is not encoded yet");
    let remaining = publish_remaining_len(header.qos, header.topic.len(), header.payload_len);
    // Only the header is reserved: the payload may never be copied into `out`.
    out.reserve(1 + remaining_length_len(remaining) + remaining - header.payload_len);
    put_publish_header(header, remaining, out);
}

/// The whole size of the PUBLISH `header` describes (its payload included) at `level`.
pub fn publish_header_len(header: &PublishHeader<'_>, level: ProtocolLevel) -> usize {
    let _ = level;
    let remaining = publish_remaining_len(header.qos, header.topic.len(), header.payload_len);
    1 + remaining_length_len(remaining) + remaining
}

/// Level 5 is modelled but has no wire form yet; no connection reaches it (see the module
/// doc), so a packet meant for it is a bug of the caller.
fn debug_assert_encodable(packet: &Packet, level: ProtocolLevel) {
    let level = match packet {
        Packet::Connect(c) => c.level,
        _ => level,
    };
    debug_assert!(!level.is_v5(), "MQTT 5 is not encoded yet");
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

/// The remaining length of `packet`: everything after the fixed header.
fn remaining_len(packet: &Packet) -> usize {
    match packet {
        Packet::Connect(c) => connect_remaining_len(c),
        // At 3.1 and 3.1.1 acknowledgements are a packet id, and nothing MQTT 5 adds.
        Packet::ConnAck(_)
        | Packet::PubAck(_)
        | Packet::PubRec(_)
        | Packet::PubRel(_)
        | Packet::PubComp(_)
        | Packet::UnsubAck(_) => 2,
        Packet::Publish(p) => publish_remaining_len(p.qos, p.topic.len(), p.payload.len()),
        Packet::Subscribe(s) => {
            2 + s
                .filters
                .iter()
                .map(|f| 2 + f.filter.len() + 1)
                .sum::<usize>()
        }
        Packet::SubAck(s) => 2 + s.reasons.len(),
        Packet::Unsubscribe(u) => 2 + u.filters.iter().map(|f| 2 + f.len()).sum::<usize>(),
        Packet::PingReq | Packet::PingResp | Packet::Disconnect(_) | Packet::Auth(_) => 0,
    }
}

fn publish_remaining_len(qos: QoS, topic_len: usize, payload_len: usize) -> usize {
    let pkid_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
    2 + topic_len + pkid_len + payload_len
}

fn connect_remaining_len(c: &Connect) -> usize {
    let name = c.level.protocol_name();
    // Name, level, flags, keep alive (§3.1.2), then the payload fields (§3.1.3).
    let variable_header = 2 + name.len() + 1 + 1 + 2;
    let will = c
        .will
        .as_ref()
        .map_or(0, |w| 2 + w.topic.len() + 2 + w.payload.len());
    let username = c.username.as_ref().map_or(0, |u| 2 + u.len());
    let password = c.password.as_ref().map_or(0, |p| 2 + p.len());
    variable_header + 2 + c.client_id.len() + will + username + password
}

fn put_connect(c: &Connect, remaining: usize, out: &mut BytesMut) {
    put_fixed_header(out, CONNECT << 4, remaining);
    // §3.1.2.1, §3.1.2.2: the name and level byte of the CONNECT's own level.
    put_str(out, c.level.protocol_name());
    out.put_u8(c.level.to_u8());
    // §3.1.2.3: bit 0 stays 0 [MQTT-3.1.2-3]; will QoS/retain only with a will.
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
    // Payload order is fixed [MQTT-3.1.3-1].
    put_str(out, &c.client_id);
    if let Some(w) = &c.will {
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

fn put_publish_header(h: &PublishHeader<'_>, remaining: usize, out: &mut BytesMut) {
    // §3.3.1: DUP bit 3, QoS bits 2–1, RETAIN bit 0.
    let first = PUBLISH << 4 | u8::from(h.dup) << 3 | (h.qos as u8) << 1 | u8::from(h.retain);
    put_fixed_header(out, first, remaining);
    put_str(out, h.topic);
    if h.qos != QoS::AtMostOnce {
        out.put_u16(h.pkid);
    }
}

fn put_fixed_header(out: &mut BytesMut, first: u8, remaining: usize) {
    out.put_u8(first);
    put_remaining_length(out, remaining);
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: a packet id and nothing else.
fn put_ack(out: &mut BytesMut, first: u8, pkid: u16) {
    put_fixed_header(out, first, 2);
    out.put_u16(pkid);
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
