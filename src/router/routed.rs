//! What routing one message reports back to its producer: deliveries queued, the consumer
//! that asks it to pause, and what could not be delivered yet (the remainder it retries).

use std::sync::Arc;

use smallvec::SmallVec;

use crate::flow::Pacer;
use crate::message::{Delivery, Message};
use crate::session::Session;
use crate::topic::GroupKey;

/// What routing one message did.
#[derive(Debug, Default)]
pub struct Routed {
    /// Local deliveries queued.
    pub queued: usize,
    /// A consumer (a local session filling while it drains, a full group, a route whose
    /// queue fills) that asks the producer to pause until it is relieved: flow control
    /// instead of drops.
    pub pressure: Option<Pacer>,
    /// Deliveries refused by full queues whose consumers still read: the producer keeps them
    /// and hands them to [`crate::router::Router::resume`] once relieved.
    pub remainder: Option<Remainder>,
    /// The longest queue of a local session after this message was queued to it.
    pub deepest: usize,
    /// A subscriber's connection that runs on the calling thread was woken.
    pub woke_here: bool,
    /// The message routed (a client's: see [`crate::router::Router::publish`]), for an
    /// acknowledgement that may go out once every stored session has it delivered.
    pub msg: Option<Arc<Message>>,
}

/// The part of a routed message still to deliver.
#[derive(Debug)]
pub struct Remainder {
    pub(super) msg: Arc<Message>,
    pub(super) targets: SmallVec<[Target; 2]>,
}

/// One delivery still owed.
#[derive(Debug)]
pub(super) enum Target {
    /// To this session, as prepared (QoS, flags).
    Session(Arc<Session>, Delivery),
    /// To one member of this consumer group, chosen again on retry.
    Group(Arc<GroupKey>),
}

impl Routed {
    /// Records a delivery `s` refused for now; `s` is what the producer waits for.
    pub(super) fn blocked(&mut self, msg: &Arc<Message>, target: Target, pacer: Pacer) {
        let rem = self.remainder.get_or_insert_with(|| Remainder {
            msg: msg.clone(),
            targets: SmallVec::new(),
        });
        rem.targets.push(target);
        // The first full consumer is the one waited for; once it is relieved, the retry
        // meets the next (if still full) and waits for it.
        if self.pressure.is_none() {
            self.pressure = Some(pacer);
        }
    }
}
