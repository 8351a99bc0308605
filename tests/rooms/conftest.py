"""Fixtures of the rooms tests: real-time events heard on the real Redis, messages stored for real."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from streams.realtime import CHANNEL_PREFIX, redis_client


class Listener:
    """A Redis subscription to some real-time groups, as an ASGI process's hub holds one."""

    def __init__(self, groups: tuple[str, ...]) -> None:
        self.pubsub = redis_client().pubsub(ignore_subscribe_messages=False)
        self.pubsub.subscribe(*(CHANNEL_PREFIX + g for g in groups))
        confirmed = 0
        deadline = time.monotonic() + 5
        while confirmed < len(groups) and time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.5)
            if message and message["type"] == "subscribe":
                confirmed += 1

    def events(self, quiet: float = 0.3) -> list[tuple[str, dict | None, dict | None]]:
        """Everything published so far, in order: (group, frame, control)."""
        got = []
        while True:
            message = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=quiet)
            if message is None:
                return got
            if message["type"] != "message":
                continue
            data = json.loads(message["data"])
            frame = json.loads(data["f"]) if data["f"] else None
            got.append((message["channel"].decode()[len(CHANNEL_PREFIX) :], frame, data["c"]))

    def close(self) -> None:
        self.pubsub.close()


@pytest.fixture
def listen():
    """``listen("room.1", "user.2")`` -> a Listener; closed after the test."""
    listeners = []

    def make(*groups: str) -> Listener:
        listener = Listener(groups)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()


@pytest.fixture
def store_messages():
    """Store messages through the persistence consumer's own service (no Kafka in between)."""
    from messages.services import messages_store, send_envelope

    def store(room, sender, count: int = 1, body: str = "hello"):
        sends = [
            send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=f"{body} {i}")
            for i in range(count)
        ]
        result = messages_store(sends=sends)
        assert len(result.stored) == count, result
        room.refresh_from_db()
        return result.stored

    return store


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` runs the block's after-commit work (events, Kafka) as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
