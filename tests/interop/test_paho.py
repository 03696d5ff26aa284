"""Interoperability with Eclipse Paho (paho-mqtt 2.x), an independent MQTT client, against the
real broker binary.

Each client runs paho's network thread (`loop_start`) with automatic reconnection off, so a
connection the broker closes stays closed and the test sees it. Every wait has a timeout.
Where a test shows that something did *not* arrive, a QoS 1 marker published afterwards is
awaited instead: the broker keeps each subscriber's messages in order, so whatever was routed
before the marker has arrived by the time the marker has.
"""

import queue
import socket
import struct
import threading

import paho.mqtt.client as mqtt
import pytest

WAIT = 10.0
HOST = "127.0.0.1"


class Client:
    """A connected paho client whose callbacks feed queues and events."""

    def __init__(self, port, client_id, *, clean_session=True, protocol=mqtt.MQTTv311, will=None):
        self.messages = queue.Queue()
        self._connacks = queue.Queue()
        self._subacks = {}
        self._unsubacks = {}
        self._acks_lock = threading.Lock()
        self.disconnected = threading.Event()
        self.disconnect_reason = None
        self.dropped = False
        self.mqtt = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=protocol,
            reconnect_on_failure=False,
        )
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_unsubscribe = self._on_unsubscribe
        self.mqtt.on_disconnect = self._on_disconnect
        if will is not None:
            self.mqtt.will_set(*will)
        self.mqtt.connect(HOST, port, keepalive=30)
        self.mqtt.loop_start()
        try:
            flags, code = self._connacks.get(timeout=WAIT)
        except queue.Empty:
            self.mqtt.loop_stop()
            raise AssertionError(f"{client_id}: no CONNACK within {WAIT}s") from None
        assert not code.is_failure, f"{client_id}: CONNACK {code}"
        self.session_present = flags.session_present

    def _on_connect(self, _c, _u, flags, code, _p):
        self._connacks.put((flags, code))

    def _ack_event(self, table, mid):
        with self._acks_lock:
            return table.setdefault(mid, [threading.Event(), None])

    def _on_subscribe(self, _c, _u, mid, codes, _p):
        entry = self._ack_event(self._subacks, mid)
        entry[1] = [c.value for c in codes]
        entry[0].set()

    def _on_unsubscribe(self, _c, _u, mid, _codes, _p):
        self._ack_event(self._unsubacks, mid)[0].set()

    def _on_disconnect(self, _c, _u, _flags, code, _p):
        self.disconnect_reason = code
        self.disconnected.set()

    def subscribe(self, *filters):
        """Subscribes to (filter, qos) pairs; returns the SUBACK return codes."""
        rc, mid = self.mqtt.subscribe(list(filters))
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        entry = self._ack_event(self._subacks, mid)
        assert entry[0].wait(WAIT), f"no SUBACK within {WAIT}s"
        return entry[1]

    def unsubscribe(self, topic):
        rc, mid = self.mqtt.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        assert self._ack_event(self._unsubacks, mid)[0].wait(WAIT), "no UNSUBACK"

    def publish(self, topic, payload, qos=0, retain=False):
        """Publishes and waits until it is sent (QoS 0) or acknowledged (PUBACK / PUBCOMP)."""
        info = self.mqtt.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published(), f"publish to {topic} not completed within {WAIT}s"

    def recv(self):
        try:
            return self.messages.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no message within {WAIT}s") from None

    def until_barrier(self, topic):
        """Messages received before the marker `barrier` on `topic`."""
        before = []
        while True:
            m = self.recv()
            if m.topic == topic and m.payload == b"barrier":
                return before
            before.append(m)

    def disconnect(self):
        """A clean disconnect: DISCONNECT, then the network thread ends."""
        self.mqtt.disconnect()
        assert self.disconnected.wait(WAIT), "no disconnect within WAIT"
        self.mqtt.loop_stop()

    def drop(self):
        """Closes the TCP connection without DISCONNECT, as when the process dies."""
        # Stopping the network thread first sends nothing and keeps it from touching the
        # socket while it is closed under it.
        self.mqtt.loop_stop()
        self.mqtt.socket().close()
        self.dropped = True

    def close(self):
        """Test cleanup: disconnect if still connected."""
        if not (self.dropped or self.disconnected.is_set()):
            self.mqtt.disconnect()
            self.disconnected.wait(WAIT)
        self.mqtt.loop_stop()


