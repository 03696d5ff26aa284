//! The packet model: one Rust type per control packet (spec §2–3), shaped for every protocol
//! level.
//!
//! These types are plain data. Validation happens in `decode`; anything that exists as a
//! `Packet` value is well-formed for the wire, except where a field doc says otherwise.
//! Fields that only MQTT 5 puts on the wire (reason codes of acknowledgements, properties,
//! subscription options beyond the QoS) hold their 3.1.1 meaning at levels 3 and 4: success,
//! empty, and the defaults of [`SubscriptionOptions::new`]. The encoder leaves them out there.

use bytes::Bytes;

use super::level::ProtocolLevel;
use super::properties::Properties;
use super::reason::{ConnectReturnCode, ReasonCode};

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

/// CONNECT (spec §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The level this CONNECT was sent at, and that the connection speaks from then on.
    pub level: ProtocolLevel,
    pub clean_session: bool,
    pub keep_alive: u16,
    /// May be empty; the connection layer decides whether that is allowed [MQTT-3.1.3-6..8].
    pub client_id: String,
    pub will: Option<LastWill>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    /// MQTT 5 CONNECT properties (MQTT 5.0 §3.1.2.11).
    pub properties: Properties,
}

/// The will message carried in CONNECT (spec §3.1.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// A valid topic name (no wildcards).
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// MQTT 5 will properties (MQTT 5.0 §3.1.3.2).
    pub properties: Properties,
}

/// CONNACK (spec §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    /// Why the connection was accepted or refused, as MQTT 5 says it. At 3.1 and 3.1.1 the
    /// wire carries [`ConnectReturnCode::from_reason`] of it, so only the codes that map
    /// back from a return code (see [`ConnAck::return_code`]) survive a round trip.
    pub reason: ReasonCode,
    /// MQTT 5 CONNACK properties (MQTT 5.0 §3.2.2.3).
    pub properties: Properties,
}

impl ConnAck {
    /// A CONNACK without properties.
    pub fn new(session_present: bool, reason: impl Into<ReasonCode>) -> ConnAck {
        ConnAck {
            session_present,
            reason: reason.into(),
            properties: Properties::new(),
        }
    }

    /// The 3.1.1 return code this CONNACK carries at levels 3 and 4.
    pub fn return_code(&self) -> ConnectReturnCode {
        ConnectReturnCode::from_reason(self.reason)
    }
}

/// PUBLISH (spec §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// A valid topic name: non-empty, no `+`/`#`, no U+0000 [MQTT-3.3.2-2, MQTT-4.7.3-1]. At
    /// MQTT 5 it may be empty when the properties carry a Topic Alias (§3.3.2.3.4).
    pub topic: String,
    /// Present exactly when `qos > 0`; never 0 [MQTT-2.3.1-1].
    pub pkid: u16,
    pub payload: Bytes,
    /// MQTT 5 PUBLISH properties (MQTT 5.0 §3.3.2.3); one pointer, null when empty.
    pub properties: Properties,
}

impl Publish {
    /// Everything of this PUBLISH but its payload, for [`crate::codec::encode_publish_header`].
    pub fn header(&self) -> PublishHeader<'_> {
        PublishHeader {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: &self.topic,
            pkid: self.pkid,
            payload_len: self.payload.len(),
            properties: &self.properties,
            message_expiry: self
                .properties
                .values()
                .and_then(|v| v.message_expiry_interval),
            topic_alias: self.properties.values().and_then(|v| v.topic_alias),
            subscription_ids: self
                .properties
                .values()
                .map_or(&[][..], |v| &v.subscription_identifiers[..]),
        }
    }
}

/// A PUBLISH without its payload: what its header is written from, so that one payload can
/// be shared by every subscriber it is sent to (see `encode_publish_header`).
#[derive(Debug, Clone, Copy)]
pub struct PublishHeader<'a> {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// A valid topic name, as in [`Publish::topic`].
    pub topic: &'a str,
    /// Ignored for QoS 0, which has no packet identifier (§3.3.2.2).
    pub pkid: u16,
    /// The length of the payload the caller writes after the header.
    pub payload_len: usize,
    /// MQTT 5 only (ignored at 3.1 and 3.1.1): the message's properties as published. Their
    /// Message Expiry Interval, Topic Alias and Subscription Identifiers are *not* written
    /// from here but from the three fields below, which differ per delivery (§3.3.2.3).
    pub properties: &'a Properties,
    /// MQTT 5: the Message Expiry Interval to write, the time the message has left
    /// [MQTT-3.3.2-6].
    pub message_expiry: Option<u32>,
    /// MQTT 5: the Topic Alias to write. With an alias, `topic` may be empty (the alias was
    /// set up by an earlier PUBLISH on this connection, §3.3.2.3.4).
    pub topic_alias: Option<u16>,
    /// MQTT 5: the Subscription Identifiers of the subscriptions this copy is sent for
    /// [MQTT-3.3.4-3].
    pub subscription_ids: &'a [u32],
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (spec §3.4–3.7): a packet id, and at MQTT 5 a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Never 0 [MQTT-2.3.1-1].
    pub pkid: u16,
    /// Not on the wire at 3.1 and 3.1.1, where an acknowledgement only succeeds.
    pub reason: ReasonCode,
    /// MQTT 5 acknowledgement properties (MQTT 5.0 §3.4.2.2).
    pub properties: Properties,
}

