//! MQTT 5 properties: the optional, typed metadata of a packet (MQTT 5.0 §2.2.2).
//!
//! Owns [`Properties`], the value every packet that may carry properties holds, and
//! [`PropertyValues`], one typed field per property of table 2-4. Properties are MQTT 5
//! only: at 3.1 and 3.1.1 they are always empty, and the encoder leaves them out. At level 5
//! the decoder reads them (`decode/properties.rs`) and the encoder writes them, both from
//! the one table of which packet may carry which property kept here ([`PropertyContext`],
//! [`allowed_in`], MQTT 5.0 table 2-4).
//!
//! Nearly every packet a 3.1.1 broker handles has no properties, so the empty value must
//! cost nothing: [`Properties`] is one pointer, null when empty, and only a packet that has
//! properties pays for the (large) [`PropertyValues`] allocation.

use bytes::Bytes;

use super::packet::QoS;

/// What a PUBLISH payload is, as its Payload Format Indicator says (MQTT 5.0 §3.3.2.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// 0: unspecified bytes.
    Unspecified = 0,
    /// 1: UTF-8 encoded character data.
    Utf8 = 1,
}

/// The properties of one packet (MQTT 5.0 §2.2.2): empty, or a boxed [`PropertyValues`].
///
/// Compare and test with [`Properties::is_empty`] rather than by shape: a box whose fields
/// are all absent is empty too, and equal to [`Properties::new`].
#[derive(Debug, Clone, Default)]
pub struct Properties(Option<Box<PropertyValues>>);

/// All properties absent: what [`Properties::values_or_empty`] lends for an empty value.
static NO_VALUES: PropertyValues = PropertyValues::EMPTY;

/// No properties, for borrowing: what [`Properties::none`] lends.
static NO_PROPERTIES: Properties = Properties::new();

impl Properties {
    /// No properties; allocates nothing.
    pub const fn new() -> Properties {
        Properties(None)
    }

    /// No properties, borrowed for as long as needed.
    pub fn none() -> &'static Properties {
        &NO_PROPERTIES
    }

    /// Whether no property is present.
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().map_or(true, PropertyValues::is_empty)
    }

    /// The values, when any is present.
    pub fn values(&self) -> Option<&PropertyValues> {
        self.0.as_deref().filter(|v| !v.is_empty())
    }

    /// The values, all absent for an empty value.
    pub fn values_or_empty(&self) -> &PropertyValues {
        self.0.as_deref().unwrap_or(&NO_VALUES)
    }

    /// The values, moved out (no copy), when any is present.
    pub fn into_values(self) -> Option<PropertyValues> {
        self.0.map(|b| *b).filter(|v| !v.is_empty())
    }

    /// The values to set properties on; allocates them on first use.
    pub fn values_mut(&mut self) -> &mut PropertyValues {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<PropertyValues> for Properties {
    /// Boxes `values`, unless none is present.
    fn from(values: PropertyValues) -> Properties {
        if values.is_empty() {
            Properties::new()
        } else {
            Properties(Some(Box::new(values)))
        }
    }
}

impl PartialEq for Properties {
    fn eq(&self, other: &Properties) -> bool {
        self.values_or_empty() == other.values_or_empty()
    }
}

impl Eq for Properties {}

/// Every MQTT 5 property, one typed field each (MQTT 5.0 §2.2.2.2, table 2-4); `None` or
/// empty when absent. Each field names its identifier and the packets that may carry it:
/// the level-5 decoder refuses a property on any other packet, and the encoder leaves it
/// out there (see [`allowed_in`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyValues {
    /// 0x01 — PUBLISH, will.
    pub payload_format_indicator: Option<PayloadFormat>,
    /// 0x02, in seconds — PUBLISH, will.
    pub message_expiry_interval: Option<u32>,
    /// 0x03 — PUBLISH, will.
    pub content_type: Option<String>,
    /// 0x08 — PUBLISH, will.
    pub response_topic: Option<String>,
    /// 0x09 — PUBLISH, will.
    pub correlation_data: Option<Bytes>,
    /// 0x0B, each 1 to 268,435,455 — PUBLISH (one per matching subscription), SUBSCRIBE
    /// (at most one).
    pub subscription_identifiers: Vec<u32>,
    /// 0x11, in seconds — CONNECT, CONNACK, DISCONNECT.
    pub session_expiry_interval: Option<u32>,
    /// 0x12 — CONNACK.
    pub assigned_client_identifier: Option<String>,
    /// 0x13, in seconds — CONNACK.
    pub server_keep_alive: Option<u16>,
    /// 0x15 — CONNECT, CONNACK, AUTH.
    pub authentication_method: Option<String>,
    /// 0x16 — CONNECT, CONNACK, AUTH.
    pub authentication_data: Option<Bytes>,
    /// 0x17 — CONNECT.
    pub request_problem_information: Option<bool>,
    /// 0x18, in seconds — will.
    pub will_delay_interval: Option<u32>,
    /// 0x19 — CONNECT.
    pub request_response_information: Option<bool>,
    /// 0x1A — CONNACK.
    pub response_information: Option<String>,
    /// 0x1C — CONNACK, DISCONNECT.
    pub server_reference: Option<String>,
    /// 0x1F — CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH.
    pub reason_string: Option<String>,
    /// 0x21 — CONNECT, CONNACK.
    pub receive_maximum: Option<u16>,
    /// 0x22 — CONNECT, CONNACK.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 — PUBLISH.
    pub topic_alias: Option<u16>,
    /// 0x24, QoS 0 or 1 — CONNACK.
    pub maximum_qos: Option<QoS>,
    /// 0x25 — CONNACK.
    pub retain_available: Option<bool>,
    /// 0x26, name–value pairs in the order sent, which forwarding keeps [MQTT-3.3.2-18]; a
    /// name may repeat (§3.3.2.3.7) — every packet that has properties.
    pub user_properties: Vec<(String, String)>,
    /// 0x27, in bytes — CONNECT, CONNACK.
    pub maximum_packet_size: Option<u32>,
    /// 0x28 — CONNACK.
    pub wildcard_subscription_available: Option<bool>,
    /// 0x29 — CONNACK.
    pub subscription_identifiers_available: Option<bool>,
    /// 0x2A — CONNACK.
    pub shared_subscription_available: Option<bool>,
}

