"""Interoperability with the Mosquitto command-line clients (`mosquitto_pub`, `mosquitto_sub`)
against the real broker binary.

`mosquitto_sub` runs with `-d`, whose debug lines tell when the subscription is acknowledged,
so publishing starts only once it is in place; `stdbuf -oL` makes it write line by line into
the pipe. Messages are printed as `topic|qos|retain|payload` (`-F`). Every wait has a timeout.
Where a test shows that something did *not* arrive, a marker published afterwards is awaited
instead: the broker keeps each subscriber's messages in order.
"""

import queue
import shutil
import signal
import subprocess
import threading

import pytest

WAIT = 10.0
FORMAT = "%t|%q|%r|%p"

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_sub") is None or shutil.which("mosquitto_pub") is None,
    reason="mosquitto-clients not installed",
)


def pub(port, topic, *args, message="m"):
    """Runs mosquitto_pub to completion; `message=None` sends an empty payload (-n)."""
    payload = ["-n"] if message is None else ["-m", message]
    r = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, *payload, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert r.returncode == 0, f"mosquitto_pub {topic} {args}: {r.returncode} {r.stderr}"


class Sub:
    """A running mosquitto_sub; its output lines are collected by a reader thread."""

    def __init__(self, port, *args, wait_subscribed=True):
        cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-d", "-F", FORMAT, *args]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", *cmd]
        # stdbuf execs mosquitto_sub, so signals sent to this process reach the client itself.
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        if wait_subscribed:
            self.wait_line(lambda s: s.startswith("Subscribed"), "SUBACK")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, pred, what):
        """The next output line satisfying `pred`, skipping others."""
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
        """The next message as (topic, qos, retain, payload)."""
        line = self.wait_line(
            lambda s: not s.startswith("Client ") and not s.startswith("Subscribed"), "message"
        )
        topic, qos, retain, payload = line.split("|", 3)
        return topic, int(qos), retain == "1", payload

    def until_barrier(self, topic):
        before = []
        while True:
            m = self.message()
            if m[0] == topic and m[3] == "barrier":
                return before
            before.append(m)

    def wait_exit(self):
        try:
            return self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"mosquitto_sub still running after {WAIT}s: {self.seen}")

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=WAIT)

    def stop(self):
        """Cleanup: SIGTERM, and SIGKILL if it lingers (a mosquitto_sub in its reconnect
        back-off after a take-over can take longer than WAIT to act on SIGTERM)."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


@pytest.fixture
def subs(port):
    """Factory for mosquitto_sub processes on the module's broker, all stopped at the end."""
    made = []

    def make(*args, **kw):
        s = Sub(port, *args, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def test_pub_sub_at_each_qos_is_delivered_at_the_minimum_qos(port, subs):
    for sub_qos in range(3):
        s = subs("-t", f"mq/qos/{sub_qos}", "-q", str(sub_qos), "-C", "3", "-W", str(int(WAIT)))
        for pub_qos in range(3):
            pub(port, f"mq/qos/{sub_qos}", "-q", str(pub_qos), message=f"p{pub_qos}")
            assert s.message() == (
                f"mq/qos/{sub_qos}",
                min(pub_qos, sub_qos),
                False,
                f"p{pub_qos}",
            ), "delivered at min(publish QoS, subscription QoS)"
        assert s.wait_exit() == 0, "mosquitto_sub exits 0 after -C messages"


def test_retained_set_replace_and_delete(port, subs):
    pub(port, "mq/ret", "-r", "-q", "1", message="v1")
    s = subs("-t", "mq/ret", "-C", "1", "-W", str(int(WAIT)))
    assert s.message() == ("mq/ret", 0, True, "v1")

    pub(port, "mq/ret", "-r", "-q", "1", message="v2")
    s = subs("-t", "mq/ret", "-q", "1", "-C", "1", "-W", str(int(WAIT)))
    assert s.message() == ("mq/ret", 1, True, "v2"), "the new value replaced the old"

    pub(port, "mq/ret", "-r", "-q", "1", message=None)
    s = subs("-t", "mq/#", "-q", "1")
    pub(port, "mq/barrier", "-q", "1", message="barrier")
    assert s.until_barrier("mq/barrier") == [], "an empty retained payload deletes it"


def test_will_is_published_when_the_client_is_killed(port, subs):
    watcher = subs("-t", "mq/will/#", "-q", "2")
    victim = subs(
        "-t", "mq/unused", "-i", "mq-victim",
        "--will-topic", "mq/will/victim", "--will-payload", "gone", "--will-qos", "1",
    )
    victim.kill(signal.SIGKILL)
    assert watcher.message() == ("mq/will/victim", 1, False, "gone")


def test_no_will_after_clean_disconnect(port, subs):
    watcher = subs("-t", "mq/nowill/#", "-q", "2")
    # mosquitto_pub disconnects cleanly after publishing.
    pub(
        port, "mq/unused", "-i", "mq-polite",
        "--will-topic", "mq/nowill/polite", "--will-payload", "gone", "--will-qos", "1",
    )
    # -E: subscribe, then disconnect cleanly as soon as the SUBACK arrives.
    quick = subs(
        "-t", "mq/unused", "-E", "-i", "mq-polite-sub",
        "--will-topic", "mq/nowill/polite-sub", "--will-payload", "gone",
    )
    assert quick.wait_exit() == 0
    pub(port, "mq/nowill/barrier", "-q", "1", message="barrier")
    assert watcher.until_barrier("mq/nowill/barrier") == [], "no will after DISCONNECT"


def test_persistent_session_offline_queue(port, subs):
    session = ["-c", "-i", "mq-persist", "-q", "1", "-t", "mq/persist"]
    first = subs(*session, "-E")
    assert first.wait_exit() == 0
    pub(port, "mq/persist", "-q", "1", message="one")
    pub(port, "mq/persist", "-q", "2", message="two")
    pub(port, "mq/persist", "-q", "0", message="dropped")
    again = subs(*session, "-C", "2", "-W", str(int(WAIT)), wait_subscribed=False)
    assert again.message() == ("mq/persist", 1, False, "one")
    assert again.message() == ("mq/persist", 1, False, "two"), "QoS 2 sent at the granted 1"
    assert again.wait_exit() == 0
    assert any("CONNACK (0)" in line for line in again.seen)


def test_dollar_topics_are_not_matched_by_hash(port, subs):
    everything = subs("-t", "#", "-q", "1")
    dollar = subs("-t", "$mq/#", "-q", "1", "-C", "1", "-W", str(int(WAIT)))
    pub(port, "$mq/x", "-q", "1", message="hidden")
    assert dollar.message() == ("$mq/x", 1, False, "hidden")
    pub(port, "mq/dollar/done", "-q", "1", message="barrier")
    leaked = [m for m in everything.until_barrier("mq/dollar/done") if m[0].startswith("$")]
    assert leaked == [], "# does not match topics starting with $"


def test_take_over_closes_the_first_connection(port, subs):
    first = subs("-t", "mq/takeover", "-i", "mq-same")
    pub(port, "mq/takeover", "-i", "mq-same", "-q", "1", message="x")
    # The broker closed the first connection; mosquitto_sub notices and connects again,
    # which shows as a second CONNECT in its debug output.
    first.wait_line(lambda s: s.endswith("sending CONNECT"), "reconnect after take-over")


def test_wildcards_and_unsubscribe_by_exit(port, subs):
    plus = subs("-t", "mq/w/+/score", "-q", "1")
    hash_ = subs("-t", "mq/w/#", "-q", "1")
    topics = ["mq/w/tennis/score", "mq/w/tennis/player/score", "mq/w", "mq/other/score"]
    for t in topics:
        pub(port, t, "-q", "1", message=t)
    pub(port, "mq/w/end/score", "-q", "1", message="barrier")
    assert [m[0] for m in plus.until_barrier("mq/w/end/score")] == ["mq/w/tennis/score"]
    assert [m[0] for m in hash_.until_barrier("mq/w/end/score")] == topics[:3]
    # mosquitto_sub can unsubscribe on the command line: -U removes a filter right after
    # subscribing, so only the other one delivers.
    u = subs("-t", "mq/u/a", "-t", "mq/u/b", "-U", "mq/u/a", "-q", "1")
    u.wait_line(lambda s: "received UNSUBACK" in s, "UNSUBACK")
    pub(port, "mq/u/a", "-q", "1", message="after")
    pub(port, "mq/u/b", "-q", "1", message="barrier")
    assert u.until_barrier("mq/u/b") == [], "nothing on an unsubscribed filter"


def test_mqtt_31_clients(port, subs):
    s = subs("-V", "mqttv31", "-t", "mq/v31", "-q", "2", "-C", "1", "-W", str(int(WAIT)))
    pub(port, "mq/v31", "-V", "mqttv31", "-q", "2", message="old")
    assert s.message() == ("mq/v31", 2, False, "old")
    assert s.wait_exit() == 0
