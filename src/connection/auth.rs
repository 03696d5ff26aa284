//! MQTT 5 enhanced authentication on a connection (MQTT 5.0 §4.12): the AUTH exchange that
//! a CONNECT with an Authentication Method starts, and re-authentication (AUTH 0x19) later.
//!
//! The methods themselves are pure and live in `auth/` ([`crate::auth::AuthMethod`]); this
//! file only carries their data in AUTH packets and turns their outcome into CONNACK, AUTH or
//! DISCONNECT. The identity a client re-authenticates as must be the one it connected as: a
//! re-authentication that names another user is refused (the ACL identity of a live session
//! never changes).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::read::{self, ReadSide, ReadSize};
use super::{CloseReason, Conn, Live};
use crate::auth::Step;
use crate::codec::{self, Auth, Connect, Packet, PropertyValues, ProtocolLevel, ReasonCode};
use crate::metrics;

/// AUTH round trips one exchange may take: SCRAM needs one; a bound keeps a client from
/// holding a connection in the CONNECT phase by answering for ever.
const MAX_ROUNDS: usize = 8;

/// How an exchange at CONNECT ended.
pub(super) enum Connected {
    /// Authenticated as this user; the CONNACK carries `data` as Authentication Data.
    Yes {
        username: Arc<str>,
        data: Option<Bytes>,
    },
    /// Refused with a CONNACK carrying this reason.
    Refused(ReasonCode),
    /// The connection ended or broke a rule during the exchange.
    Closed(CloseReason),
}

/// An AUTH packet of `method` with `reason` and, if any, `data`.
fn auth_packet(reason: ReasonCode, method: &str, data: Option<Bytes>) -> Packet {
    let props = PropertyValues {
        authentication_method: Some(method.to_owned()),
        authentication_data: data,
        ..PropertyValues::default()
    };
    Packet::Auth(Auth {
        reason,
        properties: props.into(),
    })
}

/// The method and data of a client's AUTH, checked against the exchange it continues.
fn auth_data(a: &Auth, method: &str, expected: ReasonCode) -> Result<Option<Bytes>, CloseReason> {
    let v = a.properties.values_or_empty();
    if a.reason != expected || v.authentication_method.as_deref() != Some(method) {
        return Err(CloseReason::Violation {
            code: ReasonCode::ProtocolError,
            rule: "AUTH with another method or reason than the exchange's [MQTT-4.12.0-5]",
        });
    }
    Ok(v.authentication_data.clone())
}

impl<R: ReadSide, W: AsyncWrite + Unpin> Conn<R, W> {
    /// Runs the exchange a CONNECT with Authentication Method `method` starts.
    pub(super) async fn authenticate(
        &mut self,
        c: &Connect,
        client_id: &str,
        method: &str,
    ) -> Connected {
        let ctx = self.ctx.clone();
        let Some(m) = ctx.auth.enhanced().method(method) else {
            return Connected::Refused(ReasonCode::BadAuthenticationMethod);
        };
        let data = c
            .properties
            .values_or_empty()
            .authentication_data
            .as_deref();
        let mut step = m.start(client_id, data);
        for _ in 0..MAX_ROUNDS {
            let state = match step {
                Step::Success { data, username } => return Connected::Yes { username, data },
                Step::Failure(code) => return Connected::Refused(code),
                Step::Continue { data, state } => {
                    let p = auth_packet(ReasonCode::ContinueAuthentication, method, Some(data));
                    let mut out = BytesMut::new();
                    codec::encode(&p, ProtocolLevel::V5, &mut out);
                    if let Err(e) = self.wr.write_all(&out).await {
                        return Connected::Closed(CloseReason::Io(e));
                    }
                    metrics::add(&ctx.metrics.bytes_sent, out.len() as u64);
                    state
                }
            };
            let next = match self.read_auth().await {
                Ok(a) => a,
                Err(r) => return Connected::Closed(r),
            };
            step = match auth_data(&next, method, ReasonCode::ContinueAuthentication) {
                Ok(data) => state.next(data.as_deref()),
                Err(r) => return Connected::Closed(r),
            };
        }
        Connected::Refused(ReasonCode::NotAuthorized)
    }

