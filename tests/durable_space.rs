//! The durable store's disk bound (`[persistence] max_disk`, `min_free_disk`): while the
//! store is full, a stored session whose client is offline takes no new message (dropped
//! and counted as `store_full`), and connected sessions, stored or not, are served as before.

mod common;

use common::process::temp_dir;
use common::*;
use supermq::codec::QoS;

#[tokio::test]
async fn a_full_store_drops_what_offline_sessions_would_queue_and_serves_connected_ones() {
    let dir = temp_dir("durable-space");
    let data = dir.join("data");
    let b = start_with(|c| {
        c.persistence.enabled = true;
        c.persistence.dir = data.clone();
        // No filesystem has this much free: the store is full from the start.
        c.persistence.min_free_disk = u64::MAX;
    })
    .await;

    // A persistent session that goes offline, and one that stays connected.
    let (mut away, _) = Raw::connect_with(b.addr, connect_packet("space-away", false)).await;
    assert_eq!(away.subscribe("t", QoS::AtLeastOnce).await, 1);
    away.disconnect().await;
    wait_until("the offline session is detached", || {
        metric(&b, |m| &m.clients_connected_current) == 0
    })
    .await;
    let (mut here, _) = Raw::connect_with(b.addr, connect_packet("space-here", false)).await;
    assert_eq!(here.subscribe("t", QoS::AtLeastOnce).await, 1);

    let mut publisher = Raw::connect(b.addr, "space-pub").await;
    for i in 0..5 {
        // Acknowledged: the connected subscriber holds each one.
        publisher
            .publish("t", format!("m{i}").as_bytes(), QoS::AtLeastOnce, false)
            .await;
    }
    for i in 0..5 {
        assert_eq!(
            here.recv_publish().await.payload,
            format!("m{i}").as_bytes()
        );
    }
    assert_eq!(metric(&b, |m| &m.dropped_store_full), 5);

    // The offline session comes back to nothing queued: the first message it gets is one
    // published after it reconnected.
    let (mut back, present) = Raw::connect_with(b.addr, connect_packet("space-away", false)).await;
    assert!(present, "its session is kept");
    publisher
        .publish("t", b"after", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(&back.recv_publish().await.payload[..], b"after");
    assert_eq!(
        metric(&b, |m| &m.dropped_store_full),
        5,
        "connected: served"
    );
    b.shutdown.cancel();
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
