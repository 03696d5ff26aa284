"""Interoperability with Eclipse Paho (paho-mqtt 2.x) speaking MQTT 5 against the real broker
binary: CONNACK properties, PUBLISH properties, message expiry, topic aliases, shared
subscriptions, subscription options and identifiers, PUBACK reason codes, flow control
(Receive Maximum) and session expiry.

As in test_paho.py, each client runs paho's network thread with automatic reconnection off
and every wait has a timeout. Where a test shows that something did *not* arrive, a QoS 1
marker published afterwards is awaited instead (the broker keeps each subscriber's messages in
order). The broker runs with the default configuration: Receive Maximum 20, Topic Alias
Maximum 10, shared subscriptions on, any Session Expiry Interval granted.
"""

import queue
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

WAIT = 10.0
HOST = "127.0.0.1"


def props(packet_type, **values):
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def publish_props(**values):
    return props(PacketTypes.PUBLISH, **values)


class Client:
    """A connected MQTT 5 paho client whose callbacks feed queues and events."""

    def __init__(
        self,
        port,
        client_id,
        *,
        clean_start=True,
        connect_props=None,
        manual_ack=False,
        max_inflight=None,
        will=None,
    ):
        self.messages = queue.Queue()
        self._connacks = queue.Queue()
        self._acks = {}
        self._acks_lock = threading.Lock()
        self.disconnected = threading.Event()
        self.disconnect_reason = None
        self.mqtt = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
            manual_ack=manual_ack,
        )
        if max_inflight is not None:
            self.mqtt.max_inflight_messages_set(max_inflight)
        if will is not None:
            self.mqtt.will_set(*will)
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_publish = self._on_publish
        self.mqtt.on_disconnect = self._on_disconnect
        self.mqtt.connect(
            HOST, port, keepalive=30, clean_start=clean_start, properties=connect_props
        )
        self.mqtt.loop_start()
        try:
            flags, code, p = self._connacks.get(timeout=WAIT)
        except queue.Empty:
            self.mqtt.loop_stop()
            raise AssertionError(f"{client_id}: no CONNACK within {WAIT}s") from None
        assert not code.is_failure, f"{client_id}: CONNACK {code}"
        self.session_present = flags.session_present
        self.connack = p

    def _on_connect(self, _c, _u, flags, code, p):
        self._connacks.put((flags, code, p))

    def _entry(self, key):
        with self._acks_lock:
            return self._acks.setdefault(key, [threading.Event(), None])

    def _on_subscribe(self, _c, _u, mid, codes, _p):
        entry = self._entry(("sub", mid))
        entry[1] = [c.value for c in codes]
        entry[0].set()

    def _on_publish(self, _c, _u, mid, code, _p):
        entry = self._entry(("pub", mid))
        entry[1] = code.value
        entry[0].set()

    def _on_disconnect(self, _c, _u, _flags, code, _p):
        self.disconnect_reason = code
        self.disconnected.set()

    def subscribe(self, topic, qos=1, sub_props=None, **options):
        """Subscribes to one filter with SubscribeOptions; returns the SUBACK reason codes."""
        rc, mid = self.mqtt.subscribe(
            [(topic, SubscribeOptions(qos=qos, **options))], properties=sub_props
        )
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        entry = self._entry(("sub", mid))
        assert entry[0].wait(WAIT), f"no SUBACK within {WAIT}s"
        return entry[1]

    def publish(self, topic, payload, qos=1, retain=False, properties=None):
        """Publishes and waits until sent (QoS 0) or acknowledged; returns the PUBACK / PUBREC
        reason code (0 for QoS 0)."""
        info = self.mqtt.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        entry = self._entry(("pub", info.mid))
        assert entry[0].wait(WAIT), f"publish to {topic} not completed within {WAIT}s"
        return entry[1]

    def recv(self):
        try:
            return self.messages.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no message within {WAIT}s") from None

    def until_barrier(self, topic):
        before = []
        while True:
            m = self.recv()
            if m.topic == topic and m.payload == b"barrier":
                return before
            before.append(m)

    def disconnect(self, reason_props=None, reason=None):
        self.mqtt.disconnect(reasoncode=reason, properties=reason_props)
        assert self.disconnected.wait(WAIT), "no disconnect within WAIT"
        self.mqtt.loop_stop()

    def close(self):
        if not self.disconnected.is_set():
            self.mqtt.disconnect()
            self.disconnected.wait(WAIT)
        self.mqtt.loop_stop()


