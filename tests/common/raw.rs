//! The raw-socket MQTT test client, [`Raw`], over any [`Transport`]: a byte stream (plain
//! TCP, or TLS from [`super::tls`]) or WebSocket messages ([`super::ws`]). It sends exact packets (or exact bytes), keeps
//! packets that overtake an awaited acknowledgement for later, and waits for everything with
//! a timeout ([`WAIT`]) instead of sleeping. Also: the packets tests build most, the barrier
//! that proves a queue drained, and a bystander client that proves the broker still serves.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use supermq::codec::{
    self, Ack, ConnAck, Connect, ConnectReturnCode, DecodeLimits, Disconnect, LastWill, Packet,
    Properties, PropertyValues, ProtocolLevel, Publish, QoS, ReasonCode, SubAck, Subscribe,
    SubscribeFilter, UnsubAck, Unsubscribe,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// A byte transport under the MQTT client.
pub trait Transport {
    /// Appends the next bytes that arrive to `buf`; `Ok(0)` once the peer has closed.
    fn read_into(
        &mut self,
        buf: &mut BytesMut,
    ) -> impl Future<Output = std::io::Result<usize>> + Send;
    /// Writes all of `bytes` (as one message, where the transport has messages).
    fn write_bytes(&mut self, bytes: &[u8]) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Closes the sending side.
    fn close(&mut self) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// Any byte stream (TCP, TLS) is a transport; writes are flushed at once.
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for S {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        self.read_buf(buf).await
    }
    async fn write_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes).await?;
        self.flush().await
    }
    async fn close(&mut self) -> std::io::Result<()> {
        self.shutdown().await
    }
}

/// A CONNECT for `id` with the given CleanSession flag, keep-alive 60 s.
pub fn connect_packet(id: &str, clean: bool) -> Connect {
    Connect {
        level: ProtocolLevel::V311,
        clean_session: clean,
        keep_alive: 60,
        client_id: id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    }
}

/// An MQTT 5 CONNECT for `id` with the given Clean Start flag and properties, keep-alive
/// 60 s.
pub fn connect5(id: &str, clean_start: bool, props: PropertyValues) -> Connect {
    Connect {
        level: ProtocolLevel::V5,
        properties: props.into(),
        ..connect_packet(id, clean_start)
    }
}

/// A will message.
pub fn will(topic: &str, payload: &str, qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
        properties: Properties::new(),
    }
}

/// A PUBLISH (not retained, DUP clear); `pkid` should be 0 for QoS 0.
pub fn publish_packet(topic: &str, qos: QoS, pkid: u16, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        pkid,
        payload: Bytes::copy_from_slice(payload),
        properties: Properties::new(),
    })
}

/// A raw MQTT client over one connection (TCP unless said otherwise).
pub struct Raw<T = TcpStream> {
    pub stream: T,
    buf: BytesMut,
    next_id: u16,
    /// Packets received while waiting for a specific acknowledgement, in arrival order.
    pending: VecDeque<Packet>,
    /// The protocol level packets are written and read at: 3.1.1 until a CONNECT at another
    /// level is sent.
    pub level: ProtocolLevel,
}

impl Raw<TcpStream> {
    /// Opens a TCP connection (no MQTT yet).
    pub async fn open(addr: SocketAddr) -> Raw {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("tcp connect");
        stream.set_nodelay(true).expect("nodelay");
        Raw::new(stream)
    }

    /// Opens a connection, sends CONNECT and expects CONNACK 0; returns session-present.
    pub async fn connect_with(addr: SocketAddr, c: Connect) -> (Raw, bool) {
        let mut r = Raw::open(addr).await;
        r.send(&Packet::from(c)).await;
        let present = r.expect_accepted().await;
        (r, present)
    }

    /// Opens a connection, sends an MQTT 5 CONNECT and expects CONNACK 0; returns the
    /// CONNACK (its properties say what the broker granted).
    pub async fn connect5(addr: SocketAddr, c: Connect) -> (Raw, ConnAck) {
        let mut r = Raw::open(addr).await;
        r.send(&Packet::from(c)).await;
        match r.recv().await {
            Packet::ConnAck(a) if a.reason == ReasonCode::Success => (r, a),
            other => panic!("expected CONNACK 0, got {other:?}"),
        }
    }

    /// Opens a connection, sends `connect` (the bytes of a CONNECT, see
    /// [`super::connect_raw`]) and expects CONNACK 0.
    pub async fn connect_bytes(addr: SocketAddr, connect: &[u8]) -> Raw {
        let mut r = Raw::open(addr).await;
        r.send_raw(connect).await;
        r.expect_accepted().await;
        r
    }

