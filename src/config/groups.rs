//! The `[groups]` section: how a consumer group picks the member for each message.

use serde::{Deserialize, Deserializer};

use super::de;

/// How one member of a consumer group is chosen for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupStrategy {
    /// Uniformly at random over all members, cluster-wide (the original behaviour).
    #[default]
    Random,
    /// In turn over all members.
    RoundRobin,
    /// The same member until it leaves, then another one.
    Sticky,
    /// By a hash of the publishing client's id: one publisher's messages go to one member.
    HashClient,
    /// By a hash of the topic: one topic's messages go to one member.
    HashTopic,
}

impl GroupStrategy {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("random", GroupStrategy::Random),
        ("round_robin", GroupStrategy::RoundRobin),
        ("sticky", GroupStrategy::Sticky),
        ("hash_client", GroupStrategy::HashClient),
        ("hash_topic", GroupStrategy::HashTopic),
    ];
}

impl<'de> Deserialize<'de> for GroupStrategy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::keyword(
            d,
            Self::CHOICES,
            "\"random\", \"round_robin\", \"sticky\", \"hash_client\" or \"hash_topic\"",
        )
    }
}

/// Consumer-group settings (`$share/`, `$g/`, `$queue/` subscriptions).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [groups] table")]
pub struct GroupsConfig {
    /// Whether `$share/`, `$g/` and `$queue/` subscriptions are served; MQTT 5 clients are
    /// told (CONNACK's Shared Subscription Available), and a group filter is refused with
    /// 0x9E when off.
    pub enabled: bool,
    pub strategy: GroupStrategy,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        GroupsConfig {
            enabled: true,
            strategy: GroupStrategy::default(),
        }
    }
}
