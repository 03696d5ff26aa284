//! Shared harness for the integration tests: a real broker on 127.0.0.1:0 and a raw-socket
//! MQTT client that speaks exact bytes, waits on events with timeouts and never sleeps.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use supermq::codec::{
    self, Ack, ConnAck, Connect, DecodeLimits, Disconnect, LastWill, Packet, Properties,
    ProtocolLevel, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscribeFilter, UnsubAck,
    Unsubscribe,
};
use supermq::{Broker, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How long any single expected event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A broker running in this test process.
pub struct TestBroker {
    pub broker: Broker,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A config bound to 127.0.0.1:0 with $SYS off, for tests to adjust.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.listeners[0].bind = "127.0.0.1:0".parse().expect("addr");
    c.sys.interval = Duration::ZERO;
    c
}

/// Starts a broker with the test config changed by `f`.
pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestBroker {
    let mut c = test_config();
    f(&mut c);
    let shutdown = CancellationToken::new();
    let broker = Broker::start(c, shutdown.clone())
        .await
        .expect("broker starts");
    let addr = broker.local_addr();
    TestBroker {
        broker,
        addr,
        shutdown,
    }
}

/// Starts a broker on the default test config.
pub async fn start() -> TestBroker {
    start_with(|_| {}).await
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

/// A raw MQTT client over one TCP connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
    next_id: u16,
    /// Packets received while waiting for a specific acknowledgement, in arrival order.
    pending: std::collections::VecDeque<Packet>,
}

impl Raw {
    /// Opens a TCP connection (no MQTT yet).
    pub async fn open(addr: SocketAddr) -> Raw {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("tcp connect");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            buf: BytesMut::new(),
            next_id: 0,
            pending: Default::default(),
        }
    }

    /// Opens a connection, sends CONNECT and expects CONNACK 0; returns session-present.
    pub async fn connect_with(addr: SocketAddr, c: Connect) -> (Raw, bool) {
        let mut r = Raw::open(addr).await;
        r.send(&Packet::from(c)).await;
        match r.recv().await {
            Packet::ConnAck(ConnAck {
                reason: ReasonCode::Success,
                session_present,
                ..
            }) => (r, session_present),
            other => panic!("expected CONNACK 0, got {other:?}"),
        }
    }

    /// A clean-session client with id `id`.
    pub async fn connect(addr: SocketAddr, id: &str) -> Raw {
        Raw::connect_with(addr, connect_packet(id, true)).await.0
    }

    pub fn pkid(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    pub async fn send(&mut self, p: &Packet) {
        let mut out = BytesMut::new();
        codec::encode(p, ProtocolLevel::V311, &mut out);
        self.send_raw(&out).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
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

    /// The next packet, or `None` when the broker closed the connection.
    pub async fn try_recv(&mut self) -> Option<Packet> {
        if let Some(p) = self.pending.pop_front() {
            return Some(p);
        }
        self.try_recv_wire().await
    }

    async fn try_recv_wire(&mut self) -> Option<Packet> {
        loop {
            match codec::decode(&mut self.buf, &DecodeLimits::default(), ProtocolLevel::V311) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => panic!("broker sent a malformed packet: {e}"),
            }
            match self.stream.read_buf(&mut self.buf).await {
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
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i] == want {
                self.pending.remove(i);
                return;
            }
            i += 1;
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

    pub async fn disconnect(mut self) {
        self.send(&Packet::Disconnect(Disconnect::default())).await;
        let _ = self.stream.shutdown().await;
    }
}

/// Publishes a QoS 1 marker on `topic` from `publisher`; a subscriber that then receives it
/// has received everything queued for it before (queues keep order) [MQTT-4.6.0-6].
pub async fn barrier(publisher: &mut Raw, topic: &str) {
    publisher
        .publish(topic, b"barrier", QoS::AtLeastOnce, false)
        .await;
}

/// Receives PUBLISH packets until the barrier marker on `topic`; returns those before it.
pub async fn until_barrier(sub: &mut Raw, topic: &str) -> Vec<Publish> {
    let mut got = Vec::new();
    loop {
        let p = sub.recv_publish().await;
        if p.topic == topic && &p.payload[..] == b"barrier" {
            return got;
        }
        got.push(p);
    }
}

/// Polls `cond` until it holds, failing the test after `WAIT`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads a counter.
pub fn metric(
    b: &TestBroker,
    f: impl Fn(&supermq::Metrics) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    supermq::metrics::get(f(b.broker.metrics()))
}

/// The route listener of a clustered test broker.
pub fn route(b: &TestBroker) -> SocketAddr {
    b.broker.route_addr().expect("cluster enabled")
}

/// Route links currently up on `b`.
pub fn links(b: &TestBroker) -> usize {
    b.broker
        .context()
        .router
        .cluster()
        .map_or(0, |c| c.peer_ids().len())
}

/// Appends a remaining length in the variable-length encoding of §2.2.3.
pub fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

/// A raw packet: first byte, the body's remaining length, body (for bytes the codec's own
/// encoder would refuse).
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    put_len(&mut out, body.len());
    out.extend_from_slice(body);
    out
}
