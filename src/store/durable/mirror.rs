//! What the durable store keeps in memory to turn a session's [`Change`]s into writes: per
//! session the metadata, the keys of its queue (oldest first) and of its in-flight window,
//! and the stored messages they name ([`Messages`]).
//!
//! A change names no key ("the front of the queue was sent as 7"), so the mirror holds the
//! queue's sequence numbers to know which record it moves.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::key::Key;
pub(super) use super::messages::Messages;
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
    pub inflight: HashMap<u16, (u64, Option<u64>), Seeded>,
    /// Inbound QoS 2 ids awaiting PUBREL.
    pub qos2: HashSet<u16, Seeded>,
    /// Filter → the number of its `subscriptions` record (`meta.subscriptions` stays empty:
    /// a change writes one record, not the whole list).
    pub subs: HashMap<String, u64, Seeded>,
    pub next_sub: u64,
}

/// Session keys are client ids and packet ids, a client's input: a seeded hash of good
/// quality (far cheaper than SipHash on the message path, which looks sessions up several
/// times per message).
type Seeded = foldhash::quality::RandomState;

/// Everything the store keeps in memory.
#[derive(Debug, Default)]
pub(super) struct Mirror {
    pub sessions: HashMap<String, SessionMirror, Seeded>,
    pub msgs: Messages,
}

