//! Consumer groups (`$share/`, `$g/`, `$queue/`): exactly one member per message, each
//! strategy's property, redispatch when a member leaves, and groups spread over a cluster.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::cluster::{clustered, route, wait_meshed};
use common::*;
use supermq::codec::{Packet, Publish, QoS};
use supermq::config::GroupStrategy;

/// A group member: a client with the group subscription and a private control topic.
struct Member {
    id: String,
    raw: Raw,
}

async fn member(addr: SocketAddr, id: &str, share: &str) -> Member {
    let mut raw = Raw::connect(addr, id).await;
    let codes = raw
        .subscribe_many(&[
            (share, QoS::AtLeastOnce),
            (&format!("ctl/{id}"), QoS::AtLeastOnce),
        ])
        .await;
    assert_eq!(codes, vec![1, 1]);
    Member {
        id: id.to_owned(),
        raw,
    }
}

/// `n` members `{prefix}0`, `{prefix}1`, ... of the group `share`.
async fn members(addr: SocketAddr, prefix: &str, n: usize, share: &str) -> Vec<Member> {
    let mut ms = Vec::new();
    for i in 0..n {
        ms.push(member(addr, &format!("{prefix}{i}"), share).await);
    }
    ms
}

/// Everything queued for `m` so far (a barrier on its control topic ends the drain).
async fn drain(m: &mut Member, publisher: &mut Raw) -> Vec<Publish> {
    let ctl = format!("ctl/{}", m.id);
    barrier(publisher, &ctl).await;
    until_barrier(&mut m.raw, &ctl).await
}

/// The sequence numbers each member got so far, member by member.
async fn drain_seqs(ms: &mut [Member], publisher: &mut Raw) -> Vec<Vec<u32>> {
    let mut got = Vec::new();
    for m in ms {
        got.push(seqs(&drain(m, publisher).await));
    }
    got
}

/// How many messages each member got so far, member by member.
async fn drain_counts(ms: &mut [Member], publisher: &mut Raw) -> Vec<usize> {
    let got = drain_seqs(ms, publisher).await;
    got.iter().map(Vec::len).collect()
}

fn seqs(msgs: &[Publish]) -> Vec<u32> {
    msgs.iter()
        .map(|p| u32::from_be_bytes(p.payload[..4].try_into().expect("seq")))
        .collect()
}

async fn publish_n(p: &mut Raw, topic: &str, range: std::ops::Range<u32>) {
    for i in range {
        p.publish(topic, &i.to_be_bytes(), QoS::AtLeastOnce, false)
            .await;
    }
}

/// Asserts that the members together got exactly `0..n`, once each.
fn exactly_once(per_member: &[Vec<u32>], n: u32) {
    let mut all: Vec<u32> = per_member.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..n).collect::<Vec<_>>(),
        "every message exactly once in the group"
    );
}

async fn with_strategy(s: GroupStrategy) -> TestBroker {
    start_with(move |c| c.groups.strategy = s).await
}

#[tokio::test]
async fn each_message_goes_to_one_member_and_ordinary_subscribers_get_all() {
    let b = start().await;
    let mut members = members(b.addr, "m", 4, "$share/workers/jobs/+").await;
    let mut plain = Raw::connect(b.addr, "plain").await;
    plain.subscribe("jobs/#", QoS::AtLeastOnce).await;
    let mut p = Raw::connect(b.addr, "p").await;
    publish_n(&mut p, "jobs/x", 0..400).await;
    let got = drain_seqs(&mut members, &mut p).await;
    exactly_once(&got, 400);
    assert!(
        got.iter().all(|g| !g.is_empty()),
        "random spreads over every member: {:?}",
        got.iter().map(Vec::len).collect::<Vec<_>>()
    );
    barrier(&mut p, "jobs/end").await;
    let all = until_barrier(&mut plain, "jobs/end").await;
    assert_eq!(
        seqs(&all),
        (0..400).collect::<Vec<_>>(),
        "ordinary subscribers still get everything"
    );
}

#[tokio::test]
async fn two_groups_on_one_filter_each_get_every_message_once() {
    let b = start().await;
    let mut a = vec![
        member(b.addr, "a1", "$share/a/t").await,
        member(b.addr, "a2", "$share/a/t").await,
    ];
    let mut g = vec![
        member(b.addr, "b1", "$g/b/t").await,
        member(b.addr, "b2", "$g/b/t").await,
    ];
    let mut p = Raw::connect(b.addr, "p").await;
    publish_n(&mut p, "t", 0..100).await;
    for group in [&mut a, &mut g] {
        exactly_once(&drain_seqs(group, &mut p).await, 100);
    }
}

