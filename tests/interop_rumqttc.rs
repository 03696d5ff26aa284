//! Interoperability with rumqttc, an independent MQTT 3.1.1 client: the broker runs in this
//! process and every client is a `rumqttc::AsyncClient` whose `EventLoop` is polled by a task
//! that forwards what it sees into channels. Tests wait on those channels with timeouts; where
//! a test must show that something did *not* arrive, a QoS 1 marker published afterwards on
//! the same connection proves the queue is drained up to that point (queues keep order).

mod common;

use std::time::Duration;

use common::{metric, start, wait_until, TestBroker, WAIT};
use rumqttc::{
    AsyncClient, ConnAck, ConnectReturnCode, Event, EventLoop, LastWill, MqttOptions, Outgoing,
    Packet, Publish, QoS, SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the event-loop task reports besides incoming PUBLISH packets.
#[derive(Debug)]
enum Ctl {
    ConnAck(ConnAck),
    SubAck(Vec<SubscribeReasonCode>),
    UnsubAck,
    PubAck,
    PubComp,
    /// DISCONNECT was written to the socket.
    SentDisconnect,
    /// The event loop returned an error (connection closed or refused); the task has stopped
    /// polling, because polling again would make rumqttc reconnect on its own.
    Ended(String),
}

/// One rumqttc client and the channels fed by its event-loop task.
struct Client {
    client: AsyncClient,
    publishes: mpsc::UnboundedReceiver<Publish>,
    ctl: mpsc::UnboundedReceiver<Ctl>,
    task: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `el` until it fails, forwarding incoming PUBLISH packets and other events.
async fn drive(
    mut el: EventLoop,
    pubs: mpsc::UnboundedSender<Publish>,
    ctl: mpsc::UnboundedSender<Ctl>,
) {
    loop {
        let c = match el.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = pubs.send(p);
                continue;
            }
            Ok(Event::Incoming(Packet::ConnAck(c))) => Ctl::ConnAck(c),
            Ok(Event::Incoming(Packet::SubAck(s))) => Ctl::SubAck(s.return_codes),
            Ok(Event::Incoming(Packet::UnsubAck(_))) => Ctl::UnsubAck,
            Ok(Event::Incoming(Packet::PubAck(_))) => Ctl::PubAck,
            Ok(Event::Incoming(Packet::PubComp(_))) => Ctl::PubComp,
            Ok(Event::Outgoing(Outgoing::Disconnect)) => Ctl::SentDisconnect,
            Ok(_) => continue,
            Err(e) => {
                let _ = ctl.send(Ctl::Ended(e.to_string()));
                return;
            }
        };
        let _ = ctl.send(c);
    }
}

