//! The operations HTTP server against a real broker on 127.0.0.1:0, called with a real HTTP
//! client (hyper) and driven by raw MQTT clients: every API path's success, not found, bad
//! input and missing or wrong API key; the kick (connection closed, will published);
//! publishing over HTTP to MQTT subscribers; `/metrics` parsed by a Prometheus-format
//! parser, its counters moving with traffic; health and readiness.

#[path = "http/auth.rs"]
mod auth;
#[path = "http/clients.rs"]
mod clients;
mod common;
#[path = "http/dashboard.rs"]
mod dashboard;
#[path = "http/health.rs"]
mod health;
#[path = "http/metrics.rs"]
mod metrics;
#[path = "http/nodes.rs"]
mod nodes;
#[path = "http/publish.rs"]
mod publish;
#[path = "http/retainer.rs"]
mod retainer;
#[path = "http/server.rs"]
mod server;
