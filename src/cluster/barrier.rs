//! A SUBSCRIBE's wait for the cluster to confirm its interest, polled beside the connection.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::node::Cluster;

#[derive(Debug)]
pub(super) struct SyncWait {
    pub(super) pending: HashSet<Arc<str>>,
    /// Fired when `pending` empties.
    pub(super) done: Option<oneshot::Sender<()>>,
}

/// A SUBSCRIBE's wait for the cluster to have its interest (see [`Cluster::interest_barrier`]).
///
/// Started when it is made (its SYNC frames are already queued, its deadline already runs), so
/// a connection can keep serving its client and poll it alongside; it resolves when every
/// peer linked at the start has answered, or at `sync_timeout`. Dropping it withdraws the
/// wait.
#[derive(Debug)]
pub struct SyncBarrier {
    pub(super) cluster: Arc<Cluster>,
    pub(super) seq: u64,
    /// The interest frames sent before it: confirmed when every peer answers.
    pub(super) target: u64,
    pub(super) acked: oneshot::Receiver<()>,
    pub(super) deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Future for SyncBarrier {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Poll::Ready(r) = Pin::new(&mut self.acked).poll(cx) {
            if r.is_ok() {
                self.cluster
                    .interest_confirmed
                    .fetch_max(self.target, Ordering::SeqCst);
            }
            return Poll::Ready(());
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            tracing::debug!(seq = self.seq, "cluster sync timed out; SUBACK sent anyway");
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for SyncBarrier {
    fn drop(&mut self) {
        self.cluster.syncs.lock().remove(&self.seq);
    }
}
