//! supermq: a clustered MQTT 3.1.1 (and 3.1) broker.
//!
//! The path of one PUBLISH (each module named once; `docs/architecture.md` has the map):
//! ```text
//! socket ─▶ listener ─▶ connection ─▶ codec::decode ─▶ connection/inbound (ack, ACL)
//!                          │  flow::Pacing: route now, set aside, or stop reading
//!                          ▼
//!                       router::publish ─▶ store::RetainedStore (retain flag)
//!                          │  topic trie match, consumer-group choice (router/groups)
//!                          ├─▶ session: offer ─ flow::Watermarks ─▶ queued | blocked | dropped
//!                          │     (blocked: the producer keeps a Remainder, router::resume)
//!                          ├─▶ hooks (published, dropped) · store (session journal)
//!                          └─▶ router::RemoteSink (cluster) ─▶ route link ─▶ peer node
//!                                peer: cluster/ingress ─▶ router::publish_from_route
//! subscriber's connection (woken) ─▶ session fill ─▶ codec::encode ─▶ one write ─▶ socket
//! ```
//! Modules: [`codec`] (pure wire format), [`topic`] (filters, trie, retained tree),
//! [`flow`] (flow control), [`session`] (per-client state machine), [`store`] (session
//! registry and lifecycle, the journal seam, retained messages), [`router`] (matching and
//! fan-out), [`hooks`] (event observers), [`notify`] (webhooks, `$events` topics and agent
//! notices on the hooks), [`cluster`] (routes to peer nodes),
//! [`connection`] (the per-client driver), [`listener`] (accept loop, TLS and WebSocket
//! handshakes), [`engine`] (the connection threads), [`auth`] (passwords, HTTP hook, ACL),
//! [`http`] (REST API, `/metrics`, health), [`config`], [`metrics`], [`reload`] (SIGHUP: auth
//! files and TLS certificates), [`readiness`] (systemd readiness), [`notify`] (webhooks,
//! `$events`, agent notices).
//!
//! This file only wires them: [`Broker::start`] binds the listeners and spawns the tasks;
//! shutdown is a [`CancellationToken`] passed in by the caller.

pub mod auth;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod connection;
pub mod context;
pub mod engine;
pub mod flow;
pub mod healthcheck;
pub mod hooks;
pub mod http;
pub mod listener;
pub mod message;
pub mod metrics;
pub mod notify;
pub mod readiness;
pub mod recover;
pub mod reload;
pub mod router;
pub mod session;
pub mod store;
pub mod sys;
pub mod topic;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::ConnThreads;

pub use config::Config;
pub use context::{Context, Extensions};
pub use metrics::Metrics;

/// How long connections get to close after shutdown before the broker stops waiting.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Why the broker could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Listener(#[from] listener::ListenerError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    #[error("cannot start the connection threads: {0}")]
    Threads(std::io::Error),
    #[error(transparent)]
    Store(#[from] store::durable::DurableError),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error(transparent)]
    Notify(#[from] notify::NotifyError),
}

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    ctx: Arc<Context>,
    addrs: Vec<(String, SocketAddr)>,
    route_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    cluster: Option<Arc<cluster::Cluster>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// The durable store this broker opened, closed (synced) once every connection is done.
    durable: Option<Arc<store::durable::Durable>>,
    /// What SIGHUP re-reads.
    reloader: reload::Reloader,
}

impl Broker {
    /// Binds every listener and starts serving until `shutdown` is cancelled.
    pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Broker, StartError> {
        Broker::start_with(config, Extensions::default(), shutdown).await
    }

