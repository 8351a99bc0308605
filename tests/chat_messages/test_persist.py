"""The persistence consumer's consume(), called directly with envelopes as Kafka delivers them."""

from __future__ import annotations

import uuid

import pytest

from chat_messages.models import Message
from chat_messages.services import send_envelope
from chat_messages.workers import PersistWorker
from rooms.models import Participant, Room
from streams.pipeline.worker import Record

pytestmark = pytest.mark.django_db


def records(*envelopes: dict) -> list[Record]:
    return [Record("chat.messages", 0, i, str(e.get("room")).encode(), e) for i, e in enumerate(envelopes)]


def send(room, user, body="hi", msg_id=None) -> dict:
    return send_envelope(room_id=room.pk, sender_id=user.pk, client_msg_id=msg_id or uuid.uuid4(), body=body)


def test_a_batch_is_numbered_gaplessly_per_room_in_arrival_order(make_user, make_room):
    alice, bob = make_user(), make_user()
    one, two = make_room(owner=alice, members=[bob]), make_room(owner=bob, members=[alice])
    PersistWorker().consume(
        records(send(one, alice, "a"), send(two, bob, "b"), send(one, bob, "c"), send(one, alice, "d"))
    )
    PersistWorker().consume(records(send(two, alice, "e")))

    assert list(Message.objects.filter(room=one).order_by("seq").values_list("seq", "body")) == [
        (1, "a"), (2, "c"), (3, "d"),
    ]  # fmt: skip
    assert list(Message.objects.filter(room=two).order_by("seq").values_list("seq", "body")) == [(1, "b"), (2, "e")]
    one.refresh_from_db()
    assert (one.last_seq, one.last_message_preview) == (3, "d")
    assert one.last_message_at is not None


