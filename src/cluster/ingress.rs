//! What a route link does with the frames it reads: interest, retained writes, take-overs,
//! gossip and messages, applied in order. A message for local readers whose queues are full
//! is not dropped: the link keeps it ([`Blocked`]), stops reading, and offers it again as
//! the readers drain. TCP then fills up to the peer, whose route queue fills, which paces
//! the publishers there (see [`crate::flow`]): routes are paced by the receiving node's
//! subscribers, end to end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use super::frame::{self, Frame};
use super::link::LinkError;
use super::node::Cluster;
use crate::codec::QoS;
use crate::context::Context;
use crate::flow::{self, Pacer};
use crate::message::Message;
use crate::metrics;
use crate::router::{Remainder, RouteMeta};
use crate::store::Stamp;
use crate::topic::GroupKey;

/// A message from a peer that full local readers have not taken yet.
#[derive(Debug)]
pub(super) struct Blocked {
    rem: Remainder,
    pacer: Option<Pacer>,
}

/// A wait for relief, owned (the link's `select!` may drop it and make another).
pub(super) type Relief = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Blocked {
    /// Resolves on relief, or after [`flow::RECHECK_AFTER`] at most.
    pub(super) fn relief(&self) -> Relief {
        let rx = self.pacer.as_deref().and_then(flow::relief_of);
        Box::pin(async move {
            match rx {
                Some(rx) => flow::relief_or_recheck(rx).await,
                None => tokio::task::yield_now().await,
            }
        })
    }

    /// Offers the remainder again; `Some` while readers still refuse it.
    pub(super) fn resume(self, ctx: &Context) -> Option<Blocked> {
        let routed = ctx.router.resume(self.rem, Instant::now(), true);
        routed.remainder.map(|rem| Blocked {
            rem,
            pacer: routed.pressure,
        })
    }
}

/// Applies the complete frames in `rbuf`, in order, until one is blocked (the rest stay in
/// `rbuf`, unread).
#[allow(clippy::too_many_arguments)]
pub(super) fn apply(
    rbuf: &mut BytesMut,
    node: &Arc<str>,
    link_id: u64,
    ctx: &Arc<Context>,
    cluster: &Arc<Cluster>,
    out: &mut BytesMut,
    stats: &super::stats::LinkStats,
) -> Result<Option<Blocked>, LinkError> {
    while let Some(f) = frame::decode(rbuf)? {
        if let Some(b) = handle(f, node, link_id, ctx, cluster, out, stats)? {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// Applies one frame from `node`; answers go to `out`. A message that full local readers
/// refused comes back as a [`Remainder`]: the link stops reading until it is delivered.
fn handle(
    f: Frame,
    node: &Arc<str>,
    link_id: u64,
    ctx: &Arc<Context>,
    cluster: &Arc<Cluster>,
    out: &mut BytesMut,
    stats: &super::stats::LinkStats,
) -> Result<Option<Blocked>, LinkError> {
    match f {
        Frame::Ping => frame::encode(&Frame::Pong, out),
        Frame::Pong => {}
        Frame::Sub(filter) => cluster.on_sub(node, link_id, filter, &ctx.router),
        Frame::Unsub(filter) => cluster.on_unsub(node, link_id, &filter, &ctx.router),
        // Frames on a link are applied in order, so answering now confirms everything before;
        // but not on a link this node has already replaced by another to the same peer: its
        // Sub frames were ignored, so confirming would let a SUBACK overtake the interest
        // (the peer asks again on the new link once it switches too, after its snapshot).
        Frame::Sync(n) => {
            if cluster.is_current(node, link_id) {
                frame::encode(&Frame::SyncAck(n), out);
            }
        }
        Frame::SyncAck(n) => cluster.on_sync_ack(node, n),
        Frame::SnapshotEnd => {
            for key in cluster.on_snapshot_end(node, link_id, &ctx.router) {
                ctx.router.groups().set_remote(&key, node, 0);
            }
        }
        Frame::Msg(m) => {
            metrics::inc(&stats.msgs_in);
            let Some(qos) = QoS::from_u8(m.qos) else {
                return Err(LinkError::Unexpected("bad QoS"));
            };
            let now = Instant::now();
            let msg = Message {
                topic: m.topic,
                payload: m.payload,
                qos,
                retain: m.retain,
                properties: m.properties,
                // The sender counted what was left when it sent the frame; counted from
                // here on (MQTT 5.0 §3.3.2.3.3).
                expires: frame::expires_at(m.expiry_ms, now),
                routed: None,
            };
            let groups: Vec<GroupKey> = m
                .groups
                .into_iter()
                .map(|(g, f)| GroupKey {
                    group: Arc::from(g.as_str()),
                    filter: Arc::from(f.as_str()),
                })
                .collect();
            let meta = RouteMeta {
                ts: m.ts,
                origin: node.clone(),
                groups: &groups,
                group_only: m.group_only,
                redispatched: m.redispatched,
            };
            // One hop: delivered to local sessions only, never forwarded again.
            let routed = ctx.router.publish_from_route(msg, meta, now);
            if let Some(rem) = routed.remainder {
                return Ok(Some(Blocked {
                    rem,
                    pacer: routed.pressure,
                }));
            }
        }
        Frame::Retain(r) => {
            let Some(qos) = QoS::from_u8(r.qos) else {
                return Err(LinkError::Unexpected("bad QoS"));
            };
            let msg = Arc::new(Message {
                topic: r.topic,
                payload: r.payload,
                qos,
                retain: true,
                properties: r.properties,
                expires: frame::expires_at(r.expiry_ms, Instant::now()),
                routed: None,
            });
            let stamp = Stamp {
                ts: r.ts,
                origin: Arc::from(r.origin.as_str()),
            };
            ctx.router.retained().apply_remote(&msg, stamp);
        }
        Frame::Client { id, at } => {
            // The same client id connected on the peer: the id is unique cluster-wide, and the
            // newer connection wins [MQTT-3.1.4-2]. Two nodes taking each other's client at
            // the same moment both hear of it; comparing connect times (then node ids) makes
            // them agree on the winner instead of each closing its own.
            if let Some(s) = ctx.sessions.get(&id) {
                if let Some(l) = s.lock().link() {
                    let ours = (l.connected_at(), &*cluster.node_id);
                    if ours < (at, &**node) {
                        l.kick(crate::session::KickReason::TakenOver);
                    }
                }
            }
        }
        Frame::Peer { node_id, addr } => {
            if node_id != *cluster.node_id && !cluster.is_linked(&node_id) {
                super::dial::spawn_gossiped(addr, ctx.clone(), cluster.clone());
            }
        }
        Frame::Group {
            group,
            filter,
            weight,
        } => {
            if crate::topic::validate_filter(&filter).is_ok() {
                let key = GroupKey {
                    group: Arc::from(group.as_str()),
                    filter: Arc::from(filter.as_str()),
                };
                if cluster.on_group(node, link_id, &key, weight) {
                    ctx.router.groups().set_remote(&key, node, weight);
                }
            }
        }
        Frame::Info(_) => return Err(LinkError::Unexpected("INFO")),
        Frame::Welcome => return Err(LinkError::Unexpected("WELCOME")),
        Frame::Auth(_) => return Err(LinkError::Unexpected("AUTH")),
    }
    Ok(None)
}
