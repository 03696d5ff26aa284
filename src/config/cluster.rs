//! The `[cluster]` section: route listener, identity, seeds and link timing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::de;

/// How this node joins a cluster of brokers (see the cluster module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [cluster] table")]
pub struct ClusterConfig {
    /// Whether this node links to peers at all; off, the broker is a single node.
    pub enabled: bool,
    /// Unique name of this node in the cluster; required when enabled.
    pub node_id: String,
    /// Nodes only link with peers that give the same cluster name.
    pub name: String,
    /// Where the route listener binds.
    #[serde(deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
    /// Address peers dial to reach this node; defaults to the bound listen address, and is
    /// required when `listen` is a wildcard address.
    pub advertise: Option<String>,
    /// `host:port` route addresses dialled at start and redialled for ever.
    pub seeds: Vec<String>,
    /// Shared secret proved by HMAC challenge at every link handshake.
    pub secret: Option<String>,
    /// A PING is sent on an idle link this often; three silent intervals close the link.
    #[serde(deserialize_with = "de::positive_duration")]
    pub ping_interval: Duration,
    /// First delay before redialling a lost seed; doubled up to `reconnect_max`, with jitter.
    #[serde(deserialize_with = "de::positive_duration")]
    pub reconnect_min: Duration,
    #[serde(deserialize_with = "de::positive_duration")]
    pub reconnect_max: Duration,
    /// Frames waiting to be written to one peer; beyond it frames are dropped and counted.
    #[serde(deserialize_with = "de::int::<_, _, 16, { de::NO_MAX }>")]
    pub route_queue: usize,
    /// How long a SUBSCRIBE waits for every linked peer to confirm the new interest before
    /// its SUBACK is sent anyway.
    #[serde(deserialize_with = "de::positive_duration")]
    pub sync_timeout: Duration,
    /// Accepted route connections still in their handshake at once; one over it is closed
    /// at accept. Bounds what unauthenticated connections to the route port can hold;
    /// linked peers do not count.
    #[serde(deserialize_with = "de::int::<_, _, 1, 65535>")]
    pub max_route_connections: usize,
    /// Time from accepting or dialling a route connection to its being linked: TLS, the
    /// INFO/AUTH exchange and the WELCOME. A peer that has not finished by then is closed.
    #[serde(deserialize_with = "de::positive_duration")]
    pub handshake_timeout: Duration,
    /// Mutual TLS on routes: this node's certificate chain, its key, and the CA every peer's
    /// certificate must chain to. All three or none.
    #[serde(deserialize_with = "de::opt_path")]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(deserialize_with = "de::opt_path")]
    pub tls_key_file: Option<PathBuf>,
    #[serde(deserialize_with = "de::opt_path")]
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            node_id: String::new(),
            name: "supermq".to_owned(),
            listen: SocketAddr::from(([0, 0, 0, 0], 7883)),
            advertise: None,
            seeds: Vec::new(),
            secret: None,
            ping_interval: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            route_queue: 100_000,
            sync_timeout: Duration::from_secs(1),
            max_route_connections: 64,
            handshake_timeout: Duration::from_secs(5),
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
        }
    }
}

impl ClusterConfig {
    /// Cross-field checks; returns the offending key (under `cluster.`) and the reason.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.enabled {
            return Ok(());
        }
        let id_ok = !self.node_id.is_empty()
            && self.node_id.len() <= 64
            && self
                .node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !id_ok {
            return Err((
                "node_id",
                "a node id of 1 to 64 letters, digits, '-', '_' or '.' is required when the cluster is enabled".into(),
            ));
        }
        if self.listen.ip().is_unspecified() && self.advertise.is_none() {
            return Err((
                "advertise",
                "required when cluster.listen is a wildcard address: peers need an address they can dial".into(),
            ));
        }
        for s in self.seeds.iter().chain(self.advertise.iter()) {
            if s.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                let key = if self.seeds.contains(s) {
                    "seeds"
                } else {
                    "advertise"
                };
                return Err((key, format!("\"{s}\" is not a host:port address")));
            }
        }
        let tls = [&self.tls_cert_file, &self.tls_key_file, &self.tls_ca_file];
        let set = tls.iter().filter(|p| p.is_some()).count();
        if set != 0 && set != 3 {
            let missing = ["tls_cert_file", "tls_key_file", "tls_ca_file"]
                [tls.iter().position(|p| p.is_none()).unwrap_or(0)];
            return Err((
                missing,
                "route TLS needs tls_cert_file, tls_key_file and tls_ca_file together".into(),
            ));
        }
        if self.reconnect_min > self.reconnect_max {
            return Err((
                "reconnect_max",
                "must be at least cluster.reconnect_min".into(),
            ));
        }
        Ok(())
    }
}