#[tokio::test]
async fn round_robin_is_even() {
    let b = with_strategy(GroupStrategy::RoundRobin).await;
    let mut ms = members(b.addr, "r", 4, "$share/rr/q").await;
    let mut p = Raw::connect(b.addr, "p").await;
    publish_n(&mut p, "q", 0..400).await;
    let got = drain_seqs(&mut ms, &mut p).await;
    exactly_once(&got, 400);
    assert!(
        got.iter().all(|g| g.len() == 100),
        "{:?}",
        got.iter().map(Vec::len).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn sticky_stays_with_one_member_until_it_leaves() {
    let b = with_strategy(GroupStrategy::Sticky).await;
    let mut ms = members(b.addr, "s", 3, "$share/st/q").await;
    let mut p = Raw::connect(b.addr, "p").await;
    publish_n(&mut p, "q", 0..50).await;
    let counts = drain_counts(&mut ms, &mut p).await;
    let chosen = counts
        .iter()
        .position(|c| *c == 50)
        .expect("one member got all 50");
    ms[chosen].raw.unsubscribe("$share/st/q").await;
    publish_n(&mut p, "q", 50..100).await;
    let after = drain_counts(&mut ms, &mut p).await;
    assert_eq!(after[chosen], 0, "the member that left gets nothing");
    assert!(
        after.contains(&50),
        "another member took over alone: {after:?}"
    );
}

#[tokio::test]
async fn hash_strategies_keep_a_topic_or_a_publisher_on_one_member() {
    let b = with_strategy(GroupStrategy::HashTopic).await;
    let mut ms = members(b.addr, "h", 3, "$share/h/t/+").await;
    let mut p = Raw::connect(b.addr, "p").await;
    for round in 0..5u32 {
        for t in 0..10u32 {
            p.publish(
                &format!("t/{t}"),
                &(round * 10 + t).to_be_bytes(),
                QoS::AtLeastOnce,
                false,
            )
            .await;
        }
    }
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (i, m) in ms.iter_mut().enumerate() {
        for msg in drain(m, &mut p).await {
            let prev = owner.insert(msg.topic.clone(), i);
            assert!(
                prev.is_none() || prev == Some(i),
                "topic {} moved between members",
                msg.topic
            );
        }
    }
    assert_eq!(owner.len(), 10);

    let b = with_strategy(GroupStrategy::HashClient).await;
    let mut ms = members(b.addr, "c", 3, "$share/hc/t").await;
    let mut pubs = Vec::new();
    for i in 0..4 {
        pubs.push(Raw::connect(b.addr, &format!("publisher-{i}")).await);
    }
    for round in 0..5u32 {
        for (i, p) in pubs.iter_mut().enumerate() {
            p.publish("t", &[i as u8, round as u8, 0, 0], QoS::AtLeastOnce, false)
                .await;
        }
    }
    let mut owner: BTreeMap<u8, usize> = BTreeMap::new();
    for (i, m) in ms.iter_mut().enumerate() {
        for msg in drain(m, &mut pubs[0]).await {
            let prev = owner.insert(msg.payload[0], i);
            assert!(
                prev.is_none() || prev == Some(i),
                "publisher {} moved between members",
                msg.payload[0]
            );
        }
    }
    assert_eq!(owner.len(), 4);
}

#[tokio::test]
async fn queue_syntax_bad_forms_and_unsubscribe() {
    let b = start().await;
    let mut q1 = member(b.addr, "q1", "$queue/work").await;
    let mut q2 = member(b.addr, "q2", "$queue/work").await;
    let mut bad = Raw::connect(b.addr, "bad").await;
    let codes = bad
        .subscribe_many(&[
            ("$share//work", QoS::AtLeastOnce),
            ("$share/g+/work", QoS::AtLeastOnce),
            ("$share/g", QoS::AtLeastOnce),
            ("$share/g/", QoS::AtLeastOnce),
            ("$g/#/work", QoS::AtLeastOnce),
            ("$queue/", QoS::AtLeastOnce),
        ])
        .await;
    assert_eq!(codes, vec![0x80; 6]);
    let mut p = Raw::connect(b.addr, "p").await;
    publish_n(&mut p, "work", 0..40).await;
    let got = vec![
        seqs(&drain(&mut q1, &mut p).await),
        seqs(&drain(&mut q2, &mut p).await),
    ];
    exactly_once(&got, 40);
    // Unsubscribing with the same string leaves the group: q2 then gets everything.
    q1.raw.unsubscribe("$queue/work").await;
    publish_n(&mut p, "work", 0..20).await;
    assert!(drain(&mut q1, &mut p).await.is_empty());
    assert_eq!(
        seqs(&drain(&mut q2, &mut p).await),
        (0..20).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn retained_messages_are_not_sent_to_new_members_unless_configured() {
    for send in [false, true] {
        let b = start_with(move |c| c.retain.send_to_shared_subscribers = send).await;
        let mut p = Raw::connect(b.addr, "p").await;
        p.publish("state", b"kept", QoS::AtLeastOnce, true).await;
        let mut m = member(b.addr, "m", "$share/g/state").await;
        let got = drain(&mut m, &mut p).await;
        assert_eq!(
            got.len(),
            usize::from(send),
            "send_to_shared_subscribers = {send}"
        );
    }
}

#[tokio::test]
async fn a_members_unacknowledged_messages_go_to_another_member_when_it_dies() {
    let b = start_with(|c| {
        c.groups.strategy = GroupStrategy::RoundRobin;
        c.session.max_inflight = 100;
    })
    .await;
    let mut dying = member(b.addr, "dying", "$share/g/jobs").await;
    let mut alive = member(b.addr, "alive", "$share/g/jobs").await;
    let mut p = Raw::connect(b.addr, "p").await;
    publish_n(&mut p, "jobs", 0..20).await;
    // The dying member receives its half and acknowledges nothing.
    let mut unacked = Vec::new();
    for _ in 0..10 {
        match dying.raw.recv().await {
            Packet::Publish(x) => unacked.push(x),
            other => panic!("{other:?}"),
        }
    }
    drop(dying);
    wait_until("dying member gone", || {
        metric(&b, |m| &m.group_redispatched) >= 10
    })
    .await;
    let got = seqs(&drain(&mut alive, &mut p).await);
    exactly_once(std::slice::from_ref(&got), 20);
    assert_eq!(metric(&b, |m| &m.group_dropped), 0);
}

async fn cluster_node(id: &str, seeds: &[SocketAddr], strategy: GroupStrategy) -> TestBroker {
    let id = id.to_owned();
    let seeds = seeds.to_vec();
    start_with(move |c| {
        c.groups.strategy = strategy;
        clustered(c, &id, &seeds);
        c.cluster.ping_interval = Duration::from_millis(200);
    })
    .await
}

async fn group_cluster(strategy: GroupStrategy) -> Vec<TestBroker> {
    let n1 = cluster_node("g1", &[], strategy).await;
    let seed = route(&n1);
    let n2 = cluster_node("g2", &[seed], strategy).await;
    let n3 = cluster_node("g3", &[seed], strategy).await;
    let nodes = vec![n1, n2, n3];
    wait_meshed(&nodes).await;
    nodes
}

/// Members 1/2/3 on nodes 1/2/3, publishers on every node: each message exactly once per group,
/// and per-node shares as returned.
async fn spread_over_cluster(strategy: GroupStrategy, per_publisher: u32) -> Vec<usize> {
    let nodes = group_cluster(strategy).await;
    let mut members: Vec<(usize, Member)> = Vec::new();
    for (n, b) in nodes.iter().enumerate() {
        for k in 0..=n {
            members.push((
                n,
                member(b.addr, &format!("n{n}m{k}"), "$share/cg/jobs/#").await,
            ));
        }
    }
    let mut pubs = Vec::new();
    for (n, b) in nodes.iter().enumerate() {
        pubs.push(Raw::connect(b.addr, &format!("pub{n}")).await);
    }
    for (n, p) in pubs.iter_mut().enumerate() {
        let base = n as u32 * per_publisher;
        publish_n(p, &format!("jobs/{n}"), base..base + per_publisher).await;
    }
    let mut per_node = vec![0usize; 3];
    let mut got = Vec::new();
    for (n, m) in members.iter_mut() {
        let s = seqs(&drain(m, &mut pubs[0]).await);
        per_node[*n] += s.len();
        got.push(s);
    }
    exactly_once(&got, 3 * per_publisher);
    per_node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_round_robin_splits_exactly_by_member_count() {
    // Each publishing node rotates over 6 members (1 + 2 + 3): 60 messages → 10/20/30.
    let per_node = spread_over_cluster(GroupStrategy::RoundRobin, 60).await;
    assert_eq!(per_node, vec![30, 60, 90]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_random_spreads_in_proportion_to_member_counts() {
    let per_node = spread_over_cluster(GroupStrategy::Random, 200).await;
    // Expected 100 / 200 / 300 of 600; the bounds are more than four standard deviations wide.
    let bounds = [(60, 140), (140, 260), (230, 370)];
    for (n, (lo, hi)) in bounds.iter().enumerate() {
        assert!(
            (*lo..=*hi).contains(&per_node[n]),
            "node {n} got {} of 600: {per_node:?}",
            per_node[n]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_members_messages_move_to_a_member_on_another_node() {
    let nodes = group_cluster(GroupStrategy::RoundRobin).await;
    // One member on node 2 that never acknowledges, one on node 3 that does.
    let mut dying = member(nodes[1].addr, "far-dying", "$share/x/jobs").await;
    let mut alive = member(nodes[2].addr, "far-alive", "$share/x/jobs").await;
    let mut p = Raw::connect(nodes[0].addr, "far-pub").await;
    publish_n(&mut p, "jobs", 0..20).await;
    let mut held = 0;
    while held < 10 {
        if let Packet::Publish(_) = dying.raw.recv().await {
            held += 1;
        }
    }
    drop(dying);
    wait_until("handed on", || {
        metric(&nodes[1], |m| &m.group_redispatched) >= 10
    })
    .await;
    // The handed-on messages travel node 2 -> node 3 and a barrier would travel node 1 ->
    // node 3: two routes with no order between them. So all 20 are awaited first (each
    // within WAIT: a lost one fails), then the barrier shows that nothing more (no
    // duplicate) followed.
    let mut got = Vec::new();
    while got.len() < 20 {
        let m = alive.raw.recv_publish().await;
        if m.topic == "jobs" {
            got.push(m);
        }
    }
    got.extend(drain(&mut alive, &mut p).await);
    exactly_once(std::slice::from_ref(&seqs(&got)), 20);
}

/// A persistent member that went away with unacknowledged group messages; `end` ends its
/// session for good (replaced by a clean session, or expired).
async fn persistent_member_ends(b: &TestBroker, end: impl std::future::Future<Output = ()>) {
    let (mut raw, _) = Raw::connect_with(b.addr, connect_packet("keeper", false)).await;
    assert_eq!(raw.subscribe("$share/g/jobs", QoS::AtLeastOnce).await, 1);
    let mut alive = member(b.addr, "alive", "$share/g/jobs").await;
    let mut p = Raw::connect(b.addr, "p").await;
    publish_n(&mut p, "jobs", 0..20).await;
    for _ in 0..10 {
        match raw.recv().await {
            Packet::Publish(_) => {}
            other => panic!("{other:?}"),
        }
    }
    drop(raw);
    end.await;
    wait_until("the persistent member's messages were handed on", || {
        metric(b, |m| &m.group_redispatched) >= 10
    })
    .await;
    let got = seqs(&drain(&mut alive, &mut p).await);
    exactly_once(std::slice::from_ref(&got), 20);
    assert_eq!(metric(b, |m| &m.group_dropped), 0);
}

#[tokio::test]
async fn a_replaced_persistent_members_messages_go_to_another_member() {
    let b = start_with(|c| {
        c.groups.strategy = GroupStrategy::RoundRobin;
        c.session.max_inflight = 100;
    })
    .await;
    let addr = b.addr;
    persistent_member_ends(&b, async move {
        // The same client id comes back with a clean session: the old one is discarded.
        let _fresh = Raw::connect(addr, "keeper").await;
    })
    .await;
}

#[tokio::test]
async fn an_expired_persistent_members_messages_go_to_another_member() {
    let b = start_with(|c| {
        c.groups.strategy = GroupStrategy::RoundRobin;
        c.session.max_inflight = 100;
        c.session.persistent_session_expiry = Duration::from_millis(300);
    })
    .await;
    let ctx = b.broker.context().clone();
    persistent_member_ends(&b, async move {
        wait_until("the persistent session expired", || {
            ctx.sessions.get("keeper").is_none()
        })
        .await;
    })
    .await;
}
