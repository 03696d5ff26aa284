//! Why a byte stream is not a valid MQTT 3.1.1 / 3.1 packet, or not one this codec reads.
//!
//! Owns [`DecodeError`], the single error type of the decoder. Every variant means "malformed
//! packet": the spec's answer is to close the network connection (§4.8), except that
//! [`DecodeError::UnsupportedProtocolLevel`] first earns a CONNACK with return code 0x01
//! [MQTT-3.1.2-2]. Each message names the rule it enforces so that a log line is enough to
//! tell a buggy client what it did wrong.

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

    /// A known protocol name with the wrong level (level 5 included, until MQTT 5 is on the
    /// wire); answer CONNACK 0x01, then close. Also any packet but CONNECT decoded at level
    /// 5, which no connection reaches.
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

    /// The requested-QoS byte of a SUBSCRIBE entry has reserved upper bits set.
    #[error("reserved bits set in SUBSCRIBE requested QoS byte {0:#04x} [MQTT-3.8.3-4]")]
    InvalidSubscribeOptions(u8),

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

    /// Any other violation; the text says which.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

impl DecodeError {
    /// The MQTT 5 reason code a DISCONNECT for this error carries.
    pub fn reason_code(&self) -> super::ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => super::ReasonCode::PacketTooLarge,
            _ => super::ReasonCode::MalformedPacket,
        }
    }

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
    }
}
