"""Structured logs: a JSON formatter and the ids that follow a request or a message.

``LOG_FORMAT=json`` (chatproject/settings.py) makes every process write one JSON object per
line. Each line carries the ids bound in its context (a ``contextvars`` variable, so an asyncio
task and a thread each see their own): ``request_id`` for an HTTP request (RequestIdMiddleware),
``conn_id`` for a WebSocket connection, ``event_id`` and ``client_msg_id`` for a message on its
way through Kafka. ``grep <client_msg_id>`` over the web and persist logs then shows where a
message went (docs/operations.md, "Structured logs").

Binding costs one ``ContextVar.set``; nothing is formatted unless a line is written.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from datetime import UTC, datetime

import orjson
from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

# The ids bound now: one dict per context, never changed in place (bind() makes a new one).
_ids: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_ids", default={})  # noqa: B039 - never mutated


def bind(**ids) -> contextvars.Token:
    """Add ids to the current context; ``unbind(token)`` restores what was bound before.

    A None value is left out, so a caller can pass an id it may not have.
    """
    current = _ids.get()
    return _ids.set({**current, **{k: str(v) for k, v in ids.items() if v is not None}})


def unbind(token: contextvars.Token) -> None:
    _ids.reset(token)


def bound() -> dict[str, str]:
    """The ids bound in the current context."""
    return _ids.get()


# A LogRecord's own attributes: anything else on a record came through ``extra=`` and is logged.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO-8601, UTC), ``level``, ``logger``, ``msg``,
    ``process``, the bound ids, any ``extra=`` fields, and ``exc`` (the traceback as text)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "process": record.process,
            **_ids.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        request = line.pop("request", None)
        if request is not None:
            # Django logs a 4xx ("Not Found: ...") after the middleware returned, the id unbound;
            # it passes the request along, which carries the id (and is no field to write out).
            request_id = getattr(request, "request_id", None)
            if request_id is not None:
                line.setdefault("request_id", request_id)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra field of any type still makes a line rather than losing it.
        return orjson.dumps(line, default=str).decode()


# -- HTTP: X-Request-ID ---------------------------------------------------------------------------
REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only if it is short and made of token characters: it is echoed in a
# header and written in every log line, so a hostile one (a newline, a megabyte) is replaced.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:;@/+=-]{1,128}")


def request_id_for(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is acceptable, else a new one."""
    if incoming and _VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


@sync_and_async_middleware
def request_id_middleware(get_response):
    """Bind ``request_id`` for the request's log lines and echo it in the X-Request-ID header.

    Sync and async: in the ASGI server a sync-only middleware would cost every request a hop to
    a thread.
    """

    def _start(request) -> tuple[str, contextvars.Token]:
        request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        return request_id, bind(request_id=request_id)

    if iscoroutinefunction(get_response):

        async def middleware(request):
            request_id, token = _start(request)
            try:
                response = await get_response(request)
            finally:
                unbind(token)
            response[REQUEST_ID_HEADER] = request_id
            return response

    else:

        def middleware(request):
            request_id, token = _start(request)
            try:
                response = get_response(request)
            finally:
                unbind(token)
            response[REQUEST_ID_HEADER] = request_id
            return response

    return middleware
