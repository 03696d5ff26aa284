//! Bytes → [`Packet`]: framing and every well-formedness rule of MQTT 3.1.1 (spec §1.5, §2, §3),
//! plus the 3.1 `MQIsdp` CONNECT.
//!
//! Owns the decision "is this input a valid packet?". Framing is done first and cheaply: the
//! type byte and remaining length are checked, and the size limit enforced, before a single
//! body byte is waited for. Only a complete packet is split off the input buffer, and every
//! binary field of the result (PUBLISH payload, will message, password) is a slice of that
//! one frozen `Bytes`, so nothing large is ever copied.

use std::str;

use bytes::{Buf, Bytes, BytesMut};

use super::error::DecodeError;
use super::packet::{
    ConnAck, Connect, LastWill, Packet, Protocol, Publish, QoS, SubAck, SubackCode, Subscribe,
    SubscribeFilter, Unsubscribe,
};
use super::reason::ConnectReturnCode;

/// The largest value the 4-byte remaining length can express (§2.2.3).
pub(super) const MAX_REMAINING_LENGTH: usize = 268_435_455;

// Control packet types (§2.2.1, table 2.1); shared with the encoder.
pub(super) const CONNECT: u8 = 1;
pub(super) const CONNACK: u8 = 2;
pub(super) const PUBLISH: u8 = 3;
pub(super) const PUBACK: u8 = 4;
pub(super) const PUBREC: u8 = 5;
pub(super) const PUBREL: u8 = 6;
pub(super) const PUBCOMP: u8 = 7;
pub(super) const SUBSCRIBE: u8 = 8;
pub(super) const SUBACK: u8 = 9;
pub(super) const UNSUBSCRIBE: u8 = 10;
pub(super) const UNSUBACK: u8 = 11;
pub(super) const PINGREQ: u8 = 12;
pub(super) const PINGRESP: u8 = 13;
pub(super) const DISCONNECT: u8 = 14;

// Reasons carried by `DecodeError::InvalidConnectFlags` and `DecodeError::Malformed`.
pub(super) const RULE_RESERVED_FLAG: &str = "reserved bit 0 is set [MQTT-3.1.2-3]";
pub(super) const RULE_WILL_QOS: &str =
    "will QoS set without the will flag [MQTT-3.1.2-11, MQTT-3.1.2-13]";
pub(super) const RULE_WILL_RETAIN: &str =
    "will retain set without the will flag [MQTT-3.1.2-11, MQTT-3.1.2-15]";
pub(super) const RULE_PASSWORD: &str =
    "password flag set without the user name flag [MQTT-3.1.2-22]";
pub(super) const RULE_EMPTY_SUBACK: &str = "SUBACK carries no return codes (§3.9.3)";

/// Resource limits applied while decoding untrusted input.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// The largest packet accepted, counting the fixed header (type byte and remaining length).
    pub max_packet_size: usize,
    /// The most levels a topic name or filter may have (`a/b/c` has 3). Checked here, before
    /// any tree is touched, so a client cannot make the broker build or walk a deep tree.
    pub max_topic_levels: usize,
    /// The longest topic name or filter accepted, in bytes.
    pub max_topic_length: usize,
}

impl Default for DecodeLimits {
    /// The protocol maximum: 1 type byte + 4 length bytes + 268,435,455 (§2.2.3).
    fn default() -> Self {
        DecodeLimits {
            max_packet_size: 1 + 4 + MAX_REMAINING_LENGTH,
            max_topic_levels: usize::MAX,
            max_topic_length: usize::MAX,
        }
    }
}

