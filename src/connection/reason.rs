//! Why a connection ended: every close has one named reason, logged and counted.

use thiserror::Error;

use crate::codec::{DecodeError, ReasonCode};
use crate::session::KickReason;

/// The reason a client connection closed.
#[derive(Debug, Error)]
pub enum CloseReason {
    #[error("client sent DISCONNECT")]
    ClientDisconnect,
    /// MQTT 5: DISCONNECT with reason 0x04, which asks for the will all the same.
    #[error("client sent DISCONNECT with will message (0x04)")]
    ClientDisconnectWithWill,
    #[error("client closed the connection")]
    PeerClosed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed packet: {0}")]
    Malformed(#[from] DecodeError),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A rule whose breach MQTT 5 answers with a reason code of its own (0x82 Protocol
    /// Error, 0x93 Receive Maximum exceeded, 0x94 Topic Alias invalid, ...).
    #[error("protocol violation ({code:?}): {rule}")]
    Violation {
        code: crate::codec::ReasonCode,
        rule: &'static str,
    },
    #[error("no CONNECT within the connect timeout")]
    ConnectTimeout,
    /// Answered with a CONNACK carrying this reason (its 3.1.1 return code below level 5).
    #[error("CONNECT refused: {0:?}")]
    ConnectRefused(ReasonCode),
    #[error("keep-alive expired [MQTT-3.1.2-24]")]
    KeepAliveTimeout,
    #[error("taken over by a new connection with the same client id [MQTT-3.1.4-2]")]
    TakenOver,
    #[error("slow consumer: queue full for longer than session.slow_consumer_timeout")]
    SlowConsumer,
    #[error("broker shutting down")]
    Shutdown,
    /// Closed by an operator (HTTP API); the will is published, as for any abnormal close.
    #[error("kicked by an operator")]
    Kicked,
}

impl CloseReason {
    /// Whether the will message is published: every close except a DISCONNECT
    /// [MQTT-3.1.2-8, MQTT-3.14.4-3] (unless its reason is 0x04, MQTT 5.0 §3.14.2.1) and a
    /// broker shutdown, which is not the client's fault.
    pub fn publishes_will(&self) -> bool {
        !matches!(self, CloseReason::ClientDisconnect | CloseReason::Shutdown)
    }
}

impl From<KickReason> for CloseReason {
    fn from(k: KickReason) -> Self {
        match k {
            KickReason::TakenOver => CloseReason::TakenOver,
            KickReason::SlowConsumer => CloseReason::SlowConsumer,
            KickReason::Shutdown => CloseReason::Shutdown,
            KickReason::Admin => CloseReason::Kicked,
        }
    }
}
