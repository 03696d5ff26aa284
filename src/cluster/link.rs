//! One route link: the handshake, the initial snapshot, then frames both ways until the link
//! dies. One task per link; writes are batched like client writes.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use ring::hmac;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::frame::{self, Frame, FrameError, Info, RetainEntry};
use super::node::{Cluster, RegisterError};
use crate::codec::QoS;
use crate::context::Context;
use crate::message::Message;
use crate::metrics;
use crate::router::RouteMeta;
use crate::store::Stamp;
use crate::topic::GroupKey;

const WRITE_BATCH: usize = 256 * 1024;

/// Why a link ended or was refused.
#[derive(Debug, Error)]
pub enum LinkError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("handshake timed out")]
    HandshakeTimeout,
    #[error("peer closed the link")]
    Closed,
    #[error("link to self")]
    SelfLink,
    #[error("peer belongs to cluster `{0}`")]
    WrongCluster(String),
    #[error("peer failed the shared-secret check")]
    BadSecret,
    #[error("another node already uses node id `{0}`")]
    DuplicateNodeId(String),
    #[error("duplicate link to `{0}` (the other one is kept)")]
    Duplicate(Arc<str>),
    #[error("unexpected {0} frame after the handshake")]
    Unexpected(&'static str),
    #[error("peer silent for three ping intervals")]
    Silent,
    #[error("replaced by a newer link")]
    Replaced,
    #[error("shutting down")]
    Shutdown,
}

/// How a link ended, for the dialer's retry policy.
#[derive(Debug)]
pub struct LinkEnd {
    pub peer: Option<Arc<str>>,
    pub error: LinkError,
}

fn proof(secret: &str, nonce: u64, node: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut data = nonce.to_be_bytes().to_vec();
    data.extend_from_slice(node.as_bytes());
    hmac::sign(&key, &data).as_ref().to_vec()
}

struct Io<S> {
    stream: S,
    rbuf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// Reads one handshake frame. The peer is not authenticated yet, so the frame is bounded
    /// by [`frame::MAX_HANDSHAKE_FRAME`]: a declared length beyond it ends the link from the
    /// header, before the body is buffered.
    async fn read_frame(&mut self) -> Result<Frame, LinkError> {
        loop {
            if let Some(f) = frame::decode_limited(&mut self.rbuf, frame::MAX_HANDSHAKE_FRAME)? {
                return Ok(f);
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(LinkError::Closed);
            }
        }
    }

    async fn handshake(&mut self, cluster: &Cluster) -> Result<Info, LinkError> {
        let nonce: u64 = rand::random();
        let mut out = BytesMut::new();
        frame::encode_preamble(&mut out);
        frame::encode(
            &Frame::Info(Info {
                node_id: cluster.node_id.to_string(),
                cluster: cluster.name.clone(),
                advertise: cluster.advertise.clone(),
                instance: cluster.instance,
                nonce,
            }),
            &mut out,
        );
        self.stream.write_all(&out).await?;
        while !frame::decode_preamble(&mut self.rbuf)? {
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(LinkError::Closed);
            }
        }
        let Frame::Info(info) = self.read_frame().await? else {
            return Err(LinkError::Unexpected("non-INFO"));
        };
        if info.node_id == *cluster.node_id {
            return Err(if info.instance == cluster.instance {
                LinkError::SelfLink
            } else {
                LinkError::DuplicateNodeId(info.node_id)
            });
        }
        if info.cluster != cluster.name {
            return Err(LinkError::WrongCluster(info.cluster));
        }
        if let Some(secret) = &cluster.secret {
            let mine = proof(secret, info.nonce, &cluster.node_id);
            let mut out = BytesMut::new();
            frame::encode(&Frame::Auth(Bytes::from(mine)), &mut out);
            self.stream.write_all(&out).await?;
            let Frame::Auth(theirs) = self.read_frame().await? else {
                return Err(LinkError::BadSecret);
            };
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
            let mut data = nonce.to_be_bytes().to_vec();
            data.extend_from_slice(info.node_id.as_bytes());
            // Constant-time comparison.
            hmac::verify(&key, &data, &theirs).map_err(|_| LinkError::BadSecret)?;
        }
        Ok(info)
    }
}