/// Decodes one packet from the front of `buf`.
///
/// - `Ok(Some(p))`: exactly that packet's bytes were removed from `buf`.
/// - `Ok(None)`: not enough bytes yet; `buf` is untouched.
/// - `Err(_)`: malformed; the caller must close the connection (§4.8). `buf` may have lost
///   the offending packet's bytes and must not be decoded further.
///
/// Errors are reported as early as the bytes allow: a reserved type or bad flags on the
/// first byte, an oversize packet as soon as its remaining length is complete.
pub fn decode(buf: &mut BytesMut, limits: &DecodeLimits) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    check_first_byte(first)?;
    let Some((remaining, len_bytes)) = read_remaining_length(&buf[1..])? else {
        return Ok(None);
    };
    let header_len = 1 + len_bytes;
    let size = header_len + remaining;
    // Enforced before waiting for the body, so a peer cannot make us buffer a huge packet.
    if size > limits.max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: limits.max_packet_size,
        });
    }
    check_fixed_remaining_length(first >> 4, remaining)?;
    if buf.len() < size {
        return Ok(None);
    }

    // Decoded in place: the fields a packet keeps are copied out (a payload once, into an
    // allocation of its own, so a queued message never pins a read buffer), and the read
    // buffer is then advanced past the packet and reused.
    let mut r = Reader {
        frame: &buf[..size],
        pos: header_len,
        limits,
    };
    let packet = body(first, &mut r);
    buf.advance(size);
    packet.map(Some)
}

/// The variable header and payload of a packet whose fixed header is `first`.
fn body(first: u8, r: &mut Reader<'_>) -> Result<Packet, DecodeError> {
    let packet = match first >> 4 {
        CONNECT => Packet::Connect(decode_connect(r)?),
        CONNACK => Packet::ConnAck(decode_connack(r)?),
        PUBLISH => Packet::Publish(decode_publish(first, r)?),
        PUBACK => Packet::PubAck(r.pkid()?),
        PUBREC => Packet::PubRec(r.pkid()?),
        PUBREL => Packet::PubRel(r.pkid()?),
        PUBCOMP => Packet::PubComp(r.pkid()?),
        SUBSCRIBE => Packet::Subscribe(decode_subscribe(r)?),
        SUBACK => Packet::SubAck(decode_suback(r)?),
        UNSUBSCRIBE => Packet::Unsubscribe(decode_unsubscribe(r)?),
        UNSUBACK => Packet::UnsubAck(r.pkid()?),
        PINGREQ => Packet::PingReq,
        PINGRESP => Packet::PingResp,
        DISCONNECT => Packet::Disconnect,
        // Unreachable: `check_first_byte` rejected 0 and 15 already.
        t => return Err(DecodeError::ReservedPacketType(t)),
    };
    r.finish()?;
    Ok(packet)
}

/// Whether `s` may be used as a PUBLISH or will topic name: at least one character
/// [MQTT-4.7.3-1], no wildcard [MQTT-3.3.2-2], no U+0000 [MQTT-1.5.3-2].
pub fn is_valid_topic_name(s: &str) -> bool {
    check_topic_name(s, &DecodeLimits::default()).is_ok()
}

/// Validates the type and flag nibbles of the first fixed-header byte (§2.2, table 2.2).
fn check_first_byte(first: u8) -> Result<(), DecodeError> {
    let packet_type = first >> 4;
    let flags = first & 0x0F;
    let expected = match packet_type {
        0 | 15 => return Err(DecodeError::ReservedPacketType(packet_type)),
        PUBLISH => {
            // Flags are DUP, QoS (2 bits), RETAIN. QoS 3 is malformed [MQTT-3.3.1-4]; DUP
            // makes no sense without a packet id to redeliver [MQTT-3.3.1-2].
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::InvalidQoS);
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::InvalidFixedHeaderFlags { packet_type, flags });
            }
            return Ok(());
        }
        // [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1].
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 0b0010,
        _ => 0,
    };
    // [MQTT-2.2.2-1, MQTT-2.2.2-2]: any other flag value is malformed.
    if flags == expected {
        Ok(())
    } else {
        Err(DecodeError::InvalidFixedHeaderFlags { packet_type, flags })
    }
}

