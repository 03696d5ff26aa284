//! Broker configuration: the settings types, their defaults, and loading
//! and validating them from TOML (`supermq -c config/appserver.conf`).
//!
//! This module owns every tunable of the broker and the rules for what is an
//! acceptable value. Everything is checked at load time so a bad file fails
//! fast at startup with one message naming the key and line, instead of
//! surfacing later as odd runtime behaviour. Every section and key is
//! optional; a missing one takes its default, and `config/appserver.conf`
//! lists all of them with those defaults.

mod cluster;
mod de;
mod defaults;
mod error;
mod groups;
mod http;
mod listener;
mod ops;
mod persistence;
mod source;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_ops;
#[cfg(test)]
mod tests_transport;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use cluster::ClusterConfig;
pub use error::ConfigError;
pub use groups::{GroupStrategy, GroupsConfig};
pub use http::{ApiKey, HttpConfig};
pub use listener::{ListenerConfig, ListenerProtocol};
pub use ops::{AgentsConfig, EventsConfig, HookEvent, WebhookConfig};
pub use persistence::{PersistenceConfig, SyncMode};
use source::{Seg, Source};

/// The whole broker configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[[listener]]`: where clients connect. Never empty.
    #[serde(rename = "listener", deserialize_with = "de::non_empty_vec")]
    pub listeners: Vec<ListenerConfig>,
    pub limits: Limits,
    pub session: SessionConfig,
    pub retain: RetainConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub engine: EngineConfig,
    pub sys: SysConfig,
    pub cluster: ClusterConfig,
    pub groups: GroupsConfig,
    pub persistence: PersistenceConfig,
    pub http: HttpConfig,
    /// `[[webhook]]`: HTTP endpoints told of client and message events.
    #[serde(rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
    pub events: EventsConfig,
    pub agents: AgentsConfig,
}

/// Connection-level limits, enforced before and during CONNECT handling.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [limits] table")]
pub struct Limits {
    #[serde(deserialize_with = "de::int::<_, _, 1, { de::NO_MAX }>")]
    pub max_connections: usize,
    /// Largest packet accepted from a client, fixed header included.
    #[serde(deserialize_with = "de::int::<_, _, 16, 268_435_460>")]
    pub max_packet_size: usize,
    /// Time allowed between TCP accept and CONNECT.
    #[serde(deserialize_with = "de::positive_duration")]
    pub connect_timeout: Duration,
    /// Seconds; a non-zero keep-alive below this is refused.
    #[serde(deserialize_with = "de::int::<_, _, 0, 65535>")]
    pub min_keep_alive: u16,
    /// Seconds; a keep-alive above this is refused. `>= min_keep_alive`.
    #[serde(deserialize_with = "de::int::<_, _, 0, 65535>")]
    pub max_keep_alive: u16,
    #[serde(deserialize_with = "de::int::<_, _, 23, 65535>")]
    pub max_client_id_len: usize,
    pub allow_zero_keep_alive: bool,
    /// Levels a topic name or filter may have; a client that sends more is disconnected.
    /// (A 65,535-byte topic has at most 65,535 levels, so larger values mean no limit.)
    #[serde(deserialize_with = "de::int::<_, _, 1, { de::NO_MAX }>")]
    pub max_topic_levels: usize,
    /// Bytes a topic name or filter may have; a client that sends more is disconnected.
    #[serde(deserialize_with = "de::int::<_, _, 1, 65535>")]
    pub max_topic_length: usize,
    /// MQTT 5: QoS 1/2 PUBLISH packets a client may have unacknowledged at once (its
    /// CONNACK's Receive Maximum); one more is disconnected with 0x93 [MQTT-3.3.4-8].
    #[serde(deserialize_with = "de::int::<_, _, 1, 65535>")]
    pub receive_maximum: u16,
    /// MQTT 5: topic aliases a client may set up towards the broker (CONNACK's Topic Alias
    /// Maximum); 0 allows none.
    #[serde(deserialize_with = "de::int::<_, _, 0, 65535>")]
    pub topic_alias_maximum: u16,
    /// The highest QoS the broker accepts and grants (0, 1 or 2). MQTT 5 clients are told
    /// (CONNACK's Maximum QoS) and one that publishes above it is disconnected with 0x9B;
    /// 3.1.1 subscriptions are granted at most this QoS, and a 3.1.1 PUBLISH above it is
    /// disconnected [MQTT-3.2.2-12].
    #[serde(deserialize_with = "de::int::<_, _, 0, 2>")]
    pub max_qos: u8,
}

