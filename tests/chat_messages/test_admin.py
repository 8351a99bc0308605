"""Moderators remove messages from the admin through the same path as their senders."""

from __future__ import annotations

import uuid

import pytest

from chat_messages.models import Message
from chat_messages.services import messages_store, send_envelope
from chat_messages.workers import PersistWorker
from streams.pipeline import kafka
from tests.support import KafkaTap

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]


def test_a_moderator_deletes_a_message_for_everyone(admin_client, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="spam")])
    message = Message.objects.get(room=room)

    listing = admin_client.get("/admin/chat_messages/message/", {"q": "spam"})
    assert listing.status_code == 200 and "spam" in listing.content.decode()

    tap = KafkaTap(kafka.MESSAGES)
    try:
        response = admin_client.post(
            "/admin/chat_messages/message/", {"action": "delete_for_everyone", "_selected_action": [message.pk]}
        )
        assert response.status_code == 302
        produced = tap.records(1)
    finally:
        tap.close()
    assert [(r.value["kind"], r.value["seq"], r.key) for r in produced] == [
        ("message.delete", 1, str(room.pk).encode())
    ]

    PersistWorker().consume(produced)  # applied in the room's order like any delete
    message.refresh_from_db()
    assert message.deleted_at is not None and message.body == ""


def test_the_admin_cannot_edit_or_delete_rows_directly(admin_client, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="x")])
    message = Message.objects.get(room=room)
    assert admin_client.post(f"/admin/chat_messages/message/{message.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Message.objects.filter(pk=message.pk).exists()
