//! Why a byte stream is not a valid MQTT 5, 3.1.1 or 3.1 packet, or not one this codec reads.
//!
//! Owns [`DecodeError`], the single error type of the decoder. Every variant means "close the
//! network connection" (§4.8 of 3.1.1, §4.13 of 5.0), except that
//! [`DecodeError::UnsupportedProtocolLevel`] first earns a CONNACK refusal [MQTT-3.1.2-2]. At
//! MQTT 5 the connection says why before it closes (a CONNACK or DISCONNECT reason code):
//! [`DecodeError::reason_code`] is that reason. Each message names the rule it enforces so
//! that a log line is enough to tell a buggy client what it did wrong.

use super::reason::ReasonCode;

/// A malformed packet. The caller must close the connection; see [`DecodeError::kind`] for
/// a stable label to count these by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The fixed header announces a packet larger than the configured limit.
    #[error("packet of {size} bytes exceeds the maximum of {max} bytes")]
    PacketTooLarge { size: usize, max: usize },

    /// The remaining length has a continuation bit on its 4th byte.
    #[error("remaining length is longer than 4 bytes (§2.2.3)")]
    MalformedRemainingLength,

    /// Packet types 0 and 15 are reserved.
    #[error("reserved packet type {0} (§2.2.1, table 2.1)")]
    ReservedPacketType(u8),

    /// The low nibble of the first byte is not what table 2.2 prescribes for this type.
    #[error("invalid fixed header flags {flags:#06b} for packet type {packet_type} [MQTT-2.2.2-1, MQTT-2.2.2-2, MQTT-3.3.1-2]")]
    InvalidFixedHeaderFlags { packet_type: u8, flags: u8 },

    /// CONNECT protocol name is neither `MQTT` nor `MQIsdp`; close without a CONNACK.
    #[error("CONNECT protocol name is not \"MQTT\" or \"MQIsdp\" [MQTT-3.1.2-1]")]
    InvalidProtocolName,

    /// A known protocol name with a level this codec does not speak (`MQIsdp` with anything
    /// but 3, `MQTT` with anything but 4 and 5); answer CONNACK 0x01 (0x84 at MQTT 5), then
    /// close.
    #[error("unsupported protocol level {0} [MQTT-3.1.2-2]")]
    UnsupportedProtocolLevel(u8),

    /// The CONNECT flags byte breaks one of the flag rules; `rule` says which.
    #[error("invalid CONNECT flags {flags:#010b}: {rule}")]
    InvalidConnectFlags { flags: u8, rule: &'static str },

    /// A QoS field holds the reserved value 3.
    #[error("QoS 3 is reserved [MQTT-3.3.1-4, MQTT-3.1.2-14, MQTT-3.8.3-4]")]
    InvalidQoS,

    /// A packet identifier is 0.
    #[error("packet identifier must be non-zero [MQTT-2.3.1-1]")]
    ZeroPacketId,

    /// A string is not well-formed UTF-8 or contains U+0000.
    #[error("string is not well-formed UTF-8 or contains U+0000 [MQTT-1.5.3-1, MQTT-1.5.3-2]")]
    InvalidUtf8,

    /// A topic name is empty or contains a wildcard.
    #[error("topic name is empty or contains '+' or '#' [MQTT-3.3.2-2, MQTT-4.7.3-1]")]
    InvalidTopicName,

    /// A topic name or filter longer than `limits.max_topic_length`.
    #[error("topic of {len} bytes exceeds limits.max_topic_length ({max})")]
    TopicTooLong { len: usize, max: usize },

    /// A topic name or filter with more levels than `limits.max_topic_levels`.
    #[error("topic of {levels} levels exceeds limits.max_topic_levels ({max})")]
    TopicTooDeep { levels: usize, max: usize },

    /// A SUBSCRIBE or UNSUBSCRIBE topic filter is the empty string.
    #[error("topic filter is empty [MQTT-4.7.3-1]")]
    EmptyTopicFilter,

    /// A SUBSCRIBE or UNSUBSCRIBE carries no topic filter at all.
    #[error("SUBSCRIBE/UNSUBSCRIBE carries no topic filter [MQTT-3.8.3-3, MQTT-3.10.3-2]")]
    NoTopicFilters,

    /// The options byte of a SUBSCRIBE entry has reserved bits set: bits 2–7 at 3.1.1, bits
    /// 6–7 at MQTT 5.
    #[error("reserved bits set in SUBSCRIBE options byte {0:#04x} [MQTT-3.8.3-4, MQTT-3.8.3-5]")]
    InvalidSubscribeOptions(u8),

    /// An MQTT 5 SUBSCRIBE options byte whose values break a rule; `rule` says which.
    #[error("invalid SUBSCRIBE options {options:#04x}: {rule}")]
    InvalidSubscriptionOption { options: u8, rule: &'static str },

    /// A SUBACK return code other than 0x00, 0x01, 0x02 or 0x80.
    #[error("invalid SUBACK return code {0:#04x} [MQTT-3.9.3-2]")]
    InvalidSubackCode(u8),

    /// CONNACK acknowledge flags with a reserved bit (7–1) set.
    #[error("reserved bits set in CONNACK flags {0:#04x} (§3.2.2.1)")]
    InvalidConnAckFlags(u8),

    /// A CONNACK return code in the reserved range 6–255.
    #[error("reserved CONNACK return code {0} (§3.2.2.3, table 3.1)")]
    InvalidReturnCode(u8),

    /// A field runs past the end of the remaining length.
    #[error("packet fields run past the remaining length (§2.2.3)")]
    Truncated,

    /// The remaining length covers bytes after the last field.
    #[error("remaining length covers bytes after the last field (§2.2.3)")]
    TrailingBytes,

    /// A Variable Byte Integer (property length, Subscription Identifier) with a
    /// continuation bit on its 4th byte.
    #[error("variable byte integer is longer than 4 bytes (MQTT 5.0 §1.5.5)")]
    MalformedVariableByteInteger,

    /// A property identifier MQTT 5.0 does not define (§2.2.2.2, table 2-4).
    #[error("unknown property identifier {0:#04x} (MQTT 5.0 §2.2.2.2, table 2-4)")]
    UnknownProperty(u8),

    /// A property this packet (or a will) may not carry.
    #[error("property {id:#04x} is not allowed in {packet} (MQTT 5.0 §2.2.2.2, table 2-4)")]
    PropertyNotAllowed { id: u8, packet: &'static str },

    /// A property other than User Property, or Subscription Identifier in PUBLISH, appears
    /// twice.
    #[error("property {0:#04x} appears more than once (MQTT 5.0 §2.2.2.2, §3.1.2.11, §3.3.2.3)")]
    DuplicateProperty(u8),

    /// A property value the spec forbids; `rule` says which.
    #[error("invalid value of property {id:#04x}: {rule}")]
    InvalidPropertyValue { id: u8, rule: &'static str },

    /// A reason code this packet type may not carry (MQTT 5.0 §2.4, table 2-6).
    #[error("reason code {code:#04x} is not valid in packet type {packet_type} (MQTT 5.0 §2.4, table 2-6)")]
    InvalidReasonCode { packet_type: u8, code: u8 },

    /// An MQTT 5 PUBLISH with an empty topic name and no Topic Alias.
    #[error("empty topic name without a Topic Alias (MQTT 5.0 §3.3.2.3.4)")]
    MissingTopicAlias,

    /// Any other violation; the text says which.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

impl DecodeError {
    /// Whether this is a topic over `limits.max_topic_levels` or `limits.max_topic_length`
    /// (counted on its own: it is a configured bound, not a broken client).
    pub fn is_topic_limit(&self) -> bool {
        matches!(
            self,
            DecodeError::TopicTooLong { .. } | DecodeError::TopicTooDeep { .. }
        )
    }

    /// A short, stable snake_case label for metrics and structured logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::PacketTooLarge { .. } => "packet_too_large",
            DecodeError::MalformedRemainingLength => "malformed_remaining_length",
            DecodeError::ReservedPacketType(_) => "reserved_packet_type",
            DecodeError::InvalidFixedHeaderFlags { .. } => "invalid_fixed_header_flags",
            DecodeError::InvalidProtocolName => "invalid_protocol_name",
            DecodeError::UnsupportedProtocolLevel(_) => "unsupported_protocol_level",
            DecodeError::InvalidConnectFlags { .. } => "invalid_connect_flags",
            DecodeError::InvalidQoS => "invalid_qos",
            DecodeError::ZeroPacketId => "zero_packet_id",
            DecodeError::InvalidUtf8 => "invalid_utf8",
            DecodeError::InvalidTopicName => "invalid_topic_name",
            DecodeError::TopicTooLong { .. } => "topic_too_long",
            DecodeError::TopicTooDeep { .. } => "topic_too_deep",
            DecodeError::EmptyTopicFilter => "empty_topic_filter",
            DecodeError::NoTopicFilters => "no_topic_filters",
            DecodeError::InvalidSubscribeOptions(_) => "invalid_subscribe_options",
            DecodeError::InvalidSubackCode(_) => "invalid_suback_code",
            DecodeError::InvalidConnAckFlags(_) => "invalid_connack_flags",
            DecodeError::InvalidReturnCode(_) => "invalid_return_code",
            DecodeError::Truncated => "truncated",
            DecodeError::TrailingBytes => "trailing_bytes",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::InvalidSubscriptionOption { .. } => "invalid_subscription_option",
            DecodeError::MalformedVariableByteInteger => "malformed_variable_byte_integer",
            DecodeError::UnknownProperty(_) => "unknown_property",
            DecodeError::PropertyNotAllowed { .. } => "property_not_allowed",
            DecodeError::DuplicateProperty(_) => "duplicate_property",
            DecodeError::InvalidPropertyValue { .. } => "invalid_property_value",
            DecodeError::InvalidReasonCode { .. } => "invalid_reason_code",
            DecodeError::MissingTopicAlias => "missing_topic_alias",
        }
    }

    /// The MQTT 5 reason code the connection answers this error with, in its CONNACK or
    /// DISCONNECT before closing (MQTT 5.0 §4.13).
    ///
    /// The spec's split: a packet that cannot be parsed as its layout says, or whose field
    /// holds a value outside that field's domain, is 0x81 Malformed Packet (§4.13.1); a packet
    /// that parses but breaks a rule the spec calls "a Protocol Error" (a property twice or on
    /// the wrong packet, a zero Receive Maximum, an empty topic without an alias, ...) is 0x82
    /// Protocol Error. Which side of the line a rule sits is the spec's word where it gives it.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            // A foreign protocol name gets no answer at all [MQTT-3.1.2-1]; should a caller
            // answer, the nearest word is "not a protocol version this server speaks".
            DecodeError::InvalidProtocolName | DecodeError::UnsupportedProtocolLevel(_) => {
                ReasonCode::UnsupportedProtocolVersion
            }
            // The configured topic bounds: the packet is valid, this server does not take it
            // (0x83, "valid but not accepted by this implementation", allowed in CONNACK and
            // DISCONNECT alike, and neither 0x8F nor 0x90 fits both names and filters).
            DecodeError::TopicTooLong { .. } | DecodeError::TopicTooDeep { .. } => {
                ReasonCode::ImplementationSpecificError
            }
            // "A SUBSCRIBE/UNSUBSCRIBE packet with no Payload is a Protocol Error" (§3.8.3,
            // §3.10.3); so are Retain Handling 3, Maximum QoS 3 and No Local on a shared
            // subscription (§3.8.3.1), duplicate and misplaced properties (§2.2.2.2 and every
            // property's "It is a Protocol Error to include ... more than once"), forbidden
            // property values (Receive Maximum 0, Topic Alias 0, ...) and an empty topic name
            // without a Topic Alias (§3.3.2.3.4).
            // A Topic Alias of 0 [MQTT-3.3.2-8] is the alias error of its own, as Mosquitto
            // answers it (§4.13: 0x94 Topic Alias invalid).
            DecodeError::InvalidPropertyValue { id: 0x23, .. } => ReasonCode::TopicAliasInvalid,
            DecodeError::NoTopicFilters
            | DecodeError::InvalidSubscriptionOption { .. }
            | DecodeError::PropertyNotAllowed { .. }
            | DecodeError::DuplicateProperty(_)
            | DecodeError::InvalidPropertyValue { .. }
            | DecodeError::MissingTopicAlias => ReasonCode::ProtocolError,
            // Framing and field encodings: an unknown property id leaves the rest unparsable,
            // a reason code outside the packet's table is not a value of that field, and the
            // reserved bits, QoS 3, bad UTF-8 and the like are Malformed by name in the spec
            // (§1.5.4, §2.1.3, §3.1.2.3, §3.3.1.2, §3.8.3.1).
            DecodeError::MalformedRemainingLength
            | DecodeError::ReservedPacketType(_)
            | DecodeError::InvalidFixedHeaderFlags { .. }
            | DecodeError::InvalidConnectFlags { .. }
            | DecodeError::InvalidQoS
            | DecodeError::ZeroPacketId
            | DecodeError::InvalidUtf8
            | DecodeError::InvalidTopicName
            | DecodeError::EmptyTopicFilter
            | DecodeError::InvalidSubscribeOptions(_)
            | DecodeError::InvalidSubackCode(_)
            | DecodeError::InvalidConnAckFlags(_)
            | DecodeError::InvalidReturnCode(_)
            | DecodeError::Truncated
            | DecodeError::TrailingBytes
            | DecodeError::Malformed(_)
            | DecodeError::MalformedVariableByteInteger
            | DecodeError::UnknownProperty(_)
            | DecodeError::InvalidReasonCode { .. } => ReasonCode::MalformedPacket,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DecodeError;

    #[test]
    fn kinds_are_distinct_snake_case_labels() {
        let all = [
            DecodeError::PacketTooLarge { size: 2, max: 1 },
            DecodeError::MalformedRemainingLength,
            DecodeError::ReservedPacketType(0),
            DecodeError::InvalidFixedHeaderFlags {
                packet_type: 1,
                flags: 1,
            },
            DecodeError::InvalidProtocolName,
            DecodeError::UnsupportedProtocolLevel(5),
            DecodeError::InvalidConnectFlags {
                flags: 1,
                rule: "x",
            },
            DecodeError::InvalidQoS,
            DecodeError::ZeroPacketId,
            DecodeError::InvalidUtf8,
            DecodeError::InvalidTopicName,
            DecodeError::TopicTooLong { len: 2, max: 1 },
            DecodeError::TopicTooDeep { levels: 2, max: 1 },
            DecodeError::EmptyTopicFilter,
            DecodeError::NoTopicFilters,
            DecodeError::InvalidSubscribeOptions(4),
            DecodeError::InvalidSubackCode(3),
            DecodeError::InvalidConnAckFlags(2),
            DecodeError::InvalidReturnCode(6),
            DecodeError::Truncated,
            DecodeError::TrailingBytes,
            DecodeError::Malformed("x"),
            DecodeError::InvalidSubscriptionOption {
                options: 0x30,
                rule: "x",
            },
            DecodeError::MalformedVariableByteInteger,
            DecodeError::UnknownProperty(0),
            DecodeError::PropertyNotAllowed {
                id: 0x23,
                packet: "x",
            },
            DecodeError::DuplicateProperty(1),
            DecodeError::InvalidPropertyValue { id: 1, rule: "x" },
            DecodeError::InvalidReasonCode {
                packet_type: 4,
                code: 1,
            },
            DecodeError::MissingTopicAlias,
        ];
        let mut kinds: Vec<&str> = all.iter().map(DecodeError::kind).collect();
        for k in &kinds {
            assert!(
                k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{k}"
            );
        }
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), all.len());
        // Messages render without panicking and are never empty.
        assert!(all.iter().all(|e| !e.to_string().is_empty()));
        // Every error answers with a failure code a DISCONNECT may carry (table 3-10).
        for e in &all {
            let code = e.reason_code();
            assert!(code.is_error(), "{e:?}");
        }
    }
}
