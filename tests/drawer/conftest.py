"""Fixtures of the drawer tests: messages stored directly (the Kafka path is tested elsewhere)."""

from __future__ import annotations

import uuid

import pytest
from django.db.models import F
from django.utils import timezone


@pytest.fixture
def make_message():
    """Store a message in ``room`` from ``sender`` with the room's next seq."""
    from chat_messages.models import Message
    from rooms.models import Room

    def make(room, sender, body: str = "hello"):
        Room.objects.filter(pk=room.pk).update(last_seq=F("last_seq") + 1)
        room.refresh_from_db(fields=["last_seq"])
        return Message.objects.create(
            room=room,
            seq=room.last_seq,
            sender=sender,
            client_msg_id=uuid.uuid4(),
            body=body,
            created_at=timezone.now(),
        )

    return make


@pytest.fixture
def api_client():
    """A REST client signed in as ``user`` (token auth, as native clients use)."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(user):
        token, _ = Token.objects.get_or_create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def room(make_room, alice, bob):
    """A group room of alice (owner) and bob."""
    return make_room(owner=alice, members=[bob], name="team")
