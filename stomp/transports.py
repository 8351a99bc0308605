"""The WebSocket transports of /stomp/chat: raw STOMP, and SockJS's ``websocket`` transport.

Both are thin: bytes in to the session (stomp.session), frame texts out. Authentication happened
on the handshake (accounts.ws_auth, like /ws/chat/); a CONNECT may still bring a token.
"""

from __future__ import annotations

import asyncio
import json

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from .session import StompSession, session_id_new

# Newest first: a client offering several gets the newest framing it speaks.
SUBPROTOCOLS = ("v12.stomp", "v11.stomp", "v10.stomp")
SOCKJS_GO_AWAY = 'c[3000,"Go away!"]'


class StompWebSocketConsumer(AsyncWebsocketConsumer):
    """``/stomp/chat/websocket``: one STOMP frame per WebSocket message out, anything in."""

    session: StompSession | None = None

    async def connect(self):
        offered = self.scope.get("subprotocols") or []
        chosen = next((p for p in SUBPROTOCOLS if p in offered), None)
        if offered and chosen is None:
            await self.close()  # refuses the handshake: none of the client's protocols is ours
            return
        await self.accept(subprotocol=chosen)
        self.session = StompSession(scope=self.scope, session_id=session_id_new(), write=self._write, close=self.close)

    async def _write(self, texts: list[str]) -> None:
        for text in texts:
            await self.send(text_data=text)

    async def receive(self, text_data=None, bytes_data=None):
        if self.session is not None:
            await self.session.received(text_data.encode() if text_data is not None else bytes_data)

    async def disconnect(self, code):
        if self.session is not None:
            await self.session.closed_by_transport()


class SockJSWebSocketConsumer(AsyncWebsocketConsumer):
    """``/stomp/chat/<server>/<session>/websocket``: SockJS 0.3 framing (``o``, ``h``, ``a[...]``, ``c[...]``)."""

    session: StompSession | None = None
    beater: asyncio.Task | None = None

    async def connect(self):
        await self.accept()
        await self.send(text_data="o")
        self.session = StompSession(
            scope=self.scope, session_id=self.scope["url_route"]["kwargs"]["session"], write=self._write,
            close=self._close,
        )  # fmt: skip
        self.beater = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(settings.CHAT_SOCKJS_HEARTBEAT_S)
            await self.send(text_data="h")

    async def _write(self, texts: list[str]) -> None:
        await self.send(text_data="a" + json.dumps(texts, separators=(",", ":")))

    async def _close(self) -> None:
        await self.send(text_data=SOCKJS_GO_AWAY)
        await self.close()

    async def receive(self, text_data=None, bytes_data=None):
        if self.session is None:
            return
        messages = sockjs_messages(text_data if text_data is not None else bytes_data.decode(errors="replace"))
        if messages is None:
            await self.close()  # SockJS closes the session on broken JSON
            return
        for message in messages:
            await self.session.received(message.encode())

    async def disconnect(self, code):
        if self.beater is not None:
            self.beater.cancel()
        if self.session is not None:
            await self.session.closed_by_transport()


def sockjs_messages(text: str) -> list[str] | None:
    """The strings of a SockJS client payload: a JSON array of strings, or one string; None if broken."""
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, str):
        return [data]
    if isinstance(data, list) and all(isinstance(item, str) for item in data):
        return data
    return None