/// Options for client `id` of the broker `b`, clean session, keep-alive 30 s.
fn options(b: &TestBroker, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, b.addr.ip().to_string(), b.addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

impl Client {
    /// Connects with `opts` and waits for CONNACK 0; returns the client and session-present.
    async fn connect_with(opts: MqttOptions) -> (Client, bool) {
        let (client, el) = AsyncClient::new(opts, 16);
        let (ptx, publishes) = mpsc::unbounded_channel();
        let (ctx, ctl) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(el, ptx, ctx));
        let mut c = Client {
            client,
            publishes,
            ctl,
            task,
        };
        let ack = match c.next_ctl("CONNACK").await {
            Ctl::ConnAck(a) => a,
            other => panic!("expected CONNACK, got {other:?}"),
        };
        assert_eq!(ack.code, ConnectReturnCode::Success);
        (c, ack.session_present)
    }

    /// A clean-session client called `id`.
    async fn connect(b: &TestBroker, id: &str) -> Client {
        let (c, present) = Client::connect_with(options(b, id)).await;
        assert!(!present, "a clean session is never present [MQTT-3.2.2-1]");
        c
    }

    /// The next control event, failing the test after `WAIT`.
    async fn next_ctl(&mut self, what: &str) -> Ctl {
        match tokio::time::timeout(WAIT, self.ctl.recv()).await {
            Ok(Some(c)) => c,
            Ok(None) => panic!("event loop gone while waiting for {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }

    /// Waits for the control event `want` picks, skipping others; the connection ending first
    /// fails the test.
    async fn expect_ctl(&mut self, what: &str, want: impl Fn(&Ctl) -> bool) -> Ctl {
        loop {
            let c = self.next_ctl(what).await;
            if want(&c) {
                return c;
            }
            if let Ctl::Ended(e) = c {
                panic!("connection ended while waiting for {what}: {e}");
            }
        }
    }

    /// Subscribes and waits for the SUBACK; returns its return codes.
    async fn subscribe_many(&mut self, filters: &[(&str, QoS)]) -> Vec<SubscribeReasonCode> {
        let filters = filters
            .iter()
            .map(|(f, q)| rumqttc::SubscribeFilter::new(f.to_string(), *q));
        self.client
            .subscribe_many(filters)
            .await
            .expect("subscribe request");
        match self
            .expect_ctl("SUBACK", |c| matches!(c, Ctl::SubAck(_)))
            .await
        {
            Ctl::SubAck(codes) => codes,
            _ => unreachable!(),
        }
    }

    /// Subscribes to one filter and checks it was granted at `qos`.
    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let codes = self.subscribe_many(&[(filter, qos)]).await;
        assert_eq!(codes, vec![SubscribeReasonCode::Success(qos)], "{filter}");
    }

    async fn unsubscribe(&mut self, filter: &str) {
        self.client
            .unsubscribe(filter)
            .await
            .expect("unsubscribe request");
        self.expect_ctl("UNSUBACK", |c| matches!(c, Ctl::UnsubAck))
            .await;
    }

    /// Publishes and, for QoS 1 and 2, waits until the broker completed the flow (so the
    /// message has been routed before this returns).
    async fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        self.client
            .publish(topic, qos, retain, payload.to_vec())
            .await
            .expect("publish request");
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                self.expect_ctl("PUBACK", |c| matches!(c, Ctl::PubAck))
                    .await;
            }
            QoS::ExactlyOnce => {
                self.expect_ctl("PUBCOMP", |c| matches!(c, Ctl::PubComp))
                    .await;
            }
        }
    }

    /// The next incoming PUBLISH (rumqttc has already acknowledged it).
    async fn recv(&mut self) -> Publish {
        match tokio::time::timeout(WAIT, self.publishes.recv()).await {
            Ok(Some(p)) => p,
            Ok(None) => panic!("event loop gone while waiting for a PUBLISH"),
            Err(_) => panic!("no PUBLISH within {WAIT:?}"),
        }
    }

    /// Receives until the QoS 1 marker `barrier` on `topic`; returns what came before it.
    async fn until_barrier(&mut self, topic: &str) -> Vec<Publish> {
        let mut before = Vec::new();
        loop {
            let p = self.recv().await;
            if p.topic == topic && &p.payload[..] == b"barrier" {
                return before;
            }
            before.push(p);
        }
    }

    /// Waits until the connection has ended (closed by the broker or refused).
    async fn expect_ended(&mut self) -> String {
        match self
            .expect_ctl("end of connection", |c| matches!(c, Ctl::Ended(_)))
            .await
        {
            Ctl::Ended(e) => e,
            _ => unreachable!(),
        }
    }

    /// A normal disconnect: DISCONNECT is sent and the broker closes the connection.
    async fn disconnect(mut self) {
        self.client.disconnect().await.expect("disconnect request");
        self.expect_ctl("DISCONNECT sent", |c| matches!(c, Ctl::SentDisconnect))
            .await;
        match tokio::time::timeout(WAIT, self.ctl.recv()).await {
            Ok(Some(Ctl::Ended(_)) | None) => {}
            Ok(Some(other)) => panic!("expected the connection to end, got {other:?}"),
            Err(_) => panic!("broker kept the connection open after DISCONNECT"),
        }
    }

    /// Ends the connection without DISCONNECT: aborting the task drops the event loop and
    /// with it the socket, as when a client process dies.
    async fn drop_abruptly(mut self) {
        self.task.abort();
        let r = (&mut self.task).await;
        assert!(
            r.is_err_and(|e| e.is_cancelled()),
            "event loop task aborted"
        );
    }
}

