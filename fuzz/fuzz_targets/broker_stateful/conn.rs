//! One fuzzed client connection, from the client's side: the bytes it wrote, what it
//! received (decoded as it arrives, and for the watcher acknowledged), waiting for the
//! broker to catch up, and closing.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use supermq::codec::{self, Ack, DecodeLimits, Packet, ProtocolLevel, QoS};
use supermq::connection::{self, ConnInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::model::{model, End};
use crate::{Harness, PIPE, SETTLE};

/// What the reading side of a connection has seen.
#[derive(Default)]
pub(crate) struct RxState {
    pub(crate) packets: Vec<Packet>,
    pingresps: usize,
    pub(crate) eof: bool,
}

pub(crate) struct Rx {
    pub(crate) state: Mutex<RxState>,
    changed: Notify,
    /// The level of the client's first CONNECT, what the broker reads and writes at from
    /// then on; 0 until one is sent (3.1.1 meanwhile).
    level: AtomicU8,
}

impl Default for Rx {
    fn default() -> Self {
        Rx {
            state: Mutex::default(),
            changed: Notify::new(),
            level: AtomicU8::new(0),
        }
    }
}

impl Rx {
    fn level(&self) -> ProtocolLevel {
        ProtocolLevel::from_u8(self.level.load(Ordering::Acquire)).unwrap_or(ProtocolLevel::V311)
    }

    /// Waits until `done` holds of the state, or `SETTLE` passes; returns whether it held.
    pub(crate) async fn wait(&self, done: impl Fn(&RxState) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.state.lock().expect("rx lock")) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.state.lock().expect("rx lock"));
            }
        }
    }
}

type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// One client connection, from the client's side.
pub(crate) struct Conn {
    wr: Writer,
    pending: Vec<u8>,
    /// Everything written so far: what the broker decodes.
    sent: Vec<u8>,
    pub(crate) rx: Arc<Rx>,
    reader: JoinHandle<()>,
    /// The broker's task for this connection (duplex transport only).
    serve: Option<JoinHandle<()>>,
    next_pkid: u16,
    /// The level packets are pushed at (see [`Conn::push`]).
    encode_level: Option<ProtocolLevel>,
}

/// What a finished connection exchanged.
pub(crate) struct Record {
    pub(crate) sent: Vec<u8>,
    pub(crate) received: Vec<Packet>,
}

/// Reads and decodes everything the broker sends; with `ack`, answers each QoS 1/2 PUBLISH
/// (and PUBREL) like a well-behaved client.
async fn read_loop(mut rd: impl AsyncRead + Unpin, rx: Arc<Rx>, mut ack: Option<Writer>) {
    let mut buf = BytesMut::with_capacity(8192);
    let limits = DecodeLimits::default();
    loop {
        let n = rd.read_buf(&mut buf).await.unwrap_or(0);
        let mut out = BytesMut::new();
        {
            let mut st = rx.state.lock().expect("rx lock");
            let level = rx.level();
            loop {
                match codec::decode(&mut buf, &limits, level) {
                    Ok(Some(p)) => {
                        match &p {
                            Packet::PingResp => st.pingresps += 1,
                            Packet::Publish(p) if p.qos == QoS::AtLeastOnce => {
                                codec::encode(&Packet::PubAck(Ack::new(p.pkid)), level, &mut out)
                            }
                            Packet::Publish(p) if p.qos == QoS::ExactlyOnce => {
                                codec::encode(&Packet::PubRec(Ack::new(p.pkid)), level, &mut out)
                            }
                            Packet::PubRel(a) => {
                                codec::encode(&Packet::PubComp(Ack::new(a.pkid)), level, &mut out)
                            }
                            _ => {}
                        }
                        st.packets.push(p);
                    }
                    Ok(None) => break,
                    Err(e) => panic!("the broker sent a malformed packet: {e}: {buf:02x?}"),
                }
            }
            if n == 0 {
                assert!(buf.is_empty(), "the broker closed mid-packet: {buf:02x?}");
                st.eof = true;
            }
        }
        rx.changed.notify_waiters();
        if n == 0 {
            return;
        }
        if let Some(w) = ack.as_mut() {
            if !out.is_empty() && w.write_all(&out).await.is_err() {
                ack = None;
            }
        }
    }
}

