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
use std::sync::Arc;

use super::Stamp;
use crate::message::Message;
use crate::session::{Change, PageSource, PagedIn};

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

    /// Until the matching [`SessionJournal::release_writes`], what is appended is kept back
    /// and then written as one atomic batch with everything appended meanwhile: the
    /// subscribers' copies of an inbound QoS 2 message and the publisher's packet id are
    /// kept together or not at all, so a crash can neither lose the message nor deliver a
    /// resent one twice [MQTT-4.3.3]. Holds nest (a count).
    fn hold_writes(&self) {}

    /// Ends one [`SessionJournal::hold_writes`].
    fn release_writes(&self) {}

    /// [`SessionJournal::durable`], or sooner: the wait also ends once none of `msgs` is
    /// held by a stored session any more (each was delivered and acknowledged, or dropped,
    /// everywhere it was queued), since then nothing a restart would need of them is left.
    /// An acknowledgement of QoS 1 messages that a connected subscriber takes at once then
    /// waits for that subscriber, not for the disk. The default waits for the disk.
    fn durable_or_delivered(&self, msgs: Vec<Arc<Message>>) -> Option<SyncWait> {
        let _ = msgs;
        self.durable()
    }

    /// Whether the journal can keep a session's queued deliveries on disk only and read
    /// them back ([`SessionJournal::page_in`]): the number of deliveries a connected session
    /// then keeps in memory (an offline one keeps none). `None` (the default): every queued
    /// delivery stays in memory.
    fn page_window(&self) -> Option<usize> {
        None
    }

    /// Whether the journal is past its disk bound: then a stored session whose client is
    /// offline takes no new message (see `session::PageSource::full`). The default: never.
    fn full(&self) -> bool {
        false
    }

    /// Appends `changes`, then reads back up to `max` queued deliveries of `client_id`'s
    /// session after the first `skip` (see `session::PageSource`). Only called when
    /// [`SessionJournal::page_window`] is `Some`.
    fn page_in(&self, client_id: &str, changes: Vec<Change>, skip: usize, max: usize) -> PagedIn {
        let _ = (skip, max);
        self.append(client_id, changes);
        PagedIn::default()
    }
}

/// A journal that pages, as a session's [`PageSource`].
#[derive(Debug)]
pub(super) struct JournalPages(pub Arc<dyn SessionJournal>);

impl PageSource for JournalPages {
    fn page_in(&self, client_id: &str, changes: Vec<Change>, skip: usize, max: usize) -> PagedIn {
        self.0.page_in(client_id, changes, skip, max)
    }

    fn full(&self) -> bool {
        self.0.full()
    }
}

/// Where the retained messages go, to be kept across a restart.
pub trait RetainedJournal: Send + Sync + Debug {
    /// `msg` is now the retained message of its topic, with `stamp` (the cluster's order).
    fn set(&self, msg: &Message, stamp: &Stamp);
    /// The retained message of `topic` was cleared (an empty retained PUBLISH), at `stamp`:
    /// kept as a tombstone, so the clear still wins over an older message after a restart.
    fn clear(&self, topic: &str, stamp: &Stamp);
    /// The tombstone of `topic` is let go (the retained store keeps a bounded number).
    fn forget(&self, topic: &str);
}
