"""Account deletion: what the other members keep, what goes, and what it costs."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import ForeignKey
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from accounts import services, tasks
from accounts.models import AccountDeletion, UserSession
from chat_messages.models import Message
from chat_messages.selectors import DELETED_USER, messages_after
from drawer.models import SavedMessage
from drawer.services import drawer_entry_save
from rooms.models import Participant, Room
from rooms.services import participant_add
from streams.pipeline import kafka
from streams.realtime.hub import room_group, user_group
from tests.support import KafkaTap

pytestmark = pytest.mark.django_db

# Deleting an account, whatever its size, stays under this many queries (its messages, memberships,
# drawer copies, reactions, the quotes of its messages in replies, and its attachments and their
# holds, each in a fixed number; and its audit entry, written, then its actor link cleared; and
# moderation's rows of the account and of its rooms and messages: room sanctions, reports, warnings,
# one statement per link, nine in all).
DELETE_QUERY_BOUND = 61


def history(room, reader) -> list[dict]:
    return messages_after(room_id=room.pk, user_id=reader.pk, after_seq=0, limit=500)[0]


def rows_pointing_at(user_id: int) -> dict[str, int]:
    """Rows of any table whose foreign key names the user (M2M link tables included)."""
    user_model = get_user_model()
    found = {}
    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.concrete_fields:
            if isinstance(field, ForeignKey) and field.related_model is user_model:
                count = model._base_manager.filter(**{field.attname: user_id}).count()
                if count:
                    found[f"{model._meta.label}.{field.name}"] = count
    return found


def sessions_of(user_id: int) -> list[str]:
    return [s.session_key for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(user_id)]


def test_messages_stay_for_the_others_as_from_deleted_user(make_user, make_room, add_messages):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=bob, members=[alice])
    add_messages(room, alice, 3, body="from alice")
    add_messages(room, bob, 1, body="from bob")
    drawer_entry_save(user=bob, message_id=Message.objects.get(room=room, seq=1).pk)

    services.account_delete(user=alice, erase_messages=False)

    shown = history(room, bob)
    assert [(m["seq"], m["sender"]["username"]) for m in shown] == [
        (1, DELETED_USER), (2, DELETED_USER), (3, DELETED_USER), (4, "bob"),
    ]  # fmt: skip
    assert [m["body"] for m in shown[:3]] == ["from alice 1", "from alice 2", "from alice 3"]
    assert not any(m["deleted"] for m in shown)
    # Bob's saved copy keeps the words but no longer the name.
    assert list(SavedMessage.objects.values_list("sender_name", "body")) == [(DELETED_USER, "from alice 1")]
    assert not get_user_model().objects.filter(pk=alice.pk).exists()


def test_erasing_leaves_no_body_of_the_user_anywhere(make_user, make_room, add_messages):
    alice, bob = make_user("alice"), make_user("bob")
    hers_last = make_room(owner=bob, members=[alice], name="hers last")
    his_last = make_room(owner=bob, members=[alice], name="his last")
    add_messages(hers_last, bob, 1, body="from bob")
    add_messages(hers_last, alice, 2, body="secret")
    add_messages(his_last, alice, 2, body="secret")
    add_messages(his_last, bob, 1, body="from bob")
    drawer_entry_save(user=bob, message_id=Message.objects.filter(sender=alice).first().pk)

    services.account_delete(user=alice, erase_messages=True)

    assert not Message.objects.filter(body__contains="secret").exists()
    assert not Room.objects.filter(last_message_preview__contains="secret").exists()
    assert list(SavedMessage.objects.values_list("sender_name", "body")) == [(DELETED_USER, "")]
    erased = [m for m in history(hers_last, bob) + history(his_last, bob) if m["sender"]["username"] == DELETED_USER]
    assert len(erased) == 4
    assert all(m["deleted"] and m["body"] == "" for m in erased)
    # Bob's messages and the preview of his newest one are untouched; seqs keep no gap.
    assert [m["body"] for m in history(his_last, bob)] == ["", "", "from bob 3"]
    assert Room.objects.get(pk=his_last.pk).last_message_preview == "from bob 3"
    assert [m["seq"] for m in history(hers_last, bob)] == [1, 2, 3]


def test_nothing_points_at_the_deleted_user_but_their_anonymised_messages(client, make_user, make_room, add_messages):
    alice, bob = make_user("alice"), make_user("bob")
    own = make_room(owner=alice, members=[bob], name="alice's")
    theirs = make_room(owner=bob, members=[alice], name="bob's")
    solo = make_room(owner=alice, name="alone")
    add_messages(own, alice, 2)
    add_messages(theirs, alice, 2)
    add_messages(solo, alice, 2)
    Participant.objects.filter(room=theirs, user=alice).update(last_read_seq=2)
    kept = Message.objects.filter(room=theirs, sender=alice).first()
    SavedMessage.objects.create(
        user=alice, message=kept, room=theirs, sender_name="alice", body=kept.body,
        message_seq=kept.seq, message_created_at=kept.created_at,
    )  # fmt: skip
    Token.objects.create(user=alice)
    client.force_login(alice)
    assert sessions_of(alice.pk) and UserSession.objects.filter(user=alice).exists()
    alice_id = alice.pk

    services.account_delete(user=alice, erase_messages=False)

    # Room.created_by and Message.sender are kept as NULL, which names nobody.
    assert rows_pointing_at(alice_id) == {}
    assert sessions_of(alice_id) == []
    assert Message.objects.filter(sender__isnull=True).count() == 4  # the solo room went with its history
    assert client.get("/account/").status_code == 302  # the browser is logged out


def test_rooms_pass_to_the_oldest_admin_else_the_oldest_member_and_empty_ones_go(make_user, make_room, add_messages):
    alice, bob, carol, dave = (make_user(n) for n in ("alice", "bob", "carol", "dave"))
    with_admin = make_room(owner=alice, members=[bob, carol], name="with admin")
    Participant.objects.filter(room=with_admin, user=carol).update(role=Participant.Role.ADMIN)
    members_only = make_room(owner=alice, name="members only")
    participant_add(room=members_only, user_id=dave.pk)  # joined first: the oldest member
    participant_add(room=members_only, user_id=bob.pk)
    alone = make_room(owner=alice, name="alone")
    add_messages(alone, alice, 5)
    not_hers = make_room(owner=bob, members=[alice], name="bob's")

    deletion = services.account_delete(user=alice, erase_messages=False)

    def owners(room):
        return list(
            Participant.objects.filter(room=room, role=Participant.Role.OWNER).values_list("user__username", flat=True)
        )

    assert owners(with_admin) == ["carol"]
    assert owners(members_only) == ["dave"]
    assert owners(not_hers) == ["bob"]
    assert not Room.objects.filter(pk=alone.pk).exists()
    assert not Message.objects.filter(room_id=alone.pk).exists()
    assert deletion.status == AccountDeletion.Status.DONE and deletion.progress == 100
    assert set(deletion.room_ids) == {with_admin.pk, members_only.pk, alone.pk, not_hers.pk}


def test_other_members_hear_who_left_and_who_owns_the_room_and_sockets_close(
    make_user, make_room, add_messages, listen, django_capture_on_commit_callbacks
):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    add_messages(room, alice, 2)
    listener = listen(room_group(room.pk), user_group(alice.pk))
    read = Participant.objects.get(room=room, user=alice).last_read_seq

    with django_capture_on_commit_callbacks(execute=True):
        services.account_delete(user=alice, erase_messages=True)

    events = listener.events()
    assert (user_group(alice.pk), None, {"op": "close", "code": 4401}) in events
    frames = [frame for group, frame, _ in events if group == room_group(room.pk)]
    # As when a member leaves: their read position lets the others lower their counters.
    assert {"type": "participant.removed", "room": room.pk, "user": alice.pk, "last_read_seq": read} in frames
    assert {"type": "participant.updated", "room": room.pk, "user": bob.pk, "role": "owner"} in frames
    assert {"type": "account.erased", "room": room.pk, "user": alice.pk, "erase_messages": True} in frames


@pytest.mark.kafka
def test_the_deletion_is_announced_on_kafka_keyed_by_each_room(
    make_user, make_room, add_messages, django_capture_on_commit_callbacks
):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    shared = make_room(owner=alice, members=[bob])
    left_earlier = make_room(owner=bob, members=[alice])
    alone = make_room(owner=alice)
    for room in (shared, left_earlier, alone):
        add_messages(room, alice, 1)
    Participant.objects.filter(room=left_earlier, user=alice).delete()  # her message stays there
    tap = KafkaTap(kafka.MESSAGES)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.account_delete(user=alice, erase_messages=True)
        with django_capture_on_commit_callbacks(execute=True):
            services.account_delete(user=carol, erase_messages=False)
        records = tap.records(expected=5)
    finally:
        tap.close()

    seen = sorted((r.key.decode(), r.value["kind"], r.value.get("user")) for r in records)
    assert seen == sorted([
        (str(shared.pk), "account.erased", alice.pk),
        (str(left_earlier.pk), "account.erased", alice.pk),
        (str(alone.pk), "account.erased", alice.pk),
        (str(alone.pk), "room.deleted", None),
        ("account", "account.erased", carol.pk),
    ])  # fmt: skip
    assert all(r.value["erase_messages"] for r in records if r.value.get("user") == alice.pk)


def _large_account(make_user, make_room, add_messages, *, per_room: int):
    """50 rooms: 20 owned with others, 10 owned alone (deleted), 20 joined; messages in each.

    Others saved some of the user's messages in their drawers, and the user saved some.
    """
    user, bob, carol = make_user(), make_user(), make_user()
    rooms = []
    for i in range(50):
        if i < 20:
            room = make_room(owner=user, members=[bob, carol], name=f"owned {i}")
            Participant.objects.filter(room=room, user=carol).update(role=Participant.Role.ADMIN)
        elif i < 30:
            room = make_room(owner=user, name=f"alone {i}")
        else:
            room = make_room(owner=bob, members=[user], name=f"joined {i}")
        rooms.append(room)
        add_messages(room, user, per_room)
    saved = Message.objects.filter(sender=user).order_by("id")[:: max(1, per_room)][:40]
    SavedMessage.objects.bulk_create(
        SavedMessage(user=owner, message=m, room_id=m.room_id, sender_name=user.username, body=m.body,
                     message_seq=m.seq, message_created_at=m.created_at)
        for m in saved for owner in (user, bob)
    )  # fmt: skip
    Token.objects.create(user=user)
    return user


def test_deleting_an_account_with_10000_messages_in_50_rooms_takes_a_bounded_number_of_queries(
    make_user, make_room, add_messages, django_assert_max_num_queries
):
    small = _large_account(make_user, make_room, add_messages, per_room=1)
    large = _large_account(make_user, make_room, add_messages, per_room=200)
    assert Message.objects.filter(sender=large).count() == 10_000

    with CaptureQueriesContext(connection) as small_queries:
        services.account_delete(user=small, erase_messages=True)
    with django_assert_max_num_queries(DELETE_QUERY_BOUND) as large_queries:
        services.account_delete(user=large, erase_messages=True)

    # Fifty times the data, the very same statements.
    assert len(large_queries) == len(small_queries)
    assert not Message.objects.exclude(body="").filter(sender__isnull=True).exists()
    assert Message.objects.filter(sender__isnull=True).count() == 20 * 200 + 20 * 200 + 20 * 1 + 20 * 1
    # Bob's drawer entries of messages in the deleted rooms lost their link, not their snapshot.
    assert SavedMessage.objects.filter(message__isnull=True).exists()
    assert rows_pointing_at(large.pk) == {}


def test_a_large_account_is_stopped_at_once_and_purged_in_the_background(
    settings, make_user, make_room, add_messages, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_PURGE_INLINE_MAX = 10
    settings.ACCOUNT_PURGE_CHUNK = 7
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    add_messages(room, alice, 30, body="secret")
    Token.objects.create(user=alice)

    with django_capture_on_commit_callbacks() as callbacks:
        deletion = services.account_delete_request(user=alice, erase_messages=True, requested_by="alice")

    # Stopped now: no login, no token; the data is still there until the task runs.
    alice.refresh_from_db()
    assert not alice.is_active
    assert not Token.objects.filter(user=alice).exists()
    assert deletion.status == AccountDeletion.Status.PENDING and deletion.messages_total == 30
    assert deletion.progress == 0
    assert len(callbacks) == 2  # sockets closed, task enqueued
    assert Message.objects.filter(sender=alice).count() == 30

    with CaptureQueriesContext(connection) as queries:
        result = tasks.account_purge(deletion.pk)  # the task body, run here

    table = Message._meta.db_table
    chunk_updates = [q for q in queries if q["sql"].startswith(f'UPDATE "{table}"') and '"body" =' in q["sql"]]
    assert len(chunk_updates) == 5  # 30 messages in chunks of 7
    assert result == {"deletion": deletion.pk, "status": "done", "messages": 30}
    deletion.refresh_from_db()
    assert (deletion.status, deletion.progress, deletion.messages_done) == ("done", 100, 30)
    assert deletion.finished_at is not None
    assert not get_user_model().objects.filter(pk=alice.pk).exists()
    assert not Message.objects.filter(body__contains="secret").exists()
    assert Participant.objects.get(room=room, user=bob).role == Participant.Role.OWNER
    # Running it again (a re-delivered task) changes nothing.
    assert tasks.account_purge(deletion.pk)["status"] == "done"


def test_a_purge_resumes_where_it_stopped(settings, make_user, make_room, add_messages):
    settings.ACCOUNT_PURGE_INLINE_MAX = 0
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    add_messages(room, alice, 12)
    deletion = services.account_delete_request(user=alice, erase_messages=False)
    # As if a first run had detached some messages before its worker died.
    done = list(Message.objects.filter(sender=alice).order_by("seq").values_list("id", flat=True)[:5])
    Message.objects.filter(id__in=done).update(sender=None)
    AccountDeletion.objects.filter(pk=deletion.pk).update(
        status=AccountDeletion.Status.FAILED, messages_done=5, room_ids=[room.pk], error="worker lost"
    )

    services.account_purge(deletion_id=deletion.pk)

    deletion.refresh_from_db()
    assert (deletion.status, deletion.messages_done, deletion.error) == ("done", 12, "")
    assert Message.objects.filter(room=room, sender__isnull=True).count() == 12


def test_the_task_runs_from_the_queue_with_celery_eager(
    settings, celery_eager, make_user, make_room, add_messages, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_PURGE_INLINE_MAX = 5
    alice = make_user("alice")
    add_messages(make_room(owner=alice, members=[make_user()]), alice, 6)

    with django_capture_on_commit_callbacks(execute=True):
        deletion = services.account_delete_request(user=alice, erase_messages=False)

    deletion.refresh_from_db()
    assert deletion.status == AccountDeletion.Status.DONE
    assert not get_user_model().objects.filter(pk=alice.pk).exists()


def test_a_small_account_is_deleted_inline(make_user, make_room, add_messages):
    alice = make_user("alice")
    add_messages(make_room(owner=alice, members=[make_user()]), alice, 3)

    deletion = services.account_delete_request(user=alice, erase_messages=False, requested_by="moderator")

    assert (deletion.status, deletion.messages_total, deletion.requested_by) == ("done", 3, "moderator")
    assert not get_user_model().objects.filter(pk=alice.pk).exists()
    assert AccountDeletion.objects.filter(user_id=alice.pk).count() == 1
