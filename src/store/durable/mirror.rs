//! What the durable store keeps in memory to turn a session's [`Change`]s into writes: per
//! session the metadata, the keys of its queue (oldest first) and of its in-flight window,
//! and per stored message its id and reference count.
//!
//! A change names no key ("the front of the queue was sent as 7"), so the mirror holds the
//! queue's sequence numbers to know which record it moves. Messages are stored once: the
//! `Arc<Message>` a delivery shares with every other session's delivery of it is found by its
//! address ([`Arc::as_ptr`]); the mirror holds a [`Weak`] to it, which keeps the allocation
//! (not the payload) alive, so the address cannot be reused by another message while it is
//! known. Once its write is done and no one holds the `Arc` any more (no later entry can name
//! it), only its id and count stay. The reference count of a message is the
//! number of queue and in-flight entries
//! naming it; it is not written (it is counted again on open), so it cannot disagree with the
//! entries. At 0 the message record is deleted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};

use tokio::sync::Notify;

use super::key::Key;
use super::record::{self, Entry, Meta};
use super::Part;
use crate::codec::QoS;
use crate::message::{Delivery, Message};
use crate::session::Change;

/// One write the writer thread applies: put `value` at `key` of `part`, or delete it.
#[derive(Debug)]
pub(super) struct Op {
    pub part: Part,
    pub key: Key,
    pub value: Option<Value>,
    /// A put that creates its key: every op on the key before it ended with a deletion (or
    /// there was none), so nothing of it is on disk (see `writer::last_per_key`).
    pub creates: bool,
}

/// What a put writes. The records of the message path (the message, its queue entry, its
/// in-flight record) are encoded by the writer thread, and only if the batch still writes
/// them: those of a message delivered and acknowledged before its batch is written are
/// never encoded at all (see `writer::last_per_key`).
#[derive(Debug)]
pub(super) enum Value {
    Bytes(Vec<u8>),
    Message(Arc<Message>),
    /// A `queue` record.
    Queued(Entry, record::Facts),
    /// An `inflight` record of a PUBLISH sent: its order and entry.
    Sent(u64, Entry),
}

impl Value {
    /// The bytes written.
    pub fn encoded(&self) -> std::borrow::Cow<'_, [u8]> {
        use std::borrow::Cow;
        match self {
            Value::Bytes(b) => Cow::Borrowed(b),
            Value::Message(m) => Cow::Owned(record::encode_message(m)),
            Value::Queued(e, f) => Cow::Owned(record::encode_queued(e, f)),
            Value::Sent(order, e) => Cow::Owned(record::encode_inflight(*order, Some(e))),
        }
    }

    /// About how many bytes it holds in memory until written.
    pub fn weight(&self) -> usize {
        match self {
            Value::Bytes(b) => b.len(),
            Value::Message(m) => m.topic.len() + m.payload.len(),
            Value::Queued(e, _) | Value::Sent(_, e) => 48 + 4 * e.sub_ids.len(),
        }
    }
}

impl Op {
    /// About how many bytes it holds in memory until written.
    pub fn weight(&self) -> usize {
        // The key, the value, and the op itself.
        self.key.as_slice().len() + self.value.as_ref().map_or(0, Value::weight) + 48
    }

    pub fn put(part: Part, key: impl Into<Key>, value: Vec<u8>) -> Op {
        Op {
            part,
            key: key.into(),
            value: Some(Value::Bytes(value)),
            creates: false,
        }
    }

    /// A put that creates its key (see [`Op::creates`]).
    pub fn create(part: Part, key: impl Into<Key>, value: Vec<u8>) -> Op {
        Op::create_value(part, key, Value::Bytes(value))
    }

    pub fn create_value(part: Part, key: impl Into<Key>, value: Value) -> Op {
        Op {
            part,
            key: key.into(),
            value: Some(value),
            creates: true,
        }
    }
    pub fn delete(part: Part, key: impl Into<Key>) -> Op {
        Op {
            part,
            key: key.into(),
            value: None,
            creates: false,
        }
    }
}

/// One session as the store holds it.
#[derive(Debug, Default)]
pub(super) struct SessionMirror {
    pub meta: Meta,
    /// (sequence, entry), oldest first: the keys of its `queue` records.
    pub queue: VecDeque<(u64, Entry)>,
    /// The same for the backlog: sent once the queue is empty.
    pub backlog: VecDeque<(u64, Entry)>,
    pub next_seq: u64,
    /// pkid → (order sent, message id until PUBREC).
    pub inflight: HashMap<u16, (u64, Option<u64>)>,
    /// Inbound QoS 2 ids awaiting PUBREL.
    pub qos2: HashSet<u16>,
}

