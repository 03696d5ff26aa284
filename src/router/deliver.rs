//! Delivery of one routed message to local sessions and consumer groups, the retry of what
//! full readers refused, and the counting of every outcome.

use std::sync::Arc;
use std::time::Instant;

use smallvec::SmallVec;

use super::groups::{self, Pick};
use super::routed::{Remainder, Routed, Target};
use super::{may_read, Matched, MemoTarget, Nodes, RouteMemo, Router, MEMO_MAX_TARGETS};
use crate::auth::ReadGate;
use crate::flow::Pacer;
use crate::hooks::{DropReason, Event};
use crate::message::{Delivery, Message};
use crate::metrics;
use crate::session::Grant;
use crate::session::{EnqueueOutcome, Session};
use crate::topic::GroupKey;

impl Router {
    /// Offers again what full readers refused earlier (see [`Routed::remainder`]); what is
    /// still refused comes back as the new remainder (with `may_block`; without it, the
    /// queue bounds apply).
    pub fn resume(&self, rem: Remainder, now: Instant, may_block: bool) -> Routed {
        let mut routed = Routed::default();
        let Remainder { msg, targets } = rem;
        for t in targets {
            match t {
                Target::Session(s, d) => {
                    let to = s.clone();
                    self.offer(&s, &msg, d, now, may_block, &mut routed, |d| {
                        Target::Session(to, d)
                    });
                }
                Target::Group(key) => {
                    // Local members first: the producer waited for one of them. Only when
                    // none is left does the message go to a member on another node (once:
                    // that node never hands it on while it has members of its own).
                    let Some(g) = self.groups.get(&key) else {
                        metrics::inc(&self.metrics.group_dropped);
                        continue;
                    };
                    let hash = groups::hash_of(&msg.topic);
                    match g.pick(self.strategy, hash, true, &msg.topic) {
                        Pick::Local(s, options) => {
                            self.deliver_group(
                                &s,
                                &msg,
                                options,
                                &key,
                                now,
                                may_block,
                                &mut routed,
                            );
                        }
                        _ => match (
                            self.remote(),
                            g.pick(self.strategy, hash, false, &msg.topic),
                        ) {
                            (Some(c), Pick::Remote(node)) => c.forward_group(&node, &msg, &key),
                            _ => metrics::inc(&self.metrics.group_dropped),
                        },
                    }
                }
            }
        }
        routed
    }

    /// Gives a group message to another member, local or on another node.
    pub(super) fn redispatch(&self, msg: &Arc<Message>, key: &GroupKey) {
        let Some(g) = self.groups.get(key) else {
            metrics::inc(&self.metrics.group_dropped);
            return;
        };
        let local_only = self.remote().is_none();
        match g.pick(
            self.strategy,
            groups::hash_of(&msg.topic),
            local_only,
            &msg.topic,
        ) {
            Pick::Local(s, qos) => {
                let mut routed = Routed::default();
                self.deliver_group(&s, msg, qos, &g.key, Instant::now(), false, &mut routed);
            }
            Pick::Remote(node) => {
                if let Some(c) = self.remote() {
                    c.forward_group(&node, msg, &g.key);
                }
            }
            Pick::Nobody => metrics::inc(&self.metrics.group_dropped),
        }
    }

