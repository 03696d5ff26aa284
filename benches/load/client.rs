//! One benchmark client: connection setup over raw TCP with `supermq::codec`, and the state
//! its reader and writer tasks share.
//!
//! After setup a connection is split into a reader task and a writer task that never wait on
//! each other: a broker may stop reading from a client while its own writes to that client
//! are blocked, so a client that stopped reading while it wrote (or the reverse) could
//! deadlock against it. The reader hands acknowledgements to send over [`Link::ctrl`] and
//! returns publish credit through [`Link::window`], then wakes the writer. (A client that
//! only subscribes has no writer task: its reader writes its acknowledgements itself.)

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use supermq::codec::{
    self, Connect, DecodeLimits, Packet, Properties, ProtocolLevel, QoS, ReasonCode, Subscribe,
    SubscribeFilter,
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Errors kept verbatim in the report; later ones are only counted.
const MAX_ERRORS: usize = 20;

/// State shared by every task of one run.
#[derive(Debug)]
pub struct Run {
    /// Timestamps in payloads are nanoseconds since this instant.
    pub start: Instant,
    /// Tags this run's payloads (high half of the publisher id) and topics.
    pub nonce: u32,
    /// Publishers stop publishing (they still send acknowledgements).
    pub stop_pub: CancellationToken,
    /// Every task ends.
    pub finish: CancellationToken,
    /// Publishers still publishing.
    pub publishing: AtomicUsize,
    /// Signalled whenever a publisher stops publishing.
    pub changed: Notify,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    /// Deliveries of this run's messages to live subscribers.
    pub received: AtomicU64,
    /// Nanoseconds (since `start`) of the latest delivery and the latest publish.
    pub last_rx_ns: AtomicU64,
    pub last_tx_ns: AtomicU64,
    /// PUBACK/PUBCOMP for packet ids that were not in flight.
    pub unexpected_acks: AtomicU64,
    /// The protocol level every client speaks.
    pub level: ProtocolLevel,
    errors: Mutex<(Vec<String>, u64)>,
}

impl Run {
    pub fn new(nonce: u32, level: ProtocolLevel) -> Self {
        Run {
            start: Instant::now(),
            nonce,
            stop_pub: CancellationToken::new(),
            finish: CancellationToken::new(),
            publishing: AtomicUsize::new(0),
            changed: Notify::new(),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            received: AtomicU64::new(0),
            last_rx_ns: AtomicU64::new(0),
            last_tx_ns: AtomicU64::new(0),
            unexpected_acks: AtomicU64::new(0),
            level,
            errors: Mutex::new((Vec::new(), 0)),
        }
    }

    /// Nanoseconds from the run's start to `t`.
    #[inline]
    pub fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }

    /// Records an error for the report.
    pub fn error(&self, msg: String) {
        let mut e = self.errors.lock();
        if e.0.len() < MAX_ERRORS {
            e.0.push(msg);
        }
        e.1 += 1;
    }

    /// The errors recorded, with a line for those not kept.
    pub fn errors(&self) -> Vec<String> {
        let e = self.errors.lock();
        let mut v = e.0.clone();
        if e.1 > e.0.len() as u64 {
            v.push(format!("… and {} more errors", e.1 - e.0.len() as u64));
        }
        v
    }
}

/// Packet ids in flight for one QoS 1/2 publisher.
#[derive(Debug)]
pub struct Window {
    in_use: Vec<u64>,
    pub inflight: usize,
    next: u16,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            in_use: vec![0; 1024],
            inflight: 0,
            next: 0,
        }
    }
}

impl Window {
    /// A free packet id, marked in use. The caller keeps `inflight` below 65,535.
    pub fn alloc(&mut self) -> u16 {
        loop {
            self.next = self.next.wrapping_add(1);
            let id = self.next;
            let (w, m) = (usize::from(id >> 6), 1u64 << (id & 63));
            if id != 0 && self.in_use[w] & m == 0 {
                self.in_use[w] |= m;
                self.inflight += 1;
                return id;
            }
        }
    }

    /// Frees `id`; false if it was not in flight.
    pub fn release(&mut self, id: u16) -> bool {
        let (w, m) = (usize::from(id >> 6), 1u64 << (id & 63));
        if self.in_use[w] & m == 0 {
            return false;
        }
        self.in_use[w] &= !m;
        self.inflight -= 1;
        true
    }
}

