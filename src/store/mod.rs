//! Session and retained-message state, behind a narrow interface.
//!
//! Owns which sessions exist (by client id) and which retained messages are held. Everything
//! that creates, replaces, expires or discards them goes through here, so a durable embedded
//! store can later back the same interface without touching the connection or router code.

mod retained;
mod sessions;

pub use retained::{RetainOutcome, RetainedStore, Stamp};
pub use sessions::{Attached, DetachOutcome, SessionStore, StoreError};