/// Topic, payload and QoS of a received message, for compact assertions.
fn summary(p: &Publish) -> (&str, &[u8], QoS) {
    (p.topic.as_str(), &p.payload[..], p.qos)
}

fn min_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) <= (b as u8) {
        a
    } else {
        b
    }
}

const ALL_QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

#[tokio::test]
async fn pub_sub_at_each_qos_is_delivered_at_the_minimum_qos() {
    let b = start().await;
    let mut sub = Client::connect(&b, "sub").await;
    let codes = sub
        .subscribe_many(&[
            ("q/0", QoS::AtMostOnce),
            ("q/1", QoS::AtLeastOnce),
            ("q/2", QoS::ExactlyOnce),
        ])
        .await;
    assert_eq!(
        codes,
        ALL_QOS.map(SubscribeReasonCode::Success).to_vec(),
        "every QoS is granted as asked"
    );
    let mut publ = Client::connect(&b, "pub").await;
    for sub_qos in ALL_QOS {
        for pub_qos in ALL_QOS {
            let topic = format!("q/{}", sub_qos as u8);
            let payload = format!("pub {} sub {}", pub_qos as u8, sub_qos as u8);
            publ.publish(&topic, payload.as_bytes(), pub_qos, false)
                .await;
            let p = sub.recv().await;
            assert_eq!(
                summary(&p),
                (
                    topic.as_str(),
                    payload.as_bytes(),
                    min_qos(pub_qos, sub_qos)
                ),
                "delivered at min(publish QoS, subscription QoS) [MQTT-3.8.4-6]"
            );
            assert!(!p.retain && !p.dup, "{p:?}");
        }
    }
}

#[tokio::test]
async fn a_thousand_qos1_messages_arrive_in_order_without_loss_or_duplicates() {
    const N: u32 = 1000;
    let b = start().await;
    let mut sub = Client::connect(&b, "sub").await;
    sub.subscribe("seq", QoS::AtLeastOnce).await;
    let mut publ = Client::connect(&b, "pub").await;
    // The requests are queued without waiting for each PUBACK, so rumqttc keeps up to its
    // in-flight window outstanding, as a real producer would.
    let producer = publ.client.clone();
    let sending = tokio::spawn(async move {
        for i in 0..N {
            producer
                .publish("seq", QoS::AtLeastOnce, false, i.to_be_bytes().to_vec())
                .await
                .expect("publish request");
        }
    });
    for i in 0..N {
        let p = sub.recv().await;
        assert_eq!(p.qos, QoS::AtLeastOnce);
        let got = u32::from_be_bytes(p.payload[..].try_into().expect("4-byte payload"));
        assert_eq!(got, i, "message {i} out of order, lost or duplicated");
    }
    tokio::time::timeout(WAIT, sending)
        .await
        .expect("all publish requests queued in time")
        .expect("producer task");
    for _ in 0..N {
        publ.expect_ctl("PUBACK", |c| matches!(c, Ctl::PubAck))
            .await;
    }
    publ.publish("seq", b"barrier", QoS::AtLeastOnce, false)
        .await;
    assert!(
        sub.until_barrier("seq").await.is_empty(),
        "no duplicate after the last message"
    );
    assert_eq!(metric(&b, |m| &m.dropped_queue_full), 0);
}

