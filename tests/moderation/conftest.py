"""Fixtures of the moderation tests: stored messages, as the persistence consumer stores them."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    """``post(room, sender, body)``: store a message as persist does; returns it."""
    from chat_messages.models import Message
    from chat_messages.services import messages_store

    def post(room, sender, body: str = "hello"):
        cmid = str(uuid.uuid4())
        with django_capture_on_commit_callbacks(execute=True):
            messages_store(sends=[{"room": room.pk, "sender": sender.pk, "client_msg_id": cmid, "body": body}])
        return Message.objects.get(sender=sender, client_msg_id=cmid)

    return post


@pytest.fixture
def moderator(django_user_model):
    return django_user_model.objects.create_superuser(username="mod", password="correct-horse-battery")
