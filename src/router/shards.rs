//! The sharded subscription trie: every interest this node knows of, local sessions and
//! remote nodes alike (a node is a subscriber of the filters its peers advertise, as NATS
//! keeps routes in its sublist), matched in one walk per publish.
//!
//! Filters are spread over shards by their first level, so subscribes to different
//! top-level topics never contend and a publish read-locks only two shards: the one for its
//! topic's first level and the one holding filters that start with a wildcard. Inserting the
//! first local subscriber of a filter, and removing the last, is reported to the caller:
//! that is when peers must hear of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use smallvec::SmallVec;

use crate::auth::ReadGate;
use crate::codec::QoS;
use crate::session::{Grant, Session, SubIds};
use crate::topic::SubscriptionTrie;

/// Who holds an entry in the trie.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubKey {
    /// A local session, by id.
    Session(u64),
    /// A peer node that advertised the filter.
    Node(Arc<str>),
}

impl SubKey {
    fn is_local(&self) -> bool {
        matches!(self, SubKey::Session(_))
    }
}

/// One subscriber entry in the trie.
#[derive(Debug, Clone)]
pub enum Subscriber {
    /// A local session, what its subscription was granted (options and identifier) and,
    /// with an ACL file, its per-message read check.
    Local {
        session: Arc<Session>,
        grant: Grant,
        read: Option<Arc<ReadGate>>,
    },
    /// A peer node: the message is forwarded to it once, whatever else matches there.
    Remote,
}

/// One matching session: what its matching subscriptions ask for (see [`Matched`]) and, if
/// any, the read check that applies.
pub(super) type Target<'a> = (&'a Arc<Session>, Matched, Option<&'a Arc<ReadGate>>);

/// What one session's subscriptions that match a topic ask of its one copy of a message:
/// overlapping subscriptions are merged into a single delivery [MQTT-3.3.4-2] at the
/// highest granted QoS [MQTT-3.3.4-2, MQTT-3.3.5-1], carrying every Subscription
/// Identifier [MQTT-3.3.4-3], with the RETAIN flag kept if any asked for that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matched {
    pub qos: QoS,
    /// Retain As Published (MQTT 5.0 §3.8.3.1): keep the message's RETAIN flag.
    pub retain_as_published: bool,
    pub ids: SmallVec<[u32; 2]>,
}

impl Matched {
    fn of(grant: &Grant) -> Matched {
        Matched {
            qos: grant.options.qos,
            retain_as_published: grant.options.retain_as_published,
            ids: grant.id.map(|id| id.get()).into_iter().collect(),
        }
    }

    fn merge(&mut self, other: Matched) {
        self.qos = self.qos.max(other.qos);
        self.retain_as_published |= other.retain_as_published;
        self.ids.extend(other.ids);
    }

    /// The identifiers as a delivery carries them.
    pub fn sub_ids(&self) -> SubIds {
        (!self.ids.is_empty()).then(|| self.ids.as_slice().into())
    }
}

/// The peer nodes one topic matched.
pub type Nodes = SmallVec<[Arc<str>; 4]>;

type Trie = SubscriptionTrie<SubKey, Subscriber>;

#[derive(Debug)]
pub(super) struct Shards {
    // Each lock protects one trie; publishes take read locks, (un)subscribes a write lock.
    literal: Box<[RwLock<Trie>]>,
    wildcard: RwLock<Trie>,
    /// Bumped by every insert and remove: a result memoised under one generation is current
    /// while the generation is unchanged (see [`super::RouteMemo`]).
    generation: AtomicU64,
}

impl Shards {
    pub(super) fn new(n: usize) -> Self {
        Shards {
            literal: (0..n).map(|_| RwLock::new(Trie::default())).collect(),
            wildcard: RwLock::new(Trie::default()),
            generation: AtomicU64::new(0),
        }
    }

