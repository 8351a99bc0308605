"""Watch each test worker's Kafka broker and say, at the end of a run, when it stopped answering.

The embedded broker (Tansu) has, a few times, stopped acknowledging one worker's produce requests
for some seconds late in a run, and the e2e tests of that worker that were waiting on Kafka then
failed with "Message timed out". The failures alone do not tell a stalled broker from a bug of ours.
So every worker probes its broker once a second (a metadata request and an acknowledged produce
to a topic of its own) and notes each probe slower than a second, with the tests that were running;
the controller prints those notes and the tail of each stalled broker's log in the run's summary.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# One folder per run (the xdist workers inherit it from the controller's environment), so that
# runs at the same time in one checkout never read each other's notes.
NOTES_VARIABLE = "CHAT_BROKER_WATCH_DIR"
SLOW_S = 1.0
PROBE_TOPIC = "test.broker-probe"

_current: list[str] = []


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _notes() -> Path:
    return Path(os.environ[NOTES_VARIABLE])


def _note(record: dict) -> None:
    _notes().mkdir(parents=True, exist_ok=True)
    with open(_notes() / f"{_worker()}.jsonl", "a") as out:
        out.write(json.dumps(record) + "\n")


def _probe_forever(bootstrap: str) -> None:
    from confluent_kafka import KafkaException, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    config = {"bootstrap.servers": bootstrap, "log_level": 0}
    admin = AdminClient(config)
    try:
        admin.create_topics([NewTopic(PROBE_TOPIC, 1, 1)])[PROBE_TOPIC].result(10)
    except KafkaException:
        pass  # already there (the first worker shares `devstack exec`'s broker with earlier runs)
    producer = Producer({**config, "acks": "all", "linger.ms": 0, "message.timeout.ms": 30000})
    while True:
        started = time.monotonic()
        error = None
        try:
            admin.list_topics(timeout=30)
            outcome: list = []
            producer.produce(PROBE_TOPIC, b"probe", on_delivery=lambda err, _m, out=outcome: out.append(err))
            producer.flush(30)
            if not outcome or outcome[0] is not None:
                error = str(outcome[0]) if outcome else "not acknowledged in 30 s"
        except KafkaException as exc:
            error = str(exc)
        took = time.monotonic() - started
        if took > SLOW_S or error:
            _note({"at": time.time(), "took": round(took, 2), "error": error, "tests": list(_current)})
        time.sleep(max(0.0, 1.0 - took))


def pytest_configure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ:  # the controller, or a run without xdist
        os.environ[NOTES_VARIABLE] = str(ROOT / ".devstack" / "broker-watch" / str(os.getpid()))


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    if session.config.pluginmanager.hasplugin("dsession"):
        return  # the xdist controller runs no tests: it only reads the workers' notes at the end
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        threading.Thread(target=_probe_forever, args=(bootstrap,), name="broker-watch", daemon=True).start()


def pytest_runtest_logstart(nodeid, location):
    _current.append(nodeid)


def pytest_runtest_logfinish(nodeid, location):
    if nodeid in _current:
        _current.remove(nodeid)


def pytest_terminal_summary(terminalreporter):
    if not _notes().is_dir():
        return
    for path in sorted(_notes().glob("*.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not records:
            continue
        terminalreporter.section(f"broker of {path.stem} was slow or failed {len(records)} times")
        for record in records[:40]:
            stamp = time.strftime("%H:%M:%S", time.gmtime(record["at"]))
            terminalreporter.write_line(
                f"{stamp} {record['took']:6.2f} s {record['error'] or ''} during {', '.join(record['tests'])[:300]}"
            )
        # The first worker uses the broker `devstack exec` started (in .devstack/test).
        stack = "test" if path.stem in ("gw0", "main") else f"test-{path.stem}"
        log = ROOT / ".devstack" / stack / "tansu" / "tansu.log"
        if log.exists():
            terminalreporter.write_line(f"-- last lines of {log}:")
            for line in log.read_text(errors="replace").splitlines()[-15:]:
                terminalreporter.write_line(line)
