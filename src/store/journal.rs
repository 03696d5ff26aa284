//! The seam for a durable session store: where the changes of persistent sessions go.
//!
//! A persistent session (CleanSession 0) records every change to it as a
//! [`crate::session::Change`] (see `session/change.rs`); the [`super::SessionStore`] hands
//! them, in order and per session, to the [`SessionJournal`] it was given. Without one (the
//! in-memory broker) nothing is recorded at all. A durable backend appends them and replays
//! them on start.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use super::Stamp;
use crate::message::Message;
use crate::session::Change;

/// A wait for what was appended to become durable (see [`SessionJournal::durable`]).
pub type SyncWait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the changes of persistent sessions are appended.
pub trait SessionJournal: Send + Sync + Debug {
    /// Appends `changes` of the session of `client_id`, oldest first. Called with that
    /// session's lock held, so the calls for one session come in the order the changes were
    /// made: it must only queue the changes (never block, never lock a session).
    fn append(&self, client_id: &str, changes: Vec<Change>);

    /// A wait that ends once everything appended so far (by any caller) is as durable as
    /// the store promises (with `sync = "always"`: on disk, fsynced), or `None` when nothing
    /// appended is still pending. An acknowledgement of a message a stored session holds
    /// waits on it: acknowledged means kept.
    fn durable(&self) -> Option<SyncWait> {
        None
    }
}

/// Where the retained messages go, to be kept across a restart.
pub trait RetainedJournal: Send + Sync + Debug {
    /// `msg` is now the retained message of its topic, with `stamp` (the cluster's order).
    fn set(&self, msg: &Message, stamp: &Stamp);
    /// The retained message of `topic` was cleared (an empty retained PUBLISH), at `stamp`.
    fn clear(&self, topic: &str, stamp: &Stamp);
}
