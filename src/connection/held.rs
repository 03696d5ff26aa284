//! SUBACKs (and the acknowledgements after them) held until the cluster has the interest
//! they announce, so the connection goes on serving its client meanwhile.

use bytes::BytesMut;

use crate::codec::{self, Packet, ProtocolLevel};

/// Acknowledgements held back until the cluster barriers before them resolve, in the order of
/// the packets they answer.
#[derive(Default)]
pub(super) struct Held {
    pub(super) acks: std::collections::VecDeque<(Option<crate::router::Barrier>, BytesMut)>,
    /// With a durable store: nothing is written to the client until this resolves, because
    /// what is buffered holds a QoS 2 PUBLISH whose packet id must be on disk first (a
    /// restart must resend it with that id, not queue it afresh under another).
    pub(super) gate: Option<crate::store::SyncWait>,
}

impl Held {
    /// Holds `ack`, encoded at `level`, behind everything held before; with `barrier`, until
    /// that resolves too.
    pub(super) fn push(
        &mut self,
        barrier: Option<crate::router::Barrier>,
        ack: &Packet,
        level: ProtocolLevel,
    ) {
        let mut bytes = BytesMut::new();
        codec::encode(ack, level, &mut bytes);
        self.acks.push_back((barrier, bytes));
    }

    /// Ready when the first held acknowledgement's barrier has resolved (it is then free to
    /// go: see [`Conn::release_held`]).
    pub(super) fn poll_front(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if let Some(g) = self.gate.as_mut() {
            std::task::ready!(g.as_mut().poll(cx));
            self.gate = None;
            return std::task::Poll::Ready(());
        }
        if let Some((barrier @ Some(_), _)) = self.acks.front_mut() {
            if let Some(b) = barrier.as_mut() {
                std::task::ready!(b.as_mut().poll(cx));
            }
            *barrier = None;
        }
        std::task::Poll::Ready(())
    }
}
