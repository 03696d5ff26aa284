//! The operations HTTP server: the REST API (EMQX 5 paths and shapes), `/metrics` for
//! Prometheus, `/healthz` and `/readyz`, and the OpenAPI document of all of it.
//!
//! Owns nothing of the broker: every handler reads through [`Context`] (sessions, router,
//! metrics) and the cluster, and acts only through what MQTT uses too (`Router::publish`,
//! `ConnLink::kick`, the retained store). It runs on the broker's runtime as its own tasks,
//! never on the connection threads' hot path; every request is bounded (size, time, count of
//! connections) before it is read.
//!
//! One file per noun: `server` (accept, limits, TLS), `auth` (API keys), `routes` (which
//! path goes where), `reply` (JSON answers and errors), `url` (path and query decoding),
//! `clients`, `subscriptions` (and topics), `publish`, `retainer`, `nodes` (nodes, stats,
//! listeners), `prom` and `process` (`/metrics`), `health`, `openapi`, `dashboard`.

mod auth;
mod clients;
mod dashboard;
mod health;
mod nodes;
mod openapi;
mod process;
mod prom;
mod publish;
mod reply;
mod retainer;
mod routes;
mod server;
mod subscriptions;
mod url;

use std::net::SocketAddr;
use std::sync::Arc;

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::Cluster;
use crate::config::ListenerProtocol;
use crate::context::Context;

/// Why the HTTP server could not start.
#[derive(Debug, Error)]
pub enum HttpError {
    #[error("http.bind {addr}: cannot bind: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http: TLS: {0}")]
    Tls(#[from] crate::listener::ListenerError),
}

/// One MQTT listener as the API shows it.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub name: String,
    pub protocol: ListenerProtocol,
    pub addr: SocketAddr,
    pub ws_path: String,
}

/// What the handlers read: the broker's state and how it was started.
#[derive(Debug)]
pub struct Http {
    pub ctx: Arc<Context>,
    pub cluster: Option<Arc<Cluster>>,
    pub listeners: Vec<ListenerInfo>,
    /// Whether the durable store is open (`None`: persistence is off).
    pub store_open: Option<bool>,
    /// Prometheus exposition, built once.
    metrics: prom::Exposition,
}

impl Http {
    pub fn new(
        ctx: Arc<Context>,
        cluster: Option<Arc<Cluster>>,
        listeners: Vec<ListenerInfo>,
        store_open: Option<bool>,
    ) -> Arc<Http> {
        let metrics = prom::Exposition::new(ctx.clone(), cluster.clone(), &listeners);
        Arc::new(Http {
            ctx,
            cluster,
            listeners,
            store_open,
            metrics,
        })
    }

    /// The node name shown in the API: the cluster node id, or `supermq@<bind>`.
    pub fn node_name(&self) -> String {
        let c = &self.ctx.config.cluster;
        if c.enabled && !c.node_id.is_empty() {
            c.node_id.clone()
        } else {
            "supermq@local".to_owned()
        }
    }
}

/// Binds `[http] bind` and serves until `shutdown`, on `tracker`. Returns the bound address.
pub async fn start(
    http: Arc<Http>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<SocketAddr, HttpError> {
    server::start(http, tracker, shutdown).await
}
