//! CONNECT and CONNACK bodies (spec §3.1, §3.2): the packets that settle the protocol level.
//!
//! Owns the CONNECT flag rules and the protocol name and level check, which decides between
//! closing silently (a foreign protocol [MQTT-3.1.2-1]) and answering CONNACK 0x01 (a level
//! this broker does not speak [MQTT-3.1.2-2]). A level-5 CONNECT decodes, with its CONNECT
//! properties after the keep-alive (MQTT 5.0 §3.1.2.11) and its will properties before the
//! will topic (§3.1.3.2); whether the broker accepts it is the connection's call.

use super::properties::read_properties;
use super::reader::Reader;
use super::{RULE_PASSWORD, RULE_RESERVED_FLAG, RULE_WILL_QOS, RULE_WILL_RETAIN};
use crate::codec::error::DecodeError;
use crate::codec::level::ProtocolLevel;
use crate::codec::packet::{ConnAck, Connect, LastWill, QoS};
use crate::codec::properties::{Properties, PropertyContext};
use crate::codec::reason::ConnectReturnCode;

/// CONNECT (§3.1): variable header then payload fields in the fixed order [MQTT-3.1.3-1].
pub(super) fn decode_connect(r: &mut Reader<'_>) -> Result<Connect, DecodeError> {
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
    let level = match (is_311, level) {
        (true, 4) => ProtocolLevel::V311,
        (true, 5) => ProtocolLevel::V5,
        (false, 3) => ProtocolLevel::V31,
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
    // MQTT 5 drops this rule: a password may come without a user name (MQTT 5.0 §3.1.2.9).
    if password_flag && !username_flag && !level.is_v5() {
        return bad(RULE_PASSWORD);
    }
    let keep_alive = r.u16()?;
    let properties = if level.is_v5() {
        read_properties(r, PropertyContext::Connect)?
    } else {
        Properties::new()
    };

    // Payload: client id, will topic, will message, user name, password [MQTT-3.1.3-1].
    // An empty client id is a session-layer decision [MQTT-3.1.3-6..8], not a framing error.
    let client_id = r.string()?;
    let will = if will_flag {
        // MQTT 5.0 §3.1.3.2: the will properties come first, a set of their own.
        let properties = if level.is_v5() {
            read_properties(r, PropertyContext::Will)?
        } else {
            Properties::new()
        };
        let topic = r.topic_name()?;
        // The will message is binary data, not a string (§3.1.3.3).
        let payload = r.binary()?;
        Some(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
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
        level,
        clean_session,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

/// CONNACK (§3.2) at 3.1 and 3.1.1: acknowledge flags, then a return code, which becomes the
/// MQTT 5 reason code that means the same.
pub(super) fn decode_connack(r: &mut Reader<'_>) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    // §3.2.2.1: bits 7–1 are reserved and must be 0; bit 0 is Session Present.
    if flags & 0xFE != 0 {
        return Err(DecodeError::InvalidConnAckFlags(flags));
    }
    let code = r.u8()?;
    let code = ConnectReturnCode::from_u8(code).ok_or(DecodeError::InvalidReturnCode(code))?;
    Ok(ConnAck::new(flags & 0x01 != 0, code))
}
