"""Interoperability with MQTT.js (npm `mqtt` 5.x) at MQTT 5: runs the node:test files in
tests/interop/js against the real broker binary, which this module starts like the others and
names to them in SUPERMQ_PORT.

The npm dependencies come from tests/interop/js/package-lock.json (`npm ci` there, as .ci/run
does). Without node this module is skipped; with node but without the installed package it
fails, so a broken install is not mistaken for a pass.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent / "js"
TIMEOUT = 120.0

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None, reason="node not installed (MQTT.js suite needs node >= 18)"
)


def test_mqttjs_v5(broker):
    if not (JS / "node_modules" / "mqtt" / "package.json").is_file():
        pytest.fail(f"MQTT.js not installed: run `npm ci` in {JS}")
    tests = sorted(str(p) for p in JS.glob("*.test.mjs"))
    assert tests, f"no *.test.mjs in {JS}"
    env = {**os.environ, "SUPERMQ_PORT": str(broker.port)}
    r = subprocess.run(
        ["node", "--test", "--test-reporter=spec", *tests],
        cwd=JS,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert r.returncode == 0, f"node --test failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
