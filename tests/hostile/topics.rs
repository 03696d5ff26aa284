//! Deep, long and boundary topics and filters: refused over the limits, stored and freed
//! without recursion within a raised limit.

use supermq::codec::{ConnAck, Packet, QoS, ReasonCode};

use crate::common::{connect_packet, until_barrier, Raw};
use crate::support::*;

/// With the default `limits.max_topic_levels` (200), a topic or filter deeper than that
/// closes the attacker's connection (as Mosquitto 2.0 does); a SUBSCRIBE may instead be
/// answered with 0x80, with nothing subscribed. 200 levels are accepted.
#[tokio::test]
async fn deep_topics_and_filters_over_the_default_level_limit_are_refused() {
    // $SYS every 200 ms: `subscriptions_current` shows whether a refused filter was stored.
    let mut b = Broker::start(&[("sys", "interval = \"200ms\"")]).await;
    let mut by = Bystander::connect(&b).await;

    for (name, filter) in deep_filters() {
        let what = format!("SUBSCRIBE {name}");
        let r = Raw::connect(b.addr, "attacker").await;
        if let Refused::Failure(r) = subscribe_refused(r, &[filter.as_bytes()], &what).await {
            // Still connected with a clean session: its subscriptions count now, and are
            // gone once it leaves. Nothing stored means no difference.
            let with = sys_subscriptions(b.addr).await;
            r.disconnect().await;
            let without = sys_subscriptions(b.addr).await;
            assert_eq!(with, without, "{what}: a refused filter was stored");
        }
        by.check(&mut b, &what).await;

        let what = format!("UNSUBSCRIBE {name}");
        let mut r = Raw::connect(b.addr, "attacker").await;
        expect_cut(&mut r, &unsubscribe_raw(8, &[filter.as_bytes()]), &what).await;
        by.check(&mut b, &what).await;
    }

    for (name, topic) in deep_topics() {
        for (qos, retain) in [(0, false), (1, false), (1, true), (2, true)] {
            let what = format!("PUBLISH {name} QoS {qos} retain {retain}");
            let mut r = Raw::connect(b.addr, "attacker").await;
            let p = publish_raw(topic.as_bytes(), qos, retain, 9, b"deep");
            expect_cut(&mut r, &p, &what).await;
            by.check(&mut b, &what).await;
        }

        let what = format!("CONNECT with will topic {name}");
        let mut r = Raw::open(b.addr).await;
        let c = connect_raw(
            b"deep-will",
            ConnectFields {
                will: Some((topic.as_bytes(), b"will", 1)),
                ..Default::default()
            },
        );
        expect_cut(&mut r, &c, &what).await;
        by.check(&mut b, &what).await;
    }

    // The boundary: 200 levels are fine, 201 are not.
    let ok_topic = levels(200, "l");
    let mut sub = Raw::connect(b.addr, "at-the-limit").await;
    assert_eq!(
        sub.subscribe_many(&[
            (&ok_topic, QoS::AtLeastOnce),
            ("hostile/barrier", QoS::AtLeastOnce),
        ])
        .await,
        vec![1, 1],
        "a 200-level filter is within the default limit"
    );
    let mut publisher = Raw::connect(b.addr, "publisher").await;
    publisher
        .publish(&ok_topic, b"200 levels", QoS::AtLeastOnce, true)
        .await;
    let p = sub.recv_publish().await;
    assert_eq!(
        (&p.topic[..], &p.payload[..]),
        (&ok_topic[..], &b"200 levels"[..])
    );
    by.check(&mut b, "a 200-level topic").await;

    // 201 levels: "l/.../l/#" would match the 200-level topic, so a stored subscription
    // would show.
    let over_filter = format!("{ok_topic}/#");
    let r = Raw::connect(b.addr, "attacker").await;
    if let Refused::Failure(mut r) =
        subscribe_refused(r, &[over_filter.as_bytes()], "SUBSCRIBE 201 levels").await
    {
        assert_eq!(
            r.subscribe("hostile/attacker-barrier", QoS::AtLeastOnce)
                .await,
            1
        );
        assert_not_delivered(
            &mut publisher,
            &mut r,
            &ok_topic,
            "hostile/attacker-barrier",
            "after SUBACK 0x80 for a 201-level filter",
        )
        .await;
    }
    by.check(&mut b, "SUBSCRIBE 201 levels").await;
    let over_topic = levels(201, "l");
    let mut r = Raw::connect(b.addr, "attacker").await;
    let p = publish_raw(over_topic.as_bytes(), 1, true, 3, b"201 levels");
    expect_cut(&mut r, &p, "PUBLISH 201 levels").await;
    by.check(&mut b, "PUBLISH 201 levels").await;

    // Nothing deep was retained: a "#" subscriber gets the 200-level message only.
    let mut all = Raw::connect(b.addr, "everything").await;
    assert_eq!(all.subscribe("#", QoS::AtLeastOnce).await, 1);
    publisher
        .publish("hostile/barrier", b"barrier", QoS::AtLeastOnce, false)
        .await;
    let got = until_barrier(&mut all, "hostile/barrier").await;
    let retained: Vec<usize> = got
        .iter()
        .filter(|p| p.retain)
        .map(|p| p.topic.split('/').count())
        .collect();
    assert_eq!(
        retained,
        vec![200],
        "retained messages by level count: only the 200-level one may be stored"
    );
    // Clear it.
    publisher
        .publish(&ok_topic, b"", QoS::AtLeastOnce, true)
        .await;
    by.check(&mut b, "the whole deep series").await;
    b.stop().await;
}

