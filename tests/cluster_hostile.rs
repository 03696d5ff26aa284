//! The route port against strangers and stalled peers: handshake frames bounded before they
//! are buffered, a handshake deadline, a connection limit; SUBACKs held for a peer that does
//! not answer while the connection goes on serving; gossip dials that end with the broker.
//!
//! Peers here are fake: raw TCP speaking the route protocol through `supermq::cluster::frame`,
//! so they can stall or misbehave where a real node would not.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use common::cluster::{clustered, links, route};
use common::*;
use supermq::cluster::frame::{self, Frame, Info};
use supermq::codec::{Packet, Properties, QoS, ReasonCode, SubAck, Subscribe, SubscribeFilter};
use supermq::{Broker, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Well under any timeout a test waits out: what "at once" means here.
const PROMPT: Duration = Duration::from_secs(2);

/// Makes `c` a cluster node `id` on loopback, with no seeds.
fn node_config(c: &mut Config, id: &str) {
    clustered(c, id, &[]);
    c.cluster.reconnect_max = Duration::from_millis(500);
}

/// A route peer driven by the test: it dials a node and completes the handshake as node `id`
/// (no secret), then sends and reads frames as told. It answers nothing by itself.
struct FakePeer {
    stream: TcpStream,
    buf: BytesMut,
}

impl FakePeer {
    async fn link(route: SocketAddr, id: &str) -> FakePeer {
        let stream = TcpStream::connect(route).await.expect("dial route");
        let mut p = FakePeer {
            stream,
            buf: BytesMut::new(),
        };
        let mut out = BytesMut::new();
        frame::encode_preamble(&mut out);
        frame::encode(
            &Frame::Info(Info {
                node_id: id.to_owned(),
                cluster: "supermq".to_owned(),
                // Nothing listens there: nobody dials it within a test.
                advertise: "127.0.0.1:9".to_owned(),
                instance: 1,
                nonce: 1,
            }),
            &mut out,
        );
        p.stream.write_all(&out).await.expect("send INFO");
        tokio::time::timeout(WAIT, async {
            while !frame::decode_preamble(&mut p.buf).expect("node preamble") {
                p.fill().await;
            }
        })
        .await
        .expect("node preamble in time");
        assert!(matches!(p.next().await, Frame::Info(_)));
        assert_eq!(p.next().await, Frame::Welcome, "linked");
        // The node's snapshot ends its interest with SnapshotEnd.
        while p.next().await != Frame::SnapshotEnd {}
        p
    }

    async fn fill(&mut self) {
        let n = self.stream.read_buf(&mut self.buf).await.expect("read");
        assert!(n > 0, "node closed the link");
    }

    /// The next frame the node sends, failing the test after `WAIT`.
    async fn next(&mut self) -> Frame {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(f) = frame::decode(&mut self.buf).expect("valid frame") {
                    return f;
                }
                self.fill().await;
            }
        })
        .await
        .expect("a frame in time")
    }

    /// Reads frames until a SYNC; returns it and the SUB frames before it.
    async fn until_sync(&mut self) -> (u64, Vec<String>) {
        let mut subs = Vec::new();
        loop {
            match self.next().await {
                Frame::Sync(n) => return (n, subs),
                Frame::Sub(f) => subs.push(f),
                _ => {}
            }
        }
    }

    async fn send(&mut self, f: &Frame) {
        let mut out = BytesMut::new();
        frame::encode(f, &mut out);
        self.stream.write_all(&out).await.expect("send frame");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_handshake_frame_is_refused_from_its_header() {
    // Only the frame limit can close it in time: the handshake deadline is far away.
    let a = start_with(|c| {
        node_config(c, "big");
        c.cluster.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let mut s = TcpStream::connect(route(&a)).await.expect("connect");
    let mut out = BytesMut::new();
    frame::encode_preamble(&mut out);
    // An INFO frame declaring a 100 MB body, and the first kilobyte of it.
    out.put_u8(1);
    let mut len = 100_000_000u64;
    while len >= 0x80 {
        out.put_u8((len as u8) | 0x80);
        len >>= 7;
    }
    out.put_u8(len as u8);
    out.put_slice(&[0u8; 1024]);
    s.write_all(&out).await.expect("write");
    assert!(
        closed_within(&mut s, PROMPT).await,
        "a 100 MB handshake frame was not refused at its header"
    );
    assert!(metric(&a, |m| &m.route_handshake_rejected) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_or_stalled_handshake_is_closed_at_the_deadline() {
    let a = start_with(|c| {
        node_config(c, "slow");
        c.cluster.handshake_timeout = Duration::from_millis(300);
    })
    .await;
    // Says nothing at all.
    let started = Instant::now();
    let mut silent = TcpStream::connect(route(&a)).await.expect("connect");
    assert!(closed_within(&mut silent, PROMPT).await, "silent peer kept");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "closed early"
    );
    // Starts a handshake and stalls in the middle of its INFO.
    let mut stalled = TcpStream::connect(route(&a)).await.expect("connect");
    stalled
        .write_all(b"SMQR\x02\x01\x20\x05")
        .await
        .expect("write");
    assert!(
        closed_within(&mut stalled, PROMPT).await,
        "stalled peer kept"
    );
    assert!(metric(&a, |m| &m.route_handshake_rejected) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_connections_over_the_limit_are_refused_until_the_hostile_ones_go() {
    let a = start_with(|c| {
        node_config(c, "full");
        c.cluster.max_route_connections = 2;
        c.cluster.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let ra = route(&a);
    // Two strangers hold the two places: the node has accepted them (it speaks first) and
    // waits for their handshake.
    let mut hostile = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(ra).await.expect("connect");
        let mut preamble = [0u8; 5];
        tokio::time::timeout(WAIT, s.read_exact(&mut preamble))
            .await
            .expect("accepted in time")
            .expect("preamble");
        assert_eq!(&preamble[..4], b"SMQR");
        hostile.push(s);
    }
    let refused_before = metric(&a, |m| &m.route_handshake_rejected);
    let mut third = TcpStream::connect(ra).await.expect("connect");
    assert!(
        closed_within(&mut third, PROMPT).await,
        "a connection over cluster.max_route_connections was kept"
    );
    assert!(metric(&a, |m| &m.route_handshake_rejected) > refused_before);
    // The strangers leave: a real peer links.
    drop(hostile);
    let b = start_with(|c| {
        node_config(c, "late");
        c.cluster.seeds = vec![ra.to_string()];
    })
    .await;
    wait_until("the real peer links", || links(&a) == 1 && links(&b) == 1).await;
    // A linked peer no longer counts: both places are free for handshakes again, so strangers
    // can never keep a restarting peer out for longer than a handshake lasts.
    let mut again = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(ra).await.expect("connect");
        let mut preamble = [0u8; 5];
        tokio::time::timeout(WAIT, s.read_exact(&mut preamble))
            .await
            .expect("accepted beside the linked peer")
            .expect("preamble");
        again.push(s);
    }
    let mut over = TcpStream::connect(ra).await.expect("connect");
    assert!(closed_within(&mut over, PROMPT).await);
}

/// Sends SUBSCRIBE `filter` (QoS 1) with packet id `pkid`, without waiting for the SUBACK.
async fn send_subscribe(c: &mut Raw, pkid: u16, filter: &str) {
    c.send(&Packet::Subscribe(Subscribe {
        pkid,
        filters: vec![SubscribeFilter::new(filter.to_owned(), QoS::AtLeastOnce)],
        properties: Properties::new(),
    }))
    .await;
}

fn suback(pkid: u16) -> Packet {
    Packet::SubAck(SubAck::new(pkid, vec![ReasonCode::GrantedQoS1]))
}

/// A node linked to one fake peer that answers no SYNC unless told: a SUBACK waiting for it
/// would wait the whole (long) sync_timeout.
async fn node_with_a_mute_peer(id: &str) -> (TestBroker, FakePeer) {
    let id = id.to_owned();
    let a = start_with(move |c| {
        node_config(c, &id);
        c.cluster.sync_timeout = Duration::from_secs(60);
        c.cluster.ping_interval = Duration::from_secs(30);
    })
    .await;
    let peer = FakePeer::link(route(&a), "mute").await;
    wait_until("fake peer linked", || links(&a) == 1).await;
    (a, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_served_while_its_suback_waits_for_the_cluster() {
    let (a, mut peer) = node_with_a_mute_peer("hold").await;
    // New interest: the SUBACK waits for the peer, but a PINGREQ behind it is answered.
    let mut c1 = Raw::connect(a.addr, "c1").await;
    send_subscribe(&mut c1, 1, "a/b").await;
    c1.send(&Packet::PingReq).await;
    assert_eq!(
        c1.recv().await,
        Packet::PingResp,
        "served while the SUBACK waits"
    );
    let (seq, subs) = peer.until_sync().await;
    assert_eq!(subs, ["a/b"], "the interest goes before the SYNC");
    // The peer confirms: the SUBACK follows.
    peer.send(&Frame::SyncAck(seq)).await;
    assert_eq!(c1.recv().await, suback(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_changes_no_interest_is_acknowledged_at_once() {
    let (a, mut peer) = node_with_a_mute_peer("known").await;
    let mut c1 = Raw::connect(a.addr, "c1").await;
    send_subscribe(&mut c1, 1, "a/b").await;
    let (seq, _) = peer.until_sync().await;
    peer.send(&Frame::SyncAck(seq)).await;
    assert_eq!(c1.recv().await, suback(1));
    // The peer has `a/b` from this node: another client's SUBSCRIBE to it waits for nothing.
    let mut c2 = Raw::connect(a.addr, "c2").await;
    let started = Instant::now();
    send_subscribe(&mut c2, 1, "a/b").await;
    assert_eq!(c2.recv().await, suback(1));
    assert!(started.elapsed() < PROMPT, "a SUBACK waited for nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_suback_waits_is_taken_over_at_once() {
    let (a, mut peer) = node_with_a_mute_peer("takeover").await;
    let mut roamer = Raw::connect(a.addr, "roamer").await;
    send_subscribe(&mut roamer, 1, "c/d").await;
    // The SUBSCRIBE is handled: its interest and SYNC reached the peer, which stays mute.
    let (_, subs) = peer.until_sync().await;
    assert_eq!(subs, ["c/d"]);
    let started = Instant::now();
    let mut again = Raw::connect(a.addr, "roamer").await;
    let before = roamer.expect_closed().await;
    assert!(
        started.elapsed() < PROMPT,
        "take-over took {:?}",
        started.elapsed()
    );
    assert!(
        !before.contains(&suback(1)),
        "no SUBACK for a subscription the peers never confirmed: {before:?}"
    );
    again.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossiped_dial_ends_with_the_broker() {
    let mut config = test_config();
    node_config(&mut config, "gossipee");
    config.cluster.ping_interval = Duration::from_secs(30);
    // Far longer than this test: only shutdown can end the dial's handshake.
    config.cluster.handshake_timeout = Duration::from_secs(60);
    let shutdown = CancellationToken::new();
    let broker = Broker::start(config, shutdown.clone())
        .await
        .expect("starts");
    let ra = broker.route_addr().expect("route");
    // A node that accepts route connections and never says a word.
    let ghost = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut peer = FakePeer::link(ra, "gossiper").await;
    peer.send(&Frame::Peer {
        node_id: "ghost".into(),
        addr: ghost.local_addr().expect("addr").to_string(),
    })
    .await;
    let (mut dialled, _) = tokio::time::timeout(WAIT, ghost.accept())
        .await
        .expect("the gossiped address is dialled")
        .expect("accept");
    // The dial is in its handshake (it speaks first), waiting for an answer that never comes.
    let mut preamble = [0u8; 5];
    tokio::time::timeout(WAIT, dialled.read_exact(&mut preamble))
        .await
        .expect("handshake in time")
        .expect("preamble");
    assert_eq!(&preamble[..4], b"SMQR");

    shutdown.cancel();
    tokio::time::timeout(PROMPT, broker.stopped())
        .await
        .expect("stopped() returns promptly");
    // Stopped means every task ended, the dial among them: its connection is closed already.
    assert!(
        closed_within(&mut dialled, Duration::from_millis(500)).await,
        "the gossip dial outlived the broker"
    );
}
