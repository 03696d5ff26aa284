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
use super::{CloseReason, Conn, Deferred, Live, Step};
use crate::flow;
use crate::router::Origin;

impl<R: ReadSide, W: AsyncWrite + Unpin> Conn<R, W> {
    /// Routes what was set aside, still paced by subscribers that drain (each wait bounded by
    /// `flow::RECHECK_AFTER`, none once the broker shuts down), so the close loses nothing a reader could
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
                | CloseReason::ClientDisconnectWithWill
                | CloseReason::PeerClosed
                | CloseReason::Malformed(_)
                | CloseReason::Protocol(_)
                | CloseReason::Violation { .. }
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
                            Deferred::Unhandled(_) | Deferred::Acks(_) => {}
                        }
                    }
                    break;
                }
                Step::Wait => {
                    let relief = live.publishing.as_ref().and_then(|p| p.pacing.relief());
                    if let Some(rx) = relief {
                        flow::relief_or_recheck(rx).await;
                    }
                }
                // Not acknowledged, and the client did not end the connection itself: it
                // sends them again.
                Step::Route(Deferred::Unhandled(_)) if !client_ended => {}
                // Acknowledgements for a client that is leaving: never sent (it sends those
                // messages again on its next connection, and QoS 2 ids are remembered).
                Step::Route(Deferred::Acks(_)) => {}
                Step::Route(item) => {
                    // A PUBLISH never fails to be handled.
                    let _ = self.route_deferred(item, live, now);
                }
            }
        }
    }
}