#[tokio::test]
async fn retained_message_is_delivered_on_subscribe_replaced_and_cleared() {
    let b = start().await;
    let mut publ = Client::connect(&b, "pub").await;
    publ.publish("r/t", b"v1", QoS::AtLeastOnce, true).await;

    let mut s1 = Client::connect(&b, "s1").await;
    s1.subscribe("r/#", QoS::AtLeastOnce).await;
    let p = s1.recv().await;
    assert_eq!(summary(&p), ("r/t", &b"v1"[..], QoS::AtLeastOnce));
    assert!(
        p.retain,
        "a retained message sent on subscribe has RETAIN set [MQTT-3.3.1-8]"
    );

    // A live retained publish reaches existing subscribers as an ordinary message.
    publ.publish("r/t", b"v2", QoS::AtLeastOnce, true).await;
    let p = s1.recv().await;
    assert_eq!(summary(&p), ("r/t", &b"v2"[..], QoS::AtLeastOnce));
    assert!(
        !p.retain,
        "RETAIN is cleared on live delivery [MQTT-3.3.1-9]"
    );

    let mut s2 = Client::connect(&b, "s2").await;
    s2.subscribe("r/t", QoS::AtMostOnce).await;
    let p = s2.recv().await;
    assert_eq!(
        (summary(&p), p.retain),
        (("r/t", &b"v2"[..], QoS::AtMostOnce), true),
        "the newer message replaced the older [MQTT-3.3.1-5]"
    );

    // An empty retained payload clears the topic [MQTT-3.3.1-10].
    publ.publish("r/t", b"", QoS::AtLeastOnce, true).await;
    assert_eq!(s1.recv().await.payload.len(), 0);
    wait_until("retained store empty", || {
        metric(&b, |m| &m.retained_current) == 0
    })
    .await;
    let mut s3 = Client::connect(&b, "s3").await;
    s3.subscribe("r/#", QoS::AtLeastOnce).await;
    publ.publish("r/barrier", b"barrier", QoS::AtLeastOnce, false)
        .await;
    assert!(
        s3.until_barrier("r/barrier").await.is_empty(),
        "nothing retained after the clear"
    );
}

/// A client called `id` with a QoS 1 will on `will/<id>`.
async fn with_will(b: &TestBroker, id: &str) -> Client {
    let mut o = options(b, id);
    o.set_last_will(LastWill::new(
        format!("will/{id}"),
        "gone",
        QoS::AtLeastOnce,
        false,
    ));
    Client::connect_with(o).await.0
}

#[tokio::test]
async fn will_is_published_when_the_connection_drops_without_disconnect() {
    let b = start().await;
    let mut watcher = Client::connect(&b, "watcher").await;
    watcher.subscribe("will/#", QoS::ExactlyOnce).await;
    let c = with_will(&b, "crash").await;
    c.drop_abruptly().await;
    let p = watcher.recv().await;
    assert_eq!(summary(&p), ("will/crash", &b"gone"[..], QoS::AtLeastOnce));
    wait_until("will counted", || metric(&b, |m| &m.wills_published) == 1).await;
}

#[tokio::test]
async fn will_is_not_published_after_disconnect() {
    let b = start().await;
    let mut watcher = Client::connect(&b, "watcher").await;
    watcher.subscribe("will/#", QoS::ExactlyOnce).await;
    let c = with_will(&b, "polite").await;
    c.disconnect().await;
    // DISCONNECT discards the clean session; once it is gone no will can follow.
    wait_until("session removed after DISCONNECT", || {
        metric(&b, |m| &m.sessions_current) == 1
    })
    .await;
    let mut publ = Client::connect(&b, "pub").await;
    publ.publish("will/barrier", b"barrier", QoS::AtLeastOnce, false)
        .await;
    assert!(
        watcher.until_barrier("will/barrier").await.is_empty(),
        "no will after DISCONNECT [MQTT-3.14.4-3]"
    );
    assert_eq!(metric(&b, |m| &m.wills_published), 0);
}

#[tokio::test]
async fn persistent_session_receives_what_was_published_while_offline() {
    let b = start().await;
    let mut o = options(&b, "device");
    o.set_clean_session(false);
    let (mut dev, present) = Client::connect_with(o.clone()).await;
    assert!(!present, "first connection has no session");
    dev.subscribe("device/cmd", QoS::AtLeastOnce).await;
    dev.disconnect().await;
    wait_until("device offline", || {
        metric(&b, |m| &m.clients_connected_current) == 0
    })
    .await;

    let mut publ = Client::connect(&b, "pub").await;
    publ.publish("device/cmd", b"while away", QoS::AtLeastOnce, false)
        .await;

    let (mut dev, present) = Client::connect_with(o).await;
    assert!(present, "the session was kept [MQTT-3.2.2-2]");
    let p = dev.recv().await;
    assert_eq!(
        summary(&p),
        ("device/cmd", &b"while away"[..], QoS::AtLeastOnce)
    );
    // The subscription itself survived: live traffic arrives without subscribing again.
    publ.publish("device/cmd", b"live", QoS::ExactlyOnce, false)
        .await;
    assert_eq!(&dev.recv().await.payload[..], b"live");
}

