//! Bytes → [`Packet`] at a given protocol level: framing and every well-formedness rule of
//! MQTT 3.1.1 (spec §1.5, §2, §3) and MQTT 5.0 (its §1.5, §2, §3), plus the 3.1 `MQIsdp`
//! CONNECT.
//!
//! Owns the decision "is this input a valid packet?" and the framing of every packet; the
//! bodies of CONNECT/CONNACK and of the subscription packets are in submodules, and the field
//! rules they share in `reader`; the MQTT 5 property blocks are read in `properties` and the
//! level-5 forms of the acknowledgements, DISCONNECT and AUTH in `v5`. Framing is done first
//! and cheaply: the type byte and remaining length are checked, and the size limit enforced,
//! before a single body byte is waited for. Only a complete packet is taken off the input
//! buffer; the fields a packet keeps are copied out of it (a payload once), so a queued
//! message never pins a read buffer.
//!
//! At level 5 every packet carries what MQTT 5 gives it (reason codes, properties, the full
//! subscription options byte) and AUTH exists; a level-5 CONNECT decodes whatever level the
//! connection passes, like any CONNECT, and whether to accept it is the connection's call.

mod connect;
mod properties;
mod reader;
mod subscribe;
mod v5;

use bytes::{Buf, BytesMut};

use super::error::DecodeError;
use super::level::ProtocolLevel;
use super::packet::{Ack, Disconnect, Packet, Publish, QoS};
use super::properties::Properties;
use super::properties::PropertyContext;
use connect::{decode_connack, decode_connect};
use properties::read_properties;
use reader::Reader;
use subscribe::{decode_suback, decode_subscribe, decode_unsuback, decode_unsubscribe};

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
/// MQTT 5 only (MQTT 5.0 §3.15); reserved at 3.1 and 3.1.1.
pub(super) const AUTH: u8 = 15;

// Reasons carried by `DecodeError::InvalidConnectFlags` and `DecodeError::Malformed`.
pub(super) const RULE_RESERVED_FLAG: &str = "reserved bit 0 is set [MQTT-3.1.2-3]";
pub(super) const RULE_WILL_QOS: &str =
    "will QoS set without the will flag [MQTT-3.1.2-11, MQTT-3.1.2-13]";
pub(super) const RULE_WILL_RETAIN: &str =
    "will retain set without the will flag [MQTT-3.1.2-11, MQTT-3.1.2-15]";
pub(super) const RULE_PASSWORD: &str =
    "password flag set without the user name flag [MQTT-3.1.2-22]";
pub(super) const RULE_EMPTY_SUBACK: &str = "SUBACK carries no return codes (§3.9.3)";
pub(super) const RULE_EMPTY_UNSUBACK: &str = "UNSUBACK carries no reason codes (MQTT 5.0 §3.11.3)";

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

/// Decodes one packet from the front of `buf`, sent by a peer speaking `level`.
///
/// `level` is the connection's protocol level: [`ProtocolLevel::V311`] until its CONNECT is
/// decoded, then the level that CONNECT carries. A CONNECT decodes whatever `level` is (its
/// own level byte decides its layout); at 3.1 and 3.1.1 every other packet decodes alike, and
/// at 5 as MQTT 5.0 lays it out.
///
/// - `Ok(Some(p))`: exactly that packet's bytes were removed from `buf`.
/// - `Ok(None)`: not enough bytes yet; `buf` is untouched.
/// - `Err(_)`: malformed; the caller must close the connection (§4.8). `buf` may have lost
///   the offending packet's bytes and must not be decoded further.
///
/// Errors are reported as early as the bytes allow: a reserved type or bad flags on the
/// first byte, an oversize packet as soon as its remaining length is complete.
pub fn decode(
    buf: &mut BytesMut,
    limits: &DecodeLimits,
    level: ProtocolLevel,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    check_first_byte(first, level)?;
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
    check_fixed_remaining_length(first >> 4, remaining, level)?;
    if buf.len() < size {
        return Ok(None);
    }

    // Decoded in place: the fields a packet keeps are copied out (a payload once, into an
    // allocation of its own, so a queued message never pins a read buffer), and the read
    // buffer is then advanced past the packet and reused.
    let mut r = Reader::new(&buf[..size], header_len, limits);
    let packet = body(first, &mut r, level);
    buf.advance(size);
    packet.map(Some)
}

