//! MQTT 5 properties on the wire (MQTT 5.0 §2.2.2): a Variable Byte Integer length, then
//! identifier–value pairs.
//!
//! Owns the rules of a property block: every identifier known [table 2-4], allowed on the
//! packet that carries it, present at most once (User Property may repeat, and Subscription
//! Identifier in PUBLISH), and each value in its domain. The block is bounded by its length
//! before a property is read, and every property consumes at least its identifier byte, so
//! the loop is bounded by the packet.

use super::reader::{check_topic_name, Reader};
use crate::codec::error::DecodeError;
use crate::codec::packet::QoS;
use crate::codec::properties::{
    allowed_in, id, PayloadFormat, Properties, PropertyContext, PropertyValues,
};

pub(super) const RULE_ZERO_OR_ONE: &str =
    "a byte property must be 0 or 1 (MQTT 5.0 §3.1.2.11, §3.2.2.3, §3.3.2.3.2)";
pub(super) const RULE_RECEIVE_MAXIMUM: &str = "Receive Maximum is 0 (MQTT 5.0 §3.1.2.11.3)";
pub(super) const RULE_MAXIMUM_PACKET_SIZE: &str = "Maximum Packet Size is 0 (MQTT 5.0 §3.1.2.11.4)";
pub(super) const RULE_TOPIC_ALIAS: &str = "Topic Alias is 0 [MQTT-3.3.2-8]";
pub(super) const RULE_SUBSCRIPTION_ID: &str =
    "Subscription Identifier is 0 (MQTT 5.0 §3.3.2.3.8, §3.8.2.1.2)";
pub(super) const RULE_AUTH_DATA: &str =
    "Authentication Data without an Authentication Method (MQTT 5.0 §3.1.2.11.10)";

/// Reads the property block at the cursor, for a packet (or will) of kind `ctx`.
pub(super) fn read_properties(
    r: &mut Reader<'_>,
    ctx: PropertyContext,
) -> Result<Properties, DecodeError> {
    let len = r.vbi()?;
    // The length is checked against the packet before any property is read: a block that
    // overruns the remaining length is Truncated.
    let raw = r.take(len as usize)?;
    if raw.is_empty() {
        return Ok(Properties::new());
    }
    let mut p = r.nested(raw);
    let mut v = PropertyValues::default();
    while p.has_more() {
        // A Variable Byte Integer in principle, but every 5.0 identifier is below 0x80, so a
        // first byte with the high bit set is an unknown identifier in any case.
        let pid = p.u8()?;
        let allowed = allowed_in(pid);
        if allowed == 0 {
            return Err(DecodeError::UnknownProperty(pid));
        }
        if allowed & ctx.bit() == 0 {
            return Err(DecodeError::PropertyNotAllowed {
                id: pid,
                packet: ctx.name(),
            });
        }
        read_one(&mut p, pid, ctx, &mut v)?;
    }
    // §3.1.2.11.10, §3.2.2.3.18, §3.15.2.2.3: data only makes sense for a method.
    if v.authentication_data.is_some() && v.authentication_method.is_none() {
        return Err(invalid(id::AUTHENTICATION_DATA, RULE_AUTH_DATA));
    }
    Ok(Properties::from(v))
}

fn invalid(pid: u8, rule: &'static str) -> DecodeError {
    DecodeError::InvalidPropertyValue { id: pid, rule }
}

/// Stores a property that may appear once: "It is a Protocol Error to include ... more than
/// once" (every property of table 2-4 but User Property and Subscription Identifier).
fn once<T>(slot: &mut Option<T>, pid: u8, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(pid));
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property whose only values are 0 and 1.
fn flag(p: &mut Reader<'_>, pid: u8) -> Result<bool, DecodeError> {
    match p.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(invalid(pid, RULE_ZERO_OR_ONE)),
    }
}

/// A two-byte property that may not be 0.
fn non_zero_u16(p: &mut Reader<'_>, pid: u8, rule: &'static str) -> Result<u16, DecodeError> {
    match p.u16()? {
        0 => Err(invalid(pid, rule)),
        n => Ok(n),
    }
}