    /// [`Broker::start`] with what an embedder plugs in: hooks (see [`hooks`]), a session
    /// journal (see [`store::SessionJournal`]).
    pub async fn start_with(
        config: Config,
        mut ext: Extensions,
        shutdown: CancellationToken,
    ) -> Result<Broker, StartError> {
        let bound = listener::bind_all(&config).await?;
        // The durable store, unless an embedder plugged in a journal of its own: opened (and
        // locked) before anything is served, and what it kept is back in memory before the
        // first client is accepted.
        let mut recovered = None;
        let mut durable = None;
        if config.persistence.enabled && ext.journal.is_none() {
            let p = &config.persistence;
            let opts = store::durable::DurableOptions {
                dir: p.dir.clone(),
                sync: match p.sync {
                    config::SyncMode::Always => store::durable::SyncMode::Always,
                    config::SyncMode::Periodic => {
                        store::durable::SyncMode::Periodic(p.sync_interval)
                    }
                    config::SyncMode::None => store::durable::SyncMode::None,
                },
                window: Some(p.memory_window),
                max_memory: p.max_memory,
                max_disk: p.max_disk,
                min_free_disk: p.min_free_disk,
            };
            let (d, r) = store::durable::Durable::open(&opts)?;
            ext.journal = Some(d.clone());
            ext.retained_journal = Some(d.clone());
            durable = Some(d);
            recovered = Some(r);
        }
        // Webhooks, `$events` and agent notices: their hooks join the embedder's (one
        // observer, or still none when nothing is configured); their tasks start below.
        let metrics = Arc::new(Metrics::default());
        let mut notifiers = notify::build(&config, &metrics)?;
        let mut hooks = notifiers.take_hooks();
        hooks.extend(ext.hooks.take());
        ext.hooks = hooks::compose(hooks);
        let ctx = Context::with_metrics(config, ext, metrics)?;
        let staged = recovered.map(|r| recover::retained(&ctx, r));
        let tracker = TaskTracker::new();
        notifiers.spawn(&ctx, &tracker, &shutdown);
        // The cluster starts before any client is accepted, and before the stored sessions
        // are back, so every subscription is counted in the interest advertised to peers.
        let (cluster, route_addr) = if ctx.config.cluster.enabled {
            let (c, addr) = cluster::start(ctx.clone(), &tracker, shutdown.clone()).await?;
            (Some(c), Some(addr))
        } else {
            (None, None)
        };
        if let Some(staged) = staged {
            let s = recover::sessions(&ctx, staged);
            tracing::info!(
                dir = %ctx.config.persistence.dir.display(),
                sessions = s.sessions,
                queued = s.queued,
                retained = s.retained,
                expired = s.expired,
                wills = s.wills,
                "durable store opened"
            );
        }
        let limit = Arc::new(Semaphore::new(ctx.config.limits.max_connections));
        let n = match ctx.config.engine.worker_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let threads = Arc::new(
            ConnThreads::start(n, &shutdown, DRAIN_DEADLINE, &tracker)
                .map_err(StartError::Threads)?,
        );
        let addrs: Vec<(String, SocketAddr)> =
            bound.iter().map(|l| (l.name.clone(), l.addr)).collect();
        // The operations HTTP server: bound before any MQTT client is accepted, so a port
        // already taken fails the start.
        let http_addr = if ctx.config.http.enabled {
            let listeners = ctx
                .config
                .listeners
                .iter()
                .zip(&addrs)
                .map(|(c, (_, addr))| http::ListenerInfo {
                    name: c.name.clone(),
                    protocol: c.protocol,
                    addr: *addr,
                    ws_path: c.ws_path.clone(),
                })
                .collect();
            let state = http::Http::new(
                ctx.clone(),
                cluster.clone(),
                listeners,
                durable.as_ref().map(|_| true),
            );
            Some(http::start(state, &tracker, shutdown.clone()).await?)
        } else {
            None
        };
        let reloader = reload::Reloader::new(
            ctx.clone(),
            bound
                .iter()
                .filter_map(listener::BoundListener::tls)
                .collect(),
            cluster.as_ref().and_then(|c| c.tls.clone()),
        );
        for l in bound {
            tracker.spawn(listener::accept_loop(
                l,
                ctx.clone(),
                limit.clone(),
                threads.clone(),
                tracker.clone(),
                shutdown.clone(),
            ));
        }
        // Serving connections hear of shutdown through their links: one kick each, rather
        // than a wait on the shared token held in every connection's task.
        tracker.spawn({
            let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
            async move {
                shutdown.cancelled().await;
                for s in ctx.sessions.all() {
                    if let Some(l) = s.lock().link() {
                        l.kick(session::KickReason::Shutdown);
                    }
                }
            }
        });
        let sys_interval = ctx.config.sys.interval;
        if !sys_interval.is_zero() {
            tracker.spawn(sys::run(
                ctx.clone(),
                cluster.clone(),
                sys_interval,
                shutdown.clone(),
            ));
        }
        // MQTT 5 session expiry and will delay are in whole seconds: a check every quarter
        // second keeps them within their second; a short 3.1.1 expiry is checked oftener.
        let expiry = ctx.config.session.persistent_session_expiry;
        let every = if expiry.is_zero() {
            Duration::from_millis(250)
        } else {
            (expiry / 10).clamp(Duration::from_millis(100), Duration::from_millis(250))
        };
        tracker.spawn(sys::expire_sessions(ctx.clone(), every, shutdown.clone()));
        Ok(Broker {
            ctx,
            addrs,
            route_addr,
            http_addr,
            cluster,
            tracker,
            shutdown,
            durable,
            reloader,
        })
    }

