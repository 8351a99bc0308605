"""Membership changes and renames ask for system lines: a ``room.event`` envelope on Kafka, keyed
by room, produced only once the change is committed."""

from __future__ import annotations

import pytest

from rooms import services
from rooms.models import Participant
from streams.pipeline import kafka
from tests.support import KafkaTap

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]


@pytest.fixture
def tap():
    tap = KafkaTap(kafka.MESSAGES)
    yield tap
    tap.close()


def person(user) -> dict:
    return {"id": user.pk, "username": user.username}


def lines(tap, room, expected: int) -> list[dict]:
    """The ``room.event`` envelopes of ``room`` (fields only), waiting for ``expected`` of them."""
    found = []
    # Expecting none, wait a second for one that should not come.
    for record in tap.records(max(expected, 1), timeout=5.0 if expected else 1.0):
        value = record.value
        if value["kind"] == "room.event" and value["room"] == room.pk:
            assert record.key == str(room.pk).encode()  # the room's partition: its place among its messages
            found.append({k: v for k, v in value.items() if k not in ("v", "event_id", "ts", "kind", "room")})
    return found


def test_each_membership_change_and_rename_asks_for_its_line_after_commit(
    make_user, make_room, tap, django_capture_on_commit_callbacks
):
    alice, bob, carol, dave = (make_user() for _ in range(4))
    room = make_room(owner=alice, members=[carol])
    room.is_public = True
    room.save(update_fields=["is_public"])

    with django_capture_on_commit_callbacks() as pending:
        services.participant_invite(actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)
    assert lines(tap, room, 0) == []  # nothing before the commit
    for callback in pending:
        callback()
    with django_capture_on_commit_callbacks(execute=True):
        services.participant_join(user_id=dave.pk, room_id=room.pk)
        services.participant_leave(user_id=carol.pk, room_id=room.pk)
        services.participant_remove(actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)
        services.room_update(user_id=alice.pk, room_id=room.pk, name="plans")
        services.room_update(user_id=alice.pk, room_id=room.pk, name="plans", topic="same name: no line")
        services.participant_remove_by_moderator(participant=Participant.objects.get(room=room, user=dave))

    assert lines(tap, room, 6) == [
        {"event": "invited", "user": person(bob), "by": person(alice)},
        {"event": "joined", "user": person(dave), "by": None},
        {"event": "left", "user": person(carol), "by": None},
        {"event": "removed", "user": person(bob), "by": person(alice)},
        {"event": "renamed", "user": person(alice), "by": None, "name": "plans"},
        {"event": "removed", "user": person(dave), "by": None},  # from the admin: nobody named
    ]


def test_no_line_for_a_new_room_a_direct_room_or_a_room_its_last_member_left(
    make_user, make_room, tap, django_capture_on_commit_callbacks
):
    alice, bob = make_user(), make_user()
    with django_capture_on_commit_callbacks(execute=True):
        group = make_room(owner=alice, members=[bob])
        direct, _ = services.room_open_direct(user=alice, other=bob)
        services.participant_leave(user_id=bob.pk, room_id=direct.pk)
        services.room_open_direct(user=bob, other=alice)  # brings Bob back
        services.participant_leave(user_id=bob.pk, room_id=group.pk)
        services.participant_leave(user_id=alice.pk, room_id=group.pk)  # the last one out deletes it

    records = [r.value for r in tap.records(2, timeout=3.0)]
    assert [(r["kind"], r.get("event")) for r in records if r["room"] in (group.pk, direct.pk)] == [
        ("room.event", "left"),  # Bob leaving the group while Alice was still in it
        ("room.deleted", None),
    ]


def test_a_line_stands_aside_when_kafka_is_away(
    make_user, make_room, kafka_away, caplog, django_capture_on_commit_callbacks
):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice)
    with django_capture_on_commit_callbacks(execute=True):
        services.participant_invite(actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)
    assert Participant.objects.filter(room=room, user=bob).exists()  # the change stands
    assert "invited stands but its system line could not be put on Kafka" in caplog.text