/// With `max_topic_levels = 100000` the deep topics are legal: the trie really holds a
/// 65,535-level subscription and the retained tree 30,001- and 65,535-level topics. Matching,
/// retained lookups ("#", "+/.../#"), unsubscribing, clearing retained messages, a deep will,
/// session clean-up and finally dropping everything at shutdown must not recurse per level
/// (a stack overflow kills the process).
#[tokio::test]
async fn deep_topics_within_a_raised_limit_are_stored_and_freed_without_recursion() {
    let mut b = Broker::start(&[("limits", "max_topic_levels = 100000")]).await;
    let mut by = Bystander::connect(&b).await;
    let [(_, t_slash), (_, t_a)] = <[_; 2]>::try_from(deep_topics()).expect("two topics");
    let f_plus = format!("{}#", "+/".repeat(30000));
    let mut publisher = Raw::connect(b.addr, "deep-publisher").await;

    // D holds three deep subscriptions.
    let mut d = Raw::connect(b.addr, "deep-subscriber").await;
    assert_eq!(
        d.subscribe_many(&[
            (&t_slash, QoS::AtLeastOnce),
            (&f_plus, QoS::AtLeastOnce),
            (&t_a, QoS::AtLeastOnce),
            ("deep/barrier/d", QoS::AtLeastOnce),
        ])
        .await,
        vec![1, 1, 1, 1]
    );
    by.check(&mut b, "three deep subscriptions").await;

    // A retained 30,001-level message; D gets it (through "a/..." and "+/.../#").
    publisher
        .publish(&t_a, b"retained a", QoS::AtLeastOnce, true)
        .await;
    publisher
        .publish("deep/barrier/d", b"barrier", QoS::AtLeastOnce, false)
        .await;
    let got = until_barrier(&mut d, "deep/barrier/d").await;
    assert!(
        !got.is_empty() && got.iter().all(|p| p.topic == t_a),
        "D gets the \"a/\" x 30000 message ({} messages)",
        got.len()
    );
    by.check(&mut b, "retained PUBLISH \"a/\" x 30000").await;

    // A 65,535-level message, retained too; D gets it (through "/..." and "+/.../#").
    publisher
        .publish(&t_slash, b"retained slash", QoS::AtLeastOnce, true)
        .await;
    publisher
        .publish("deep/barrier/d", b"barrier", QoS::AtLeastOnce, false)
        .await;
    let got = until_barrier(&mut d, "deep/barrier/d").await;
    assert!(
        !got.is_empty() && got.iter().all(|p| p.topic == t_slash),
        "D gets the \"/\" x 65534 message ({} messages)",
        got.len()
    );
    by.check(&mut b, "retained PUBLISH \"/\" x 65534").await;

    // New subscribers walk the retained tree: "#" visits every node; the deep filters
    // follow one deep path each.
    for (name, filter, want) in [
        ("#", "#".to_owned(), vec![&t_slash, &t_a]),
        (
            "\"+/\" x 30000 + \"#\"",
            f_plus.clone(),
            vec![&t_slash, &t_a],
        ),
        ("\"a/\" x 30000", t_a.clone(), vec![&t_a]),
        ("\"/\" x 65534", t_slash.clone(), vec![&t_slash]),
    ] {
        let mut n = Raw::connect(b.addr, "retained-reader").await;
        assert_eq!(
            n.subscribe_many(&[
                (&filter, QoS::AtLeastOnce),
                ("deep/barrier/n", QoS::AtLeastOnce)
            ])
            .await,
            vec![1, 1]
        );
        publisher
            .publish("deep/barrier/n", b"barrier", QoS::AtLeastOnce, false)
            .await;
        let mut got: Vec<&String> = Vec::new();
        let received = until_barrier(&mut n, "deep/barrier/n").await;
        for p in &received {
            assert!(p.retain, "retained flag on {name}");
            got.push(&p.topic);
        }
        got.sort();
        let mut want = want;
        want.sort();
        assert!(
            got == want,
            "retained messages for {name}: got {} (levels {:?})",
            got.len(),
            got.iter().map(|t| t.split('/').count()).collect::<Vec<_>>()
        );
        n.disconnect().await;
        by.check(&mut b, &format!("retained lookup {name}")).await;
    }

    // A deep will, published when its client vanishes.
    let mut w = Raw::open(b.addr).await;
    w.send_raw(&connect_raw(
        b"deep-will",
        ConnectFields {
            will: Some((t_a.as_bytes(), b"deep will", 1)),
            ..Default::default()
        },
    ))
    .await;
    assert!(matches!(
        w.recv().await,
        Packet::ConnAck(ConnAck {
            reason: ReasonCode::Success,
            ..
        })
    ));
    drop(w);
    let p = d.recv_publish().await;
    assert_eq!(
        (&p.topic[..], &p.payload[..]),
        (&t_a[..], &b"deep will"[..])
    );
    // "+/.../#" matches too: one or two copies, then nothing else.
    publisher
        .publish("deep/barrier/d", b"barrier", QoS::AtLeastOnce, false)
        .await;
    let got = until_barrier(&mut d, "deep/barrier/d").await;
    assert!(got
        .iter()
        .all(|p| p.topic == t_a && &p.payload[..] == b"deep will"));
    by.check(&mut b, "a deep will").await;

    // Unsubscribing removes the deep entries level by level.
    for (name, filter) in [
        ("\"/\" x 65534", &t_slash),
        ("\"+/\" x 30000 + \"#\"", &f_plus),
        ("\"a/\" x 30000", &t_a),
    ] {
        d.unsubscribe(filter).await;
        by.check(&mut b, &format!("UNSUBSCRIBE {name}")).await;
    }
    assert_not_delivered(
        &mut publisher,
        &mut d,
        &t_slash,
        "deep/barrier/d",
        "\"/\" x 65534 after UNSUBSCRIBE",
    )
    .await;
    assert_not_delivered(
        &mut publisher,
        &mut d,
        &t_a,
        "deep/barrier/d",
        "\"a/\" x 30000 after UNSUBSCRIBE",
    )
    .await;
    by.check(&mut b, "publishing to unsubscribed deep topics")
        .await;

    // Clearing a deep retained message prunes its path.
    publisher.publish(&t_a, b"", QoS::AtLeastOnce, true).await;
    let mut n = Raw::connect(b.addr, "retained-reader").await;
    assert_eq!(
        n.subscribe_many(&[
            (&t_a, QoS::AtLeastOnce),
            ("deep/barrier/n", QoS::AtLeastOnce)
        ])
        .await,
        vec![1, 1]
    );
    publisher
        .publish("deep/barrier/n", b"barrier", QoS::AtLeastOnce, false)
        .await;
    let got = until_barrier(&mut n, "deep/barrier/n").await;
    assert!(got.is_empty(), "a cleared retained message was delivered");
    n.disconnect().await;
    by.check(&mut b, "clearing the \"a/\" x 30000 retained message")
        .await;

    // A clean session's deep subscriptions go when it does: the same client id comes back
    // with nothing.
    let mut c = Raw::connect(b.addr, "deep-clean").await;
    assert_eq!(
        c.subscribe_many(&[(&t_slash, QoS::AtLeastOnce), (&f_plus, QoS::AtLeastOnce)])
            .await,
        vec![1, 1]
    );
    c.send_raw(&[0xE0, 0]).await;
    // Before the close, at most the retained "/" x 65534 message (as a subscriber of it).
    let before = c.expect_closed().await;
    assert!(
        before
            .iter()
            .all(|p| matches!(p, Packet::Publish(p) if p.topic == t_slash)),
        "{} unexpected packet(s) before the close",
        before.len()
    );
    let mut c = Raw::connect(b.addr, "deep-clean").await;
    assert_eq!(c.subscribe("deep/barrier/c", QoS::AtLeastOnce).await, 1);
    assert_not_delivered(
        &mut publisher,
        &mut c,
        &t_slash,
        "deep/barrier/c",
        "a clean session's deep subscriptions after it left",
    )
    .await;
    by.check(&mut b, "a clean session with deep subscriptions leaving")
        .await;

    // Left for shutdown to drop: a persistent offline session with deep subscriptions and a
    // queued deep message, a connected one, and the 65,535-level retained message.
    let (mut ps, _) = Raw::connect_with(b.addr, connect_packet("deep-persistent", false)).await;
    assert_eq!(
        ps.subscribe_many(&[(&t_slash, QoS::AtLeastOnce), (&f_plus, QoS::AtLeastOnce)])
            .await,
        vec![1, 1]
    );
    ps.disconnect().await;
    publisher
        .publish(&t_slash, b"queued", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(d.subscribe(&t_slash, QoS::AtLeastOnce).await, 1);
    // D gets the retained one.
    let p = d.recv_publish().await;
    assert_eq!(p.topic, t_slash);
    by.check(&mut b, "deep state left for shutdown").await;
    b.stop().await;
}

/// Configured limits are enforced exactly at their boundaries: `max_topic_levels = 5`,
/// `max_topic_length = 100` (bytes), for topic names, filters and the will topic.
#[tokio::test]
async fn configured_topic_limits_hold_at_the_boundary() {
    let mut b = Broker::start(&[
        ("limits", "max_topic_levels = 5"),
        ("limits", "max_topic_length = 100"),
    ])
    .await;
    let mut by = Bystander::connect(&b).await;
    let mut publisher = Raw::connect(b.addr, "publisher").await;

    let five = "a/b/c/d/e";
    let long_ok = "x".repeat(100);
    let mut sub = Raw::connect(b.addr, "within").await;
    assert_eq!(
        sub.subscribe_many(&[
            (five, QoS::AtLeastOnce),
            ("+/+/+/+/#", QoS::AtLeastOnce),
            (&long_ok, QoS::AtLeastOnce),
            ("limits/barrier", QoS::AtLeastOnce),
        ])
        .await,
        vec![1, 1, 1, 1],
        "5 levels and 100 bytes are within the limits"
    );
    publisher.publish(five, b"5", QoS::AtLeastOnce, false).await;
    publisher
        .publish(&long_ok, b"100", QoS::AtLeastOnce, false)
        .await;
    publisher
        .publish("limits/barrier", b"barrier", QoS::AtLeastOnce, false)
        .await;
    let got = until_barrier(&mut sub, "limits/barrier").await;
    assert!(got.iter().any(|p| p.topic == five));
    assert!(got.iter().any(|p| p.topic == long_ok));
    by.check(&mut b, "topics at the limits").await;

    let six = "a/b/c/d/e/f";
    let long_over = "x".repeat(101);
    for (name, topic) in [("6 levels", six), ("101 bytes", &long_over[..])] {
        let what = format!("PUBLISH {name}");
        let mut r = Raw::connect(b.addr, "attacker").await;
        expect_cut(
            &mut r,
            &publish_raw(topic.as_bytes(), 1, false, 1, b"x"),
            &what,
        )
        .await;
        by.check(&mut b, &what).await;

        let what = format!("will topic {name}");
        let mut r = Raw::open(b.addr).await;
        let c = connect_raw(
            b"attacker",
            ConnectFields {
                will: Some((topic.as_bytes(), b"will", 0)),
                ..Default::default()
            },
        );
        expect_cut(&mut r, &c, &what).await;
        by.check(&mut b, &what).await;

        let what = format!("UNSUBSCRIBE {name}");
        let mut r = Raw::connect(b.addr, "attacker").await;
        expect_cut(&mut r, &unsubscribe_raw(2, &[topic.as_bytes()]), &what).await;
        by.check(&mut b, &what).await;
    }

    // Over-limit filters that would match a legal topic: if the broker answers 0x80 rather
    // than closing, that topic must not reach the attacker.
    let long_filter = format!("{}/#", "x".repeat(99)); // 101 bytes, matches "x" x 99
    assert_eq!(long_filter.len(), 101);
    for (name, filter, probe) in [
        ("6 levels", "a/b/c/d/e/#".to_owned(), five.to_owned()),
        ("101 bytes", long_filter, "x".repeat(99)),
    ] {
        let what = format!("SUBSCRIBE {name}");
        let r = Raw::connect(b.addr, "attacker").await;
        if let Refused::Failure(mut r) = subscribe_refused(r, &[filter.as_bytes()], &what).await {
            assert_eq!(r.subscribe("limits/barrier", QoS::AtLeastOnce).await, 1);
            assert_not_delivered(&mut publisher, &mut r, &probe, "limits/barrier", &what).await;
        }
        by.check(&mut b, &what).await;
    }
    b.stop().await;
}
