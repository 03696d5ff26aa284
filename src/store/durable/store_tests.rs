//! The durable store end to end: changes appended, the store closed and opened, and what
//! comes back; messages stored once; waiting for durability; the lock; damage and repair.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::*;
use crate::codec::{LastWill, PayloadFormat, Properties, QoS, RetainHandling};
use crate::codec::{PropertyValues, SubscriptionOptions};
use crate::message::{Delivery, Message};
use crate::session::Grant;
use crate::store::{RecoveredDelivery, RecoveredSession};

/// A directory under the system temporary directory, removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("supermq-durable-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }
    pub(super) fn opts(&self, sync: SyncMode) -> DurableOptions {
        DurableOptions {
            dir: self.0.clone(),
            sync,
            window: None,
            max_memory: DEFAULT_MAX_MEMORY,
            max_disk: 0,
            min_free_disk: 0,
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn open(dir: &TempDir) -> (Arc<Durable>, Recovered) {
    Durable::open(&dir.opts(SyncMode::Always)).expect("open")
}

pub(super) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Waits until everything appended is synced.
pub(super) fn settle(d: &Durable) {
    if let Some(w) = d.durable() {
        block_on(w);
    }
}

pub(super) fn props() -> Properties {
    Properties::from(PropertyValues {
        payload_format_indicator: Some(PayloadFormat::Utf8),
        content_type: Some("text/plain".into()),
        response_topic: Some("re/ply".into()),
        correlation_data: Some(Bytes::from_static(b"\x00corr")),
        user_properties: vec![("k".into(), "v1".into()), ("k".into(), "v2".into())],
        ..PropertyValues::default()
    })
}

pub(super) fn msg(topic: &str, payload: &str, qos: QoS) -> Arc<Message> {
    let mut m = Message::new(topic, Bytes::from(payload.to_owned()), qos, false);
    m.properties = props();
    Arc::new(m)
}

pub(super) fn deliver(m: &Arc<Message>, qos: QoS, sub_ids: &[u32]) -> Delivery {
    Delivery {
        msg: m.clone(),
        qos,
        retain: !sub_ids.is_empty(),
        group: None,
        sub_ids: (!sub_ids.is_empty()).then(|| sub_ids.to_vec().into_boxed_slice()),
    }
}

fn will() -> LastWill {
    let mut p = props();
    p.values_mut().will_delay_interval = Some(30);
    p.values_mut().message_expiry_interval = Some(90);
    LastWill {
        topic: "will/a".into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::ExactlyOnce,
        retain: true,
        properties: p,
    }
}

fn v5_grant() -> Grant {
    Grant {
        options: SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::SendAtSubscribeIfNew,
        },
        id: NonZeroU32::new(268_435_455),
    }
}

/// A delivery as it comes back: topic, payload, delivery QoS, retain, sub ids.
fn shape(d: &RecoveredDelivery) -> (String, Bytes, QoS, bool, Vec<u32>, Properties) {
    let m = &d.message.message;
    let p = m.properties.clone();
    (
        m.topic.clone(),
        m.payload.clone(),
        d.qos,
        d.retain,
        d.sub_ids.clone(),
        p,
    )
}

pub(super) fn session<'a>(r: &'a Recovered, id: &str) -> &'a RecoveredSession {
    r.sessions
        .iter()
        .find(|s| s.client_id == id)
        .unwrap_or_else(|| panic!("session {id} recovered"))
}