    /// A clean-session client with id `id`.
    pub async fn connect(addr: SocketAddr, id: &str) -> Raw {
        Raw::connect_with(addr, connect_packet(id, true)).await.0
    }
}

impl<T: Transport> Raw<T> {
    /// A client over an open transport (no MQTT yet).
    pub fn new(stream: T) -> Raw<T> {
        Raw {
            stream,
            buf: BytesMut::new(),
            next_id: 0,
            pending: VecDeque::new(),
            level: ProtocolLevel::V311,
        }
    }

    pub fn pkid(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    pub async fn send(&mut self, p: &Packet) {
        if let Packet::Connect(c) = p {
            self.level = c.level;
        }
        let mut out = BytesMut::new();
        codec::encode(p, self.level, &mut out);
        self.send_raw(&out).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_bytes(bytes).await.expect("write");
    }

    /// Writes `bytes`; false when that failed (the broker may already have closed).
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_bytes(bytes).await.is_ok()
    }

    /// The next packet must be CONNACK 0; returns session-present.
    pub async fn expect_accepted(&mut self) -> bool {
        match self.recv().await {
            Packet::ConnAck(ConnAck {
                reason: ReasonCode::Success,
                session_present,
                ..
            }) => session_present,
            other => panic!("expected CONNACK 0, got {other:?}"),
        }
    }

    /// Sends CONNECT; returns the CONNACK code, or `None` when the connection closed first.
    pub async fn try_connack(&mut self, c: Connect) -> Option<ConnectReturnCode> {
        self.send(&Packet::from(c)).await;
        match self.recv_or_closed().await? {
            Packet::ConnAck(a) => Some(a.return_code()),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// The next packet, failing the test after `WAIT`.
    pub async fn recv(&mut self) -> Packet {
        if let Some(p) = self.pending.pop_front() {
            return p;
        }
        self.recv_wire().await
    }

    async fn recv_wire(&mut self) -> Packet {
        match tokio::time::timeout(WAIT, self.try_recv_wire()).await {
            Ok(Some(p)) => p,
            Ok(None) => panic!("connection closed while waiting for a packet"),
            Err(_) => panic!("no packet within {WAIT:?}"),
        }
    }

    /// The next packet, or `None` when the broker closed the connection (no timeout: the
    /// caller bounds the wait).
    pub async fn try_recv(&mut self) -> Option<Packet> {
        if let Some(p) = self.pending.pop_front() {
            return Some(p);
        }
        self.try_recv_wire().await
    }

    /// The next packet, or `None` when the broker closed the connection; fails the test
    /// after `WAIT`.
    pub async fn recv_or_closed(&mut self) -> Option<Packet> {
        tokio::time::timeout(WAIT, self.try_recv())
            .await
            .unwrap_or_else(|_| panic!("nothing from the broker within {WAIT:?}"))
    }

    async fn try_recv_wire(&mut self) -> Option<Packet> {
        loop {
            match codec::decode(&mut self.buf, &DecodeLimits::default(), self.level) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => panic!("broker sent a malformed packet: {e}"),
            }
            match self.stream.read_into(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Waits for the broker to close the connection; returns the packets it sent first.
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        let mut before = Vec::new();
        let r = tokio::time::timeout(WAIT, async {
            while let Some(p) = self.try_recv().await {
                before.push(p);
            }
        })
        .await;
        assert!(
            r.is_ok(),
            "broker did not close the connection within {WAIT:?}; got {before:?}"
        );
        before
    }

    /// Waits for exactly `want`, keeping any other packet (e.g. a PUBLISH that overtook the
    /// acknowledgement) for later `recv` calls.
    pub async fn expect(&mut self, want: Packet) {
        if let Some(i) = self.pending.iter().position(|p| *p == want) {
            self.pending.remove(i);
            return;
        }
        loop {
            let p = self.recv_wire().await;
            if p == want {
                return;
            }
            self.pending.push_back(p);
        }
    }

    /// Subscribes to each filter at its QoS; returns the SUBACK codes.
    pub async fn subscribe_many(&mut self, filters: &[(&str, QoS)]) -> Vec<u8> {
        let pkid = self.pkid();
        let filters = filters
            .iter()
            .map(|(f, q)| SubscribeFilter::new(*f, *q))
            .collect();
        self.send(&Packet::Subscribe(Subscribe::new(pkid, filters)))
            .await;
        loop {
            match self.recv_wire().await {
                Packet::SubAck(SubAck {
                    pkid: id, reasons, ..
                }) if id == pkid => return reasons.iter().map(|c| c.to_u8()).collect(),
                other @ Packet::Publish(_) => self.pending.push_back(other),
                other => panic!("expected SUBACK {pkid}, got {other:?}"),
            }
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> u8 {
        self.subscribe_many(&[(filter, qos)]).await[0]
    }

    pub async fn unsubscribe(&mut self, filter: &str) {
        let pkid = self.pkid();
        self.send(&Packet::Unsubscribe(Unsubscribe::new(
            pkid,
            vec![filter.into()],
        )))
        .await;
        self.expect(Packet::UnsubAck(UnsubAck::new(pkid))).await;
    }

    /// Publishes and completes the QoS flow (PUBACK, or PUBREC/PUBREL/PUBCOMP).
    pub async fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        let pkid = if qos == QoS::AtMostOnce {
            0
        } else {
            self.pkid()
        };
        self.send(&Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            pkid,
            payload: Bytes::copy_from_slice(payload),
            properties: Properties::new(),
        }))
        .await;
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.expect(Packet::PubAck(Ack::new(pkid))).await,
            QoS::ExactlyOnce => {
                self.expect(Packet::PubRec(Ack::new(pkid))).await;
                self.send(&Packet::PubRel(Ack::new(pkid))).await;
                self.expect(Packet::PubComp(Ack::new(pkid))).await;
            }
        }
    }

    /// The next PUBLISH, acknowledged per its QoS (full QoS 2 flow).
    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(p) => {
                self.ack(&p).await;
                p
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Acknowledges a received PUBLISH per its QoS.
    pub async fn ack(&mut self, p: &Publish) {
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(Ack::new(p.pkid))).await,
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(Ack::new(p.pkid))).await;
                self.expect(Packet::PubRel(Ack::new(p.pkid))).await;
                self.send(&Packet::PubComp(Ack::new(p.pkid))).await;
            }
        }
    }

    /// Round trip PINGREQ → PINGRESP: everything the broker answered before is in.
    pub async fn ping(&mut self) {
        self.send(&Packet::PingReq).await;
        assert_eq!(self.recv().await, Packet::PingResp);
    }

    /// Keeps `p` for a later `recv` (a packet that overtook the one a test waits for).
    pub fn hold(&mut self, p: Packet) {
        self.pending.push_back(p);
    }

    pub async fn disconnect(mut self) {
        self.send(&Packet::Disconnect(Disconnect::default())).await;
        let _ = self.stream.close().await;
    }
}

