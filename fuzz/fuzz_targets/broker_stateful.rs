//! `broker_stateful`: a real broker, started once in this process, driven by up to four
//! fuzzed clients per input.
//!
//! The broker is `supermq::Broker::start` on 127.0.0.1:0 with small limits. Each input is a
//! header byte and a list of operations; an operation names a client (0–3) and either builds
//! a well-formed packet from input-chosen fields (CONNECT with will/user/password and either
//! protocol, SUBSCRIBE, PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP, UNSUBSCRIBE, PINGREQ,
//! DISCONNECT, refused CONNECT variants such as level 6; CONNECT at 3.1, 3.1.1 or MQTT 5
//! with properties, and MQTT 5 properties and subscription options on the packets after
//! it), appends raw bytes, writes what is pending, waits for the broker to catch up, or
//! closes the connection. A client talks to the
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
//!   gets exactly CONNACK 0x01 [MQTT-3.1.2-2]; other malformed
//!   first packets get nothing;
//! - each SUBACK has one code per filter of its SUBSCRIBE, none above the requested QoS;
//! - delivery: a QoS 1 PUBLISH the broker acknowledged whose topic matches the watcher's
//!   filter reaches the watcher, unless the broker's drop counters moved;
//! - the broker stays alive: a fresh bystander connects over TCP and gets a CONNACK;
//! - memory is bounded: the process RSS stays under 1 GiB.
//!
//! This file holds the harness and the driver; the input cursor is in `input`, a client
//! connection in `conn`, and what the broker must have done in `model` (all under
//! `broker_stateful/`).
#![no_main]

#[path = "broker_stateful/conn.rs"]
mod conn;
#[path = "broker_stateful/input.rs"]
mod input;
#[path = "broker_stateful/model.rs"]
mod model;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use supermq::codec::{
    self, Ack, Connect, DecodeLimits, Disconnect, LastWill, Packet, Properties, PropertyValues,
    ProtocolLevel, Publish, QoS, ReasonCode, RetainHandling, Subscribe, SubscribeFilter,
    Unsubscribe,
};
use supermq::{Broker, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use conn::{Conn, RxState};
use input::Input;
use model::{acknowledged, check_conversation};

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
    // In memory: the fuzzer restarts nothing, and a store would only slow it.
    c.persistence.enabled = false;
    c.listeners[0].bind = "127.0.0.1:0".parse().expect("address");
    // The fuzzer drives MQTT only; its HTTP server would take the default port 18083,
    // which another broker on the machine may hold.
    c.http.enabled = false;
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

fn drops(h: &Harness) -> u64 {
    let m = h.broker.metrics();
    [
        &m.dropped_queue_full,
        &m.dropped_qos0_queue_full,
        &m.slow_consumer_disconnects,
        // An MQTT 5 message published with a 1 s expiry may expire before it is sent.
        &m.dropped_expired,
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
                // 3.1, 3.1.1, or MQTT 5 with input-chosen CONNECT and will properties.
                let (level, properties, will) = if flags & 0x80 != 0 {
                    (ProtocolLevel::V31, Properties::new(), will)
                } else {
                    let v = input.byte();
                    if v & 1 == 0 {
                        (ProtocolLevel::V311, Properties::new(), will)
                    } else {
                        let will = will.map(|mut w| {
                            let wp = w.properties.values_mut();
                            wp.will_delay_interval = (v & 0x40 != 0).then_some(1);
                            wp.message_expiry_interval = (v & 0x80 != 0).then_some(1);
                            w
                        });
                        let props = PropertyValues {
                            session_expiry_interval: Some(
                                [0, 1, 60, u32::MAX][usize::from(v >> 1 & 3)],
                            ),
                            topic_alias_maximum: (v & 0x08 != 0).then_some(2),
                            receive_maximum: (v & 0x10 != 0).then_some(2),
                            user_properties: if v & 0x20 != 0 {
                                vec![("k".into(), "v".into())]
                            } else {
                                Vec::new()
                            },
                            ..PropertyValues::default()
                        };
                        (ProtocolLevel::V5, props.into(), will)
                    }
                };
                c.push(&Packet::from(Connect {
                    level,
                    clean_session: flags & 1 != 0,
                    keep_alive: u16::from(input.byte()),
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }));
            }
            1 => {
                let n = 1 + input.byte() % 3;
                // MQTT 5 subscription options (left out of the wire below level 5).
                let o = input.byte();
                let filters = (0..n)
                    .map(|_| {
                        let mut f = SubscribeFilter::new(input.pick(&FILTERS), input.qos());
                        f.options.no_local = o & 1 != 0;
                        f.options.retain_as_published = o & 2 != 0;
                        f.options.retain_handling = match o >> 2 & 3 {
                            0 => RetainHandling::SendAtSubscribe,
                            1 => RetainHandling::SendAtSubscribeIfNew,
                            _ => RetainHandling::DoNotSend,
                        };
                        f
                    })
                    .collect();
                let pkid = c.pkid();
                let mut s = Subscribe::new(pkid, filters);
                if o & 0x10 != 0 {
                    s.properties.values_mut().subscription_identifiers = vec![u32::from(o)];
                }
                c.push(&Packet::Subscribe(s));
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
                // MQTT 5 properties (left out of the wire below level 5): expiry, a user
                // property, a topic alias (1, set up with the topic).
                let props = PropertyValues {
                    message_expiry_interval: (flags & 0x20 != 0).then_some(1),
                    user_properties: if flags & 0x40 != 0 {
                        vec![("k".into(), "v".into())]
                    } else {
                        Vec::new()
                    },
                    topic_alias: (flags & 0x80 != 0).then_some(1),
                    ..PropertyValues::default()
                };
                c.push(&Packet::Publish(Publish {
                    dup: qos != QoS::AtMostOnce && flags & 8 != 0,
                    qos,
                    retain: flags & 4 != 0,
                    topic,
                    pkid,
                    payload,
                    properties: props.into(),
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
                c.push_raw(input.bytes(n));
            }
            9 => c.sync(&limits).await,
            11 => {
                // CONNECTs that must be refused, with CONNACK 0x01 or by closing.
                let (name, level): (&[u8], u8) = match input.byte() % 4 {
                    0 => (b"MQTT", 6),
                    1 => (b"MQTT", 3),
                    2 => (b"MQIsdp", 4),
                    _ => (b"MQTX", 4),
                };
                let mut body = vec![0, name.len() as u8];
                body.extend_from_slice(name);
                body.extend_from_slice(&[level, 0x02, 0, 60]);
                body.extend_from_slice(&[0, 2, b'v', b'5']);
                let mut packet = vec![0x10, body.len() as u8];
                packet.extend_from_slice(&body);
                c.push_raw(&packet);
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
