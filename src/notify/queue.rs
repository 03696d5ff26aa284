//! The bounded queue between a hook (filled on the broker's threads, never waiting) and the
//! task that empties it: a bound on items and on bytes, and a refusal, never a wait, when
//! either is reached (the caller counts it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Bytes of queued events one queue may hold: message events carry payloads (up to
/// `limits.max_packet_size` each), so an item bound alone would not bound memory.
pub(super) const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// The filling side.
#[derive(Debug)]
pub(super) struct Queue<T> {
    tx: mpsc::Sender<(T, usize)>,
    bytes: Arc<AtomicUsize>,
}

/// The emptying side.
#[derive(Debug)]
pub(super) struct Drain<T> {
    rx: mpsc::Receiver<(T, usize)>,
    bytes: Arc<AtomicUsize>,
}

/// The queue was full: the item was not queued.
#[derive(Debug)]
pub(super) struct Full;

/// A queue of at most `items` items and [`MAX_QUEUED_BYTES`] bytes.
pub(super) fn bounded<T>(items: usize) -> (Queue<T>, Drain<T>) {
    let (tx, rx) = mpsc::channel(items.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        Queue {
            tx,
            bytes: bytes.clone(),
        },
        Drain { rx, bytes },
    )
}

impl<T> Queue<T> {
    /// Queues `item`, of about `cost` bytes, unless the queue is full. A queue whose task
    /// has ended (the broker is stopping) takes nothing and is not "full".
    pub(super) fn push(&self, item: T, cost: usize) -> Result<(), Full> {
        // Counted before the send, so the task never subtracts what was not yet added.
        if self.bytes.fetch_add(cost, Ordering::Relaxed) + cost > MAX_QUEUED_BYTES {
            self.bytes.fetch_sub(cost, Ordering::Relaxed);
            return Err(Full);
        }
        match self.tx.try_send((item, cost)) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.bytes.fetch_sub(cost, Ordering::Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(_) => Err(Full),
                    mpsc::error::TrySendError::Closed(_) => Ok(()),
                }
            }
        }
    }
}

impl<T> Drain<T> {
    /// The next item; `None` once every filling side is gone.
    pub(super) async fn recv(&mut self) -> Option<T> {
        let (item, cost) = self.rx.recv().await?;
        self.bytes.fetch_sub(cost, Ordering::Relaxed);
        Some(item)
    }

    /// The next item if one is waiting.
    pub(super) fn try_recv(&mut self) -> Option<T> {
        let (item, cost) = self.rx.try_recv().ok()?;
        self.bytes.fetch_sub(cost, Ordering::Relaxed);
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_bytes_are_both_bounded() {
        let (q, mut d) = bounded::<u8>(2);
        assert!(q.push(1, 10).is_ok());
        assert!(q.push(2, 10).is_ok());
        assert!(q.push(3, 10).is_err(), "third item");
        assert_eq!(d.try_recv(), Some(1));
        assert!(q.push(4, MAX_QUEUED_BYTES).is_err(), "over the byte budget");
        assert!(q.push(5, 10).is_ok(), "a refused item is not counted");
        assert_eq!(d.try_recv(), Some(2));
        assert_eq!(d.try_recv(), Some(5));
        assert_eq!(d.try_recv(), None);
        assert!(q.push(6, MAX_QUEUED_BYTES).is_ok(), "the budget came back");
    }

    #[test]
    fn a_closed_queue_is_not_full() {
        let (q, d) = bounded::<u8>(1);
        drop(d);
        assert!(q.push(1, 1).is_ok());
    }
}
