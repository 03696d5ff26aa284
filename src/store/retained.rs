//! Retained messages (spec §3.3.1.3): the last retained PUBLISH per topic, bounded, with the
//! last-writer-wins stamps a cluster uses to converge.
//!
//! Every entry carries a [`Stamp`] (wall-clock milliseconds, origin node). A local write always
//! wins on its own node: its stamp is at least one millisecond past the entry it replaces, so
//! a clock that steps backwards cannot make a node ignore its own clients. A replicated write
//! wins only with a larger stamp. Deletions leave a tombstone (bounded in number) so that a
//! delete and an older set arriving in either order converge to "deleted".

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use super::RetainedJournal;
use crate::message::Message;
use crate::metrics::{self, Metrics};
use crate::topic::RetainTree;

/// Tombstones kept for deleted retained topics; the oldest go first beyond this.
const MAX_TOMBSTONES: usize = 10_000;

/// When and where a retained write happened; ordered by (ts, origin).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    pub ts: u64,
    pub origin: Arc<str>,
}

/// Everything a peer needs to converge: held messages and tombstones, each with its stamp.
#[derive(Debug, Default)]
pub struct RetainedSnapshot {
    pub held: Vec<(Arc<Message>, Stamp)>,
    pub deleted: Vec<(String, Stamp)>,
}

/// What happened to a PUBLISH with the retain flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetainOutcome {
    Stored(Stamp),
    /// Empty payload: the retained message for the topic was removed [MQTT-3.3.1-10].
    Removed(Stamp),
    /// Refused by `retain.max_messages`, `max_payload_size` or `max_bytes`, or retain is
    /// disabled.
    Refused,
    /// A replicated write older than what this node holds (last writer wins).
    Stale,
}

#[derive(Debug)]
struct Entry {
    msg: Arc<Message>,
    stamp: Stamp,
}

/// The retained-message store.
#[derive(Debug)]
pub struct RetainedStore {
    // Readers (SUBSCRIBE look-ups) share; a retained PUBLISH takes it briefly to write.
    tree: RwLock<RetainTree<Entry>>,
    // Deleted topics and when; taken only on the (rare) retained write path.
    tombstones: Mutex<HashMap<String, Stamp>>,
    node: RwLock<Arc<str>>,
    enabled: bool,
    max_messages: usize,
    max_payload: usize,
    max_bytes: usize,
    /// Topic and payload bytes held; changed only under the tree's write lock.
    bytes: AtomicUsize,
    metrics: Arc<Metrics>,
    /// Where every write goes to be kept across a restart (a durable store), in the order
    /// the writes are applied (called under the tree's write lock; it only queues).
    journal: Option<Arc<dyn RetainedJournal>>,
}

