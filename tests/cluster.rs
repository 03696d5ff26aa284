//! Multi-node clusters on loopback, in one process: mesh formation, forwarding at every QoS,
//! no lost first message, retained replication, cross-node take-over and wills, and route
//! handshake refusals.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::cluster::{clustered, links, route, wait_meshed, wait_refused};
use common::*;
use supermq::codec::{Packet, ProtocolLevel, QoS};
use tokio::io::AsyncWriteExt;

/// Starts a node `id` whose seeds are `seeds`, on loopback ports chosen by the OS.
async fn node(id: &str, seeds: &[SocketAddr], secret: Option<&str>) -> TestBroker {
    let id = id.to_owned();
    let seeds = seeds.to_vec();
    let secret = secret.map(str::to_owned);
    start_with(move |c| {
        clustered(c, &id, &seeds);
        c.cluster.secret = secret;
        c.cluster.ping_interval = Duration::from_millis(200);
        c.cluster.reconnect_max = Duration::from_millis(500);
    })
    .await
}

async fn mesh(n: usize) -> Vec<TestBroker> {
    let first = node("n1", &[], None).await;
    let seed = route(&first);
    let mut nodes = vec![first];
    for i in 2..=n {
        nodes.push(node(&format!("n{i}"), &[seed], None).await);
    }
    wait_meshed(&nodes).await;
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_and_five_nodes_form_a_full_mesh_from_one_seed() {
    for n in [3, 5] {
        let nodes = mesh(n).await;
        for b in &nodes {
            assert_eq!(links(b), n - 1);
            assert_eq!(
                metric(b, |m| &m.route_links_current),
                (n - 1) as u64,
                "one link per peer"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_leave_exactly_one_link_per_pair() {
    // Reserve three route ports, then start all three nodes seeding each other at once.
    let ports: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let mut nodes = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let seeds: Vec<SocketAddr> = ports.iter().copied().filter(|q| q != p).collect();
        let listen = *p;
        nodes.push(tokio::spawn(start_with(move |c| {
            clustered(c, &format!("s{i}"), &seeds);
            c.cluster.listen = listen;
            c.cluster.ping_interval = Duration::from_millis(200);
        })));
    }
    let mut started = Vec::new();
    for n in nodes {
        started.push(n.await.expect("start"));
    }
    wait_meshed(&started).await;
    // Let the duplicate dials settle, then check again: still exactly one link per peer.
    let mut p = Raw::connect(started[0].addr, "settle").await;
    for _ in 0..5 {
        p.ping().await;
    }
    for b in &started {
        assert_eq!(links(b), 2);
        assert_eq!(metric(b, |m| &m.route_links_current), 2);
    }
}

/// Every node publishes `per` messages at `qos`; a subscriber on every node must get every
/// message exactly once.
async fn all_to_all(nodes: &[TestBroker], qos: QoS, per: u32) {
    let mut subs = Vec::new();
    for (i, b) in nodes.iter().enumerate() {
        let mut s = Raw::connect(b.addr, &format!("sub{i}")).await;
        s.subscribe("all/#", QoS::ExactlyOnce).await;
        subs.push(s);
    }
    let mut pubs = Vec::new();
    for (i, b) in nodes.iter().enumerate() {
        pubs.push(Raw::connect(b.addr, &format!("pub{i}")).await);
    }
    for (i, p) in pubs.iter_mut().enumerate() {
        for seq in 0..per {
            p.publish(&format!("all/{i}"), &seq.to_be_bytes(), qos, false)
                .await;
        }
        barrier(p, &format!("all/{i}")).await;
    }
    for s in subs.iter_mut() {
        let mut seen = vec![Vec::new(); nodes.len()];
        let mut barriers = 0;
        while barriers < nodes.len() {
            let m = s.recv_publish().await;
            let from: usize = m.topic["all/".len()..].parse().expect("publisher index");
            if &m.payload[..] == b"barrier" {
                barriers += 1;
                continue;
            }
            assert_eq!(m.qos, qos, "delivery QoS = min(publish, granted)");
            seen[from].push(u32::from_be_bytes(
                m.payload[..4].try_into().expect("4 bytes"),
            ));
        }
        for (from, got) in seen.iter().enumerate() {
            let want: Vec<u32> = (0..per).collect();
            assert_eq!(
                got, &want,
                "messages from node {from}: each exactly once, in order"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_anywhere_subscribe_everywhere_at_every_qos() {
    let nodes = mesh(3).await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        all_to_all(&nodes, qos, 50).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_is_lost_right_after_suback_on_another_node() {
    let nodes = mesh(3).await;
    let mut p = Raw::connect(nodes[0].addr, "first-pub").await;
    for i in 0..30 {
        let topic = format!("fresh/{i}");
        let mut s = Raw::connect(nodes[1 + i % 2].addr, &format!("first-sub{i}")).await;
        s.subscribe(&topic, QoS::AtLeastOnce).await;
        // Published on another node immediately after the SUBACK.
        p.publish(&topic, b"first", QoS::AtLeastOnce, false).await;
        assert_eq!(&s.recv_publish().await.payload[..], b"first", "round {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_replicate_delete_and_come_back_after_restart() {
    let mut nodes = mesh(3).await;
    let mut p = Raw::connect(nodes[0].addr, "rp").await;
    p.publish("cfg/a", b"A", QoS::AtLeastOnce, true).await;
    p.publish("cfg/b", b"B", QoS::AtLeastOnce, true).await;
    for b in &nodes {
        wait_until("retained replicated", || {
            b.broker.context().router.retained().len() == 2
        })
        .await;
    }
    let mut s = Raw::connect(nodes[2].addr, "rs").await;
    s.subscribe("cfg/a", QoS::AtLeastOnce).await;
    let got = s.recv_publish().await;
    assert!(got.retain && &got.payload[..] == b"A");

    // Delete on node 2 propagates everywhere.
    let mut d = Raw::connect(nodes[1].addr, "rd").await;
    d.publish("cfg/b", b"", QoS::AtLeastOnce, true).await;
    for b in &nodes {
        wait_until("delete replicated", || {
            b.broker.context().router.retained().len() == 1
        })
        .await;
    }

    // Node 3 restarted empty gets the retained set back from its peers.
    let seed = route(&nodes[0]);
    let old = nodes.pop().expect("node 3");
    drop(old);
    let fresh = node("n3", &[seed], None).await;
    wait_until("restarted node linked", || links(&fresh) == 2).await;
    wait_until("retained set back", || {
        fresh.broker.context().router.retained().len() == 1
    })
    .await;
    let mut s = Raw::connect(fresh.addr, "rs2").await;
    s.subscribe("cfg/#", QoS::AtLeastOnce).await;
    let got = s.recv_publish().await;
    assert_eq!((got.topic.as_str(), &got.payload[..]), ("cfg/a", &b"A"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_message_its_node_refuses_is_stored_on_no_node() {
    // Node a holds one retained message at most; node b has room.
    let a = start_with(|c| {
        clustered(c, "ra", &[]);
        c.cluster.ping_interval = Duration::from_millis(200);
        c.retain.max_messages = 1;
    })
    .await;
    let b = node("rb", &[route(&a)], None).await;
    wait_until("linked", || links(&a) == 1 && links(&b) == 1).await;
    let mut live = Raw::connect(b.addr, "live").await;
    live.subscribe("r/#", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(a.addr, "rp").await;
    p.publish("r/1", b"kept", QoS::AtLeastOnce, true).await;
    assert_eq!(live.recv_publish().await.topic, "r/1");
    // Over a's limit: refused there, so stored nowhere; live subscribers still get it.
    p.publish("r/2", b"refused", QoS::AtLeastOnce, true).await;
    let got = live.recv_publish().await;
    assert_eq!((got.topic.as_str(), got.retain), ("r/2", false));
    for n in [&a, &b] {
        let store = n.broker.context().router.retained();
        assert_eq!(store.len(), 1, "only r/1 is retained");
        assert!(
            store.matching("r/2").is_empty(),
            "the refused message was stored"
        );
    }
    // A new subscriber on b gets what a new subscriber on a would get: r/1 alone.
    let mut late = Raw::connect(b.addr, "late").await;
    late.subscribe("r/#", QoS::AtLeastOnce).await;
    let first = late.recv_publish().await;
    assert_eq!((first.topic.as_str(), first.retain), ("r/1", true));
    barrier(&mut p, "r/end").await;
    assert!(until_barrier(&mut late, "r/end").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_over_and_wills_cross_nodes() {
    let nodes = mesh(3).await;
    let mut watcher = Raw::connect(nodes[2].addr, "watcher").await;
    watcher.subscribe("will/#", QoS::AtLeastOnce).await;
    let mut c = connect_packet("roamer", true);
    c.will = Some(will("will/roamer", "gone", QoS::AtLeastOnce, false));
    let (mut first, _) = Raw::connect_with(nodes[0].addr, c).await;
    let _second = Raw::connect(nodes[1].addr, "roamer").await;
    first.expect_closed().await;
    let w = watcher.recv_publish().await;
    assert_eq!(
        (w.topic.as_str(), &w.payload[..]),
        ("will/roamer", &b"gone"[..]),
        "will of the taken-over client"
    );
    assert_eq!(metric(&nodes[0], |m| &m.takeovers), 1);

    // A will from a dropped client on node 1 reaches node 3.
    let mut c = connect_packet("dropper", true);
    c.will = Some(will("will/dropper", "dropped", QoS::AtMostOnce, false));
    let (d, _) = Raw::connect_with(nodes[0].addr, c).await;
    drop(d);
    assert_eq!(watcher.recv_publish().await.topic, "will/dropper");
}

/// Sends PINGREQ and reads until PINGRESP (true: the connection is served) or the close.
async fn alive(c: &mut Raw) -> bool {
    if !c.try_send_raw(&[0xC0, 0x00]).await {
        return false;
    }
    tokio::time::timeout(WAIT, async {
        while let Some(p) = c.try_recv().await {
            if p == Packet::PingResp {
                return true;
            }
        }
        false
    })
    .await
    .expect("PINGRESP or close within WAIT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_client_id_on_two_nodes_at_once_leaves_exactly_one_connection() {
    let nodes = mesh(2).await;
    for i in 0..10 {
        let id = format!("twin-{i}");
        // Both CONNECTs leave together: each node hears of the other's connection while its
        // own is already attached, and both must agree on which one stays.
        let (mut a, mut b) = tokio::join!(Raw::open(nodes[0].addr), Raw::open(nodes[1].addr));
        let connect = Packet::from(connect_packet(&id, true));
        tokio::join!(a.send(&connect), b.send(&connect));
        // Each is attached (CONNACK) or already closed, so each announcement has been sent.
        for c in [&mut a, &mut b] {
            let first = tokio::time::timeout(WAIT, c.try_recv())
                .await
                .expect("CONNACK or close");
            assert!(
                matches!(first, None | Some(Packet::ConnAck(_))),
                "{first:?}"
            );
        }
        // A SUBSCRIBE's SUBACK waits until every peer has applied what its node sent before,
        // the announcements of both twins among it.
        // (A filter new to the node: a SUBACK waits only when there is interest to confirm.)
        for (n, node) in nodes.iter().enumerate() {
            let mut s = Raw::connect(node.addr, &format!("sync-{i}-{n}")).await;
            s.subscribe(&format!("sync/{i}"), QoS::AtMostOnce).await;
        }
        let (a_alive, b_alive) = tokio::join!(alive(&mut a), alive(&mut b));
        assert!(
            a_alive != b_alive,
            "{id}: exactly one connection stays (node 1: {a_alive}, node 2: {b_alive})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_down_purges_interest_and_link_up_restores_it() {
    let mut nodes = mesh(3).await;
    let n3 = nodes.pop().expect("n3");
    let seed = route(&nodes[0]);
    drop(n3);
    for b in &nodes {
        wait_until("peer dropped", || links(b) == 1).await;
    }
    // The survivors keep serving each other.
    let mut s = Raw::connect(nodes[1].addr, "surv-sub").await;
    s.subscribe("still", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(nodes[0].addr, "surv-pub").await;
    p.publish("still", b"up", QoS::AtLeastOnce, false).await;
    assert_eq!(&s.recv_publish().await.payload[..], b"up");
    // It comes back and traffic flows through it again.
    let back = node("n3", &[seed], None).await;
    wait_until("rejoined", || links(&back) == 2).await;
    let mut s3 = Raw::connect(back.addr, "back-sub").await;
    s3.subscribe("still", QoS::AtLeastOnce).await;
    p.publish("still", b"again", QoS::AtLeastOnce, false).await;
    assert_eq!(&s3.recv_publish().await.payload[..], b"again");
    assert_eq!(&s.recv_publish().await.payload[..], b"again");
}

/// Opens a TCP connection to a route port, sends `bytes`, and waits for the close.
async fn route_refuses(addr: SocketAddr, bytes: &[u8]) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    assert!(
        closed_within(&mut s, WAIT).await,
        "route port did not close the connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_port_refuses_mqtt_garbage_and_wrong_secrets() {
    let a = node("sa", &[], Some("right")).await;
    let ra = route(&a);
    let mut connect = bytes::BytesMut::new();
    supermq::codec::encode(
        &Packet::from(connect_packet("lost-client", true)),
        ProtocolLevel::V311,
        &mut connect,
    );
    route_refuses(ra, &connect).await;
    route_refuses(ra, b"GET / HTTP/1.1\r\n\r\n").await;
    route_refuses(ra, b"SMQR\x63").await; // a route protocol version this node does not speak
    route_refuses(ra, b"SMQR\x02").await; // a node of the release before MQTT 5 routes
    assert!(metric(&a, |m| &m.route_handshake_rejected) >= 4);

    let wrong = node("sb", &[ra], Some("wrong")).await;
    wait_refused(&a, 5, "secret refused").await;
    assert_eq!(links(&a), 0);
    assert_eq!(links(&wrong), 0);
    let good = node("sc", &[ra], Some("right")).await;
    wait_until("secret accepted", || links(&good) == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_cluster_names_and_duplicate_node_ids_are_refused() {
    let a = node("x1", &[], None).await;
    let ra = route(&a);
    let other = start_with(move |c| {
        clustered(c, "x2", &[ra]);
        c.cluster.name = "elsewhere".into();
    })
    .await;
    wait_refused(&a, 1, "other cluster refused").await;
    let dup = node("x1", &[ra], None).await;
    wait_refused(&a, 2, "duplicate node id refused").await;
    assert_eq!(links(&a), 0);
    assert_eq!(links(&other) + links(&dup), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_topics_stay_on_their_node_and_report_routes() {
    let seed = node("y1", &[], None).await;
    let (a, b) = {
        let r = route(&seed);
        let mk = |id: &'static str| {
            start_with(move |c| {
                c.sys.interval = Duration::from_millis(50);
                clustered(c, id, &[r]);
            })
        };
        (mk("y2").await, mk("y3").await)
    };
    wait_until("mesh", || links(&a) == 2 && links(&b) == 2).await;
    let mut s = Raw::connect(a.addr, "sysw").await;
    s.subscribe("$SYS/broker/routes/+/bytes_out", QoS::AtMostOnce)
        .await;
    let p = s.recv_publish().await;
    assert!(
        p.topic == "$SYS/broker/routes/y1/bytes_out"
            || p.topic == "$SYS/broker/routes/y3/bytes_out"
    );
    // y3 publishes its own view of the y2 route as retained $SYS topics; they must stay on y3.
    let y3_view = "$SYS/broker/routes/y2/#";
    wait_until("y3 reports its y2 route", || {
        !b.broker
            .context()
            .router
            .retained()
            .matching(y3_view)
            .is_empty()
    })
    .await;
    assert!(
        a.broker
            .context()
            .router
            .retained()
            .matching(y3_view)
            .is_empty(),
        "$SYS is not replicated"
    );
}

/// MQTT 5 properties and the remaining expiry cross routes (route protocol version 3), both
/// with a live retained publish and in the retained snapshot a joining node gets. Published
/// through the router in-process, as the MQTT 5 wire form is not served yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_properties_and_expiry_cross_routes() {
    use std::time::Instant;
    use supermq::codec::{PayloadFormat, Properties, PropertyValues};
    use supermq::message::Message;
    use supermq::router::Origin;

    let nodes = mesh(2).await;
    let properties = Properties::from(PropertyValues {
        payload_format_indicator: Some(PayloadFormat::Utf8),
        content_type: Some("text/plain".into()),
        response_topic: Some("m5/reply".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"id-1")),
        user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        ..PropertyValues::default()
    });
    let mut msg = Message::new(
        "m5/kept",
        bytes::Bytes::from_static(b"hi"),
        QoS::AtLeastOnce,
        true,
    );
    msg.properties = properties.clone();
    let sent = Instant::now();
    msg.expires = Some(sent + Duration::from_secs(60));
    let origin = Origin {
        session: None,
        memo: None,
        may_block: false,
    };
    nodes[0].broker.context().router.publish(msg, origin, sent);

    let check = |b: &TestBroker| {
        let held = b.broker.context().router.retained().matching("m5/#");
        let [m] = held.as_slice() else {
            return false;
        };
        let at = m.expires.expect("expiry carried");
        assert_eq!(m.properties, properties);
        assert!(at <= sent + Duration::from_secs(61) && at > sent + Duration::from_secs(50));
        true
    };
    wait_until("retained with properties on n2", || check(&nodes[1])).await;
    let fresh = node("n3", &[route(&nodes[0])], None).await;
    wait_until("retained snapshot on n3", || check(&fresh)).await;
}
