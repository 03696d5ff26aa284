//! `GET /healthz` (the process answers) and `GET /readyz` (listeners bound, the durable
//! store open, enough cluster links), for load balancers and orchestrators.

use hyper::StatusCode;
use serde_json::json;

use super::reply::{self, Resp};
use super::Http;
use crate::metrics::get;

pub fn healthz() -> Resp {
    reply::ok(&json!({"status": "ok"}))
}

pub fn readyz(http: &Http) -> Resp {
    let ctx = &http.ctx;
    let listeners = !http.listeners.is_empty();
    let store = http.store_open.unwrap_or(true);
    let links = get(&ctx.metrics.route_links_current);
    let need = ctx.config.http.ready_min_links as u64;
    let mut not_ready = Vec::new();
    if !listeners {
        not_ready.push("listeners: none bound".to_owned());
    }
    if !store {
        not_ready.push("store: not open".to_owned());
    }
    if links < need {
        not_ready.push(format!(
            "cluster: {links} route links up, http.ready_min_links is {need}"
        ));
    }
    let body = json!({
        "status": if not_ready.is_empty() { "ready" } else { "not_ready" },
        "listeners": http.listeners.len(),
        "store": match http.store_open { None => "memory", Some(true) => "open", Some(false) => "closed" },
        "links": links,
        "ready_min_links": need,
        "not_ready": not_ready,
    });
    let status = if not_ready.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    reply::json(status, &body)
}
