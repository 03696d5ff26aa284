//! The per-connection driver: one task per client, generic over the transport.
//!
//! Owns the read → decode → session/router path and the queue → encode → write path of one
//! connection, the CONNECT timeout and keep-alive. It is the single place where an error
//! becomes a disconnect (with a named [`CloseReason`]). Reads and writes are batched: one
//! read may carry many packets, and everything queued is encoded into one buffer and written
//! with one call.

mod auth;
mod connect;
mod finish;
mod held;
mod inbound;
mod lifecycle;
mod pacing;
mod read;
mod reason;
mod subscribe;
mod v5;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::codec::{self, ConnAck, Connect, ConnectReturnCode, DecodeError, LastWill, Packet};
use crate::context::Context;
use crate::flow::{Pacing, Step};
use crate::message::Message;
use crate::metrics;
use crate::session::{ConnLink, Egress, Outbox, Session};
use crate::store::DetachOutcome;
use held::Held;
use lifecycle::{close, open};
use read::{ReadSide, ReadSize};

pub use reason::CloseReason;

/// PUBLISH packets set aside while paced, at most; then reading stops too.
const DEFER_MAX: usize = 256;

/// Batches of acknowledgements waiting for the store past which the client is not read: a
/// publisher that does not wait for its acknowledgements (3.1.1 sets no limit) is then paced
/// by the disk instead of filling memory with what waits.
const UNSYNCED_MAX: usize = 128;

/// PUBLISH packets of one read accepted before they are routed, at most: the bound on how
/// far a publisher runs past a subscriber that starts pacing it mid-batch.
const ROUTE_BATCH: usize = 64;

/// A batch holding at least this many QoS 1/2 PUBLISH packets has its acknowledgements
/// written before it is routed (see [`Conn::route_batch`]); smaller ones are routed first,
/// so that at low rates the delivery leaves before the acknowledgement (latency).
const ACK_FIRST: usize = 16;

/// ... unless the previous batch met a subscriber queue this deep: its subscribers are not
/// keeping up, and acknowledging early would only let the publisher queue more (fan-in).
const ACK_FIRST_DEPTH: usize = 2 * ROUTE_BATCH;

/// A read at least this large ends the connection's turn on the runtime (fairness).
const FAIR_READ: usize = 64 * 1024;

/// A read whose messages were queued for at least this many deliveries to other sessions
/// also ends the turn: the subscribers it fed write before the publisher reads again
/// (fan-out), or else a publisher acknowledged early runs ahead of its subscribers.
const FAIR_ROUTED: usize = 256;

/// Below this many bytes per read or write a connection counts as not busy, and its empty
/// buffers are released rather than kept.
const IDLE_BUFFER: usize = 4096;

/// The keep-alive timer's period when the client asked for none (it then never fires).
const NO_KEEP_ALIVE: Duration = Duration::from_secs(86_400 * 365);

/// What the transport knows about a connection before MQTT starts.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The verified client certificate's CN, on TLS listeners with `use_cn_as_username`.
    pub cert_cn: Option<String>,
}

/// Serves one client connection until it closes. Never panics on client input.
///
/// The returned future is what every connection's task holds for its whole life, so it is
/// kept small: the CONNECT phase (read, authentication, refusal) and the closing phase run
/// in boxed futures of their own, freed as soon as they finish, and only the serving loop's
/// state stays inline (memory per idle connection).
pub fn serve<T>(
    io: T,
    info: ConnInfo,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let opening = Box::pin(open(Conn::new(io, ctx), info, shutdown.clone()));
    serving(opening, shutdown)
}

/// [`serve`] for a TCP connection accepted elsewhere: it is registered with the I/O driver
/// of the runtime that first polls the returned future (see [`crate::engine`]).
pub fn serve_tcp(
    stream: std::net::TcpStream,
    info: ConnInfo,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send {
    let stop = shutdown.clone();
    let opening = Box::pin(async move {
        let io = match tokio::net::TcpStream::from_std(stream) {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!(peer = %info.peer, "cannot register the connection: {e}");
                return None;
            }
        };
        open(Conn::tcp(io, ctx), info, stop).await
    });
    serving(opening, shutdown)
}

type Opened<R, W> = Option<(Conn<R, W>, Live, Option<Box<LastWill>>)>;