/// Runs `step` of a handshake: it fails at `deadline`, and gives up at shutdown (a peer that
/// never answers must not hold the broker's shutdown for the whole handshake timeout).
async fn step<T, E>(
    deadline: tokio::time::Instant,
    shutdown: &CancellationToken,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, LinkError>
where
    LinkError: From<E>,
{
    tokio::select! {
        _ = shutdown.cancelled() => Err(LinkError::Shutdown),
        r = tokio::time::timeout_at(deadline, step) => match r {
            Ok(r) => r.map_err(LinkError::from),
            Err(_) => Err(LinkError::HandshakeTimeout),
        },
    }
}

/// What bounds a link until it is registered: the handshake deadline, and an accepted
/// connection's admission permit.
#[derive(Debug)]
struct Admission {
    deadline: tokio::time::Instant,
    permit: Option<OwnedSemaphorePermit>,
}

/// Runs one link until it ends; `dialed` is the address this node dialled, or `None` for an
/// accepted connection. Everything before the link is registered (TLS, INFO/AUTH, WELCOME)
/// shares one deadline, `cluster.handshake_timeout` from now: a peer that trickles its
/// handshake cannot renew the bound step by step.
///
/// `permit` is an accepted connection's place among the strangers the route port admits
/// (`cluster.max_route_connections`): it is given back once the peer has passed the handshake
/// and its link is registered, so connections that never authenticate cannot keep a real peer
/// out for longer than a handshake lasts.
pub async fn run(
    stream: TcpStream,
    dialed: Option<&str>,
    permit: Option<OwnedSemaphorePermit>,
    ctx: Arc<Context>,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
) -> LinkEnd {
    let _ = stream.set_nodelay(true);
    let peer_addr = stream.peer_addr().ok();
    let admission = Admission {
        deadline: tokio::time::Instant::now() + ctx.config.cluster.handshake_timeout,
        permit,
    };
    let Some(tls) = cluster.tls.clone() else {
        return run_on(
            stream,
            dialed.is_some(),
            peer_addr,
            admission,
            ctx,
            cluster,
            shutdown,
        )
        .await;
    };
    let error = match dialed {
        Some(addr) => {
            let connect = async { tls.connect(addr, stream).await.map_err(LinkError::Tls) };
            match step(admission.deadline, &shutdown, connect).await {
                Ok(s) => {
                    return run_on(s, true, peer_addr, admission, ctx, cluster, shutdown).await
                }
                Err(e) => e,
            }
        }
        None => {
            let accept = async { tls.accept(stream).await.map_err(LinkError::Tls) };
            match step(admission.deadline, &shutdown, accept).await {
                Ok(s) => {
                    return run_on(s, false, peer_addr, admission, ctx, cluster, shutdown).await
                }
                Err(e) => e,
            }
        }
    };
    if !matches!(error, LinkError::Shutdown) {
        metrics::inc(&ctx.metrics.route_handshake_rejected);
        tracing::warn!(peer = ?peer_addr, "route TLS handshake failed: {error}");
    }
    LinkEnd { peer: None, error }
}

async fn run_on<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    dialed: bool,
    peer_addr: Option<std::net::SocketAddr>,
    admission: Admission,
    ctx: Arc<Context>,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
) -> LinkEnd {
    let Admission { deadline, permit } = admission;
    let mut io = Io {
        stream,
        rbuf: BytesMut::with_capacity(8192),
    };
    let info = match step(deadline, &shutdown, io.handshake(&cluster)).await {
        Ok(info) => info,
        Err(LinkError::Shutdown) => {
            return LinkEnd {
                peer: None,
                error: LinkError::Shutdown,
            }
        }
        Err(e) => {
            metrics::inc(&ctx.metrics.route_handshake_rejected);
            tracing::warn!(peer = ?peer_addr, "route handshake refused: {e}");
            return LinkEnd {
                peer: None,
                error: e,
            };
        }
    };
    let node: Arc<str> = Arc::from(info.node_id.as_str());
    let dialer = if dialed {
        cluster.node_id.clone()
    } else {
        node.clone()
    };
    if dialed {
        // The accepting side decides whether a link is kept: it registers first and says so
        // with WELCOME, or closes a duplicate. Registering only then means a link the peer
        // refuses is never used here, not even for the moment it takes to hear of it.
        let refused = |error| LinkEnd { peer: None, error };
        match step(deadline, &shutdown, io.read_frame()).await {
            Ok(Frame::Welcome) => {}
            Ok(_) => return refused(LinkError::Unexpected("non-WELCOME")),
            Err(LinkError::Closed) => {
                tracing::debug!(peer = %node, "route refused by the peer; its other link is kept");
                return LinkEnd {
                    peer: Some(node.clone()),
                    error: LinkError::Duplicate(node),
                };
            }
            Err(e) => return refused(e),
        }
    }
    let reg = match cluster.register(
        node.clone(),
        info.instance,
        dialer,
        info.advertise.clone(),
        &shutdown,
    ) {
        Ok(r) => r,
        Err(RegisterError::Duplicate) => {
            tracing::debug!(peer = %node, "duplicate route closed; the other link is kept");
            return LinkEnd {
                peer: Some(node.clone()),
                error: LinkError::Duplicate(node),
            };
        }
        Err(RegisterError::DuplicateNodeId) => {
            metrics::inc(&ctx.metrics.route_handshake_rejected);
            tracing::error!(peer = %node, "refused: another running node already uses this node id");
            return LinkEnd {
                peer: None,
                error: LinkError::DuplicateNodeId(node.to_string()),
            };
        }
    };
    // An authenticated peer: no longer one of the strangers the accept loop bounds.
    drop(permit);
    tracing::info!(peer = %node, addr = %info.advertise, dialed, "route link up");
    // Discovery: the new peer learns every other peer, and they learn it.
    cluster.gossip(&node, &info.advertise);
    let gate = reg.gate.clone();
    let error = serve(io, dialed, &node, reg, &ctx, &cluster, &shutdown).await;
    gate.drained(0);
    for key in cluster.unregister(&node, error.0) {
        ctx.router.groups().set_remote(&key, &node, 0);
    }
    tracing::info!(peer = %node, reason = %error.1, "route link down");
    LinkEnd {
        peer: Some(node),
        error: error.1,
    }
}

