//! Agent notices (`[agents]`): a client that subscribes to `<topic_prefix><its own client
//! id>` is an agent. When an agent comes online (it makes that subscription, or its session
//! comes back holding it) and when it goes offline (its connection ends, or it drops the
//! subscription), a notice is published on `$events/agents/connected/<id>` or
//! `$events/agents/disconnected/<id>` (QoS 1, so a persistent subscriber keeps the ones it
//! missed) and told to the hooks as [`Event::Agent`] (the webhooks' `agent.*` events).
//!
//! The hook only copies connects, disconnects and agent subscriptions into a bounded queue
//! (full: dropped and counted in `agent_events_dropped`); one task keeps the connections'
//! details and decides. The host details (`client_info`) are the CONNECT's `client_info`
//! user property (MQTT 5) or, failing that, the retained message on
//! `<topic_prefix><id>/info` at the time of the notice (MQTT 3.1.1).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::json;
use super::queue::{self, Drain, Queue};
use super::topics::PREFIX;
use crate::codec::{ProtocolLevel, QoS};
use crate::context::Context;
use crate::hooks::{AgentNotice, Event, Hooks};
use crate::message::Message;
use crate::metrics::{self, Metrics};
use crate::router::Origin;

/// Connects, disconnects and agent subscriptions waiting for the tracker at most.
const QUEUE: usize = 16_384;
/// The MQTT 5 user property an agent announces its host details in.
const INFO_PROPERTY: &str = "client_info";
/// Largest `client_info` kept (a user property is bounded only by the packet size).
const MAX_INFO: usize = 64 * 1024;

/// What the hook hands the tracker.
#[derive(Debug)]
enum Seen {
    Connected(Box<Conn>, String, bool),
    Subscribed(String),
    Unsubscribed(String),
    Disconnected {
        client_id: String,
        conn: u64,
        reason: String,
    },
}

/// One connected client's details, kept while it is connected.
#[derive(Debug)]
struct Conn {
    conn: u64,
    username: Option<String>,
    peer: SocketAddr,
    level: ProtocolLevel,
    keep_alive: u16,
    clean_session: bool,
    client_info: Option<String>,
    /// It is an agent, and its connected notice went out.
    agent: bool,
}

/// The filling side.
#[derive(Debug)]
pub(super) struct AgentHook {
    prefix: Arc<str>,
    queue: Queue<Seen>,
    metrics: Arc<Metrics>,
}

/// The deciding side, run by [`Tracker::run`].
#[derive(Debug)]
pub(super) struct Tracker {
    prefix: Arc<str>,
    node: Arc<str>,
    drain: Drain<Seen>,
    conns: HashMap<String, Conn>,
}

pub(super) fn build(prefix: &str, node: Arc<str>, metrics: &Arc<Metrics>) -> (AgentHook, Tracker) {
    let prefix: Arc<str> = Arc::from(prefix);
    let (queue, drain) = queue::bounded(QUEUE);
    let hook = AgentHook {
        prefix: prefix.clone(),
        queue,
        metrics: metrics.clone(),
    };
    let tracker = Tracker {
        prefix,
        node,
        drain,
        conns: HashMap::new(),
    };
    (hook, tracker)
}

/// Whether `filter` is `client_id`'s agent topic. A client id with `/`, `+` or `#` is never
/// an agent: its "own" topic would be another's or a wildcard.
fn is_agent_topic(prefix: &str, client_id: &str, filter: &str) -> bool {
    !client_id.is_empty()
        && !client_id.contains(['/', '+', '#'])
        && filter.len() == prefix.len() + client_id.len()
        && filter.starts_with(prefix)
        && filter.ends_with(client_id)
}

impl AgentHook {
    fn queue(&self, seen: Seen) {
        if self.queue.push(seen, 128).is_err() {
            metrics::inc(&self.metrics.agent_events_dropped);
        }
    }
}

impl Hooks for AgentHook {
    fn on_event(&self, e: &Event<'_>) {
        match *e {
            Event::ClientConnected {
                client_id,
                username,
                peer,
                level,
                clean_session,
                keep_alive,
                session_present,
                conn,
                user_properties,
            } => {
                let client_info = user_properties
                    .iter()
                    .find(|(k, v)| k == INFO_PROPERTY && v.len() <= MAX_INFO)
                    .map(|(_, v)| v.clone());
                let c = Conn {
                    conn,
                    username: username.map(str::to_owned),
                    peer,
                    level,
                    keep_alive,
                    clean_session,
                    client_info,
                    agent: false,
                };
                self.queue(Seen::Connected(
                    Box::new(c),
                    client_id.to_owned(),
                    session_present,
                ));
            }
            Event::Subscribed {
                client_id, filter, ..
            } if is_agent_topic(&self.prefix, client_id, filter) => {
                self.queue(Seen::Subscribed(client_id.to_owned()));
            }
            Event::Unsubscribed { client_id, filter }
                if is_agent_topic(&self.prefix, client_id, filter) =>
            {
                self.queue(Seen::Unsubscribed(client_id.to_owned()));
            }
            Event::ClientDisconnected {
                client_id,
                reason,
                conn,
                ..
            } => self.queue(Seen::Disconnected {
                client_id: client_id.to_owned(),
                conn,
                reason: reason.to_owned(),
            }),
            _ => {}
        }
    }

    fn wants_messages(&self) -> bool {
        false
    }
}

