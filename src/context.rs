//! The broker's shared state handed to every task: configuration, router, sessions, metrics,
//! authentication.
//!
//! Built once per broker instance (never a global) and passed down as an `Arc`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::auth::{Auth, AuthError};
use crate::codec::DecodeLimits;
use crate::config::{Config, QueueFullPolicy as ConfigPolicy};
use crate::hooks::{Event, Hooks};
use crate::metrics::{Latency, Metrics};
use crate::router::Router;
use crate::session::{QueueFullPolicy, SessionLimits};
use crate::store::{RetainedJournal, RetainedStore, SessionJournal, SessionStore};

/// What an embedder (or a later subsystem: webhooks, a durable store) plugs into the broker.
#[derive(Debug, Default, Clone)]
pub struct Extensions {
    /// Observers of client and message events.
    pub hooks: Option<Arc<dyn Hooks>>,
    /// Where the changes of persistent sessions go.
    pub journal: Option<Arc<dyn SessionJournal>>,
    /// Where retained messages go, to be kept across a restart.
    pub retained_journal: Option<Arc<dyn RetainedJournal>>,
}

/// Everything a connection needs to reach the rest of the broker.
#[derive(Debug)]
pub struct Context {
    pub config: Config,
    pub router: Router,
    pub sessions: Arc<SessionStore>,
    pub metrics: Arc<Metrics>,
    pub decode_limits: DecodeLimits,
    /// Credentials and ACL; the files are swapped in place by [`Context::reload_auth`].
    pub auth: Arc<Auth>,
    /// Observers of client and message events: the configured notifiers (see `notify`;
    /// agent notices are on by default) and an embedder's; `None` when there are none.
    pub hooks: Option<Arc<dyn Hooks>>,
    /// Publish-to-deliver latency, sampled only when the HTTP server (`/metrics`) is on.
    pub latency: Option<Latency>,
    /// Open network connections per listener, in `config.listeners` order.
    pub listener_connections: Box<[AtomicU64]>,
    /// When this broker started (uptime), monotonic and wall-clock.
    pub started: Instant,
    pub started_wall: SystemTime,
    /// `hooks`, when they want the per-message events (the hot path asks only this).
    pub message_hooks: Option<Arc<dyn Hooks>>,
}

impl Context {
    /// Builds the broker state from a validated configuration, loading the password and ACL
    /// files.
    pub fn new(config: Config) -> Result<Arc<Context>, AuthError> {
        Context::with(config, Extensions::default())
    }

    /// [`Context::new`] with what an embedder plugs in (hooks, a session journal).
    pub fn with(config: Config, ext: Extensions) -> Result<Arc<Context>, AuthError> {
        Context::with_metrics(config, ext, Arc::default())
    }

    /// [`Context::with`] counting in `metrics` (made before the context when something
    /// built before it counts too, such as the webhooks' queues).
    pub fn with_metrics(
        config: Config,
        ext: Extensions,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Context>, AuthError> {
        let hooks = ext.hooks;
        let message_hooks = hooks.clone().filter(|h| h.wants_messages());
        let auth = Arc::new(Auth::load(&config.auth, metrics.clone())?);
        let s = &config.session;
        let limits = SessionLimits {
            max_inflight: s.max_inflight,
            max_queued: s.max_queued_messages,
            max_queued_bytes: s.max_queued_bytes,
            policy: match s.queue_full_policy {
                ConfigPolicy::DropNew => QueueFullPolicy::DropNew,
                ConfigPolicy::DropOldest => QueueFullPolicy::DropOldest,
            },
            queue_qos0_offline: s.queue_qos0_offline,
            slow_consumer_timeout: (!s.slow_consumer_timeout.is_zero())
                .then_some(s.slow_consumer_timeout),
            stall_timeout: s.stall_timeout,
        };
        let sessions = Arc::new(
            SessionStore::new(limits, s.max_sessions, metrics.clone()).with_journal(ext.journal),
        );
        let r = &config.retain;
        let retained = RetainedStore::new(
            r.enabled,
            r.max_messages,
            r.max_payload_size,
            r.max_bytes,
            metrics.clone(),
        )
        .with_journal(ext.retained_journal);
        let router = Router::new(retained, metrics.clone())
            .with_groups(
                config.groups.strategy,
                config.retain.send_to_shared_subscribers,
            )
            .with_max_subscriptions(config.session.max_subscriptions)
            .with_hooks(message_hooks.clone())
            .with_sessions(sessions.clone());
        let decode_limits = DecodeLimits {
            max_packet_size: config.limits.max_packet_size,
            max_topic_levels: config.limits.max_topic_levels,
            max_topic_length: config.limits.max_topic_length,
        };
        let latency = config.http.enabled.then(Latency::default);
        let listener_connections = config.listeners.iter().map(|_| AtomicU64::new(0)).collect();
        Ok(Arc::new(Context {
            latency,
            listener_connections,
            started: Instant::now(),
            started_wall: SystemTime::now(),
            config,
            router,
            sessions,
            metrics,
            decode_limits,
            auth,
            hooks,
            message_hooks,
        }))
    }

    /// Tells the hooks, if any, of `event` (built only when there are hooks).
    #[inline]
    pub fn emit<'a>(&self, event: impl FnOnce() -> Event<'a>) {
        if let Some(h) = &self.hooks {
            h.on_event(&event());
        }
    }

    /// Re-reads the password and ACL files (SIGHUP). On error the previous files stay in
    /// force; connections are never dropped either way.
    pub fn reload_auth(&self) -> Result<(), AuthError> {
        self.auth.reload()
    }
}