/// The variable header and payload of a packet whose fixed header is `first`, at `level`
/// (a CONNECT at its own). At 3.1 and 3.1.1, reason codes and properties, which these levels
/// do not carry, get their 3.1.1 meaning: success and empty.
fn body(first: u8, r: &mut Reader<'_>, level: ProtocolLevel) -> Result<Packet, DecodeError> {
    let v5 = level.is_v5();
    // §3.4–3.7 of 3.1.1: a packet id and nothing else; MQTT 5 may add reason and properties.
    let ack = |r: &mut Reader<'_>, packet_type| {
        if v5 {
            v5::ack(r, packet_type)
        } else {
            Ok(Ack::new(r.pkid()?))
        }
    };
    let packet = match first >> 4 {
        CONNECT => Packet::Connect(Box::new(decode_connect(r)?)),
        CONNACK if v5 => Packet::ConnAck(v5::connack(r)?),
        CONNACK => Packet::ConnAck(decode_connack(r)?),
        PUBLISH => Packet::Publish(decode_publish(first, r, level)?),
        PUBACK => Packet::PubAck(ack(r, PUBACK)?),
        PUBREC => Packet::PubRec(ack(r, PUBREC)?),
        PUBREL => Packet::PubRel(ack(r, PUBREL)?),
        PUBCOMP => Packet::PubComp(ack(r, PUBCOMP)?),
        SUBSCRIBE => Packet::Subscribe(decode_subscribe(r, level)?),
        SUBACK => Packet::SubAck(decode_suback(r, level)?),
        UNSUBSCRIBE => Packet::Unsubscribe(decode_unsubscribe(r, level)?),
        UNSUBACK => Packet::UnsubAck(decode_unsuback(r, level)?),
        PINGREQ => Packet::PingReq,
        PINGRESP => Packet::PingResp,
        DISCONNECT if v5 => Packet::Disconnect(v5::disconnect(r)?),
        // §3.14: no body; a client's DISCONNECT is a normal disconnection.
        DISCONNECT => Packet::Disconnect(Disconnect::default()),
        // `check_first_byte` let 15 through at level 5 only.
        AUTH if v5 => Packet::Auth(v5::auth(r)?),
        // Unreachable: `check_first_byte` rejected 0, and 15 below level 5, already.
        t => return Err(DecodeError::ReservedPacketType(t)),
    };
    r.finish()?;
    Ok(packet)
}

/// Validates the type and flag nibbles of the first fixed-header byte (§2.2, table 2.2); type
/// 15 is AUTH at MQTT 5 (MQTT 5.0 §2.1.2, table 2-1) and reserved before.
fn check_first_byte(first: u8, level: ProtocolLevel) -> Result<(), DecodeError> {
    let packet_type = first >> 4;
    let flags = first & 0x0F;
    let expected = match packet_type {
        0 => return Err(DecodeError::ReservedPacketType(packet_type)),
        AUTH if !level.is_v5() => return Err(DecodeError::ReservedPacketType(packet_type)),
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
fn check_fixed_remaining_length(
    packet_type: u8,
    remaining: usize,
    level: ProtocolLevel,
) -> Result<(), DecodeError> {
    let expected = match packet_type {
        // §3.12.1, §3.13.1 (and MQTT 5.0's): no variable header, no payload.
        PINGREQ | PINGRESP => 0,
        // MQTT 5 gives every other packet a variable length: acknowledgements take a packet
        // id at least (MQTT 5.0 §3.4.2.1), the rest is checked field by field.
        PUBACK | PUBREC | PUBREL | PUBCOMP if level.is_v5() => {
            return if remaining < 2 {
                Err(DecodeError::Truncated)
            } else {
                Ok(())
            };
        }
        _ if level.is_v5() => return Ok(()),
        // §3.2.1, §3.4.1, §3.5.1, §3.6.1, §3.7.1, §3.11.1.
        CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | UNSUBACK => 2,
        // §3.14.1.
        DISCONNECT => 0,
        _ => return Ok(()),
    };
    match remaining.cmp(&expected) {
        std::cmp::Ordering::Less => Err(DecodeError::Truncated),
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(DecodeError::TrailingBytes),
    }
}

/// PUBLISH (§3.3): topic, packet id when QoS > 0, properties at MQTT 5 (§3.3.2.3), then the
/// rest is payload.
fn decode_publish(
    first: u8,
    r: &mut Reader<'_>,
    level: ProtocolLevel,
) -> Result<Publish, DecodeError> {
    // `check_first_byte` already rejected QoS 3 and DUP without QoS.
    let qos = QoS::from_u8((first >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)?;
    let topic = if level.is_v5() {
        r.topic_name_or_empty()?
    } else {
        r.topic_name()?
    };
    // [MQTT-2.3.1-1]: only QoS 1 and 2 carry a (non-zero) packet identifier.
    let pkid = if qos == QoS::AtMostOnce { 0 } else { r.pkid()? };
    let properties = if level.is_v5() {
        let properties = read_properties(r, PropertyContext::Publish)?;
        // MQTT 5.0 §3.3.2.3.4: an empty topic name stands for the one its Topic Alias was
        // set to; without an alias it is a Protocol Error.
        if topic.is_empty() && properties.values().and_then(|v| v.topic_alias).is_none() {
            return Err(DecodeError::MissingTopicAlias);
        }
        properties
    } else {
        Properties::new()
    };
    // The payload may be empty (§3.3.3).
    let payload = r.rest();
    Ok(Publish {
        dup: first & 0x08 != 0,
        qos,
        retain: first & 0x01 != 0,
        topic,
        pkid,
        payload,
        properties,
    })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