impl PropertyValues {
    /// Every property absent.
    pub const EMPTY: PropertyValues = PropertyValues {
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        subscription_identifiers: Vec::new(),
        session_expiry_interval: None,
        assigned_client_identifier: None,
        server_keep_alive: None,
        authentication_method: None,
        authentication_data: None,
        request_problem_information: None,
        will_delay_interval: None,
        request_response_information: None,
        response_information: None,
        server_reference: None,
        reason_string: None,
        receive_maximum: None,
        topic_alias_maximum: None,
        topic_alias: None,
        maximum_qos: None,
        retain_available: None,
        user_properties: Vec::new(),
        maximum_packet_size: None,
        wildcard_subscription_available: None,
        subscription_identifiers_available: None,
        shared_subscription_available: None,
    };

    /// Whether no property is present.
    pub fn is_empty(&self) -> bool {
        *self == PropertyValues::EMPTY
    }
}

/// The property identifiers of MQTT 5.0 table 2-4. Identifiers are Variable Byte Integers,
/// but every one defined by 5.0 fits in one byte (§2.2.2.2).
pub(super) mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// Where a set of properties sits: a packet type, or the will of a CONNECT, whose
/// properties are a set of their own (MQTT 5.0 §3.1.3.2). PUBACK, PUBREC, PUBREL and PUBCOMP
/// allow the same properties and share [`PropertyContext::Ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PropertyContext {
    Connect = 0,
    Will,
    ConnAck,
    Publish,
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropertyContext {
    /// This context's bit in the sets [`allowed_in`] returns.
    pub(super) const fn bit(self) -> u16 {
        1 << self as u16
    }

    /// Whether property `id` may appear here.
    pub(super) const fn allows(self, id: u8) -> bool {
        allowed_in(id) & self.bit() != 0
    }

    /// The packet's name, for error messages.
    pub(super) const fn name(self) -> &'static str {
        match self {
            PropertyContext::Connect => "CONNECT",
            PropertyContext::Will => "will",
            PropertyContext::ConnAck => "CONNACK",
            PropertyContext::Publish => "PUBLISH",
            PropertyContext::Ack => "PUBACK/PUBREC/PUBREL/PUBCOMP",
            PropertyContext::Subscribe => "SUBSCRIBE",
            PropertyContext::SubAck => "SUBACK",
            PropertyContext::Unsubscribe => "UNSUBSCRIBE",
            PropertyContext::UnsubAck => "UNSUBACK",
            PropertyContext::Disconnect => "DISCONNECT",
            PropertyContext::Auth => "AUTH",
        }
    }
}

