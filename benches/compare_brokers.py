"""Brokers for benches/compare.py: how each is configured, started and stopped, and the
process and machine readings taken around every run.

Every broker is run under one of two profiles. "raised": the same limits for all, MAX_QUEUED
messages queued per client, the in-flight window of `--inflight`, no queued-bytes bound.
"defaults": each broker's shipped limits, what users get. Both profiles set TCP_NODELAY, no
$SYS, no persistence; each broker's config file is its fixed part (`base_text`) followed by
the part that depends on the profile (`profile_text`).
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

# Limits shared by every broker in the raised profile, so they queue and window alike.
# "Unlimited" in-flight is Mosquitto's 0; supermq's largest window is 65,535.
MAX_QUEUED = 100_000

PROFILES = ("raised", "defaults")
# Unacknowledged QoS 1/2 messages per publisher of the load generator (`--window`): raised,
# its default; defaults, what mosquitto_pub and paho keep at most.
WINDOW = {"raised": 100, "defaults": 20}


class Broker:
    """A broker binary and how to configure, start and stop it."""

    name = "?"
    conf_name = "broker.conf"
    # What the defaults profile leaves each limit at, for the report.
    shipped = ""

    def __init__(self, path, args):
        self.path = path
        self.args = args

    def version(self):
        raise NotImplementedError

    def base_text(self, port):
        """The part of the config file that both profiles share."""
        raise NotImplementedError

    def profile_text(self, profile):
        """The part of the config file that `profile` adds ("" for none)."""
        raise NotImplementedError

    def command(self, conf):
        """The command line that runs the broker with the config file `conf`."""
        return [str(self.path), "-c", str(conf)]

    def config(self, port, tmp, profile):
        """Writes the config file for `port` and `profile` into `tmp`; returns the command."""
        conf = Path(tmp) / self.conf_name
        extra = self.profile_text(profile)
        conf.write_text(self.base_text(port) + ("\n" + extra if extra else ""))
        return self.command(conf)

    def start(self, port, tmp, profile):
        cmd = self.config(port, tmp, profile)
        log = open(Path(tmp) / f"{self.name}.log", "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        proc.log_path = log.name
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at startup (code {proc.returncode}): "
                                   + tail(proc.log_path))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return proc
            except OSError:
                time.sleep(0.05)
        stop(proc)
        raise RuntimeError(f"{self.name} did not listen on port {port} within 10 s")


class Supermq(Broker):
    name = "supermq"
    conf_name = "supermq.toml"
    shipped = ("`[limits]` and `[session]` at their defaults (src/config/defaults.rs): "
               "max_connections 100,000, max_inflight 20, max_queued_messages 1,000, "
               "max_queued_bytes 64 MiB, slow_consumer_timeout 30 s, stall_timeout 2 s (a "
               "full queue paces its publishers until its subscriber has taken nothing for "
               "that long)")

    def __init__(self, path, args, threads, name=None):
        super().__init__(path, args)
        self.threads = threads
        if name:
            self.name = name

    def version(self):
        return first_line([str(self.path), "--version"])

    def base_text(self, port):
        return f"""\
[[listener]]
name = "tcp"
protocol = "tcp"
bind = "127.0.0.1:{port}"

[log]
level = "warn"

[engine]
worker_threads = {self.threads}

[sys]
interval = "0s"

[persistence]
enabled = false
"""

    def profile_text(self, profile):
        if profile != "raised":
            return ""
        return f"""\
[limits]
max_connections = 100000

[session]
max_inflight = {self.args.inflight or 65535}
max_queued_messages = {MAX_QUEUED}
# No byte bound, as Mosquitto's max_queued_bytes 0.
max_queued_bytes = {1 << 40}
# Mosquitto has no slow-consumer disconnect.
slow_consumer_timeout = "0s"
"""


class Mosquitto(Broker):
    name = "mosquitto"
    conf_name = "mosquitto.conf"
    shipped = ("max_queued_messages 1000, max_inflight_messages 20, max_queued_bytes 0 (no "
               "byte bound): a client's messages beyond its full queue are dropped")

    def version(self):
        # `mosquitto -h` prints the version on its first line (and exits non-zero).
        return first_line([str(self.path), "-h"])

    def base_text(self, port):
        return f"""\
listener {port} 127.0.0.1
allow_anonymous true
# Without it Mosquitto's latency is bound by Nagle's algorithm (milliseconds).
set_tcp_nodelay true
sys_interval 0
persistence false
log_dest stderr
log_type error
log_type warning
"""

    def profile_text(self, profile):
        if profile != "raised":
            return ""
        return f"""\
max_queued_messages {MAX_QUEUED}
max_inflight_messages {self.args.inflight}
"""


class Rumqttd(Broker):
    """rumqttd 0.19+ (config format with [router] and [v4.1]); best effort."""

    name = "rumqttd"
    conf_name = "rumqttd.toml"
    shipped = ("rumqttd has no built-in defaults: the settings of the raised profile, "
               "with max_inflight_count 100 as in its shipped rumqttd.toml")

    def version(self):
        return first_line([str(self.path), "--version"])

    def base_text(self, port):
        return f"""\
id = 0

[router]
id = 0
max_connections = 20010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 0
"""

    def profile_text(self, profile):
        # Its shipped rumqttd.toml has max_inflight_count 100.
        inflight = (self.args.inflight or 65535) if profile == "raised" else 100
        return f"""\
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 1048576
    max_inflight_count = {inflight}
    dynamic_filters = true
"""

    def command(self, conf):
        return [str(self.path), "--config", str(conf)]


def stop(proc):
    """SIGTERM, then SIGKILL after 10 s; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def tail(path, lines=5):
    try:
        return " | ".join(Path(path).read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def install_mosquitto():
    """Installs Debian's mosquitto package when possible (root with apt-get)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    print("mosquitto not found: apt-get install -y mosquitto", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "mosquitto"], env=env, **quiet).returncode:
        subprocess.run(["apt-get", "update"], env=env, **quiet)
        subprocess.run(["apt-get", "install", "-y", "mosquitto"], env=env, **quiet)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_busy_s():
    """CPU seconds the whole machine has spent busy since boot (from /proc/stat)."""
    try:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
        return (sum(v) - v[3] - v[4]) / CLK_TCK  # minus idle and iowait
    except (OSError, ValueError):
        return None


def process_cpu_s(pid):
    """utime + stime of `pid` in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        f = stat[stat.rindex(")") + 2:].split()
        return (int(f[11]) + int(f[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
