//! No acknowledged message lost, at the shipped defaults (no queue or window setting changed):
//! a mesh of clients that publish and subscribe at once, a consumer group with a stalled
//! member, and a publisher and a subscriber on different nodes of a cluster. Every client
//! is rumqttc, reading in bursts (a busy application that keeps reading, not a stalled one);
//! every publish is acknowledged, so every one of them must arrive.

#[path = "no_loss/client.rs"]
mod client;
mod common;

use std::time::Duration;

use client::{LoadClient, Reading, Tally};
use common::cluster::{route, wait_meshed};
use common::{metric, start, start_with, Raw, TestBroker};
use rumqttc::QoS;
use supermq::Metrics;

/// Longest time without any new delivery before a receiver is declared short.
const QUIET: Duration = Duration::from_secs(10);

/// Readers pause 80 ms after every 100 messages: longer than any scheduling hiccup a
/// broker should take for a stall.
const BURSTS: Reading = Reading::Bursts {
    every: 100,
    pause: Duration::from_millis(80),
};

fn drops(m: &Metrics) -> [u64; 3] {
    [
        supermq::metrics::get(&m.dropped_queue_full),
        supermq::metrics::get(&m.dropped_qos0_queue_full),
        supermq::metrics::get(&m.group_dropped),
    ]
}

/// Mesh clients stop reading for 300 ms after every 200 messages: in each pause their queue
/// (1,000) fills from the other publishers, and they read on.
const LONG_BURSTS: Reading = Reading::Bursts {
    every: 200,
    pause: Duration::from_millis(300),
};

/// `n` clients, each subscribed to `mesh/+` and publishing `per` messages on its own topic:
/// each receives n × per.
async fn mesh(b: &TestBroker, n: u32, per: u32, qos: QoS) {
    let mut clients = Vec::new();
    for i in 0..n {
        let mut c = LoadClient::connect(b.addr, &format!("mesh-{i}"), 20, false, LONG_BURSTS);
        c.subscribe("mesh/+", qos).await;
        clients.push(c);
    }
    let publishers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| c.publish_all(format!("mesh/{i}"), i as u32, per, qos, 256))
        .collect();
    let want = (n * per) as usize;
    let tallies: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut t = Tally::default();
                t.collect(&mut c, want, QUIET).await;
                t
            })
        })
        .collect();
    for p in publishers {
        p.await.expect("publisher");
    }
    for (i, t) in tallies.into_iter().enumerate() {
        let t = t.await.expect("receiver");
        assert_eq!(
            t.got.len(),
            want,
            "client {i} received {} of {want} ({:?} dropped: queue, qos0, group)",
            t.got.len(),
            drops(b.broker.metrics())
        );
        if qos == QoS::ExactlyOnce {
            assert_eq!(t.duplicates, 0, "client {i}: exactly once");
        }
    }
    assert_eq!(drops(b.broker.metrics()), [0, 0, 0]);
}

/// Publishers that also subscribe, at the default queue bound (1,000) and window (20):
/// each client's queue takes 20 publishers' traffic, so it fills, and the publishers feeding
/// it must be paced while it drains. Before flow control held here, messages acknowledged
/// to their publishers were dropped for these readers (`dropped_queue_full`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos1_mesh_at_the_defaults_loses_nothing() {
    let b = start().await;
    mesh(&b, 10, 400, QoS::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_mesh_at_the_defaults_loses_and_duplicates_nothing() {
    let b = start().await;
    mesh(&b, 10, 200, QoS::ExactlyOnce).await;
}

/// Three members of `$share/g/jobs`: one stalled (it subscribes and never reads again), two
/// reading. Every acknowledged job reaches a reading member, or stays with the stalled one
/// within its bound; none is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_a_stalled_member_loses_nothing() {
    let b = start().await;
    let mut stalled = Raw::connect(b.addr, "stalled").await;
    stalled
        .subscribe("$share/g/jobs", supermq::codec::QoS::AtLeastOnce)
        .await;
    let mut readers = Vec::new();
    for i in 0..2 {
        let mut c = LoadClient::connect(b.addr, &format!("worker-{i}"), 20, false, BURSTS);
        c.subscribe("$share/g/jobs", QoS::AtLeastOnce).await;
        readers.push(c);
    }
    let jobs = 5000u32;
    let publisher = LoadClient::connect(b.addr, "boss", 20, false, Reading::Fast);
    publisher
        .publish_all("jobs".into(), 9, jobs, QoS::AtLeastOnce, 128)
        .await
        .expect("publisher");
    let held = || {
        let s = b.broker.context().sessions.get("stalled").expect("session");
        let st = s.lock();
        st.queued() + st.inflight()
    };
    let mut got = 0;
    for mut c in readers {
        let mut t = Tally::default();
        // Each reader takes what it is given; together they take all but what the stalled
        // member holds.
        t.collect(&mut c, jobs as usize, Duration::from_secs(3))
            .await;
        got += t.got.len();
    }
    let stuck = held();
    assert_eq!(
        got + stuck,
        jobs as usize,
        "readers got {got}, the stalled member holds {stuck} ({:?} dropped)",
        drops(b.broker.metrics())
    );
    // The default bounds: 1,000 queued and 20 in flight.
    assert!(
        stuck <= 1020,
        "the stalled member holds {stuck}, more than its bound"
    );
    assert_eq!(drops(b.broker.metrics()), [0, 0, 0]);
    drop(stalled);
}

async fn node(id: &str, seeds: Vec<String>) -> TestBroker {
    let id = id.to_owned();
    start_with(move |c| {
        c.cluster.enabled = true;
        c.cluster.node_id = id;
        c.cluster.listen = "127.0.0.1:0".parse().expect("addr");
        c.cluster.seeds = seeds;
    })
    .await
}

/// A QoS 1 publisher (window 20) on node 1 and a persistent subscriber on node 3 that reads
/// in bursts: the route into node 3 must be paced by that subscriber's queue. Before, node 3
/// dropped what its subscriber's full queue could not take, although node 1 had
/// acknowledged it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_is_paced_by_the_subscriber_on_the_receiving_node() {
    let n1 = node("p1", vec![]).await;
    let seed = route(&n1).to_string();
    let n2 = node("p2", vec![seed.clone()]).await;
    let n3 = node("p3", vec![seed]).await;
    let nodes = [n1, n2, n3];
    wait_meshed(&nodes).await;
    let [n1, n2, n3] = nodes;
    let mut sub = LoadClient::connect(n3.addr, "far-sub", 20, true, BURSTS);
    sub.subscribe("far/t", QoS::AtLeastOnce).await;
    let count = 6000u32;
    let publisher = LoadClient::connect(n1.addr, "far-pub", 20, false, Reading::Fast);
    publisher
        .publish_all("far/t".into(), 1, count, QoS::AtLeastOnce, 512)
        .await
        .expect("publisher");
    let mut t = Tally::default();
    t.collect(&mut sub, count as usize, QUIET).await;
    assert_eq!(
        t.got.len(),
        count as usize,
        "node 3 dropped {:?}, node 1 dropped route frames: {}",
        drops(n3.broker.metrics()),
        metric(&n1, |m| &m.route_frames_dropped)
    );
    for b in [&n1, &n2, &n3] {
        assert_eq!(drops(b.broker.metrics()), [0, 0, 0]);
        assert_eq!(metric(b, |m| &m.route_frames_dropped), 0);
    }
}