#[test]
fn every_change_round_trips_through_close_and_open() {
    let dir = TempDir::new("roundtrip");
    let (m1, m2, m3, m4) = (
        msg("t/1", "one", QoS::AtLeastOnce),
        msg("t/2", "two", QoS::ExactlyOnce),
        msg("t/3", "three", QoS::AtMostOnce),
        msg("t/4", "four", QoS::AtLeastOnce),
    );
    let detached = UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789);
    {
        let (d, r) = open(&dir);
        assert!(r.sessions.is_empty() && r.retained.is_empty());
        d.append(
            "a",
            vec![
                Change::ExpirySet(Some(Duration::from_secs(3600))),
                Change::WillSet(Some(will())),
                Change::Subscribed {
                    filter: "t/#".into(),
                    grant: v5_grant(),
                },
                Change::Subscribed {
                    filter: "x/+".into(),
                    grant: Grant::qos(QoS::AtLeastOnce),
                },
                Change::Subscribed {
                    filter: "gone".into(),
                    grant: Grant::qos(QoS::AtMostOnce),
                },
                Change::Attached { username: None },
            ],
        );
        d.append(
            "a",
            vec![
                Change::Enqueued(deliver(&m1, QoS::AtLeastOnce, &[7])),
                Change::Enqueued(deliver(&m2, QoS::ExactlyOnce, &[])),
                Change::Enqueued(deliver(&m3, QoS::AtMostOnce, &[])),
                Change::Enqueued(deliver(&m4, QoS::AtLeastOnce, &[1, 2])),
                Change::Enqueued(deliver(&m1, QoS::AtLeastOnce, &[])),
                Change::Sent { pkid: 9 },
                Change::Sent { pkid: 3 },
                Change::Received { pkid: 3 },
                Change::Sent { pkid: 0 },
                Change::Qos2Arrived { pkid: 5 },
                Change::Qos2Arrived { pkid: 6 },
                Change::Released { pkid: 5 },
                Change::Unsubscribed {
                    filter: "gone".into(),
                },
                Change::Detached {
                    at: detached,
                    drop_qos0: true,
                },
            ],
        );
        // A session that ends leaves nothing; one whose queue drops and acks keeps the rest.
        d.append(
            "b",
            vec![
                Change::Subscribed {
                    filter: "b".into(),
                    grant: Grant::qos(QoS::AtLeastOnce),
                },
                Change::Enqueued(deliver(&m2, QoS::AtLeastOnce, &[])),
                Change::Qos2Arrived { pkid: 1 },
                Change::Sent { pkid: 4 },
                Change::Enqueued(deliver(&m3, QoS::AtLeastOnce, &[])),
            ],
        );
        d.append("b", vec![Change::Ended]);
        d.append(
            "c",
            vec![
                Change::Enqueued(deliver(&m4, QoS::AtLeastOnce, &[])),
                Change::Enqueued(deliver(&m2, QoS::AtLeastOnce, &[])),
                Change::Enqueued(deliver(&m1, QoS::AtLeastOnce, &[])),
                Change::DroppedOldest,
                Change::Sent { pkid: 1 },
                Change::Acked { pkid: 1 },
                Change::Attached { username: None },
            ],
        );
        let stamp = |ts: u64| Stamp {
            ts,
            origin: Arc::from("node-1"),
        };
        let mut r1 = (*msg("r/1", "kept", QoS::AtLeastOnce)).clone();
        r1.retain = true;
        d.set(&r1, &stamp(10));
        d.set(&msg("r/2", "cleared", QoS::AtMostOnce), &stamp(11));
        d.clear("r/2", &stamp(12));
        d.close();
    }
    let (d, r) = open(&dir);
    assert_eq!(r.sessions.len(), 2, "b ended: {:?}", r.sessions);

    let a = session(&r, "a");
    assert_eq!(a.expiry, Some(Duration::from_secs(3600)));
    assert_eq!(a.offline_since, Some(detached));
    assert_eq!(a.will, Some(will()));
    assert_eq!(
        a.subscriptions,
        vec![
            ("t/#".to_owned(), v5_grant()),
            ("x/+".to_owned(), Grant::qos(QoS::AtLeastOnce))
        ]
    );
    let queue: Vec<_> = a.queue.iter().map(shape).collect();
    let want = |m: &Arc<Message>, qos, retain, ids: &[u32]| {
        (
            m.topic.clone(),
            m.payload.clone(),
            qos,
            retain,
            ids.to_vec(),
            props(),
        )
    };
    assert_eq!(
        queue,
        vec![
            want(&m4, QoS::AtLeastOnce, true, &[1, 2]),
            want(&m1, QoS::AtLeastOnce, false, &[]),
        ]
    );
    assert_eq!(a.inflight.len(), 2);
    assert_eq!(a.inflight[0].pkid, 9);
    let first = a.inflight[0].delivery.as_ref().expect("PUBLISH sent");
    assert_eq!(shape(first), want(&m1, QoS::AtLeastOnce, true, &[7]));
    assert_eq!(a.inflight[1].pkid, 3);
    assert!(a.inflight[1].delivery.is_none(), "PUBREL sent: id only");
    assert_eq!(a.incoming_qos2, vec![6]);

    let c = session(&r, "c");
    // Attached when the store last wrote: offline since that write.
    let since = c.offline_since.expect("offline since the last write");
    assert!(SystemTime::now().duration_since(since).unwrap_or_default() < Duration::from_secs(60));
    assert!(c.inflight.is_empty());
    // Dropped the oldest (m4), sent and acked the next (m2): m1 is left.
    assert_eq!(c.queue.len(), 1);
    assert_eq!(c.queue[0].message.message.payload, "one");
    assert_eq!(c.expiry, None);
    assert!(c.will.is_none());

    // r/1, and r/2's clear as a tombstone (an empty message with the clear's stamp).
    assert_eq!(r.retained.len(), 2);
    let (rm, stamp) = &r.retained[0];
    assert_eq!(rm.message.topic, "r/1");
    let (tomb, at) = &r.retained[1];
    assert_eq!(tomb.message.topic, "r/2");
    assert!(tomb.message.payload.is_empty());
    assert_eq!(at.ts, 12);
    assert!(rm.message.retain);
    assert_eq!(rm.message.properties, props());
    assert_eq!((stamp.ts, &*stamp.origin), (10, "node-1"));

    // m1 (queued and in flight for a) and m4 are held; m2, m3 went with their last entry.
    assert_eq!(d.partition_len("messages"), 2);
    assert_eq!(d.message_count(), 2);
}

