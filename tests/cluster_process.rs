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
        let seeds: Vec<String> = seeds.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        let text = format!(
            "[[listener]]\nbind = \"127.0.0.1:{mqtt}\"\n\n[sys]\ninterval = \"100ms\"\n\n[cluster]\nenabled = true\n\
             node_id = \"{id}\"\nlisten = \"127.0.0.1:{route}\"\nseeds = [{}]\nping_interval = \"200ms\"\n\
             reconnect_min = \"50ms\"\nreconnect_max = \"300ms\"\n\n[persistence]\nenabled = false\n\n[http]\nenabled = false\n",
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