    /// The address of the first listener (the one tests and `-p` use).
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0].1
    }

    /// The bound route (cluster) address, when clustering is on.
    pub fn route_addr(&self) -> Option<SocketAddr> {
        self.route_addr
    }

    /// The bound address of the operations HTTP server (`[http]`), when it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// This node's cluster, when clustering is on.
    pub fn cluster(&self) -> Option<&Arc<cluster::Cluster>> {
        self.cluster.as_ref()
    }

    /// The bound address of the listener called `name`.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// The broker's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.ctx.metrics
    }

    /// Re-reads the password and ACL files (what SIGHUP does); on error the previous ones
    /// stay in force. Connections are not dropped.
    pub fn reload_auth(&self) -> Result<(), auth::AuthError> {
        self.ctx.reload_auth()
    }

    /// Re-reads the password and ACL files and every TLS certificate, key and CA file
    /// (listeners and routes): what SIGHUP does. A part whose files are bad keeps its
    /// previous state and is listed in the error; the others take effect. Connections and
    /// route links already up are untouched; new handshakes use the new certificates.
    pub fn reload(&self) -> Result<(), reload::ReloadErrors> {
        self.reloader.reload()
    }

    /// A handle doing [`Broker::reload`] that outlives the `Broker` value (for a signal
    /// task).
    pub fn reloader(&self) -> reload::Reloader {
        self.reloader.clone()
    }

    /// The shared broker state (for embedding and tests).
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Waits until shutdown has been requested and every task has finished, or the drain
    /// deadline has passed.
    pub async fn stopped(self) {
        self.shutdown.cancelled().await;
        self.tracker.close();
        if tokio::time::timeout(DRAIN_DEADLINE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: some connections did not close within {DRAIN_DEADLINE:?}");
        }
        if let Some(d) = &self.durable {
            // Everything the closing connections changed is written and fsynced.
            d.close();
        }
    }
}

/// Loads everything a start would load from disk (TLS certificates and keys, password and
/// ACL files) without binding or serving: what `supermq -t` checks beyond the config file.
pub fn preflight(config: &Config) -> Result<(), StartError> {
    listener::check_all(config)?;
    auth::Auth::load(&config.auth, Arc::default())?;
    if config.cluster.enabled {
        cluster::RouteTls::load(&config.cluster)?;
    }
    let h = &config.http;
    if let (true, Some(cert), Some(key)) = (h.enabled, &h.cert_file, &h.key_file) {
        listener::https_acceptor(cert, key).map_err(http::HttpError::from)?;
    }
    Ok(())
}

/// Runs a broker with `config` until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    let broker = Broker::start(config, shutdown).await?;
    broker.stopped().await;
    Ok(())
}
