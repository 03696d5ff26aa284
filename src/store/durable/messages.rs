//! The mirror's table of stored messages: per message its id and reference count, and for
//! a message still in memory somewhere, its `Arc` (found again by address) and its waiters.
//!
//! Messages are stored once: the `Arc<Message>` a delivery shares with every other
//! session's delivery of it is found by its address ([`Arc::as_ptr`]); the table holds a
//! [`Weak`] to it, which keeps the allocation (not the payload) alive, so the address cannot
//! be reused by another message while it is known. Once its write is done and no one holds
//! the `Arc` any more (no later entry can name it), only its id and count stay. The
//! reference count of a message is the number of queue and in-flight entries naming it; it
//! is not written (it is counted again on open), so it cannot disagree with the entries. At
//! 0 the message record is deleted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};

use tokio::sync::Notify;

use super::key::Key;
use super::mirror::{Op, Value};
use super::Part;
use crate::message::{Delivery, Message};

/// What the table keeps of a stored message while it is still in memory somewhere (its
/// write pending, a session holding its `Arc`, or a publisher waiting on it). Every other
/// stored message costs only its id and count in [`Messages::counts`], so a store holding
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

/// Message ids are the store's own sequence and addresses are the allocator's, never a
/// client's input: a fast hash is safe.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The stored messages (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Messages {
    /// Stored message id → how many entries name it.
    pub counts: FastMap<u64, u32>,
    /// The stored messages still in memory somewhere.
    live: FastMap<u64, Live>,
    /// `Arc::as_ptr` of a live message → its id.
    by_ptr: FastMap<usize, u64>,
    /// The id the next message gets.
    pub next: u64,
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
fn forget_ptr(by_ptr: &mut FastMap<usize, u64>, w: &Weak<Message>, id: u64) {
    let p = w.as_ptr() as usize;
    if by_ptr.get(&p) == Some(&id) {
        by_ptr.remove(&p);
    }
}

impl Messages {
    /// The id of `d`'s message, writing it first if this is its first entry.
    pub fn intern(&mut self, d: &Delivery, ops: &mut Vec<Op>) -> u64 {
        let p = ptr(&d.msg);
        if let Some(&id) = self.by_ptr.get(&p) {
            if let Some(count) = self.counts.get_mut(&id) {
                *count += 1;
                return id;
            }
        }
        let id = self.next;
        self.next += 1;
        // Ids are never reused: this creates the key.
        ops.push(Op::create_value(
            Part::Messages,
            Key::from(&id.to_be_bytes()[..]),
            Value::Message(d.msg.clone()),
        ));
        self.counts.insert(id, 1);
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
        let Some(count) = self.counts.get_mut(&id) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count > 0 {
            return;
        }
        self.counts.remove(&id);
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
        if !self.counts.get(id).is_some_and(|&count| count > 0) {
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
    pub fn count(&self) -> usize {
        self.counts.len()
    }
}