#[tokio::test]
async fn second_connection_with_the_same_client_id_takes_over() {
    let b = start().await;
    let mut first = Client::connect(&b, "same").await;
    first.subscribe("mine", QoS::AtLeastOnce).await;
    let mut second = Client::connect(&b, "same").await;
    let why = first.expect_ended().await;
    assert!(!why.is_empty());
    assert_eq!(
        metric(&b, |m| &m.takeovers),
        1,
        "the existing client is disconnected [MQTT-3.1.4-2]"
    );
    // The new connection is fully usable, and the clean session dropped the subscription.
    second.subscribe("theirs", QoS::AtLeastOnce).await;
    second.publish("mine", b"x", QoS::AtLeastOnce, false).await;
    second
        .publish("theirs", b"barrier", QoS::AtLeastOnce, false)
        .await;
    assert!(
        second.until_barrier("theirs").await.is_empty(),
        "the old session's subscription is gone"
    );
    assert!(
        first.publishes.try_recv().is_err(),
        "the old connection received nothing"
    );
}

#[tokio::test]
async fn single_and_multi_level_wildcards_match_as_specified() {
    let b = start().await;
    let mut plus = Client::connect(&b, "plus").await;
    plus.subscribe("sport/+/score", QoS::AtLeastOnce).await;
    let mut hash = Client::connect(&b, "hash").await;
    hash.subscribe("sport/#", QoS::AtLeastOnce).await;
    let mut publ = Client::connect(&b, "pub").await;
    for topic in [
        "sport/tennis/score",
        "sport/tennis/player/score",
        "sport",
        "sport/",
        "other/tennis/score",
        "sport/golf",
    ] {
        publ.publish(topic, topic.as_bytes(), QoS::AtLeastOnce, false)
            .await;
    }
    // The barrier topic matches both filters.
    publ.publish("sport/end/score", b"barrier", QoS::AtLeastOnce, false)
        .await;
    let topics = |v: Vec<Publish>| v.into_iter().map(|p| p.topic).collect::<Vec<_>>();
    assert_eq!(
        topics(plus.until_barrier("sport/end/score").await),
        ["sport/tennis/score"],
        "+ matches exactly one level [MQTT-4.7.1-3]"
    );
    assert_eq!(
        topics(hash.until_barrier("sport/end/score").await),
        [
            "sport/tennis/score",
            "sport/tennis/player/score",
            "sport",
            "sport/",
            "sport/golf"
        ],
        "# matches the parent and any number of levels [MQTT-4.7.1-2]"
    );
}

#[tokio::test]
async fn unsubscribe_stops_delivery_for_that_filter_only() {
    let b = start().await;
    let mut sub = Client::connect(&b, "sub").await;
    sub.subscribe_many(&[("u/1", QoS::AtLeastOnce), ("u/2", QoS::AtLeastOnce)])
        .await;
    let mut publ = Client::connect(&b, "pub").await;
    publ.publish("u/1", b"before", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(
        summary(&sub.recv().await),
        ("u/1", &b"before"[..], QoS::AtLeastOnce)
    );

    sub.unsubscribe("u/1").await;
    publ.publish("u/1", b"after", QoS::AtLeastOnce, false).await;
    publ.publish("u/2", b"barrier", QoS::AtLeastOnce, false)
        .await;
    assert!(
        sub.until_barrier("u/2").await.is_empty(),
        "nothing on u/1 after UNSUBACK [MQTT-3.10.4-2]"
    );
    assert_eq!(metric(&b, |m| &m.subscriptions_current), 1);
}
