//! Flow control: a publisher faster than a live subscriber is paced to the subscriber's speed
//! instead of having messages dropped at the subscriber's queue bound; a stalled subscriber
//! does not pace anyone (its bound applies; see slow_consumer.rs).

mod common;

use bytes::BytesMut;
use common::*;
use supermq::codec::{self, Disconnect, Packet, ProtocolLevel, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_publisher_is_paced_to_a_live_subscriber_without_loss() {
    const N: u32 = 5_000;
    // A queue far smaller than the burst: without pacing most of it would be dropped.
    const MAX_QUEUED: usize = 50;
    // Where the subscriber asks for pacing: half the bound.
    const HIGH_WATER: usize = MAX_QUEUED / 2;
    let b = start_with(|c| {
        c.session.max_queued_messages = MAX_QUEUED;
        c.session.max_inflight = 5;
    })
    .await;
    let mut sub = Raw::connect(b.addr, "paced-sub").await;
    sub.subscribe("paced", QoS::AtLeastOnce).await;
    let session = b
        .broker
        .context()
        .sessions
        .get("paced-sub")
        .expect("session");

    // The publisher writes every PUBLISH back to back without waiting for PUBACKs, from its
    // own task, and then counts the PUBACKs.
    let addr = b.addr;
    let publisher = tokio::spawn(async move {
        let mut p = Raw::connect(addr, "paced-pub").await;
        let (mut rd, mut wr) = p.stream.split();
        let writer = async {
            let payload = vec![7u8; 512];
            for chunk in (1..=N).collect::<Vec<_>>().chunks(100) {
                let mut out = BytesMut::new();
                for &i in chunk {
                    let mut body = payload.clone();
                    body[..4].copy_from_slice(&i.to_be_bytes());
                    let pkid = (i % 60_000 + 1) as u16;
                    let p = publish_packet("paced", QoS::AtLeastOnce, pkid, &body);
                    codec::encode(&p, ProtocolLevel::V311, &mut out);
                }
                wr.write_all(&out).await.expect("write");
            }
        };
        let reader = async {
            let mut buf = BytesMut::new();
            let mut acks = 0;
            while acks < N {
                while let Some(p) =
                    codec::decode(&mut buf, &Default::default(), ProtocolLevel::V311)
                        .expect("valid")
                {
                    assert!(matches!(p, Packet::PubAck(_)));
                    acks += 1;
                }
                if acks < N {
                    assert!(rd.read_buf(&mut buf).await.expect("read") > 0, "closed");
                }
            }
        };
        tokio::time::timeout(WAIT * 6, async { tokio::join!(writer, reader) })
            .await
            .expect("all acknowledged");
    });

    // The subscriber's queue, sampled after every delivery: its peak shows where the
    // publisher was held back.
    let mut peak = 0;
    for i in 1..=N {
        let p = sub.recv_publish().await;
        assert_eq!(
            u32::from_be_bytes(p.payload[..4].try_into().expect("4")),
            i,
            "in order, none lost"
        );
        peak = peak.max(session.lock().queued());
    }
    publisher.await.expect("publisher");
    assert_eq!(
        metric(&b, |m| &m.dropped_queue_full),
        0,
        "paced, not dropped"
    );
    // Exactly once: after the N in order, nothing more was queued for the subscriber.
    let mut other = Raw::connect(b.addr, "paced-barrier").await;
    barrier(&mut other, "paced").await;
    assert_eq!(until_barrier(&mut sub, "paced").await, vec![]);
    // Paced, not merely bounded: the burst did fill the queue to the high watermark (the
    // subscriber could not keep up by itself), and there the publisher was held back, so
    // the queue never reached its bound (where messages would be refused).
    assert!(
        (HIGH_WATER..MAX_QUEUED).contains(&peak),
        "peak queue {peak}: pacing holds it at {HIGH_WATER}, below the bound {MAX_QUEUED}"
    );
}

/// Found by the `broker_stateful` fuzz target: a PUBLISH is acknowledged when it is accepted,
/// and the rest of its batch is set aside (`Deferred::Accepted`) once a subscriber asks for
/// pacing; a DISCONNECT (or EOF) in the same read then closed the connection with those
/// acknowledged messages never routed. An acknowledged QoS 1 message belongs to the broker
/// (§4.3.2) and must reach every matching subscriber.
#[tokio::test]
async fn acknowledged_messages_set_aside_by_pacing_survive_the_publishers_disconnect() {
    const N: u16 = 30;
    // High watermark 5: the slow subscriber asks for pacing after 5 queued messages.
    let b = start_with(|c| {
        c.session.max_queued_messages = 10;
        c.session.max_inflight = 1;
    })
    .await;
    // Subscribed, reading, but never acknowledging: its queue reaches the watermark.
    let mut slow = Raw::connect(b.addr, "slow").await;
    slow.subscribe("#", QoS::AtLeastOnce).await;
    let mut watcher = Raw::connect(b.addr, "watcher").await;
    watcher.subscribe("t", QoS::AtLeastOnce).await;
    // The watcher reads (and acknowledges) all along, as a live subscriber does, until the
    // barrier published after the publisher has gone.
    let watching = tokio::spawn(async move {
        let got: Vec<u16> = until_barrier(&mut watcher, "t")
            .await
            .iter()
            .map(|m| u16::from_be_bytes(m.payload[..2].try_into().expect("2")))
            .collect();
        got
    });

    // CONNECT, N QoS 1 PUBLISH and DISCONNECT in one write: one read, one batch.
    let mut p = Raw::open(b.addr).await;
    let mut packets = vec![Packet::from(connect_packet("pub", true))];
    packets.extend((1..=N).map(|i| publish_packet("t", QoS::AtLeastOnce, i, &i.to_be_bytes())));
    packets.push(Packet::Disconnect(Disconnect::default()));
    p.send_raw(&encode_all(&packets)).await;
    let acked: Vec<u16> = p
        .expect_closed()
        .await
        .into_iter()
        .filter_map(|p| match p {
            Packet::PubAck(a) => Some(a.pkid),
            _ => None,
        })
        .collect();
    assert!(!acked.is_empty(), "no PUBACK at all");

    let mut other = Raw::connect(b.addr, "other").await;
    barrier(&mut other, "t").await;
    let got = tokio::time::timeout(WAIT, watching)
        .await
        .expect("watcher got the barrier")
        .expect("watcher task");
    assert_eq!(
        got, acked,
        "every acknowledged message is delivered, in order"
    );
    drop(slow);
}
