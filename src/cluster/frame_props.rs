//! The MQTT 5 part of message and retained frames (route protocol version 3): a message's
//! remaining expiry and the properties that travel with it (MQTT 5.0 §3.3.2.3).
//!
//! Both are announced by bits of the frame's QoS byte, so a message without them (every
//! 3.1.1 message) costs nothing more than in version 2:
//! - [`F_EXPIRY`]: a varint follows, the milliseconds left before the message expires
//!   (at least 1; computed when the frame is made, so the receiver counts from its arrival);
//! - [`F_PROPS`]: a presence byte follows (bit 0 payload format indicator, 1 content type,
//!   2 response topic, 3 correlation data, 4 user properties; never 0), then the present
//!   fields in that order: a byte (0 or 1), a string, a string, bytes, and a varint count
//!   (at least 1) of name/value string pairs, in the order sent [MQTT-3.3.2-18].
//!
//! Only these five properties exist here: a Topic Alias or Subscription Identifier belongs
//! to one connection or subscription and the Message Expiry Interval is the expiry above,
//! so none of them can be put in a route frame. Every form is canonical (no empty presence
//! byte, no zero expiry, no empty pair list), so a frame re-encodes to the bytes it came in.

use bytes::{BufMut, BytesMut};

use super::{put_bytes, put_varint, Body, FrameError};
use crate::codec::{PayloadFormat, Properties, PropertyValues};

/// QoS-byte flag: a remaining expiry follows.
pub(super) const F_EXPIRY: u8 = 0x04;
/// QoS-byte flag: properties follow.
pub(super) const F_PROPS: u8 = 0x08;

const P_FORMAT: u8 = 0x01;
const P_CONTENT_TYPE: u8 = 0x02;
const P_RESPONSE_TOPIC: u8 = 0x04;
const P_CORRELATION: u8 = 0x08;
const P_USER: u8 = 0x10;

/// The QoS-byte flags for a message with `expiry_ms` left (0: never expires) and `props`.
pub(super) fn flags(expiry_ms: u64, props: &Properties) -> u8 {
    let mut f = 0;
    if expiry_ms > 0 {
        f |= F_EXPIRY;
    }
    if presence(props) != 0 {
        f |= F_PROPS;
    }
    f
}

fn presence(props: &Properties) -> u8 {
    let Some(v) = props.values() else { return 0 };
    let mut p = 0;
    for (present, bit) in [
        (v.payload_format_indicator.is_some(), P_FORMAT),
        (v.content_type.is_some(), P_CONTENT_TYPE),
        (v.response_topic.is_some(), P_RESPONSE_TOPIC),
        (v.correlation_data.is_some(), P_CORRELATION),
        (!v.user_properties.is_empty(), P_USER),
    ] {
        if present {
            p |= bit;
        }
    }
    p
}

/// Writes what [`flags`] announced.
pub(super) fn put(out: &mut BytesMut, expiry_ms: u64, props: &Properties) {
    if expiry_ms > 0 {
        put_varint(out, expiry_ms);
    }
    let p = presence(props);
    if p == 0 {
        return;
    }
    let v = props.values_or_empty();
    out.put_u8(p);
    if let Some(f) = v.payload_format_indicator {
        out.put_u8(f as u8);
    }
    if let Some(s) = &v.content_type {
        put_bytes(out, s.as_bytes());
    }
    if let Some(s) = &v.response_topic {
        put_bytes(out, s.as_bytes());
    }
    if let Some(b) = &v.correlation_data {
        put_bytes(out, b);
    }
    if !v.user_properties.is_empty() {
        put_varint(out, v.user_properties.len() as u64);
        for (name, value) in &v.user_properties {
            put_bytes(out, name.as_bytes());
            put_bytes(out, value.as_bytes());
        }
    }
}

/// Reads what the QoS byte's `flags` announce: (remaining expiry in ms, 0 for none;
/// properties).
pub(super) fn get(b: &mut Body, flags: u8) -> Result<(u64, Properties), FrameError> {
    let expiry_ms = if flags & F_EXPIRY != 0 {
        match b.varint()? {
            0 => return Err(FrameError::Malformed("zero expiry")),
            ms => ms,
        }
    } else {
        0
    };
    if flags & F_PROPS == 0 {
        return Ok((expiry_ms, Properties::new()));
    }
    let p = b.u8()?;
    if p == 0 || p & !(P_FORMAT | P_CONTENT_TYPE | P_RESPONSE_TOPIC | P_CORRELATION | P_USER) != 0 {
        return Err(FrameError::Malformed("bad property presence byte"));
    }
    let mut v = PropertyValues::default();
    if p & P_FORMAT != 0 {
        v.payload_format_indicator = Some(match b.u8()? {
            0 => PayloadFormat::Unspecified,
            1 => PayloadFormat::Utf8,
            _ => return Err(FrameError::Malformed("bad payload format indicator")),
        });
    }
    if p & P_CONTENT_TYPE != 0 {
        v.content_type = Some(b.string()?);
    }
    if p & P_RESPONSE_TOPIC != 0 {
        v.response_topic = Some(b.string()?);
    }
    if p & P_CORRELATION != 0 {
        v.correlation_data = Some(b.bytes()?);
    }
    if p & P_USER != 0 {
        let n = b.varint()?;
        // Each pair takes at least two bytes: no allocation beyond what arrived.
        if n == 0 || n > b.remaining() as u64 / 2 {
            return Err(FrameError::Malformed("user property count"));
        }
        let mut pairs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            pairs.push((b.string()?, b.string()?));
        }
        v.user_properties = pairs;
    }
    Ok((expiry_ms, Properties::from(v)))
}
