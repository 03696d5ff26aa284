//! Flow control: a publisher faster than a live subscriber is paced to the subscriber's speed
//! instead of having messages dropped at the subscriber's queue bound; a stalled subscriber
//! does not pace anyone (its bound applies; see slow_consumer.rs).

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use supermq::codec::{self, Disconnect, Packet, Properties, ProtocolLevel, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_publisher_is_paced_to_a_live_subscriber_without_loss() {
    const N: u32 = 5_000;
    // A queue far smaller than the burst: without pacing most of it would be dropped.
    let b = start_with(|c| {
        c.session.max_queued_messages = 50;
        c.session.max_inflight = 5;
    })
    .await;
    let mut sub = Raw::connect(b.addr, "paced-sub").await;
    sub.subscribe("paced", QoS::AtLeastOnce).await;

    // The publisher writes every PUBLISH back to back without waiting for PUBACKs, from its
    // own task, and then counts the PUBACKs.
    let addr = b.addr;
    let publisher = tokio::spawn(async move {
        let mut p = Raw::connect(addr, "paced-pub").await;
        let (mut rd, mut wr) = p.stream.split();
        let writer = async {
            let payload = Bytes::from(vec![7u8; 512]);
            for chunk in (1..=N).collect::<Vec<_>>().chunks(100) {
                let mut out = BytesMut::new();
                for &i in chunk {
                    let mut body = payload.to_vec();
                    body[..4].copy_from_slice(&i.to_be_bytes());
                    codec::encode(
                        &Packet::Publish(Publish {
                            dup: false,
                            qos: QoS::AtLeastOnce,
                            retain: false,
                            topic: "paced".into(),
                            pkid: (i % 60_000 + 1) as u16,
                            payload: Bytes::from(body),
                            properties: Properties::new(),
                        }),
                        ProtocolLevel::V311,
                        &mut out,
                    );
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

    for i in 1..=N {
        let p = sub.recv_publish().await;
        assert_eq!(
            u32::from_be_bytes(p.payload[..4].try_into().expect("4")),
            i,
            "in order, none lost"
        );
    }
    publisher.await.expect("publisher");
    assert_eq!(
        metric(&b, |m| &m.dropped_queue_full),
        0,
        "paced, not dropped"
    );
    let q = b
        .broker
        .context()
        .sessions
        .get("paced-sub")
        .expect("session")
        .lock()
        .queued();
    assert!(q <= 50, "queue stayed within its bound: {q}");
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
    let mut out = BytesMut::new();
    codec::encode(
        &Packet::from(connect_packet("pub", true)),
        ProtocolLevel::V311,
        &mut out,
    );
    for i in 1..=N {
        codec::encode(
            &Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: "t".into(),
                pkid: i,
                payload: Bytes::copy_from_slice(&i.to_be_bytes()),
                properties: Properties::new(),
            }),
            ProtocolLevel::V311,
            &mut out,
        );
    }
    codec::encode(
        &Packet::Disconnect(Disconnect::default()),
        ProtocolLevel::V311,
        &mut out,
    );
    p.send_raw(&out).await;
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