    /// Queues a group message for the member `s` chose for it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliver_group(
        &self,
        s: &Arc<Session>,
        msg: &Arc<Message>,
        grant: Grant,
        key: &Arc<GroupKey>,
        now: Instant,
        may_block: bool,
        routed: &mut Routed,
    ) {
        let d = Delivery {
            msg: msg.clone(),
            qos: msg.qos.min(grant.options.qos),
            retain: grant.options.retain_as_published && msg.retain,
            group: Some(key.clone()),
            sub_ids: grant.id.map(|id| Box::from([id.get()])),
        };
        // Refused only when every member is full and reading (a member with room would have
        // been chosen): the group is retried as a whole, and may then pick another member.
        self.offer(s, msg, d, now, may_block, routed, |_| {
            Target::Group(key.clone())
        });
    }

    /// Queues `msg` for every matching local session; the first one (other than the
    /// publisher's own, which its own connection drains) that asks for pacing is reported.
    /// The peer nodes the topic matches are added to `nodes`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliver_local(
        &self,
        msg: &Arc<Message>,
        now: Instant,
        publisher: Option<u64>,
        may_block: bool,
        routed: &mut Routed,
        nodes: &mut Nodes,
        memo: Option<&mut Option<Box<RouteMemo>>>,
    ) {
        let mut one = |session: &Arc<Session>, matched: &Matched, read: Option<&Arc<ReadGate>>| {
            if !may_read(read, &msg.topic) {
                return;
            }
            let d = Delivery {
                msg: msg.clone(),
                qos: msg.qos.min(matched.qos),
                // Normal deliveries carry no RETAIN flag [MQTT-3.3.1-9], unless a subscription
                // asked for it as published [MQTT-3.3.1-12, MQTT-3.3.1-13].
                retain: matched.retain_as_published && msg.retain,
                group: None,
                sub_ids: matched.sub_ids(),
            };
            let pressured = self.offer(session, msg, d, now, may_block, routed, |d| {
                Target::Session(session.clone(), d)
            });
            if pressured && routed.pressure.is_none() && publisher != Some(session.id) {
                routed.pressure = Some(session.clone());
            }
        };
        let Some(memo) = memo else {
            self.subs
                .for_each_target(&msg.topic, publisher, nodes, |(session, matched, read)| {
                    one(session, &matched, read);
                });
            return;
        };
        let generation = self.subs.generation();
        if let Some(m) = memo.as_deref() {
            if m.generation == generation && m.topic == msg.topic {
                for (session, matched, read) in &m.targets {
                    one(session, matched, read.as_ref());
                }
                nodes.extend(m.nodes.iter().cloned());
                return;
            }
        }
        let mut targets: SmallVec<[MemoTarget; 4]> = SmallVec::new();
        self.subs
            .for_each_target(&msg.topic, publisher, nodes, |(session, matched, read)| {
                one(session, &matched, read);
                if targets.len() <= MEMO_MAX_TARGETS {
                    targets.push((session.clone(), matched, read.cloned()));
                }
            });
        if targets.len() <= MEMO_MAX_TARGETS {
            let m = memo.get_or_insert_with(Box::default);
            m.generation = generation;
            m.topic.clone_from(&msg.topic);
            m.targets = targets;
            m.nodes.clone_from(nodes);
        } else {
            *memo = None;
        }
    }

    /// Offers one prepared delivery to `session` and records the outcome in `routed`; a
    /// refusal by a full reader becomes `refused(d)` in the remainder, waiting for `session`.
    /// Returns whether the session asks its producers to pause. `msg` is the message `d`
    /// carries (borrowed: no reference-count traffic per delivery).
    #[allow(clippy::too_many_arguments)]
    fn offer(
        &self,
        session: &Arc<Session>,
        msg: &Arc<Message>,
        d: Delivery,
        now: Instant,
        may_block: bool,
        routed: &mut Routed,
        refused: impl FnOnce(Delivery) -> Target,
    ) -> bool {
        let paced = session.deliver_paced(d, now, may_block);
        self.commit(session);
        routed.deepest = routed.deepest.max(paced.depth);
        routed.woke_here |= paced.woke_here;
        match paced.outcome {
            Ok(outcome) => routed.queued += usize::from(self.account(outcome, session, msg)),
            Err(d) => {
                routed.blocked(msg, refused(d), session.clone() as Pacer);
                return false;
            }
        }
        paced.pressured
    }

    /// Counts a delivery outcome of `msg` for `session` (and tells the hooks of a drop);
    /// true if the message was queued.
    fn account(&self, outcome: EnqueueOutcome, session: &Session, msg: &Message) -> bool {
        let reason = match outcome {
            EnqueueOutcome::Queued { .. } | EnqueueOutcome::QueuedDroppedOldest { .. } => None,
            EnqueueOutcome::DroppedFull { .. } => Some(DropReason::QueueFull),
            EnqueueOutcome::SlowConsumer { .. } => Some(DropReason::SlowConsumer),
            EnqueueOutcome::DroppedOffline => Some(DropReason::Offline),
            EnqueueOutcome::DroppedStoreFull => Some(DropReason::StoreFull),
        };
        if let Some(reason) = reason {
            self.emit(|| Event::MessageDropped {
                client_id: &session.client_id,
                topic: &msg.topic,
                qos: msg.qos,
                payload: &msg.payload,
                reason,
            });
        }
        let m = &self.metrics;
        match outcome {
            EnqueueOutcome::Queued { .. } => true,
            EnqueueOutcome::QueuedDroppedOldest { dropped_qos0 } => {
                metrics::inc(if dropped_qos0 {
                    &m.dropped_qos0_queue_full
                } else {
                    &m.dropped_queue_full
                });
                true
            }
            EnqueueOutcome::DroppedFull { qos0 } | EnqueueOutcome::SlowConsumer { qos0 } => {
                metrics::inc(if qos0 {
                    &m.dropped_qos0_queue_full
                } else {
                    &m.dropped_queue_full
                });
                false
            }
            EnqueueOutcome::DroppedOffline => {
                metrics::inc(&m.dropped_qos0_offline);
                false
            }
            EnqueueOutcome::DroppedStoreFull => {
                metrics::inc(&m.dropped_store_full);
                false
            }
        }
    }
}