#[test]
fn a_message_for_100_sessions_is_stored_once_and_deleted_after_the_acks() {
    let dir = TempDir::new("once");
    let (d, _) = open(&dir);
    let m = msg("fan/out", &"x".repeat(1024), QoS::AtLeastOnce);
    for i in 0..100 {
        d.append(
            &format!("s{i}"),
            vec![Change::Enqueued(deliver(&m, QoS::AtLeastOnce, &[]))],
        );
    }
    settle(&d);
    assert_eq!(d.partition_len("messages"), 1);
    assert_eq!(d.partition_len("queue"), 100);
    for i in 0..100 {
        let id = format!("s{i}");
        d.append(&id, vec![Change::Sent { pkid: 1 }]);
        if i < 99 {
            d.append(&id, vec![Change::Acked { pkid: 1 }]);
        }
    }
    settle(&d);
    assert_eq!(d.partition_len("messages"), 1, "one session still holds it");
    assert_eq!(d.partition_len("inflight"), 1);
    d.append("s99", vec![Change::Acked { pkid: 1 }]);
    settle(&d);
    assert_eq!(d.partition_len("messages"), 0);
    assert_eq!(d.partition_len("queue") + d.partition_len("inflight"), 0);
    d.close();
    drop(d);
    let (d, r) = open(&dir);
    assert_eq!(r.sessions.len(), 100);
    assert_eq!(d.message_count(), 0);
}

#[test]
fn durable_waits_for_the_sync_and_is_none_once_synced() {
    let dir = TempDir::new("sync");
    let (d, _) = open(&dir);
    assert!(d.durable().is_none(), "nothing appended");
    let m = msg("t", &"y".repeat(1024), QoS::AtLeastOnce);
    let changes = (0..200)
        .map(|_| Change::Enqueued(deliver(&m, QoS::AtLeastOnce, &[])))
        .collect();
    d.append("a", changes);
    let target = d.appended.load(Ordering::Acquire);
    assert_eq!(target, 1);
    if let Some(w) = d.durable() {
        block_on(w);
    }
    // Resolved (or never pending): the writer has synced that job.
    assert!(*d.synced.borrow() >= target);
    assert!(d.durable().is_none());
    assert_eq!(d.partition_len("queue"), 200);

    let dir2 = TempDir::new("sync-periodic");
    let (p, _) = Durable::open(&dir2.opts(SyncMode::Periodic(Duration::from_millis(50))))
        .expect("open periodic");
    p.append("a", vec![Change::Attached { username: None }]);
    // Periodic: an acknowledgement waits for the batch to reach the OS (a process crash
    // then loses nothing acknowledged), not for the fsync.
    if let Some(w) = p.durable() {
        block_on(w);
    }
    assert!(p.durable().is_none(), "periodic: written, fsync or not");
}

