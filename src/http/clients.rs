//! `GET /api/v5/clients`, `GET` and `DELETE /api/v5/clients/{clientid}`: sessions as EMQX
//! shows clients, and the operator's kick.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::reply::{self, ApiError, Paging, Resp};
use super::Http;
use crate::session::{KickReason, Session};

/// One session as the API shows it, read under its lock once.
#[derive(Debug)]
pub struct ClientView {
    pub clientid: Arc<str>,
    pub meta: Option<crate::session::ClientMeta>,
    pub connected_at: Option<u64>,
    pub subscriptions: usize,
    pub queued: usize,
    pub inflight: usize,
    pub expiry: Option<u64>,
}

impl ClientView {
    pub fn of(s: &Session) -> ClientView {
        let st = s.lock();
        let link = st.link();
        ClientView {
            clientid: s.client_id.clone(),
            meta: link.and_then(|l| l.meta().cloned()),
            connected_at: link.map(|l| l.connected_at()),
            subscriptions: st.subscriptions().len(),
            queued: st.queued(),
            inflight: st.inflight(),
            expiry: st.expiry.map(|d| d.as_secs()),
        }
    }

    pub fn connected(&self) -> bool {
        self.connected_at.is_some()
    }

    fn username(&self) -> Option<&str> {
        self.meta.as_ref().and_then(|m| m.username.as_deref())
    }

    pub fn to_json(&self, node: &str) -> Value {
        let m = self.meta.as_ref();
        json!({
            "clientid": &*self.clientid,
            "username": self.username(),
            "node": node,
            "connected": self.connected(),
            "conn_state": if self.connected() { "connected" } else { "disconnected" },
            "ip_address": m.map(|m| m.peer.ip().to_string()),
            "port": m.map(|m| m.peer.port()),
            "keepalive": m.map(|m| m.keep_alive),
            "clean_start": m.map(|m| m.clean_start),
            "proto_name": m.map(|m| if m.proto_ver == 3 { "MQIsdp" } else { "MQTT" }),
            "proto_ver": m.map(|m| m.proto_ver),
            "connected_at": self.connected_at.map(reply::rfc3339_us),
            "expiry_interval": self.expiry.unwrap_or(u64::from(u32::MAX)),
            "subscriptions_cnt": self.subscriptions,
            "mqueue_len": self.queued,
            "inflight_cnt": self.inflight,
        })
    }
}

/// `GET /api/v5/clients`: filters `clientid`, `username` (exact), `like_clientid`,
/// `like_username` (substring), `conn_state` (`connected` | `disconnected`); ordered by
/// client id.
pub fn list(http: &Http, q: &[(String, String)]) -> Result<Resp, ApiError> {
    let paging = Paging::from_query(q)?;
    let mut want_state = None;
    let (mut id, mut user, mut like_id, mut like_user) = (None, None, None, None);
    for (k, v) in q {
        match k.as_str() {
            "clientid" => id = Some(v.as_str()),
            "username" => user = Some(v.as_str()),
            "like_clientid" => like_id = Some(v.as_str()),
            "like_username" => like_user = Some(v.as_str()),
            "conn_state" => {
                want_state = Some(match v.as_str() {
                    "connected" => true,
                    "disconnected" => false,
                    _ => {
                        return Err(ApiError::bad_request(
                            "conn_state must be \"connected\" or \"disconnected\"",
                        ))
                    }
                })
            }
            _ => {}
        }
    }
    let mut views: Vec<ClientView> = match id {
        // One look-up, not a walk over every session.
        Some(id) => http
            .ctx
            .sessions
            .get(id)
            .iter()
            .map(|s| ClientView::of(s))
            .collect(),
        None => http
            .ctx
            .sessions
            .all()
            .iter()
            .map(|s| ClientView::of(s))
            .collect(),
    };
    views.retain(|v| {
        want_state.map_or(true, |c| v.connected() == c)
            && user.map_or(true, |u| v.username() == Some(u))
            && like_id.map_or(true, |l| v.clientid.contains(l))
            && like_user.map_or(true, |l| v.username().is_some_and(|u| u.contains(l)))
    });
    views.sort_unstable_by(|a, b| a.clientid.cmp(&b.clientid));
    let node = http.node_name();
    Ok(reply::ok(&paging.page(views, |v| v.to_json(&node))))
}

fn session(http: &Http, id: &str) -> Result<Arc<Session>, ApiError> {
    http.ctx
        .sessions
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no client \"{id}\"")))
}

/// `GET /api/v5/clients/{clientid}`.
pub fn get(http: &Http, id: &str) -> Result<Resp, ApiError> {
    let s = session(http, id)?;
    Ok(reply::ok(&ClientView::of(&s).to_json(&http.node_name())))
}

/// How long a kick waits for the kicked connection to finish closing.
const KICK_WAIT: Duration = Duration::from_secs(5);

/// `DELETE /api/v5/clients/{clientid}`: closes a live connection as an abnormal close (its
/// will is published; MQTT 5 clients get DISCONNECT 0x98), then ends and discards the
/// session, as EMQX's kick does (a persistent session does not linger offline). Answered
/// once that is done, so a `GET` after the answer finds no client.
pub async fn kick(http: &Http, id: &str) -> Result<Resp, ApiError> {
    let s = session(http, id)?;
    let link = s.lock().link().cloned();
    if let Some(l) = link {
        l.kick(KickReason::Admin);
        // The connection publishes the will and detaches on its own thread; polled, since
        // nothing else waits on a close.
        let deadline = tokio::time::Instant::now() + KICK_WAIT;
        while s.lock().is_served_by(l.gen) {
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError {
                    status: hyper::StatusCode::SERVICE_UNAVAILABLE,
                    code: "TIMEOUT",
                    message: format!("the connection did not close within {KICK_WAIT:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    if http.ctx.sessions.discard_offline(&s) {
        http.ctx.router.end_session(&s);
    }
    Ok(reply::no_content())
}
