//! Routing: subscribe, unsubscribe and publish across sessions (spec §3.3.5, §3.8.4), and
//! consumer groups.
//!
//! Owns the sharded subscription trie, the consumer-group table and the fan-out: a PUBLISH is
//! matched once, overlapping subscriptions of one session are merged into one delivery at the
//! highest granted QoS, each target gets a shared `Arc` of the message at min(publish QoS,
//! granted QoS), and each matching consumer group gets it once, at one member, which may be on
//! another node. It knows nothing of sockets or wire bytes; other nodes are reached through
//! a [`RemoteSink`] the cluster sets, never by name. A delivery a full reader refuses comes
//! back to the producer as a [`Remainder`] (see [`crate::flow`]).

mod deliver;
mod groups;
mod remote;
mod routed;
mod shards;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::auth::ReadGate;
use crate::codec::{QoS, RetainHandling};
use crate::config::GroupStrategy;
use crate::hooks::{Event, Hooks};
use crate::message::Message;
use crate::metrics::{self, Metrics};
use crate::session::{Grant, Session};
use crate::store::{RetainOutcome, RetainedStore, SessionStore, Stamp};
use crate::topic::{parse_subscription, FilterError, GroupKey, Subscription};

pub use groups::{Group, Groups, Pick};
pub use remote::{Barrier, RemotePicks, RemoteSink};
pub use routed::{Remainder, Routed};
use shards::{Matched, Shards};
pub use shards::{Nodes, SubKey, Subscriber};

/// Why a subscription was refused (answered with SUBACK 0x80).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The session already holds `session.max_subscriptions` subscriptions.
    #[error("session holds {0} subscriptions already (session.max_subscriptions)")]
    TooMany(usize),
}

/// Where one publisher's last topic went: its matching local sessions, valid while the
/// subscription set keeps the generation it was made under. A publisher usually publishes on
/// the same topic again and again (a sensor, a device): the memo spares it the trie walk,
/// the shard locks and the merge of overlapping subscriptions on every message.
#[derive(Debug, Default)]
pub struct RouteMemo {
    generation: u64,
    topic: String,
    targets: SmallVec<[MemoTarget; 4]>,
    /// The peer nodes the topic matched.
    nodes: Nodes,
}

/// One memoised target: the session, what its matching subscriptions ask for and its read
/// check (with an ACL file).
type MemoTarget = (Arc<Session>, Matched, Option<Arc<ReadGate>>);

/// Topics matching more sessions than this are not memoised (the walk is then a small part
/// of the cost, and the memo would hold many sessions).
const MEMO_MAX_TARGETS: usize = 16;

/// Who publishes a message, as routing needs to know it.
#[derive(Debug, Default)]
pub struct Origin<'a> {
    /// The publishing client's session (its own subscriptions never pace it; the
    /// hash-by-client group strategy hashes its id).
    pub session: Option<&'a Session>,
    /// The publisher's [`RouteMemo`] (made on first use).
    pub memo: Option<&'a mut Option<Box<RouteMemo>>>,
    /// The producer keeps what full readers refuse and retries it (see
    /// [`Routed::remainder`]); otherwise the queue bounds apply (wills, `$SYS`, embedding).
    pub may_block: bool,
}

impl<'a> Origin<'a> {
    /// The broker itself (a will, `$SYS`, embedding): it cannot wait for readers.
    pub fn broker() -> Self {
        Origin::default()
    }

    /// A client's PUBLISH: paced by the readers it feeds.
    pub fn client(session: &'a Session, memo: &'a mut Option<Box<RouteMemo>>) -> Self {
        Origin {
            session: Some(session),
            memo: Some(memo),
            may_block: true,
        }
    }
}