/// Parses a remaining length from the start of `bytes` (§2.2.3): 7 bits per byte, least
/// significant first, high bit = "more follows", at most 4 bytes.
///
/// Returns `(value, bytes used)`, or `None` if the encoding continues past `bytes`.
/// Non-minimal encodings (e.g. `0x80 0x00` for 0) are accepted: 3.1.1 does not forbid them.
pub(super) fn read_remaining_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().take(4).enumerate() {
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        // A 4th byte with its continuation bit set would need a 5th.
        Err(DecodeError::MalformedRemainingLength)
    } else {
        Ok(None)
    }
}

/// Types whose remaining length the spec fixes are refused from the header alone, so a
/// PINGREQ announcing a megabyte never gets buffered.
fn check_fixed_remaining_length(packet_type: u8, remaining: usize) -> Result<(), DecodeError> {
    let expected = match packet_type {
        // §3.2.1, §3.4.1, §3.5.1, §3.6.1, §3.7.1, §3.11.1.
        CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | UNSUBACK => 2,
        // §3.12.1, §3.13.1, §3.14.1.
        PINGREQ | PINGRESP | DISCONNECT => 0,
        _ => return Ok(()),
    };
    match remaining.cmp(&expected) {
        std::cmp::Ordering::Less => Err(DecodeError::Truncated),
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(DecodeError::TrailingBytes),
    }
}

/// CONNECT (§3.1): variable header then payload fields in the fixed order [MQTT-3.1.3-1].
fn decode_connect(r: &mut Reader<'_>) -> Result<Connect, DecodeError> {
    // The name is matched as raw bytes: it only has to equal one of two ASCII constants.
    // Checked before the level so that a foreign protocol never gets a CONNACK [MQTT-3.1.2-1].
    let name = r.length_prefixed()?;
    let is_311 = match name {
        b"MQTT" => true,
        b"MQIsdp" => false,
        _ => return Err(DecodeError::InvalidProtocolName),
    };
    let level = r.u8()?;
    // [MQTT-3.1.2-2]: a known name with another level is answered with CONNACK 0x01.
    let protocol = match (is_311, level) {
        (true, 4) => Protocol::V311,
        (false, 3) => Protocol::V31,
        _ => return Err(DecodeError::UnsupportedProtocolLevel(level)),
    };

    let flags = r.u8()?;
    let bad = |rule| Err(DecodeError::InvalidConnectFlags { flags, rule });
    if flags & 0x01 != 0 {
        return bad(RULE_RESERVED_FLAG);
    }
    let clean_session = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    if !will_flag && will_qos != 0 {
        return bad(RULE_WILL_QOS);
    }
    if !will_flag && will_retain {
        return bad(RULE_WILL_RETAIN);
    }
    // [MQTT-3.1.2-14].
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidQoS)?;
    if password_flag && !username_flag {
        return bad(RULE_PASSWORD);
    }
    let keep_alive = r.u16()?;

    // Payload: client id, will topic, will message, user name, password [MQTT-3.1.3-1].
    // An empty client id is a session-layer decision [MQTT-3.1.3-6..8], not a framing error.
    let client_id = r.string()?;
    let will = if will_flag {
        let topic = r.topic_name()?;
        // The will message is binary data, not a string (§3.1.3.3).
        let payload = r.binary()?;
        Some(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.string()?)
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        protocol,
        clean_session,
        keep_alive,
        client_id,
        will,
        username,
        password,
    })
}

/// CONNACK (§3.2): acknowledge flags, then return code.
fn decode_connack(r: &mut Reader<'_>) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    // §3.2.2.1: bits 7–1 are reserved and must be 0; bit 0 is Session Present.
    if flags & 0xFE != 0 {
        return Err(DecodeError::InvalidConnAckFlags(flags));
    }
    let code = r.u8()?;
    let code = ConnectReturnCode::from_u8(code).ok_or(DecodeError::InvalidReturnCode(code))?;
    Ok(ConnAck {
        session_present: flags & 0x01 != 0,
        code,
    })
}