@pytest.fixture
def clients(port):
    made = []

    def make(client_id, **kw):
        c = Client(port, client_id, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def prop(msg, name, default=None):
    return getattr(msg.properties, name, default) if msg.properties is not None else default


def test_connack_properties_and_assigned_client_identifier(clients):
    c = clients("")
    assert c.connack.ReceiveMaximum == 20
    assert c.connack.TopicAliasMaximum == 10
    assigned = c.connack.AssignedClientIdentifier
    assert isinstance(assigned, str) and assigned, "empty client id gets an assigned one"
    # The assigned identifier is a working one: the client can talk to itself under it.
    c.subscribe(f"p5/assigned/{assigned}")
    assert c.publish(f"p5/assigned/{assigned}", b"x") == 0
    assert c.recv().payload == b"x"


def test_publish_properties_round_trip(clients):
    sub = clients("p5-props-sub")
    pub = clients("p5-props-pub")
    sub.subscribe("p5/props/#")
    p = publish_props(
        UserProperty=[("k1", "v1"), ("k2", "v2"), ("k1", "again")],
        ContentType="application/json",
        ResponseTopic="p5/props/reply",
        CorrelationData=b"\x00\x01corr",
        PayloadFormatIndicator=1,
    )
    assert pub.publish("p5/props/a", b'{"x":1}', properties=p) == 0
    m = sub.recv()
    assert m.payload == b'{"x":1}'
    # User properties keep their order and duplicates [MQTT-3.3.2-18].
    assert prop(m, "UserProperty") == [("k1", "v1"), ("k2", "v2"), ("k1", "again")]
    assert prop(m, "ContentType") == "application/json"
    assert prop(m, "ResponseTopic") == "p5/props/reply"
    assert prop(m, "CorrelationData") == b"\x00\x01corr"
    assert prop(m, "PayloadFormatIndicator") == 1
    # Request / response: the responder answers on the response topic with the correlation data.
    pub.subscribe("p5/props/reply")
    sub.publish(
        prop(m, "ResponseTopic"),
        b"answer",
        properties=publish_props(CorrelationData=prop(m, "CorrelationData")),
    )
    reply = pub.recv()
    assert reply.payload == b"answer"
    assert prop(reply, "CorrelationData") == b"\x00\x01corr"


def test_message_expiry_interval_is_forwarded_not_above_what_was_sent(clients):
    sub = clients("p5-exp-sub")
    pub = clients("p5-exp-pub")
    sub.subscribe("p5/exp/live")
    pub.publish("p5/exp/live", b"e", properties=publish_props(MessageExpiryInterval=30))
    m = sub.recv()
    assert 0 < prop(m, "MessageExpiryInterval") <= 30
    # Without the property the message does not expire and carries none.
    pub.publish("p5/exp/live", b"n")
    assert prop(sub.recv(), "MessageExpiryInterval") is None


def test_expired_message_is_not_delivered_to_an_offline_session(clients, port):
    connect = props(PacketTypes.CONNECT, SessionExpiryInterval=60)
    sub = clients("p5-exp-offline", clean_start=True, connect_props=connect)
    assert not sub.session_present
    sub.subscribe("p5/exp/offline", qos=1)
    sub.disconnect()
    pub = clients("p5-exp-offline-pub")
    pub.publish("p5/exp/offline", b"short", properties=publish_props(MessageExpiryInterval=1))
    pub.publish("p5/exp/offline", b"long", properties=publish_props(MessageExpiryInterval=60))
    # Waiting for the short expiry to pass is the point of this test, not a hope for events.
    time.sleep(2.2)
    back = clients("p5-exp-offline", clean_start=False, connect_props=connect)
    assert back.session_present, "the session outlived the connection (expiry 60 s)"
    m = back.recv()
    assert m.payload == b"long", f"expired message delivered: {m.payload!r}"
    # Time spent waiting in the queue is subtracted [MQTT-3.3.2-6].
    assert prop(m, "MessageExpiryInterval") <= 58
    back.mqtt.publish("p5/exp/offline", b"barrier", qos=1)
    assert back.until_barrier("p5/exp/offline") == []


def test_inbound_topic_alias(clients):
    sub = clients("p5-alias-sub")
    pub = clients("p5-alias-pub")
    sub.subscribe("p5/alias/+")
    pub.publish("p5/alias/one", b"1", properties=publish_props(TopicAlias=1))
    pub.publish("", b"2", properties=publish_props(TopicAlias=1))
    # An alias can be remapped to another topic [MQTT-3.3.2-12].
    pub.publish("p5/alias/two", b"3", properties=publish_props(TopicAlias=1))
    pub.publish("", b"4", properties=publish_props(TopicAlias=1))
    got = [(m.topic, m.payload) for m in (sub.recv() for _ in range(4))]
    assert got == [
        ("p5/alias/one", b"1"),
        ("p5/alias/one", b"2"),
        ("p5/alias/two", b"3"),
        ("p5/alias/two", b"4"),
    ]


def test_topic_alias_above_maximum_is_a_protocol_error(clients):
    pub = clients("p5-alias-bad")
    pub.mqtt.publish("p5/alias/bad", b"x", qos=1, properties=publish_props(TopicAlias=11))
    # The broker answers DISCONNECT 0x94 Topic Alias invalid [MQTT-3.3.2-9] as `E0 01 94` (no
    # property length, allowed by MQTT 5 3.14.2.2.1); paho 2.1 reads a reason code only from a
    # DISCONNECT longer than 2 bytes, so it reports a normal disconnection: only the
    # disconnection itself is checked here.
    assert pub.disconnected.wait(WAIT), "alias 11 > Topic Alias Maximum 10 must disconnect"


def test_shared_subscription_delivers_each_message_once(clients):
    a = clients("p5-share-a")
    b = clients("p5-share-b")
    pub = clients("p5-share-pub")
    for s in (a, b):
        assert s.subscribe("$share/g/p5/share/t", qos=1) == [1]
        s.subscribe("p5/share/marker", qos=1)
    n = 40
    for i in range(n):
        pub.publish("p5/share/t", str(i).encode())
    pub.publish("p5/share/marker", b"barrier")
    got_a = [m.payload for m in a.until_barrier("p5/share/marker")]
    got_b = [m.payload for m in b.until_barrier("p5/share/marker")]
    assert sorted(got_a + got_b, key=int) == [str(i).encode() for i in range(n)]


def test_subscription_identifiers(clients):
    sub = clients("p5-subid")
    pub = clients("p5-subid-pub")
    sub.subscribe("p5/subid/+", sub_props=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    sub.subscribe("p5/subid/#", sub_props=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=9))
    sub.subscribe("p5/subid-none")
    pub.publish("p5/subid/x", b"both")
    m = sub.recv()
    # One message with both identifiers [MQTT-3.3.4-3, -5].
    assert sorted(prop(m, "SubscriptionIdentifier")) == [7, 9]
    pub.publish("p5/subid/x/y", b"hash")
    assert prop(sub.recv(), "SubscriptionIdentifier") == [9]
    # A subscription made without an identifier gets none.
    pub.publish("p5/subid-none", b"plain")
    assert prop(sub.recv(), "SubscriptionIdentifier") is None


def test_no_local(clients):
    c = clients("p5-nolocal")
    other = clients("p5-nolocal-other")
    c.subscribe("p5/nolocal", noLocal=True)
    c.subscribe("p5/nolocal/marker")
    c.publish("p5/nolocal", b"own")
    other.publish("p5/nolocal", b"other")
    other.publish("p5/nolocal/marker", b"barrier")
    got = [m.payload for m in c.until_barrier("p5/nolocal/marker")]
    assert got == [b"other"], f"no-local: own message came back [MQTT-3.8.3-3]: {got}"


def test_retain_as_published_and_retain_handling(clients):
    pub = clients("p5-rap-pub")
    pub.publish("p5/rap/t", b"kept", retain=True)
    rap = clients("p5-rap")
    plain = clients("p5-rap-plain")
    # Retain Handling 0: retained message sent at subscribe, with RETAIN 1.
    rap.subscribe("p5/rap/t", retainAsPublished=True, retainHandling=0)
    plain.subscribe("p5/rap/t", retainAsPublished=False, retainHandling=0)
    assert rap.recv().retain and plain.recv().retain
    # A live retained publish: RETAIN stays 1 only with Retain As Published [MQTT-3.3.1-12/13].
    pub.publish("p5/rap/t", b"live", retain=True)
    m_rap, m_plain = rap.recv(), plain.recv()
    assert (m_rap.payload, m_rap.retain) == (b"live", True)
    assert (m_plain.payload, m_plain.retain) == (b"live", False)
    # Retain Handling 1: sent again only for a new subscription; 2: never.
    rap.subscribe("p5/rap/t", retainHandling=1)
    h2 = clients("p5-rap-h2")
    h2.subscribe("p5/rap/t", retainHandling=2)
    h1 = clients("p5-rap-h1")
    h1.subscribe("p5/rap/t", retainHandling=1)
    assert h1.recv().payload == b"live"
    for c in (rap, h2):
        c.subscribe("p5/rap/marker")
    pub.publish("p5/rap/marker", b"barrier")
    assert rap.until_barrier("p5/rap/marker") == []
    assert h2.until_barrier("p5/rap/marker") == []
    pub.publish("p5/rap/t", b"", retain=True)


def test_puback_reason_no_matching_subscribers(clients):
    pub = clients("p5-rc")
    # 0x10 No matching subscribers [MQTT 3.4.2.1].
    assert pub.publish("p5/rc/nobody", b"x", qos=1) == 0x10
    pub.subscribe("p5/rc/somebody")
    assert pub.publish("p5/rc/somebody", b"x", qos=1) == 0


def test_qos1_burst_respects_receive_maximum_both_ways(clients):
    receive_max = 5
    sub = clients(
        "p5-burst-sub",
        connect_props=props(PacketTypes.CONNECT, ReceiveMaximum=receive_max),
        manual_ack=True,
    )
    sub.subscribe("p5/burst", qos=1)
    # Towards the broker: at most its Receive Maximum (20) in flight, or it disconnects (0x93).
    # paho does not adopt CONNACK's value itself; its window is set before connecting.
    pub = clients("p5-burst-pub", max_inflight=20)
    assert pub.connack.ReceiveMaximum == 20
    n = 200
    infos = [pub.mqtt.publish("p5/burst", str(i).encode(), qos=1) for i in range(n)]
    got, unacked = [], []
    first_window_checked = False
    while len(got) < n:
        m = sub.recv()
        got.append(int(m.payload))
        unacked.append(m.mid)
        assert len(unacked) <= receive_max, f"more than {receive_max} unacknowledged in flight"
        if len(unacked) == receive_max:
            if not first_window_checked:
                # The window is full: nothing more may come until something is acknowledged.
                with pytest.raises(queue.Empty):
                    sub.messages.get(timeout=0.5)
                first_window_checked = True
            for mid in unacked:
                sub.mqtt.ack(mid, 1)
            unacked.clear()
    for mid in unacked:
        sub.mqtt.ack(mid, 1)
    for info in infos:
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()
    assert got == list(range(n)), "all delivered, in order, none lost"
    assert not pub.disconnected.is_set()


def test_session_expiry_and_session_present(clients):
    # paho reports a disconnection once its DISCONNECT is written, and the broker could read a
    # next CONNECT (another connection) before it, rightly resuming the session the old
    # connection still held. So the connections whose end is checked carry a will and end with
    # DISCONNECT 0x04 (Disconnect with Will Message): the broker publishes the will after it is
    # done with the session, and a witness receiving it orders the next CONNECT after that.
    witness = clients("p5-sess-witness")
    witness.subscribe("p5/sess-witness/+")
    with_will = mqtt.ReasonCode(PacketTypes.DISCONNECT, identifier=0x04)
    keep = props(PacketTypes.CONNECT, SessionExpiryInterval=30)
    c = clients("p5-sess", clean_start=True, connect_props=keep)
    assert not c.session_present
    c.subscribe("p5/sess", qos=1)
    c.disconnect()
    pub = clients("p5-sess-pub")
    pub.publish("p5/sess", b"queued")
    back = clients(
        "p5-sess", clean_start=False, connect_props=keep, will=("p5/sess-witness/a", b"a", 1)
    )
    assert back.session_present
    assert back.recv().payload == b"queued"
    # DISCONNECT with Session Expiry Interval 0 ends the session at once [MQTT-3.1.2-23].
    back.disconnect(props(PacketTypes.DISCONNECT, SessionExpiryInterval=0), reason=with_will)
    assert witness.recv().payload == b"a"
    assert not clients("p5-sess", clean_start=False, connect_props=keep).session_present
    # A session without an expiry interval (0) ends with its connection.
    short = clients("p5-sess-zero", clean_start=True, will=("p5/sess-witness/b", b"b", 1))
    short.subscribe("p5/sess/zero")
    short.disconnect(reason=with_will)
    assert witness.recv().payload == b"b"
    assert not clients("p5-sess-zero", clean_start=False).session_present
