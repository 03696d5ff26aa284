//! The `[[webhook]]`, `[events]` and `[agents]` sections: where the broker tells the world
//! what happens to its clients (HTTP POSTs, `$events/...` topics, agent notices).

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::de;

/// An event a webhook can be told of (`webhook.events`), named as EMQX names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEvent {
    ClientConnected,
    ClientDisconnected,
    /// A CONNECT refused (EMQX's `client.connack`, refusals only).
    ClientConnack,
    SessionSubscribed,
    SessionUnsubscribed,
    MessagePublish,
    MessageDelivered,
    MessageDropped,
    AgentConnected,
    AgentDisconnected,
}

impl HookEvent {
    /// Every event, with its name.
    pub const ALL: &'static [(&'static str, HookEvent)] = &[
        ("client.connected", HookEvent::ClientConnected),
        ("client.disconnected", HookEvent::ClientDisconnected),
        ("client.connack", HookEvent::ClientConnack),
        ("session.subscribed", HookEvent::SessionSubscribed),
        ("session.unsubscribed", HookEvent::SessionUnsubscribed),
        ("message.publish", HookEvent::MessagePublish),
        ("message.delivered", HookEvent::MessageDelivered),
        ("message.dropped", HookEvent::MessageDropped),
        ("agent.connected", HookEvent::AgentConnected),
        ("agent.disconnected", HookEvent::AgentDisconnected),
    ];

    /// The event's name in the config and in the JSON body's `event` field.
    pub fn name(self) -> &'static str {
        HookEvent::ALL
            .iter()
            .find(|(_, e)| *e == self)
            .map_or("", |(n, _)| n)
    }

    /// Whether it is one of the per-message events (many per second on a busy broker).
    pub fn is_message(self) -> bool {
        matches!(
            self,
            HookEvent::MessagePublish | HookEvent::MessageDelivered | HookEvent::MessageDropped
        )
    }

    /// This event's bit in a set of events.
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl<'de> Deserialize<'de> for HookEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::keyword(
            d,
            HookEvent::ALL,
            "one of \"client.connected\", \"client.disconnected\", \"client.connack\", \
             \"session.subscribed\", \"session.unsubscribed\", \"message.publish\", \
             \"message.delivered\", \"message.dropped\", \"agent.connected\", \
             \"agent.disconnected\"",
        )
    }
}

/// One `[[webhook]]`: an HTTP endpoint that receives batches of events as JSON arrays.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [[webhook]] table")]
pub struct WebhookConfig {
    /// `http://host:port/path` the events are POSTed to. Required (checked after parsing,
    /// so the error can name the table's line).
    #[serde(deserialize_with = "de::http_url")]
    pub url: String,
    /// The events sent; never empty.
    #[serde(deserialize_with = "event_list")]
    pub events: Vec<HookEvent>,
    /// Topic filters a message must match for the `message.*` events.
    #[serde(deserialize_with = "topic_filters")]
    pub topics: Vec<String>,
    /// Time allowed for one POST (connect, answer and its body).
    #[serde(deserialize_with = "de::positive_duration")]
    pub timeout: Duration,
    /// Events per POST at most.
    #[serde(deserialize_with = "de::int::<_, _, 1, 100_000>")]
    pub batch_max: usize,
    /// Events waiting to be sent at most; more are dropped and counted (`webhook_dropped`).
    #[serde(deserialize_with = "de::int::<_, _, 1, 10_000_000>")]
    pub queue_size: usize,
    /// Further tries of a failed POST, with exponential backoff; then its events are dropped
    /// and counted (`webhook_failed`).
    #[serde(deserialize_with = "de::int::<_, _, 0, 100>")]
    pub retries: u32,
}

impl WebhookConfig {
    /// The events sent, as a set of [`HookEvent::bit`]s.
    pub fn event_set(&self) -> u16 {
        self.events.iter().fold(0, |m, e| m | e.bit())
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            // Everything but the per-message events, which a webhook asks for by name.
            events: HookEvent::ALL
                .iter()
                .map(|(_, e)| *e)
                .filter(|e| !e.is_message())
                .collect(),
            topics: vec!["#".to_owned()],
            timeout: Duration::from_secs(5),
            batch_max: 100,
            queue_size: 10_000,
            retries: 3,
        }
    }
}

/// `[events]`: EMQX-style `$events/...` topics published by the broker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields, expecting = "an [events] table")]
pub struct EventsConfig {
    pub enabled: bool,
}

/// `[agents]`: clients that subscribe to `<topic_prefix><their client id>` are agents, and
/// their coming and going is announced.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "an [agents] table")]
pub struct AgentsConfig {
    pub enabled: bool,
    /// A topic prefix without wildcards, not starting with `$`.
    #[serde(deserialize_with = "topic_prefix")]
    pub topic_prefix: String,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            enabled: true,
            topic_prefix: "agents/".to_owned(),
        }
    }
}

/// `webhook.events`: a list of event names, not empty.
fn event_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HookEvent>, D::Error> {
    let events = Vec::<HookEvent>::deserialize(d)?;
    if events.is_empty() {
        return Err(D::Error::custom(
            "lists no events; name at least one, such as \"client.connected\"",
        ));
    }
    Ok(events)
}

/// `webhook.topics`: valid topic filters, not empty.
fn topic_filters<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let filters = Vec::<String>::deserialize(d)?;
    if filters.is_empty() {
        return Err(D::Error::custom(
            "lists no topic filters; use [\"#\"] for every topic",
        ));
    }
    for f in &filters {
        if let Err(e) = crate::topic::validate_filter(f) {
            let shown: String = f.chars().take(40).collect();
            return Err(D::Error::custom(format!(
                "has the invalid topic filter `{shown}`: {e}"
            )));
        }
    }
    Ok(filters)
}

/// `agents.topic_prefix`: the start of a topic name, without wildcards and not a `$` topic.
fn topic_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let p = String::deserialize(d)?;
    if p.is_empty() || p.len() > 1024 {
        return Err(D::Error::custom(
            "must be a topic prefix of 1 to 1024 bytes, such as \"agents/\"",
        ));
    }
    if p.contains(['+', '#', '\0']) || p.starts_with('$') {
        return Err(D::Error::custom(
            "must not contain '+', '#' or NUL, nor start with '$' (a broker topic)",
        ));
    }
    Ok(p)
}