def test_a_replayed_batch_and_a_resent_key_are_stored_once(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    msg_id = uuid.uuid4()
    batch = records(send(room, alice, "once", msg_id), send(room, alice, "once", msg_id))
    PersistWorker().consume(batch)
    PersistWorker().consume(batch)  # the crash-and-replay case
    PersistWorker().consume(records(send(room, alice, "once", msg_id), send(room, bob, "next")))

    assert list(Message.objects.filter(room=room).order_by("seq").values_list("seq", "body")) == [
        (1, "once"),
        (2, "next"),
    ]


def test_storing_a_message_marks_it_read_by_its_sender_only(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    PersistWorker().consume(records(send(room, alice), send(room, alice), send(room, bob)))

    positions = dict(Participant.objects.filter(room=room).values_list("user_id", "last_read_seq"))
    assert positions == {alice.pk: 2, bob.pk: 3}


def test_a_sender_removed_before_storage_is_refused(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    envelope = send(room, bob, "too late")
    Participant.objects.filter(room=room, user=bob).delete()
    PersistWorker().consume(records(envelope, send(room, alice, "fine")))

    assert list(Message.objects.filter(room=room).values_list("seq", "body")) == [(1, "fine")]


def test_a_message_for_a_deleted_room_is_dropped_without_blocking_the_batch(make_user, make_room):
    alice = make_user()
    gone, kept = make_room(owner=alice), make_room(owner=alice)
    envelope = send(gone, alice)
    Room.objects.filter(pk=gone.pk).delete()
    PersistWorker().consume(records(envelope, send(kept, alice, "kept")))

    assert list(Message.objects.values_list("room_id", "body")) == [(kept.pk, "kept")]


def test_edit_and_delete_apply_in_order_and_keep_the_seq(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    first = send(room, alice, "draft")
    PersistWorker().consume(
        records(
            first,
            {"v": 1, "kind": "message.edit", "room": room.pk, "seq": 1, "sender": alice.pk, "body": "final"},
            {"v": 1, "kind": "message.edit", "room": room.pk, "seq": 1, "sender": bob.pk, "body": "hijack"},
            send(room, bob, "reply"),
            {"v": 1, "kind": "message.delete", "room": room.pk, "seq": 2, "sender": bob.pk},
        )
    )
    rows = {m.seq: m for m in Message.objects.filter(room=room)}
    assert rows[1].body == "final" and rows[1].edited_at is not None
    assert rows[2].body == "" and rows[2].deleted_at is not None
    assert sorted(rows) == [1, 2]


class RoomListener:
    """A Redis subscription to one room's real-time channel, as a daphne process holds one."""

    def __init__(self, room) -> None:
        import redis
        from django.conf import settings

        from streams.realtime.hub import CHANNEL_PREFIX, room_group

        self.pubsub = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(CHANNEL_PREFIX + room_group(room.pk))
        self.pubsub.get_message(timeout=1.0)

    def seqs(self) -> list[int]:
        import json

        from streams.realtime.hub import parse_event

        out = []
        while (message := self.pubsub.get_message(timeout=0.3)) is not None:
            texts, _ = parse_event(message["data"])
            out.extend(json.loads(text)["message"]["seq"] for text in texts)
        return out


@pytest.mark.django_db(transaction=True)  # publishing happens on commit
def test_a_crash_between_commit_and_publish_is_announced_on_replay_once(make_user, make_room, settings):
    import redis

    from streams.realtime import hub as realtime
    from tests.conftest import free_port

    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    # Room ids start over with each test database; an earlier session's position on a reused
    # Redis would say these were announced already.
    realtime.redis_client().hdel(realtime.ANNOUNCED, realtime.room_group(room.pk))
    listener = RoomListener(room)
    batch = records(send(room, alice, "one"), send(room, bob, "two"))

    # Redis unreachable right after the commit: the messages are stored, nobody hears of them.
    realtime._redis = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    try:
        PersistWorker().consume(batch)
    finally:
        realtime._redis = None
    assert Message.objects.filter(room=room).count() == 2
    assert listener.seqs() == []

    PersistWorker().consume(batch)  # the replay after the consumer restarts
    assert listener.seqs() == [1, 2]
    PersistWorker().consume(batch)  # announced now: a further replay or re-send is silent
    PersistWorker().consume(records(send(room, alice, "one", batch[0].value["client_msg_id"])))
    assert listener.seqs() == []
    assert Message.objects.filter(room=room).count() == 2


def test_editing_or_deleting_the_newest_message_updates_the_room_list_preview(make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    PersistWorker().consume(records(send(room, alice, "older"), send(room, alice, "secret")))
    PersistWorker().consume(
        records({"v": 1, "kind": "message.edit", "room": room.pk, "seq": 1, "sender": alice.pk, "body": "older!"})
    )
    room.refresh_from_db()
    assert room.last_message_preview == "secret"  # an older message's edit leaves it alone
    PersistWorker().consume(
        records({"v": 1, "kind": "message.edit", "room": room.pk, "seq": 2, "sender": alice.pk, "body": "public"})
    )
    room.refresh_from_db()
    assert room.last_message_preview == "public"
    PersistWorker().consume(records({"v": 1, "kind": "message.delete", "room": room.pk, "seq": 2, "sender": alice.pk}))
    room.refresh_from_db()
    assert room.last_message_preview == ""


@pytest.mark.kafka
def test_a_malformed_edit_is_dead_lettered_and_the_batch_goes_on(make_user, make_room):
    from streams.pipeline import kafka
    from tests.support import KafkaTap

    alice = make_user()
    room = make_room(owner=alice)
    dlq = KafkaTap(kafka.DLQ)
    try:
        worker = PersistWorker()
        worker.max_batch_attempts = 1
        worker.process(records({"v": 1, "kind": "message.edit", "room": room.pk}, send(room, alice, "after")))
        dead = dlq.records(1)
    finally:
        dlq.close()
    assert "malformed message.edit" in dead[0].value["reason"]
    assert list(Message.objects.filter(room=room).values_list("body", flat=True)) == ["after"]


def room_event(room, event: str, user, by=None, **extra) -> dict:
    """A ``room.event`` envelope as rooms' services produce it (a system line to store)."""
    from streams.pipeline import kafka

    def person(u):
        return None if u is None else {"id": u.pk, "username": u.username}

    return kafka.envelope("room.event", room=room.pk, event=event, user=person(user), by=person(by), **extra)


def test_a_system_line_takes_the_room_s_next_seq_once_however_often_it_is_replayed(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice)
    added = room_event(room, "invited", bob, by=alice)
    batch = records(send(room, alice, "before"), added, send(room, alice, "after"))
    PersistWorker().consume(batch)
    PersistWorker().consume(batch)  # the crash-and-replay case
    PersistWorker().consume(records(added, send(room, alice, "later")))  # the line alone, replayed

    rows = list(Message.objects.filter(room=room).order_by("seq").values_list("seq", "kind", "sender_id", "body"))
    assert rows == [
        (1, "text", alice.pk, "before"), (2, "system", None, "alice added bob"), (3, "text", alice.pk, "after"),
        (4, "text", alice.pk, "later"),
    ]  # fmt: skip
    line = Message.objects.get(room=room, seq=2)
    assert str(line.client_msg_id) == added["event_id"]  # its idempotency key
    assert line.system == {
        "event": "invited", "user": {"id": bob.pk, "username": "bob"}, "by": {"id": alice.pk, "username": "alice"},
    }  # fmt: skip


def test_a_batch_with_system_lines_costs_the_statements_of_one_without(make_user, make_room):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chat_messages.services import messages_store

    alice, bob, carol = make_user(), make_user(), make_user()
    one, two = make_room(owner=alice, members=[bob]), make_room(owner=bob, members=[alice])

    def statements(*envelopes) -> int:
        with CaptureQueriesContext(connection) as captured:
            stored = messages_store(sends=list(envelopes)).stored
        assert len(stored) == len(envelopes)
        return len(captured)

    plain = statements(send(one, alice), send(two, bob), send(one, bob), send(two, alice))
    # Lines first in a room (read by whoever was caught up), between messages, and last.
    with_lines = statements(
        room_event(one, "joined", carol), send(one, alice), room_event(two, "renamed", bob, name="plans"),
        send(two, bob), room_event(one, "left", carol), send(one, bob), send(two, alice),
        room_event(two, "removed", carol, by=bob),
    )  # fmt: skip
    assert with_lines == plain
