//! A load client for the no-loss tests: one rumqttc connection (an independent client
//! library) that may subscribe, publishes numbered QoS 1/2 messages with at most `window`
//! unacknowledged (as mosquitto_pub and paho do), and reports every message it receives.
//! A slow client pauses its event loop now and then: it keeps reading, only in bursts, as
//! a busy application does.

#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How a client reads.
#[derive(Debug, Clone, Copy)]
pub enum Reading {
    /// As fast as messages come.
    Fast,
    /// After every `every` messages it stops polling for `pause`.
    Bursts { every: u64, pause: Duration },
}

/// What the event loop reports.
#[derive(Debug)]
pub enum Seen {
    SubAck,
    /// A message: (publisher, sequence number).
    Msg(u32, u32),
    Ended(String),
}

/// One client and its event-loop task.
pub struct LoadClient {
    pub client: AsyncClient,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    task: JoinHandle<()>,
}

impl Drop for LoadClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The payload of message `seq` of publisher `id`: both numbers, then padding.
pub fn payload(id: u32, seq: u32, size: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(size.max(8));
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.resize(size.max(8), b'.');
    p
}

impl LoadClient {
    /// Connects client `id` to `addr` (clean session unless `persistent`), with at most
    /// `window` unacknowledged outgoing messages.
    pub fn connect(
        addr: SocketAddr,
        id: &str,
        window: u16,
        persistent: bool,
        reading: Reading,
    ) -> LoadClient {
        let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(60));
        o.set_inflight(window);
        o.set_clean_session(!persistent);
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, el) = AsyncClient::new(o, 64);
        let (tx, seen) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(el, tx, reading));
        LoadClient { client, seen, task }
    }

    /// Subscribes to `filter` and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.client.subscribe(filter, qos).await.expect("subscribe");
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.seen.recv()).await {
                Ok(Some(Seen::SubAck)) => return,
                Ok(Some(Seen::Msg(..))) => {}
                other => panic!("no SUBACK: {other:?}"),
            }
        }
    }

    /// Publishes `count` numbered messages on `topic` from a task of its own.
    pub fn publish_all(
        &self,
        topic: String,
        id: u32,
        count: u32,
        qos: QoS,
        size: usize,
    ) -> JoinHandle<()> {
        let client = self.client.clone();
        tokio::spawn(async move {
            for seq in 0..count {
                client
                    .publish(topic.clone(), qos, false, payload(id, seq, size))
                    .await
                    .expect("publish");
            }
        })
    }
}

async fn drive(mut el: EventLoop, tx: mpsc::UnboundedSender<Seen>, reading: Reading) {
    let mut n = 0u64;
    loop {
        let seen = match el.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) if p.payload.len() >= 8 => {
                let id =
                    u32::from_be_bytes([p.payload[0], p.payload[1], p.payload[2], p.payload[3]]);
                let seq =
                    u32::from_be_bytes([p.payload[4], p.payload[5], p.payload[6], p.payload[7]]);
                n += 1;
                if let Reading::Bursts { every, pause } = reading {
                    if n % every == 0 {
                        tokio::time::sleep(pause).await;
                    }
                }
                Seen::Msg(id, seq)
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => Seen::SubAck,
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(Seen::Ended(e.to_string()));
                return;
            }
        };
        if tx.send(seen).is_err() {
            return;
        }
    }
}

/// What one receiver got: distinct messages and duplicates.
#[derive(Debug, Default)]
pub struct Tally {
    pub got: HashSet<(u32, u32)>,
    pub duplicates: u64,
}

impl Tally {
    /// Takes everything `c` has seen until it has `want` distinct messages, or nothing new
    /// came for `quiet`.
    pub async fn collect(&mut self, c: &mut LoadClient, want: usize, quiet: Duration) {
        while self.got.len() < want {
            match tokio::time::timeout(quiet, c.seen.recv()).await {
                Ok(Some(Seen::Msg(id, seq))) => {
                    if !self.got.insert((id, seq)) {
                        self.duplicates += 1;
                    }
                }
                Ok(Some(Seen::SubAck)) => {}
                Ok(Some(Seen::Ended(e))) => panic!("client ended: {e}"),
                Ok(None) | Err(_) => return,
            }
        }
    }
}
