"""Brokers for benches/compare.py: how each is configured, started and stopped, and the
process and machine readings taken around every run.

Every broker gets the same limits: MAX_QUEUED messages queued per client, the in-flight
window of `--inflight`, no queued-bytes bound, TCP_NODELAY, no $SYS, no persistence.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

# Limits shared by every broker, so they queue and window alike. "Unlimited" in-flight is
# Mosquitto's 0; supermq's largest window is 65,535.
MAX_QUEUED = 100_000

class Broker:
    """A broker binary and how to configure, start and stop it."""

    name = "?"

    def __init__(self, path, args):
        self.path = path
        self.args = args

    def version(self):
        raise NotImplementedError

    def config(self, port, tmp):
        """Writes a config file for `port` into `tmp`; returns the command line."""
        raise NotImplementedError

    def start(self, port, tmp):
        cmd = self.config(port, tmp)
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

    def __init__(self, path, args, threads, name=None):
        super().__init__(path, args)
        self.threads = threads
        if name:
            self.name = name

    def version(self):
        return first_line([str(self.path), "--version"])

    def config(self, port, tmp):
        inflight = self.args.inflight or 65535
        conf = Path(tmp) / "supermq.toml"
        conf.write_text(f"""\
[[listener]]
name = "tcp"
protocol = "tcp"
bind = "127.0.0.1:{port}"

[limits]
max_connections = 100000

[session]
max_inflight = {inflight}
max_queued_messages = {MAX_QUEUED}
# No byte bound, as Mosquitto's max_queued_bytes 0.
max_queued_bytes = {1 << 40}
# Mosquitto has no slow-consumer disconnect.
slow_consumer_timeout = "0s"

[log]
level = "warn"

[engine]
worker_threads = {self.threads}

[sys]
interval = "0s"
""")
        return [str(self.path), "-c", str(conf)]


class Mosquitto(Broker):
    name = "mosquitto"

    def version(self):
        # `mosquitto -h` prints the version on its first line (and exits non-zero).
        return first_line([str(self.path), "-h"])

    def config(self, port, tmp):
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"""\
listener {port} 127.0.0.1
allow_anonymous true
max_queued_messages {MAX_QUEUED}
max_inflight_messages {self.args.inflight}
# Without it Mosquitto's latency is bound by Nagle's algorithm (milliseconds).
set_tcp_nodelay true
sys_interval 0
persistence false
log_dest stderr
log_type error
log_type warning
""")
        return [str(self.path), "-c", str(conf)]


class Rumqttd(Broker):
    """rumqttd 0.19+ (config format with [router] and [v4.1]); best effort."""

    name = "rumqttd"

    def version(self):
        return first_line([str(self.path), "--version"])

    def config(self, port, tmp):
        inflight = self.args.inflight or 65535
        conf = Path(tmp) / "rumqttd.toml"
        conf.write_text(f"""\
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
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 1048576
    max_inflight_count = {inflight}
    dynamic_filters = true
""")
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
