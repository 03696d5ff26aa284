//! The pure MQTT codec: bytes in, [`Packet`]s out, and back (spec §2–3), at the protocol
//! level of the connection.
//!
//! Owns the wire format only. It does no I/O, knows nothing of sessions or routing, and never
//! panics on input. `decode` returns `Ok(None)` for "need more bytes" and `Err` for "malformed:
//! close the connection"; the packet-size limit is checked from the fixed header before the
//! body is buffered.
//!
//! # The model
//!
//! One packet model serves every protocol level ([`ProtocolLevel`]: 3 = 3.1, 4 = 3.1.1,
//! 5 = MQTT 5). It is MQTT 5's, the most expressive, and each level's wire form is what that
//! level can say of it:
//!
//! - acknowledgements carry a [`ReasonCode`] (every code of MQTT 5.0 table 2-6): [`Ack`] for
//!   PUBACK/PUBREC/PUBREL/PUBCOMP, a code per filter in [`SubAck`] and [`UnsubAck`], one in
//!   [`Disconnect`] and [`ConnAck`];
//! - PUBLISH, CONNECT and its will, CONNACK, SUBSCRIBE, UNSUBSCRIBE, the acknowledgements,
//!   DISCONNECT and AUTH carry [`Properties`], one pointer that is null when empty;
//! - a subscription carries [`SubscriptionOptions`], not a bare QoS.
//!
//! At 3.1 and 3.1.1 the decoder fills in the 3.1.1 meaning of what the wire lacks (success,
//! no properties, default options), and the encoder leaves it out again, so encoding is
//! byte-for-byte what 3.1.1 prescribes; a SUBACK failure becomes 0x80 and a CONNACK reason
//! its return code ([`ConnectReturnCode`]). At level 5 everything is on the wire: reason
//! codes (each checked against its packet's table), properties (each checked against table
//! 2-4 for the packet that carries it, at most once, and for its value), the full
//! subscription options byte, and AUTH. A level-5 CONNECT decodes like any other; accepting
//! or refusing it is the connection's call. A [`DecodeError`] names, through
//! [`DecodeError::reason_code`], the MQTT 5 reason a level-5 connection closes with.
//!
//! [`encode_publish_header`] writes a PUBLISH without its payload, with the per-delivery
//! properties of a [`PublishHeader`]; [`publish_header_len`] is the size of the whole packet
//! it starts, for checking a peer's Maximum Packet Size before sending.
//!
//! A connection passes its level to every call: [`ProtocolLevel::V311`] until its CONNECT
//! is decoded (a CONNECT decodes and encodes at its own level), the CONNECT's level after.
//!
//! # Where things are
//!
//! `packet` (the packet types), `level` ([`ProtocolLevel`]), `reason` ([`ReasonCode`],
//! [`ConnectReturnCode`]), `properties` ([`Properties`]), `decode` (framing and dispatch, with
//! the CONNECT, subscription, property, MQTT 5 acknowledgement and field readers under
//! `decode/`), `encode` (with the property writer under `encode/`), and `error`
//! ([`DecodeError`]).

mod decode;
mod encode;
mod error;
mod level;
#[cfg(test)]
mod model_tests;
mod packet;
mod properties;
mod reason;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod v5_encode_tests;
#[cfg(test)]
mod v5_malformed_tests;
#[cfg(test)]
mod v5_tests;

pub use decode::{decode, DecodeLimits};
pub use encode::{encode, encode_publish_header, encoded_len, publish_header_len};
pub use error::DecodeError;
pub use level::ProtocolLevel;
pub use packet::*;
pub use properties::{PayloadFormat, Properties, PropertyValues};
pub use reason::{ConnectReturnCode, ReasonCode};