/// Per-session delivery state and its bounds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [session] table")]
pub struct SessionConfig {
    /// Outbound QoS 1/2 messages awaiting acknowledgement per session.
    #[serde(deserialize_with = "de::int::<_, _, 1, 65535>")]
    pub max_inflight: u16,
    /// Messages waiting to be sent per session, online or offline.
    #[serde(deserialize_with = "de::int::<_, _, 1, { de::NO_MAX }>")]
    pub max_queued_messages: usize,
    /// Payload bytes waiting to be sent per session.
    #[serde(deserialize_with = "de::int::<_, _, 1024, { de::NO_MAX }>")]
    pub max_queued_bytes: usize,
    pub queue_full_policy: QueueFullPolicy,
    /// Whether QoS 0 messages are queued for offline persistent sessions.
    pub queue_qos0_offline: bool,
    /// Zero disables slow-consumer disconnection.
    #[serde(deserialize_with = "de::duration")]
    pub slow_consumer_timeout: Duration,
    /// A connected client that has taken nothing for this long while messages wait for it
    /// no longer holds back the publishers feeding it (see `flow`); until then a full queue
    /// paces them instead of dropping. Zero turns that off: full queues always drop.
    #[serde(deserialize_with = "de::duration")]
    pub stall_timeout: Duration,
    /// How long an offline session of a 3.1.1 client with CleanSession 0 is kept; also the
    /// most an MQTT 5 client's Session Expiry Interval is granted (it is told the value in
    /// CONNACK). Zero means no limit: such sessions never expire.
    #[serde(deserialize_with = "de::duration")]
    pub persistent_session_expiry: Duration,
    /// Online plus offline persistent sessions.
    #[serde(deserialize_with = "de::int::<_, _, 1, { de::NO_MAX }>")]
    pub max_sessions: usize,
    /// Subscriptions one session may hold; SUBSCRIBE filters beyond it get 0x80.
    #[serde(deserialize_with = "de::int::<_, _, 1, { de::NO_MAX }>")]
    pub max_subscriptions: usize,
}

/// What to do with a message for a session whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QueueFullPolicy {
    /// Discard the incoming message.
    #[default]
    DropNew,
    /// Discard the oldest queued message to make room.
    DropOldest,
}

/// Retained message store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [retain] table")]
pub struct RetainConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "de::int::<_, _, 1, { de::NO_MAX }>")]
    pub max_messages: usize,
    #[serde(deserialize_with = "de::int::<_, _, 1, 268_435_455>")]
    pub max_payload_size: usize,
    /// Topic and payload bytes of all retained messages together.
    #[serde(deserialize_with = "de::int::<_, _, 1024, { de::NO_MAX }>")]
    pub max_bytes: usize,
    pub send_to_shared_subscribers: bool,
}

/// Client authentication and access control.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "an [auth] table")]
pub struct AuthConfig {
    pub allow_anonymous: bool,
    /// Users and password hashes in Mosquitto's `mosquitto_passwd` format.
    #[serde(deserialize_with = "de::opt_path")]
    pub password_file: Option<PathBuf>,
    /// Topic access rules in Mosquitto's `acl_file` format.
    #[serde(deserialize_with = "de::opt_path")]
    pub acl_file: Option<PathBuf>,
    /// `[auth.http]`: an HTTP endpoint asked about credentials.
    pub http: Option<HttpAuthConfig>,
    /// MQTT 5 enhanced authentication methods served (MQTT 5.0 §4.12). Unset: the
    /// password file's SCRAM-SHA-512 when a password file is configured, none otherwise
    /// (see [`AuthConfig::enhanced_methods`]); `[]` serves none.
    pub methods: Option<Vec<AuthMethodName>>,
}

/// An enhanced authentication method the broker can serve (`auth.methods`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AuthMethodName {
    /// SCRAM-SHA-512 (RFC 5802) against the password file's `$7$` entries.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl AuthConfig {
    /// The enhanced authentication methods in force: `methods` as given, or by default
    /// SCRAM-SHA-512 when a password file is configured (it needs one), otherwise none.
    pub fn enhanced_methods(&self) -> Vec<AuthMethodName> {
        match &self.methods {
            Some(m) => m.clone(),
            None if self.password_file.is_some() => vec![AuthMethodName::ScramSha512],
            None => Vec::new(),
        }
    }
}