/// What a connection's task holds for its life: the boxed CONNECT phase, then the loop,
/// then the boxed closing phase.
async fn serving<R, W>(
    opening: Pin<Box<impl Future<Output = Opened<R, W>> + Send>>,
    shutdown: CancellationToken,
) where
    R: ReadSide + Send,
    W: AsyncWrite + Unpin + Send,
{
    let Some((mut conn, mut live, will)) = opening.await else {
        return;
    };
    let reason = conn.run(&mut live, &shutdown).await;
    Box::pin(async move {
        conn.finish_deferred(&mut live, &reason, &shutdown).await;
        close(conn, live, will, reason).await;
    })
    .await;
}

/// The I/O side of a connection.
struct Conn<R, W> {
    rd: R,
    wr: W,
    rbuf: BytesMut,
    wbuf: Outbox,
    ctx: Arc<Context>,
}

/// A PUBLISH set aside while its client is paced.
#[derive(Debug)]
enum Deferred {
    /// Not yet handled (nor acknowledged).
    Unhandled(Packet),
    /// Accepted and acknowledged with its batch; only its routing waits.
    Accepted(Message),
    /// Routed, but refused by full readers: delivered to them once they drain.
    Remainder(crate::router::Remainder),
    /// With a durable store: the acknowledgements of the messages set aside before this,
    /// released (once durable) when those are routed.
    Acks(BytesMut),
}

/// The session side of an accepted connection.
struct Live {
    session: Arc<Session>,
    /// How PUBLISH packets are written to this client: the protocol level of its CONNECT
    /// (what all its packets are read and written at) and its MQTT 5 limits.
    egress: Egress,
    /// What only an MQTT 5 client has (`None` below level 5).
    v5: Option<Box<v5::V5>>,
    gen: u64,
    link: ConnLink,
    /// The queue may hold messages that fit in the window: drain before waiting.
    needs_drain: bool,
    /// 1.5 × the keep-alive in force [MQTT-3.1.2-24], in milliseconds; 0 when it is 0.
    /// In milliseconds, 0 when it is 0: kept in 4 bytes (memory per idle connection).
    keep_alive_ms: u32,
    /// The username the ACL knows this client by (`None`: anonymous).
    username: Option<Arc<str>>,
    /// The per-message ACL check of this client's subscriptions (with an ACL file).
    read: Option<Arc<crate::auth::ReadGate>>,
    /// SUBACKs waiting for the cluster to have their interest (and acknowledgements behind
    /// them); while any is held the queue is not drained. Boxed, and only while held: rare,
    /// and it would otherwise sit in every connection's task.
    held: Option<Box<Held>>,
    /// Packets are left in the read buffer (handling stopped for pacing).
    backlog: bool,
    /// The client owes acknowledgements for messages sent to it: keep reading while paced,
    /// so a client that is also a subscriber keeps draining its own queue (two clients
    /// that publish to each other would otherwise wait for each other for good).
    awaiting_acks: bool,
    /// Made when the client first publishes: a connection that only subscribes (or idles)
    /// does not carry it in its task (memory per idle connection).
    publishing: Option<Box<Publishing>>,
}

/// The publishing side of a connection.
struct Publishing {
    /// Flow control: the reader this client waits for, and the PUBLISH packets set aside
    /// meanwhile (in order, at most `DEFER_MAX`) while acknowledgements and pings go on
    /// being handled.
    pacing: Pacing<Deferred>,
    /// Deliveries queued by this client's messages since its last read.
    routed: usize,
    /// The longest subscriber queue this client's last routed batch met.
    deepest: usize,
    /// Where this client's last topic went.
    memo: Option<Box<crate::router::RouteMemo>>,
    /// The last batch woke a subscriber served by this thread.
    woke_here: bool,
    /// A small batch woke subscribers of this thread while its acknowledgements are still
    /// unwritten: this connection yields once, so the deliveries leave first and a client
    /// that is waiting for both (a publisher that also subscribes, a test harness) is woken
    /// once, not twice (latency at low rates).
    deliveries_first: bool,
    /// With a durable store: acknowledgements waiting for what their messages changed to be
    /// durable, in order (see `pacing::release_acks`).
    synced: std::collections::VecDeque<(crate::store::SyncWait, BytesMut)>,
}

