//! Interoperability with rumqttc's MQTT 5 client (`rumqttc::v5`), an independent
//! implementation: the broker runs in this process and every client is a `v5::AsyncClient`
//! whose `EventLoop` is polled by a task forwarding what it sees into channels. Tests wait on
//! those channels with timeouts; where a test must show that something did *not* arrive, a
//! QoS 1 marker published afterwards proves the queue is drained up to that point.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{start, start_with, TestBroker, WAIT};
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, ConnectReturnCode, Filter, Packet, PubAckReason, Publish, PublishProperties,
    SubscribeProperties, SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the event-loop task reports besides incoming PUBLISH packets.
#[derive(Debug)]
enum Ctl {
    ConnAck(ConnAck),
    SubAck(Vec<SubscribeReasonCode>),
    PubAck(PubAckReason),
    /// The event loop returned an error; the task has stopped polling (polling again would
    /// make rumqttc reconnect on its own).
    Ended(#[allow(dead_code)] String),
}

struct Client {
    client: AsyncClient,
    publishes: mpsc::UnboundedReceiver<Publish>,
    ctl: mpsc::UnboundedReceiver<Ctl>,
    /// Packet ids of PUBLISH packets this client wrote.
    sent: mpsc::UnboundedReceiver<u16>,
    task: JoinHandle<()>,
    connack: ConnAck,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn drive(
    mut el: EventLoop,
    pubs: mpsc::UnboundedSender<Publish>,
    ctl: mpsc::UnboundedSender<Ctl>,
    sent: mpsc::UnboundedSender<u16>,
) {
    loop {
        let c = match el.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = pubs.send(p);
                continue;
            }
            Ok(Event::Incoming(Packet::ConnAck(c))) => Ctl::ConnAck(c),
            Ok(Event::Incoming(Packet::SubAck(s))) => Ctl::SubAck(s.return_codes),
            Ok(Event::Incoming(Packet::PubAck(a))) => Ctl::PubAck(a.reason),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let _ = sent.send(pkid);
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                let _ = ctl.send(Ctl::Ended(e.to_string()));
                return;
            }
        };
        let _ = ctl.send(c);
    }
}

