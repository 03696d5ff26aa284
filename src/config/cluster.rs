//! The `[cluster]` section: route listener, identity, seeds and link timing.

use std::net::SocketAddr;
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
        if self.reconnect_min > self.reconnect_max {
            return Err((
                "reconnect_max",
                "must be at least cluster.reconnect_min".into(),
            ));
        }
        Ok(())
    }
}
