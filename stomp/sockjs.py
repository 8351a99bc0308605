"""SockJS 0.3 over HTTP at /stomp/chat: ``info``, and the ``xhr`` (polling) and ``xhr_streaming``
transports with ``xhr_send`` for what the client sends. Everything else goes to Django.

An HTTP session lives in this process (a load balancer in front of several web processes must keep
a session's requests on one: sticky by path, docs/stomp.md). It ends when no receiving request
has been open for CHAT_SOCKJS_DISCONNECT_DELAY_S, or when the STOMP session closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re

from django.conf import settings

from accounts.ws_auth import WebSocketAuthMiddleware

from .session import StompSession
from .transports import SOCKJS_GO_AWAY, sockjs_messages

log = logging.getLogger(__name__)

PREFIX = "/stomp/chat/"
_SESSION_PATH = re.compile(r"/stomp/chat/[^/.]+/([^/.]+)/(xhr|xhr_streaming|xhr_send)")
STREAMING_LIMIT_BYTES = 128 * 1024  # then the client opens a new streaming request (SockJS's rule)
MAX_SEND_BYTES = 128 * 1024
ANOTHER_CONNECTION = 'c[2010,"Another connection still open"]'


class HttpSession:
    """A SockJS session carried by HTTP requests: frames queue here until a receiving request takes them."""

    def __init__(self, session_id: str, scope) -> None:
        self.session_id = session_id
        self.queue: list[str] = []
        self.ready = asyncio.Event()
        self.receiving = False
        self.close_frame: str | None = None
        self.last_seen = asyncio.get_running_loop().time()
        self.stomp = StompSession(scope=scope, session_id=session_id, write=self._write, close=self._close)
        self.reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _write(self, texts: list[str]) -> None:
        self.queue.extend(texts)
        self.ready.set()

    async def _close(self) -> None:
        # Kept until the disconnect delay: a request on a closed session is answered c[3000,...].
        self.close_frame = SOCKJS_GO_AWAY
        self.ready.set()

    def take(self) -> str | None:
        """The next frame for a receiving request (``a[...]`` or the close frame), or None."""
        if self.queue:
            texts, self.queue = self.queue, []
            return "a" + json.dumps(texts, separators=(",", ":"))
        if self.close_frame is not None:
            return self.close_frame
        self.ready.clear()
        return None

    async def _reap(self) -> None:
        loop = asyncio.get_running_loop()
        delay = settings.CHAT_SOCKJS_DISCONNECT_DELAY_S
        while True:
            await asyncio.sleep(max(delay / 4, 0.1))
            if not self.receiving and loop.time() - self.last_seen > delay:
                await self.end()
                return

    async def end(self) -> None:
        if _sessions.get(self.session_id) is self:
            del _sessions[self.session_id]
            await self.stomp.closed_by_transport()
        if self.reaper is not asyncio.current_task():
            self.reaper.cancel()


_sessions: dict[str, HttpSession] = {}


def sockjs_http(django_app):
    """The HTTP application: SockJS's paths under /stomp/chat/, Django for everything else."""
    authenticated = WebSocketAuthMiddleware(_handle)  # cookie (with the Origin check) or token

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            return await authenticated(scope, receive, send)
        return await django_app(scope, receive, send)

    return app


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _cors(scope) -> list[tuple[bytes, bytes]]:
    origin = _header(scope, b"origin")
    return [
        (b"access-control-allow-origin", (origin or "*").encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"cache-control", b"no-store, no-cache, no-transform, must-revalidate, max-age=0"),
    ]


