//! Cluster fault tests with nodes as separate processes of the real binary: a node killed
//! with SIGKILL is dropped by the others, which keep serving; restarted, it rejoins by itself
//! and traffic flows through it again. Everything is observed over MQTT (`$SYS`).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::process::{supermq_command, temp_dir, write};
use common::*;
use supermq::codec::QoS;

/// One node process and what it needs to be restarted identically.
struct Node {
    id: String,
    conf: PathBuf,
    mqtt: SocketAddr,
    child: Option<Child>,
}

impl Node {
    fn new(id: &str, mqtt: u16, route: u16, seeds: &[u16], dir: &std::path::Path) -> Node {
        Node::with_store(id, mqtt, route, seeds, dir, false)
    }

    /// `persist`: with a durable store of its own under `dir`.
    fn with_store(
        id: &str,
        mqtt: u16,
        route: u16,
        seeds: &[u16],
        dir: &std::path::Path,
        persist: bool,
    ) -> Node {
        let seeds: Vec<String> = seeds.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        let persistence = if persist {
            format!(
                "enabled = true\ndir = \"{}\"\n",
                dir.join(format!("{id}-data")).display()
            )
        } else {
            "enabled = false\n".to_owned()
        };
        let text = format!(
            "[[listener]]\nbind = \"127.0.0.1:{mqtt}\"\n\n[sys]\ninterval = \"100ms\"\n\n[cluster]\nenabled = true\n\
             node_id = \"{id}\"\nlisten = \"127.0.0.1:{route}\"\nseeds = [{}]\nping_interval = \"200ms\"\n\
             reconnect_min = \"50ms\"\nreconnect_max = \"300ms\"\n\n[persistence]\n{persistence}\n[http]\nenabled = false\n",
            seeds.join(", ")
        );
        let conf = write(dir, &format!("{id}.conf"), &text);
        Node {
            id: id.to_owned(),
            conf,
            mqtt: SocketAddr::from(([127, 0, 0, 1], mqtt)),
            child: None,
        }
    }

    fn start(&mut self) {
        let child = supermq_command()
            .arg("-c")
            .arg(&self.conf)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn supermq");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGKILL.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Connects to a node, retrying until it accepts or the deadline passes.
async fn connect_retry(addr: SocketAddr, id: &str) -> Raw {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Raw::connect(addr, id).await;
        }
        assert!(
            Instant::now() < deadline,
            "node at {addr} never accepted connections"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the node publishes `$SYS/broker/route_links_current` = `want`.
async fn wait_links(n: &Node, want: u32) {
    let mut c = connect_retry(n.mqtt, &format!("watch-{}-{want}", n.id)).await;
    c.subscribe("$SYS/broker/route_links_current", QoS::AtMostOnce)
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let p = c.recv_publish().await;
        if p.payload[..] == *want.to_string().as_bytes() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} never reached {want} links",
            n.id
        );
    }
}

