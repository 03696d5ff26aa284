"""Interoperability with the Mosquitto command-line clients at MQTT 5 (`-V 5`) against the real
broker binary: properties set with `-D`, read back with mosquitto_sub's `-F` fields (%P user
properties, %E message expiry, %C content type, %R response topic, %D correlation data, %S
subscription identifier, %A topic alias), shared subscriptions, and reason codes from the
`-d` debug lines.

As in test_mosquitto_clients.py, mosquitto_sub runs with `-d` so publishing starts only once
its SUBACK is seen, every wait has a timeout, and absence is shown with a later marker.
"""

import queue
import shutil
import subprocess
import threading

import pytest

WAIT = 10.0
SEP = "\x1f"  # unit separator: cannot clash with the printable test values
FIELDS = ["topic", "qos", "retain", "expiry", "ctype", "resp", "corr", "subid", "alias", "uprops", "payload"]
FORMAT = SEP.join(["%t", "%q", "%r", "%E", "%C", "%R", "%D", "%S", "%A", "%P", "%p"])

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_sub") is None or shutil.which("mosquitto_pub") is None,
    reason="mosquitto-clients not installed",
)


def pub(port, topic, *args, message="m"):
    """Runs mosquitto_pub -V 5 -d to completion; returns its debug output."""
    r = subprocess.run(
        ["mosquitto_pub", "-V", "5", "-d", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
         "-m", message, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert r.returncode == 0, f"mosquitto_pub {topic} {args}: {r.returncode} {r.stdout} {r.stderr}"
    return r.stdout


class Sub:
    """A running mosquitto_sub -V 5; its output lines are collected by a reader thread."""

    def __init__(self, port, *args):
        cmd = ["mosquitto_sub", "-V", "5", "-h", "127.0.0.1", "-p", str(port), "-d",
               "-F", FORMAT, *args]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", *cmd]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = queue.Queue()
        self.seen = []
        self.early = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_line(lambda s: s.startswith("Subscribed"), "SUBACK")
        # Messages of a resumed session can arrive before the SUBACK: keep them for message().
        self.early = [line for line in self.seen if SEP in line]

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, pred, what):
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"mosquitto_sub: no {what} within {WAIT}s: {self.seen}")
            if line is None:
                raise AssertionError(f"mosquitto_sub exited before {what}: {self.seen}")
            self.seen.append(line)
            if pred(line):
                return line

    def message(self):
        """The next message as a dict of FIELDS."""
        if self.early:
            line = self.early.pop(0)
        else:
            line = self.wait_line(lambda s: SEP in s, "message")
        return dict(zip(FIELDS, line.split(SEP, len(FIELDS) - 1)))

    def until_barrier(self, topic):
        before = []
        while True:
            m = self.message()
            if m["topic"] == topic and m["payload"] == "barrier":
                return before
            before.append(m)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=WAIT)


@pytest.fixture
def subs(port):
    made = []

    def make(*args):
        s = Sub(port, *args)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def test_publish_properties_round_trip(port, subs):
    s = subs("-t", "m5/props", "-q", "1")
    pub(
        port, "m5/props", "-q", "1",
        "-D", "PUBLISH", "user-property", "k1", "v1",
        "-D", "PUBLISH", "user-property", "k2", "v2",
        "-D", "PUBLISH", "content-type", "text/plain",
        "-D", "PUBLISH", "response-topic", "m5/props/reply",
        "-D", "PUBLISH", "correlation-data", "corr-7",
        message="hello",
    )
    m = s.message()
    assert (m["topic"], m["qos"], m["payload"]) == ("m5/props", "1", "hello")
    assert m["uprops"] == "k1:v1 k2:v2", "user properties in order [MQTT-3.3.2-18]"
    assert m["ctype"] == "text/plain"
    assert m["resp"] == "m5/props/reply"
    assert m["corr"] == "corr-7"
    assert m["expiry"] == "", "no expiry sent, none forwarded"


def test_message_expiry_interval(port, subs):
    s = subs("-t", "m5/exp", "-q", "1")
    pub(port, "m5/exp", "-q", "1", "-D", "PUBLISH", "message-expiry-interval", "40", message="e")
    m = s.message()
    assert m["payload"] == "e"
    assert 0 < int(m["expiry"]) <= 40


def test_session_expiry_keeps_queued_messages(port, subs):
    session = ["-i", "m5-sess", "-q", "1", "-t", "m5/sess"]
    # Clean start, with a Session Expiry Interval that keeps the session after disconnecting.
    first = subs(*session, "-E", "-D", "CONNECT", "session-expiry-interval", "60")
    assert first.proc.wait(timeout=WAIT) == 0
    pub(port, "m5/sess", "-q", "1", message="queued")
    # -c: clean start 0 (mosquitto_sub then sets the interval itself, with -x).
    again = subs(*session, "-c", "-x", "60")
    assert any("received CONNACK (0)" in line for line in again.seen)
    assert again.message()["payload"] == "queued"