/// PUBLISH (§3.3): topic, packet id when QoS > 0, then the rest is payload.
fn decode_publish(first: u8, r: &mut Reader<'_>) -> Result<Publish, DecodeError> {
    // `check_first_byte` already rejected QoS 3 and DUP without QoS.
    let qos = QoS::from_u8((first >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)?;
    let topic = r.topic_name()?;
    // [MQTT-2.3.1-1]: only QoS 1 and 2 carry a (non-zero) packet identifier.
    let pkid = if qos == QoS::AtMostOnce { 0 } else { r.pkid()? };
    // The payload may be empty (§3.3.3).
    let payload = r.rest();
    Ok(Publish {
        dup: first & 0x08 != 0,
        qos,
        retain: first & 0x01 != 0,
        topic,
        pkid,
        payload,
    })
}

/// SUBSCRIBE (§3.8): packet id, then one or more (filter, requested QoS) pairs.
fn decode_subscribe(r: &mut Reader<'_>) -> Result<Subscribe, DecodeError> {
    let pkid = r.pkid()?;
    let mut filters = Vec::new();
    while r.has_more() {
        // Wildcard placement is the topic layer's call: it answers 0x80 for a bad filter
        // rather than dropping the connection.
        let filter = r.topic_filter()?;
        let options = r.u8()?;
        // [MQTT-3.8.3-4]: upper 6 bits reserved, QoS 3 malformed.
        if options & 0xFC != 0 {
            return Err(DecodeError::InvalidSubscribeOptions(options));
        }
        let qos = QoS::from_u8(options).ok_or(DecodeError::InvalidQoS)?;
        filters.push(SubscribeFilter { filter, qos });
    }
    // [MQTT-3.8.3-3].
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    Ok(Subscribe { pkid, filters })
}

/// SUBACK (§3.9): packet id, then one return code per requested filter.
fn decode_suback(r: &mut Reader<'_>) -> Result<SubAck, DecodeError> {
    let pkid = r.pkid()?;
    let raw = r.take(r.left())?;
    // A SUBSCRIBE has at least one filter, so its SUBACK has at least one code (§3.9.3).
    if raw.is_empty() {
        return Err(DecodeError::Malformed(RULE_EMPTY_SUBACK));
    }
    let codes = raw
        .iter()
        .map(|&b| match b {
            0x80 => Ok(SubackCode::Failure),
            // [MQTT-3.9.3-2]: anything but 0, 1, 2 and 0x80 is reserved.
            _ => QoS::from_u8(b)
                .map(SubackCode::Granted)
                .ok_or(DecodeError::InvalidSubackCode(b)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SubAck { pkid, codes })
}

/// UNSUBSCRIBE (§3.10): packet id, then one or more topic filters.
fn decode_unsubscribe(r: &mut Reader<'_>) -> Result<Unsubscribe, DecodeError> {
    let pkid = r.pkid()?;
    let mut filters = Vec::new();
    while r.has_more() {
        filters.push(r.topic_filter()?);
    }
    // [MQTT-3.10.3-2].
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    Ok(Unsubscribe { pkid, filters })
}

/// Topic name rules shared by PUBLISH and the CONNECT will topic.
fn check_topic_name(s: &str, limits: &DecodeLimits) -> Result<(), DecodeError> {
    // [MQTT-4.7.3-1].
    if s.is_empty() {
        return Err(DecodeError::InvalidTopicName);
    }
    check_topic_length(s, limits)?;
    // One fused pass for the three forbidden bytes and the level separators: topics are
    // short, so this beats separate memchr scans. Multi-byte UTF-8 sequences only contain
    // bytes >= 0x80, so a byte search cannot hit inside a character.
    let mut levels = 1usize;
    for b in s.bytes() {
        match b {
            b'/' => levels += 1,
            // [MQTT-1.5.3-2].
            0 => return Err(DecodeError::InvalidUtf8),
            // [MQTT-3.3.2-2].
            b'+' | b'#' => return Err(DecodeError::InvalidTopicName),
            _ => {}
        }
    }
    check_topic_levels(levels, limits)
}

/// `limits.max_topic_length` for a topic name or filter.
fn check_topic_length(s: &str, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if s.len() > limits.max_topic_length {
        return Err(DecodeError::TopicTooLong {
            len: s.len(),
            max: limits.max_topic_length,
        });
    }
    Ok(())
}

/// `limits.max_topic_levels` for a topic name or filter of `levels` levels.
fn check_topic_levels(levels: usize, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if levels > limits.max_topic_levels {
        return Err(DecodeError::TopicTooDeep {
            levels,
            max: limits.max_topic_levels,
        });
    }
    Ok(())
}

/// A well-formed MQTT string: valid UTF-8 (which excludes surrogates) [MQTT-1.5.3-1] and no
/// U+0000 [MQTT-1.5.3-2]. U+FEFF is a plain character here [MQTT-1.5.3-3].
fn mqtt_str(raw: &[u8]) -> Result<&str, DecodeError> {
    let s = str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
    // `<[u8]>::contains` on bytes is a memchr search, not a per-byte loop.
    if raw.contains(&0) {
        return Err(DecodeError::InvalidUtf8);
    }
    Ok(s)
}

/// A bounds-checked cursor over one complete packet. Every read checks against the frame,
/// whose length is the announced remaining length, so a field that runs past it is
/// `Truncated` and nothing is ever allocated from a length that the bytes do not back.
struct Reader<'a> {
    frame: &'a [u8],
    pos: usize,
    limits: &'a DecodeLimits,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.frame.len() - self.pos
    }

    fn has_more(&self) -> bool {
        self.pos < self.frame.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let frame: &'a [u8] = self.frame;
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let bytes = frame.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.frame.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Two-byte integers are big-endian (§1.5.2).
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let bytes: [u8; 2] = self
            .take(2)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(u16::from_be_bytes(bytes))
    }

    /// [MQTT-2.3.1-1]: packet identifiers are non-zero.
    fn pkid(&mut self) -> Result<u16, DecodeError> {
        match self.u16()? {
            0 => Err(DecodeError::ZeroPacketId),
            id => Ok(id),
        }
    }

    /// The bytes of a 2-byte-length-prefixed field (§1.5.3).
    fn length_prefixed(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// Binary data (will message, password), copied out of the frame.
    fn binary(&mut self) -> Result<Bytes, DecodeError> {
        self.length_prefixed().map(Bytes::copy_from_slice)
    }

    /// A UTF-8 string field: one validation, one allocation.
    fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.length_prefixed()?;
        mqtt_str(raw).map(String::from)
    }

    /// A topic name: one UTF-8 validation, one fused scan, one allocation.
    fn topic_name(&mut self) -> Result<String, DecodeError> {
        let raw = self.length_prefixed()?;
        let s = str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        check_topic_name(s, self.limits)?;
        Ok(String::from(s))
    }

    /// A topic filter: a non-empty string [MQTT-4.7.3-1]; wildcards are allowed here.
    fn topic_filter(&mut self) -> Result<String, DecodeError> {
        let raw = self.length_prefixed()?;
        let s = mqtt_str(raw)?;
        if s.is_empty() {
            return Err(DecodeError::EmptyTopicFilter);
        }
        check_topic_length(s, self.limits)?;
        // A `$share/<group>/` prefix counts too: the bound is on what the client sent.
        let levels = 1 + s.bytes().filter(|&b| b == b'/').count();
        check_topic_levels(levels, self.limits)?;
        Ok(String::from(s))
    }

    /// Everything up to the end of the packet, copied out of the frame.
    fn rest(&mut self) -> Bytes {
        let rest = Bytes::copy_from_slice(&self.frame[self.pos..]);
        self.pos = self.frame.len();
        rest
    }

    /// The fields must account for the whole remaining length (§2.2.3).
    fn finish(&self) -> Result<(), DecodeError> {
        if self.has_more() {
            Err(DecodeError::TrailingBytes)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
