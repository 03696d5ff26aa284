//! Cluster node tests: per-link interest (applied to the router's trie), registration,
//! barriers and forwarding.

use bytes::BytesMut;

use super::*;

fn cluster() -> Cluster {
    let cfg = crate::config::ClusterConfig {
        node_id: "a".into(),
        ..Default::default()
    };
    Cluster::new(&cfg, "127.0.0.1:1".into(), Arc::new(Metrics::default()))
}

fn router() -> Router {
    let metrics = Arc::new(Metrics::default());
    let retained = crate::store::RetainedStore::new(true, 10, 1024, 1 << 20, metrics.clone());
    Router::new(retained, metrics)
}

/// The peers whose interest `topic` matches in the router's trie.
fn matches(r: &Router, topic: &str) -> Vec<String> {
    r.remote_matches(topic)
        .iter()
        .map(|n| n.to_string())
        .collect()
}

fn key(g: &str) -> GroupKey {
    GroupKey {
        group: Arc::from(g),
        filter: Arc::from("t/#"),
    }
}

/// Registers a link from peer `b` (same process each time, dialled by `b`).
fn link(c: &Cluster, b: &Arc<str>, sd: &CancellationToken) -> Registered {
    c.register(b.clone(), 9, b.clone(), "x".into(), sd).unwrap()
}

#[test]
fn a_replacing_link_keeps_interest_until_its_snapshot_ends() {
    let c = cluster();
    let r = router();
    let sd = CancellationToken::new();
    let b: Arc<str> = Arc::from("b");
    let first = link(&c, &b, &sd);
    c.on_sub(&b, first.link_id, "kept/#".into(), &r);
    c.on_sub(&b, first.link_id, "dropped".into(), &r);
    assert!(c.on_group(&b, first.link_id, &key("g1"), 2));
    assert!(c.on_group(&b, first.link_id, &key("g2"), 1));

    // The same peer process links again (its old link is dead but not yet noticed).
    let second = link(&c, &b, &sd);
    assert!(first.kick.is_cancelled());
    assert_eq!(matches(&r, "kept/1"), ["b"], "no gap before the snapshot");
    assert_eq!(matches(&r, "dropped"), ["b"]);
    // Frames still arriving on the replaced link change nothing.
    c.on_unsub(&b, first.link_id, "kept/#", &r);
    assert_eq!(matches(&r, "kept/1"), ["b"]);

    // The snapshot repeats `kept/#` and g1, then ends.
    c.on_sub(&b, second.link_id, "kept/#".into(), &r);
    assert!(c.on_group(&b, second.link_id, &key("g1"), 3));
    let withdrawn = c.on_snapshot_end(&b, second.link_id, &r);
    assert_eq!(withdrawn, vec![key("g2")]);
    assert_eq!(matches(&r, "kept/1"), ["b"]);
    assert!(matches(&r, "dropped").is_empty(), "not repeated: withdrawn");

    // The kept interest now belongs to the new link: its UNSUB and link-down remove it.
    c.on_unsub(&b, second.link_id, "kept/#", &r);
    assert!(matches(&r, "kept/1").is_empty());
    c.on_sub(&b, second.link_id, "again".into(), &r);
    assert_eq!(c.unregister(&b, second.link_id, &r), vec![key("g1")]);
    assert!(matches(&r, "again").is_empty());
    assert!(!c.is_linked("b"));
}