impl Publishing {
    fn boxed() -> Box<Publishing> {
        Box::new(Publishing {
            pacing: Pacing::new(DEFER_MAX),
            routed: 0,
            deepest: 0,
            memo: None,
            woke_here: false,
            deliveries_first: false,
            synced: std::collections::VecDeque::new(),
        })
    }

    /// Whether more may be read from this client: fewer than `DEFER_MAX` PUBLISH packets set
    /// aside, and fewer than `UNSYNCED_MAX` batches of acknowledgements waiting for the store.
    fn may_read(&self) -> bool {
        self.pacing.may_read() && self.synced.len() < UNSYNCED_MAX
    }
}

impl Live {
    /// Ready when the link was woken (queue, kick) or the first held SUBACK may go.
    fn poll_woken(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if let Some(held) = self.held.as_mut() {
            if held.poll_front(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        if let Some((wait, _)) = self.publishing.as_mut().and_then(|p| p.synced.front_mut()) {
            if wait.as_mut().poll(cx).is_ready() {
                // Resolved waits stay resolved: `release_synced` takes it.
                *wait = Box::pin(std::future::ready(()));
                return std::task::Poll::Ready(());
            }
        }
        self.link.poll_woken(cx)
    }

    /// 1.5 × the keep-alive in force [MQTT-3.1.2-24]; `None` when it is 0.
    fn keep_alive(&self) -> Option<Duration> {
        (self.keep_alive_ms > 0).then(|| Duration::from_millis(u64::from(self.keep_alive_ms)))
    }

    fn publishing(&mut self) -> &mut Publishing {
        self.publishing.get_or_insert_with(Publishing::boxed)
    }

    /// Whether more may be read from the client (fewer than `DEFER_MAX` set aside).
    fn may_read(&self) -> bool {
        self.publishing.as_ref().map_or(true, |p| p.may_read())
    }
}

impl<R, W> Conn<R, W> {
    /// Neither buffer is made until it is needed.
    fn from_halves(rd: R, wr: W, ctx: Arc<Context>) -> Self {
        Conn {
            wbuf: Outbox::default(),
            rd,
            wr,
            rbuf: BytesMut::new(),
            ctx,
        }
    }
}

impl<T: AsyncRead + AsyncWrite> Conn<tokio::io::ReadHalf<T>, tokio::io::WriteHalf<T>> {
    fn new(io: T, ctx: Arc<Context>) -> Self {
        let (rd, wr) = tokio::io::split(io);
        Conn::from_halves(rd, wr, ctx)
    }
}

impl Conn<tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf> {
    /// A TCP connection: its read half can wait for readiness without a buffer.
    fn tcp(io: tokio::net::TcpStream, ctx: Arc<Context>) -> Self {
        let (rd, wr) = io.into_split();
        Conn::from_halves(rd, wr, ctx)
    }
}

impl<R: ReadSide, W: AsyncWrite + Unpin> Conn<R, W> {
    async fn run(&mut self, live: &mut Live, shutdown: &CancellationToken) -> CloseReason {
        let wmax = self.ctx.config.engine.write_buffer_size;
        let mut last_activity = Instant::now();
        let timer = tokio::time::sleep(live.keep_alive().unwrap_or(NO_KEEP_ALIVE));
        tokio::pin!(timer);
        let mut size = ReadSize::default();
        if self.rbuf.is_empty() {
            // The CONNECT is handled: an idle connection keeps no read buffer.
            self.rbuf = BytesMut::new();
        }
        // Shutdown reaches a serving connection as a kick through its link (see
        // `Broker::start`), so the loop waits on the link alone; the token is still checked on
        // every turn for a connection that attached just as the shutdown began.
        // Boxed, and only while paced: the wait (a timer and a channel) would otherwise sit in
        // every connection's task.
        let mut paused: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
        // Packets already buffered behind the CONNECT are handled before the first read.
        if let Err(r) = self.handle_buffered(live) {
            return r;
        }
        loop {
            if shutdown.is_cancelled() {
                return CloseReason::Shutdown;
            }
            self.release_held(live);
            self.release_synced(live);
            // Not drained while a SUBACK is held: the retained messages of its subscription
            // wait behind it, and deliveries keep their order with them.
            if live.needs_drain && live.held.is_none() && self.wbuf.len() < wmax {
                let mut st = live.session.lock();
                if !st.is_served_by(live.gen) {
                    drop(st);
                    if shutdown.is_cancelled() {
                        return CloseReason::Shutdown;
                    }
                    return live
                        .link
                        .kick_reason()
                        .map_or(CloseReason::TakenOver, CloseReason::from);
                }
                let egress = &mut live.egress;
                let now = Instant::now();
                let r = match &self.ctx.message_hooks {
                    None => st.fill(&mut self.wbuf, wmax, egress, now),
                    Some(h) => {
                        let client_id = &live.session.client_id;
                        st.fill_with(&mut self.wbuf, wmax, egress, now, |d| {
                            h.on_event(&crate::hooks::Event::MessageDelivered {
                                client_id,
                                topic: &d.msg.topic,
                                qos: d.qos,
                                payload: &d.msg.payload,
                            });
                        })
                    }
                };
                live.awaiting_acks = st.inflight() > 0;
                drop(st);
                metrics::add(&self.ctx.metrics.publish_sent, r.sent);
                metrics::add(&self.ctx.metrics.dropped_expired, r.expired);
                metrics::add(&self.ctx.metrics.dropped_too_large, r.too_large);
                if let (Some(h), Some(at)) = (&self.ctx.latency, r.first_routed) {
                    h.observe(now.saturating_duration_since(at));
                }
                // What this turn changed (acknowledgements read, messages sent) goes to the
                // store's journal, if it keeps this session.
                self.ctx.sessions.commit(&live.session);
                if r.exactly_once > 0 {
                    // QoS 2 PUBLISH packets go out once their packet ids are durable.
                    if let Some(wait) = self.ctx.sessions.durable() {
                        live.held.get_or_insert_with(Box::default).gate = Some(wait);
                    }
                }
                live.needs_drain = r.more;
                if r.relieved {
                    live.session.relieve();
                }
            }
            // Flow control: a reader this client outpaces, and that still drains, pauses the
            // handling of this client's PUBLISH packets until it catches up instead of losing
            // them; writes to this client go on meanwhile. Until then, whatever was set
            // aside is handled, in order, then the rest of the read buffer.
            if paused.is_none() {
                match self.pace(live) {
                    Ok(wait) => paused = wait,
                    Err(r) => return r,
                }
            }
            let initial = self.ctx.config.engine.read_buffer_size;
            let room = size.reserve::<R>(&mut self.rbuf, initial);
            tokio::select! {
                // Always listened to, even with a drain pending: a kick comes this way too, and
                // a consumer that does not read (its buffer full, its drain pending) is the one
                // a slow-consumer kick is for.
                // A held SUBACK whose cluster barrier resolved wakes the loop this way too (it
                // goes out at the top of the loop): one branch, one borrow of `live`, to keep
                // the task small.
                () = std::future::poll_fn(|cx| live.poll_woken(cx)) => {
                    if let Some(k) = live.link.kick_reason() {
                        return k.into();
                    }
                    live.needs_drain = true;
                }
                r = std::future::poll_fn(|cx| self.wbuf.poll_write(&mut self.wr, cx)), if !self.wbuf.is_empty() && live.held.as_ref().map_or(true, |h| h.gate.is_none()) => match r {
                    Ok(0) => return CloseReason::PeerClosed,
                    Ok(n) => {
                        self.wbuf.advance(n);
                        metrics::add(&self.ctx.metrics.bytes_sent, n as u64);
                        if self.wbuf.is_empty() && n < IDLE_BUFFER {
                            // A connection that writes little keeps no write buffer between
                            // writes; a busy one keeps its buffer and reuses it in place.
                            self.wbuf.release();
                        }
                    }
                    Err(e) => return CloseReason::Io(e),
                },
                _ = async {
                    match paused.as_mut() {
                        Some(wait) => wait.await,
                        None => std::future::pending().await,
                    }
                }, if paused.is_some() => paused = None,
                // Backpressure: a client that does not read its acknowledgements is not read,
                // nor one whose subscribers need time to catch up.
                r = read::read(&mut self.rd, &mut self.rbuf, room), if self.wbuf.len() < 2 * wmax && live.may_read() && !live.backlog
                    && (paused.is_none() || live.awaiting_acks) => match r {
                    Ok(0) => return CloseReason::PeerClosed,
                    Ok(n) => {
                        size.record(n, room);
                        last_activity = Instant::now();
                        metrics::add(&self.ctx.metrics.bytes_received, n as u64);
                        if let Err(r) = self.handle_buffered(live) {
                            return r;
                        }
                        // Acknowledgements and QoS 2 ids of this read, for the journal.
                        self.ctx.sessions.commit(&live.session);
                        if size.idle(&self.rbuf) {
                            // Likewise for reads: idle connections hold no read buffer.
                            self.rbuf = BytesMut::new();
                        }
                        let (routed, first) = live.publishing.as_mut().map_or((0, false), |p| {
                            (std::mem::take(&mut p.routed), std::mem::take(&mut p.deliveries_first))
                        });
                        if n >= FAIR_READ || routed >= FAIR_ROUTED {
                            // A connection that keeps reading large batches lets the others
                            // (the subscribers it feeds among them) run before its next read,
                            // and the I/O driver look for other ready connections.
                            tokio::task::yield_now().await;
                        } else if first {
                            // A small batch: only the subscribers it woke go first.
                            requeue().await;
                        }
                    }
                    Err(e) => return CloseReason::Io(e),
                },
                _ = &mut timer, if live.keep_alive_ms > 0 => {
                    let ka = live.keep_alive().unwrap_or(NO_KEEP_ALIVE);
                    if last_activity.elapsed() >= ka {
                        return CloseReason::KeepAliveTimeout;
                    }
                    timer.as_mut().reset((last_activity + ka).into());
                }
            }
        }
    }

    /// Writes the acknowledgements whose messages are durable now, in order, up to the first
    /// that still waits.
    fn release_synced(&mut self, live: &mut Live) {
        let Some(p) = live.publishing.as_mut() else {
            return;
        };
        use futures_util::FutureExt;
        while let Some((wait, _)) = p.synced.front_mut() {
            if wait.now_or_never().is_none() {
                break;
            }
            if let Some((_, acks)) = p.synced.pop_front() {
                self.wbuf.buf().extend_from_slice(&acks);
            }
        }
    }

    /// Writes the held acknowledgements whose barriers have resolved, in order, up to the first
    /// that still waits.
    fn release_held(&mut self, live: &mut Live) {
        let Some(held) = live.held.as_mut() else {
            return;
        };
        while let Some((None, _)) = held.acks.front() {
            if let Some((_, ack)) = held.acks.pop_front() {
                self.wbuf.buf().extend_from_slice(&ack);
            }
        }
        if held.acks.is_empty() && held.gate.is_none() {
            live.held = None;
        }
    }

    /// Writes what is buffered if the socket takes it at once (never waits).
    fn flush_now(&mut self) {
        use futures_util::FutureExt;
        if self.wbuf.is_empty() {
            return;
        }
        let wr = &mut self.wr;
        let wbuf = &self.wbuf;
        if let Some(Ok(n)) = std::future::poll_fn(|cx| wbuf.poll_write(wr, cx)).now_or_never() {
            self.wbuf.advance(n);
            metrics::add(&self.ctx.metrics.bytes_sent, n as u64);
        }
    }
}

/// Lets the tasks already queued on this thread run once before this one goes on.
///
/// `tokio::task::yield_now` would do it too, but a current-thread runtime polls its I/O
/// driver (one more `epoll_wait`) before it resumes a task that yielded that way: at low
/// rates that is a syscall per batch for nothing. Waking the task itself puts it at the
/// back of the run queue, behind the subscribers it just woke.
async fn requeue() {
    let mut queued = false;
    std::future::poll_fn(|cx| {
        if queued {
            return std::task::Poll::Ready(());
        }
        queued = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
#[path = "size_tests.rs"]
mod size_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publisher_with_too_many_acknowledgements_waiting_for_the_store_is_not_read() {
        let mut p = Publishing::boxed();
        for _ in 0..UNSYNCED_MAX - 1 {
            p.synced
                .push_back((Box::pin(std::future::pending()), BytesMut::new()));
        }
        assert!(p.may_read(), "one batch short of the bound");
        p.synced
            .push_back((Box::pin(std::future::pending()), BytesMut::new()));
        assert!(!p.may_read(), "at the bound: stop reading");
        // The oldest is durable and written out (`release_synced`): reading goes on.
        p.synced.pop_front();
        assert!(p.may_read());
    }
}
