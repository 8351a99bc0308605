"""The drawer under retention: a saved copy keeps its text only if CHAT_RETENTION_KEEPS_DRAWER."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from chat_messages.models import Message
from chat_messages.retention import messages_expire
from chat_messages.services import messages_store, send_envelope
from drawer.models import SavedMessage
from drawer.services import drawer_entry_save

pytestmark = pytest.mark.django_db


def _saved_old_message(make_user, make_room) -> tuple[Message, SavedMessage]:
    me = make_user()
    room = make_room(owner=me)
    send = send_envelope(room_id=room.pk, sender_id=me.pk, client_msg_id=uuid.uuid4(), body="the plan")
    (stored,) = messages_store(sends=[send]).stored
    entry, _ = drawer_entry_save(user=me, message_id=stored.pk, note="mine")
    Message.objects.filter(pk=stored.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    return Message.objects.get(pk=stored.pk), entry


def test_a_saved_copy_loses_its_text_when_its_message_expires(settings, make_user, make_room):
    settings.CHAT_RETENTION_DAYS = 7
    message, entry = _saved_old_message(make_user, make_room)

    assert messages_expire() == (1, False)

    entry.refresh_from_db()
    assert entry.body == "" and entry.attachments is None
    assert entry.note == "mine"  # the user's own words are theirs
    assert Message.objects.get(pk=message.pk).body == ""


def test_the_setting_keeps_the_saved_copys_text(settings, make_user, make_room):
    settings.CHAT_RETENTION_DAYS = 7
    settings.CHAT_RETENTION_KEEPS_DRAWER = True
    message, entry = _saved_old_message(make_user, make_room)

    assert messages_expire() == (1, False)

    entry.refresh_from_db()
    assert entry.body == "the plan"
    assert Message.objects.get(pk=message.pk).body == ""