/// What one retained message counts against `retain.max_bytes`.
fn size_of(msg: &Message) -> usize {
    msg.topic.len() + msg.payload.len()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RetainedStore {
    /// An empty store with the configured bounds.
    pub fn new(
        enabled: bool,
        max_messages: usize,
        max_payload: usize,
        max_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        RetainedStore {
            tree: RwLock::new(RetainTree::default()),
            tombstones: Mutex::new(HashMap::new()),
            node: RwLock::new(Arc::from("")),
            enabled,
            max_messages,
            max_payload,
            max_bytes,
            bytes: AtomicUsize::new(0),
            metrics,
            journal: None,
        }
    }

    /// Keeps every write in `journal` too (see [`RetainedJournal`]).
    pub fn with_journal(mut self, journal: Option<Arc<dyn RetainedJournal>>) -> Self {
        self.journal = journal;
        self
    }

    /// Puts back a retained message a durable store kept, with its stamp (on start, before
    /// any client connects; not journaled again).
    pub fn restore(&self, msg: &Arc<Message>, stamp: Stamp) -> RetainOutcome {
        self.write(msg, Some(stamp.ts), stamp.origin, false)
    }

    /// Names the local node in the stamps of local writes (set when clustering starts).
    pub fn set_node(&self, node: Arc<str>) {
        *self.node.write() = node;
    }

    /// Stores, replaces or deletes the retained message for `msg.topic` from a local client
    /// [MQTT-3.3.1-5, -7, -10].
    pub fn apply(&self, msg: &Arc<Message>) -> RetainOutcome {
        let origin = self.node.read().clone();
        self.write(msg, None, origin, true)
    }

    /// Applies a write replicated from another node, if it is newer than what is held.
    pub fn apply_remote(&self, msg: &Arc<Message>, stamp: Stamp) -> RetainOutcome {
        self.write(msg, Some(stamp.ts), stamp.origin, true)
    }

    fn write(
        &self,
        msg: &Arc<Message>,
        remote_ts: Option<u64>,
        origin: Arc<str>,
        persist: bool,
    ) -> RetainOutcome {
        let journal = self.journal.as_deref().filter(|_| persist);
        let delete = msg.payload.is_empty();
        if !delete && (!self.enabled || msg.payload.len() > self.max_payload) {
            metrics::inc(&self.metrics.retained_rejected);
            return RetainOutcome::Refused;
        }
        let mut tree = self.tree.write();
        let mut tombs = self.tombstones.lock();
        let held = tree
            .get(&msg.topic)
            .map(|e| e.stamp.clone())
            .or_else(|| tombs.get(&msg.topic).cloned());
        let stamp = match remote_ts {
            Some(ts) => {
                let s = Stamp { ts, origin };
                if held.as_ref().is_some_and(|h| *h >= s) {
                    return RetainOutcome::Stale;
                }
                s
            }
            None => Stamp {
                ts: now_ms().max(held.map_or(0, |h| h.ts + 1)),
                origin,
            },
        };
        if delete {
            if let Some(old) = tree.remove(&msg.topic) {
                self.bytes.fetch_sub(size_of(&old.msg), Ordering::Relaxed);
                metrics::dec(&self.metrics.retained_current);
            }
            if tombs.len() >= MAX_TOMBSTONES && !tombs.contains_key(&msg.topic) {
                if let Some(oldest) = tombs
                    .iter()
                    .min_by(|a, b| a.1.cmp(b.1))
                    .map(|(k, _)| k.clone())
                {
                    tombs.remove(&oldest);
                    // On disk too, so the store's tombstones stay as bounded as these.
                    if let Some(j) = self.journal.as_deref() {
                        j.forget(&oldest);
                    }
                }
            }
            tombs.insert(msg.topic.clone(), stamp.clone());
            if let Some(j) = journal {
                j.clear(&msg.topic, &stamp);
            }
            return RetainOutcome::Removed(stamp);
        }
        let replaced = tree.get(&msg.topic).map(|e| size_of(&e.msg));
        let held_bytes = self.bytes.load(Ordering::Relaxed) - replaced.unwrap_or(0);
        let full = (tree.len() >= self.max_messages && replaced.is_none())
            || held_bytes + size_of(msg) > self.max_bytes;
        if full {
            metrics::inc(&self.metrics.retained_rejected);
            return RetainOutcome::Refused;
        }
        tombs.remove(&msg.topic);
        // Only QoS 0 is guaranteed to be kept [MQTT-3.3.1-7]: any QoS replaces the previous one.
        let entry = Entry {
            msg: msg.clone(),
            stamp: stamp.clone(),
        };
        self.bytes
            .store(held_bytes + size_of(msg), Ordering::Relaxed);
        if tree.insert(&msg.topic, entry).is_none() {
            metrics::inc(&self.metrics.retained_current);
        }
        if let Some(j) = journal {
            j.set(msg, &stamp);
        }
        RetainOutcome::Stored(stamp)
    }

    /// Every retained message whose topic matches `filter`.
    pub fn matching(&self, filter: &str) -> Vec<Arc<Message>> {
        let mut v = Vec::new();
        // An expired retained message is no longer sent [MQTT-3.3.2-5]; it is replaced or
        // cleared like any other, and counts against the bounds until then.
        let now = std::time::Instant::now();
        self.tree.read().for_each_match(filter, |e| {
            if !e.msg.expired(now) {
                v.push(e.msg.clone());
            }
        });
        v
    }

    /// Every retained message and tombstone with its stamp (for a peer that links up).
    pub fn snapshot(&self) -> RetainedSnapshot {
        let mut held = Vec::new();
        self.tree
            .read()
            .for_each_match("#", |e| held.push((e.msg.clone(), e.stamp.clone())));
        // `#` skips `$` topics [MQTT-4.7.2-1]; those replicate too.
        self.tree
            .read()
            .for_each_dollar(|e| held.push((e.msg.clone(), e.stamp.clone())));
        let tombs = self
            .tombstones
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        RetainedSnapshot {
            held,
            deleted: tombs,
        }
    }

    /// Topic and payload bytes held (what `retain.max_bytes` bounds).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.tree.read().len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
