//! The durable store with the real binary: `kill -9` at random points, restart, and check
//! that every acknowledged message is delivered, that sessions, subscriptions and retained
//! messages survive, that a second broker on the same directory is refused, and that a
//! store whose last write was cut short still opens.
//!
//! Each test runs its own broker process on a free port with the store in a temporary
//! directory, `sync = "always"` (the shipped default).

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use common::process::{supermq_command, temp_dir, write};
use common::stored::{free_port, kill9, start};
use common::*;
use supermq::codec::{Ack, Packet, Publish, QoS};

/// `kill -9` rounds per crash test (the issue asks for at least 20).
const ROUNDS: usize = 20;

/// Writes a config for `port` with the store in `data` and returns its path. The session
/// queue bound is raised: an offline session's queue beyond it drops (a counted policy), and
/// what is tested here is the store, not that bound.
fn config(dir: &Path, port: u16, data: &Path) -> PathBuf {
    let text = format!(
        "[[listener]]\nbind = \"127.0.0.1:{port}\"\n\n[log]\nlevel = \"warn\"\n\n[sys]\n\
         interval = \"0s\"\n\n[session]\nmax_queued_messages = 1000000\n\n\
         [persistence]\ndir = \"{}\"\nsync = \"always\"\n\n[http]\nenabled = false\n",
        data.display()
    );
    write(dir, &format!("b{port}.conf"), &text)
}

fn seq_payload(n: u64) -> Bytes {
    Bytes::from(n.to_be_bytes().to_vec())
}

fn seq_of(p: &Publish) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p.payload[..8]);
    u64::from_be_bytes(b)
}

/// Publishes QoS 1 messages with sequence numbers from `next` until the connection dies (the
/// broker is killed) or `until` passes; returns the sequence numbers acknowledged.
async fn publish_until_killed(
    addr: SocketAddr,
    next: &mut u64,
    until: tokio::time::Instant,
) -> Vec<u64> {
    let mut acked = Vec::new();
    let Ok(Ok(stream)) = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr)).await
    else {
        return acked;
    };
    let mut p = raw::Raw::new(stream);
    p.send(&Packet::from(connect_packet("crash-pub", true)))
        .await;
    if !matches!(p.recv_or_closed().await, Some(Packet::ConnAck(_))) {
        return acked;
    }
    while tokio::time::Instant::now() < until {
        let n = *next;
        *next += 1;
        let pkid = p.pkid();
        let publish = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "crash/t".into(),
            pkid,
            payload: seq_payload(n),
            properties: Default::default(),
        });
        if !p.try_send_raw(&encode(&publish)).await {
            return acked;
        }
        match tokio::time::timeout(WAIT, p.try_recv()).await {
            Ok(Some(Packet::PubAck(a))) if a.pkid == pkid => acked.push(n),
            _ => return acked,
        }
    }
    acked
}

fn encode(p: &Packet) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    supermq::codec::encode(p, supermq::codec::ProtocolLevel::V311, &mut out);
    out.to_vec()
}

/// Connects the persistent subscriber (CleanSession 0) and subscribes on the first call.
async fn subscriber(addr: SocketAddr, first: bool) -> raw::Raw {
    let (mut s, present) = raw::Raw::connect_with(addr, connect_packet("crash-sub", false)).await;
    if first {
        s.subscribe("crash/t", QoS::AtLeastOnce).await;
    } else {
        assert!(present, "the persistent session survived the restart");
    }
    s
}

/// Reads every PUBLISH until none arrives for a while (acknowledging each), adding their
/// sequence numbers to `got`.
async fn drain(s: &mut raw::Raw, got: &mut BTreeSet<u64>) {
    while let Ok(Some(Packet::Publish(p))) =
        tokio::time::timeout(Duration::from_millis(500), s.try_recv()).await
    {
        got.insert(seq_of(&p));
        // The broker may be gone (killed): what arrived still counts.
        if p.qos != QoS::AtMostOnce
            && !s
                .try_send_raw(&encode(&Packet::PubAck(Ack::new(p.pkid))))
                .await
        {
            return;
        }
    }
}

