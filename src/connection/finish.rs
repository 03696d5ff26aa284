//! The end of a connection's loop: what the client sent before it left still goes where it
//! was going.
//!
//! PUBLISH packets are acknowledged when they are accepted, and the rest of a batch is set
//! aside (`Deferred::Accepted`) when a subscriber asks for pacing; packets read while paced
//! wait unacknowledged (`Deferred::Unhandled`). When the loop ends, the acknowledged ones are
//! the broker's (§4.3.2) and are routed whatever the reason; the unacknowledged ones are
//! handled too when the client itself ended the connection (DISCONNECT, end of stream, a
//! malformed or forbidden packet after them), since they came before that on the wire
//! [MQTT-4.6.0-6]. After a kick (take-over, slow consumer, shutdown) those were never
//! acknowledged, and the client sends them again.

use std::time::Instant;

use tokio::io::AsyncWrite;
use tokio_util::sync::CancellationToken;

use super::read::ReadSide;
use super::{inbound, CloseReason, Conn, Deferred, Live, PACE_MAX};
use crate::codec::Packet;

impl<R: ReadSide, W: AsyncWrite + Unpin> Conn<R, W> {
    /// Routes what was set aside, still paced by subscribers that drain (each wait bounded by
    /// `PACE_MAX`, none once the broker shuts down), so the close loses nothing a reader could
    /// take.
    pub(super) async fn finish_deferred(
        &mut self,
        live: &mut Live,
        reason: &CloseReason,
        shutdown: &CancellationToken,
    ) {
        let client_ended = matches!(
            reason,
            CloseReason::ClientDisconnect
                | CloseReason::PeerClosed
                | CloseReason::Malformed(_)
                | CloseReason::Protocol(_)
        );
        while live.deferred_len() > 0 {
            if let Some(pacer) = live.pressure.take() {
                if pacer.pressured() && !shutdown.is_cancelled() {
                    let mut relief = pacer.relief();
                    let _ = tokio::time::timeout(PACE_MAX, relief.changed()).await;
                }
            }
            let now = Instant::now();
            match live.pop_deferred() {
                Some(Deferred::Accepted(msg)) => inbound::route(msg, live, &self.ctx, now),
                Some(Deferred::Unhandled(Packet::Publish(p))) if client_ended => {
                    if let Some(msg) = inbound::accept(p, live, &self.ctx, self.wbuf.buf()) {
                        inbound::route(msg, live, &self.ctx, now);
                    }
                }
                Some(Deferred::Unhandled(_)) | None => {}
            }
        }
    }
}