/// What the mirror keeps of a stored message while it is still in memory somewhere (its
/// write pending, a session holding its `Arc`, or a publisher waiting on it). Every other
/// stored message costs only its id and count in [`Mirror::messages`], so a store holding
/// millions of messages offline keeps a few dozen bytes of each in memory.
#[derive(Debug, Default)]
struct Live {
    arc: Option<Weak<Message>>,
    /// Held until the job that writes the message is written: a session that pages a
    /// delivery out at once must be able to read it back before the engine has it.
    unwritten: Option<Arc<Message>>,
    /// Told when the last entry naming the message goes (see `delivered.rs`).
    watchers: Vec<Arc<Notify>>,
}

/// Message ids are the store's own sequence, never a client's input: a fast hash is safe.
type IdMap<V> = HashMap<u64, V, foldhash::fast::RandomState>;

/// Everything the store keeps in memory.
#[derive(Debug, Default)]
pub(super) struct Mirror {
    pub sessions: HashMap<String, SessionMirror>,
    /// Stored message id → how many entries name it.
    pub messages: IdMap<u32>,
    /// The stored messages still in memory somewhere.
    live: IdMap<Live>,
    /// `Arc::as_ptr` of a live message → its id.
    by_ptr: HashMap<usize, u64>,
    pub next_msg: u64,
    /// (jobs sent when it was interned, message id) of the messages holding `unwritten`,
    /// oldest first: the job that writes it is a later one.
    unwritten: VecDeque<(u64, u64)>,
    /// The number of jobs sent so far (set by the store before each `apply`).
    pub jobs_sent: u64,
}

fn ptr(m: &Arc<Message>) -> usize {
    Arc::as_ptr(m) as usize
}

/// Forgets the address of message `id`'s `Arc` (unless another message has it now).
fn forget_ptr(by_ptr: &mut HashMap<usize, u64>, w: &Weak<Message>, id: u64) {
    let p = w.as_ptr() as usize;
    if by_ptr.get(&p) == Some(&id) {
        by_ptr.remove(&p);
    }
}

impl Mirror {
    /// The writes `changes` of `client_id` make, applied to the mirror.
    pub fn apply(&mut self, client_id: &str, changes: Vec<Change>) -> Vec<Op> {
        let mut ops = Vec::new();
        let mut meta_dirty = false;
        let mut created = false;
        for c in changes {
            if let Change::Ended = c {
                if let Some(s) = self.sessions.remove(client_id) {
                    self.end(client_id, s, &mut ops);
                }
                meta_dirty = false;
                created = false;
                continue;
            }
            if !self.sessions.contains_key(client_id) {
                self.sessions
                    .insert(client_id.to_owned(), SessionMirror::default());
                meta_dirty = true;
                created = true;
            }
            meta_dirty |= self.change(client_id, c, &mut ops);
        }
        if meta_dirty {
            if let Some(s) = self.sessions.get(client_id) {
                let v = record::encode_meta(&s.meta);
                let key = Key::from(client_id.as_bytes());
                ops.push(match created {
                    true => Op::create(Part::Sessions, key, v),
                    false => Op::put(Part::Sessions, key, v),
                });
            }
        }
        ops
    }

