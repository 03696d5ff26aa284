//! A connection's lifecycle around its serving loop: the CONNECT phase (read, check,
//! authenticate, attach, CONNACK), refusing a connection that never got a session, and the
//! closing phase (will, detach, counters, last flush).

use std::net::SocketAddr;

use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::read::ReadSide;
use super::*;
use super::{auth, v5};
use crate::codec::{Disconnect, ProtocolLevel, ReasonCode};
use crate::hooks::Event;
use crate::session::{Change, ClientMeta};

/// The CONNECT phase: reads and checks the CONNECT, authenticates, attaches the session and
/// queues the CONNACK. `None` when the connection was refused (and answered).
pub(super) async fn open<R, W>(
    mut conn: Conn<R, W>,
    info: ConnInfo,
    shutdown: CancellationToken,
) -> Opened<R, W>
where
    R: ReadSide,
    W: AsyncWrite + Unpin,
{
    let peer = info.peer;
    let connect = tokio::select! {
        r = tokio::time::timeout(conn.ctx.config.limits.connect_timeout, conn.read_connect()) => match r {
            Ok(r) => r,
            Err(_) => Err(CloseReason::ConnectTimeout),
        },
        _ = shutdown.cancelled() => Err(CloseReason::Shutdown),
    };
    let mut connect = match connect {
        Ok(c) => c,
        Err(reason) => {
            // No CONNECT was decoded, so no level was agreed: the answer is 3.1.1's (CONNACK
            // 0x01 for a level this broker does not speak [MQTT-3.1.2-2]).
            conn.refuse(peer, &reason, None).await;
            return None;
        }
    };
    let (client_id, assigned) = match connect::validate(&connect, &conn.ctx) {
        Ok(id) => id,
        Err(code) => {
            conn.refuse(peer, &CloseReason::ConnectRefused(code), Some(&connect))
                .await;
            return None;
        }
    };
    let method = connect
        .properties
        .values_or_empty()
        .authentication_method
        .clone();
    let mut auth_data = None;
    let username = match method.as_deref() {
        // MQTT 5 enhanced authentication (§4.12): the AUTH exchange, then the will's ACL
        // check as `admit` does it.
        Some(method) if connect.level.is_v5() => {
            match conn.authenticate(&connect, &client_id, method).await {
                auth::Connected::Yes { username, data } => {
                    auth_data = data;
                    if !conn
                        .ctx
                        .auth
                        .will_allowed(&connect, &client_id, Some(&username))
                    {
                        let code = ReasonCode::NotAuthorized;
                        let reason = CloseReason::ConnectRefused(code);
                        conn.refuse(peer, &reason, Some(&connect)).await;
                        return None;
                    }
                    Some(username)
                }
                auth::Connected::Refused(code) => {
                    // An unknown method is 0x8C [MQTT-4.12.0-1]; a failed exchange 0x87.
                    conn.ctx.auth.enhanced_failed(peer, &client_id, method);
                    let reason = CloseReason::ConnectRefused(code);
                    conn.refuse(peer, &reason, Some(&connect)).await;
                    return None;
                }
                auth::Connected::Closed(reason) => {
                    conn.refuse(peer, &reason, Some(&connect)).await;
                    return None;
                }
            }
        }
        // Authentication and the will's ACL check (auth/).
        _ => match conn
            .ctx
            .auth
            .admit(&connect, &client_id, peer, info.cert_cn.as_deref())
            .await
        {
            Ok(u) => u,
            Err(code) => {
                let reason = CloseReason::ConnectRefused(code.into());
                conn.refuse(peer, &reason, Some(&connect)).await;
                return None;
            }
        },
    };
    let vectored = conn.wr.is_write_vectored();
    let assigned = assigned.then_some(client_id.as_str());
    let negotiated = v5::negotiate(&connect, &conn.ctx, assigned, vectored);
    let gen = conn.ctx.sessions.next_gen();
    let link = ConnLink::with_meta(
        gen,
        Some(ClientMeta {
            username: username.as_deref().map(Arc::from),
            peer,
            proto_ver: connect.level.to_u8(),
            keep_alive: negotiated.keep_alive,
            clean_start: connect.clean_session,
        }),
    );
    let attached = match conn.ctx.sessions.attach(
        &client_id,
        connect.clean_session,
        negotiated.expiry,
        link.clone(),
    ) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(%peer, client_id, "{e}");
            // Mosquitto answers a full broker with "server unavailable" too.
            let code = ReasonCode::ServerUnavailable;
            conn.refuse(peer, &CloseReason::ConnectRefused(code), Some(&connect))
                .await;
            return None;
        }
    };
    if let Some(old) = &attached.discarded {
        conn.ctx.router.end_session(old);
    }
    let session = attached.session;
    let mut egress = negotiated.egress;
    let mut connack = ConnAck {
        properties: negotiated.connack,
        ..ConnAck::new(attached.present, ReasonCode::Success)
    };
    if let Some(method) = method.filter(|_| connect.level.is_v5()) {
        // The method and its final data go back in the CONNACK (§3.2.2.3.17, 3.2.2.3.18).
        let p = connack.properties.values_mut();
        p.authentication_method = Some(method);
        p.authentication_data = auth_data;
    }
    codec::encode(&Packet::ConnAck(connack), connect.level, conn.wbuf.buf());
    if attached.present {
        let n = session
            .lock()
            .resend_inflight(&mut conn.wbuf, &mut egress, Instant::now());
        metrics::add(&conn.ctx.metrics.publish_sent, n);
    }
    metrics::inc(&conn.ctx.metrics.clients_connected_current);
    tracing::debug!(%peer, client_id, clean = connect.clean_session, present = attached.present, "client connected");
    session
        .lock()
        .record(|| Change::WillSet(connect.will.clone()));
    conn.ctx.sessions.commit(&session);
    conn.ctx.emit(|| Event::ClientConnected {
        client_id: &client_id,
        username: username.as_deref(),
        peer,
        level: connect.level,
        clean_session: connect.clean_session,
        keep_alive: negotiated.keep_alive,
        session_present: attached.present,
        conn: gen,
        user_properties: &connect.properties.values_or_empty().user_properties,
    });
    if let Some(c) = conn.ctx.router.remote() {
        // Client ids are unique cluster-wide: a live connection elsewhere is taken over.
        c.announce_client(&client_id, link.connected_at());
    }
    let read = conn
        .ctx
        .auth
        .read_gate(&session.client_id, username.as_ref());
    let live = Live {
        session,
        egress,
        v5: negotiated.v5,
        gen,
        link,
        needs_drain: true,
        // 1.5 × at most 65,535 s fits in 32 bits of milliseconds.
        keep_alive_ms: u32::from(negotiated.keep_alive) * 1500,
        read,
        username,
        held: None,
        backlog: false,
        awaiting_acks: false,
        publishing: None,
    };
    Some((conn, live, connect.will.take().map(Box::new)))
}

