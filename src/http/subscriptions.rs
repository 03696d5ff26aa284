//! `GET /api/v5/subscriptions`, `GET /api/v5/clients/{clientid}/subscriptions` and
//! `GET /api/v5/topics` (the route table: each filter with subscribers, and the node
//! that holds them).

use serde_json::{json, Value};

use super::reply::{self, ApiError, Paging, Resp};
use super::Http;

use crate::session::{Grant, Session};

struct Sub {
    clientid: std::sync::Arc<str>,
    topic: String,
    grant: Grant,
}

impl Sub {
    fn to_json(&self, node: &str) -> Value {
        let o = &self.grant.options;
        json!({
            "clientid": &*self.clientid,
            "topic": self.topic,
            "qos": o.qos as u8,
            "node": node,
            "nl": u8::from(o.no_local),
            "rap": u8::from(o.retain_as_published),
            "rh": o.retain_handling as u8,
        })
    }
}

fn subs_of(s: &Session, out: &mut Vec<Sub>) {
    let st = s.lock();
    out.extend(st.subscriptions().iter().map(|(f, g)| Sub {
        clientid: s.client_id.clone(),
        topic: f.clone(),
        grant: *g,
    }));
}

/// `GET /api/v5/clients/{clientid}/subscriptions`: a plain array, as EMQX answers.
pub fn of_client(http: &Http, id: &str) -> Result<Resp, ApiError> {
    let s = http
        .ctx
        .sessions
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no client \"{id}\"")))?;
    let mut v = Vec::new();
    subs_of(&s, &mut v);
    let node = http.node_name();
    let data: Vec<Value> = v.iter().map(|s| s.to_json(&node)).collect();
    Ok(reply::ok(&Value::Array(data)))
}

/// `GET /api/v5/subscriptions`: filters `clientid`, `topic` (exact), `qos`; ordered by
/// client id, then filter.
pub fn list(http: &Http, q: &[(String, String)]) -> Result<Resp, ApiError> {
    let paging = Paging::from_query(q)?;
    let (mut id, mut topic, mut qos) = (None, None, None);
    for (k, v) in q {
        match k.as_str() {
            "clientid" => id = Some(v.as_str()),
            "topic" => topic = Some(v.as_str()),
            "qos" => qos = Some(reply::int("qos", v, 0, 2)? as u8),
            _ => {}
        }
    }
    let sessions = match id {
        Some(id) => http.ctx.sessions.get(id).into_iter().collect(),
        None => http.ctx.sessions.all(),
    };
    let mut v = Vec::new();
    for s in &sessions {
        subs_of(s, &mut v);
    }
    v.retain(|s| {
        topic.map_or(true, |t| s.topic == t) && qos.map_or(true, |q| s.grant.options.qos as u8 == q)
    });
    v.sort_unstable_by(|a, b| (&a.clientid, &a.topic).cmp(&(&b.clientid, &b.topic)));
    let node = http.node_name();
    Ok(reply::ok(&paging.page(v, |s| s.to_json(&node))))
}

/// The filters local sessions subscribe to: the router keeps that set itself only for a
/// cluster (what peers are told); a single node reads it from the sessions.
pub fn local_filters(http: &Http) -> Vec<String> {
    if http.ctx.router.remote().is_some() {
        return http.ctx.router.local_interest();
    }
    let mut set = std::collections::BTreeSet::new();
    for s in http.ctx.sessions.all() {
        let st = s.lock();
        for f in st.subscriptions().keys() {
            if !set.contains(f) {
                set.insert(f.clone());
            }
        }
    }
    set.into_iter().collect()
}

/// `GET /api/v5/topics`: filter `topic` (exact); ordered by filter, then node.
pub fn topics(http: &Http, q: &[(String, String)]) -> Result<Resp, ApiError> {
    let paging = Paging::from_query(q)?;
    let topic = q
        .iter()
        .find(|(k, _)| k == "topic")
        .map(|(_, v)| v.as_str());
    let node = http.node_name();
    let mut v: Vec<(String, String)> = local_filters(http)
        .into_iter()
        .map(|f| (f, node.clone()))
        .collect();
    if let Some(c) = &http.cluster {
        v.extend(
            c.peer_interest()
                .into_iter()
                .map(|(n, f)| (f, n.to_string())),
        );
    }
    v.retain(|(f, _)| topic.map_or(true, |t| f == t));
    v.sort_unstable();
    Ok(reply::ok(
        &paging.page(v, |(t, n)| json!({"topic": t, "node": n})),
    ))
}