impl Tracker {
    /// Tracks connections and announces agents until `shutdown`.
    /// Then, for at most [`super::CLOSING_GRACE`], announces the agents the shutdown
    /// disconnects.
    pub(super) async fn run(mut self, ctx: Arc<Context>, shutdown: CancellationToken) {
        loop {
            let seen = tokio::select! {
                _ = shutdown.cancelled() => break,
                s = self.drain.recv() => match s {
                    Some(s) => s,
                    None => return,
                },
            };
            self.apply(&ctx, seen);
        }
        let deadline = super::closing_deadline();
        loop {
            let open = metrics::get(&ctx.metrics.clients_connected_current) > 0;
            let until = if open {
                deadline
            } else {
                deadline.min(Instant::now() + super::CLOSING_IDLE)
            };
            match tokio::time::timeout_at(until.into(), self.drain.recv()).await {
                Ok(Some(seen)) => self.apply(&ctx, seen),
                Ok(None) | Err(_) => return,
            }
        }
    }

    fn apply(&mut self, ctx: &Context, seen: Seen) {
        match seen {
            Seen::Connected(c, client_id, present) => {
                // A connection that took the session over replaces the old one's details
                // (whose disconnect, seen later, then no longer matches). Entries are
                // bounded by the connections (`limits.max_connections`), plus stale ones
                // whose disconnect was dropped, replaced when the id comes back.
                if self.conns.len() >= ctx.config.limits.max_connections
                    && !self.conns.contains_key(&client_id)
                {
                    metrics::inc(&ctx.metrics.agent_events_dropped);
                    return;
                }
                if self.conns.get(&client_id).is_some_and(|old| old.agent) {
                    // Taken over while online: the old connection's own disconnect will
                    // not match, so its going is announced here, before the new one.
                    self.offline(ctx, &client_id, "taken over".to_owned());
                }
                self.conns.insert(client_id.clone(), *c);
                if present && self.holds_agent_topic(ctx, &client_id) {
                    self.online(ctx, &client_id);
                }
            }
            Seen::Subscribed(client_id) => self.online(ctx, &client_id),
            Seen::Unsubscribed(client_id) => {
                self.offline(ctx, &client_id, "unsubscribed".to_owned());
            }
            Seen::Disconnected {
                client_id,
                conn,
                reason,
            } => {
                if self.conns.get(&client_id).is_some_and(|c| c.conn == conn) {
                    self.offline(ctx, &client_id, reason);
                    self.conns.remove(&client_id);
                }
            }
        }
    }

    /// Whether the (resumed) session of `client_id` holds its agent subscription.
    fn holds_agent_topic(&self, ctx: &Context, client_id: &str) -> bool {
        let topic = format!("{}{client_id}", self.prefix);
        is_agent_topic(&self.prefix, client_id, &topic)
            && ctx
                .sessions
                .get(client_id)
                .is_some_and(|s| s.lock().subscriptions().contains_key(&topic))
    }

    fn online(&mut self, ctx: &Context, client_id: &str) {
        match self.conns.get_mut(client_id) {
            Some(c) if !c.agent => c.agent = true,
            _ => return,
        }
        self.announce(ctx, client_id, true, None);
    }

    fn offline(&mut self, ctx: &Context, client_id: &str, reason: String) {
        match self.conns.get_mut(client_id) {
            Some(c) if c.agent => c.agent = false,
            _ => return,
        }
        self.announce(ctx, client_id, false, Some(reason));
    }

    /// Publishes and tells the hooks of one notice.
    fn announce(&self, ctx: &Context, client_id: &str, connected: bool, reason: Option<String>) {
        let Some(c) = self.conns.get(client_id) else {
            return;
        };
        let client_info = c.client_info.clone().or_else(|| {
            let topic = format!("{}{client_id}/info", self.prefix);
            let retained = ctx.router.retained().matching(&topic);
            let msg = retained.first()?;
            Some(String::from_utf8_lossy(&msg.payload).into_owned())
        });
        let notice = AgentNotice {
            client_id: client_id.to_owned(),
            username: c.username.clone(),
            peer: c.peer,
            level: c.level,
            keep_alive: c.keep_alive,
            clean_session: c.clean_session,
            client_info,
            reason,
        };
        let body = json::agent_body(connected, &notice, &self.node, json::now_ms());
        let Ok(payload) = serde_json::to_vec(&body) else {
            return;
        };
        let state = if connected {
            "connected"
        } else {
            "disconnected"
        };
        tracing::debug!(client_id, state, "agent notice");
        metrics::inc(&ctx.metrics.agent_notices);
        let msg = Message::new(
            format!("{PREFIX}agents/{state}/{client_id}"),
            Bytes::from(payload),
            QoS::AtLeastOnce,
            false,
        );
        ctx.router.publish(msg, Origin::broker(), Instant::now());
        ctx.emit(|| Event::Agent {
            connected,
            notice: &notice,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_its_own_exact_topic_makes_an_agent() {
        assert!(is_agent_topic("agents/", "dev1", "agents/dev1"));
        assert!(!is_agent_topic("agents/", "dev1", "agents/dev2"));
        assert!(!is_agent_topic("agents/", "dev1", "agents/dev1/info"));
        assert!(!is_agent_topic("agents/", "dev1", "agents/+"));
        assert!(!is_agent_topic("agents/", "+", "agents/+"));
        assert!(!is_agent_topic("agents/", "#", "agents/#"));
        assert!(!is_agent_topic("agents/", "a/b", "agents/a/b"));
        assert!(!is_agent_topic("agents/", "", "agents/"));
        assert!(!is_agent_topic("agents/", "x1", "agentz/x1"));
    }
}
