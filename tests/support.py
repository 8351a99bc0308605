"""Helpers for end-to-end tests: a real WebSocket chat client and ORM calls from async tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import websockets
from django.db import connections


async def in_thread(fn, *args, **kwargs):
    """Run ORM code from an async test in a worker thread, closing that thread's connections.

    (An open connection left in a pool thread would keep the test database from being dropped.)
    """

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)


def token_for(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


class SocketClient:
    """What the tests' WebSocket clients share: ``ws``, ``name``, the ``frames`` kept and the
    ``reader`` task filling them (set by each client's constructor)."""

    async def wait_for(self, predicate, timeout: float = 20.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            if loop.time() > deadline:
                raise AssertionError(f"{self.name}: condition not met; last frames: {self.frames[-5:]}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


class ChatClient(SocketClient):
    """A chat client over a real WebSocket, keeping every frame it receives."""

    def __init__(self, ws, name: str) -> None:
        self.ws = ws
        self.name = name
        self.frames: list[dict] = []
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, url: str, user) -> ChatClient:
        key = await in_thread(token_for, user)
        ws = await websockets.connect(url, additional_headers={"Authorization": f"Token {key}"})
        return cls(ws, user.username)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append(json.loads(text))
        except websockets.ConnectionClosed:
            pass

    async def send(self, **frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def send_message(self, room: int, body: str, client_msg_id: str | None = None) -> str:
        client_msg_id = client_msg_id or str(uuid.uuid4())
        await self.send(type="message.send", room=room, client_msg_id=client_msg_id, body=body, req=client_msg_id)
        return client_msg_id

    def of_type(self, kind: str) -> list[dict]:
        return [f for f in self.frames if f["type"] == kind]

    def new_messages(self, room: int, *, system: bool = False) -> list[dict]:
        """The room's messages heard so far; its system lines ("bob left") only if ``system``."""
        return [
            f["message"]
            for f in self.of_type("message.new")
            if f["message"]["room"] == room and (system or f["message"].get("kind", "text") != "system")
        ]


class KafkaTap:
    """Reads what was produced to a topic after it was created (tests call workers' consume())."""

    def __init__(self, name: str) -> None:
        from confluent_kafka import Consumer, TopicPartition
        from django.conf import settings

        from streams.pipeline import kafka

        # Envelopes stamped before this moment are ignored: the broker's "end" offset can lag a
        # record acknowledged a moment ago, which would leak an earlier test's records in here.
        self.since = datetime.now(UTC).isoformat()
        self.consumer = Consumer(
            {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": "test-tap", "enable.auto.commit": False}
        )
        topic = kafka.topic(name)
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        # Start at each partition's end as it is now, before the test produces.
        self.consumer.assign(
            [TopicPartition(topic, p, self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
             for p in partitions]
        )  # fmt: skip

    def records(self, expected: int, timeout: float = 10.0) -> list:
        """Poll until ``expected`` records arrived (or the timeout), decoded as worker Records."""
        import time

        from streams.pipeline.worker import Record

        out, deadline = [], time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for r in self.consumer.consume(100, 0.2):
                if r.error() is not None:
                    continue
                value = json.loads(r.value())
                if value.get("ts", self.since) >= self.since:
                    out.append(Record(r.topic(), r.partition(), r.offset(), r.key(), value))
        return out

    def close(self) -> None:
        self.consumer.close()
