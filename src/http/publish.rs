//! `POST /api/v5/publish`: a message from the operator, checked as a client's PUBLISH is
//! (topic name rules and limits, `$SYS` refused, `limits.max_qos`, the packet size bound,
//! the MQTT 5 properties' own rules) and routed as the broker's own.

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::reply::{self, ApiError, Resp};
use super::Http;
use crate::codec::{PayloadFormat, QoS};
use crate::message::Message;
use crate::router::Origin;

/// User properties one request may set.
const MAX_USER_PROPERTIES: usize = 128;

/// The request body (EMQX 5's shape; `encoding` is taken for `payload_encoding` too).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishReq {
    topic: String,
    #[serde(default)]
    payload: String,
    #[serde(default, alias = "encoding")]
    payload_encoding: Encoding,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
    /// Accepted for EMQX scripts; the message is the broker's own whatever it says.
    #[serde(default)]
    #[allow(dead_code)]
    clientid: Option<String>,
    #[serde(default)]
    properties: Option<Props>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    #[default]
    Plain,
    Base64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Props {
    payload_format_indicator: Option<u8>,
    message_expiry_interval: Option<u32>,
    response_topic: Option<String>,
    correlation_data: Option<String>,
    #[serde(default)]
    user_properties: BTreeMap<String, String>,
    content_type: Option<String>,
}

/// Checks a topic name as the codec and the connection check a client's.
fn check_topic(http: &Http, what: &str, t: &str) -> Result<(), ApiError> {
    let l = &http.ctx.config.limits;
    let bad = |why: &str| Err(ApiError::bad_request(format!("{what}: {why}")));
    if t.is_empty() {
        return bad("must not be empty");
    }
    if t.contains(['+', '#', '\0']) {
        return bad("a topic name has no wildcards and no NUL character");
    }
    if t.len() > l.max_topic_length.min(65535) {
        return bad("longer than limits.max_topic_length");
    }
    if t.split('/').count() > l.max_topic_levels {
        return bad("more levels than limits.max_topic_levels");
    }
    if t.starts_with("$SYS") {
        return bad("$SYS topics are the broker's own");
    }
    Ok(())
}

fn build(http: &Http, body: &[u8], now: Instant) -> Result<Message, ApiError> {
    let req: PublishReq = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    check_topic(http, "topic", &req.topic)?;
    let qos = QoS::from_u8(req.qos)
        .filter(|q| (*q as u8) <= http.ctx.config.limits.max_qos)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "qos must be 0 to {} (limits.max_qos)",
                http.ctx.config.limits.max_qos
            ))
        })?;
    let payload = match req.payload_encoding {
        Encoding::Plain => Bytes::from(req.payload.into_bytes()),
        Encoding::Base64 => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(req.payload.as_bytes())
                .map_err(|e| ApiError::bad_request(format!("payload: not base64: {e}")))?,
        ),
    };
    if payload.len() + req.topic.len() > http.ctx.config.limits.max_packet_size {
        return Err(ApiError::bad_request(
            "payload: the message would exceed limits.max_packet_size",
        ));
    }
    let mut msg = Message::new(req.topic, payload, qos, req.retain);
    if let Some(p) = req.properties {
        let v = msg.properties.values_mut();
        match p.payload_format_indicator {
            None => {}
            Some(0) => v.payload_format_indicator = Some(PayloadFormat::Unspecified),
            Some(1) => {
                if std::str::from_utf8(&msg.payload).is_err() {
                    return Err(ApiError::bad_request(
                        "payload: payload_format_indicator 1 needs a UTF-8 payload",
                    ));
                }
                v.payload_format_indicator = Some(PayloadFormat::Utf8);
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "properties.payload_format_indicator must be 0 or 1",
                ))
            }
        }
        if let Some(t) = &p.response_topic {
            check_topic(http, "properties.response_topic", t)?;
        }
        if p.user_properties.len() > MAX_USER_PROPERTIES {
            return Err(ApiError::bad_request(format!(
                "properties.user_properties: at most {MAX_USER_PROPERTIES}"
            )));
        }
        let strings = p
            .user_properties
            .iter()
            .flat_map(|(k, v)| [k, v])
            .chain(p.content_type.iter())
            .chain(p.correlation_data.iter());
        for s in strings {
            if s.len() > 65535 || s.contains('\0') {
                return Err(ApiError::bad_request(
                    "properties: strings are at most 65,535 bytes, without NUL",
                ));
            }
        }
        v.response_topic = p.response_topic;
        v.correlation_data = p.correlation_data.map(|c| Bytes::from(c.into_bytes()));
        v.content_type = p.content_type;
        v.user_properties = p.user_properties.into_iter().collect();
        msg.expires = Message::expiry_from(p.message_expiry_interval.filter(|&s| s > 0), now);
    }
    Ok(msg)
}

/// Publishes; answers `{"id"}` (a hex id, as EMQX's message ids).
pub fn publish(http: &Http, body: &[u8]) -> Result<Resp, ApiError> {
    let now = Instant::now();
    let msg = build(http, body, now)?;
    let id = format!("{:016X}", rand::random::<u64>());
    http.ctx.router.publish(msg, Origin::broker(), now);
    Ok(reply::ok(&json!({"id": id})))
}
