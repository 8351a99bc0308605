"""Fixtures of the rooms tests: what reached the real-time channels, and stored messages."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
from django.conf import settings

from streams.realtime.hub import CHANNEL_PREFIX, parse_event


class Feed:
    """Everything published to the real-time channels (real Redis) since the fixture started."""

    def __init__(self) -> None:
        self.client = redis.Redis.from_url(settings.REDIS_URL)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(CHANNEL_PREFIX + "*")
        self.pubsub.get_message(timeout=1.0)  # wait for the subscription to be in place
        self.seen: list[tuple[str, dict | None, dict | None]] = []

    def events(self, settle: float = 0.3) -> list[tuple[str, dict | None, dict | None]]:
        """(group, frame, control) of each event so far, in publish order."""
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.05)
            if message and message["type"] == "pmessage":
                texts, control = parse_event(message["data"])
                group = message["channel"].decode()[len(CHANNEL_PREFIX) :]
                for index, text in enumerate(texts or [None]):
                    self.seen.append((group, json.loads(text) if text else None, None if index else control))
        return list(self.seen)

    def clear(self) -> None:
        """Forget what was published so far."""
        self.events()
        self.seen.clear()

    def frames(self, group: str, settle: float = 0.3) -> list[dict]:
        return [frame for g, frame, _ in self.events(settle) if g == group and frame is not None]

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def feed():
    feed = Feed()
    yield feed
    feed.close()


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    """Store messages as the persistence consumer does: ``post(room, sender, count=1)``."""
    from chat_messages.services import messages_store

    def post(room, sender, count: int = 1):
        sends = [
            {"room": room.pk, "sender": sender.pk, "client_msg_id": str(uuid.uuid4()), "body": f"hello {i}"}
            for i in range(count)
        ]
        with django_capture_on_commit_callbacks(execute=True):
            messages_store(sends=sends)
        room.refresh_from_db()
        return room.last_seq

    return post


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # Users are made by the dozen here; the default hasher makes each cost most of a second.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