def test_subscription_identifier(port, subs):
    s = subs("-t", "m5/subid/+", "-q", "1", "-D", "SUBSCRIBE", "subscription-identifier", "77")
    pub(port, "m5/subid/x", "-q", "1", message="x")
    assert s.message()["subid"] == "77"


def test_shared_subscription(port, subs):
    a = subs("-t", "$share/g/m5/share", "-t", "m5/share/marker", "-q", "1")
    b = subs("-t", "$share/g/m5/share", "-t", "m5/share/marker", "-q", "1")
    n = 12
    # One mosquitto_pub sending n lines (-l) keeps the test fast.
    r = subprocess.run(
        ["mosquitto_pub", "-V", "5", "-h", "127.0.0.1", "-p", str(port), "-t", "m5/share",
         "-q", "1", "-l"],
        input="".join(f"{i}\n" for i in range(n)),
        capture_output=True, text=True, timeout=WAIT,
    )
    assert r.returncode == 0, r.stderr
    pub(port, "m5/share/marker", "-q", "1", message="barrier")
    got = [m["payload"] for m in a.until_barrier("m5/share/marker")]
    got += [m["payload"] for m in b.until_barrier("m5/share/marker")]
    assert sorted(got, key=int) == [str(i) for i in range(n)], "each message once in the group"


def test_topic_alias_from_publisher(port, subs):
    s = subs("-t", "m5/alias", "-q", "1")
    # With -l and a topic alias, mosquitto_pub sends the topic once, then the alias alone.
    r = subprocess.run(
        ["mosquitto_pub", "-V", "5", "-d", "-h", "127.0.0.1", "-p", str(port), "-t", "m5/alias",
         "-q", "1", "-l", "-D", "PUBLISH", "topic-alias", "3"],
        input="a\nb\nc\n", capture_output=True, text=True, timeout=WAIT,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "'(null)'" in r.stdout, f"no alias-only PUBLISH sent: {r.stdout}"
    assert [(m["topic"], m["payload"]) for m in (s.message() for _ in range(3))] == [
        ("m5/alias", "a"), ("m5/alias", "b"), ("m5/alias", "c"),
    ]


def test_topic_alias_towards_subscriber(port, subs):
    # The subscriber allows aliases; the broker sets one up with the first message. (Only one
    # message: libmosquitto 2.0 cannot resolve an alias-only PUBLISH it receives.)
    s = subs("-t", "m5/alias2", "-q", "1", "-C", "1",
             "-D", "CONNECT", "topic-alias-maximum", "5")
    pub(port, "m5/alias2", "-q", "1", message="x")
    m = s.message()
    assert (m["topic"], m["payload"]) == ("m5/alias2", "x")
    assert 1 <= int(m["alias"]) <= 5


def test_puback_reason_codes(port, subs):
    out = pub(port, "m5/rc/nobody", "-q", "1")
    # 0x10 No matching subscribers.
    assert "received PUBACK (Mid: 1, RC:16)" in out, out
    subs("-t", "m5/rc/somebody", "-q", "1")
    out = pub(port, "m5/rc/somebody", "-q", "1")
    assert "received PUBACK (Mid: 1, RC:0)" in out, out


def test_topic_alias_above_maximum_is_refused(port):
    # Topic Alias Maximum is 10: alias 11 gets DISCONNECT 0x94 (Topic Alias invalid).
    r = subprocess.run(
        ["mosquitto_pub", "-V", "5", "-d", "-h", "127.0.0.1", "-p", str(port), "-t", "m5/bad",
         "-q", "1", "-m", "x", "-D", "PUBLISH", "topic-alias", "11"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=WAIT,
    )
    out = r.stdout + r.stderr
    assert "Received DISCONNECT (148)" in out, out
    assert "received PUBACK" not in out, out
    assert r.returncode != 0, out


def test_qos1_burst_with_small_receive_maximum(port, subs):
    # The subscriber allows 2 unacknowledged messages (libmosquitto treats one beyond its quota
    # as a protocol error); mosquitto_pub keeps to the broker's Receive Maximum of 20.
    s = subs("-t", "m5/burst", "-q", "1", "-D", "CONNECT", "receive-maximum", "2")
    n = 200
    r = subprocess.run(
        ["mosquitto_pub", "-V", "5", "-h", "127.0.0.1", "-p", str(port), "-t", "m5/burst",
         "-q", "1", "-l"],
        input="".join(f"{i}\n" for i in range(n)),
        capture_output=True, text=True, timeout=WAIT,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert [s.message()["payload"] for _ in range(n)] == [str(i) for i in range(n)]
    assert s.proc.poll() is None, f"mosquitto_sub ended: {s.seen[-5:]}"