/// The router shared by every connection task.
#[derive(Debug)]
pub struct Router {
    subs: Shards,
    groups: Groups,
    strategy: GroupStrategy,
    retained_to_groups: bool,
    /// Subscriptions one session may hold (`session.max_subscriptions`).
    max_subscriptions: usize,
    retained: RetainedStore,
    metrics: Arc<Metrics>,
    /// The other nodes, set once when clustering starts; absent on a single node.
    remote: OnceLock<Arc<dyn RemoteSink>>,
    /// Observers of published and dropped messages (only those that want per-message
    /// events, see [`Hooks::wants_messages`]).
    hooks: Option<Arc<dyn Hooks>>,
    /// The filters local sessions subscribe to, kept while there are peers (their snapshot
    /// on link up). Its lock orders interest changes: it is held from the trie's report of a
    /// first or last local subscriber until peers are told. Lock order: this, then a shard,
    /// then (inside the sink) the cluster's peers; the cluster changes remote interest under
    /// its peers lock, which takes a shard, never this.
    interest: Mutex<HashSet<String>>,
    /// The session store: every change the router makes to a session is committed there,
    /// and a session ends through it.
    sessions: Option<Arc<SessionStore>>,
}

/// Whether a subscriber with this read check (none: no ACL file) may receive `topic`.
fn may_read(read: Option<&Arc<ReadGate>>, topic: &str) -> bool {
    match read {
        None => true,
        Some(gate) => gate.allows(topic),
    }
}

/// The retained messages a subscriber's read check lets through.
fn readable(mut msgs: Vec<Arc<Message>>, read: Option<&Arc<ReadGate>>) -> Vec<Arc<Message>> {
    if let Some(gate) = read {
        msgs.retain(|m| gate.allows(&m.topic));
    }
    msgs
}

fn key_of(group: &str, filter: &str) -> GroupKey {
    GroupKey {
        group: Arc::from(group),
        filter: Arc::from(filter),
    }
}

impl Router {
    /// A router with an empty trie and the given retained store.
    pub fn new(retained: RetainedStore, metrics: Arc<Metrics>) -> Self {
        Router {
            subs: Shards::new(16),
            groups: Groups::default(),
            strategy: GroupStrategy::Random,
            retained_to_groups: false,
            max_subscriptions: usize::MAX,
            retained,
            metrics,
            remote: OnceLock::new(),
            hooks: None,
            sessions: None,
            interest: Mutex::new(HashSet::new()),
        }
    }

    /// Sets how consumer groups choose members, and whether a new member gets retained
    /// messages on subscribe.
    pub fn with_groups(mut self, strategy: GroupStrategy, retained_to_groups: bool) -> Self {
        self.strategy = strategy;
        self.retained_to_groups = retained_to_groups;
        self
    }

    /// Bounds the subscriptions one session may hold: each is memory a client makes the
    /// broker keep (its filter, a trie entry, perhaps cluster interest).
    pub fn with_max_subscriptions(mut self, max: usize) -> Self {
        self.max_subscriptions = max;
        self
    }

