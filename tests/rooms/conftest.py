"""Fixtures of the rooms tests: stored messages (what reached the real-time channels: tests/conftest.py's ``feed``)."""

from __future__ import annotations

import uuid

import pytest


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


@pytest.fixture
def kafka_away(settings):
    """No broker: nothing listens at its address, and a send gives up after half a second."""
    from streams.pipeline import kafka

    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    settings.KAFKA_PRODUCE_TIMEOUT_S = 0.5
    kafka.reset_producer()
    yield
    kafka.reset_producer()
