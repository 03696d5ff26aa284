//! The MQTT 3.1.1 / 3.1 packet model: one Rust type per control packet (spec §2–3).
//!
//! These types are plain data. Validation happens in `decode`; anything that exists as a
//! `Packet` value is well-formed for the wire, except where a field doc says otherwise.

use bytes::Bytes;

use super::reason::ConnectReturnCode;

/// Quality of service levels (spec §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// At most once.
    #[default]
    AtMostOnce = 0,
    /// At least once.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses the two QoS bits; 3 is reserved and malformed [MQTT-3.3.1-4].
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Which protocol revision a client spoke in CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V311,
}

/// CONNECT (spec §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub protocol: Protocol,
    pub clean_session: bool,
    pub keep_alive: u16,
    /// May be empty; the connection layer decides whether that is allowed [MQTT-3.1.3-6..8].
    pub client_id: String,
    pub will: Option<LastWill>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
}

/// The will message carried in CONNECT (spec §3.1.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// A valid topic name (no wildcards).
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
}

/// CONNACK (spec §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub code: ConnectReturnCode,
}

/// PUBLISH (spec §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// A valid topic name: non-empty, no `+`/`#`, no U+0000 [MQTT-3.3.2-2, MQTT-4.7.3-1].
    pub topic: String,
    /// Present exactly when `qos > 0`; never 0 [MQTT-2.3.1-1].
    pub pkid: u16,
    pub payload: Bytes,
}

/// One entry of a SUBSCRIBE payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// Non-empty UTF-8; wildcard placement is checked by the topic layer, which answers 0x80.
    pub filter: String,
    pub qos: QoS,
}

/// SUBSCRIBE (spec §3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub pkid: u16,
    /// At least one entry [MQTT-3.8.3-3].
    pub filters: Vec<SubscribeFilter>,
}

/// One SUBACK return code (spec §3.9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubackCode {
    Granted(QoS),
    Failure,
}

impl SubackCode {
    /// The wire byte: 0, 1, 2 or 0x80.
    pub fn to_u8(self) -> u8 {
        match self {
            SubackCode::Granted(q) => q as u8,
            SubackCode::Failure => 0x80,
        }
    }
}

/// SUBACK (spec §3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub pkid: u16,
    pub codes: Vec<SubackCode>,
}

/// UNSUBSCRIBE (spec §3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub pkid: u16,
    /// At least one entry [MQTT-3.10.3-2].
    pub filters: Vec<String>,
}

/// Every MQTT 3.1.1 control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(u16),
    PingReq,
    PingResp,
    Disconnect,
}

impl Packet {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect => "DISCONNECT",
        }
    }
}