    /// Applies one change to a session that exists; true if its metadata changed.
    fn change(&mut self, id: &str, c: Change, ops: &mut Vec<Op>) -> bool {
        let Some(s) = self.sessions.get_mut(id) else {
            return false;
        };
        match c {
            Change::Subscribed { filter, grant } => {
                match s.meta.subscriptions.iter_mut().find(|(f, _)| *f == filter) {
                    Some(entry) => entry.1 = grant,
                    None => s.meta.subscriptions.push((filter, grant)),
                }
                true
            }
            Change::Unsubscribed { filter } => {
                s.meta.subscriptions.retain(|(f, _)| *f != filter);
                true
            }
            Change::WillSet(w) => {
                s.meta.will = w;
                true
            }
            Change::ExpirySet(e) => {
                s.meta.expiry = e;
                true
            }
            Change::Attached { username } => {
                s.meta.username = username.map(|u| u.to_string());
                s.meta.attached = true;
                s.meta.offline_since = None;
                true
            }
            Change::Detached { at, drop_qos0 } => {
                s.meta.attached = false;
                s.meta.offline_since = Some(at);
                if drop_qos0 {
                    // As the session did: its queue must stay the one the changes after
                    // this name ("the front was sent").
                    self.drop_queued(id, |_, e| e.qos == QoS::AtMostOnce, ops);
                }
                true
            }
            Change::Enqueued(d) => {
                self.enqueue(id, &d, false, ops);
                false
            }
            Change::Backlogged(d) => {
                self.enqueue(id, &d, true, ops);
                false
            }
            Change::DroppedOldest => {
                if let Some((seq, e)) = s.queue.pop_front() {
                    ops.push(Op::delete(
                        Part::Queue,
                        Key::session(id, &seq.to_be_bytes()),
                    ));
                    self.release(e.msg, ops);
                }
                false
            }
            Change::Sent { pkid } => {
                let Some((seq, mut e)) = s.queue.pop_front().or_else(|| s.backlog.pop_front())
                else {
                    return false;
                };
                e.backlog = false;
                ops.push(Op::delete(
                    Part::Queue,
                    Key::session(id, &seq.to_be_bytes()),
                ));
                if pkid == 0 {
                    self.release(e.msg, ops);
                } else {
                    let key = Key::session(id, &pkid.to_be_bytes());
                    let msg = e.msg;
                    match s.inflight.insert(pkid, (seq, Some(msg))) {
                        None => {
                            ops.push(Op::create_value(Part::Inflight, key, Value::Sent(seq, e)))
                        }
                        Some((_, old)) => {
                            let value = record::encode_inflight(seq, Some(&e));
                            ops.push(Op::put(Part::Inflight, key, value));
                            // A pkid still held (it should not be) gives its message up.
                            if let Some(old) = old {
                                self.release(old, ops);
                            }
                        }
                    }
                }
                false
            }
            Change::Acked { pkid } => {
                if let Some((_, msg)) = s.inflight.remove(&pkid) {
                    ops.push(Op::delete(
                        Part::Inflight,
                        Key::session(id, &pkid.to_be_bytes()),
                    ));
                    if let Some(m) = msg {
                        self.release(m, ops);
                    }
                }
                false
            }
            Change::Received { pkid } => {
                if let Some((order, msg)) = s.inflight.get_mut(&pkid) {
                    let key = Key::session(id, &pkid.to_be_bytes());
                    ops.push(Op::put(
                        Part::Inflight,
                        key,
                        record::encode_inflight(*order, None),
                    ));
                    if let Some(m) = msg.take() {
                        self.release(m, ops);
                    }
                }
                false
            }
            Change::Qos2Arrived { pkid } => {
                let key = Key::session(id, &pkid.to_be_bytes());
                ops.push(match s.qos2.insert(pkid) {
                    true => Op::create(Part::Qos2, key, record::encode_marker()),
                    false => Op::put(Part::Qos2, key, record::encode_marker()),
                });
                false
            }
            Change::Released { pkid } => {
                s.qos2.remove(&pkid);
                let key = Key::session(id, &pkid.to_be_bytes());
                ops.push(Op::delete(Part::Qos2, key));
                false
            }
            Change::Ended => false,
        }
    }

    /// Queues `d` for session `id` (which exists), in its backlog if `backlog`.
    fn enqueue(&mut self, id: &str, d: &Delivery, backlog: bool, ops: &mut Vec<Op>) {
        let msg = self.intern(d, ops);
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let seq = s.next_seq;
        s.next_seq += 1;
        let entry = Entry {
            backlog,
            msg,
            qos: d.qos,
            retain: d.retain,
            sub_ids: d.sub_ids.as_deref().unwrap_or_default().to_vec(),
            group: d.group.clone(),
        };
        let key = Key::session(id, &seq.to_be_bytes());
        let facts = record::Facts::of(&d.msg, record::wall_expiry(&d.msg));
        // Sequence numbers are never reused: this creates the key.
        ops.push(Op::create_value(
            Part::Queue,
            key,
            Value::Queued(entry.clone(), facts),
        ));
        match backlog {
            false => s.queue.push_back((seq, entry)),
            true => s.backlog.push_back((seq, entry)),
        }
    }

    /// Deletes every record of session `id`.
    fn end(&mut self, id: &str, s: SessionMirror, ops: &mut Vec<Op>) {
        for (seq, e) in s.queue.into_iter().chain(s.backlog) {
            ops.push(Op::delete(
                Part::Queue,
                Key::session(id, &seq.to_be_bytes()),
            ));
            self.release(e.msg, ops);
        }
        for (pkid, (_, msg)) in s.inflight {
            ops.push(Op::delete(
                Part::Inflight,
                Key::session(id, &pkid.to_be_bytes()),
            ));
            if let Some(m) = msg {
                self.release(m, ops);
            }
        }
        for pkid in s.qos2 {
            ops.push(Op::delete(
                Part::Qos2,
                Key::session(id, &pkid.to_be_bytes()),
            ));
        }
        ops.push(Op::delete(Part::Sessions, id.as_bytes()));
    }