@pytest.fixture
def clients(port):
    """Factory for clients on the module's broker, all closed at the end of the test."""
    made = []

    def make(client_id, **kw):
        c = Client(port, client_id, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_pub_sub_at_each_qos_is_delivered_at_the_minimum_qos(clients):
    sub = clients("paho-qos-sub")
    assert sub.subscribe(("qos/0", 0), ("qos/1", 1), ("qos/2", 2)) == [0, 1, 2]
    pub = clients("paho-qos-pub")
    for sub_qos in range(3):
        for pub_qos in range(3):
            topic = f"qos/{sub_qos}"
            payload = f"pub {pub_qos} sub {sub_qos}".encode()
            pub.publish(topic, payload, qos=pub_qos)
            m = sub.recv()
            assert (m.topic, m.payload, m.qos, m.retain) == (
                topic,
                payload,
                min(pub_qos, sub_qos),
                False,
            ), "delivered at min(publish QoS, subscription QoS)"


def test_many_qos1_messages_arrive_in_order_once(clients):
    n = 500
    sub = clients("paho-seq-sub")
    sub.subscribe(("seq", 1))
    pub = clients("paho-seq-pub")
    infos = [pub.mqtt.publish("seq", str(i).encode(), qos=1) for i in range(n)]
    got = [int(sub.recv().payload) for _ in range(n)]
    assert got == list(range(n)), "in order, none lost or duplicated"
    for info in infos:
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()
    pub.publish("seq", b"barrier", qos=1)
    assert sub.until_barrier("seq") == [], "no duplicates after the last message"


def test_retained_message_is_set_replaced_and_deleted(clients):
    pub = clients("paho-ret-pub")
    pub.publish("ret/a", b"v1", qos=1, retain=True)
    s1 = clients("paho-ret-s1")
    s1.subscribe(("ret/#", 1))
    m = s1.recv()
    assert (m.topic, m.payload, m.retain) == ("ret/a", b"v1", True)

    pub.publish("ret/a", b"v2", qos=1, retain=True)
    m = s1.recv()
    assert (m.payload, m.retain) == (b"v2", False), "live delivery clears RETAIN"
    s2 = clients("paho-ret-s2")
    s2.subscribe(("ret/a", 0))
    m = s2.recv()
    assert (m.payload, m.retain, m.qos) == (b"v2", True, 0), "the new value replaced the old"

    pub.publish("ret/a", b"", qos=1, retain=True)
    assert s1.recv().payload == b""
    s3 = clients("paho-ret-s3")
    s3.subscribe(("ret/#", 1))
    pub.publish("ret/barrier", b"barrier", qos=1)
    assert s3.until_barrier("ret/barrier") == [], "an empty retained payload deletes it"


def test_will_is_published_when_the_socket_closes_abruptly(clients):
    watcher = clients("paho-will-watch")
    watcher.subscribe(("will/#", 2))
    c = clients("paho-will-crash", will=("will/crash", b"gone", 1, False))
    c.drop()
    m = watcher.recv()
    assert (m.topic, m.payload, m.qos) == ("will/crash", b"gone", 1)


def test_will_is_retained_when_asked(clients):
    c = clients("paho-will-ret", will=("willret/t", b"gone", 1, True))
    c.drop()
    # The will goes out when the broker notices the closed socket: wait until it has (as a
    # live or a retained message) before asking for the retained copy.
    live = clients("paho-will-ret-live")
    live.subscribe(("willret/#", 1))
    m = live.recv()
    assert (m.topic, m.payload) == ("willret/t", b"gone")
    later = clients("paho-will-ret-late")
    later.subscribe(("willret/t", 1))
    m = later.recv()
    assert (m.payload, m.retain) == (b"gone", True)
    clients("paho-will-ret-clear").publish("willret/t", b"", qos=1, retain=True)


def test_no_will_after_clean_disconnect(clients):
    watcher = clients("paho-nowill-watch")
    watcher.subscribe(("nowill/#", 2))
    c = clients("paho-nowill", will=("nowill/polite", b"gone", 1, False))
    c.disconnect()
    clients("paho-nowill-pub").publish("nowill/barrier", b"barrier", qos=1)
    assert watcher.until_barrier("nowill/barrier") == [], "no will after DISCONNECT"


def _utf8(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "connection closed early"
        out += chunk
    return out


def subscribe_then_leave(port, client_id, topic, qos):
    """Opens a persistent session (CleanSession=0) subscribed to `topic` on a raw socket,
    sends DISCONNECT and waits for the broker to close the connection: only then is the
    session offline for certain (paho's disconnect returns once DISCONNECT is written)."""
    with socket.create_connection((HOST, port), timeout=WAIT) as s:
        body = _utf8("MQTT") + bytes([4, 0x00]) + struct.pack("!H", 30) + _utf8(client_id)
        s.sendall(bytes([0x10, len(body)]) + body)
        assert _recv_exact(s, 4) == b"\x20\x02\x00\x00", "CONNACK, no session yet"
        body = struct.pack("!H", 1) + _utf8(topic) + bytes([qos])
        s.sendall(bytes([0x82, len(body)]) + body)
        assert _recv_exact(s, 5) == bytes([0x90, 3, 0, 1, qos]), "SUBACK"
        s.sendall(b"\xe0\x00")
        assert s.recv(1) == b"", "the broker closes the connection after DISCONNECT"


def test_persistent_session_receives_messages_queued_while_offline(clients, port):
    subscribe_then_leave(port, "paho-persist", "persist/cmd", 2)
    pub = clients("paho-persist-pub")
    pub.publish("persist/cmd", b"q1", qos=1)
    pub.publish("persist/cmd", b"q2", qos=2)
    pub.publish("persist/cmd", b"q0", qos=0)

    dev = clients("paho-persist", clean_session=False)
    assert dev.session_present, "the broker kept the session"
    got = [(m.payload, m.qos) for m in (dev.recv(), dev.recv())]
    assert got == [(b"q1", 1), (b"q2", 2)], "QoS 1 and 2 are queued in order, QoS 0 is not"
    pub.publish("persist/cmd", b"barrier", qos=1)
    assert dev.until_barrier("persist/cmd") == []

    # Cleaning up the session also checks that CleanSession=1 discards it.
    fresh = clients("paho-persist", clean_session=True)
    assert not fresh.session_present


def test_dollar_topics_are_not_matched_by_wildcards_at_the_first_level(clients):
    everything = clients("paho-dollar-all")
    everything.subscribe(("#", 1))
    plus = clients("paho-dollar-plus")
    plus.subscribe(("+/x", 1))
    dollar = clients("paho-dollar-app")
    dollar.subscribe(("$app/#", 1))
    pub = clients("paho-dollar-pub")
    pub.publish("$app/x", b"hidden", qos=1)
    m = dollar.recv()
    assert (m.topic, m.payload) == ("$app/x", b"hidden"), "$ topics can be subscribed to"
    pub.publish("plain/x", b"barrier", qos=1)
    assert [
        m.topic for m in everything.until_barrier("plain/x") if m.topic.startswith("$")
    ] == [], "# does not match topics starting with $"
    assert plus.until_barrier("plain/x") == [], "+ does not match a first level starting with $"


def test_sys_topics_reach_explicit_subscribers_only(sys_broker):
    made = []
    try:
        sys_sub = Client(sys_broker.port, "paho-sys")
        made.append(sys_sub)
        sys_sub.subscribe(("$SYS/#", 0))
        m = sys_sub.recv()
        assert m.topic.startswith("$SYS/broker/")
        # $SYS messages now exist (and are retained): a # subscriber must get none of them.
        everything = Client(sys_broker.port, "paho-sys-all")
        made.append(everything)
        everything.subscribe(("#", 0))
        pub = Client(sys_broker.port, "paho-sys-pub")
        made.append(pub)
        pub.publish("done", b"barrier", qos=1)
        assert everything.until_barrier("done") == []
    finally:
        for c in made:
            c.close()


def test_take_over_closes_the_first_connection(clients):
    first = clients("paho-same")
    first.subscribe(("takeover/first", 1))
    second = clients("paho-same")
    assert first.disconnected.wait(WAIT), "the first connection is closed by the broker"
    assert first.disconnect_reason.is_failure, "an unexpected disconnect for the first client"
    # The second connection works, and its clean session does not carry the old subscription.
    second.subscribe(("takeover/second", 1))
    second.publish("takeover/first", b"x", qos=1)
    second.publish("takeover/second", b"barrier", qos=1)
    assert second.until_barrier("takeover/second") == []


def test_wildcards_and_unsubscribe(clients):
    plus = clients("paho-wild-plus")
    plus.subscribe(("wild/+/score", 1))
    hash_ = clients("paho-wild-hash")
    hash_.subscribe(("wild/#", 1))
    pub = clients("paho-wild-pub")
    topics = ["wild/tennis/score", "wild/tennis/player/score", "wild", "other/tennis/score"]
    for t in topics:
        pub.publish(t, t.encode(), qos=1)
    pub.publish("wild/end/score", b"barrier", qos=1)
    assert [m.topic for m in plus.until_barrier("wild/end/score")] == ["wild/tennis/score"]
    assert [m.topic for m in hash_.until_barrier("wild/end/score")] == topics[:3]

    hash_.unsubscribe("wild/#")
    hash_.subscribe(("wild/end/score", 1))
    pub.publish("wild/tennis/score", b"after", qos=1)
    pub.publish("wild/end/score", b"barrier", qos=1)
    assert hash_.until_barrier("wild/end/score") == [], "nothing after UNSUBACK"
    assert [m.payload for m in plus.until_barrier("wild/end/score")] == [b"after"]


def test_mqtt_31_client(clients):
    sub = clients("paho31-sub", protocol=mqtt.MQTTv31)
    assert sub.subscribe(("v31/t", 2)) == [2]
    pub = clients("paho31-pub", protocol=mqtt.MQTTv31)
    for qos in range(3):
        pub.publish("v31/t", f"q{qos}".encode(), qos=qos)
        m = sub.recv()
        assert (m.payload, m.qos) == (f"q{qos}".encode(), qos)
