//! `broker_stateful`: a real broker, started once in this process, driven by up to four
//! fuzzed clients per input.
//!
//! The broker is `supermq::Broker::start` on 127.0.0.1:0 with small limits. Each input is a
//! header byte and a list of operations; an operation names a client (0–3) and either builds
//! a well-formed packet from input-chosen fields (CONNECT with will/user/password and either
//! protocol, SUBSCRIBE, PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP, UNSUBSCRIBE, PINGREQ,
//! DISCONNECT, refused CONNECT variants such as level 5), appends raw bytes, writes what is
//! pending, waits for the broker to catch up, or closes the connection. A client talks to the
//! broker over an in-memory duplex stream served by `supermq::connection::serve` (the
//! transport-generic driver TLS and WebSocket use) or, when the header says so, over loopback
//! TCP through the listener. A well-behaved "watcher" subscribes at QoS 1 to a filter the
//! header picks and acknowledges everything it gets.
//!
//! Checked for every input (a violation aborts, which libFuzzer reports as a crash):
//! - no panic anywhere in the process: a panic hook aborts, so a panic in a broker task
//!   (which tokio would otherwise swallow) is seen;
//! - everything the broker sends decodes as MQTT;
//! - the broker keeps up: once a client's bytes form whole packets ending in our PINGREQ, a
//!   PINGRESP or a close follows; a malformed packet is followed by a close; a client's
//!   end of stream is followed by the broker closing too (all within 5 s);
//! - the CONNECT handshake: nothing is sent before a CONNECT; its answer is a CONNACK first;
//!   a refused CONNECT gets only its CONNACK; a known protocol name with an unknown level
//!   (3.1.1 level 5 included) gets exactly CONNACK 0x01 [MQTT-3.1.2-2]; other malformed
//!   first packets get nothing;
//! - each SUBACK has one code per filter of its SUBSCRIBE, none above the requested QoS;
//! - delivery: a QoS 1 PUBLISH the broker acknowledged whose topic matches the watcher's
//!   filter reaches the watcher, unless the broker's drop counters moved;
//! - the broker stays alive: a fresh bystander connects over TCP and gets a CONNACK;
//! - memory is bounded: the process RSS stays under 1 GiB.
#![no_main]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use supermq::codec::{
    self, Ack, ConnAck, Connect, ConnectReturnCode, DecodeError, DecodeLimits, Disconnect,
    LastWill, Packet, Properties, ProtocolLevel, Publish, QoS, ReasonCode, Subscribe,
    SubscribeFilter, Unsubscribe,
};
use supermq::connection::{self, ConnInfo};
use supermq::{Broker, Config};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The level every packet here is written and read at: the broker reads 3.1.1 before a
/// CONNECT, and 3.1 (the other level a CONNECT here may have) reads alike.
const LEVEL: ProtocolLevel = ProtocolLevel::V311;
/// The process may not grow beyond this resident size.
const RSS_LIMIT_KB: u64 = 1024 * 1024;
/// How long the broker gets for anything it must do (answer, close, deliver).
const SETTLE: Duration = Duration::from_secs(5);
/// Duplex buffer per direction: larger than any input, so a write never waits.
const PIPE: usize = 64 * 1024;

const TOPICS: [&str; 8] = ["a", "a/b", "a/b/c", "b", "$SYS/x", "x/y", "a/", "/a"];
const FILTERS: [&str; 12] = [
    "#",
    "a/#",
    "a/+",
    "+/b",
    "a/b",
    "$share/g/a/#",
    "$queue/a/b",
    "$SYS/#",
    "+",
    "a/b/c",
    "+/+",
    "a/+/#",
];
const WATCH: [&str; 4] = ["#", "a/#", "a/+", "+/+"];

struct Harness {
    rt: Runtime,
    broker: Broker,
    shutdown: CancellationToken,
    runs: AtomicU64,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            hook(info);
            std::process::abort();
        }));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let shutdown = CancellationToken::new();
        let broker = rt
            .block_on(Broker::start(broker_config(), shutdown.clone()))
            .expect("broker starts");
        Harness {
            rt,
            broker,
            shutdown,
            runs: AtomicU64::new(0),
        }
    })
}

