//! The JSON body of each event, shaped as EMQX 5 shapes its webhook and `$events/...`
//! bodies (`event`, `clientid`, `username`, `peername`, `proto_ver`, `keepalive`,
//! `clean_start`, `reason`, `topic`, `qos`, `payload`, `timestamp`, `node`, ...), so its
//! users' receivers carry over.
//!
//! Built only by the hooks that queue them (after their event and topic filters).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::codec::{ProtocolLevel, ReasonCode};
use crate::config::HookEvent;
use crate::hooks::{AgentNotice, DropReason, Event};

/// Milliseconds since the Unix epoch (EMQX's `timestamp`).
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The webhook event an [`Event`] is.
pub(super) fn kind(e: &Event<'_>) -> HookEvent {
    match e {
        Event::ClientConnected { .. } => HookEvent::ClientConnected,
        Event::ClientConnack { .. } => HookEvent::ClientConnack,
        Event::ClientDisconnected { .. } => HookEvent::ClientDisconnected,
        Event::Subscribed { .. } => HookEvent::SessionSubscribed,
        Event::Unsubscribed { .. } => HookEvent::SessionUnsubscribed,
        Event::MessagePublished { .. } => HookEvent::MessagePublish,
        Event::MessageDelivered { .. } => HookEvent::MessageDelivered,
        Event::MessageDropped { .. } => HookEvent::MessageDropped,
        Event::Agent {
            connected: true, ..
        } => HookEvent::AgentConnected,
        Event::Agent { .. } => HookEvent::AgentDisconnected,
    }
}

/// The topic of a message event.
pub(super) fn topic_of<'a>(e: &Event<'a>) -> Option<&'a str> {
    match *e {
        Event::MessagePublished { topic, .. }
        | Event::MessageDelivered { topic, .. }
        | Event::MessageDropped { topic, .. } => Some(topic),
        _ => None,
    }
}

/// About how many bytes the body of `e` takes while queued.
pub(super) fn cost(e: &Event<'_>) -> usize {
    let payload = match *e {
        Event::MessagePublished { payload, .. }
        | Event::MessageDelivered { payload, .. }
        | Event::MessageDropped { payload, .. } => payload.len() * 4 / 3,
        Event::ClientConnected {
            user_properties, ..
        } => user_properties.iter().map(|(k, v)| k.len() + v.len()).sum(),
        Event::Agent { notice, .. } => notice.client_info.as_ref().map_or(0, String::len),
        _ => 0,
    };
    256 + payload
}

/// EMQX's `proto_name` for a level.
fn proto_name(level: ProtocolLevel) -> &'static str {
    match level {
        ProtocolLevel::V31 => "MQIsdp",
        _ => "MQTT",
    }
}

/// A reason code as EMQX writes one: its name in snake case (`not_authorized`).
pub(super) fn reason_name(code: ReasonCode) -> String {
    let camel = format!("{code:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn drop_reason(r: DropReason) -> &'static str {
    match r {
        DropReason::QueueFull => "queue_full",
        DropReason::Offline => "offline",
        DropReason::StoreFull => "store_full",
        DropReason::SlowConsumer => "slow_consumer",
    }
}

/// A payload as text when it is UTF-8, else base64 (and `payload_encoding` says so).
fn put_payload(m: &mut Map<String, Value>, payload: &[u8]) {
    match std::str::from_utf8(payload) {
        Ok(s) => {
            m.insert("payload".into(), s.into());
        }
        Err(_) => {
            let b = base64::engine::general_purpose::STANDARD.encode(payload);
            m.insert("payload".into(), b.into());
            m.insert("payload_encoding".into(), "base64".into());
        }
    }
}

/// The JSON text an agent announced, as a JSON value (a string when it is not JSON).
fn client_info(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned())),
    }
}

/// The body of an agent notice (`agent.connected` / `agent.disconnected`).
pub fn agent_body(connected: bool, n: &AgentNotice, node: &str, ts: u64) -> Value {
    let event = if connected {
        HookEvent::AgentConnected
    } else {
        HookEvent::AgentDisconnected
    };
    let mut v = json!({
        "event": event.name(),
        "clientid": n.client_id,
        "username": n.username,
        "peername": n.peer.to_string(),
        "proto_name": proto_name(n.level),
        "proto_ver": n.level as u8,
        "keepalive": n.keep_alive,
        "clean_start": n.clean_session,
        "client_info": client_info(n.client_info.as_deref()),
        "timestamp": ts,
        "node": node,
    });
    if let (Some(r), Some(m)) = (&n.reason, v.as_object_mut()) {
        m.insert("reason".into(), r.as_str().into());
    }
    v
}