async fn flows(from: &Node, to: &Node, topic: &str) {
    let mut s = connect_retry(to.mqtt, &format!("s-{topic}-{}", to.id)).await;
    s.subscribe(topic, QoS::AtLeastOnce).await;
    let mut p = connect_retry(from.mqtt, &format!("p-{topic}-{}", from.id)).await;
    p.publish(topic, b"through", QoS::AtLeastOnce, false).await;
    let got = s.recv_publish().await;
    assert_eq!(&got.payload[..], b"through", "{} -> {}", from.id, to.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_is_dropped_and_rejoins_after_restart() {
    let dir = temp_dir("cluster-process");
    let routes = [free_port(), free_port(), free_port()];
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| {
            let seeds: Vec<u16> = routes.iter().copied().filter(|r| *r != routes[i]).collect();
            Node::new(&format!("p{}", i + 1), free_port(), routes[i], &seeds, &dir)
        })
        .collect();
    for n in nodes.iter_mut() {
        n.start();
    }
    for n in &nodes {
        wait_links(n, 2).await;
    }
    flows(&nodes[0], &nodes[2], "before").await;
    // A consumer group member that stays connected throughout: the restarted node must learn
    // of it from the link snapshot, not from a SUBSCRIBE it was not there to see.
    let mut member = connect_retry(nodes[0].mqtt, "member-p1").await;
    member
        .subscribe("$share/workers/jobs", QoS::AtLeastOnce)
        .await;

    nodes[1].kill9();
    wait_links(&nodes[0], 1).await;
    wait_links(&nodes[2], 1).await;
    flows(&nodes[0], &nodes[2], "during").await;
    flows(&nodes[2], &nodes[0], "during2").await;

    nodes[1].start();
    for n in &nodes {
        wait_links(n, 2).await;
    }
    flows(&nodes[0], &nodes[1], "after").await;
    flows(&nodes[1], &nodes[2], "after2").await;
    let mut p = connect_retry(nodes[1].mqtt, "p-jobs").await;
    p.publish("jobs", b"job-1", QoS::AtLeastOnce, false).await;
    let got = member.recv_publish().await;
    assert_eq!(
        &got.payload[..],
        b"job-1",
        "group member on p1 via restarted p2"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node with a durable store, killed and restarted, serves its persistent clients' sessions
/// again: the subscription of an offline session is back (so the other node routes to it
/// again), the message it had queued is still there, and the retained set is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_serves_its_persistent_sessions_again() {
    let dir = temp_dir("cluster-durable");
    let routes = [free_port(), free_port()];
    let mut a = Node::with_store("d1", free_port(), routes[0], &[routes[1]], &dir, true);
    let mut b = Node::with_store("d2", free_port(), routes[1], &[routes[0]], &dir, true);
    a.start();
    b.start();
    wait_links(&a, 1).await;
    wait_links(&b, 1).await;

    // A persistent session on b, offline, subscribed to cmd/#.
    let dev = common::raw::connect_packet("device-7", false);
    let (mut d, _) = Raw::connect_with(b.mqtt, dev.clone()).await;
    d.subscribe("cmd/#", QoS::AtLeastOnce).await;
    d.disconnect().await;
    // Routed from a to b's offline session (b's interest reached a with the SUBACK's
    // journal write; wait for it by a round trip through another subscriber on b).
    flows(&a, &b, "cmd/ready").await;
    let mut p = connect_retry(a.mqtt, "pub-a").await;
    p.publish("cmd/1", b"one", QoS::AtLeastOnce, false).await;
    p.publish("state/x", b"retained", QoS::AtLeastOnce, true)
        .await;
    // b has queued cmd/1 once a later message through the same link reaches b.
    flows(&a, &b, "cmd/sync").await;
    let mut r = connect_retry(b.mqtt, "reader-b0").await;
    r.subscribe("state/#", QoS::AtLeastOnce).await;
    assert_eq!(
        &r.recv_publish().await.payload[..],
        b"retained",
        "replicated to b"
    );
    drop(r);
    // Routed from a, cmd/1 and the flows' messages are acknowledged on a, not on b: wait
    // until b's store has them. A retained QoS 1 PUBLISH on b is acknowledged once
    // everything b staged before it is fsynced.
    let mut s = connect_retry(b.mqtt, "sync-b").await;
    s.publish("sync/b", b"on disk", QoS::AtLeastOnce, true)
        .await;
    drop(s);

    b.kill9();
    wait_links(&a, 0).await;
    b.start();
    wait_links(&a, 1).await;
    wait_links(&b, 1).await;
    // The restored subscription is announced again with b's interest on link-up (a
    // message published on a before that arrives is not routed to b: nodes do not queue for
    // a peer they do not know wants it). A subscription made on b after the link-up arrives
    // behind that interest on the same link, so once it flows, so does cmd/#.
    flows(&a, &b, "cmd/sync1").await;
    let mut p = connect_retry(a.mqtt, "pub-a2").await;
    p.publish("cmd/2", b"two", QoS::AtLeastOnce, false).await;
    flows(&a, &b, "cmd/sync2").await;

    let (mut d, present) = Raw::connect_with(b.mqtt, dev).await;
    assert!(present, "session present on the restarted node");
    // Queued: cmd/ready, cmd/1, cmd/sync, then after the restart cmd/sync1, cmd/2, cmd/sync2
    // (the flows' own messages match cmd/# too).
    let mut got = Vec::new();
    while got.len() < 6 {
        let m = d.recv_publish().await;
        got.push(m.topic.to_string());
    }
    assert_eq!(
        got,
        [
            "cmd/ready",
            "cmd/1",
            "cmd/sync",
            "cmd/sync1",
            "cmd/2",
            "cmd/sync2"
        ],
        "queued before and after the restart, in order"
    );
    let mut r = connect_retry(b.mqtt, "reader-b").await;
    r.subscribe("state/#", QoS::AtLeastOnce).await;
    assert_eq!(&r.recv_publish().await.payload[..], b"retained");
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