/// The contexts property `id` may appear in, as a set of [`PropertyContext::bit`]s (MQTT 5.0
/// table 2-4, and §3.1.3.2 for the will); 0 for an identifier 5.0 does not define.
pub(super) const fn allowed_in(id: u8) -> u16 {
    use PropertyContext as C;
    const fn set(contexts: &[PropertyContext]) -> u16 {
        let mut bits = 0;
        let mut i = 0;
        while i < contexts.len() {
            bits |= contexts[i].bit();
            i += 1;
        }
        bits
    }
    match id {
        id::PAYLOAD_FORMAT_INDICATOR
        | id::MESSAGE_EXPIRY_INTERVAL
        | id::CONTENT_TYPE
        | id::RESPONSE_TOPIC
        | id::CORRELATION_DATA => set(&[C::Publish, C::Will]),
        id::SUBSCRIPTION_IDENTIFIER => set(&[C::Publish, C::Subscribe]),
        id::SESSION_EXPIRY_INTERVAL => set(&[C::Connect, C::ConnAck, C::Disconnect]),
        id::AUTHENTICATION_METHOD | id::AUTHENTICATION_DATA => {
            set(&[C::Connect, C::ConnAck, C::Auth])
        }
        id::REQUEST_PROBLEM_INFORMATION | id::REQUEST_RESPONSE_INFORMATION => set(&[C::Connect]),
        id::WILL_DELAY_INTERVAL => set(&[C::Will]),
        id::ASSIGNED_CLIENT_IDENTIFIER
        | id::SERVER_KEEP_ALIVE
        | id::RESPONSE_INFORMATION
        | id::MAXIMUM_QOS
        | id::RETAIN_AVAILABLE
        | id::WILDCARD_SUBSCRIPTION_AVAILABLE
        | id::SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | id::SHARED_SUBSCRIPTION_AVAILABLE => set(&[C::ConnAck]),
        id::SERVER_REFERENCE => set(&[C::ConnAck, C::Disconnect]),
        id::REASON_STRING => set(&[
            C::ConnAck,
            C::Ack,
            C::SubAck,
            C::UnsubAck,
            C::Disconnect,
            C::Auth,
        ]),
        id::RECEIVE_MAXIMUM | id::TOPIC_ALIAS_MAXIMUM | id::MAXIMUM_PACKET_SIZE => {
            set(&[C::Connect, C::ConnAck])
        }
        id::TOPIC_ALIAS => set(&[C::Publish]),
        // Every packet that has properties, and the will.
        id::USER_PROPERTY => u16::MAX,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_empty_and_one_pointer() {
        let p = Properties::default();
        assert!(p.is_empty());
        assert_eq!(p, Properties::new());
        assert!(p.values().is_none());
        assert!(p.values_or_empty().is_empty());
        // Empty costs a null pointer: `Option<Box<_>>` uses the null niche.
        assert_eq!(
            std::mem::size_of::<Properties>(),
            std::mem::size_of::<usize>()
        );
        assert!(PropertyValues::default().is_empty());
    }

    #[test]
    fn set_values_are_seen_and_compared() {
        let mut p = Properties::new();
        // Touching the values without setting one leaves the properties empty.
        p.values_mut();
        assert!(p.is_empty());
        assert_eq!(p, Properties::new());

        p.values_mut().message_expiry_interval = Some(60);
        p.values_mut()
            .user_properties
            .push(("k".into(), "v".into()));
        assert!(!p.is_empty());
        assert_ne!(p, Properties::new());
        let values = p.values().expect("values are present");
        assert_eq!(values.message_expiry_interval, Some(60));

        let q = Properties::from(values.clone());
        assert_eq!(p, q);
        assert!(Properties::from(PropertyValues::default())
            .values()
            .is_none());
    }
}
