"""Structured logs (streams/logs.py): the JSON formatter and the request id middleware."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest

from streams import logs
from streams.logs import REQUEST_ID_HEADER, JsonFormatter, request_id_for


def _record(msg: str = "hello %s", args=("world",), *, level=logging.INFO, exc_info=None, **extra):
    record = logging.getLogger("chat.test").makeRecord(
        "chat.test", level, __file__, 1, msg, args, exc_info, extra=extra or None
    )
    return record


def test_a_line_is_one_json_object_with_its_fields_and_the_bound_ids():
    token = logs.bind(request_id="r-1", client_msg_id=None)  # None is left out
    try:
        line = JsonFormatter().format(_record(room=7))
    finally:
        logs.unbind(token)
    assert "\n" not in line
    data = json.loads(line)
    assert data["msg"] == "hello world"
    assert data["level"] == "INFO"
    assert data["logger"] == "chat.test"
    assert data["process"] > 0
    assert data["ts"].endswith("+00:00") and "T" in data["ts"]
    assert data["request_id"] == "r-1"
    assert "client_msg_id" not in data
    assert data["room"] == 7  # an extra= field
    assert logs.bound() == {}  # unbound again


def test_an_exception_is_one_string_field_and_the_line_stays_one_line():
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        line = JsonFormatter().format(_record("failed", (), level=logging.ERROR, exc_info=sys.exc_info()))
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "ERROR"
    assert data["exc"].startswith("Traceback") and "ValueError: bad\nvalue" in data["exc"]


def test_a_field_json_cannot_hold_is_written_as_text():
    data = json.loads(JsonFormatter().format(_record(thing=object(), ids={1, 2})))
    assert data["thing"].startswith("<object object")
    assert isinstance(data["ids"], str)


def test_ids_bound_in_one_task_are_not_seen_by_another():
    async def task(name: str, seen: dict) -> None:
        logs.bind(conn_id=name)
        await asyncio.sleep(0.01)
        seen[name] = logs.bound().get("conn_id")

    async def main() -> dict:
        seen: dict = {}
        await asyncio.gather(task("a", seen), task("b", seen))
        return seen

    assert asyncio.run(main()) == {"a": "a", "b": "b"}
    assert "conn_id" not in logs.bound()


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc-123", True),
        ("0af7651916cd43dd8448eb211c80319c", True),
        ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("evil\nforged line", False),
        ("tab\there", False),
        ("with space", False),
        ('quote"', False),
        ("", False),
        (None, False),
    ],
)
def test_a_caller_request_id_is_kept_only_when_short_and_plain(incoming, kept):
    chosen = request_id_for(incoming)
    if kept:
        assert chosen == incoming
    else:
        assert chosen != incoming
        assert len(chosen) == 32 and chosen.isalnum()


@pytest.mark.django_db
def test_the_middleware_echoes_a_valid_request_id(client):
    answer = client.get("/healthz", headers={REQUEST_ID_HEADER: "trace-42"})
    assert answer[REQUEST_ID_HEADER] == "trace-42"


@pytest.mark.django_db
def test_the_middleware_makes_an_id_when_none_or_a_hostile_one_comes(client):
    first = client.get("/healthz")[REQUEST_ID_HEADER]
    second = client.get("/healthz")[REQUEST_ID_HEADER]
    assert len(first) == 32 and first != second
    hostile = client.get("/healthz", headers={REQUEST_ID_HEADER: "a" * 500})[REQUEST_ID_HEADER]
    assert hostile != "a" * 500 and len(hostile) == 32
    control = client.get("/healthz", headers={REQUEST_ID_HEADER: "a\x1bb"})[REQUEST_ID_HEADER]
    assert control != "a\x1bb" and len(control) == 32


@pytest.mark.django_db
def test_log_lines_of_a_request_carry_its_id_and_nothing_after_it(client):
    """A request's log lines have its id (Django's "Not Found" too, written after the middleware
    returned); the id is unbound once the response is made."""
    seen: list[dict] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(json.loads(JsonFormatter().format(record)))

    handler = Keep(level=logging.DEBUG)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        answer = client.get("/no-such-page-here", headers={REQUEST_ID_HEADER: "trace-404"})
    finally:
        logger.removeHandler(handler)
    assert answer.status_code == 404
    assert answer[REQUEST_ID_HEADER] == "trace-404"
    assert any(line.get("request_id") == "trace-404" and "Not Found" in line["msg"] for line in seen), seen
    assert all("request" not in line for line in seen)  # the request object is not written out
    assert "request_id" not in logs.bound()
