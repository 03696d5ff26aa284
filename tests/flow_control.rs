//! Flow control: a publisher faster than a live subscriber is paced to the subscriber's speed
//! instead of having messages dropped at the subscriber's queue bound; a stalled subscriber
//! does not pace anyone (its bound applies; see slow_consumer.rs).

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use supermq::codec::{self, Packet, Publish, QoS};
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
                        }),
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
                while let Some(p) = codec::decode(&mut buf, &Default::default()).expect("valid") {
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
