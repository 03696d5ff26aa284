//! Memory does not grow with what the durable store holds: the queues of offline persistent
//! sessions are on disk only, a restart reads none of them into memory, and they are read
//! back, in order and whole, as their clients take them (the real binary, shipped
//! `memory_window`).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::process::{temp_dir, write};
use common::stored::{free_port, kill9, rss, start};
use common::*;
use supermq::codec::{Ack, Packet, QoS};

/// Offline sessions, and what is queued for each.
const SESSIONS: usize = 8;
const PER_SESSION: usize = 400;
/// 8 × 400 × 16 KB: 50 MB queued.
const PAYLOAD: usize = 16 * 1024;
const QUEUED: u64 = (SESSIONS * PER_SESSION * PAYLOAD) as u64;

fn config(dir: &Path, port: u16, data: &Path) -> PathBuf {
    let text = format!(
        "[[listener]]\nbind = \"127.0.0.1:{port}\"\n\n[log]\nlevel = \"warn\"\n\n[sys]\n\
         interval = \"0s\"\n\n[session]\nmax_queued_messages = 100000\n\
         max_queued_bytes = 1073741824\n\n[persistence]\ndir = \"{}\"\n\
         max_memory = 16777216\n\n[http]\nenabled = false\n",
        data.display()
    );
    write(dir, &format!("m{port}.conf"), &text)
}

fn payload(session: usize, n: usize) -> Vec<u8> {
    let mut p = vec![b'.'; PAYLOAD];
    let head = format!("{session}:{n}:");
    p[..head.len()].copy_from_slice(head.as_bytes());
    p
}

async fn session(addr: SocketAddr, i: usize) -> (Raw, bool) {
    Raw::connect_with(addr, connect_packet(&format!("mem-{i}"), false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queues_stay_on_disk_across_a_restart_and_drain_whole() {
    let dir = temp_dir("durable-memory");
    let data = dir.join("data");
    let port = free_port();
    let conf = config(&dir, port, &data);
    let mut proc = start(&conf, port).await;
    for i in 0..SESSIONS {
        let (mut s, _) = session(proc.addr, i).await;
        s.subscribe(&format!("mem/{i}"), QoS::AtLeastOnce).await;
        s.disconnect().await;
    }
    let base = rss(&proc);
    let mut p = Raw::connect(proc.addr, "mem-pub").await;
    for n in 0..PER_SESSION {
        for i in 0..SESSIONS {
            p.publish(&format!("mem/{i}"), &payload(i, n), QoS::AtLeastOnce, false)
                .await;
        }
    }
    // Every message was acknowledged, so every one is on disk; none is in memory for the
    // offline sessions. Allocator caches and the engine's write buffers stay, so the bound
    // is a fraction of what is queued, not zero.
    let grown = rss(&proc).saturating_sub(base);
    assert!(
        grown < QUEUED / 2,
        "memory grew by {grown} bytes for {QUEUED} bytes queued to offline sessions"
    );
    kill9(&mut proc);

    let proc = start(&conf, port).await;
    // A fresh broker's memory (`base`), give or take: nothing queued is read on start.
    let after_restart = rss(&proc);
    assert!(
        after_restart < base + QUEUED / 8,
        "{after_restart} bytes resident after a restart with {QUEUED} bytes queued \
         (a fresh broker: {base})"
    );
    for i in 0..SESSIONS {
        let (mut s, present) = session(proc.addr, i).await;
        assert!(present, "session mem-{i} is back");
        for n in 0..PER_SESSION {
            let m = match s.recv().await {
                Packet::Publish(m) => m,
                other => panic!("expected PUBLISH, got {other:?}"),
            };
            assert_eq!(
                m.payload[..],
                payload(i, n)[..],
                "mem-{i}: message {n}, in order"
            );
            s.send(&Packet::PubAck(Ack::new(m.pkid))).await;
        }
        s.disconnect().await;
    }
    // Drained: on a reconnect the next packet is the answer to a ping, no PUBLISH.
    let (mut s, _) = session(proc.addr, 0).await;
    s.ping().await;
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}
