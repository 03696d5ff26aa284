//! Offline queues of persistent sessions against any MQTT 3.1.1 broker: how fast messages
//! are queued for offline sessions, and how fast the sessions drain them when they come
//! back. `benches/durable_queues.sh` runs it against supermq and Mosquitto, restarting the
//! broker between the two phases (and measuring that restart).
//!
//! ```text
//! durable_queues setup   PORT SESSIONS                    # subscribe q/<i> (QoS 1), go offline
//! durable_queues fill    PORT SESSIONS PER_SESSION SIZE   # queue PER_SESSION messages each
//! durable_queues drain   PORT SESSIONS PER_SESSION        # reconnect, take and check them all
//! durable_queues ready   PORT                             # wait for a CONNACK (after a restart)
//! ```
//!
//! Each phase prints one JSON line: `{"phase":..,"messages":..,"seconds":..,"per_s":..}`;
//! `drain` also counts messages missing or out of order (`bad`).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use supermq::codec::{
    self, Ack, Connect, DecodeLimits, Packet, Properties, ProtocolLevel, Publish, QoS, Subscribe,
    SubscribeFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Publishers used to fill, and unacknowledged QoS 1 messages each keeps in flight (the
/// brokers' default Receive Maximum, 20).
const PUBLISHERS: usize = 4;
const WINDOW: usize = 20;
/// Sessions draining at once.
const DRAINERS: usize = 8;

struct Conn {
    s: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Conn {
    async fn open(port: u16, id: &str, clean: bool) -> (Conn, bool) {
        let s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let mut c = Conn {
            s,
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::new(),
        };
        c.put(&Packet::Connect(Box::new(Connect {
            level: ProtocolLevel::V311,
            clean_session: clean,
            keep_alive: 600,
            client_id: id.to_owned(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        })));
        c.flush().await;
        match c.next().await {
            Packet::ConnAck(a) => (c, a.session_present),
            p => panic!("expected CONNACK, got {p:?}"),
        }
    }

    fn put(&mut self, p: &Packet) {
        codec::encode(p, ProtocolLevel::V311, &mut self.wbuf);
    }

    async fn flush(&mut self) {
        if !self.wbuf.is_empty() {
            self.s.write_all(&self.wbuf).await.expect("write");
            self.wbuf.clear();
        }
    }

    async fn next(&mut self) -> Packet {
        loop {
            let limits = DecodeLimits::default();
            if let Some(p) =
                codec::decode(&mut self.rbuf, &limits, ProtocolLevel::V311).expect("decode")
            {
                return p;
            }
            let n = tokio::time::timeout(Duration::from_secs(30), self.s.read_buf(&mut self.rbuf))
                .await
                .expect("nothing from the broker for 30 s")
                .expect("read");
            assert!(n > 0, "the broker closed the connection");
        }
    }

    async fn disconnect(mut self) {
        self.put(&Packet::Disconnect(Default::default()));
        self.flush().await;
    }
}

fn payload(session: usize, n: usize, size: usize) -> Bytes {
    let mut p = vec![b'.'; size.max(16)];
    p[..8].copy_from_slice(&(session as u64).to_be_bytes());
    p[8..16].copy_from_slice(&(n as u64).to_be_bytes());
    Bytes::from(p)
}

fn report(phase: &str, messages: usize, took: Duration, bad: usize) {
    let secs = took.as_secs_f64();
    println!(
        "{{\"phase\":\"{phase}\",\"messages\":{messages},\"seconds\":{secs:.3},\"per_s\":{:.0},\"bad\":{bad}}}",
        messages as f64 / secs
    );
}

async fn setup(port: u16, sessions: usize) {
    let t = Instant::now();
    for i in 0..sessions {
        let (mut c, _) = Conn::open(port, &format!("dq-{i}"), false).await;
        let f = SubscribeFilter::new(format!("q/{i}"), QoS::AtLeastOnce);
        c.put(&Packet::Subscribe(Subscribe::new(1, vec![f])));
        c.flush().await;
        match c.next().await {
            Packet::SubAck(_) => {}
            p => panic!("expected SUBACK, got {p:?}"),
        }
        c.disconnect().await;
    }
    report("setup", sessions, t.elapsed(), 0);
}

/// One publisher: messages `n` for sessions `first, first + PUBLISHERS, ...`.
async fn publish(port: u16, me: usize, sessions: usize, per: usize, size: usize) -> usize {
    let (mut c, _) = Conn::open(port, &format!("dq-pub-{me}"), true).await;
    let mine: Vec<usize> = (me..sessions).step_by(PUBLISHERS).collect();
    let total = mine.len() * per;
    let (mut sent, mut acked, mut pkid) = (0usize, 0usize, 0u16);
    while acked < total {
        while sent < total && sent - acked < WINDOW {
            let (n, s) = (sent / mine.len(), mine[sent % mine.len()]);
            pkid = pkid % 60_000 + 1;
            c.put(&Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: format!("q/{s}"),
                pkid,
                payload: payload(s, n, size),
                properties: Properties::default(),
            }));
            sent += 1;
        }
        c.flush().await;
        match c.next().await {
            Packet::PubAck(_) => acked += 1,
            p => panic!("expected PUBACK, got {p:?}"),
        }
    }
    c.disconnect().await;
    total
}

async fn fill(port: u16, sessions: usize, per: usize, size: usize) {
    let t = Instant::now();
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|me| tokio::spawn(publish(port, me, sessions, per, size)))
        .collect();
    let mut n = 0;
    for t in tasks {
        n += t.await.expect("publisher");
    }
    report("fill", n, t.elapsed(), 0);
}