/// The body of `e` at `ts` on `node`.
pub(super) fn body(e: &Event<'_>, node: &str, ts: u64) -> Value {
    let event = kind(e).name();
    let mut v = match *e {
        Event::ClientConnected {
            client_id,
            username,
            peer,
            level,
            clean_session,
            keep_alive,
            session_present,
            ..
        } => json!({
            "clientid": client_id,
            "username": username,
            "peername": peer.to_string(),
            "proto_name": proto_name(level),
            "proto_ver": level as u8,
            "keepalive": keep_alive,
            "clean_start": clean_session,
            "session_present": session_present,
            "connected_at": ts,
        }),
        Event::ClientConnack {
            client_id,
            username,
            peer,
            level,
            reason,
        } => json!({
            "clientid": client_id,
            "username": username,
            "peername": peer.to_string(),
            "proto_name": proto_name(level),
            "proto_ver": level as u8,
            "reason_code": reason_name(reason),
        }),
        Event::ClientDisconnected {
            client_id,
            username,
            reason,
            ..
        } => json!({
            "clientid": client_id,
            "username": username,
            "reason": reason,
            "disconnected_at": ts,
        }),
        Event::Subscribed {
            client_id,
            filter,
            qos,
        } => json!({ "clientid": client_id, "topic": filter, "qos": qos as u8 }),
        Event::Unsubscribed { client_id, filter } => {
            json!({ "clientid": client_id, "topic": filter })
        }
        Event::MessagePublished {
            client_id,
            topic,
            qos,
            retain,
            payload,
            ..
        } => {
            let mut v = json!({
                "clientid": client_id,
                "topic": topic,
                "qos": qos as u8,
                "flags": { "retain": retain },
                "publish_received_at": ts,
            });
            if let Some(m) = v.as_object_mut() {
                put_payload(m, payload);
            }
            v
        }
        Event::MessageDelivered {
            client_id,
            topic,
            qos,
            payload,
        } => {
            let mut v = json!({ "clientid": client_id, "topic": topic, "qos": qos as u8 });
            if let Some(m) = v.as_object_mut() {
                put_payload(m, payload);
            }
            v
        }
        Event::MessageDropped {
            client_id,
            topic,
            qos,
            payload,
            reason,
        } => {
            let mut v = json!({
                "clientid": client_id,
                "topic": topic,
                "qos": qos as u8,
                "reason": drop_reason(reason),
            });
            if let Some(m) = v.as_object_mut() {
                put_payload(m, payload);
            }
            v
        }
        Event::Agent { connected, notice } => return agent_body(connected, notice, node, ts),
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("event".into(), event.into());
        m.insert("timestamp".into(), ts.into());
        m.insert("node".into(), node.into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::QoS;

    #[test]
    fn reason_codes_read_as_emqx_writes_them() {
        assert_eq!(reason_name(ReasonCode::NotAuthorized), "not_authorized");
        assert_eq!(reason_name(ReasonCode::Success), "success");
        assert_eq!(
            reason_name(ReasonCode::BadUserNameOrPassword),
            "bad_user_name_or_password"
        );
    }

    #[test]
    fn a_binary_payload_is_base64() {
        let e = Event::MessageDelivered {
            client_id: "c",
            topic: "t",
            qos: QoS::AtLeastOnce,
            payload: &[0xff, 0x00],
        };
        let v = body(&e, "n1", 7);
        assert_eq!(v["payload"], "/wA=");
        assert_eq!(v["payload_encoding"], "base64");
        assert_eq!(v["event"], "message.delivered");
        assert_eq!(
            (v["timestamp"].as_u64(), &v["node"]),
            (Some(7), &json!("n1"))
        );
        let text = Event::MessageDelivered {
            client_id: "c",
            topic: "t",
            qos: QoS::AtLeastOnce,
            payload: b"hi",
        };
        let v = body(&text, "n1", 7);
        assert_eq!(v["payload"], "hi");
        assert!(v.get("payload_encoding").is_none());
    }

    #[test]
    fn client_info_that_is_not_json_is_kept_as_text() {
        assert_eq!(client_info(Some("{\"os\":\"linux\"}"))["os"], "linux");
        assert_eq!(client_info(Some("plain")), json!("plain"));
        assert_eq!(client_info(None), Value::Null);
    }
}
