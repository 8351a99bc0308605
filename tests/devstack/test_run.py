"""`python -m devstack run` (what `make run` does): ready within seconds, stops with nothing left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil

from tests.conftest import ROOT, free_port


def _ready(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def test_run_serves_readyz_with_every_service_and_sigterm_stops_everything(tmp_path):
    port = free_port()
    # The run starts its own services: the test stack's addresses (backup included) must not leak in.
    skip = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "BACKUP_DATABASE_URL", "DEVSTACK_STATE")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env.update(PORT=str(port), PYTHONUNBUFFERED="1")
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "run", "--data", str(tmp_path / "stack")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        body = None
        while time.monotonic() < deadline and not (body and body["status"] == "ready"):
            assert process.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            body = _ready(port)
            time.sleep(0.5)
        assert body and body["status"] == "ready", (tmp_path / "run.log").read_text()[-3000:]
        assert {name: s["state"] for name, s in body["services"].items()} == {
            "postgres": "ready", "redis": "ready", "kafka": "ready",
        }  # fmt: skip
        descendants = [p.pid for p in psutil.Process(process.pid).children(recursive=True)]
        assert len(descendants) >= 6  # 3 services + web + consumers + celery
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()
    time.sleep(0.5)
    left = [pid for pid in descendants if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert left == [], (tmp_path / "run.log").read_text()[-3000:]
    output = (tmp_path / "run.log").read_text()
    assert "log in at http://127.0.0.1:" in output
    assert "devstack | stopped" in output