fn options(b: &TestBroker, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, b.addr.ip().to_string(), b.addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

impl Client {
    async fn connect_with(opts: MqttOptions) -> Client {
        let (client, el) = AsyncClient::new(opts, 256);
        let (ptx, publishes) = mpsc::unbounded_channel();
        let (ctx, mut ctl) = mpsc::unbounded_channel();
        let (stx, sent) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(el, ptx, ctx, stx));
        let connack = match tokio::time::timeout(WAIT, ctl.recv()).await {
            Ok(Some(Ctl::ConnAck(a))) => a,
            other => panic!("expected CONNACK, got {other:?}"),
        };
        assert_eq!(connack.code, ConnectReturnCode::Success);
        Client {
            client,
            publishes,
            ctl,
            sent,
            task,
            connack,
        }
    }

    async fn connect(b: &TestBroker, id: &str) -> Client {
        Client::connect_with(options(b, id)).await
    }

    async fn next_ctl(&mut self, what: &str) -> Ctl {
        match tokio::time::timeout(WAIT, self.ctl.recv()).await {
            Ok(Some(c)) => c,
            Ok(None) => panic!("event loop gone while waiting for {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }

    async fn suback(&mut self) -> Vec<SubscribeReasonCode> {
        match self.next_ctl("SUBACK").await {
            Ctl::SubAck(codes) => codes,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    async fn puback(&mut self) -> PubAckReason {
        match self.next_ctl("PUBACK").await {
            Ctl::PubAck(r) => r,
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }

    async fn subscribe(&mut self, filter: &str, id: Option<usize>) {
        let props = SubscribeProperties {
            id,
            user_properties: vec![],
        };
        self.client
            .subscribe_with_properties(filter, QoS::AtLeastOnce, props)
            .await
            .expect("subscribe");
        assert_eq!(
            self.suback().await,
            vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
        );
    }

    /// Publishes at QoS 1 and waits for its PUBACK; returns the reason.
    async fn publish(
        &mut self,
        topic: &str,
        payload: &str,
        props: PublishProperties,
    ) -> PubAckReason {
        self.client
            .publish_with_properties(
                topic,
                QoS::AtLeastOnce,
                false,
                Bytes::from(payload.to_owned()),
                props,
            )
            .await
            .expect("publish");
        self.puback().await
    }

    async fn recv(&mut self) -> Publish {
        match tokio::time::timeout(WAIT, self.publishes.recv()).await {
            Ok(Some(p)) => p,
            Ok(None) => panic!("event loop gone while waiting for a message"),
            Err(_) => panic!("no message within {WAIT:?}"),
        }
    }

    /// Messages received before the payload `barrier` on `topic`.
    async fn until_barrier(&mut self, topic: &str) -> Vec<Publish> {
        let mut before = vec![];
        loop {
            let p = self.recv().await;
            if p.topic == topic.as_bytes() && p.payload == "barrier" {
                return before;
            }
            before.push(p);
        }
    }
}

fn props_of(p: &Publish) -> PublishProperties {
    p.properties.clone().unwrap_or_default()
}

#[tokio::test]
async fn connack_properties() {
    let b = start().await;
    let c = Client::connect(&b, "r5-connack").await;
    let p = c.connack.properties.clone().expect("CONNACK properties");
    assert_eq!(p.receive_max, Some(20));
    assert_eq!(p.topic_alias_max, Some(10));
}

#[tokio::test]
async fn publish_properties_round_trip() {
    let b = start().await;
    let mut sub = Client::connect(&b, "r5-props-sub").await;
    let mut publ = Client::connect(&b, "r5-props-pub").await;
    sub.subscribe("r5/props/#", None).await;
    let sent = PublishProperties {
        user_properties: vec![
            ("k".into(), "v".into()),
            ("k".into(), "w".into()),
            ("other".into(), "x".into()),
        ],
        content_type: Some("text/plain".into()),
        response_topic: Some("r5/props/reply".into()),
        correlation_data: Some(Bytes::from_static(b"\x00corr")),
        payload_format_indicator: Some(1),
        ..Default::default()
    };
    assert_eq!(
        publ.publish("r5/props/a", "hello", sent.clone()).await,
        PubAckReason::Success
    );
    let m = sub.recv().await;
    assert_eq!(m.payload, "hello");
    let got = props_of(&m);
    assert_eq!(
        got.user_properties, sent.user_properties,
        "order and duplicates kept"
    );
    assert_eq!(got.content_type, sent.content_type);
    assert_eq!(got.response_topic, sent.response_topic);
    assert_eq!(got.correlation_data, sent.correlation_data);
    assert_eq!(got.payload_format_indicator, Some(1));
}

#[tokio::test]
async fn message_expiry_interval_is_forwarded_not_above_what_was_sent() {
    let b = start().await;
    let mut sub = Client::connect(&b, "r5-exp-sub").await;
    let mut publ = Client::connect(&b, "r5-exp-pub").await;
    sub.subscribe("r5/exp", None).await;
    let props = PublishProperties {
        message_expiry_interval: Some(20),
        ..Default::default()
    };
    publ.publish("r5/exp", "e", props).await;
    let exp = props_of(&sub.recv().await).message_expiry_interval;
    assert!(matches!(exp, Some(1..=20)), "expiry {exp:?}");
    publ.publish("r5/exp", "n", PublishProperties::default())
        .await;
    assert_eq!(props_of(&sub.recv().await).message_expiry_interval, None);
}

#[tokio::test]
async fn subscription_identifiers_and_no_matching_subscribers() {
    let b = start().await;
    let mut sub = Client::connect(&b, "r5-subid").await;
    let mut publ = Client::connect(&b, "r5-subid-pub").await;
    sub.subscribe("r5/subid/+", Some(3)).await;
    sub.subscribe("r5/subid/#", Some(1000)).await;
    publ.publish("r5/subid/x", "x", PublishProperties::default())
        .await;
    let mut ids = props_of(&sub.recv().await).subscription_identifiers;
    ids.sort();
    assert_eq!(ids, vec![3, 1000]);
    assert_eq!(
        publ.publish("r5/nobody", "x", PublishProperties::default())
            .await,
        PubAckReason::NoMatchingSubscribers
    );
}

#[tokio::test]
async fn topic_aliases_both_ways() {
    let b = start().await;
    // The subscriber allows 4 aliases from the broker; rumqttc resolves them to topics.
    let mut o = options(&b, "r5-alias-sub");
    o.set_topic_alias_max(Some(4));
    let mut sub = Client::connect_with(o).await;
    let mut publ = Client::connect(&b, "r5-alias-pub").await;
    sub.subscribe("r5/alias/+", None).await;
    let alias = |a| PublishProperties {
        topic_alias: Some(a),
        ..Default::default()
    };
    publ.publish("r5/alias/one", "1", alias(1)).await;
    publ.publish("", "2", alias(1)).await;
    publ.publish("r5/alias/two", "3", alias(1)).await;
    publ.publish("", "4", alias(1)).await;
    let mut got = vec![];
    for _ in 0..4 {
        got.push(sub.recv().await);
    }
    let seen: Vec<(&[u8], &[u8])> = got.iter().map(|p| (&p.topic[..], &p.payload[..])).collect();
    assert_eq!(
        seen,
        vec![
            (&b"r5/alias/one"[..], &b"1"[..]),
            (b"r5/alias/one", b"2"),
            (b"r5/alias/two", b"3"),
            (b"r5/alias/two", b"4"),
        ]
    );
    // The broker set up its own aliases towards the subscriber, within its maximum (rumqttc
    // keeps the alias property of a PUBLISH whose topic it resolved).
    let aliases: Vec<Option<u16>> = got.iter().map(|p| props_of(p).topic_alias).collect();
    assert!(
        aliases.iter().all(|a| matches!(a, Some(1..=4))),
        "aliases {aliases:?}"
    );
}

#[tokio::test]
async fn shared_subscription_delivers_each_message_once() {
    let b = start().await;
    let mut a = Client::connect(&b, "r5-share-a").await;
    let mut c = Client::connect(&b, "r5-share-b").await;
    let mut publ = Client::connect(&b, "r5-share-pub").await;
    for s in [&mut a, &mut c] {
        s.subscribe("$share/g/r5/share/t", None).await;
        s.subscribe("r5/share/marker", None).await;
    }
    let n = 40;
    for i in 0..n {
        publ.publish("r5/share/t", &i.to_string(), PublishProperties::default())
            .await;
    }
    publ.publish("r5/share/marker", "barrier", PublishProperties::default())
        .await;
    let mut all: Vec<u32> = vec![];
    for s in [&mut a, &mut c] {
        for p in s.until_barrier("r5/share/marker").await {
            all.push(std::str::from_utf8(&p.payload).unwrap().parse().unwrap());
        }
    }
    all.sort();
    assert_eq!(all, (0..n).collect::<Vec<_>>());
}

/// A broker with Receive Maximum 5 and a subscriber with Receive Maximum 3 and manual acks:
/// 200 QoS 1 messages all arrive in order, the publisher never has more than 5 in flight (the
/// broker would disconnect it with 0x93) and the subscriber never more than 3 unacknowledged.
#[tokio::test]
async fn qos1_burst_with_small_receive_maximum() {
    let b = start_with(|c| c.limits.receive_maximum = 5).await;
    let mut o = options(&b, "r5-burst-sub");
    o.set_receive_maximum(Some(3));
    o.set_manual_acks(true);
    let mut sub = Client::connect_with(o).await;
    sub.client
        .subscribe_many([Filter::new("r5/burst", QoS::AtLeastOnce)])
        .await
        .expect("subscribe");
    sub.suback().await;
    let mut publ = Client::connect(&b, "r5-burst-pub").await;
    let rm = publ.connack.properties.as_ref().and_then(|p| p.receive_max);
    assert_eq!(rm, Some(5));
    let n = 200u32;
    let sender = publ.client.clone();
    let producer = tokio::spawn(async move {
        for i in 0..n {
            sender
                .publish("r5/burst", QoS::AtLeastOnce, false, i.to_string())
                .await
                .expect("publish");
        }
    });
    let mut got = vec![];
    let mut unacked: Vec<Publish> = vec![];
    let mut checked_full_window = false;
    while got.len() < n as usize {
        let p = sub.recv().await;
        got.push(
            std::str::from_utf8(&p.payload)
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
        unacked.push(p);
        assert!(unacked.len() <= 3, "more than 3 unacknowledged in flight");
        if unacked.len() == 3 {
            if !checked_full_window {
                // The window is full: nothing more may come before an acknowledgement.
                let extra =
                    tokio::time::timeout(Duration::from_millis(300), sub.publishes.recv()).await;
                assert!(extra.is_err(), "a 4th message beyond Receive Maximum 3");
                checked_full_window = true;
            }
            for p in unacked.drain(..) {
                sub.client.ack(&p).await.expect("ack");
            }
        }
    }
    for p in unacked.drain(..) {
        sub.client.ack(&p).await.expect("ack");
    }
    tokio::time::timeout(WAIT, producer)
        .await
        .expect("producer done")
        .unwrap();
    assert_eq!(got, (0..n).collect::<Vec<_>>(), "all delivered in order");
    let mut acks = 0;
    while acks < n {
        match publ.next_ctl("PUBACK").await {
            Ctl::PubAck(_) => acks += 1,
            other => panic!("publisher: {other:?}"),
        }
    }
    let mut written = 0;
    while publ.sent.try_recv().is_ok() {
        written += 1;
    }
    assert_eq!(written, n, "each message written once, none retransmitted");
}
