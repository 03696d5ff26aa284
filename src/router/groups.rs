//! Consumer groups: for each (group, filter), the local members and the member counts that
//! peers advertise, and the choice of exactly one member per message.
//!
//! The choice is made over the combined list "local members, then each peer weighted by its
//! member count", so a group spread over a cluster is served uniformly per member: a node
//! with three members gets three times the messages of a node with one.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rand::Rng;

use crate::auth::ReadGate;
use crate::config::GroupStrategy;
use crate::session::Grant;
use crate::session::{Readiness, Session};
use crate::topic::{GroupKey, SubscriptionTrie};

#[derive(Debug, Clone)]
struct Member {
    session: Arc<Session>,
    grant: Grant,
    read: Option<Arc<ReadGate>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stuck {
    Local(u64),
    Remote(Arc<str>),
}

#[derive(Debug, Default)]
struct Members {
    local: Vec<Member>,
    /// Peer node → its member count.
    remote: Vec<(Arc<str>, u32)>,
    sticky: Option<Stuck>,
}

/// One consumer group.
#[derive(Debug)]
pub struct Group {
    pub key: Arc<GroupKey>,
    // Protects the member lists; held only while one member is chosen or a list changes.
    members: Mutex<Members>,
    /// Round-robin position over every member, cluster-wide (messages published here).
    turn: AtomicUsize,
    /// Round-robin position over the local members only (messages a peer routed here for
    /// this group): kept apart so that their arrival, timed by the route, does not shift the
    /// cluster-wide rotation of this node's own messages.
    turn_local: AtomicUsize,
}

/// The member chosen for one message.
#[derive(Debug)]
pub enum Pick {
    /// A member on this node (one that may read the topic) and its granted QoS.
    Local(Arc<Session>, Grant),
    Remote(Arc<str>),
    Nobody,
}

impl Group {
    fn new(key: GroupKey) -> Self {
        Group {
            key: Arc::new(key),
            members: Mutex::new(Members::default()),
            turn: AtomicUsize::new(0),
            turn_local: AtomicUsize::new(0),
        }
    }

    /// Chooses one member by `strategy`; `local_only` leaves peers out (a message a peer
    /// already routed here), and `hash` feeds the hash strategies. Local members the ACL does
    /// not let read `topic` are left out of the choice, so a group never loses a message to a
    /// member that may not have it while another may.
    pub fn pick(&self, strategy: GroupStrategy, hash: u64, local_only: bool, topic: &str) -> Pick {
        let mut m = self.members.lock();
        let remote_total: u64 = if local_only {
            0
        } else {
            m.remote.iter().map(|(_, w)| u64::from(*w)).sum()
        };
        let readable = |x: &Member| match &x.read {
            None => true,
            Some(r) => r.may_read(topic),
        };
        // Indices of the local members that may read `topic`; `None` (no ACL): all of them.
        // Every member has a read check or none does (an ACL file is broker-wide), so the
        // first one tells, and a broker without an ACL pays nothing here.
        let allowed: Option<smallvec::SmallVec<[usize; 8]>> =
            m.local.first().is_some_and(|x| x.read.is_some()).then(|| {
                (0..m.local.len())
                    .filter(|&i| readable(&m.local[i]))
                    .collect()
            });
        let n_local = allowed.as_ref().map_or(m.local.len(), |a| a.len());
        let local_at = |k: usize| allowed.as_ref().map_or(k, |a| a[k]);
        let total = n_local as u64 + remote_total;
        if total == 0 {
            return Pick::Nobody;
        }
        if strategy == GroupStrategy::Sticky {
            let still_there = match &m.sticky {
                Some(Stuck::Local(id)) => m
                    .local
                    .iter()
                    .find(|x| x.session.id == *id && readable(x) && x.session.lock().has_room())
                    .map(|x| Pick::Local(x.session.clone(), x.grant)),
                Some(Stuck::Remote(n)) if !local_only => m
                    .remote
                    .iter()
                    .find(|(r, _)| r == n)
                    .map(|(r, _)| Pick::Remote(r.clone())),
                _ => None,
            };
            if let Some(p) = still_there {
                return p;
            }
        }
        let idx = match strategy {
            GroupStrategy::Random | GroupStrategy::Sticky => rand::thread_rng().gen_range(0..total),
            GroupStrategy::RoundRobin => {
                let turn = if local_only {
                    &self.turn_local
                } else {
                    &self.turn
                };
                turn.fetch_add(1, Ordering::Relaxed) as u64 % total
            }
            GroupStrategy::HashClient | GroupStrategy::HashTopic => hash % total,
        };
        let mut pick = if (idx as usize) < n_local {
            let x = &m.local[local_at(idx as usize)];
            Pick::Local(x.session.clone(), x.grant)
        } else {
            remote_at(&m.remote, idx - n_local as u64)
        };
        // A member whose queue is filling is passed over for one with room, starting after
        // the chosen one (so the load still spreads): a group never loses or holds back a
        // message because one member is stuck while another could take it. A member on
        // another node counts as having room (its node blocks, and never drops, a message
        // for a full member that reads: see `Router::publish_from_route`). With no room
        // anywhere, a member that still reads gets it (and blocks its producer until it
        // drains); only when every member has stalled does the chosen one get it, and its
        // queue bound applies.
        let now = std::time::Instant::now();
        let ready = |s: &Session| s.lock().readiness(now);
        if let Pick::Local(s, _) = &pick {
            let mine = ready(s);
            if mine != Readiness::Room {
                let start = idx as usize;
                let others = || (1..n_local).map(|k| &m.local[local_at((start + k) % n_local)]);
                if let Some(x) = others().find(|x| ready(&x.session) == Readiness::Room) {
                    pick = Pick::Local(x.session.clone(), x.grant);
                } else if remote_total > 0 {
                    pick = remote_at(&m.remote, hash % remote_total);
                } else if mine == Readiness::Stalled {
                    if let Some(x) = others().find(|x| ready(&x.session) == Readiness::Reading) {
                        pick = Pick::Local(x.session.clone(), x.grant);
                    }
                }
            }
        }
        if strategy == GroupStrategy::Sticky {
            m.sticky = match &pick {
                Pick::Local(s, _) => Some(Stuck::Local(s.id)),
                Pick::Remote(n) => Some(Stuck::Remote(n.clone())),
                Pick::Nobody => None,
            };
        }
        pick
    }
}

/// The remote member at weighted position `at` (below the sum of the weights).
fn remote_at(remote: &[(Arc<str>, u32)], mut at: u64) -> Pick {
    for (node, w) in remote {
        if at < u64::from(*w) {
            return Pick::Remote(node.clone());
        }
        at -= u64::from(*w);
    }
    Pick::Nobody
}

#[derive(Debug, Default)]
struct Index {
    /// filter → group name → group, for matching topics.
    trie: SubscriptionTrie<Arc<str>, Arc<Group>>,
    by_key: HashMap<GroupKey, Arc<Group>>,
}

impl Index {
    fn get_or_create(&mut self, key: &GroupKey) -> Arc<Group> {
        if let Some(g) = self.by_key.get(key) {
            return g.clone();
        }
        let g = Arc::new(Group::new(key.clone()));
        self.trie.insert(&key.filter, key.group.clone(), g.clone());
        self.by_key.insert(key.clone(), g.clone());
        g
    }

