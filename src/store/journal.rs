//! The seam for a durable session store: where the changes of persistent sessions go.
//!
//! A persistent session (CleanSession 0) records every change to it as a
//! [`crate::session::Change`] (see `session/change.rs`); the [`super::SessionStore`] hands
//! them, in order and per session, to the [`SessionJournal`] it was given. Without one (the
//! in-memory broker) nothing is recorded at all. A durable backend appends them and replays
//! them on start.

use std::fmt::Debug;

use crate::session::Change;

/// Where the changes of persistent sessions are appended.
pub trait SessionJournal: Send + Sync + Debug {
    /// Appends `changes` of the session of `client_id`, oldest first. Called with no session
    /// lock held; calls for one session never overlap (the store drains a session's journal
    /// under its lock and hands it on in order).
    fn append(&self, client_id: &str, changes: Vec<Change>);
}