#[tokio::test]
async fn a_suback_waits_only_while_advertised_interest_is_unconfirmed() {
    let c = Arc::new(cluster());
    let sd = CancellationToken::new();
    // No peer: nothing to wait for, whatever changed.
    c.interest_add("alone");
    assert!(c.interest_barrier().is_none());

    let b: Arc<str> = Arc::from("b");
    let mut reg = link(&c, &b, &sd);
    // Nothing advertised since b linked (its snapshot had everything): no wait.
    assert!(
        c.interest_barrier().is_none(),
        "no interest change: no wait"
    );

    // A new filter is advertised: its SUBACK waits for b's answer to the SYNC behind it.
    c.interest_add("new");
    let barrier = c.interest_barrier().expect("interest sent: wait");
    assert_eq!(
        reg.rx.try_recv().ok(),
        Some(frame::to_bytes(&Frame::Sub("new".into())))
    );
    let Ok(Some(Frame::Sync(seq))) = frame::decode(&mut BytesMut::from(
        &reg.rx.try_recv().expect("SYNC queued")[..],
    )) else {
        panic!("SYNC expected after the SUB");
    };
    // Another client subscribing to the same filter before b answered (the router tells
    // the cluster nothing: not the first subscriber) must wait too: the SUB it relies on
    // may still be on its way.
    let second = c.interest_barrier().expect("unconfirmed interest: wait");
    drop(second);
    c.on_sync_ack(&b, seq);
    tokio::time::timeout(Duration::from_secs(1), barrier)
        .await
        .expect("resolved by the answer, not the timeout");
    // Confirmed: a subscriber to the same filter needs no wait.
    assert!(c.interest_barrier().is_none());
    assert!(c.syncs.lock().is_empty(), "finished waits are withdrawn");
}

#[test]
fn a_link_down_before_the_snapshot_ends_purges_carried_interest_too() {
    let c = cluster();
    let r = router();
    let sd = CancellationToken::new();
    let b: Arc<str> = Arc::from("b");
    let first = link(&c, &b, &sd);
    c.on_sub(&b, first.link_id, "t/1".into(), &r);
    assert!(c.on_group(&b, first.link_id, &key("g"), 1));
    let second = link(&c, &b, &sd);
    assert_eq!(c.unregister(&b, second.link_id, &r), vec![key("g")]);
    assert!(matches(&r, "t/1").is_empty());
}

/// The message frame queued for `reg`'s peer, if any.
fn queued_msg(reg: &mut Registered) -> Option<RouteMsg> {
    let bytes = reg.rx.try_recv().ok()?;
    match frame::decode(&mut BytesMut::from(&bytes[..])) {
        Ok(Some(Frame::Msg(m))) => Some(m),
        other => panic!("message frame expected, got {other:?}"),
    }
}

#[test]
fn forwarded_messages_carry_properties_and_remaining_expiry_and_expired_ones_stay() {
    use crate::codec::{PayloadFormat, Properties, PropertyValues, QoS};
    let c = cluster();
    let sd = CancellationToken::new();
    let b: Arc<str> = Arc::from("b");
    let mut reg = link(&c, &b, &sd);
    let now = Instant::now();
    let mut msg = Message::new("t/1", Bytes::from_static(b"x"), QoS::AtLeastOnce, false);
    msg.properties = Properties::from(PropertyValues {
        payload_format_indicator: Some(PayloadFormat::Utf8),
        content_type: Some("text/plain".into()),
        response_topic: Some("reply/1".into()),
        correlation_data: Some(Bytes::from_static(b"\x00\x01")),
        user_properties: vec![("k".into(), "1".into()), ("k".into(), "2".into())],
        ..PropertyValues::default()
    });
    msg.expires = Some(now + Duration::from_secs(60));
    let picks = RemotePicks::new();
    assert!(c
        .forward(&msg, 7, std::slice::from_ref(&b), &picks)
        .is_none());
    let m = queued_msg(&mut reg).expect("forwarded");
    assert_eq!(m.properties, msg.properties);
    assert!(
        m.expiry_ms > 59_000 && m.expiry_ms <= 60_000,
        "{}",
        m.expiry_ms
    );

    // Expired: not forwarded at all, nor handed on for a group.
    msg.expires = Some(now);
    c.forward(&msg, 8, std::slice::from_ref(&b), &picks);
    c.forward_group(&b, &msg, &key("g"));
    assert!(queued_msg(&mut reg).is_none(), "expired: nothing queued");

    // Never expires: 0.
    msg.expires = None;
    c.forward_group(&b, &msg, &key("g"));
    let m = queued_msg(&mut reg).expect("handed on");
    assert_eq!((m.expiry_ms, m.redispatched), (0, true));
    assert_eq!(m.properties, msg.properties);
}