/// The closing phase: the will, the session's detach, metrics, and a best-effort flush.
pub(super) async fn close<R, W>(
    mut conn: Conn<R, W>,
    live: Live,
    will: Option<Box<LastWill>>,
    reason: CloseReason,
) where
    R: ReadSide,
    W: AsyncWrite + Unpin,
{
    let ctx = conn.ctx.clone();
    let session = &live.session;
    let now = Instant::now();
    if let Some(code) = v5::server_disconnect(&reason, live.egress.level) {
        // MQTT 5: the server says why it closes (§3.14.2.1), before the socket goes.
        let d = Disconnect {
            reason: code,
            ..Disconnect::default()
        };
        codec::encode(&Packet::Disconnect(d), live.egress.level, conn.wbuf.buf());
    }
    let outcome = ctx.sessions.detach(session, live.gen, now);
    let mut delayed = false;
    if reason.publishes_will() {
        // The same `$SYS` guard as a PUBLISH: a will is a message the client publishes.
        if let Some(w) = will.filter(|w| !inbound::refuse_sys(&w.topic, &ctx)) {
            let (msg, delay) = Message::from_will(*w, now);
            if delay.is_zero() || outcome == DetachOutcome::Removed {
                // Due now, or its session ends now, which is when a delayed will is due
                // at the latest [MQTT-3.1.3-9].
                crate::sys::publish_will(&ctx, msg, now);
            } else {
                let mut st = session.lock();
                // A connection that already took the session over cancels it.
                if st.link().is_none() {
                    st.pending_will = Some((msg, now + delay));
                    delayed = true;
                }
            }
        }
    }
    if !delayed {
        // The will is spent (published or discarded): a restart must not publish it. Not
        // after another connection took the session over (it set its own).
        let mut st = session.lock();
        if st.link().is_none() {
            st.record(|| Change::WillSet(None));
        }
    }
    if outcome == DetachOutcome::Removed {
        ctx.router.end_session(session);
    } else {
        ctx.sessions.commit(session);
    }
    metrics::dec(&ctx.metrics.clients_connected_current);
    count_close(&ctx, &reason);
    let reason_text = if ctx.hooks.is_some() {
        reason.to_string()
    } else {
        String::new()
    };
    tracing::debug!(client_id = %session.client_id, %reason, "client disconnected");
    ctx.emit(|| Event::ClientDisconnected {
        client_id: &session.client_id,
        username: live.username.as_deref(),
        reason: &reason_text,
        conn: live.gen,
    });
    // Best effort: whatever is still buffered (e.g. a final PINGRESP, or the server's
    // DISCONNECT) goes out before close; not to a peer that is gone or does not read.
    if !matches!(
        reason,
        CloseReason::PeerClosed | CloseReason::Io(_) | CloseReason::SlowConsumer
    ) && !conn.wbuf.is_empty()
    {
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            conn.wbuf.write_all(&mut conn.wr),
        )
        .await;
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), conn.wr.shutdown()).await;
}