impl Ack {
    /// A successful acknowledgement of `pkid`: all a 3.1.1 acknowledgement can say.
    pub fn new(pkid: u16) -> Ack {
        Ack {
            pkid,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }
    }
}

/// How retained messages are sent when a subscription is made (MQTT 5.0 §3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send the retained messages at the time of the subscribe (the only 3.1.1 behaviour).
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist before.
    SendAtSubscribeIfNew = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// What a subscription asks for besides its filter: the options byte (MQTT 5.0 §3.8.3.1).
/// At 3.1.1 only the QoS exists (§3.8.3), and the rest keeps its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// The maximum QoS of the messages sent for this subscription.
    pub qos: QoS,
    /// Do not send this client's own messages back to it.
    pub no_local: bool,
    /// Keep the RETAIN flag of forwarded messages as published.
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// The options of a 3.1.1 subscription at `qos`: its own messages are sent back to it,
    /// RETAIN is cleared on forwarded messages [MQTT-3.3.1-9] and retained messages are sent
    /// on every subscribe [MQTT-3.3.1-6].
    pub fn new(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        }
    }
}

/// One entry of a SUBSCRIBE payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// Non-empty UTF-8; wildcard placement is checked by the topic layer, which answers 0x80.
    pub filter: String,
    pub options: SubscriptionOptions,
}

impl SubscribeFilter {
    /// A 3.1.1 subscription to `filter` at `qos`.
    pub fn new(filter: impl Into<String>, qos: QoS) -> SubscribeFilter {
        SubscribeFilter {
            filter: filter.into(),
            options: SubscriptionOptions::new(qos),
        }
    }
}

/// SUBSCRIBE (spec §3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub pkid: u16,
    /// At least one entry [MQTT-3.8.3-3].
    pub filters: Vec<SubscribeFilter>,
    /// MQTT 5 SUBSCRIBE properties (MQTT 5.0 §3.8.2.1).
    pub properties: Properties,
}

impl Subscribe {
    /// A SUBSCRIBE without properties.
    pub fn new(pkid: u16, filters: Vec<SubscribeFilter>) -> Subscribe {
        Subscribe {
            pkid,
            filters,
            properties: Properties::new(),
        }
    }
}

/// SUBACK (spec §3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub pkid: u16,
    /// One per requested filter, in order [MQTT-3.9.3-1]: [`ReasonCode::granted`] a QoS, or
    /// an error. At 3.1 and 3.1.1 every error is written as 0x80 (§3.9.3), which decodes as
    /// [`ReasonCode::UnspecifiedError`].
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 SUBACK properties (MQTT 5.0 §3.9.2.1).
    pub properties: Properties,
}

impl SubAck {
    /// A SUBACK without properties.
    pub fn new(pkid: u16, reasons: Vec<ReasonCode>) -> SubAck {
        SubAck {
            pkid,
            reasons,
            properties: Properties::new(),
        }
    }
}

/// UNSUBSCRIBE (spec §3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub pkid: u16,
    /// At least one entry [MQTT-3.10.3-2].
    pub filters: Vec<String>,
    /// MQTT 5 UNSUBSCRIBE properties (MQTT 5.0 §3.10.2.1).
    pub properties: Properties,
}

impl Unsubscribe {
    /// An UNSUBSCRIBE without properties.
    pub fn new(pkid: u16, filters: Vec<String>) -> Unsubscribe {
        Unsubscribe {
            pkid,
            filters,
            properties: Properties::new(),
        }
    }
}

/// UNSUBACK (spec §3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub pkid: u16,
    /// At MQTT 5, one per filter of the UNSUBSCRIBE, in order (MQTT 5.0 §3.11.3). Not on the
    /// wire at 3.1 and 3.1.1, where an UNSUBACK is only a packet id: empty when decoded there.
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 UNSUBACK properties (MQTT 5.0 §3.11.2.1).
    pub properties: Properties,
}

impl UnsubAck {
    /// The UNSUBACK of `pkid` as 3.1.1 has it: no reason codes, no properties.
    pub fn new(pkid: u16) -> UnsubAck {
        UnsubAck {
            pkid,
            reasons: Vec::new(),
            properties: Properties::new(),
        }
    }
}

/// DISCONNECT (spec §3.14). At 3.1 and 3.1.1 it has no body: only a client sends it, to
/// disconnect cleanly (§3.14), and its will is then discarded [MQTT-3.14.4-3].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// [`ReasonCode::NormalDisconnection`] by default; not on the wire at 3.1 and 3.1.1.
    pub reason: ReasonCode,
    /// MQTT 5 DISCONNECT properties (MQTT 5.0 §3.14.2.2).
    pub properties: Properties,
}

/// AUTH (MQTT 5.0 §3.15): a step of enhanced authentication. MQTT 5 only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// 0x00 Success, 0x18 Continue authentication or 0x19 Re-authenticate (§3.15.2.1).
    pub reason: ReasonCode,
    /// Authentication Method and Data, Reason String, User Properties (§3.15.2.2).
    pub properties: Properties,
}

/// Every control packet.
///
/// CONNECT is boxed: it is the largest packet by far and arrives once per connection, and
/// inline it would set the size of every `Packet` the hot path moves (see the size test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    /// MQTT 5 only.
    Auth(Auth),
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
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

impl From<Connect> for Packet {
    fn from(c: Connect) -> Packet {
        Packet::Connect(Box::new(c))
    }
}