/// What a connection's reader and writer share.
#[derive(Debug, Default)]
pub struct Link {
    /// Encoded acknowledgements the reader wants sent.
    pub ctrl: Mutex<BytesMut>,
    pub window: Mutex<Window>,
    /// Wakes the writer: control packets queued or credit returned.
    pub wake: Notify,
    /// Messages this client published (written to the socket).
    pub sent: AtomicU64,
}

/// A connected client before its reader and writer start.
#[derive(Debug)]
pub struct Setup {
    pub stream: TcpStream,
    /// Bytes read past the last setup packet, handed to the reader.
    pub leftover: BytesMut,
    /// The protocol level spoken.
    pub level: ProtocolLevel,
    /// MQTT 5: the broker's Receive Maximum from its CONNACK (65,535 when absent).
    pub receive_maximum: u16,
}

/// Opens a TCP connection (from `source` if given), sends CONNECT (CleanSession `clean`, the
/// given keep-alive in seconds) and waits for an accepting CONNACK.
pub async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    client_id: &str,
    keep_alive: u16,
    timeout: Duration,
    level: ProtocolLevel,
    clean: bool,
) -> Result<Setup, String> {
    let fut = async {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| format!("socket: {e}"))?;
        if let Some(ip) = source {
            // Lets a port whose last use lingers in TIME_WAIT be bound again.
            socket
                .set_reuseaddr(true)
                .map_err(|e| format!("SO_REUSEADDR: {e}"))?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| format!("bind {ip}: {e}"))?;
        }
        let stream = socket
            .connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let mut setup = Setup {
            stream,
            leftover: BytesMut::with_capacity(4096),
            level,
            receive_maximum: u16::MAX,
        };
        let connect = Packet::from(Connect {
            level,
            clean_session: clean,
            keep_alive,
            client_id: client_id.to_owned(),
            will: None,
            username: None,
            password: None,
            properties: Properties::new(),
        });
        send(&mut setup, &connect).await?;
        match expect(&mut setup, |p| matches!(p, Packet::ConnAck(_))).await? {
            Packet::ConnAck(a) if a.reason == ReasonCode::Success => {
                if let Some(v) = a.properties.values() {
                    setup.receive_maximum = v.receive_maximum.unwrap_or(u16::MAX);
                }
                Ok(setup)
            }
            Packet::ConnAck(a) => Err(format!("CONNACK refused: {:?}", a.return_code())),
            _ => Err("expected CONNACK".into()),
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("no CONNACK within {timeout:?}"))?
}

/// Subscribes to `filters` at `qos` in one SUBSCRIBE and waits for a SUBACK granting all.
pub async fn subscribe(
    setup: &mut Setup,
    filters: &[String],
    qos: QoS,
    timeout: Duration,
) -> Result<(), String> {
    let sub = Packet::Subscribe(Subscribe::new(
        1,
        filters
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), qos))
            .collect(),
    ));
    let fut = async {
        send(setup, &sub).await?;
        match expect(setup, |p| matches!(p, Packet::SubAck(_))).await? {
            Packet::SubAck(a) if a.reasons.iter().all(|c| !c.is_error()) => Ok(()),
            _ => Err(format!("SUBSCRIBE {filters:?} refused")),
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("no SUBACK within {timeout:?}"))?
}

async fn send(setup: &mut Setup, packet: &Packet) -> Result<(), String> {
    let mut out = BytesMut::new();
    codec::encode(packet, setup.level, &mut out);
    setup
        .stream
        .write_all(&out)
        .await
        .map_err(|e| format!("write {}: {e}", packet.name()))
}

/// Reads until a packet accepted by `want` arrives; others (e.g. retained messages of
/// earlier runs) are skipped.
async fn expect(setup: &mut Setup, want: impl Fn(&Packet) -> bool) -> Result<Packet, String> {
    let limits = DecodeLimits::default();
    loop {
        while let Some(p) = codec::decode(&mut setup.leftover, &limits, setup.level)
            .map_err(|e| format!("decode: {e}"))?
        {
            if want(&p) {
                return Ok(p);
            }
        }
        setup.leftover.reserve(4096);
        let n = setup
            .stream
            .read_buf(&mut setup.leftover)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed by the broker during setup".into());
        }
    }
}
