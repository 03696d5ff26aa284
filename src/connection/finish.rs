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

use super::pacing::note_routed;
use super::read::ReadSide;
use super::{inbound, CloseReason, Conn, Deferred, Live, Step, PACE_MAX};
use crate::codec::Packet;
use crate::router::Origin;

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
        loop {
            let step = match live.publishing.as_mut() {
                Some(p) => p.pacing.step(),
                None => Step::Idle,
            };
            let now = Instant::now();
            match step {
                Step::Idle => break,
                Step::Wait if shutdown.is_cancelled() => {
                    // No waiting once the broker stops: what is left is offered once more,
                    // and the queue bounds apply (counted).
                    let left: Vec<Deferred> = live
                        .publishing
                        .as_mut()
                        .map(|p| p.pacing.drain().collect())
                        .unwrap_or_default();
                    for item in left {
                        match item {
                            Deferred::Accepted(msg) => {
                                let origin = Origin {
                                    session: Some(&live.session),
                                    ..Origin::broker()
                                };
                                self.ctx.router.publish(msg, origin, now);
                            }
                            Deferred::Remainder(rem) => {
                                self.ctx.router.resume(rem, now, false);
                            }
                            Deferred::Unhandled(_) => {}
                        }
                    }
                    break;
                }
                Step::Wait => {
                    let relief = live.publishing.as_ref().and_then(|p| p.pacing.relief());
                    if let Some(mut rx) = relief {
                        let _ = tokio::time::timeout(PACE_MAX, rx.changed()).await;
                    }
                }
                Step::Route(Deferred::Accepted(msg)) => {
                    let routed = inbound::route(msg, live, &self.ctx, now);
                    note_routed(live, routed, std::iter::empty());
                }
                Step::Route(Deferred::Remainder(rem)) => {
                    let routed = self.ctx.router.resume(rem, now, true);
                    note_routed(live, routed, std::iter::empty());
                }
                Step::Route(Deferred::Unhandled(Packet::Publish(p))) if client_ended => {
                    if let Some(msg) = inbound::accept(p, live, &self.ctx, self.wbuf.buf()) {
                        let routed = inbound::route(msg, live, &self.ctx, now);
                        note_routed(live, routed, std::iter::empty());
                    }
                }
                Step::Route(Deferred::Unhandled(_)) => {}
            }
        }
    }
}