async def _respond(send, scope, status: int, body: str = "", content_type: str = "text/plain; charset=UTF-8"):
    headers = [(b"content-type", content_type.encode()), *_cors(scope)]
    if status == 204 and scope["method"] == "OPTIONS":
        headers += [
            (b"access-control-allow-methods", b"OPTIONS, GET, POST"),
            (b"access-control-max-age", b"31536000"),
        ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


async def _read_body(receive) -> bytes | None:
    """The request body; None if it is larger than MAX_SEND_BYTES or the client went away."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_SEND_BYTES:
            return None
        if not message.get("more_body"):
            return bytes(body)


async def _handle(scope, receive, send):
    path, method = scope["path"], scope["method"]
    if path.rstrip("/") == PREFIX + "info":
        if method == "OPTIONS":
            return await _respond(send, scope, 204)
        info = {"websocket": True, "cookie_needed": False, "origins": ["*:*"], "entropy": random.getrandbits(31)}
        return await _respond(send, scope, 200, json.dumps(info), "application/json; charset=UTF-8")
    match = _SESSION_PATH.fullmatch(path)
    if match is None:
        return await _respond(send, scope, 404, "Not found")
    if method == "OPTIONS":
        return await _respond(send, scope, 204)
    if method != "POST":
        return await _respond(send, scope, 405)
    session_id, transport = match.groups()
    if transport == "xhr_send":
        return await _xhr_send(scope, receive, send, session_id)
    session = _sessions.get(session_id)
    opened = session is None
    if opened:
        session = _sessions[session_id] = HttpSession(session_id, scope)
    if transport == "xhr":
        return await _xhr_poll(scope, receive, send, session, opened)
    return await _xhr_streaming(scope, receive, send, session, opened)


async def _xhr_send(scope, receive, send, session_id: str):
    session = _sessions.get(session_id)
    if session is None:
        return await _respond(send, scope, 404, "No such session.")
    body = await _read_body(receive)
    if body is None:
        return await _respond(send, scope, 413, "Payload too large.")
    if not body:
        return await _respond(send, scope, 500, "Payload expected.")
    messages = sockjs_messages(body.decode(errors="replace"))
    if messages is None:
        return await _respond(send, scope, 500, "Broken JSON encoding.")
    session.last_seen = asyncio.get_running_loop().time()
    for message in messages:
        await session.stomp.received(message.encode())
    await _respond(send, scope, 204)


async def _wait_for_frame(session: HttpSession, receive) -> str | None:
    """The next frame for the client, "h" after a heart-beat interval, or None if it went away."""
    text = session.take()
    if text is not None:
        return text
    gone = asyncio.ensure_future(_disconnected(receive))
    ready = asyncio.ensure_future(session.ready.wait())
    try:
        done, _ = await asyncio.wait({gone, ready}, timeout=settings.CHAT_SOCKJS_HEARTBEAT_S,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    finally:
        gone.cancel()
        ready.cancel()
    if gone in done:
        return None
    return session.take() or "h"


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _xhr_poll(scope, receive, send, session: HttpSession, opened: bool):
    if opened:
        return await _respond(send, scope, 200, "o\n", "application/javascript; charset=UTF-8")
    if session.receiving:
        return await _respond(send, scope, 200, ANOTHER_CONNECTION + "\n", "application/javascript; charset=UTF-8")
    session.receiving = True
    try:
        text = await _wait_for_frame(session, receive)
    finally:
        session.receiving = False
        session.last_seen = asyncio.get_running_loop().time()
    if text is not None:
        await _respond(send, scope, 200, text + "\n", "application/javascript; charset=UTF-8")


async def _xhr_streaming(scope, receive, send, session: HttpSession, opened: bool):
    headers = [(b"content-type", b"application/javascript; charset=UTF-8"), *_cors(scope)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    # The prelude: 2 KB of "h" so that browsers hand over the chunks as they come.
    await send({"type": "http.response.body", "body": b"h" * 2048 + b"\n", "more_body": True})
    if session.receiving:
        await send({"type": "http.response.body", "body": (ANOTHER_CONNECTION + "\n").encode()})
        return
    session.receiving = True
    sent = 0
    try:
        if opened:
            await send({"type": "http.response.body", "body": b"o\n", "more_body": True})
        while sent < STREAMING_LIMIT_BYTES:
            text = await _wait_for_frame(session, receive)
            if text is None:
                return  # the client went away; the session lives on until the disconnect delay
            chunk = (text + "\n").encode()
            sent += len(chunk)
            final = text.startswith("c[")
            await send({"type": "http.response.body", "body": chunk, "more_body": not final})
            if final:
                return
        await send({"type": "http.response.body", "body": b""})
    finally:
        session.receiving = False
        session.last_seen = asyncio.get_running_loop().time()