    fn prune(&mut self, g: &Group) {
        let m = g.members.lock();
        if m.local.is_empty() && m.remote.is_empty() {
            self.trie.remove(&g.key.filter, &g.key.group);
            self.by_key.remove(&g.key);
        }
    }
}

/// Every consumer group this node knows, with local members or remote weight.
#[derive(Debug, Default)]
pub struct Groups {
    // Taken for writing only on membership changes; lock order: this, then a group's members.
    index: RwLock<Index>,
    /// Groups known, kept beside the index so the publish path skips the lock when there are
    /// none (most brokers, most of the time).
    count: AtomicUsize,
}

impl Groups {
    /// Adds (or updates the QoS of) `session` as a member; returns the local member count.
    pub fn join(
        &self,
        key: &GroupKey,
        session: &Arc<Session>,
        grant: Grant,
        read: Option<Arc<ReadGate>>,
    ) -> usize {
        let mut index = self.index.write();
        let g = index.get_or_create(key);
        let mut m = g.members.lock();
        match m.local.iter_mut().find(|x| x.session.id == session.id) {
            Some(x) => {
                x.grant = grant;
                x.read = read;
            }
            None => m.local.push(Member {
                session: session.clone(),
                grant,
                read,
            }),
        }
        let n = m.local.len();
        drop(m);
        self.count.store(index.by_key.len(), Ordering::Release);
        n
    }

    /// Removes `session` from the group; returns the local member count if it was a member.
    pub fn leave(&self, key: &GroupKey, session_id: u64) -> Option<usize> {
        let mut index = self.index.write();
        let g = index.by_key.get(key)?.clone();
        let n = {
            let mut m = g.members.lock();
            let before = m.local.len();
            m.local.retain(|x| x.session.id != session_id);
            (m.local.len() != before).then_some(m.local.len())
        };
        index.prune(&g);
        self.count.store(index.by_key.len(), Ordering::Release);
        n
    }

    /// Records that peer `node` has `weight` members in the group (0: none).
    pub fn set_remote(&self, key: &GroupKey, node: &Arc<str>, weight: u32) {
        let mut index = self.index.write();
        let g = if weight == 0 {
            match index.by_key.get(key) {
                Some(g) => g.clone(),
                None => return,
            }
        } else {
            index.get_or_create(key)
        };
        {
            let mut m = g.members.lock();
            m.remote.retain(|(n, _)| n != node);
            if weight > 0 {
                m.remote.push((node.clone(), weight));
                m.remote.sort();
            }
        }
        index.prune(&g);
        self.count.store(index.by_key.len(), Ordering::Release);
    }

    /// Calls `f` for every group whose filter matches `topic`.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&Arc<Group>)) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        self.index.read().trie.for_each_match(topic, |_, g| f(g));
    }

    /// The group with `key`, if known.
    pub fn get(&self, key: &GroupKey) -> Option<Arc<Group>> {
        self.index.read().by_key.get(key).cloned()
    }
}

/// A stable 64-bit hash for the hash strategies.
pub fn hash_of(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}
