"""The embedded stack: start, restart on existing data, stop with no process left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg2
import pytest
import redis

from devstack.services import _pid_alive
from devstack.stack import Stack, read_state, unreachable
from tests.conftest import ROOT, free_port


def _alive(pids) -> list[int]:
    return [pid for pid in pids if _pid_alive(pid) and not _zombie(pid)]


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


def test_start_restart_on_existing_data_and_stop_leaves_no_process(tmp_path):
    stack = Stack(tmp_path, environ={}, fixed_ports=False)
    urls = stack.start()
    pids = list(stack.pids().values())
    assert len(_alive(pids)) == 3
    assert read_state(tmp_path)["urls"] == urls
    with psycopg2.connect(urls["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    assert redis.Redis.from_url(urls["REDIS_URL"]).ping()
    stack.stop()
    assert _alive(pids) == []
    assert read_state(tmp_path) is None

    again = Stack(tmp_path, environ={}, fixed_ports=False)
    urls = again.start()
    try:
        with psycopg2.connect(urls["DATABASE_URL"]) as conn, conn.cursor() as cur:
            cur.execute("SELECT v FROM kept")
            assert cur.fetchall() == [("still here",)]
    finally:
        pids = list(again.pids().values())
        again.stop()
    assert _alive(pids) == []


def test_services_named_by_the_environment_are_not_started(tmp_path):
    environ = {
        "DATABASE_URL": "postgres://example@127.0.0.1:5999/x",
        "REDIS_URL": "redis://127.0.0.1:6999/0",
    }
    stack = Stack(tmp_path, environ=environ, fixed_ports=False)
    urls = stack.start()
    try:
        assert urls["DATABASE_URL"] == environ["DATABASE_URL"]
        assert urls["REDIS_URL"] == environ["REDIS_URL"]
        assert set(stack.pids()) == {"tansu"}
    finally:
        stack.stop()


def test_a_second_stack_on_the_same_folder_is_refused(tmp_path):
    first = Stack(tmp_path, environ={"DATABASE_URL": "x", "KAFKA_BOOTSTRAP_SERVERS": "y"}, fixed_ports=False)
    first.start()
    try:
        from devstack.services import ServiceError

        with pytest.raises(ServiceError, match="already running"):
            Stack(tmp_path, environ={"DATABASE_URL": "x", "KAFKA_BOOTSTRAP_SERVERS": "y"}).start()
    finally:
        first.stop()


def test_an_unreachable_configured_service_gets_one_line_naming_it():
    port = free_port()
    problems = unreachable({"REDIS_URL": f"redis://127.0.0.1:{port}/0", "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"})
    assert problems == [
        f"Redis is unreachable at 127.0.0.1:{port} (REDIS_URL=redis://127.0.0.1:{port}/0)",
        f"Kafka is unreachable at 127.0.0.1:{port} (KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port})",
    ]


def test_the_command_line_reports_an_unreachable_service_without_a_traceback(tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"postgres://u@127.0.0.1:{port}/x"}
    result = subprocess.run(
        [sys.executable, "-m", "devstack", "exec", "--data", str(tmp_path), "--", "true"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: PostgreSQL is unreachable at 127.0.0.1:{port} (DATABASE_URL=postgres://u@127.0.0.1:{port}/x)"
    )
