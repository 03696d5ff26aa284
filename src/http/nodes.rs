//! `GET /api/v5/nodes` (this node and each cluster peer), `GET /api/v5/stats` and
//! `GET /api/v5/listeners`.

use serde_json::{json, Value};

use super::reply::{self, Resp};
use super::Http;
use crate::config::ListenerProtocol;
use crate::metrics::get;

fn uptime_ms(http: &Http) -> u64 {
    u64::try_from(http.ctx.started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// `GET /api/v5/nodes`: this node (`running`), each linked peer (`running`, with its link's
/// counters) and each seed not linked (`stopped`, address only).
pub fn nodes(http: &Http) -> Resp {
    let m = &http.ctx.metrics;
    let ctx = &http.ctx;
    let route = ctx.config.cluster.enabled.then(|| {
        ctx.config
            .cluster
            .advertise
            .clone()
            .unwrap_or_else(|| ctx.config.cluster.listen.to_string())
    });
    let mut out = vec![json!({
        "node": http.node_name(),
        "node_status": "running",
        "role": "core",
        "self": true,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": uptime_ms(http),
        "started_at": reply::rfc3339(ctx.started_wall),
        "address": route,
        "connections": get(&m.clients_connected_current),
        "live_connections": get(&m.clients_connected_current),
        "links": get(&m.route_links_current),
    })];
    if let Some(c) = &http.cluster {
        let addrs = c.peer_addrs();
        let stats = c.link_stats();
        for (node, addr) in &addrs {
            let st = stats.iter().find(|(n, _)| n == node).map(|(_, s)| s);
            out.push(json!({
                "node": &**node,
                "node_status": "running",
                "role": "core",
                "self": false,
                "address": addr,
                "uptime": Value::Null,
                "link": st.map(|s| json!({
                    "msgs_in": get(&s.msgs_in),
                    "msgs_out": get(&s.msgs_out),
                    "bytes_in": get(&s.bytes_in),
                    "bytes_out": get(&s.bytes_out),
                })),
            }));
        }
        for seed in &ctx.config.cluster.seeds {
            if !addrs.iter().any(|(_, a)| a == seed) {
                out.push(json!({
                    "node": Value::Null,
                    "node_status": "stopped",
                    "role": "core",
                    "self": false,
                    "address": seed,
                    "uptime": Value::Null,
                    "link": Value::Null,
                }));
            }
        }
    }
    reply::ok(&Value::Array(out))
}

/// `GET /api/v5/stats`: one entry for this node, EMQX's `*.count` names plus the message
/// and byte counters the dashboard charts as rates.
pub fn stats(http: &Http) -> Resp {
    let m = &http.ctx.metrics;
    let dropped: u64 = m
        .snapshot()
        .iter()
        .filter(|(k, _)| k.starts_with("dropped_"))
        .map(|(_, v)| v)
        .sum();
    reply::ok(&json!([{
        "node": http.node_name(),
        "connections.count": get(&m.clients_connected_current),
        "live_connections.count": get(&m.clients_connected_current),
        "sessions.count": get(&m.sessions_current),
        "subscriptions.count": get(&m.subscriptions_current),
        "topics.count": super::subscriptions::local_filters(http).len(),
        "retained.count": get(&m.retained_current),
        "messages.received": get(&m.publish_received),
        "messages.sent": get(&m.publish_sent),
        "messages.dropped": dropped,
        "bytes.received": get(&m.bytes_received),
        "bytes.sent": get(&m.bytes_sent),
        "uptime": uptime_ms(http),
    }]))
}

/// EMQX's listener type names.
fn type_name(p: ListenerProtocol) -> &'static str {
    match p {
        ListenerProtocol::Tcp => "tcp",
        ListenerProtocol::Tls => "ssl",
        ListenerProtocol::Ws => "ws",
        ListenerProtocol::Wss => "wss",
    }
}

/// `GET /api/v5/listeners`: every MQTT listener with its bound address and open
/// connections (the dashboard's WebSocket client takes its URL from here).
pub fn listeners(http: &Http) -> Resp {
    let out: Vec<Value> = http
        .listeners
        .iter()
        .map(|l| {
            let open = http
                .ctx
                .config
                .listeners
                .iter()
                .position(|c| c.name == l.name)
                .and_then(|i| http.ctx.listener_connections.get(i))
                .map_or(0, get);
            let t = type_name(l.protocol);
            json!({
                "id": format!("{t}:{}", l.name),
                "name": l.name,
                "type": t,
                "bind": l.addr.to_string(),
                "running": true,
                "current_connections": open,
                "ws_path": l.protocol.is_ws().then_some(&l.ws_path),
            })
        })
        .collect();
    reply::ok(&Value::Array(out))
}
