//! `[[listener]]` tables: one socket each, with its transport (TCP, TLS, WebSocket) and the
//! transport's files and paths.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::de;

/// One socket the broker accepts MQTT connections on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [[listener]] table")]
pub struct ListenerConfig {
    /// Unique name used in logs and `$SYS` topics.
    #[serde(deserialize_with = "de::listener_name")]
    pub name: String,
    pub protocol: ListenerProtocol,
    #[serde(deserialize_with = "de::socket_addr")]
    pub bind: SocketAddr,
    /// PEM certificate chain, server certificate first (`tls`, `wss`).
    #[serde(deserialize_with = "de::opt_path")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the certificate (`tls`, `wss`).
    #[serde(deserialize_with = "de::opt_path")]
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates that client certificates are verified against (`tls`, `wss`).
    #[serde(deserialize_with = "de::opt_path")]
    pub ca_file: Option<PathBuf>,
    /// Refuse TLS clients without a certificate signed by `ca_file` (mutual TLS).
    pub require_client_cert: bool,
    /// Take the client certificate's subject CN as the MQTT username.
    pub use_cn_as_username: bool,
    /// HTTP path of the WebSocket endpoint (`ws`, `wss`).
    #[serde(deserialize_with = "de::ws_path")]
    pub ws_path: String,
    /// Time allowed for the TLS handshake and WebSocket upgrade; `None` means
    /// `limits.connect_timeout`.
    #[serde(deserialize_with = "de::opt_positive_duration")]
    pub tls_handshake_timeout: Option<Duration>,
}

/// Transport spoken on a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ListenerProtocol {
    /// Plain MQTT over TCP.
    #[default]
    Tcp,
    /// MQTT over TLS.
    Tls,
    /// MQTT over WebSocket (spec §6).
    Ws,
    /// MQTT over WebSocket over TLS.
    Wss,
}

impl ListenerProtocol {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("tcp", ListenerProtocol::Tcp),
        ("tls", ListenerProtocol::Tls),
        ("ws", ListenerProtocol::Ws),
        ("wss", ListenerProtocol::Wss),
    ];

    /// The name used for this protocol in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerProtocol::Tcp => "tcp",
            ListenerProtocol::Tls => "tls",
            ListenerProtocol::Ws => "ws",
            ListenerProtocol::Wss => "wss",
        }
    }

    /// Whether the listener speaks TLS (`tls`, `wss`).
    pub fn is_tls(self) -> bool {
        matches!(self, ListenerProtocol::Tls | ListenerProtocol::Wss)
    }

    /// Whether the listener speaks WebSocket (`ws`, `wss`).
    pub fn is_ws(self) -> bool {
        matches!(self, ListenerProtocol::Ws | ListenerProtocol::Wss)
    }
}

impl fmt::Display for ListenerProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ListenerProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::keyword(d, Self::CHOICES, "\"tcp\", \"tls\", \"ws\" or \"wss\"")
    }
}
