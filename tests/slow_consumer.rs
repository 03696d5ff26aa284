//! Subscribers that cannot keep up: bounded queues, drop policies and slow-consumer
//! disconnection, against the real broker over TCP.
//!
//! The guarantees under test: a subscriber that stops reading never blocks a publisher or
//! any other subscriber, its queue never grows past `session.max_queued_messages`, and once
//! its queue has been full for `session.slow_consumer_timeout` it is disconnected. QoS 0 may
//! be dropped under pressure (§4.3.1); messages that are delivered keep their order
//! [MQTT-4.6.0-6].

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::*;
use supermq::codec::{
    self, Ack, DecodeLimits, Packet, Properties, ProtocolLevel, QoS, Subscribe, SubscribeFilter,
};
use supermq::config::QueueFullPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connects `id`, subscribes to `filter` and returns the socket, which the caller then never
/// reads. Its receive buffer is made small so that the broker's side backs up after a few
/// hundred kilobytes rather than after whatever the kernel would grow it to.
async fn stuck_subscriber(b: &TestBroker, id: &str, filter: &str, qos: QoS) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = tokio::time::timeout(WAIT, sock.connect(b.addr))
        .await
        .expect("connect in time")
        .expect("tcp connect");
    let out = encode_all(&[
        Packet::from(connect_packet(id, true)),
        Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: vec![SubscribeFilter::new(filter, qos)],
            properties: Properties::new(),
        }),
    ]);
    stream.write_all(&out).await.expect("write");
    // Read exactly up to the SUBACK, then stop reading for good.
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, async {
        while got.len() < 2 {
            while let Some(p) =
                codec::decode(&mut buf, &DecodeLimits::default(), ProtocolLevel::V311)
                    .expect("decode")
            {
                got.push(p);
            }
            if got.len() < 2 {
                assert_ne!(stream.read_buf(&mut buf).await.expect("read"), 0, "closed");
            }
        }
    })
    .await
    .expect("CONNACK and SUBACK in time");
    assert!(matches!(got[0], Packet::ConnAck(_)), "{got:?}");
    assert!(matches!(got[1], Packet::SubAck(_)), "{got:?}");
    stream
}

#[tokio::test]
async fn stuck_subscriber_never_blocks_the_publisher_and_its_queue_stays_bounded() {
    const MAX_QUEUED: usize = 500;
    const MESSAGES: usize = 20_000;
    const BATCH: usize = 100;
    let b = start_with(|c| {
        c.session.max_queued_messages = MAX_QUEUED;
        // Only the bound is under test here, not disconnection.
        c.session.slow_consumer_timeout = Duration::ZERO;
    })
    .await;
    let _stuck = stuck_subscriber(&b, "stuck", "flood", QoS::AtMostOnce).await;
    let session = b.broker.context().sessions.get("stuck").expect("session");
    let mut publisher = Raw::connect(b.addr, "publisher").await;

    // BATCH QoS 0 PUBLISH packets of 1 KB, back to back.
    let batch = encode_all(&vec![
        publish_packet(
            "flood",
            QoS::AtMostOnce,
            0,
            &[b'x'; 1024]
        );
        BATCH
    ]);
    let mut max_seen = 0;
    for i in 0..MESSAGES / BATCH {
        // The broker must keep reading the publisher however far behind the subscriber is:
        // a write that stalls for WAIT means the publisher was blocked.
        tokio::time::timeout(WAIT, publisher.send_raw(&batch))
            .await
            .unwrap_or_else(|_| panic!("publisher blocked at batch {i}"));
        max_seen = max_seen.max(session.lock().queued());
    }
    // PINGRESP comes after every PUBLISH before it was handled, so all 20,000 were routed.
    tokio::time::timeout(WAIT, publisher.ping())
        .await
        .expect("ping round trip after the flood");
    max_seen = max_seen.max(session.lock().queued());

    assert_eq!(metric(&b, |m| &m.publish_received), MESSAGES as u64);
    assert!(
        metric(&b, |m| &m.dropped_qos0_queue_full) > 0,
        "20 MB cannot fit in a stuck socket plus {MAX_QUEUED} queued messages"
    );
    assert!(
        max_seen <= MAX_QUEUED,
        "queue reached {max_seen} > max_queued_messages {MAX_QUEUED}"
    );
    // The stuck client is still connected: slow-consumer disconnection is off.
    assert!(session.lock().link().is_some());
    assert_eq!(metric(&b, |m| &m.slow_consumer_disconnects), 0);
    assert_eq!(metric(&b, |m| &m.clients_connected_current), 2);
}