/// One drainer: sessions `me, me + DRAINERS, ...`, each reconnected and emptied in order.
async fn drain_some(port: u16, me: usize, sessions: usize, per: usize) -> (usize, usize) {
    let (mut got, mut bad) = (0, 0);
    for s in (me..sessions).step_by(DRAINERS) {
        let (mut c, present) = Conn::open(port, &format!("dq-{s}"), false).await;
        bad += usize::from(!present);
        for n in 0..per {
            let p = match c.next().await {
                Packet::Publish(p) => p,
                p => panic!("expected PUBLISH, got {p:?}"),
            };
            let mut want = [0u8; 16];
            want[..8].copy_from_slice(&(s as u64).to_be_bytes());
            want[8..].copy_from_slice(&(n as u64).to_be_bytes());
            bad += usize::from(p.payload.get(..16) != Some(&want[..]));
            got += 1;
            c.put(&Packet::PubAck(Ack::new(p.pkid)));
            if c.wbuf.len() > 16 * 1024 || c.rbuf.is_empty() {
                c.flush().await;
            }
        }
        c.flush().await;
        c.disconnect().await;
    }
    (got, bad)
}

async fn drain(port: u16, sessions: usize, per: usize) {
    let t = Instant::now();
    let tasks: Vec<_> = (0..DRAINERS.min(sessions))
        .map(|me| tokio::spawn(drain_some(port, me, sessions, per)))
        .collect();
    let (mut got, mut bad) = (0, 0);
    for t in tasks {
        let (g, b) = t.await.expect("drainer");
        got += g;
        bad += b;
    }
    report("drain", got, t.elapsed(), bad);
}

/// Waits until the broker answers a CONNECT (its port may accept connections before it
/// serves them: the kernel queues them while the store is read).
async fn ready(port: u16) {
    let t = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            let (c, _) = Conn::open(port, "dq-ready", true).await;
            c.disconnect().await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    report("ready", 1, t.elapsed(), 0);
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let num = |i: usize| -> usize {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("argument {i}: a number (see the module doc)"))
    };
    let Some(phase) = args.first() else {
        eprintln!("usage: durable_queues setup|fill|drain PORT SESSIONS [PER_SESSION [SIZE]]");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let port = u16::try_from(num(1)).expect("port");
    match phase.as_str() {
        "setup" => rt.block_on(setup(port, num(2))),
        "fill" => rt.block_on(fill(port, num(2), num(3), num(4))),
        "drain" => rt.block_on(drain(port, num(2), num(3))),
        "ready" => rt.block_on(ready(port)),
        other => eprintln!("unknown phase {other}"),
    }
}
