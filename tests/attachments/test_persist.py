"""A replay of a message whose files are gone since (deleted, then purged) is a duplicate to skip,
not a send to refuse: its sender saw it stored long ago and must not hear it failed."""

from __future__ import annotations

import uuid

import pytest

from attachments import services
from attachments.models import Attachment
from chat_messages.models import Message
from chat_messages.services import message_apply_delete, send_envelope
from chat_messages.workers import PersistWorker
from streams.pipeline.worker import Record
from streams.realtime.hub import user_group

from .conftest import png, upload

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]


def _records(*envelopes: dict) -> list[Record]:
    return [Record("chat.messages", 0, i, str(e.get("room")).encode(), e) for i, e in enumerate(envelopes)]


def test_a_replay_after_its_files_were_purged_is_skipped_without_an_error(
    make_user, make_room, api, feed, django_capture_on_commit_callbacks
):
    alice = make_user()
    room = make_room(owner=alice)
    sent = upload(api(alice), room.pk, "a.png", png()).json()
    envelope = send_envelope(
        room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="look", attachments=[sent["id"]]
    )
    PersistWorker().consume(_records(envelope))
    message_apply_delete(env={"room": room.pk, "seq": 1, "sender": alice.pk})
    services.attachments_purge()
    assert not Attachment.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        PersistWorker().consume(_records(envelope))  # the crash-and-replay case, much later

    stored = list(Message.objects.filter(room=room))
    assert [(m.seq, m.deleted_at is not None) for m in stored] == [(1, True)]  # still the one, deleted
    errors = [f for f in feed.frames(user_group(alice.pk)) if f["type"] == "error"]
    assert errors == []


def test_a_client_resending_a_stored_message_whose_files_were_purged_is_answered_202(make_user, make_room, api):
    # A client that never saw its message stored re-sends it with the same client_msg_id
    # (docs/protocol.md); the message was deleted and its files purged meanwhile. Storage skips the
    # key as a duplicate, so the check before the broker must not refuse it over its files.
    alice = make_user()
    room = make_room(owner=alice)
    sent = upload(api(alice), room.pk, "a.png", png()).json()
    envelope = send_envelope(
        room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="", attachments=[sent["id"]]
    )
    PersistWorker().consume(_records(envelope))
    message_apply_delete(env={"room": room.pk, "seq": 1, "sender": alice.pk})
    services.attachments_purge()

    again = {"client_msg_id": envelope["client_msg_id"], "attachments": [sent["id"]]}
    answer = api(alice).post(f"/api/v1/rooms/{room.pk}/messages/", again, format="json")

    assert answer.status_code == 202, answer.content