    /// Sets the session store the router commits session changes to.
    pub fn with_sessions(mut self, sessions: Arc<SessionStore>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Commits the changes the router made to `session` (see [`SessionStore::commit`]).
    #[inline]
    fn commit(&self, session: &Session) {
        if let Some(s) = &self.sessions {
            s.commit(session);
        }
    }

    /// Sets the observers of published and dropped messages.
    pub fn with_hooks(mut self, hooks: Option<Arc<dyn Hooks>>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Tells the hooks, if any, of `event` (built only when there are hooks).
    #[inline]
    fn emit<'a>(&self, event: impl FnOnce() -> Event<'a>) {
        if let Some(h) = &self.hooks {
            h.on_event(&event());
        }
    }

    /// Connects the router to the other nodes (once).
    pub fn set_remote(&self, sink: Arc<dyn RemoteSink>) {
        let _ = self.remote.set(sink);
    }

    /// The other nodes, when clustering is on.
    pub fn remote(&self) -> Option<&Arc<dyn RemoteSink>> {
        self.remote.get()
    }

    /// The retained-message store.
    pub fn retained(&self) -> &RetainedStore {
        &self.retained
    }

    /// The consumer-group table.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Adds or replaces `session`'s subscription to `filter` [MQTT-3.8.4-3] (an ordinary
    /// filter or a `$share/`, `$g/`, `$queue/` group) and records it in the session. Returns
    /// the retained messages to send for it, as its Retain Handling asks (MQTT 5.0
    /// §3.8.3.1: always, only for a new subscription, or never). A new filter beyond
    /// `session.max_subscriptions` is refused; replacing an existing one always works.
    ///
    /// `read` is the subscriber's per-message ACL check (with an ACL file): messages, retained
    /// ones included, on topics it denies are withheld.
    pub fn subscribe(
        &self,
        session: &Arc<Session>,
        filter: &str,
        grant: Grant,
        read: Option<&Arc<ReadGate>>,
    ) -> Result<Vec<Arc<Message>>, SubscribeError> {
        let sub = parse_subscription(filter)?;
        // Lock order: a session's lock is never held while a shard or group lock is taken
        // (publish holds those while it locks sessions). Only the session's own connection
        // task subscribes, so recording first and inserting second cannot race with it.
        let new = {
            let mut st = session.lock();
            if st.discarded {
                // The connection is being replaced; its subscriptions would outlive it.
                return Ok(Vec::new());
            }
            let held = st.subscriptions().len();
            if held >= self.max_subscriptions && !st.subscriptions().contains_key(filter) {
                return Err(SubscribeError::TooMany(held));
            }
            st.subscribe(filter, grant)
        };
        let send_retained = match grant.options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendAtSubscribeIfNew => new,
            RetainHandling::DoNotSend => false,
        };
        if new {
            metrics::inc(&self.metrics.subscriptions_current);
        }
        self.commit(session);
        match sub {
            Subscription::Plain(f) => {
                // Held while peers are told, so that what they hear of one filter is in the
                // order the trie changed (a SUB overtaken by an older UNSUB would lose them
                // this node's subscriber).
                let mut interest = self.remote().map(|_| self.interest.lock());
                if self.subs.insert(f, session, grant, read.cloned()) {
                    if let (Some(c), Some(set)) = (self.remote(), interest.as_mut()) {
                        set.insert(f.to_owned());
                        c.interest_add(f);
                    }
                }
                drop(interest);
                Ok(if send_retained {
                    readable(self.retained.matching(f), read)
                } else {
                    Vec::new()
                })
            }
            Subscription::Shared { group, filter: f } => {
                let key = key_of(group, f);
                let members = self.groups.join(&key, session, grant, read.cloned());
                if let Some(c) = self.remote() {
                    c.group_weight(&key, members);
                }
                // Shared subscriptions get no retained messages by default: every member
                // would get a copy, which is what a group exists to avoid.
                Ok(if self.retained_to_groups && send_retained {
                    readable(self.retained.matching(f), read)
                } else {
                    Vec::new()
                })
            }
        }
    }

    fn drop_subscription(&self, session_id: u64, filter: &str) {
        metrics::dec(&self.metrics.subscriptions_current);
        match parse_subscription(filter) {
            Ok(Subscription::Plain(f)) => {
                let mut interest = self.remote().map(|_| self.interest.lock());
                if self.subs.remove(f, session_id) {
                    if let (Some(c), Some(set)) = (self.remote(), interest.as_mut()) {
                        set.remove(f);
                        c.interest_remove(f);
                    }
                }
            }
            Ok(Subscription::Shared { group, filter: f }) => {
                let key = key_of(group, f);
                if let (Some(n), Some(c)) = (self.groups.leave(&key, session_id), self.remote()) {
                    c.group_weight(&key, n);
                }
            }
            // Only filters that parsed were ever recorded (see `subscribe`).
            Err(_) => debug_assert!(false, "a recorded filter parses"),
        }
    }

    /// Removes `session`'s subscription to exactly `filter` (for a group: leaves it); true
    /// if there was one.
    pub fn unsubscribe(&self, session: &Session, filter: &str) -> bool {
        let had = session.lock().unsubscribe(filter);
        if had {
            self.commit(session);
            self.drop_subscription(session.id, filter);
        }
        had
    }

    /// Removes every subscription of a session that ended.
    fn remove_all(&self, session: &Session) {
        let filters = session.lock().take_subscriptions();
        for filter in filters.keys() {
            self.drop_subscription(session.id, filter);
        }
    }

