"""Fixtures for the interoperability suite: the real `supermq` binary, already built, run on a
free loopback port with a temporary configuration file.

The binary comes from the environment variable SUPERMQ_BIN, or `target/debug/supermq` under
the repository root. Nothing here builds it: `.ci/run` does, so a stale or missing binary is
reported instead of silently rebuilt.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE = 10.0
SHUTDOWN_DEADLINE = 10.0


def broker_binary() -> Path:
    path = Path(os.environ.get("SUPERMQ_BIN", REPO / "target" / "debug" / "supermq"))
    if not path.is_absolute():
        path = REPO / path
    if not path.is_file():
        pytest.fail(f"broker binary {path} not found: run `cargo build --bin supermq` first")
    return path


def free_port() -> int:
    # The port is released before the broker binds it; on loopback nothing else is expected
    # to grab it in between.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A broker process; `port` is where it accepts MQTT connections."""

    def __init__(self, port: int, proc: subprocess.Popen, log: Path):
        self.port = port
        self.proc = proc
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_broker(workdir: Path, sys_interval: str = "0s"):
    """Starts the broker, waits until it accepts connections, yields it, then stops it with
    SIGTERM and checks it exited 0 (the documented graceful shutdown)."""
    port = free_port()
    conf = workdir / "supermq.conf"
    conf.write_text(
        "[[listener]]\n"
        'name = "tcp"\n'
        'protocol = "tcp"\n'
        f'bind = "127.0.0.1:{port}"\n'
        "\n[sys]\n"
        f'interval = "{sys_interval}"\n'
        "\n[log]\n"
        'level = "info"\n'
        # The shipped default: a durable store (here in the test's own directory).
        "\n[http]\n"
        "enabled = false\n"
        "\n[persistence]\n"
        f'dir = "{workdir / "data"}"\n'
    )
    log = workdir / "supermq.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(broker_binary()), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    broker = Broker(port, proc, log)
    try:
        wait_accepting(broker)
        yield broker
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=SHUTDOWN_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            pytest.fail(f"broker ignored SIGTERM for {SHUTDOWN_DEADLINE}s:\n{broker.log_text()}")
    assert code == 0, f"broker exited with {code} after SIGTERM:\n{broker.log_text()}"


def wait_accepting(broker: Broker) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while True:
        if broker.proc.poll() is not None:
            pytest.fail(
                f"broker exited with {broker.proc.returncode} at startup:\n{broker.log_text()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", broker.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"broker not accepting on port {broker.port} within "
                    f"{STARTUP_DEADLINE}s:\n{broker.log_text()}"
                )
            time.sleep(0.05)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """One broker per test module, $SYS off; tests use distinct topics and client ids."""
    with running_broker(tmp_path_factory.mktemp("supermq")) as b:
        yield b


@pytest.fixture
def sys_broker(tmp_path):
    """A fresh broker publishing $SYS statistics every second, for tests that need $ topics
    to exist and no other client's retained messages around."""
    with running_broker(tmp_path, sys_interval="1s") as b:
        yield b


@pytest.fixture
def port(broker) -> int:
    return broker.port