    /// Reads the client's next packet during the CONNECT-phase exchange: an AUTH.
    async fn read_auth(&mut self) -> Result<Auth, CloseReason> {
        let limits = self.ctx.decode_limits;
        let mut size = ReadSize::default();
        loop {
            match codec::decode(&mut self.rbuf, &limits, ProtocolLevel::V5)? {
                Some(Packet::Auth(a)) => return Ok(a),
                Some(Packet::Disconnect(_)) => return Err(CloseReason::ClientDisconnect),
                Some(_) => {
                    return Err(CloseReason::Violation {
                        code: ReasonCode::ProtocolError,
                        rule: "a packet other than AUTH before CONNACK [MQTT-4.12.0-... §4.12]",
                    })
                }
                None => {}
            }
            let initial = self.ctx.config.engine.read_buffer_size;
            let room = size.reserve::<R>(&mut self.rbuf, initial);
            let wait = self.ctx.config.limits.connect_timeout;
            let n = match tokio::time::timeout(wait, read::read(&mut self.rd, &mut self.rbuf, room))
                .await
            {
                Ok(r) => r?,
                Err(_) => return Err(CloseReason::ConnectTimeout),
            };
            size.record(n, room);
            if n == 0 {
                return Err(CloseReason::PeerClosed);
            }
            metrics::add(&self.ctx.metrics.bytes_received, n as u64);
        }
    }
}

/// A client's AUTH on a live connection: starts or continues a re-authentication
/// (§4.12.1). The answer (AUTH 0x18 or 0x00) goes to `out`; a failure ends the connection.
pub(super) fn reauthenticate(
    a: &Auth,
    live: &mut Live,
    ctx: &crate::context::Context,
    out: &mut BytesMut,
) -> Result<(), CloseReason> {
    let Some(v5) = live.v5.as_mut() else {
        return Err(CloseReason::Protocol("AUTH below MQTT 5"));
    };
    let Some(method) = v5.auth_method.clone() else {
        // [MQTT-4.12.0-7]: only a client that authenticated this way may send AUTH.
        return Err(CloseReason::Violation {
            code: ReasonCode::ProtocolError,
            rule:
                "AUTH from a client that connected without an Authentication Method [MQTT-4.12.0-7]",
        });
    };
    let step = match v5.reauth.take() {
        Some(state) => {
            let data = auth_data(a, &method, ReasonCode::ContinueAuthentication)?;
            state.next(data.as_deref())
        }
        None => {
            let data = auth_data(a, &method, ReasonCode::ReAuthenticate)?;
            let Some(m) = ctx.auth.enhanced().method(&method) else {
                // The method was configured away since (a reload): refused as a failure.
                return Err(refused(ReasonCode::NotAuthorized));
            };
            m.start(&live.session.client_id, data.as_deref())
        }
    };
    match step {
        Step::Continue { data, state } => {
            v5.reauth = Some(state);
            let p = auth_packet(ReasonCode::ContinueAuthentication, &method, Some(data));
            codec::encode(&p, ProtocolLevel::V5, out);
            Ok(())
        }
        Step::Success { data, username } => {
            if live.username.as_deref() != Some(&*username) {
                failed(ctx, &live.session.client_id, &method);
                return Err(refused(ReasonCode::NotAuthorized));
            }
            let p = auth_packet(ReasonCode::Success, &method, data);
            codec::encode(&p, ProtocolLevel::V5, out);
            Ok(())
        }
        Step::Failure(code) => {
            failed(ctx, &live.session.client_id, &method);
            Err(refused(code))
        }
    }
}

fn refused(code: ReasonCode) -> CloseReason {
    CloseReason::Violation {
        code,
        rule: "re-authentication failed (§4.12.1)",
    }
}

/// Counts a failed re-authentication with the CONNECT-time ones (`auth_failures`).
fn failed(ctx: &crate::context::Context, client_id: &str, method: &str) {
    metrics::inc(&ctx.metrics.auth_failures);
    tracing::debug!(client_id, method, "re-authentication failed");
}
