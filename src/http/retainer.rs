//! `GET /api/v5/retainer/messages`, `GET` and `DELETE /api/v5/retainer/message/{topic}`:
//! the retained store as EMQX's retainer shows it.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use super::reply::{self, ApiError, Paging, Resp};
use super::Http;
use crate::codec::QoS;
use crate::message::Message;
use crate::store::Stamp;

fn summary(m: &Message, stamp: Option<&Stamp>) -> Value {
    json!({
        "topic": m.topic,
        "qos": m.qos as u8,
        "publish_at": stamp.map(|s| reply::rfc3339(UNIX_EPOCH + Duration::from_millis(s.ts))),
        "from_clientid": Value::Null,
        "from_username": Value::Null,
        "payload_size": m.payload.len(),
    })
}

/// `GET /api/v5/retainer/messages`: filter `topic` (exact); ordered by topic; payloads are
/// left out of the list (one message's payload: `GET .../message/{topic}`).
pub fn list(http: &Http, q: &[(String, String)]) -> Result<Resp, ApiError> {
    let paging = Paging::from_query(q)?;
    let topic = q
        .iter()
        .find(|(k, _)| k == "topic")
        .map(|(_, v)| v.as_str());
    let mut held = http.ctx.router.retained().snapshot().held;
    held.retain(|(m, _)| topic.map_or(true, |t| m.topic == t));
    held.sort_unstable_by(|a, b| a.0.topic.cmp(&b.0.topic));
    Ok(reply::ok(&paging.page(held, |(m, s)| summary(m, Some(s)))))
}

/// The retained message of `topic`, if any (a topic name: wildcards are refused).
fn held(http: &Http, topic: &str) -> Result<Arc<Message>, ApiError> {
    if topic.is_empty() || topic.contains(['+', '#']) {
        return Err(ApiError::bad_request(
            "topic: a topic name, without wildcards",
        ));
    }
    http.ctx
        .router
        .retained()
        .matching(topic)
        .into_iter()
        .find(|m| m.topic == topic)
        .ok_or_else(|| ApiError::not_found(format!("no retained message on \"{topic}\"")))
}

/// `GET /api/v5/retainer/message/{topic}`: with its payload, base64.
pub fn get(http: &Http, topic: &str) -> Result<Resp, ApiError> {
    let m = held(http, topic)?;
    let mut v = summary(&m, None);
    v["payload"] = json!(base64::engine::general_purpose::STANDARD.encode(&m.payload));
    Ok(reply::ok(&v))
}

/// `DELETE /api/v5/retainer/message/{topic}`: removed from this node's store (journaled as
/// a client's empty retained PUBLISH is), without publishing anything to subscribers.
pub fn delete(http: &Http, topic: &str) -> Result<Resp, ApiError> {
    held(http, topic)?;
    let empty = Arc::new(Message::new(topic, Bytes::new(), QoS::AtMostOnce, true));
    http.ctx.router.retained().apply(&empty);
    Ok(reply::no_content())
}
