//! Flow control as one session queue applies it: blocking, stalls, the retained backlog.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::codec::ProtocolLevel::V311;
use crate::message::Message;
use crate::session::{ConnLink, Egress, Outbox};

const STALL: Duration = Duration::from_secs(1);

fn d(topic: &str) -> Delivery {
    Delivery {
        msg: Arc::new(Message::new(
            topic,
            Bytes::from_static(b"x"),
            QoS::AtLeastOnce,
            false,
        )),
        qos: QoS::AtMostOnce,
        retain: false,
        group: None,
        sub_ids: None,
    }
}

fn session(max_queued: usize) -> SessionState {
    let mut s = SessionState::new(
        Some(Duration::ZERO),
        SessionLimits {
            max_inflight: 10,
            max_queued,
            max_queued_bytes: 1 << 20,
            policy: QueueFullPolicy::DropNew,
            queue_qos0_offline: false,
            slow_consumer_timeout: None,
            stall_timeout: STALL,
        },
    );
    s.attach(ConnLink::new(1));
    s
}

fn topics(out: &mut Outbox) -> Vec<u8> {
    // Each QoS 0 PUBLISH here is 6 bytes: 0x30 0x04 0x00 0x01 <topic> 'x'.
    out.buf().chunks(6).map(|p| p[4]).collect()
}

#[test]
fn a_reading_consumer_blocks_publishers_at_its_bound_and_relieves_them() {
    let mut s = session(100);
    let mut out = Outbox::default();
    let t0 = Instant::now();
    assert!(s.offer(d("t"), t0, true).is_ok());
    s.fill(&mut out, usize::MAX, &mut Egress::new(V311, false), t0);
    for _ in 0..50 {
        assert!(s.offer(d("t"), t0, true).is_ok());
    }
    assert!(s.pressured_at(t0), "half the bound reached while it drains");
    for _ in 0..50 {
        assert!(matches!(
            s.offer(d("t"), t0, true),
            Ok(EnqueueOutcome::Queued { .. })
        ));
    }
    assert!(s.offer(d("t"), t0, true).is_err(), "blocked");
    assert_eq!(
        s.enqueue(d("t"), t0),
        EnqueueOutcome::DroppedFull { qos0: true },
        "a producer that cannot wait meets the bound"
    );
    out.buf().clear();
    assert!(
        !s.fill(&mut out, 74 * 6, &mut Egress::new(V311, false), t0)
            .relieved
    );
    out.buf().clear();
    assert!(
        s.fill(&mut out, 6, &mut Egress::new(V311, false), t0)
            .relieved,
        "a quarter left"
    );
    assert!(!s.pressured_at(t0));
}

#[test]
fn a_stalled_consumer_stops_blocking_and_its_bound_applies() {
    let mut s = session(10);
    let t0 = Instant::now();
    for _ in 0..10 {
        assert!(s.offer(d("t"), t0, true).is_ok());
    }
    assert!(s.offer(d("t"), t0, true).is_err(), "blocked");
    let later = t0 + STALL * 2;
    assert!(!s.pressured_at(later));
    assert!(matches!(
        s.offer(d("t"), later, true),
        Ok(EnqueueOutcome::DroppedFull { qos0: true })
    ));
}

#[test]
fn retained_backlog_streams_after_earlier_messages_and_before_later_ones() {
    let mut s = session(4);
    let mut out = Outbox::default();
    let t0 = Instant::now();
    assert!(s.offer(d("a"), t0, true).is_ok());
    assert!(
        !s.queue_retained((0..10).map(|_| d("r")), t0),
        "not idle: no wake"
    );
    assert!(
        !s.has_room(),
        "a group passes it over while its backlog waits"
    );
    // A live message for it waits behind the backlog (its producer retries).
    assert!(s.offer(d("b"), t0, true).is_err(), "blocked");
    let r = s.fill(&mut out, 6 * 5, &mut Egress::new(V311, false), t0);
    assert_eq!(r.sent, 5);
    assert!(r.more);
    assert_eq!(topics(&mut out), b"arrrr");
    out.buf().clear();
    let r = s.fill(&mut out, usize::MAX, &mut Egress::new(V311, false), t0);
    assert_eq!(
        r.sent, 6,
        "every retained message, past the queue bound of 4"
    );
    assert!(r.relieved);
    assert!(s.has_room());
    assert!(matches!(
        s.offer(d("b"), t0, true),
        Ok(EnqueueOutcome::Queued { wake: true })
    ));
}