/// Small bounds, so that state carried from input to input stays small and every limit is
/// within reach of a short input.
fn broker_config() -> Config {
    let mut c = Config::default();
    c.listeners[0].bind = "127.0.0.1:0".parse().expect("address");
    c.sys.interval = Duration::ZERO;
    c.engine.worker_threads = 1;
    c.limits.max_connections = 1024;
    c.limits.max_packet_size = 64 * 1024;
    c.limits.connect_timeout = Duration::from_secs(2);
    c.limits.max_topic_levels = 16;
    c.limits.max_topic_length = 256;
    c.session.max_queued_messages = 200;
    c.session.max_queued_bytes = 1024 * 1024;
    c.session.max_sessions = 10_000;
    c.session.max_subscriptions = 64;
    c.session.slow_consumer_timeout = Duration::from_secs(1);
    c.session.persistent_session_expiry = Duration::from_secs(10);
    c.retain.max_messages = 1000;
    c.retain.max_payload_size = 4096;
    c
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let run = h.runs.fetch_add(1, Ordering::Relaxed);
    h.rt.block_on(drive(h, run, data));
    check_rss();
});

/// Input cursor: reads past the end give zeros.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// An entry of `pool`, or (for bytes from 0xF0) a short string from the input.
    fn pick(&mut self, pool: &[&str]) -> String {
        let b = self.byte();
        if b >= 0xF0 {
            let n = usize::from(self.byte() % 32);
            String::from_utf8_lossy(self.bytes(n)).into_owned()
        } else {
            pool[usize::from(b) % pool.len()].to_owned()
        }
    }
    fn qos(&mut self) -> QoS {
        QoS::from_u8(self.byte() % 3).unwrap_or_default()
    }
}

/// What the reading side of a connection has seen.
#[derive(Default)]
struct RxState {
    packets: Vec<Packet>,
    pingresps: usize,
    eof: bool,
}

#[derive(Default)]
struct Rx {
    state: Mutex<RxState>,
    changed: Notify,
}

