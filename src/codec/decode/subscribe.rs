//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK bodies (spec §3.8–3.11), at 3.1 / 3.1.1 and
//! at MQTT 5 (where they gain properties, the full options byte and per-filter reason codes).
//!
//! Owns the rules of a subscription request and its answer: at least one filter, the
//! reserved bits and values of the options byte, the SUBACK and UNSUBACK codes. Filters are only checked as
//! strings here; where wildcards may go is the topic layer's call (it answers 0x80).

use super::properties::read_properties;
use super::reader::Reader;
use super::v5::reason_code;
use super::{RULE_EMPTY_SUBACK, RULE_EMPTY_UNSUBACK, SUBACK, UNSUBACK};
use crate::codec::error::DecodeError;
use crate::codec::level::ProtocolLevel;
use crate::codec::packet::{
    QoS, RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};
use crate::codec::properties::{Properties, PropertyContext};
use crate::codec::reason::ReasonCode;

pub(super) const RULE_RETAIN_HANDLING: &str = "Retain Handling is 3 (MQTT 5.0 §3.8.3.1)";
pub(super) const RULE_MAXIMUM_QOS: &str = "Maximum QoS is 3 (MQTT 5.0 §3.8.3.1)";
pub(super) const RULE_SHARED_NO_LOCAL: &str = "No Local on a shared subscription [MQTT-3.8.3-4]";

/// SUBSCRIBE (§3.8): packet id, properties at MQTT 5 (§3.8.2.1), then one or more (filter,
/// options) pairs.
pub(super) fn decode_subscribe(
    r: &mut Reader<'_>,
    level: ProtocolLevel,
) -> Result<Subscribe, DecodeError> {
    let pkid = r.pkid()?;
    let properties = if level.is_v5() {
        read_properties(r, PropertyContext::Subscribe)?
    } else {
        Properties::new()
    };
    let mut filters = Vec::new();
    while r.has_more() {
        // Wildcard placement is the topic layer's call: it answers 0x80 for a bad filter
        // rather than dropping the connection.
        let filter = r.topic_filter()?;
        let byte = r.u8()?;
        let options = if level.is_v5() {
            subscription_options_v5(byte, &filter)?
        } else {
            subscription_options(byte)?
        };
        filters.push(SubscribeFilter { filter, options });
    }
    // [MQTT-3.8.3-3]; at MQTT 5 a Protocol Error (§3.8.3).
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    Ok(Subscribe {
        pkid,
        filters,
        properties,
    })
}

/// The options byte of an MQTT 5 SUBSCRIBE entry (§3.8.3.1): Maximum QoS (bits 0–1), No
/// Local (2), Retain As Published (3), Retain Handling (4–5); bits 6–7 are reserved.
fn subscription_options_v5(byte: u8, filter: &str) -> Result<SubscriptionOptions, DecodeError> {
    // [MQTT-3.8.3-5]: reserved bits set make the packet malformed.
    if byte & 0xC0 != 0 {
        return Err(DecodeError::InvalidSubscribeOptions(byte));
    }
    let bad = |rule| DecodeError::InvalidSubscriptionOption {
        options: byte,
        rule,
    };
    let qos = QoS::from_u8(byte & 0b11).ok_or_else(|| bad(RULE_MAXIMUM_QOS))?;
    let retain_handling = match (byte >> 4) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendAtSubscribeIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(bad(RULE_RETAIN_HANDLING)),
    };
    let no_local = byte & 0x04 != 0;
    // A shared subscription would otherwise never see its own group's messages.
    if no_local && filter.starts_with("$share/") {
        return Err(bad(RULE_SHARED_NO_LOCAL));
    }
    Ok(SubscriptionOptions {
        qos,
        no_local,
        retain_as_published: byte & 0x08 != 0,
        retain_handling,
    })
}

