//! The pure MQTT 3.1.1 / 3.1 codec: bytes in, [`Packet`]s out, and back (spec §2–3).
//!
//! Owns the wire format only. It does no I/O, knows nothing of sessions or routing, and never
//! panics on input. `decode` returns `Ok(None)` for "need more bytes" and `Err` for "malformed:
//! close the connection"; the packet-size limit is checked from the fixed header before the
//! body is buffered.

mod decode;
mod encode;
mod error;
mod level;
mod packet;
mod properties;
mod reason;
#[cfg(test)]
mod tests;

pub use decode::{decode, is_valid_topic_name, DecodeLimits};
pub use encode::{encode, encode_publish_header, encoded_len};
pub use error::DecodeError;
pub use level::ProtocolLevel;
pub use packet::*;
pub use properties::{PayloadFormat, Properties, PropertyValues};
pub use reason::{ConnectReturnCode, ReasonCode, UnknownReasonCode};