impl Conn {
    pub(crate) async fn open(h: &Harness, tcp: bool, ack: bool) -> Conn {
        let rx = Arc::new(Rx::default());
        let (rd, wr, serve): (Box<dyn AsyncRead + Unpin + Send>, Writer, _) = if tcp {
            let s = tokio::net::TcpStream::connect(h.broker.local_addr())
                .await
                .expect("connect to the broker");
            let _ = s.set_nodelay(true);
            let (rd, wr) = s.into_split();
            (Box::new(rd), Box::new(wr), None)
        } else {
            let (ours, theirs) = tokio::io::duplex(PIPE);
            let info = ConnInfo {
                peer: "127.0.0.1:1".parse().expect("address"),
                cert_cn: None,
            };
            let ctx = h.broker.context().clone();
            let serve = tokio::spawn(connection::serve(theirs, info, ctx, h.shutdown.clone()));
            let (rd, wr) = tokio::io::split(ours);
            (Box::new(rd), Box::new(wr), Some(serve))
        };
        // The watcher's acknowledgements go through the same writer, so it is shared.
        let (wr, acker): (Writer, Option<Writer>) = if ack {
            let shared = Arc::new(tokio::sync::Mutex::new(wr));
            (
                Box::new(SharedWriter(shared.clone())),
                Some(Box::new(SharedWriter(shared))),
            )
        } else {
            (wr, None)
        };
        let reader = tokio::spawn(read_loop(rd, rx.clone(), acker));
        Conn {
            wr,
            pending: Vec::new(),
            sent: Vec::new(),
            rx,
            reader,
            serve,
            next_pkid: 1,
            encode_level: None,
        }
    }

    pub(crate) fn push(&mut self, p: &Packet) {
        // Packets are written at the level of the first CONNECT pushed (a second one is a
        // protocol error the broker closes on); raw bytes before it make it 3.1.1.
        if self.encode_level.is_none() {
            if let Packet::Connect(c) = p {
                self.encode_level = Some(c.level);
            }
        }
        let mut b = BytesMut::new();
        codec::encode(p, self.encode_level.unwrap_or(ProtocolLevel::V311), &mut b);
        self.pending.extend_from_slice(&b);
    }

    /// Appends raw bytes.
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() && self.encode_level.is_none() {
            self.encode_level = Some(ProtocolLevel::V311);
        }
        self.pending.extend_from_slice(bytes);
    }

    pub(crate) fn pkid(&mut self) -> u16 {
        let id = self.next_pkid;
        self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
        id
    }

    pub(crate) async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.rx.level.load(Ordering::Acquire) == 0 {
            // The level the broker answers at is that of the first packet on the wire, if it
            // is a CONNECT (else it answers at 3.1.1, or closes): known before the bytes go.
            let mut wire = BytesMut::from(&self.sent[..]);
            wire.extend_from_slice(&self.pending);
            let level =
                match codec::decode(&mut wire, &DecodeLimits::default(), ProtocolLevel::V311) {
                    Ok(Some(Packet::Connect(c))) => Some(c.level),
                    Ok(None) => None,
                    _ => Some(ProtocolLevel::V311),
                };
            if let Some(l) = level {
                self.rx.level.store(l.to_u8(), Ordering::Release);
            }
        }
        // A write to a closed connection fails; what was sent before still counts.
        if self.wr.write_all(&self.pending).await.is_ok() {
            let _ = self.wr.flush().await;
            self.sent.extend_from_slice(&self.pending);
        }
        self.pending.clear();
    }

    /// Writes what is pending and a PINGREQ, then waits for the broker to catch up.
    pub(crate) async fn sync(&mut self, limits: &DecodeLimits) {
        self.pending.extend_from_slice(&[0xC0, 0x00]);
        self.flush().await;
        let (packets, end) = model(&self.sent, limits);
        match end {
            End::Clean => {
                let pings = packets
                    .iter()
                    .filter(|p| matches!(p, Packet::PingReq))
                    .count();
                let ok = self.rx.wait(|s| s.eof || s.pingresps >= pings).await;
                assert!(ok, "no PINGRESP nor close within {SETTLE:?}");
            }
            End::Malformed(e) => {
                let ok = self.rx.wait(|s| s.eof).await;
                assert!(
                    ok,
                    "connection still open {SETTLE:?} after a malformed packet ({e})"
                );
            }
            End::Partial => {
                for _ in 0..4 {
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// Ends the client's side and waits for the broker to close its side.
    pub(crate) async fn close(mut self) -> Record {
        self.flush().await;
        let _ = self.wr.shutdown().await;
        let ok = self.rx.wait(|s| s.eof).await;
        assert!(
            ok,
            "the broker kept the connection {SETTLE:?} after the client's EOF"
        );
        let _ = self.reader.await;
        if let Some(serve) = self.serve {
            let done = tokio::time::timeout(SETTLE, serve).await;
            assert!(done.is_ok(), "the connection task outlived its connection");
        }
        let received = std::mem::take(&mut self.rx.state.lock().expect("rx lock").packets);
        Record {
            sent: self.sent,
            received,
        }
    }
}

/// A writer shared by the watcher's test side and its acknowledging reader.
struct SharedWriter(Arc<tokio::sync::Mutex<Writer>>);

impl AsyncWrite for SharedWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.0.try_lock() {
            Ok(mut w) => std::pin::Pin::new(&mut **w).poll_write(cx, buf),
            Err(_) => {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.0.try_lock() {
            Ok(mut w) => std::pin::Pin::new(&mut **w).poll_flush(cx),
            Err(_) => {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.0.try_lock() {
            Ok(mut w) => std::pin::Pin::new(&mut **w).poll_shutdown(cx),
            Err(_) => {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }
    }
}