#[test]
fn durable_is_pending_while_the_writer_has_not_synced() {
    use futures_util::FutureExt;
    let dir = TempDir::new("pending");
    let (d, _) = open(&dir);
    let release = d.hold_writer();
    d.append("a", vec![Change::Qos2Arrived { pkid: 1 }]);
    let mut wait = d.durable().expect("appended, not synced");
    assert!(
        (&mut wait).now_or_never().is_none(),
        "pending before the sync"
    );
    assert_eq!(d.partition_len("qos2"), 0, "not even written yet");
    drop(release);
    block_on(wait);
    assert_eq!(d.partition_len("qos2"), 1);
    assert!(d.durable().is_none());
}

#[test]
fn a_second_open_of_the_same_dir_is_refused() {
    let dir = TempDir::new("lock");
    let (d, _) = open(&dir);
    let err = Durable::open(&dir.opts(SyncMode::Always)).expect_err("locked");
    assert!(matches!(err, DurableError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another supermq"), "{err}");
    let err = check(&dir.0).expect_err("check refuses a store in use");
    assert!(matches!(err, DurableError::Locked { .. }));
    d.close();
    drop(d);
    let (_d, _) = open(&dir);
}
#[test]
fn concurrent_appends_are_group_committed_and_all_kept() {
    let dir = TempDir::new("concurrent");
    let (d, _) = open(&dir);
    let m = msg("t", &"z".repeat(1024), QoS::AtLeastOnce);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (d, m) = (&d, &m);
            s.spawn(move || {
                for i in 0..250 {
                    let id = format!("c{t}");
                    d.append(
                        &id,
                        vec![Change::Enqueued(deliver(m, QoS::AtLeastOnce, &[]))],
                    );
                    if i % 50 == 0 {
                        settle(d);
                    }
                }
            });
        }
    });
    settle(&d);
    assert_eq!(d.partition_len("queue"), 1000);
    assert_eq!(d.partition_len("messages"), 1, "one Arc, one record");
    d.close();
    drop(d);
    let (_d, r) = open(&dir);
    assert_eq!(r.sessions.len(), 4);
    assert!(r.sessions.iter().all(|s| s.queue.len() == 250));
}

#[test]
fn periodic_and_none_keep_everything_across_a_close() {
    for sync in [
        SyncMode::Periodic(Duration::from_millis(20)),
        SyncMode::None,
    ] {
        let dir = TempDir::new("modes");
        {
            let (d, _) = Durable::open(&dir.opts(sync)).expect("open");
            d.append("a", vec![Change::Qos2Arrived { pkid: 42 }]);
            if let Some(w) = d.durable() {
                block_on(w);
            }
            assert!(d.durable().is_none());
            std::thread::sleep(Duration::from_millis(50));
            d.append("a", vec![Change::Qos2Arrived { pkid: 43 }]);
        } // dropped: closes
        let (_d, r) = open(&dir);
        assert_eq!(session(&r, "a").incoming_qos2, vec![42, 43], "{sync:?}");
    }
}
#[test]
fn expired_queued_messages_are_dropped_on_open() {
    let dir = TempDir::new("expiry");
    {
        let (d, _) = open(&dir);
        let mut short = (*msg("t", "short", QoS::AtLeastOnce)).clone();
        short.expires = Some(std::time::Instant::now() + Duration::from_millis(10));
        let short = Arc::new(short);
        let long = msg("t", "long", QoS::AtLeastOnce);
        d.append(
            "a",
            vec![
                Change::Enqueued(deliver(&short, QoS::AtLeastOnce, &[])),
                Change::Enqueued(deliver(&long, QoS::AtLeastOnce, &[])),
            ],
        );
        d.close();
    }
    std::thread::sleep(Duration::from_millis(30));
    {
        let (d, r) = open(&dir);
        let a = session(&r, "a");
        assert_eq!(a.queue.len(), 1);
        assert_eq!(a.queue[0].message.message.payload, "long");
        assert_eq!(d.partition_len("messages"), 1, "the expired one was purged");
        assert_eq!(d.partition_len("queue"), 1);
    }
}