/// The requested-QoS byte of a 3.1.1 SUBSCRIBE entry (§3.8.3.1): the QoS, and the 3.1.1
/// meaning of every option MQTT 5 later put in the bits 3.1.1 reserves.
fn subscription_options(byte: u8) -> Result<SubscriptionOptions, DecodeError> {
    // [MQTT-3.8.3-4]: upper 6 bits reserved, QoS 3 malformed.
    if byte & 0xFC != 0 {
        return Err(DecodeError::InvalidSubscribeOptions(byte));
    }
    let qos = QoS::from_u8(byte).ok_or(DecodeError::InvalidQoS)?;
    Ok(SubscriptionOptions::new(qos))
}

/// SUBACK (§3.9): packet id, properties at MQTT 5 (§3.9.2.1), then one code per requested
/// filter.
pub(super) fn decode_suback(
    r: &mut Reader<'_>,
    level: ProtocolLevel,
) -> Result<SubAck, DecodeError> {
    let pkid = r.pkid()?;
    if level.is_v5() {
        let properties = read_properties(r, PropertyContext::SubAck)?;
        let reasons = reason_codes(r, SUBACK, RULE_EMPTY_SUBACK)?;
        return Ok(SubAck {
            pkid,
            reasons,
            properties,
        });
    }
    let raw = r.take(r.left())?;
    // A SUBSCRIBE has at least one filter, so its SUBACK has at least one code (§3.9.3).
    if raw.is_empty() {
        return Err(DecodeError::Malformed(RULE_EMPTY_SUBACK));
    }
    let reasons = raw
        .iter()
        .map(|&b| match b {
            // The one failure code of 3.1.1.
            0x80 => Ok(ReasonCode::UnspecifiedError),
            // [MQTT-3.9.3-2]: anything but 0, 1, 2 and 0x80 is reserved.
            _ => QoS::from_u8(b)
                .map(ReasonCode::granted)
                .ok_or(DecodeError::InvalidSubackCode(b)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SubAck::new(pkid, reasons))
}

/// The rest of an MQTT 5 SUBACK or UNSUBACK: one reason code per filter, at least one, each
/// from `packet_type`'s table (§3.9.3, §3.11.3).
fn reason_codes(
    r: &mut Reader<'_>,
    packet_type: u8,
    empty: &'static str,
) -> Result<Vec<ReasonCode>, DecodeError> {
    let raw = r.take(r.left())?;
    if raw.is_empty() {
        return Err(DecodeError::Malformed(empty));
    }
    raw.iter().map(|&b| reason_code(packet_type, b)).collect()
}

/// UNSUBACK (§3.11): packet id; at MQTT 5 properties and a reason code per filter too.
pub(super) fn decode_unsuback(
    r: &mut Reader<'_>,
    level: ProtocolLevel,
) -> Result<UnsubAck, DecodeError> {
    let pkid = r.pkid()?;
    if !level.is_v5() {
        return Ok(UnsubAck::new(pkid));
    }
    let properties = read_properties(r, PropertyContext::UnsubAck)?;
    let reasons = reason_codes(r, UNSUBACK, RULE_EMPTY_UNSUBACK)?;
    Ok(UnsubAck {
        pkid,
        reasons,
        properties,
    })
}

/// UNSUBSCRIBE (§3.10): packet id, properties at MQTT 5 (§3.10.2.1), then one or more topic
/// filters.
pub(super) fn decode_unsubscribe(
    r: &mut Reader<'_>,
    level: ProtocolLevel,
) -> Result<Unsubscribe, DecodeError> {
    let pkid = r.pkid()?;
    let properties = if level.is_v5() {
        read_properties(r, PropertyContext::Unsubscribe)?
    } else {
        Properties::new()
    };
    let mut filters = Vec::new();
    while r.has_more() {
        filters.push(r.topic_filter()?);
    }
    // [MQTT-3.10.3-2].
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    Ok(Unsubscribe {
        pkid,
        filters,
        properties,
    })
}
