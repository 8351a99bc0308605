"""Fixtures of the accounts tests: fast password hashing, bulk chat history, real-time listening."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from django.db.models import F
from django.utils import timezone

from streams.realtime.hub import CHANNEL_PREFIX, parse_event, redis_client

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_from(response) -> str:
    """The CSRF token of the page's form, as a browser would submit it."""
    match = CSRF_INPUT.search(response.content.decode() if hasattr(response, "content") else response)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture(autouse=True)
def _unlimited(settings):
    """No rate limits, except where a test turns them back on."""
    settings.RATE_LIMITS_ENABLED = False


@pytest.fixture
def add_messages():
    """Store ``count`` messages from ``sender`` in ``room`` at once (bulk), after its last seq."""
    from chat_messages.models import Message
    from rooms.models import Room

    def add(room, sender, count: int = 1, body: str = "hello") -> list:
        start = Room.objects.values_list("last_seq", flat=True).get(pk=room.pk)
        now = timezone.now()
        rows = [
            Message(
                room_id=room.pk,
                seq=start + i,
                sender=sender,
                client_msg_id=uuid.uuid4(),
                body=f"{body} {start + i}",
                created_at=now,
            )
            for i in range(1, count + 1)
        ]
        Message.objects.bulk_create(rows, batch_size=2000)
        Room.objects.filter(pk=room.pk).update(
            last_seq=F("last_seq") + count, last_message_at=now, last_message_preview=rows[-1].body[:140]
        )
        room.refresh_from_db()
        return rows

    return add


@pytest.fixture
def api_client():
    """A REST client signed in as ``user`` with a token, as native clients are."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(user=None):
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


class Listener:
    """A Redis subscription to real-time groups, as the hub of an ASGI process holds one."""

    def __init__(self, groups) -> None:
        groups = list(groups)
        self.pubsub = redis_client().pubsub()
        self.pubsub.subscribe(*(CHANNEL_PREFIX + g for g in groups))
        confirmed, deadline = 0, time.monotonic() + 5
        while confirmed < len(groups) and time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.5)
            if message and message["type"] == "subscribe":
                confirmed += 1

    def events(self, quiet: float = 0.3) -> list[tuple[str, dict | None, dict | None]]:
        """Everything published so far, in order: (group, frame, control)."""
        got = []
        while (message := self.pubsub.get_message(ignore_subscribe_messages=True, timeout=quiet)) is not None:
            if message["type"] == "message":
                texts, control = parse_event(message["data"])
                group = message["channel"].decode()[len(CHANNEL_PREFIX) :]
                for index, text in enumerate(texts or [None]):
                    got.append((group, json.loads(text) if text else None, None if index else control))
        return got

    def close(self) -> None:
        self.pubsub.close()


@pytest.fixture
def listen():
    """``listen(*groups)``: a Listener, closed after the test."""
    listeners = []

    def make(*groups):
        listener = Listener(groups)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()
