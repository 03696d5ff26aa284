//! What routing one message reports back to its publisher: deliveries queued, and the
//! pressure (a filling subscriber queue or route) that should pause it.

use std::sync::Arc;

use crate::session::Session;

/// What routing one published message did.
#[derive(Debug, Default)]
pub struct Routed {
    /// Local deliveries queued.
    pub queued: usize,
    /// A local subscriber whose queue is filling while it drains, or a route to a peer whose
    /// queue is filling: the publisher should pause until it is relieved (flow control
    /// instead of drops).
    pub pressure: Option<Pacer>,
    /// The longest queue of a local session after this message was queued to it.
    pub deepest: usize,
    /// A subscriber's connection that runs on the calling thread was woken.
    pub woke_here: bool,
}

/// What a paced publisher waits for.
#[derive(Debug, Clone)]
pub enum Pacer {
    Session(Arc<Session>),
    Route(Arc<crate::cluster::RouteGate>),
}

impl Pacer {
    /// A receiver that resolves when the pressure is relieved.
    pub fn relief(&self) -> tokio::sync::watch::Receiver<u64> {
        match self {
            Pacer::Session(s) => s.relief(),
            Pacer::Route(g) => g.relief(),
        }
    }

    /// Whether the pressure still holds.
    pub fn pressured(&self) -> bool {
        match self {
            Pacer::Session(s) => s.lock().pressured(),
            Pacer::Route(g) => g.pressured(),
        }
    }
}