    /// The current generation of the subscription set.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn shard(&self, filter_or_topic: &str) -> &RwLock<Trie> {
        let first = filter_or_topic.split('/').next().unwrap_or("");
        if first == "+" || first == "#" {
            return &self.wildcard;
        }
        // FNV-1a: short first levels hash in a few nanoseconds, no keyed hasher needed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in first.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        &self.literal[(h % self.literal.len() as u64) as usize]
    }

    /// Adds or replaces a local session's subscription; true if it is the first local
    /// subscriber of `filter` (this node's interest in it begins).
    pub(super) fn insert(
        &self,
        filter: &str,
        session: &Arc<Session>,
        grant: Grant,
        read: Option<Arc<ReadGate>>,
    ) -> bool {
        let sub = Subscriber::Local {
            session: session.clone(),
            grant,
            read,
        };
        let first = {
            let mut t = self.shard(filter).write();
            let first = !t.any_key_at(filter, SubKey::is_local);
            t.insert(filter, SubKey::Session(session.id), sub);
            first
        };
        // After the change, so a memo made from the old set cannot carry the new generation.
        self.generation.fetch_add(1, Ordering::SeqCst);
        first
    }

    /// Removes a local session's subscription; true if it was the last local subscriber of
    /// `filter` (this node's interest in it ends).
    pub(super) fn remove(&self, filter: &str, session_id: u64) -> bool {
        let last = {
            let mut t = self.shard(filter).write();
            t.remove(filter, &SubKey::Session(session_id)).is_some()
                && !t.any_key_at(filter, SubKey::is_local)
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
        last
    }

    /// Peer `node` has interest in `filter`.
    pub(super) fn insert_remote(&self, filter: &str, node: &Arc<str>) {
        self.shard(filter)
            .write()
            .insert(filter, SubKey::Node(node.clone()), Subscriber::Remote);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Peer `node` no longer has interest in `filter`.
    pub(super) fn remove_remote(&self, filter: &str, node: &Arc<str>) {
        self.shard(filter)
            .write()
            .remove(filter, &SubKey::Node(node.clone()));
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Calls `f` once per matching session with the highest QoS it was granted through any
    /// of its overlapping filters [MQTT-3.3.5-1]. `f` runs under the shards' read locks, so it
    /// must be short and must not subscribe or unsubscribe.
    /// A session reached through one filter without a read check needs none for this topic.
    /// Peer nodes matched are added to `nodes` (each once). A No Local subscription of the
    /// `publisher`'s own session does not match [MQTT-3.8.3-3].
    pub(super) fn for_each_target(
        &self,
        topic: &str,
        publisher: Option<u64>,
        nodes: &mut Nodes,
        mut f: impl FnMut(Target<'_>),
    ) {
        // Most topics match a handful of sessions: collect references on the stack, no
        // allocation and no reference-count traffic on the hot path.
        // The guards are declared first so they outlive the references collected from them.
        let shard = self.shard(topic).read();
        let wild = self.wildcard.read();
        let mut hits: SmallVec<[Target<'_>; 16]> = SmallVec::new();
        for trie in [&*shard, &*wild] {
            if trie.is_empty() {
                continue;
            }
            trie.for_each_match(topic, |k, s| match (k, s) {
                (
                    _,
                    Subscriber::Local {
                        session,
                        grant,
                        read,
                    },
                ) => {
                    if !(grant.options.no_local && publisher == Some(session.id)) {
                        hits.push((session, Matched::of(grant), read.as_ref()));
                    }
                }
                (SubKey::Node(n), Subscriber::Remote) => {
                    if !nodes.contains(n) {
                        nodes.push(n.clone());
                    }
                }
                (SubKey::Session(_), Subscriber::Remote) => {}
            });
        }
        if hits.len() > 1 {
            hits.sort_unstable_by_key(|h| h.0.id);
            hits.dedup_by(|b, a| {
                if a.0.id == b.0.id {
                    a.1.merge(std::mem::take(&mut b.1));
                    a.2 = a.2.and(b.2);
                    true
                } else {
                    false
                }
            });
        }
        for hit in hits {
            f(hit);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.literal.iter().map(|s| s.read().len()).sum::<usize>() + self.wildcard.read().len()
    }
}
