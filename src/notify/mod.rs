//! What the broker tells the world about its clients: webhooks (`[[webhook]]`), `$events/...`
//! topics (`[events]`) and agent notices (`[agents]`), all attached to the hooks seam
//! ([`crate::hooks`]).
//!
//! Each is a hook that filters an event and queues what it needs (bounded; full: dropped
//! and counted), and a task, started with the broker and stopped by its shutdown token, that
//! does the slow part (HTTP, publishing through the router). After shutdown the tasks go on
//! for a short grace ([`CLOSING_GRACE`]) so the disconnects the shutdown causes are told
//! too. Nothing configured, nothing is built: the broker's hooks stay `None`.

mod agents;
pub mod json;
mod queue;
mod topics;
mod webhook;

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::context::Context;
use crate::hooks::Hooks;
use crate::metrics::Metrics;

/// After shutdown, how long the tasks go on telling of the connections it closes (their
/// disconnects, agents going offline); well within the broker's drain deadline.
const CLOSING_GRACE: Duration = Duration::from_millis(1500);
/// Once no connection is left, how long a task still waits for a last event.
const CLOSING_IDLE: Duration = Duration::from_millis(100);

/// When the closing phase of a task that saw shutdown now ends.
fn closing_deadline() -> Instant {
    Instant::now() + CLOSING_GRACE
}

/// Why the notifiers could not be built.
#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("webhook {url}: {reason}")]
    Url { url: String, reason: String },
}

/// The notifiers a configuration asks for: their hooks (for the broker to hold) and their
/// tasks (started once the broker's context exists).
#[derive(Debug, Default)]
pub struct Notifiers {
    hooks: Vec<Arc<dyn Hooks>>,
    senders: Vec<webhook::Sender>,
    events: Option<topics::Publisher>,
    agents: Option<agents::Tracker>,
}

/// The `node` field of the bodies: the cluster node id, or `supermq` on a single node.
fn node_name(config: &Config) -> Arc<str> {
    let id = &config.cluster.node_id;
    Arc::from(if id.is_empty() {
        "supermq"
    } else {
        id.as_str()
    })
}

/// Builds what `config` asks for, counting in `metrics`.
pub fn build(config: &Config, metrics: &Arc<Metrics>) -> Result<Notifiers, NotifyError> {
    let node = node_name(config);
    let mut n = Notifiers::default();
    for w in &config.webhooks {
        let (hook, sender) = webhook::build(w, node.clone(), metrics)?;
        n.hooks.push(Arc::new(hook));
        n.senders.push(sender);
    }
    if config.events.enabled {
        let (hook, publisher) = topics::build(node.clone(), metrics);
        n.hooks.push(Arc::new(hook));
        n.events = Some(publisher);
    }
    if config.agents.enabled {
        let (hook, tracker) = agents::build(&config.agents.topic_prefix, node, metrics);
        n.hooks.push(Arc::new(hook));
        n.agents = Some(tracker);
    }
    Ok(n)
}

impl Notifiers {
    /// The hooks, for the broker to hold (taken once).
    pub fn take_hooks(&mut self) -> Vec<Arc<dyn Hooks>> {
        std::mem::take(&mut self.hooks)
    }

    /// Starts the tasks on `tracker`, until `shutdown`.
    pub fn spawn(self, ctx: &Arc<Context>, tracker: &TaskTracker, shutdown: &CancellationToken) {
        for s in self.senders {
            tracker.spawn(s.run(shutdown.clone()));
        }
        if let Some(p) = self.events {
            tracker.spawn(p.run(ctx.clone(), shutdown.clone()));
        }
        if let Some(t) = self.agents {
            tracker.spawn(t.run(ctx.clone(), shutdown.clone()));
        }
    }
}