/// The payloads of a recovered session's queue and in-flight window.
fn payloads(s: &RecoveredSession) -> (Vec<(u16, Bytes)>, Vec<Bytes>) {
    let inflight = s
        .inflight
        .iter()
        .map(|f| {
            let p = f
                .delivery
                .as_ref()
                .map(|d| d.message.message.payload.clone());
            (f.pkid, p.unwrap_or_default())
        })
        .collect();
    let queue = s
        .queue
        .iter()
        .map(|d| d.message.message.payload.clone())
        .collect();
    (inflight, queue)
}

#[test]
fn the_backlog_is_sent_after_the_queue_across_restarts() {
    let dir = TempDir::new("backlog");
    let m = |p: &str| deliver(&msg("t", p, QoS::AtLeastOnce), QoS::AtLeastOnce, &[]);
    {
        let (d, _) = open(&dir);
        d.append(
            "a",
            vec![
                Change::Enqueued(m("L0")),
                Change::Backlogged(m("R1")),
                Change::Backlogged(m("R2")),
                Change::Enqueued(m("L1")),
                Change::Sent { pkid: 1 }, // L0
                Change::Sent { pkid: 2 }, // L1: the queue goes first
                Change::Acked { pkid: 2 },
                Change::Sent { pkid: 3 }, // R1
                Change::DroppedOldest,    // the queue is empty: the backlog is not dropped
            ],
        );
        d.append(
            "b",
            vec![Change::Backlogged(m("R1")), Change::Enqueued(m("L1"))],
        );
        d.close();
    }
    {
        let (d, r) = open(&dir);
        let (inflight, queue) = payloads(session(&r, "a"));
        assert_eq!(inflight, vec![(1, "L0".into()), (3, "R1".into())]);
        assert_eq!(queue, vec![Bytes::from("R2")]);
        let (_, queue) = payloads(session(&r, "b"));
        assert_eq!(queue, vec![Bytes::from("L1"), Bytes::from("R1")]);
        // From here b has one queue, L1 then R1, and what is queued later goes behind.
        d.append(
            "b",
            vec![Change::Enqueued(m("L2")), Change::Sent { pkid: 1 }],
        );
        d.close();
    }
    let (_d, r) = open(&dir);
    let (inflight, queue) = payloads(session(&r, "b"));
    assert_eq!(inflight, vec![(1, "L1".into())]);
    assert_eq!(queue, vec![Bytes::from("R1"), Bytes::from("L2")]);
}

#[test]
fn qos0_messages_dropped_at_detach_leave_the_stored_queue_too() {
    let dir = TempDir::new("detach-qos0");
    {
        let (d, _) = open(&dir);
        let q0 = msg("t", "zero", QoS::AtMostOnce);
        let q1 = msg("t", "one", QoS::AtLeastOnce);
        d.append(
            "a",
            vec![
                Change::Attached { username: None },
                Change::Enqueued(deliver(&q0, QoS::AtMostOnce, &[])),
                Change::Enqueued(deliver(&q1, QoS::AtLeastOnce, &[])),
                Change::Detached {
                    at: SystemTime::now(),
                    drop_qos0: true,
                },
                Change::Attached { username: None },
                // The session's front is now the QoS 1 message.
                Change::Sent { pkid: 1 },
            ],
        );
        d.close();
    }
    let (_, r) = open(&dir);
    let (inflight, queue) = payloads(session(&r, "a"));
    assert_eq!(inflight, [(1, Bytes::from_static(b"one"))]);
    assert!(queue.is_empty(), "{queue:?}");
}