/// Publishes while the broker is killed 20 times at random points and restarted; a
/// persistent QoS 1 subscriber, offline (`online` false) or connected through it all, must
/// in the end have every acknowledged sequence number.
async fn acknowledged_survive(online: bool) {
    let dir = temp_dir(if online {
        "crash-online"
    } else {
        "crash-offline"
    });
    let data = dir.join("data");
    let port = free_port();
    let conf = config(&dir, port, &data);
    let mut proc = start(&conf, port).await;
    let mut sub = Some(subscriber(proc.addr, true).await);
    if !online {
        if let Some(s) = sub.take() {
            s.disconnect().await;
        }
    }
    let mut got = BTreeSet::new();
    let mut acked = BTreeSet::new();
    let mut next = 0u64;
    for round in 0..ROUNDS {
        // A random kill point: somewhere in the next 30–150 ms of publishing.
        let window = Duration::from_millis(30 + (rand::random::<u64>() % 120));
        let until = tokio::time::Instant::now() + WAIT;
        let killer = tokio::time::sleep(window);
        tokio::pin!(killer);
        let publishing = publish_until_killed(proc.addr, &mut next, until);
        tokio::pin!(publishing);
        let mut killed = false;
        let acks = loop {
            tokio::select! {
                a = &mut publishing => break a,
                () = &mut killer, if !killed => {
                    kill9(&mut proc);
                    killed = true;
                }
            }
        };
        assert!(killed, "round {round}: publishing ended before the kill");
        acked.extend(acks);
        proc = start(&conf, port).await;
        if online {
            if let Some(mut s) = sub.take() {
                drain(&mut s, &mut got).await;
            }
            sub = Some(subscriber(proc.addr, false).await);
        }
    }
    let mut s = match sub.take() {
        Some(s) => s,
        None => subscriber(proc.addr, false).await,
    };
    drain(&mut s, &mut got).await;
    let missing: Vec<u64> = acked.difference(&got).copied().collect();
    assert!(
        acked.len() > ROUNDS,
        "the publisher got few acknowledgements ({}): the test proves little",
        acked.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages never arrived after {ROUNDS} kills: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(20)]
    );
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9_offline_subscriber() {
    acknowledged_survive(false).await;
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9_online_subscriber() {
    acknowledged_survive(true).await;
}

#[tokio::test]
async fn retained_messages_and_subscriptions_survive_a_restart() {
    let dir = temp_dir("durable-retained");
    let data = dir.join("data");
    let port = free_port();
    let conf = config(&dir, port, &data);
    let mut proc = start(&conf, port).await;
    let mut p = raw::Raw::connect(proc.addr, "ret-pub").await;
    p.publish("keep/a", b"A", QoS::AtLeastOnce, true).await;
    p.publish("keep/b", b"B", QoS::AtLeastOnce, true).await;
    let (mut s, _) = raw::Raw::connect_with(proc.addr, connect_packet("ret-sub", false)).await;
    s.subscribe("news/#", QoS::AtLeastOnce).await;
    s.disconnect().await;
    kill9(&mut proc);
    let proc = start(&conf, port).await;
    // The subscription is back: a message published now reaches the offline session.
    let mut p = raw::Raw::connect(proc.addr, "ret-pub").await;
    p.publish("news/1", b"N", QoS::AtLeastOnce, false).await;
    let (mut s, present) =
        raw::Raw::connect_with(proc.addr, connect_packet("ret-sub", false)).await;
    assert!(present, "session present after the restart");
    assert_eq!(&s.recv_publish().await.payload[..], b"N");
    // The retained messages are back.
    let mut r = raw::Raw::connect(proc.addr, "ret-reader").await;
    r.subscribe("keep/#", QoS::AtLeastOnce).await;
    let mut seen: Vec<Bytes> = vec![
        r.recv_publish().await.payload,
        r.recv_publish().await.payload,
    ];
    seen.sort();
    assert_eq!(seen, [Bytes::from_static(b"A"), Bytes::from_static(b"B")]);
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}

/// With no stored session at all, acknowledgements of plain messages go out at once (nothing
/// they carry is kept), but a retained one still waits for its write: each PUBACK here is
/// followed at once by a `kill -9`-style stop, and every acknowledged retained message is
/// back after the restart.
#[tokio::test]
async fn acknowledged_retained_messages_survive_kill_9_without_stored_sessions() {
    let dir = temp_dir("durable-retained-kill");
    let data = dir.join("data");
    let port = free_port();
    let conf = config(&dir, port, &data);
    let mut proc = start(&conf, port).await;
    let mut p = raw::Raw::connect(proc.addr, "ret-kill-pub").await;
    const N: usize = 200;
    for i in 0..N {
        // Interleaved with messages no one keeps, whose acknowledgements are not held.
        p.publish(&format!("plain/{i}"), b"x", QoS::AtLeastOnce, false)
            .await;
        p.publish(
            &format!("kept/{i}"),
            format!("{i}").as_bytes(),
            QoS::AtLeastOnce,
            true,
        )
        .await;
    }
    kill9(&mut proc);
    let proc = start(&conf, port).await;
    let mut r = raw::Raw::connect(proc.addr, "ret-kill-reader").await;
    r.subscribe("kept/#", QoS::AtMostOnce).await;
    let mut seen = BTreeSet::new();
    for _ in 0..N {
        let m = r.recv_publish().await;
        seen.insert(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    assert_eq!(seen.len(), N, "every acknowledged retained message is back");
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_second_broker_on_the_same_directory_is_refused() {
    let dir = temp_dir("durable-lock");
    let data = dir.join("data");
    let (p1, p2) = (free_port(), free_port());
    let first = start(&config(&dir, p1, &data), p1).await;
    let out = supermq_command()
        .args(["-c", config(&dir, p2, &data).to_str().expect("path")])
        .stdin(Stdio::null())
        .output()
        .expect("run a second supermq");
    assert!(!out.status.success(), "the second broker must not start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(data.to_str().expect("path")),
        "the error names the directory: {err}"
    );
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn store_check_reads_a_stopped_store_and_refuses_a_running_one() {
    let dir = temp_dir("durable-check");
    let data = dir.join("data");
    let port = free_port();
    let mut proc = start(&config(&dir, port, &data), port).await;
    let mut p = raw::Raw::connect(proc.addr, "chk-pub").await;
    p.publish("chk/r", b"R", QoS::AtLeastOnce, true).await;
    let store = |cmd: &str| {
        supermq_command()
            .args(["store", cmd])
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .expect("run supermq store")
    };
    // The running broker holds the store's lock: checking it now is refused, by name.
    let busy = store("check");
    assert_eq!(busy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"));
    kill9(&mut proc);
    let ok = store("check");
    assert!(
        ok.status.success(),
        "a store left by kill -9 checks clean: {}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(store("repair").status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A QoS 2 publisher with a persistent session: the one message it has in flight, and where
/// its exchange stands, kept across the broker's restarts (what a real client library keeps).
struct Qos2Publisher {
    next: u64,
    /// (sequence number, packet id, PUBREC received) of the message in flight.
    inflight: Option<(u64, u16, bool)>,
    pkid: u16,
    /// Sequence numbers the broker took (PUBREC): it owns them [MQTT-4.3.3].
    owned: BTreeSet<u64>,
}

impl Qos2Publisher {
    /// Publishes until the connection dies; resumes the exchange in flight first (PUBLISH
    /// again with DUP before PUBREC, PUBREL after it [MQTT-4.4.0-1]).
    async fn run(&mut self, addr: SocketAddr) {
        let Ok(Ok(stream)) = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(addr)).await
        else {
            return;
        };
        let mut p = raw::Raw::new(stream);
        p.send(&Packet::from(connect_packet("crash-pub2", false)))
            .await;
        if !matches!(p.recv_or_closed().await, Some(Packet::ConnAck(_))) {
            return;
        }
        // The first PUBLISH of this connection may be one sent before: DUP [MQTT-3.3.1-1].
        let mut resumed = self.inflight.is_some();
        loop {
            let (seq, pkid, rec) = match self.inflight {
                Some(f) => f,
                None => {
                    self.pkid = self.pkid.wrapping_add(1).max(1);
                    self.next += 1;
                    (self.next, self.pkid, false)
                }
            };
            self.inflight = Some((seq, pkid, rec));
            let out = if rec {
                Packet::PubRel(Ack::new(pkid))
            } else {
                Packet::Publish(Publish {
                    dup: std::mem::take(&mut resumed),
                    qos: QoS::ExactlyOnce,
                    retain: false,
                    topic: "crash/q2".into(),
                    pkid,
                    payload: seq_payload(seq),
                    properties: Default::default(),
                })
            };
            if !p.try_send_raw(&encode(&out)).await {
                return;
            }
            match tokio::time::timeout(WAIT, p.try_recv()).await {
                Ok(Some(Packet::PubRec(a))) if a.pkid == pkid && !rec => {
                    self.owned.insert(seq);
                    self.inflight = Some((seq, pkid, true));
                }
                Ok(Some(Packet::PubComp(a))) if a.pkid == pkid && rec => self.inflight = None,
                _ => return,
            }
        }
    }
}

/// A QoS 2 subscriber with a persistent session: counts each message once, as a client
/// that remembers the packet ids it answered with PUBREC until their PUBREL does.
#[derive(Default)]
struct Qos2Subscriber {
    awaiting_rel: BTreeSet<u16>,
    got: Vec<u64>,
    /// (sequence number, packet id, DUP, connection) of every new message, for the report.
    log: Vec<(u64, u16, bool, usize)>,
    conn: usize,
}

impl Qos2Subscriber {
    async fn read(&mut self, s: &mut raw::Raw) {
        while let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(300), s.try_recv()).await
        {
            let answer = match p {
                Packet::Publish(m) => {
                    if self.awaiting_rel.insert(m.pkid) {
                        self.got.push(seq_of(&m));
                        self.log.push((seq_of(&m), m.pkid, m.dup, self.conn));
                    }
                    Packet::PubRec(Ack::new(m.pkid))
                }
                Packet::PubRel(a) => {
                    self.awaiting_rel.remove(&a.pkid);
                    Packet::PubComp(Ack::new(a.pkid))
                }
                _ => continue,
            };
            if !s.try_send_raw(&encode(&answer)).await {
                return;
            }
        }
    }
}

#[tokio::test]
async fn qos2_is_exactly_once_across_kill_9() {
    let dir = temp_dir("crash-qos2");
    let data = dir.join("data");
    let port = free_port();
    let conf = config(&dir, port, &data);
    let mut proc = start(&conf, port).await;
    let (mut s, _) = raw::Raw::connect_with(proc.addr, connect_packet("crash-sub2", false)).await;
    s.subscribe("crash/q2", QoS::ExactlyOnce).await;
    let mut sub = Qos2Subscriber::default();
    let mut publisher = Qos2Publisher {
        next: 0,
        inflight: None,
        pkid: 0,
        owned: BTreeSet::new(),
    };
    for round in 0..ROUNDS {
        let window = Duration::from_millis(30 + (rand::random::<u64>() % 120));
        let killer = tokio::time::sleep(window);
        tokio::pin!(killer);
        {
            let addr = proc.addr;
            let both = async {
                tokio::join!(publisher.run(addr), sub.read(&mut s));
            };
            tokio::pin!(both);
            tokio::select! {
                () = &mut both => panic!("round {round}: the clients stopped before the kill"),
                () = &mut killer => kill9(&mut proc),
            }
        }
        proc = start(&conf, port).await;
        let (again, present) =
            raw::Raw::connect_with(proc.addr, connect_packet("crash-sub2", false)).await;
        assert!(present, "round {round}: the subscriber's session survived");
        s = again;
        sub.conn += 1;
    }
    // Finish the exchange in flight, then collect everything.
    let finish = async {
        tokio::join!(publisher.run(proc.addr), sub.read(&mut s));
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), finish).await;
    sub.read(&mut s).await;
    let mut seen = BTreeSet::new();
    let dups: Vec<u64> = sub
        .got
        .iter()
        .copied()
        .filter(|n| !seen.insert(*n))
        .collect();
    let detail: Vec<_> = sub.log.iter().filter(|e| dups.contains(&e.0)).collect();
    assert!(
        dups.is_empty(),
        "QoS 2 delivered twice: {dups:?}: {detail:?}"
    );
    let missing: Vec<u64> = publisher.owned.difference(&seen).copied().collect();
    assert!(
        publisher.owned.len() > ROUNDS,
        "too few messages to prove anything"
    );
    assert!(
        missing.is_empty(),
        "taken (PUBREC) but never delivered: {missing:?}"
    );
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stored session's keys hold its client id, and the store's keys are at most 65,535
/// bytes: the longest id that fits is kept across a restart like any other; one byte longer
/// is refused at CONNECT (identifier rejected) instead of reaching the store (whose engine
/// would panic on the key), and the broker goes on serving.
#[tokio::test]
async fn the_longest_client_id_the_store_can_key_is_kept_and_a_longer_one_refused() {
    use supermq::codec::ConnectReturnCode;
    let dir = temp_dir("durable-long-id");
    let data = dir.join("data");
    let port = free_port();
    let conf = config(&dir, port, &data);
    let mut proc = start(&conf, port).await;
    let longest = "l".repeat(supermq::store::durable::MAX_CLIENT_ID);
    let mut refused = raw::Raw::open(proc.addr).await;
    assert_eq!(
        refused
            .try_connack(connect_packet(&format!("{longest}x"), false))
            .await,
        Some(ConnectReturnCode::IdentifierRejected)
    );
    let (mut s, _) = raw::Raw::connect_with(proc.addr, connect_packet(&longest, false)).await;
    s.subscribe("long/t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    // Acknowledged once on disk for the offline session.
    let mut p = raw::Raw::connect(proc.addr, "long-pub").await;
    p.publish("long/t", b"kept", QoS::AtLeastOnce, false).await;
    kill9(&mut proc);
    let proc = start(&conf, port).await;
    let (mut s, present) = raw::Raw::connect_with(proc.addr, connect_packet(&longest, false)).await;
    assert!(
        present,
        "the session with the longest id survived the restart"
    );
    assert_eq!(&s.recv_publish().await.payload[..], b"kept");
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}
