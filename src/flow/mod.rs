//! Flow control: how a publisher is held back by the consumers it feeds, in one place.
//!
//! Every consumer of routed messages (a local session, a consumer-group member, a route to a
//! peer) gives the same signal, [`Backpressure`]: "pause, I am filling up" and a way to wait
//! for relief. [`Watermarks`] is the consumer side: the pure rules by which one queue says
//! it is pressured, full, relieved, or stalled. [`Pacing`] is the producer side: the pure
//! state machine a connection (or a route link) runs for the messages it reads (route now,
//! set aside, or stop reading). Neither does I/O: the connection driver only waits on what
//! they tell it, so both are unit-tested here without sockets.
//!
//! The promise they keep (README "Flow control"): a QoS 1/2 message acknowledged to its
//! publisher is never dropped for a subscriber that is still reading. A consumer whose queue
//! is full and that still drains *blocks* the delivery (the producer keeps the message and
//! tries again on relief) instead of losing it; only a consumer that has taken nothing for
//! `session.stall_timeout` stops holding its producers back, and then its queue bound and
//! `queue_full_policy` apply (counted).

mod pacing;
mod watermarks;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use pacing::{Pacing, Step};
pub use watermarks::{high_water, Admission, Watermarks};

/// The one signal every consumer gives its producers.
pub trait Backpressure: Send + Sync + Debug {
    /// Whether producers feeding this consumer should still wait.
    fn pressured(&self) -> bool;
    /// A receiver that changes when the pressure is relieved. Subscribe before checking
    /// [`Backpressure::pressured`], so no relief is missed in between.
    fn relief(&self) -> watch::Receiver<u64>;
}

/// What a paced producer waits for.
pub type Pacer = Arc<dyn Backpressure>;

/// Longest a paced producer waits for one relief before it looks again: a reader that
/// stalls sends none, and stops holding its producers once its stall window has passed.
pub const RECHECK_AFTER: Duration = Duration::from_millis(20);

/// What to wait on while `pacer` holds a producer back: `None` if the pressure is already
/// gone (subscribed before checking, so a relief in between is not missed).
pub fn relief_of(pacer: &dyn Backpressure) -> Option<watch::Receiver<u64>> {
    let rx = pacer.relief();
    pacer.pressured().then_some(rx)
}

/// Resolves on the next relief `rx` announces, or after [`RECHECK_AFTER`].
pub async fn relief_or_recheck(mut rx: watch::Receiver<u64>) {
    let _ = tokio::time::timeout(RECHECK_AFTER, rx.changed()).await;
}
