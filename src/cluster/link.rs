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
use super::ingress::{self, Blocked};
use super::node::{Cluster, RegisterError};
use crate::context::Context;
use crate::metrics;

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
            if matches!(e, LinkError::Frame(FrameError::BadVersion(_))) {
                // Not transient: the link cannot come up until the nodes are upgraded alike.
                tracing::error!(peer = ?peer_addr, "route handshake refused: {e}");
            } else {
                tracing::warn!(peer = ?peer_addr, "route handshake refused: {e}");
            }
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
    for key in cluster.unregister(&node, error.0, &ctx.router) {
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
    for f in cluster.interest_snapshot(ctx.router.local_interest()) {
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
    let now = Instant::now();
    for (m, s) in snap.held {
        // An expired retained message is not replicated [MQTT-3.3.2-5].
        let Some(expiry_ms) = frame::expiry_ms(m.expires, now) else {
            continue;
        };
        frame::encode(
            &Frame::Retain(RetainEntry {
                topic: m.topic.clone(),
                payload: m.payload.clone(),
                qos: m.qos as u8,
                ts: s.ts,
                origin: s.origin.to_string(),
                expiry_ms,
                properties: m.properties.clone(),
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
                expiry_ms: 0,
                properties: crate::codec::Properties::new(),
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
    // A message local readers have not taken yet: reading waits for it (flow control).
    let mut blocked: Option<Blocked> = None;
    let mut relief: Option<ingress::Relief> = None;
    loop {
        tokio::select! {
            // Replaced by a newer link, or shutting down: see below the loop.
            _ = reg.kick.cancelled() => break,
            _ = tick.tick() => {
                // While reading waits for local readers the peer's pings are not read; that
                // is not the peer's silence.
                if blocked.is_none() && last_rx.elapsed() > cluster.ping_interval * 3 {
                    return (id, LinkError::Silent);
                }
                frame::encode(&Frame::Ping, &mut wbuf);
            }
            _ = async {
                match relief.as_mut() {
                    Some(r) => r.await,
                    None => std::future::pending().await,
                }
            }, if relief.is_some() => {
                last_rx = Instant::now();
                blocked = blocked.take().and_then(|b| b.resume(ctx));
                if blocked.is_none() {
                    match ingress::apply(rbuf, node, id, ctx, cluster, &mut wbuf, &reg.stats) {
                        Ok(b) => blocked = b,
                        Err(e) => return (id, e),
                    }
                }
                relief = blocked.as_ref().map(Blocked::relief);
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
            r = rd.read_buf(rbuf), if blocked.is_none() => match r {
                Ok(0) => return (id, LinkError::Closed),
                Ok(n) => {
                    last_rx = Instant::now();
                    metrics::add(&reg.stats.bytes_in, n as u64);
                    match ingress::apply(rbuf, node, id, ctx, cluster, &mut wbuf, &reg.stats) {
                        Ok(b) => blocked = b,
                        Err(e) => return (id, e),
                    }
                    relief = blocked.as_ref().map(Blocked::relief);
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
        loop {
            while let Some(b) = blocked.take() {
                b.relief().await;
                blocked = b.resume(ctx);
            }
            match ingress::apply(rbuf, node, id, ctx, cluster, &mut scratch, &reg.stats) {
                Ok(b) => blocked = b,
                Err(_) => break,
            }
            scratch.clear();
            if blocked.is_some() {
                continue;
            }
            match rd.read_buf(rbuf).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    })
    .await;
    (id, LinkError::Replaced)
}