    /// Routes one message published on this node: updates the retained store if the retain
    /// flag is set, queues one delivery per matching local session and one per matching
    /// consumer group, and forwards it to every interested peer.
    pub fn publish(&self, msg: Message, origin: Origin<'_>, now: Instant) -> Routed {
        let msg = Arc::new(Message {
            routed: Some(now),
            ..msg
        });
        self.emit(|| Event::MessagePublished {
            client_id: origin.session.map(|s| &*s.client_id),
            topic: &msg.topic,
            qos: msg.qos,
            retain: msg.retain,
            payload_len: msg.payload.len(),
            payload: &msg.payload,
        });
        let mut ts = 0;
        let mut retain_refused = false;
        if msg.retain {
            match self.retained.apply(&msg) {
                RetainOutcome::Stored(s) | RetainOutcome::Removed(s) => ts = s.ts,
                RetainOutcome::Refused | RetainOutcome::Stale => {
                    tracing::debug!(topic = %msg.topic, "retained message refused by retain limits");
                    retain_refused = true;
                }
            }
        }
        let mut routed = Routed::default();
        let publisher = origin.session;
        let may_block = origin.may_block;
        let mut nodes = Nodes::new();
        self.deliver_local(
            &msg,
            now,
            publisher.map(|p| p.id),
            may_block,
            &mut routed,
            &mut nodes,
            origin.memo,
        );
        let mut picks = RemotePicks::new();
        let local_only = self.remote().is_none();
        let strategy = self.strategy;
        // Hashed only when some group matches (most publishes meet no group).
        let mut hash = None;
        self.groups.for_each_match(&msg.topic, |g| {
            let h = *hash.get_or_insert_with(|| match strategy {
                GroupStrategy::HashClient => {
                    groups::hash_of(publisher.map_or("", |p| &*p.client_id))
                }
                _ => groups::hash_of(&msg.topic),
            });
            // Only members that may read the topic are candidates, and members with room go
            // first (see `Group::pick`).
            match g.pick(strategy, h, local_only, &msg.topic) {
                Pick::Local(s, qos) => {
                    self.deliver_group(&s, &msg, qos, &g.key, now, may_block, &mut routed);
                }
                Pick::Remote(node) => picks.push((node, g.key.clone())),
                Pick::Nobody => {}
            }
        });
        if let Some(c) = self.remote() {
            // A retained message this node refused (over `retain.max_messages` or
            // `max_payload_size`) goes on as a plain message: live subscribers on peers get it
            // as they do here (they never see the retain flag anyway [MQTT-3.3.1-9]), and no
            // node stores it. Replicated as a retained write (and with no stamp) the peers
            // with room would keep it while this node does not, and the nodes would answer
            // the same SUBSCRIBE differently for good.
            let plain;
            let fwd = if retain_refused {
                plain = Message {
                    retain: false,
                    ..Message::clone(&msg)
                };
                &plain
            } else {
                &*msg
            };
            if let Some(gate) = c.forward(fwd, ts, &nodes, &picks) {
                routed.pressure.get_or_insert(gate);
            }
        }
        routed.msg = Some(msg);
        routed
    }

