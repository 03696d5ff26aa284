//! Session state machine tests: queueing, windows, pacing and redelivery.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::codec::{decode, Ack, DecodeLimits, Packet, ProtocolLevel, Publish};
use crate::message::Message;
use crate::session::{ConnLink, Egress, Outbox};

const V311: ProtocolLevel = ProtocolLevel::V311;

fn limits(max_inflight: u16, max_queued: usize, policy: QueueFullPolicy) -> SessionLimits {
    SessionLimits {
        max_inflight,
        max_queued,
        max_queued_bytes: 1 << 20,
        policy,
        queue_qos0_offline: false,
        slow_consumer_timeout: Some(Duration::from_secs(5)),
        stall_timeout: Duration::from_secs(1),
    }
}

fn delivery(n: u8, qos: QoS) -> Delivery {
    Delivery {
        msg: Arc::new(Message::new("t", Bytes::from(vec![n]), qos, false)),
        qos,
        retain: false,
        group: None,
        sub_ids: None,
    }
}

fn publishes(buf: &mut BytesMut) -> Vec<Publish> {
    let mut v = Vec::new();
    while let Some(p) = decode(buf, &DecodeLimits::default(), V311).expect("valid") {
        if let Packet::Publish(p) = p {
            v.push(p);
        }
    }
    v
}

fn online(limits: SessionLimits) -> SessionState {
    let mut s = SessionState::new(None, limits);
    s.attach(ConnLink::new(1));
    s
}

#[test]
fn window_limits_inflight_and_acks_open_it() {
    let now = Instant::now();
    let mut s = online(limits(2, 100, QueueFullPolicy::DropNew));
    for n in 0..4 {
        s.enqueue(delivery(n, QoS::AtLeastOnce), now);
    }
    let mut out = Outbox::default();
    assert_eq!(
        s.fill(
            &mut out,
            1 << 16,
            &mut Egress::new(V311, false),
            Instant::now()
        ),
        FillResult {
            sent: 2,
            more: false,
            relieved: false,
            ..FillResult::default()
        }
    );
    let p = publishes(out.buf());
    assert_eq!(p.iter().map(|p| p.pkid).collect::<Vec<_>>(), vec![1, 2]);
    assert!(s.on_puback(1));
    assert!(
        !s.on_puback(1),
        "a second PUBACK for the same id completes nothing"
    );
    assert_eq!(
        s.fill(
            &mut out,
            1 << 16,
            &mut Egress::new(V311, false),
            Instant::now()
        )
        .sent,
        1
    );
    assert_eq!(publishes(out.buf())[0].payload[..], [2]);
}

#[test]
fn qos2_outbound_flow_and_resend_after_reconnect() {
    let now = Instant::now();
    let mut s = online(limits(10, 100, QueueFullPolicy::DropNew));
    s.enqueue(delivery(1, QoS::ExactlyOnce), now);
    s.enqueue(delivery(2, QoS::ExactlyOnce), now);
    let mut out = Outbox::default();
    s.fill(
        &mut out,
        1 << 16,
        &mut Egress::new(V311, false),
        Instant::now(),
    );
    out.buf().clear();
    assert!(s.on_pubrec(1, false));
    assert!(s.detach(1, now));
    s.attach(ConnLink::new(2));
    s.resend_inflight(&mut out, &mut Egress::new(V311, false), Instant::now());
    let lim = DecodeLimits::default();
    assert_eq!(
        decode(out.buf(), &lim, V311).expect("ok"),
        Some(Packet::PubRel(Ack::new(1)))
    );
    match decode(out.buf(), &lim, V311).expect("ok") {
        Some(Packet::Publish(p)) => assert!(p.dup && p.pkid == 2),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
    assert!(s.on_pubcomp(1));
    assert!(!s.on_pubcomp(1));
}

#[test]
fn bounded_queue_policies() {
    let now = Instant::now();
    let mut s = online(limits(10, 2, QueueFullPolicy::DropNew));
    assert_eq!(
        s.enqueue(delivery(1, QoS::AtLeastOnce), now),
        EnqueueOutcome::Queued { wake: true }
    );
    assert_eq!(
        s.enqueue(delivery(2, QoS::AtLeastOnce), now),
        EnqueueOutcome::Queued { wake: false }
    );
    assert_eq!(
        s.enqueue(delivery(3, QoS::AtLeastOnce), now),
        EnqueueOutcome::DroppedFull { qos0: false }
    );
    assert_eq!(
        s.enqueue(delivery(3, QoS::AtMostOnce), now),
        EnqueueOutcome::DroppedFull { qos0: true }
    );
    let later = now + Duration::from_secs(6);
    assert_eq!(
        s.enqueue(delivery(4, QoS::AtLeastOnce), later),
        EnqueueOutcome::SlowConsumer { qos0: false }
    );

    let mut s = online(limits(10, 2, QueueFullPolicy::DropOldest));
    for n in 1..=3 {
        s.enqueue(delivery(n, QoS::AtLeastOnce), now);
    }
    let mut out = Outbox::default();
    s.fill(
        &mut out,
        1 << 16,
        &mut Egress::new(V311, false),
        Instant::now(),
    );
    let got: Vec<u8> = publishes(out.buf()).iter().map(|p| p.payload[0]).collect();
    assert_eq!(got, vec![2, 3]);
}

#[test]
fn offline_sessions_keep_qos1_and_drop_qos0() {
    let now = Instant::now();
    let mut s = online(limits(10, 10, QueueFullPolicy::DropNew));
    s.enqueue(delivery(1, QoS::AtMostOnce), now);
    s.detach(1, now);
    assert_eq!(s.queued(), 0, "queued QoS 0 is discarded on disconnect");
    assert_eq!(
        s.enqueue(delivery(2, QoS::AtMostOnce), now),
        EnqueueOutcome::DroppedOffline
    );
    assert_eq!(
        s.enqueue(delivery(3, QoS::AtLeastOnce), now),
        EnqueueOutcome::Queued { wake: false }
    );
    assert_eq!(s.queued(), 1);
}

#[test]
fn inbound_qos2_is_delivered_once_per_id() {
    let mut s = online(limits(10, 10, QueueFullPolicy::DropNew));
    assert!(s.receive_qos2(7));
    assert!(!s.receive_qos2(7));
    s.release_qos2(7);
    assert!(s.receive_qos2(7));
}

#[test]
fn packet_ids_skip_zero_and_ids_in_use() {
    let now = Instant::now();
    let mut s = online(limits(3, 100, QueueFullPolicy::DropNew));
    s.next_pkid = u16::MAX - 1;
    for n in 0..3 {
        s.enqueue(delivery(n, QoS::AtLeastOnce), now);
    }
    let mut out = Outbox::default();
    s.fill(
        &mut out,
        1 << 16,
        &mut Egress::new(V311, false),
        Instant::now(),
    );
    let ids: Vec<u16> = publishes(out.buf()).iter().map(|p| p.pkid).collect();
    assert_eq!(ids, vec![u16::MAX, 1, 2]);
}
