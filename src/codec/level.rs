//! The protocol level a connection speaks, as carried in its CONNECT (spec §3.1.2.2).
//!
//! Owns [`ProtocolLevel`]: the one value that tells the decoder and the encoder which wire
//! layout a packet has. A connection learns its level from its CONNECT and passes it to every
//! `decode` and `encode` after that; before the CONNECT it passes [`ProtocolLevel::V311`]
//! (a CONNECT decodes the same whatever the level, and carries the level it was sent at).

/// A protocol level byte of CONNECT: which MQTT revision a client speaks.
///
/// 3.1 and 3.1.1 share one wire layout for every packet but CONNECT (protocol name and level).
/// MQTT 5 adds reason codes and properties to most packets, the full subscription options
/// byte and the AUTH packet; the codec reads and writes all of it at [`ProtocolLevel::V5`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum ProtocolLevel {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V31 = 3,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    #[default]
    V311 = 4,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5 = 5,
}

impl ProtocolLevel {
    /// Parses a protocol level byte; anything but 3, 4 and 5 is unknown.
    pub fn from_u8(v: u8) -> Option<ProtocolLevel> {
        match v {
            3 => Some(ProtocolLevel::V31),
            4 => Some(ProtocolLevel::V311),
            5 => Some(ProtocolLevel::V5),
            _ => None,
        }
    }

    /// The level byte of CONNECT (§3.1.2.2).
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// The protocol name CONNECT carries at this level: `MQIsdp` for 3.1, `MQTT` after
    /// (§3.1.2.1 of 3.1.1 and of 5.0).
    pub fn protocol_name(self) -> &'static str {
        match self {
            ProtocolLevel::V31 => "MQIsdp",
            ProtocolLevel::V311 | ProtocolLevel::V5 => "MQTT",
        }
    }

    /// Whether packets at this level carry reason codes and properties on the wire.
    pub fn is_v5(self) -> bool {
        self == ProtocolLevel::V5
    }
}

#[cfg(test)]
mod tests {
    use super::ProtocolLevel;

    #[test]
    fn level_bytes_round_trip() {
        for level in [ProtocolLevel::V31, ProtocolLevel::V311, ProtocolLevel::V5] {
            assert_eq!(ProtocolLevel::from_u8(level.to_u8()), Some(level));
        }
        assert_eq!(ProtocolLevel::V31.to_u8(), 3);
        assert_eq!(ProtocolLevel::V311.to_u8(), 4);
        assert_eq!(ProtocolLevel::V5.to_u8(), 5);
        for v in [0, 1, 2, 6, 0x83, 0xFF] {
            assert_eq!(ProtocolLevel::from_u8(v), None, "{v}");
        }
        assert_eq!(ProtocolLevel::default(), ProtocolLevel::V311);
        assert!(ProtocolLevel::V5.is_v5() && !ProtocolLevel::V311.is_v5());
    }
}