/// The snapshot a peer gets on link up: interest (closed by `SnapshotEnd`), peers, retained
/// set.
fn snapshot(out: &mut BytesMut, node: &Arc<str>, ctx: &Context, cluster: &Cluster) {
    for f in cluster.interest_snapshot() {
        frame::encode(&f, out);
    }
    frame::encode(&Frame::SnapshotEnd, out);
    for (id, addr) in cluster.peer_addrs() {
        if id != *node {
            frame::encode(
                &Frame::Peer {
                    node_id: id.to_string(),
                    addr,
                },
                out,
            );
        }
    }
    let snap = ctx.router.retained().snapshot();
    for (m, s) in snap.held {
        frame::encode(
            &Frame::Retain(RetainEntry {
                topic: m.topic.clone(),
                payload: m.payload.clone(),
                qos: m.qos as u8,
                ts: s.ts,
                origin: s.origin.to_string(),
            }),
            out,
        );
    }
    for (topic, s) in snap.deleted {
        frame::encode(
            &Frame::Retain(RetainEntry {
                topic,
                payload: Bytes::new(),
                qos: 0,
                ts: s.ts,
                origin: s.origin.to_string(),
            }),
            out,
        );
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    io: Io<S>,
    dialed: bool,
    node: &Arc<str>,
    mut reg: super::node::Registered,
    ctx: &Arc<Context>,
    cluster: &Arc<Cluster>,
    shutdown: &CancellationToken,
) -> (u64, LinkError) {
    let id = reg.link_id;
    let mut wbuf = BytesMut::new();
    if !dialed {
        frame::encode(&Frame::Welcome, &mut wbuf);
    }
    // The snapshot goes first: frames queued on `rx` since registration follow it, so an
    // UNSUB never overtakes the SUB it withdraws.
    snapshot(&mut wbuf, node, ctx, cluster);
    let mut last_rx = Instant::now();
    let Io { stream, mut rbuf } = io;
    let rbuf = &mut rbuf;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut tick = tokio::time::interval(cluster.ping_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Replaced by a newer link, or shutting down: see below the loop.
            _ = reg.kick.cancelled() => break,
            _ = tick.tick() => {
                if last_rx.elapsed() > cluster.ping_interval * 3 {
                    return (id, LinkError::Silent);
                }
                frame::encode(&Frame::Ping, &mut wbuf);
            }
            r = wr.write(&wbuf), if !wbuf.is_empty() => match r {
                Ok(0) => return (id, LinkError::Closed),
                Ok(n) => {
                    wbuf.advance(n);
                    metrics::add(&reg.stats.bytes_out, n as u64);
                }
                Err(e) => return (id, e.into()),
            },
            f = reg.rx.recv(), if wbuf.len() < WRITE_BATCH => {
                // The queue's sender is dropped only when a newer link replaced this one.
                let Some(f) = f else { break };
                wbuf.extend_from_slice(&f);
                while wbuf.len() < WRITE_BATCH {
                    match reg.rx.try_recv() {
                        Ok(f) => wbuf.extend_from_slice(&f),
                        Err(_) => break,
                    }
                }
                reg.gate.drained(reg.rx.len());
            }
            r = rd.read_buf(rbuf) => match r {
                Ok(0) => return (id, LinkError::Closed),
                Ok(n) => {
                    last_rx = Instant::now();
                    metrics::add(&reg.stats.bytes_in, n as u64);
                    loop {
                        match frame::decode(rbuf) {
                            Ok(Some(f)) => {
                                if let Err(e) = handle(f, node, id, ctx, cluster, &mut wbuf, &reg.stats) {
                                    return (id, e);
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return (id, e.into()),
                        }
                    }
                    if rbuf.capacity() - rbuf.len() < 4096 {
                        rbuf.reserve(64 * 1024);
                    }
                }
                Err(e) => return (id, e.into()),
            },
        }
    }
    if shutdown.is_cancelled() {
        return (id, LinkError::Shutdown);
    }
    // Replaced by a newer link to the same process: what the peer sent on this one before
    // it switched is still read and applied, so the switch loses no message. The peer must
    // not see this link end before it has switched too, or it would drop our interest in
    // the meantime: a new link is dialled by the smaller node id (the duplicate rule) and
    // registered by its acceptor first, so the larger id, which switches first, waits for
    // the smaller to close the old link once it has switched, then closes its end.
    let close_first = *cluster.node_id < **node;
    let _ = tokio::time::timeout(cluster.ping_interval * 3, async {
        if close_first {
            let _ = wr.shutdown().await;
        }
        let mut scratch = BytesMut::new();
        while let Ok(n) = rd.read_buf(rbuf).await {
            if n == 0 {
                break;
            }
            while let Ok(Some(f)) = frame::decode(rbuf) {
                let _ = handle(f, node, id, ctx, cluster, &mut scratch, &reg.stats);
                scratch.clear();
            }
        }
    })
    .await;
    (id, LinkError::Replaced)
}

fn handle(
    f: Frame,
    node: &Arc<str>,
    link_id: u64,
    ctx: &Arc<Context>,
    cluster: &Arc<Cluster>,
    out: &mut BytesMut,
    stats: &super::stats::LinkStats,
) -> Result<(), LinkError> {
    match f {
        Frame::Ping => frame::encode(&Frame::Pong, out),
        Frame::Pong => {}
        Frame::Sub(filter) => cluster.on_sub(node, link_id, filter),
        Frame::Unsub(filter) => cluster.on_unsub(node, link_id, &filter),
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
            for key in cluster.on_snapshot_end(node, link_id) {
                ctx.router.groups().set_remote(&key, node, 0);
            }
        }
        Frame::Msg(m) => {
            metrics::inc(&stats.msgs_in);
            let Some(qos) = QoS::from_u8(m.qos) else {
                return Err(LinkError::Unexpected("bad QoS"));
            };
            let msg = Message {
                topic: m.topic,
                payload: m.payload,
                qos,
                retain: m.retain,
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
            ctx.router.publish_from_route(msg, meta, Instant::now());
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
    Ok(())
}