/// Reads the value of property `pid`, already known to be allowed in `ctx`, into `v`.
fn read_one(
    p: &mut Reader<'_>,
    pid: u8,
    ctx: PropertyContext,
    v: &mut PropertyValues,
) -> Result<(), DecodeError> {
    match pid {
        id::PAYLOAD_FORMAT_INDICATOR => {
            let format = if flag(p, pid)? {
                PayloadFormat::Utf8
            } else {
                PayloadFormat::Unspecified
            };
            once(&mut v.payload_format_indicator, pid, format)
        }
        id::MESSAGE_EXPIRY_INTERVAL => {
            let n = p.u32()?;
            once(&mut v.message_expiry_interval, pid, n)
        }
        id::CONTENT_TYPE => {
            let s = p.string()?;
            once(&mut v.content_type, pid, s)
        }
        id::RESPONSE_TOPIC => {
            // A topic name: no wildcards [MQTT-3.3.2-14], and the configured topic limits.
            let s = p.string()?;
            check_topic_name(&s, p.limits())?;
            once(&mut v.response_topic, pid, s)
        }
        id::CORRELATION_DATA => {
            let b = p.binary()?;
            once(&mut v.correlation_data, pid, b)
        }
        id::SUBSCRIPTION_IDENTIFIER => {
            let n = p.vbi()?;
            if n == 0 {
                return Err(invalid(pid, RULE_SUBSCRIPTION_ID));
            }
            // One per matching subscription in PUBLISH [MQTT-3.3.4-4]; at most one in
            // SUBSCRIBE (§3.8.2.1.2).
            if ctx != PropertyContext::Publish && !v.subscription_identifiers.is_empty() {
                return Err(DecodeError::DuplicateProperty(pid));
            }
            v.subscription_identifiers.push(n);
            Ok(())
        }
        id::SESSION_EXPIRY_INTERVAL => {
            let n = p.u32()?;
            once(&mut v.session_expiry_interval, pid, n)
        }
        id::ASSIGNED_CLIENT_IDENTIFIER => {
            let s = p.string()?;
            once(&mut v.assigned_client_identifier, pid, s)
        }
        id::SERVER_KEEP_ALIVE => {
            let n = p.u16()?;
            once(&mut v.server_keep_alive, pid, n)
        }
        id::AUTHENTICATION_METHOD => {
            let s = p.string()?;
            once(&mut v.authentication_method, pid, s)
        }
        id::AUTHENTICATION_DATA => {
            let b = p.binary()?;
            once(&mut v.authentication_data, pid, b)
        }
        id::REQUEST_PROBLEM_INFORMATION => {
            let b = flag(p, pid)?;
            once(&mut v.request_problem_information, pid, b)
        }
        id::WILL_DELAY_INTERVAL => {
            let n = p.u32()?;
            once(&mut v.will_delay_interval, pid, n)
        }
        id::REQUEST_RESPONSE_INFORMATION => {
            let b = flag(p, pid)?;
            once(&mut v.request_response_information, pid, b)
        }
        id::RESPONSE_INFORMATION => {
            let s = p.string()?;
            once(&mut v.response_information, pid, s)
        }
        id::SERVER_REFERENCE => {
            let s = p.string()?;
            once(&mut v.server_reference, pid, s)
        }
        id::REASON_STRING => {
            let s = p.string()?;
            once(&mut v.reason_string, pid, s)
        }
        id::RECEIVE_MAXIMUM => {
            let n = non_zero_u16(p, pid, RULE_RECEIVE_MAXIMUM)?;
            once(&mut v.receive_maximum, pid, n)
        }
        id::TOPIC_ALIAS_MAXIMUM => {
            let n = p.u16()?;
            once(&mut v.topic_alias_maximum, pid, n)
        }
        id::TOPIC_ALIAS => {
            let n = non_zero_u16(p, pid, RULE_TOPIC_ALIAS)?;
            once(&mut v.topic_alias, pid, n)
        }
        id::MAXIMUM_QOS => {
            // §3.2.2.3.4: 0 or 1; a server that supports QoS 2 leaves the property out.
            let qos = if flag(p, pid)? {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            once(&mut v.maximum_qos, pid, qos)
        }
        id::RETAIN_AVAILABLE => {
            let b = flag(p, pid)?;
            once(&mut v.retain_available, pid, b)
        }
        id::USER_PROPERTY => {
            // May repeat, and a name may too (§3.3.2.3.7); kept in the order sent.
            let name = p.string()?;
            let value = p.string()?;
            v.user_properties.push((name, value));
            Ok(())
        }
        id::MAXIMUM_PACKET_SIZE => {
            let n = p.u32()?;
            if n == 0 {
                return Err(invalid(pid, RULE_MAXIMUM_PACKET_SIZE));
            }
            once(&mut v.maximum_packet_size, pid, n)
        }
        id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
            let b = flag(p, pid)?;
            once(&mut v.wildcard_subscription_available, pid, b)
        }
        id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
            let b = flag(p, pid)?;
            once(&mut v.subscription_identifiers_available, pid, b)
        }
        id::SHARED_SUBSCRIPTION_AVAILABLE => {
            let b = flag(p, pid)?;
            once(&mut v.shared_subscription_available, pid, b)
        }
        // `allowed_in` knows no other identifier.
        _ => Err(DecodeError::UnknownProperty(pid)),
    }
}