/// The HTTP authentication hook (`[auth.http]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [auth.http] table")]
pub struct HttpAuthConfig {
    /// `http://host:port/path` that receives a JSON POST per CONNECT. Required (checked
    /// after parsing, so the error can name the table's line).
    #[serde(default, deserialize_with = "de::http_url")]
    pub url: String,
    /// Time allowed for the hook's answer; no answer in time denies.
    #[serde(default = "HttpAuthConfig::default_timeout")]
    #[serde(deserialize_with = "de::positive_duration")]
    pub timeout: Duration,
    /// How long an answer is reused for the same credentials; zero disables the cache.
    #[serde(default = "HttpAuthConfig::default_cache_ttl")]
    #[serde(deserialize_with = "de::duration")]
    pub cache_ttl: Duration,
    /// Answers kept at most.
    #[serde(default = "HttpAuthConfig::default_cache_size")]
    #[serde(deserialize_with = "de::int::<_, _, 1, { de::NO_MAX }>")]
    pub cache_size: usize,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [log] table")]
pub struct LogConfig {
    /// A level or an `EnvFilter`-style directive list, already validated.
    #[serde(deserialize_with = "de::log_filter")]
    pub level: String,
}

/// Runtime and I/O tuning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "an [engine] table")]
pub struct EngineConfig {
    /// Zero means one per CPU core.
    #[serde(deserialize_with = "de::int::<_, _, 0, 1024>")]
    pub worker_threads: usize,
    #[serde(deserialize_with = "de::int::<_, _, 4096, { de::NO_MAX }>")]
    pub write_buffer_size: usize,
    #[serde(deserialize_with = "de::int::<_, _, 1024, { de::NO_MAX }>")]
    pub read_buffer_size: usize,
    /// Whether the process may use transparent huge pages. Off by default: faulting in a
    /// fresh 2 MB page (and, in a VM, the host backing it) stalls the thread that touches
    /// it for milliseconds, which shows as the broker's worst latencies.
    pub transparent_huge_pages: bool,
}

/// `$SYS/broker/...` statistics.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [sys] table")]
pub struct SysConfig {
    /// Zero disables publishing.
    #[serde(deserialize_with = "de::duration")]
    pub interval: Duration,
}

impl QueueFullPolicy {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("drop_new", QueueFullPolicy::DropNew),
        ("drop_oldest", QueueFullPolicy::DropOldest),
    ];

    /// The name used for this policy in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueFullPolicy::DropNew => "drop_new",
            QueueFullPolicy::DropOldest => "drop_oldest",
        }
    }
}

impl fmt::Display for QueueFullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for QueueFullPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::keyword(d, Self::CHOICES, "\"drop_new\" or \"drop_oldest\"")
    }
}

