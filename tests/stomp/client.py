"""A small STOMP client over a raw WebSocket (the `websockets` library), for the end-to-end tests."""

from __future__ import annotations

import asyncio
import json

import websockets

from stomp.frames import Frame, Parser, encode
from tests.support import SocketClient, in_thread, token_for


class StompClient(SocketClient):
    """Keeps every frame it receives; heart-beats (lone EOLs) are counted, not kept."""

    def __init__(self, ws, name: str) -> None:
        self.ws = ws
        self.name = name
        self.parser = Parser()
        self.parser.version = "1.2"
        self.frames: list[Frame] = []
        self.closed = asyncio.Event()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, url: str, user=None, *, subprotocols=("v12.stomp",), **kwargs) -> StompClient:
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Token {await in_thread(token_for, user)}"
        ws = await websockets.connect(url, additional_headers=headers, subprotocols=list(subprotocols), **kwargs)
        return cls(ws, user.username if user is not None else "anonymous")

    @classmethod
    async def connect(cls, url: str, user, *, heart_beat: str = "0,0", version: str = "1.2") -> StompClient:
        client = await cls.open(url, user)
        client.parser.version = version
        await client.send_frame("CONNECT", {"accept-version": version, "host": "chat", "heart-beat": heart_beat})
        await client.wait_for(lambda c: c.of("CONNECTED") or c.of("ERROR"))
        return client

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                self.frames += self.parser.feed(data.encode() if isinstance(data, str) else data)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def send_frame(self, command: str, headers: dict | None = None, body: bytes | str = b"") -> None:
        await self.ws.send(
            encode(Frame(command, headers or {}, body.encode() if isinstance(body, str) else body), "1.2")
        )

    async def subscribe(self, destination: str, sub_id: str, receipt: str | None = None) -> None:
        headers = {"id": sub_id, "destination": destination}
        if receipt:
            headers["receipt"] = receipt
        await self.send_frame("SUBSCRIBE", headers)

    async def send_json(self, destination: str, body: dict, **headers) -> None:
        await self.send_frame("SEND", {"destination": destination, "content-type": "application/json", **headers},
                              json.dumps(body))  # fmt: skip

    def of(self, command: str) -> list[Frame]:
        return [f for f in self.frames if f.command == command]

    def messages(self, destination: str) -> list[dict]:
        return [json.loads(f.body) for f in self.of("MESSAGE") if f.headers["destination"] == destination]
