//! The connection threads (src/engine.rs): connections spread over several threads talk to
//! each other, and a shutdown ends every thread. Alone in its test binary because it counts
//! the process's threads by name.

mod common;

use common::{test_config, wait_until, Raw, WAIT};
use supermq::codec::QoS;
use supermq::Broker;
use tokio_util::sync::CancellationToken;

/// Names of this process's threads that serve connections.
fn conn_threads() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|name| name.starts_with("supermq-conn"))
        .count()
}

#[tokio::test]
async fn connections_on_different_threads_deliver_and_shutdown_ends_every_thread() {
    let mut config = test_config();
    config.engine.worker_threads = 3;
    let shutdown = CancellationToken::new();
    let broker = Broker::start(config, shutdown.clone())
        .await
        .expect("broker starts");
    let addr = broker.local_addr();
    // A thread names itself once it runs: wait for that, not for the spawn.
    wait_until("one connection thread per configured worker", || {
        conn_threads() == 3
    })
    .await;

    // Round-robin: three connections land on three different threads.
    let mut a = Raw::connect(addr, "a").await;
    let mut c = Raw::connect(addr, "c").await;
    let mut p = Raw::connect(addr, "p").await;
    a.subscribe("t/#", QoS::AtLeastOnce).await;
    c.subscribe("t/+", QoS::ExactlyOnce).await;
    for i in 0..50u8 {
        p.publish("t/x", &[i], QoS::AtLeastOnce, false).await;
    }
    for i in 0..50u8 {
        assert_eq!(&a.recv_publish().await.payload[..], &[i]);
        assert_eq!(&c.recv_publish().await.payload[..], &[i]);
    }

    shutdown.cancel();
    // Every connection is told (the peer sees its socket close) and every thread ends.
    for raw in [&mut a, &mut c, &mut p] {
        raw.expect_closed().await;
    }
    tokio::time::timeout(WAIT, broker.stopped())
        .await
        .expect("broker stops within the wait");
    wait_until("every connection thread has ended", || conn_threads() == 0).await;
}
