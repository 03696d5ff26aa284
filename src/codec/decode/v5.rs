//! The MQTT 5 bodies of the packets that only gained a reason code and properties at level 5
//! (MQTT 5.0 §3.2, §3.4–3.7, §3.14, §3.15), and which reason codes each packet may carry.
//!
//! Owns the short forms: an acknowledgement of remaining length 2 is a success without
//! properties and of 3 a reason without properties (§3.4.2.1), a DISCONNECT of remaining
//! length 0 a normal disconnection and of 1 a reason alone (§3.14.2.1), an AUTH of remaining
//! length 0 a success (§3.15.2.1).

use super::properties::read_properties;
use super::reader::Reader;
use super::{AUTH, CONNACK, DISCONNECT, PUBACK, PUBCOMP, PUBREC, PUBREL, SUBACK, UNSUBACK};
use crate::codec::error::DecodeError;
use crate::codec::packet::{Ack, Auth, ConnAck, Disconnect};
use crate::codec::properties::{Properties, PropertyContext};
use crate::codec::reason::ReasonCode;

/// Whether `code` is one packet type `packet_type` may carry (MQTT 5.0 table 2-6 and the
/// reason code tables of §3.2.2.2, §3.4.2.1–§3.7.2.1, §3.9.3, §3.11.3, §3.14.2.1, §3.15.2.1).
pub(crate) fn reason_allowed(packet_type: u8, code: u8) -> bool {
    match packet_type {
        CONNACK => matches!(
            code,
            0x00 | 0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F
        ),
        PUBACK | PUBREC => matches!(
            code,
            0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99
        ),
        PUBREL | PUBCOMP => matches!(code, 0x00 | 0x92),
        SUBACK => matches!(
            code,
            0x00..=0x02 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91 | 0x97 | 0x9E | 0xA1 | 0xA2
        ),
        UNSUBACK => matches!(code, 0x00 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91),
        DISCONNECT => matches!(
            code,
            0x00 | 0x04
                | 0x80..=0x83
                | 0x87
                | 0x89
                | 0x8B
                | 0x8D..=0x90
                | 0x93..=0xA2
        ),
        AUTH => matches!(code, 0x00 | 0x18 | 0x19),
        _ => false,
    }
}

/// Reads a reason code byte and checks it against `packet_type`'s table.
pub(super) fn reason(r: &mut Reader<'_>, packet_type: u8) -> Result<ReasonCode, DecodeError> {
    let code = r.u8()?;
    reason_code(packet_type, code)
}

/// `code` as a reason of `packet_type`.
pub(super) fn reason_code(packet_type: u8, code: u8) -> Result<ReasonCode, DecodeError> {
    ReasonCode::from_u8(code)
        .filter(|_| reason_allowed(packet_type, code))
        .ok_or(DecodeError::InvalidReasonCode { packet_type, code })
}

/// Properties if any bytes are left: the short forms leave the block out (length 0).
fn trailing_properties(
    r: &mut Reader<'_>,
    ctx: PropertyContext,
) -> Result<Properties, DecodeError> {
    if r.has_more() {
        read_properties(r, ctx)
    } else {
        Ok(Properties::new())
    }
}

/// CONNACK (§3.2.2): acknowledge flags, reason code, properties.
pub(super) fn connack(r: &mut Reader<'_>) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    // §3.2.2.1: bits 7–1 are reserved and must be 0 [MQTT-3.2.2-1].
    if flags & 0xFE != 0 {
        return Err(DecodeError::InvalidConnAckFlags(flags));
    }
    let reason = reason(r, CONNACK)?;
    let properties = read_properties(r, PropertyContext::ConnAck)?;
    Ok(ConnAck {
        session_present: flags & 0x01 != 0,
        reason,
        properties,
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4.2–§3.7.2): packet id, then reason and properties
/// unless the remaining length leaves them out (2: success, 3: no properties).
pub(super) fn ack(r: &mut Reader<'_>, packet_type: u8) -> Result<Ack, DecodeError> {
    let pkid = r.pkid()?;
    let reason = if r.has_more() {
        reason(r, packet_type)?
    } else {
        ReasonCode::Success
    };
    let properties = trailing_properties(r, PropertyContext::Ack)?;
    Ok(Ack {
        pkid,
        reason,
        properties,
    })
}

/// DISCONNECT (§3.14.2): reason and properties, each left out when the remaining length
/// says so (0: normal disconnection, 1: no properties).
pub(super) fn disconnect(r: &mut Reader<'_>) -> Result<Disconnect, DecodeError> {
    let reason = if r.has_more() {
        reason(r, DISCONNECT)?
    } else {
        ReasonCode::NormalDisconnection
    };
    let properties = trailing_properties(r, PropertyContext::Disconnect)?;
    Ok(Disconnect { reason, properties })
}

/// AUTH (§3.15.2): reason and properties; remaining length 0 is a success without
/// properties. A reason without a property block is read like DISCONNECT's (§3.14.2.2.1)
/// rather than refused: it says the same, and costs nothing to accept.
pub(super) fn auth(r: &mut Reader<'_>) -> Result<Auth, DecodeError> {
    let reason = if r.has_more() {
        reason(r, AUTH)?
    } else {
        ReasonCode::Success
    };
    let properties = trailing_properties(r, PropertyContext::Auth)?;
    Ok(Auth { reason, properties })
}