/// Publishes a QoS 1 marker on `topic` from `publisher`; a subscriber that then receives it
/// has received everything queued for it before (queues keep order) [MQTT-4.6.0-6].
pub async fn barrier<T: Transport>(publisher: &mut Raw<T>, topic: &str) {
    publisher
        .publish(topic, b"barrier", QoS::AtLeastOnce, false)
        .await;
}

/// Receives PUBLISH packets until the barrier marker on `topic`; returns those before it.
pub async fn until_barrier<T: Transport>(sub: &mut Raw<T>, topic: &str) -> Vec<Publish> {
    let mut got = Vec::new();
    loop {
        let p = sub.recv_publish().await;
        if p.topic == topic && &p.payload[..] == b"barrier" {
            return got;
        }
        got.push(p);
    }
}

/// Reads and discards from `s` until the peer closes (or resets) it; true if that happened
/// within `within`.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut sink = vec![0u8; 64 * 1024];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The bystander's own topic.
pub const BYSTANDER_TOPIC: &str = "bystander/echo";

/// A client connected before any misbehaviour, subscribed to its own topic at QoS 1: while
/// it gets its own messages back, the broker still serves everyone else.
pub struct Bystander {
    pub raw: Raw,
    n: usize,
}

impl Bystander {
    pub async fn connect(addr: SocketAddr) -> Bystander {
        let mut raw = Raw::connect(addr, "bystander").await;
        assert_eq!(raw.subscribe(BYSTANDER_TOPIC, QoS::AtLeastOnce).await, 1);
        Bystander { raw, n: 0 }
    }

    /// The bystander publishes a message tagged with `after` to itself at QoS 1 and must get
    /// exactly that back.
    pub async fn echo(&mut self, after: &str) {
        self.n += 1;
        let tag = format!("{} after {after}", self.n);
        self.raw
            .publish(BYSTANDER_TOPIC, tag.as_bytes(), QoS::AtLeastOnce, false)
            .await;
        let p = self.raw.recv_publish().await;
        assert_eq!(
            (&p.topic[..], &p.payload[..]),
            (BYSTANDER_TOPIC, tag.as_bytes()),
            "bystander after {after}"
        );
    }
}
