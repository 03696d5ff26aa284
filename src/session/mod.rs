//! Per-client session state (spec §4.1) and the shared handle the router delivers into.
//!
//! Owns: subscriptions of one client, the bounded outbound queue, the QoS 1/2 in-flight
//! window and packet-id allocator, inbound QoS 2 ids, and the link to the connection that
//! currently serves the session. It never touches sockets or spawns tasks: the connection
//! task drives it, the router enqueues into it, both under its one short-held mutex.

mod change;
mod egress;
mod grant;
mod handle;
mod outbox;
mod state;

pub use change::{Change, JournaledCount};
pub use egress::{Egress, TopicAliases, MAX_OUTBOUND_ALIASES};
pub use grant::{Grant, SubIds};
pub use handle::{ClientMeta, ConnLink, KickReason, Paced, Session};
pub use outbox::Outbox;
pub use state::{
    EnqueueOutcome, FillResult, QueueFullPolicy, Readiness, SessionLimits, SessionState,
};
pub use state::{PageSource, PagedIn, Pager};
