//! Session and retained-message state, behind a narrow interface.
//!
//! Owns which sessions exist (by client id) and which retained messages are held. Everything
//! that creates, replaces, expires or discards them goes through here, so a durable embedded
//! store can later back the same interface without touching the connection or router code:
//! every change to a persistent session reaches a [`SessionJournal`], and a session ends
//! through one path ([`SessionStore::ended`], called by `Router::end_session`).

pub mod durable;
mod journal;
mod recovered;
mod restore;
mod retained;
mod sessions;

pub use journal::{RetainedJournal, SessionJournal, SyncWait};
pub use recovered::{
    Recovered, RecoveredDelivery, RecoveredInflight, RecoveredMessage, RecoveredSession,
};
pub use restore::{Restored, RestoredSession};
pub use retained::{RetainOutcome, RetainedStore, Stamp};
pub use sessions::{Attached, DetachOutcome, SessionStore, StoreError, WritesHeld};