impl Rx {
    /// Waits until `done` holds of the state, or `SETTLE` passes; returns whether it held.
    async fn wait(&self, done: impl Fn(&RxState) -> bool) -> bool {
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
struct Conn {
    wr: Writer,
    pending: Vec<u8>,
    /// Everything written so far: what the broker decodes.
    sent: Vec<u8>,
    rx: Arc<Rx>,
    reader: JoinHandle<()>,
    /// The broker's task for this connection (duplex transport only).
    serve: Option<JoinHandle<()>>,
    next_pkid: u16,
}

/// What a finished connection exchanged.
struct Record {
    sent: Vec<u8>,
    received: Vec<Packet>,
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
            loop {
                match codec::decode(&mut buf, &limits, LEVEL) {
                    Ok(Some(p)) => {
                        match &p {
                            Packet::PingResp => st.pingresps += 1,
                            Packet::Publish(p) if p.qos == QoS::AtLeastOnce => {
                                codec::encode(&Packet::PubAck(Ack::new(p.pkid)), LEVEL, &mut out)
                            }
                            Packet::Publish(p) if p.qos == QoS::ExactlyOnce => {
                                codec::encode(&Packet::PubRec(Ack::new(p.pkid)), LEVEL, &mut out)
                            }
                            Packet::PubRel(a) => {
                                codec::encode(&Packet::PubComp(Ack::new(a.pkid)), LEVEL, &mut out)
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
    async fn open(h: &Harness, tcp: bool, ack: bool) -> Conn {
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
        }
    }

    fn push(&mut self, p: &Packet) {
        let mut b = BytesMut::new();
        codec::encode(p, LEVEL, &mut b);
        self.pending.extend_from_slice(&b);
    }

    fn pkid(&mut self) -> u16 {
        let id = self.next_pkid;
        self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
        id
    }

    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        // A write to a closed connection fails; what was sent before still counts.
        if self.wr.write_all(&self.pending).await.is_ok() {
            let _ = self.wr.flush().await;
            self.sent.extend_from_slice(&self.pending);
        }
        self.pending.clear();
    }

    /// Writes what is pending and a PINGREQ, then waits for the broker to catch up.
    async fn sync(&mut self, limits: &DecodeLimits) {
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
    async fn close(mut self) -> Record {
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

/// How the bytes a client sent end, as the broker's decoder sees them.
enum End {
    /// Whole packets only.
    Clean,
    /// A packet the broker must refuse.
    Malformed(DecodeError),
    /// An incomplete packet at the end.
    Partial,
}

/// The packets the broker decodes from `sent`, and how the bytes end.
fn model(sent: &[u8], limits: &DecodeLimits) -> (Vec<Packet>, End) {
    let mut buf = BytesMut::from(sent);
    let mut packets = Vec::new();
    loop {
        match codec::decode(&mut buf, limits, LEVEL) {
            Ok(Some(p)) => packets.push(p),
            Ok(None) if buf.is_empty() => return (packets, End::Clean),
            Ok(None) => return (packets, End::Partial),
            Err(e) => return (packets, End::Malformed(e)),
        }
    }
}

/// The CONNECT handshake and SUBACK rules for one finished connection.
fn check_conversation(r: &Record, limits: &DecodeLimits) {
    let (packets, end) = model(&r.sent, limits);
    let got = &r.received;
    match packets.first() {
        None => match end {
            End::Malformed(DecodeError::UnsupportedProtocolLevel(l)) => {
                let want = Packet::ConnAck(ConnAck::new(
                    false,
                    ConnectReturnCode::UnacceptableProtocolVersion,
                ));
                assert_eq!(got, &[want], "answer to a CONNECT of level {l}");
            }
            _ => assert!(got.is_empty(), "answers before any CONNECT: {got:?}"),
        },
        Some(Packet::Connect(_)) => {
            if let Some(first) = got.first() {
                let Packet::ConnAck(ack) = first else {
                    panic!("the first answer to CONNECT is {first:?}");
                };
                if ack.reason != ReasonCode::Success {
                    assert!(!ack.session_present, "refused with session present");
                    assert_eq!(got.len(), 1, "a refused CONNECT got more: {got:?}");
                }
            }
        }
        Some(first) => assert!(got.is_empty(), "answers after a first {first:?}: {got:?}"),
    }
    for p in got {
        let Packet::SubAck(ack) = p else { continue };
        let mut subs = packets.iter().filter_map(|p| match p {
            Packet::Subscribe(s) if s.pkid == ack.pkid => Some(s),
            _ => None,
        });
        if let (Some(s), None) = (subs.next(), subs.next()) {
            assert_eq!(s.filters.len(), ack.reasons.len(), "SUBACK for {s:?}");
            for (f, code) in s.filters.iter().zip(&ack.reasons) {
                if let Some(q) = code.granted_qos() {
                    assert!(q <= f.options.qos, "granted {q:?} for {f:?}");
                }
            }
        }
    }
}

/// The QoS 1 messages the broker acknowledged on this connection whose topic `filter`
/// matches (packet ids used once only, so each acknowledgement names one message).
fn acknowledged(r: &Record, limits: &DecodeLimits, filter: &str) -> Vec<(String, Bytes)> {
    let (packets, _) = model(&r.sent, limits);
    let mut by_id: HashMap<u16, Vec<&Publish>> = HashMap::new();
    for p in &packets {
        if let Packet::Publish(p) = p {
            if p.qos == QoS::AtLeastOnce {
                by_id.entry(p.pkid).or_default().push(p);
            }
        }
    }
    let acked: Vec<u16> = r
        .received
        .iter()
        .filter_map(|p| match p {
            Packet::PubAck(a) => Some(a.pkid),
            _ => None,
        })
        .collect();
    by_id
        .into_iter()
        .filter(|(id, ps)| ps.len() == 1 && acked.contains(id))
        .map(|(_, ps)| ps[0])
        .filter(|p| supermq::topic::matches(filter, &p.topic))
        .map(|p| (p.topic.clone(), p.payload.clone()))
        .collect()
}

fn drops(h: &Harness) -> u64 {
    let m = h.broker.metrics();
    [
        &m.dropped_queue_full,
        &m.dropped_qos0_queue_full,
        &m.slow_consumer_disconnects,
    ]
    .iter()
    .map(|c| c.load(Ordering::Relaxed))
    .sum()
}

async fn drive(h: &'static Harness, run: u64, data: &[u8]) {
    let limits = h.broker.context().decode_limits;
    let mut input = Input(data);
    let header = input.byte();
    let watch_filter = WATCH[usize::from(header & 3)];
    let tcp_mask = header >> 4;
    let drops_before = drops(h);

    // The watcher: subscribed (QoS 1 granted) before any fuzzed client acts.
    let mut watcher = None;
    if header & 4 != 0 {
        let mut w = Conn::open(h, false, true).await;
        w.push(&Packet::from(Connect {
            level: LEVEL,
            clean_session: true,
            keep_alive: 0,
            client_id: format!("\u{1F441}watcher-{run}"),
            will: None,
            username: None,
            password: None,
            properties: Properties::new(),
        }));
        w.push(&Packet::Subscribe(Subscribe::new(
            1,
            vec![SubscribeFilter::new(watch_filter, QoS::AtLeastOnce)],
        )));
        w.sync(&limits).await;
        let granted =
            w.rx.state
                .lock()
                .expect("rx lock")
                .packets
                .iter()
                .any(|p| matches!(p, Packet::SubAck(a) if a.reasons == [ReasonCode::GrantedQoS1]));
        assert!(granted, "the watcher's subscription was not granted");
        watcher = Some(w);
    }

    let mut conns: [Option<Conn>; 4] = Default::default();
    let mut records = Vec::new();
    while !input.is_empty() {
        let op = input.byte();
        let i = usize::from(op & 3);
        let kind = (op >> 2) % 13;
        if kind == 10 {
            if let Some(c) = conns[i].take() {
                records.push(c.close().await);
            }
            continue;
        }
        if conns[i].is_none() {
            conns[i] = Some(Conn::open(h, tcp_mask & (1 << i) != 0, false).await);
        }
        let Some(c) = conns[i].as_mut() else { continue };
        match kind {
            0 => {
                let flags = input.byte();
                let client_id = input.pick(&["c0", "c1", "c2", "c3", "", "c5", "c6", "c7"]);
                let will = (flags & 2 != 0).then(|| LastWill {
                    topic: input.pick(&TOPICS),
                    payload: Bytes::copy_from_slice(input.bytes(4)),
                    qos: QoS::from_u8((flags >> 2) % 3).unwrap_or_default(),
                    retain: flags & 0x10 != 0,
                    properties: Properties::new(),
                });
                let username = (flags & 0x20 != 0).then(|| input.pick(&["u", "v"]));
                let password = (flags & 0x20 != 0 && flags & 0x40 != 0)
                    .then(|| Bytes::copy_from_slice(input.bytes(3)));
                c.push(&Packet::from(Connect {
                    level: if flags & 0x80 != 0 {
                        ProtocolLevel::V31
                    } else {
                        ProtocolLevel::V311
                    },
                    clean_session: flags & 1 != 0,
                    keep_alive: u16::from(input.byte()),
                    client_id,
                    will,
                    username,
                    password,
                    properties: Properties::new(),
                }));
            }
            1 => {
                let n = 1 + input.byte() % 3;
                let filters = (0..n)
                    .map(|_| SubscribeFilter::new(input.pick(&FILTERS), input.qos()))
                    .collect();
                let pkid = c.pkid();
                c.push(&Packet::Subscribe(Subscribe::new(pkid, filters)));
            }
            2 => {
                let flags = input.byte();
                let qos = QoS::from_u8(flags % 3).unwrap_or_default();
                let topic = input.pick(&TOPICS);
                let n = usize::from(input.byte() % 64);
                let payload = Bytes::copy_from_slice(input.bytes(n));
                let pkid = match qos {
                    QoS::AtMostOnce => 0,
                    _ if flags & 0x10 != 0 => input.u16().max(1),
                    _ => c.pkid(),
                };
                c.push(&Packet::Publish(Publish {
                    dup: qos != QoS::AtMostOnce && flags & 8 != 0,
                    qos,
                    retain: flags & 4 != 0,
                    topic,
                    pkid,
                    payload,
                    properties: Properties::new(),
                }));
            }
            3 | 4 => {
                let which = input.byte();
                // An id the broker used towards this client, or any id.
                let id = if which & 0x80 == 0 {
                    let st = c.rx.state.lock().expect("rx lock");
                    let ids: Vec<u16> = st
                        .packets
                        .iter()
                        .filter_map(|p| match p {
                            Packet::Publish(p) if p.qos != QoS::AtMostOnce => Some(p.pkid),
                            Packet::PubRec(a) | Packet::PubRel(a) => Some(a.pkid),
                            _ => None,
                        })
                        .collect();
                    ids.get(usize::from(which) % ids.len().max(1))
                        .copied()
                        .unwrap_or(1)
                } else {
                    input.u16().max(1)
                };
                let p = match (kind, which % 3) {
                    (3, _) => Packet::PubAck(Ack::new(id)),
                    (_, 0) => Packet::PubRec(Ack::new(id)),
                    (_, 1) => Packet::PubRel(Ack::new(id)),
                    _ => Packet::PubComp(Ack::new(id)),
                };
                c.push(&p);
            }
            5 => {
                let filters = vec![input.pick(&FILTERS)];
                let pkid = c.pkid();
                c.push(&Packet::Unsubscribe(Unsubscribe::new(pkid, filters)));
            }
            6 => c.push(&Packet::PingReq),
            7 => c.push(&Packet::Disconnect(Disconnect::default())),
            8 => {
                let n = usize::from(input.byte());
                c.pending.extend_from_slice(input.bytes(n));
            }
            9 => c.sync(&limits).await,
            11 => {
                // CONNECTs that must be refused, with CONNACK 0x01 or by closing.
                let (name, level): (&[u8], u8) = match input.byte() % 4 {
                    0 => (b"MQTT", 5),
                    1 => (b"MQTT", 3),
                    2 => (b"MQIsdp", 4),
                    _ => (b"MQTX", 4),
                };
                let mut body = vec![0, name.len() as u8];
                body.extend_from_slice(name);
                body.extend_from_slice(&[level, 0x02, 0, 60]);
                if level == 5 {
                    body.push(0); // no properties
                }
                body.extend_from_slice(&[0, 2, b'v', b'5']);
                c.pending.push(0x10);
                c.pending.push(body.len() as u8);
                c.pending.extend_from_slice(&body);
            }
            _ => c.flush().await,
        }
    }

    for c in conns.iter_mut().flatten() {
        c.sync(&limits).await;
    }
    for c in conns.into_iter().flatten() {
        records.push(c.close().await);
    }
    for r in &records {
        check_conversation(r, &limits);
    }

    if let Some(w) = watcher {
        let expected: Vec<(String, Bytes)> = records
            .iter()
            .flat_map(|r| acknowledged(r, &limits, watch_filter))
            .collect();
        let arrived = |st: &RxState| {
            let mut got: Vec<(&str, &Bytes)> = st
                .packets
                .iter()
                .filter_map(|p| match p {
                    Packet::Publish(p) => Some((p.topic.as_str(), &p.payload)),
                    _ => None,
                })
                .collect();
            expected.iter().all(|(t, b)| {
                match got.iter().position(|(gt, gb)| gt == t && *gb == b) {
                    Some(i) => {
                        got.swap_remove(i);
                        true
                    }
                    None => false,
                }
            })
        };
        let delivered = w.rx.wait(|st| st.eof || arrived(st)).await;
        let watcher_closed = w.rx.state.lock().expect("rx lock").eof;
        if !watcher_closed {
            assert!(
                delivered || drops(h) != drops_before,
                "acknowledged QoS 1 messages for {watch_filter:?} never reached the \
                 watcher, and no drop was counted: expected {expected:?}"
            );
        }
        w.close().await;
    }

    bystander(h, run).await;
}

/// A fresh client connects over TCP and gets its CONNACK.
async fn bystander(h: &Harness, run: u64) {
    let mut s = tokio::net::TcpStream::connect(h.broker.local_addr())
        .await
        .expect("the broker accepts connections");
    let mut out = BytesMut::new();
    codec::encode(
        &Packet::from(Connect {
            level: LEVEL,
            clean_session: true,
            keep_alive: 0,
            client_id: format!("\u{1F441}bystander-{run}"),
            will: None,
            username: None,
            password: None,
            properties: Properties::new(),
        }),
        LEVEL,
        &mut out,
    );
    codec::encode(&Packet::Disconnect(Disconnect::default()), LEVEL, &mut out);
    s.write_all(&out).await.expect("write CONNECT");
    let mut buf = BytesMut::new();
    let ack = tokio::time::timeout(SETTLE, async {
        loop {
            if let Some(p) =
                codec::decode(&mut buf, &DecodeLimits::default(), LEVEL).expect("CONNACK")
            {
                return Some(p);
            }
            if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return None;
            }
        }
    })
    .await;
    match ack {
        Ok(Some(Packet::ConnAck(a))) => assert!(
            a.reason == ReasonCode::Success || a.reason == ReasonCode::ServerUnavailable,
            "bystander refused: {a:?}"
        ),
        other => panic!("the bystander got no CONNACK: {other:?}"),
    }
}

fn check_rss() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(kb < RSS_LIMIT_KB, "resident memory {kb} kB over the bound");
}