    /// Routes one message that arrived from peer `origin`: local sessions only (one hop).
    /// `groups` are the consumer groups the origin chose this node for; `group_only` means the
    /// origin sent it only for those; `redispatched` means it was already handed on once.
    /// What full readers refuse comes back as [`Routed::remainder`]: the route link keeps
    /// it and stops reading until it is relieved (TCP then paces the peer's route queue,
    /// which paces its publishers).
    pub fn publish_from_route(&self, msg: Message, route: RouteMeta<'_>, now: Instant) -> Routed {
        let msg = Arc::new(Message {
            routed: Some(now),
            ..msg
        });
        let mut routed = Routed::default();
        if !route.group_only {
            if msg.retain {
                self.retained.apply_remote(
                    &msg,
                    Stamp {
                        ts: route.ts,
                        origin: route.origin.clone(),
                    },
                );
            }
            // One hop: the peers it matches here were the origin's to serve.
            let mut nodes = Nodes::new();
            self.deliver_local(&msg, now, None, true, &mut routed, &mut nodes, None);
        }
        let hash = groups::hash_of(&msg.topic);
        for key in route.groups {
            let group = self.groups.get(key);
            let pick = group.as_ref().map_or(Pick::Nobody, |g| {
                g.pick(self.strategy, hash, true, &msg.topic)
            });
            match (pick, group) {
                (Pick::Local(s, qos), Some(g)) => {
                    self.deliver_group(&s, &msg, qos, &g.key, now, true, &mut routed);
                }
                // The member chosen by the origin left meanwhile: hand it to another node
                // once (QoS 1/2 only; QoS 0 may be lost by definition).
                _ if !route.redispatched && msg.qos != QoS::AtMostOnce => {
                    metrics::inc(&self.metrics.group_redispatched);
                    self.redispatch(&msg, key);
                }
                _ => metrics::inc(&self.metrics.group_dropped),
            }
        }
        routed
    }

    /// Ends a session for good (clean disconnect, replaced by a clean session, expired):
    /// removes its subscriptions, then hands its unacknowledged and queued group messages to
    /// the other members, so a group never loses a message because one member went away.
    /// A will still waiting for its delay is due now: the session's end is the latest it is
    /// published [MQTT-3.1.3-9].
    pub fn end_session(&self, session: &Session) {
        self.remove_all(session);
        self.redispatch_undelivered(session);
        let will = session.lock().pending_will.take();
        if let Some((will, _)) = will {
            metrics::inc(&self.metrics.wills_published);
            self.publish(will, Origin::broker(), std::time::Instant::now());
        }
        if let Some(s) = &self.sessions {
            s.ended(session);
        }
    }

    /// Hands the unacknowledged group messages of a member that left (clean session) to other
    /// members, so none is lost and none reaches a live member twice. Call after
    /// [`Router::remove_all`], so the leaver is no longer a candidate.
    fn redispatch_undelivered(&self, session: &Session) {
        let undelivered = session.lock().take_undelivered();
        for d in undelivered {
            let Some(key) = d.group else { continue };
            if d.msg.qos == QoS::AtMostOnce {
                continue;
            }
            metrics::inc(&self.metrics.group_redispatched);
            self.redispatch(&d.msg, &key);
        }
    }

    /// The filters local sessions subscribe to (what a newly linked peer is told first).
    pub fn local_interest(&self) -> Vec<String> {
        self.interest.lock().iter().cloned().collect()
    }

    /// Peer `node` advertised interest in `filter`: it becomes a subscriber in the trie.
    pub fn remote_subscribe(&self, filter: &str, node: &Arc<str>) {
        self.subs.insert_remote(filter, node);
    }

    /// Peer `node` withdrew its interest in `filter` (or its link went down).
    pub fn remote_unsubscribe(&self, filter: &str, node: &Arc<str>) {
        self.subs.remove_remote(filter, node);
    }

    /// Whether any subscriber (local, on a peer, or a consumer group) matches `topic`: what
    /// an MQTT 5 PUBACK / PUBREC says with 0x10 when none does (§3.4.2.1).
    pub fn has_subscribers(&self, topic: &str) -> bool {
        let mut nodes = Nodes::new();
        let mut any = false;
        self.subs
            .for_each_target(topic, None, &mut nodes, |_| any = true);
        if any || !nodes.is_empty() {
            return true;
        }
        self.groups.for_each_match(topic, |_| any = true);
        any
    }

    /// The peer nodes whose advertised interest `topic` matches.
    pub fn remote_matches(&self, topic: &str) -> Nodes {
        let mut nodes = Nodes::new();
        self.subs.for_each_target(topic, None, &mut nodes, |_| {});
        nodes
    }

    /// Number of (filter, subscriber) entries in the ordinary trie, peers' included.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }
}

/// How a message arrived from a peer.
#[derive(Debug)]
pub struct RouteMeta<'a> {
    pub ts: u64,
    pub origin: Arc<str>,
    pub groups: &'a [GroupKey],
    pub group_only: bool,
    pub redispatched: bool,
}