#[tokio::test]
async fn slow_consumer_is_disconnected_while_a_good_subscriber_gets_everything() {
    const WINDOW: usize = 50;
    let b = start_with(|c| {
        c.session.slow_consumer_timeout = Duration::from_millis(200);
        c.session.max_queued_messages = 200;
    })
    .await;
    let mut stuck = stuck_subscriber(&b, "stuck", "feed", QoS::AtMostOnce).await;
    let mut good = Raw::connect(b.addr, "good").await;
    assert_eq!(good.subscribe("feed", QoS::AtLeastOnce).await, 1);
    let mut publisher = Raw::connect(b.addr, "publisher").await;

    let filler = vec![b'f'; 1024];
    let mut next = 0u64;
    let deadline = tokio::time::Instant::now() + 4 * WAIT;
    // Publish in windows until the broker gives up on the stuck subscriber. Each window is
    // acknowledged and fully received by the good subscriber before the next, so the good
    // subscriber's queue never fills and only the stuck one can be a slow consumer.
    while metric(&b, |m| &m.slow_consumer_disconnects) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck subscriber not disconnected after {next} messages"
        );
        let mut window = Vec::with_capacity(WINDOW);
        let mut ids = Vec::with_capacity(WINDOW);
        for k in 0..WINDOW as u64 {
            let pkid = publisher.pkid();
            ids.push(pkid);
            let mut payload = (next + k).to_be_bytes().to_vec();
            payload.extend_from_slice(&filler);
            window.push(publish_packet("feed", QoS::AtLeastOnce, pkid, &payload));
        }
        publisher.send_raw(&encode_all(&window)).await;
        for id in ids {
            publisher.expect(Packet::PubAck(Ack::new(id))).await;
        }
        for _ in 0..WINDOW {
            let p = good.recv_publish().await;
            assert_eq!(p.qos, QoS::AtLeastOnce);
            let seq = u64::from_be_bytes(p.payload[..8].try_into().expect("seq"));
            // Every message, once, in publish order [MQTT-4.6.0-6].
            assert_eq!(seq, next, "good subscriber lost or reordered a message");
            next += 1;
        }
    }
    assert!(
        closed_within(&mut stuck, WAIT).await,
        "broker closed the slow consumer's connection"
    );
    assert_eq!(metric(&b, |m| &m.slow_consumer_disconnects), 1);
    assert!(metric(&b, |m| &m.dropped_qos0_queue_full) > 0);

    // The good subscriber is unaffected after the disconnection, too.
    barrier(&mut publisher, "feed").await;
    assert_eq!(until_barrier(&mut good, "feed").await, vec![]);
    assert_eq!(metric(&b, |m| &m.clients_connected_current), 2);
    assert_eq!(
        metric(&b, |m| &m.dropped_queue_full),
        0,
        "no QoS 1 was lost"
    );
}

#[tokio::test]
async fn drop_oldest_keeps_the_newest_messages_for_an_offline_session() {
    const MAX_QUEUED: usize = 5;
    const SENT: usize = 20;
    let b = start_with(|c| {
        c.session.max_queued_messages = MAX_QUEUED;
        c.session.queue_full_policy = QueueFullPolicy::DropOldest;
    })
    .await;
    let (mut s, _) = Raw::connect_with(b.addr, connect_packet("offline", false)).await;
    s.subscribe("q", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let session = b.broker.context().sessions.get("offline").expect("session");
    wait_until("session offline", || session.lock().link().is_none()).await;

    let mut p = Raw::connect(b.addr, "p").await;
    for i in 0..SENT {
        // Acknowledged once routed, so the queue has seen every message after the loop.
        p.publish("q", i.to_string().as_bytes(), QoS::AtLeastOnce, false)
            .await;
    }
    assert_eq!(session.lock().queued(), MAX_QUEUED);
    assert_eq!(
        metric(&b, |m| &m.dropped_queue_full),
        (SENT - MAX_QUEUED) as u64
    );

    let (mut s, present) = Raw::connect_with(b.addr, connect_packet("offline", false)).await;
    assert!(present, "the session was kept [MQTT-3.2.2-2]");
    let mut got = Vec::new();
    for _ in 0..MAX_QUEUED {
        let m = s.recv_publish().await;
        assert_eq!(m.qos, QoS::AtLeastOnce);
        got.push(String::from_utf8(m.payload.to_vec()).expect("utf8"));
    }
    let want: Vec<String> = (SENT - MAX_QUEUED..SENT).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "the newest messages, in order [MQTT-4.6.0-6]");
    // Nothing else was queued behind them.
    barrier(&mut p, "q").await;
    assert_eq!(until_barrier(&mut s, "q").await, vec![]);
}