    /// The id of `d`'s message, writing it first if this is its first entry.
    fn intern(&mut self, d: &Delivery, ops: &mut Vec<Op>) -> u64 {
        let p = ptr(&d.msg);
        if let Some(&id) = self.by_ptr.get(&p) {
            if let Some(count) = self.messages.get_mut(&id) {
                *count += 1;
                return id;
            }
        }
        let id = self.next_msg;
        self.next_msg += 1;
        // Ids are never reused: this creates the key.
        ops.push(Op::create_value(
            Part::Messages,
            Key::from(&id.to_be_bytes()[..]),
            Value::Message(d.msg.clone()),
        ));
        self.messages.insert(id, 1);
        self.live.insert(
            id,
            Live {
                arc: Some(Arc::downgrade(&d.msg)),
                unwritten: Some(d.msg.clone()),
                watchers: Vec::new(),
            },
        );
        self.unwritten.push_back((self.jobs_sent, id));
        self.by_ptr.insert(p, id);
        id
    }

    /// One entry naming message `id` is gone; the last one deletes it.
    pub fn release(&mut self, id: u64, ops: &mut Vec<Op>) {
        let Some(count) = self.messages.get_mut(&id) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count > 0 {
            return;
        }
        self.messages.remove(&id);
        if let Some(l) = self.live.remove(&id) {
            for w in &l.watchers {
                w.notify_one();
            }
            if let Some(w) = l.arc {
                forget_ptr(&mut self.by_ptr, &w, id);
            }
        }
        ops.push(Op::delete(Part::Messages, &id.to_be_bytes()[..]));
    }

    /// Deletes the queue and backlog entries of session `id` that `gone` picks (by sequence
    /// and entry), releasing their messages.
    pub fn drop_queued(&mut self, id: &str, gone: impl Fn(u64, &Entry) -> bool, ops: &mut Vec<Op>) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let mut dropped = Vec::new();
        for q in [&mut s.queue, &mut s.backlog] {
            q.retain(|(seq, e)| {
                let drop = gone(*seq, e);
                if drop {
                    dropped.push((*seq, e.msg));
                }
                !drop
            });
        }
        for (seq, msg) in dropped {
            ops.push(Op::delete(
                Part::Queue,
                Key::session(id, &seq.to_be_bytes()),
            ));
            self.release(msg, ops);
        }
    }

    /// Lets go of the messages whose jobs are written: every job up to `written`.
    pub fn written(&mut self, written: u64) {
        while let Some(&(sent, id)) = self.unwritten.front() {
            // Interned after `sent` jobs: written by job `sent + 1` or later.
            if sent >= written {
                break;
            }
            self.unwritten.pop_front();
            let Some(l) = self.live.get_mut(&id) else {
                continue;
            };
            l.unwritten = None;
            // On disk now, and if no one holds its `Arc` any more, no later entry can name
            // it by that `Arc`: forgetting it keeps the mirror's memory per message to its
            // count, not the message's allocation (a session reads it back from disk), so
            // memory does not grow with what is queued offline.
            if l.arc.as_ref().is_some_and(|w| w.strong_count() == 0) {
                if let Some(w) = l.arc.take() {
                    forget_ptr(&mut self.by_ptr, &w, id);
                }
            }
            if l.arc.is_none() && l.watchers.is_empty() {
                self.live.remove(&id);
            }
        }
    }

    /// Registers `w` to be told when live message `m` is named by no entry any more; false
    /// when it is not (or never was) held.
    pub fn watch(&mut self, m: &Arc<Message>, w: &Arc<Notify>) -> bool {
        let Some(id) = self.by_ptr.get(&ptr(m)) else {
            return false;
        };
        if !self.messages.get(id).is_some_and(|&count| count > 0) {
            return false;
        }
        let l = self.live.entry(*id).or_default();
        // One registration per waiter and message.
        if !l.watchers.iter().any(|x| Arc::ptr_eq(x, w)) {
            l.watchers.push(w.clone());
        }
        true
    }

    /// The message `id` if it is still in memory somewhere.
    pub fn in_memory(&self, id: u64) -> Option<Arc<Message>> {
        let l = self.live.get(&id)?;
        l.unwritten
            .clone()
            .or_else(|| l.arc.as_ref().and_then(Weak::upgrade))
    }

    /// How many messages are held (for tests and reports).
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }
}