impl Config {
    /// Parses and validates a configuration from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let source = Source::parse(text).map_err(|e| ConfigError::syntax(text, &e))?;
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(&source, &e))?;
        config.check_relations(&source)?;
        Ok(config)
    }

    /// Reads, parses and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_str(&text)
    }

    /// Checks that involve more than one value, which is why they run after
    /// deserialization and look the line up by key path.
    fn check_relations(&self, source: &Source<'_>) -> Result<(), ConfigError> {
        if let Err((field, reason)) = self.cluster.check() {
            let line = line_of_key(source, &["cluster", field])
                .or_else(|| line_of_key(source, &["cluster", "enabled"]))
                .unwrap_or(1);
            return Err(ConfigError::Invalid {
                line,
                key: format!("cluster.{field}"),
                value: None,
                reason,
            });
        }
        if let Err((index, field, reason)) = self.http.check() {
            let mut path = vec![Seg::Key("http".to_owned())];
            if let Some(i) = index {
                path.push(Seg::Key("api_key".to_owned()));
                path.push(Seg::Index(i));
            }
            let element = path.clone();
            path.push(Seg::Key(field.to_owned()));
            let line = source
                .line_of(&path)
                .or_else(|| source.line_of(&element))
                .unwrap_or(1);
            let key = match index {
                Some(_) => format!("http.api_key.{field}"),
                None => format!("http.{field}"),
            };
            return Err(ConfigError::Invalid {
                line,
                key,
                value: None,
                reason,
            });
        }
        let limits = &self.limits;
        if limits.max_keep_alive < limits.min_keep_alive {
            // Both keys can't be missing here (the defaults are consistent).
            let line = line_of_key(source, &["limits", "max_keep_alive"])
                .or_else(|| line_of_key(source, &["limits", "min_keep_alive"]))
                .unwrap_or(1);
            return Err(ConfigError::Invalid {
                line,
                key: "limits.max_keep_alive".to_owned(),
                value: Some(limits.max_keep_alive.to_string()),
                reason: format!(
                    "must be at least limits.min_keep_alive ({})",
                    limits.min_keep_alive
                ),
            });
        }

        if self.auth.http.as_ref().is_some_and(|h| h.url.is_empty()) {
            return Err(ConfigError::Invalid {
                line: line_of_key(source, &["auth", "http"]).unwrap_or(1),
                key: "auth.http.url".to_owned(),
                value: None,
                reason: "is required: the http:// URL of the authentication service".to_owned(),
            });
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            if w.url.is_empty() {
                let element = vec![Seg::Key("webhook".to_owned()), Seg::Index(i)];
                return Err(ConfigError::Invalid {
                    line: source.line_of(&element).unwrap_or(1),
                    key: "webhook.url".to_owned(),
                    value: None,
                    reason: "is required: the http:// URL the events are POSTed to".to_owned(),
                });
            }
        }
        let scram = self
            .auth
            .methods
            .as_ref()
            .is_some_and(|m| m.contains(&AuthMethodName::ScramSha512));
        if scram && self.auth.password_file.is_none() {
            return Err(ConfigError::Invalid {
                line: line_of_key(source, &["auth", "methods"]).unwrap_or(1),
                key: "auth.methods".to_owned(),
                value: None,
                reason: "\"SCRAM-SHA-512\" needs auth.password_file (its users and $7$ hashes)"
                    .to_owned(),
            });
        }
        for (i, listener) in self.listeners.iter().enumerate() {
            check_listener_transport(source, i, listener)?;
            for (j, earlier) in self.listeners[..i].iter().enumerate() {
                if listener.name == earlier.name {
                    return Err(ConfigError::Invalid {
                        line: listener_line(source, i, "name"),
                        key: "listener.name".to_owned(),
                        value: Some(format!("\"{}\"", listener.name)),
                        reason: format!(
                            "duplicate listener name, already used by the listener at line {}; \
                             give each listener a unique name",
                            listener_line(source, j, "name")
                        ),
                    });
                }
                if binds_conflict(listener.bind, earlier.bind) {
                    return Err(ConfigError::Invalid {
                        line: listener_line(source, i, "bind"),
                        key: "listener.bind".to_owned(),
                        value: Some(format!("\"{}\"", listener.bind)),
                        reason: format!(
                            "conflicts with listener \"{}\" on {} (line {}); use a different \
                             port or address",
                            earlier.name,
                            earlier.bind,
                            listener_line(source, j, "bind")
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Cross-checks of a listener's transport keys: TLS keys only on `tls`/`wss` (where the
/// certificate and key are required), `ws_path` only on `ws`/`wss`.
fn check_listener_transport(
    source: &Source<'_>,
    i: usize,
    l: &ListenerConfig,
) -> Result<(), ConfigError> {
    let invalid = |field: &str, reason: String| ConfigError::Invalid {
        line: listener_line(source, i, field),
        key: format!("listener.{field}"),
        value: None,
        reason,
    };
    let present = |field: &str| {
        source
            .line_of(&[
                Seg::Key("listener".to_owned()),
                Seg::Index(i),
                Seg::Key(field.to_owned()),
            ])
            .is_some()
    };
    let p = l.protocol;
    if p.is_tls() {
        for (field, value) in [("cert_file", &l.cert_file), ("key_file", &l.key_file)] {
            if value.is_none() {
                return Err(invalid(
                    field,
                    format!(
                        "listener \"{}\" with protocol \"{p}\" needs cert_file and key_file \
                         (PEM paths)",
                        l.name
                    ),
                ));
            }
        }
        if l.require_client_cert && l.ca_file.is_none() {
            return Err(invalid(
                "require_client_cert",
                "needs ca_file: the CA that signs the client certificates".to_owned(),
            ));
        }
        if l.use_cn_as_username && !l.require_client_cert {
            return Err(invalid(
                "use_cn_as_username",
                "needs require_client_cert = true, or a client without a certificate could \
                 choose its username"
                    .to_owned(),
            ));
        }
    } else {
        for field in [
            "cert_file",
            "key_file",
            "ca_file",
            "require_client_cert",
            "use_cn_as_username",
            "tls_handshake_timeout",
        ] {
            if present(field) {
                return Err(invalid(
                    field,
                    format!("only applies to protocol \"tls\" or \"wss\", not \"{p}\""),
                ));
            }
        }
    }
    if !p.is_ws() && present("ws_path") {
        return Err(invalid(
            "ws_path",
            format!("only applies to protocol \"ws\" or \"wss\", not \"{p}\""),
        ));
    }
    Ok(())
}

fn line_of_key(source: &Source<'_>, keys: &[&str]) -> Option<usize> {
    let path: Vec<Seg> = keys.iter().map(|k| Seg::Key((*k).to_owned())).collect();
    source.line_of(&path)
}

/// Line of a listener's `field`, or of the listener itself when the field
/// was left at its default.
fn listener_line(source: &Source<'_>, index: usize, field: &str) -> usize {
    let element = vec![Seg::Key("listener".to_owned()), Seg::Index(index)];
    let mut key = element.clone();
    key.push(Seg::Key(field.to_owned()));
    source
        .line_of(&key)
        .or_else(|| source.line_of(&element))
        .unwrap_or(1)
}

/// Whether two listeners could not both bind. Port 0 asks the OS for a free
/// port, so it never conflicts; a wildcard address of one family takes the
/// port for every address of that family. IPv4 against IPv6 wildcards is
/// left to the OS, since it depends on the socket's dual-stack setting.
fn binds_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    a.ip() == b.ip()
        || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
}