fn count_close(ctx: &Context, reason: &CloseReason) {
    let m = &ctx.metrics;
    match reason {
        CloseReason::Malformed(e) => {
            metrics::inc(&m.malformed_packets);
            if e.is_topic_limit() {
                metrics::inc(&m.topics_over_limit);
            }
        }
        CloseReason::Protocol(_) | CloseReason::Violation { .. } => {
            metrics::inc(&m.protocol_errors)
        }
        CloseReason::KeepAliveTimeout => metrics::inc(&m.keep_alive_timeouts),
        CloseReason::TakenOver => metrics::inc(&m.takeovers),
        CloseReason::SlowConsumer => metrics::inc(&m.slow_consumer_disconnects),
        CloseReason::ConnectTimeout => metrics::inc(&m.connect_timeouts),
        CloseReason::ConnectRefused(_) => metrics::inc(&m.connects_refused),
        _ => {}
    }
}

impl<R: ReadSide, W: AsyncWrite + Unpin> Conn<R, W> {
    pub(super) async fn read_connect(&mut self) -> Result<Connect, CloseReason> {
        let limits = self.ctx.decode_limits;
        let mut size = ReadSize::default();
        loop {
            // Before a CONNECT the level is 3.1.1's; a CONNECT decodes at its own.
            match codec::decode(&mut self.rbuf, &limits, ProtocolLevel::V311)? {
                Some(Packet::Connect(c)) => return Ok(*c),
                Some(_) => {
                    return Err(CloseReason::Protocol(
                        "first packet is not CONNECT [MQTT-3.1.0-1]",
                    ))
                }
                None => {}
            }
            let initial = self.ctx.config.engine.read_buffer_size;
            let room = size.reserve::<R>(&mut self.rbuf, initial);
            let n = read::read(&mut self.rd, &mut self.rbuf, room).await?;
            size.record(n, room);
            if n == 0 {
                return Err(CloseReason::PeerClosed);
            }
            metrics::add(&self.ctx.metrics.bytes_received, n as u64);
        }
    }

    /// Ends a connection that never got a session, answering with a CONNACK (at the level of
    /// `connect`, if one was read; else 3.1.1's, no level having been agreed) where the spec
    /// asks for one.
    pub(super) async fn refuse(
        &mut self,
        peer: SocketAddr,
        reason: &CloseReason,
        connect: Option<&Connect>,
    ) {
        let level = connect.map_or(ProtocolLevel::V311, |c| c.level);
        let code = match reason {
            CloseReason::Malformed(DecodeError::UnsupportedProtocolLevel(_)) => {
                // [MQTT-3.1.2-2]: answer 0x01 and close.
                Some(ConnectReturnCode::UnacceptableProtocolVersion.into())
            }
            CloseReason::ConnectRefused(code) => Some(*code),
            // MQTT 5 says why a CONNECT is refused as malformed or broken (§3.2.2.2).
            CloseReason::Malformed(e) if level.is_v5() => Some(e.reason_code()),
            CloseReason::Protocol(_) if level.is_v5() => Some(ReasonCode::ProtocolError),
            CloseReason::Violation { code, .. } if level.is_v5() => Some(*code),
            _ => None,
        };
        count_close(&self.ctx, reason);
        if matches!(
            reason,
            CloseReason::Malformed(DecodeError::UnsupportedProtocolLevel(_))
        ) {
            metrics::inc(&self.ctx.metrics.connects_refused);
        }
        tracing::debug!(%peer, %reason, "connection refused");
        if let Some(code) = code {
            self.ctx.emit(|| Event::ClientConnack {
                client_id: connect.map_or("", |c| &c.client_id),
                username: connect.and_then(|c| c.username.as_deref()),
                peer,
                level,
                reason: code,
            });
            // A refused CONNECT gets CONNACK with session-present 0 [MQTT-3.2.2-4].
            let mut out = BytesMut::new();
            codec::encode(&Packet::ConnAck(ConnAck::new(false, code)), level, &mut out);
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wr.write_all(&out)).await;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), self.wr.shutdown()).await;
    }
}