impl Mirror {
    /// The writes `changes` of `client_id` make, applied to the mirror.
    pub fn apply(&mut self, client_id: &str, changes: Vec<Change>) -> Vec<Op> {
        // Most changes make two ops (a message and its queue entry; a queue entry moved to
        // the in-flight window; an acknowledgement and its message's release).
        let mut ops = Vec::with_capacity(2 * changes.len());
        let mut meta_dirty = false;
        let mut created = false;
        let mut changes = changes.into_iter().peekable();
        while let Some(first) = changes.peek() {
            if let Change::Ended = first {
                changes.next();
                if let Some(s) = self.sessions.remove(client_id) {
                    end(&mut self.msgs, client_id, s, &mut ops);
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
            // One lookup for the whole run of changes up to the next `Ended`.
            let Some(s) = self.sessions.get_mut(client_id) else {
                break;
            };
            while let Some(c) = changes.next_if(|c| !matches!(c, Change::Ended)) {
                meta_dirty |= change(s, &mut self.msgs, client_id, c, &mut ops);
            }
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

    /// Deletes the queue and backlog entries of session `id` that `gone` picks (by sequence
    /// and entry), releasing their messages.
    pub fn drop_queued(&mut self, id: &str, gone: impl Fn(u64, &Entry) -> bool, ops: &mut Vec<Op>) {
        if let Some(s) = self.sessions.get_mut(id) {
            drop_queued(s, &mut self.msgs, id, gone, ops);
        }
    }

    /// Lets go of the messages whose jobs are written: every job up to `written`.
    pub fn written(&mut self, written: u64) {
        self.msgs.written(written);
    }

    /// See [`Messages::watch`].
    pub fn watch(&mut self, m: &Arc<Message>, w: &Arc<tokio::sync::Notify>) -> bool {
        self.msgs.watch(m, w)
    }

    /// The message `id` if it is still in memory somewhere.
    pub fn in_memory(&self, id: u64) -> Option<Arc<Message>> {
        self.msgs.in_memory(id)
    }

    /// How many messages are held (for tests and reports).
    pub fn message_count(&self) -> usize {
        self.msgs.count()
    }
}

/// Applies one change to session `s` (named `id`); true if its metadata changed.
fn change(
    s: &mut SessionMirror,
    msgs: &mut Messages,
    id: &str,
    c: Change,
    ops: &mut Vec<Op>,
) -> bool {
    match c {
        Change::Subscribed { filter, grant } => {
            let value = record::encode_sub(&filter, &grant);
            match s.subs.get(&filter) {
                // A replaced subscription keeps its number, so its place.
                Some(&n) => ops.push(Op::put(
                    Part::Subscriptions,
                    Key::session(id, &n.to_be_bytes()),
                    value,
                )),
                None => {
                    let n = s.next_sub;
                    s.next_sub += 1;
                    s.subs.insert(filter, n);
                    // Numbers are never reused: this creates the key.
                    ops.push(Op::create(
                        Part::Subscriptions,
                        Key::session(id, &n.to_be_bytes()),
                        value,
                    ));
                }
            }
            false
        }
        Change::Unsubscribed { filter } => {
            if let Some(n) = s.subs.remove(&filter) {
                ops.push(Op::delete(
                    Part::Subscriptions,
                    Key::session(id, &n.to_be_bytes()),
                ));
            }
            false
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
                drop_queued(s, msgs, id, |_, e| e.qos == QoS::AtMostOnce, ops);
            }
            true
        }
        Change::Enqueued(d) => {
            enqueue(s, msgs, id, &d, false, ops);
            false
        }
        Change::Backlogged(d) => {
            enqueue(s, msgs, id, &d, true, ops);
            false
        }
        Change::DroppedOldest => {
            if let Some((seq, e)) = s.queue.pop_front() {
                ops.push(Op::delete(
                    Part::Queue,
                    Key::session(id, &seq.to_be_bytes()),
                ));
                msgs.release(e.msg, ops);
            }
            false
        }
        Change::Sent { pkid } => {
            let Some((seq, mut e)) = s.queue.pop_front().or_else(|| s.backlog.pop_front()) else {
                return false;
            };
            e.backlog = false;
            ops.push(Op::delete(
                Part::Queue,
                Key::session(id, &seq.to_be_bytes()),
            ));
            if pkid == 0 {
                msgs.release(e.msg, ops);
            } else {
                let key = Key::session(id, &pkid.to_be_bytes());
                let msg = e.msg;
                match s.inflight.insert(pkid, (seq, Some(msg))) {
                    None => ops.push(Op::create_value(Part::Inflight, key, Value::Sent(seq, e))),
                    Some((_, old)) => {
                        let value = record::encode_inflight(seq, Some(&e));
                        ops.push(Op::put(Part::Inflight, key, value));
                        // A pkid still held (it should not be) gives its message up.
                        if let Some(old) = old {
                            msgs.release(old, ops);
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
                    msgs.release(m, ops);
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
                    msgs.release(m, ops);
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
fn enqueue(
    s: &mut SessionMirror,
    msgs: &mut Messages,
    id: &str,
    d: &Delivery,
    backlog: bool,
    ops: &mut Vec<Op>,
) {
    let msg = msgs.intern(d, ops);
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
fn end(msgs: &mut Messages, id: &str, s: SessionMirror, ops: &mut Vec<Op>) {
    for (seq, e) in s.queue.into_iter().chain(s.backlog) {
        ops.push(Op::delete(
            Part::Queue,
            Key::session(id, &seq.to_be_bytes()),
        ));
        msgs.release(e.msg, ops);
    }
    for (pkid, (_, msg)) in s.inflight {
        ops.push(Op::delete(
            Part::Inflight,
            Key::session(id, &pkid.to_be_bytes()),
        ));
        if let Some(m) = msg {
            msgs.release(m, ops);
        }
    }
    for pkid in s.qos2 {
        ops.push(Op::delete(
            Part::Qos2,
            Key::session(id, &pkid.to_be_bytes()),
        ));
    }
    for n in s.subs.into_values() {
        ops.push(Op::delete(
            Part::Subscriptions,
            Key::session(id, &n.to_be_bytes()),
        ));
    }
    ops.push(Op::delete(Part::Sessions, id.as_bytes()));
}

/// Deletes the queue and backlog entries of session `id` that `gone` picks (by sequence
/// and entry), releasing their messages.
fn drop_queued(
    s: &mut SessionMirror,
    msgs: &mut Messages,
    id: &str,
    gone: impl Fn(u64, &Entry) -> bool,
    ops: &mut Vec<Op>,
) {
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
        msgs.release(msg, ops);
    }
}
