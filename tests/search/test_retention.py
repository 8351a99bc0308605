"""Retention's ``messages.expired`` reaches the search index through the chat-index consumer."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from chat_messages.models import Message
from chat_messages.retention import messages_expire
from chat_messages.workers import ANNOUNCEMENTS
from rooms.models import Room
from search.models import MessageDoc
from streams.pipeline import kafka

from .test_search import consume, found, say

pytestmark = pytest.mark.django_db


def test_expired_messages_disappear_from_search_and_a_held_rooms_stay(settings, make_user, make_room):
    settings.CHAT_RETENTION_DAYS = 30
    me = make_user()
    room = make_room(owner=me, name="room")
    held = make_room(owner=me, name="held")
    Room.objects.filter(pk=held.pk).update(legal_hold=True)
    old = say(room, me, "budget draft one", "budget draft two")
    (kept,) = say(held, me, "budget evidence")
    (recent,) = say(room, me, "budget final")
    Message.objects.filter(pk__in=[m.pk for m in (*old, kept)]).update(
        created_at=timezone.now() - dt.timedelta(days=31)
    )
    assert found(me, "budget") == ["budget final", "budget evidence", "budget draft two", "budget draft one"]

    assert messages_expire() == (2, False)
    # What retention announces after commit, as the chat-index consumer reads it (persist skips it).
    assert "messages.expired" in ANNOUNCEMENTS
    consume(
        kafka.envelope("messages.expired", room=room.pk, from_seq=old[0].seq, up_to_seq=old[-1].seq),
    )

    assert not MessageDoc.objects.filter(message_id__in=[m.pk for m in old]).exists()
    assert MessageDoc.objects.filter(message_id__in=[kept.pk, recent.pk]).count() == 2
    assert found(me, "budget") == ["budget final", "budget evidence"]


def test_a_span_only_drops_the_messages_that_expired(settings, make_user, make_room):
    """A message inside the span still standing (newer, or another chunk's) keeps its document."""
    me = make_user()
    room = make_room(owner=me)
    first, middle, last = say(room, me, "alpha one", "alpha two", "alpha three")
    Message.objects.filter(pk__in=[first.pk, last.pk]).update(deleted_at=timezone.now(), body="")

    consume(kafka.envelope("messages.expired", room=room.pk, from_seq=first.seq, up_to_seq=last.seq))

    assert list(MessageDoc.objects.filter(message_id__in=[first.pk, middle.pk, last.pk]).values_list(
        "message_id", flat=True)) == [middle.pk]  # fmt: skip
