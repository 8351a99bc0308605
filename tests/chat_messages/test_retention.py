"""Retention (chat_messages/retention.py): messages past their room's period are deleted like a
deletion, in bounded chunks, resuming after a crash; a legal hold keeps a room's messages."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat_messages import tasks
from chat_messages.models import Message, Reaction
from chat_messages.retention import messages_expire
from chat_messages.services import messages_store, send_envelope
from rooms.models import Participant, Room

pytestmark = pytest.mark.django_db


def say(room, sender, *bodies: str, days_ago: float = 0) -> list[Message]:
    """Store these messages, dated ``days_ago``."""
    sends = [
        send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=body) for body in bodies
    ]
    stored = messages_store(sends=sends).stored
    ids = [m.pk for m in stored]
    Message.objects.filter(pk__in=ids).update(created_at=timezone.now() - dt.timedelta(days=days_ago))
    return list(Message.objects.filter(pk__in=ids).order_by("seq"))


def alive(room) -> list[str]:
    return list(
        Message.objects.filter(room=room, kind="text", deleted_at__isnull=True)
        .order_by("seq")
        .values_list("body", flat=True)
    )


def test_nothing_expires_by_default(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    say(room, me, "from long ago", days_ago=3650)

    assert messages_expire() == (0, False)
    assert alive(room) == ["from long ago"]


def test_the_global_period_deletes_older_messages_only(settings, make_user, make_room):
    settings.CHAT_RETENTION_DAYS = 30
    me = make_user()
    room = make_room(owner=me)
    say(room, me, "old", "older", days_ago=31)
    say(room, me, "recent", days_ago=29)

    assert messages_expire() == (2, False)
    assert alive(room) == ["recent"]
    gone = Message.objects.filter(room=room, deleted_at__isnull=False)
    assert sorted(gone.values_list("body", flat=True)) == ["", ""]
    assert messages_expire() == (0, False)  # done: a second run finds nothing


def test_a_rooms_period_overrides_the_global_one_and_zero_keeps_for_ever(settings, make_user, make_room):
    settings.CHAT_RETENTION_DAYS = 30
    me = make_user()
    short = make_room(owner=me, name="short")
    forever = make_room(owner=me, name="forever")
    default = make_room(owner=me, name="default")
    Room.objects.filter(pk=short.pk).update(retention_days=7)
    Room.objects.filter(pk=forever.pk).update(retention_days=0)
    for room in (short, forever, default):
        say(room, me, "ten days old", days_ago=10)
        say(room, me, "a year old", days_ago=365)

    messages_expire()

    assert alive(short) == []
    assert alive(forever) == ["ten days old", "a year old"]
    assert alive(default) == ["ten days old"]


def test_a_room_under_legal_hold_keeps_its_messages(settings, make_user, make_room):
    settings.CHAT_RETENTION_DAYS = 1
    me = make_user()
    held, free = make_room(owner=me, name="held"), make_room(owner=me, name="free")
    Room.objects.filter(pk=held.pk).update(legal_hold=True, retention_days=1)
    say(held, me, "evidence", days_ago=400)
    say(free, me, "chatter", days_ago=400)

    assert messages_expire() == (1, False)
    assert alive(held) == ["evidence"]
    assert alive(free) == []

    # The hold lifted: retention catches up.
    Room.objects.filter(pk=held.pk).update(legal_hold=False)
    assert messages_expire() == (1, False)
    assert alive(held) == []


def test_an_expired_message_is_cleaned_up_like_a_deletion(settings, make_user, make_room):
    settings.CHAT_RETENTION_DAYS = 30
    me, bob = make_user(), make_user()
    room = make_room(owner=me, members=[bob])
    (old,) = say(room, me, "old words", days_ago=40)
    (reply,) = say(room, bob, "replying")
    Message.objects.filter(pk=reply.pk).update(reply_to={"seq": old.seq, "body": "old words", "sender": {"id": me.pk}})
    Reaction.objects.create(message=old, user=bob, emoji="👍")
    Participant.objects.filter(room=room, user=bob).update(mention_seqs=[old.seq, reply.seq])
    Room.objects.filter(pk=room.pk).update(last_seq=old.seq, last_message_preview="old words")

    assert messages_expire() == (1, False)

    old.refresh_from_db()
    assert old.deleted_at is not None and old.body == "" and old.seq  # the seq stays: no gap
    assert not Reaction.objects.filter(message=old).exists()
    reply.refresh_from_db()
    assert reply.body == "replying"
    assert reply.reply_to["body"] == "" and reply.reply_to["deleted"] is True
    assert Participant.objects.get(room=room, user=bob).mention_seqs == [reply.seq]
    assert Room.objects.get(pk=room.pk).last_message_preview == ""


def test_chunks_are_bounded_and_a_run_resumes_where_the_last_one_stopped(settings, make_user, make_room):
    """A crash between chunks: each chunk committed is done, the next run (or the task) continues."""
    settings.CHAT_RETENTION_DAYS = 1
    settings.CHAT_RETENTION_CHUNK = 3
    me = make_user()
    room = make_room(owner=me)
    say(room, me, *[f"m{i}" for i in range(7)], days_ago=2)
    say(room, me, "today")

    assert messages_expire() == (3, True)  # one chunk, then the process "dies"
    assert alive(room) == ["m3", "m4", "m5", "m6", "today"]
    assert messages_expire() == (3, True)
    assert messages_expire() == (1, False)
    assert alive(room) == ["today"]


def test_the_task_requeues_itself_until_done(settings, make_user, make_room, celery_eager):
    settings.CHAT_RETENTION_DAYS = 1
    settings.CHAT_RETENTION_CHUNK = 2
    me = make_user()
    room = make_room(owner=me)
    say(room, me, *[f"m{i}" for i in range(5)], days_ago=2)
    assert messages_expire() == (2, True)  # a run killed after its first chunk

    tasks.expire.delay()

    assert alive(room) == []


def _expire_counting(room, me, count: int, other) -> int:
    old = say(room, me, *[f"m{i} @{other.username}" for i in range(count)], days_ago=5)
    for message in old:
        Reaction.objects.create(message=message, user=other, emoji="👍")
    Participant.objects.filter(room=room, user=other).update(mention_seqs=[m.seq for m in old][-100:])
    with CaptureQueriesContext(connection) as queries:
        assert messages_expire() == (count, False)
    return len(queries.captured_queries)


def test_a_chunk_takes_the_same_number_of_queries_whatever_its_size(settings, make_user, make_room):
    settings.CHAT_RETENTION_DAYS = 1
    me, other = make_user(), make_user()
    small = _expire_counting(make_room(owner=me, members=[other], name="small"), me, 2, other)
    large = _expire_counting(make_room(owner=me, members=[other], name="large"), me, 200, other)

    assert small == large
    assert large <= 15, json.dumps(large)
