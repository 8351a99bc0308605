"""System lines (joins, leaves, invitations, removals, renames): stored by persist from rooms'
``room.event`` envelopes, shown in history like messages, never acted on like one."""

from __future__ import annotations

import uuid

import pytest

from chat_messages.models import Message
from chat_messages.selectors import history_page
from chat_messages.services import (
    message_delete_request,
    message_edit_request,
    messages_store,
    reaction_set,
    send_envelope,
    system_line_text,
)
from rooms.models import Participant, Room
from rooms.selectors import room_list_for_user
from streams.errors import ChatError
from streams.realtime.protocol import DELETED_USER
from tests.chat_messages.test_persist import room_event

pytestmark = pytest.mark.django_db


def say(room, sender, body: str = "hi", reply_to: int | None = None) -> dict:
    return send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=body, reply_to=reply_to)


def positions(room) -> dict[int, int]:
    return dict(Participant.objects.filter(room=room).values_list("user_id", "last_read_seq"))


def unread(user, room) -> int:
    return next(p.unread for p in room_list_for_user(user_id=user.pk) if p.room_id == room.pk)


@pytest.mark.parametrize(
    ("system", "text"),
    [
        ({"event": "joined", "user": {"id": 2, "username": "bob"}, "by": None}, "bob joined"),
        ({"event": "left", "user": {"id": 3, "username": "carol"}, "by": None}, "carol left"),
        ({"event": "invited", "user": {"id": 2, "username": "bob"}, "by": {"id": 1, "username": "alice"}},
         "alice added bob"),
        ({"event": "removed", "user": {"id": 2, "username": "bob"}, "by": {"id": 1, "username": "alice"}},
         "alice removed bob"),
        ({"event": "removed", "user": {"id": 2, "username": "bob"}, "by": None}, "bob was removed"),
        ({"event": "renamed", "user": {"id": 2, "username": "bob"}, "by": None, "name": "plans"},
         "bob renamed the room to 'plans'"),
        ({"event": "renamed", "user": None, "by": None, "name": "plans"}, "The room was renamed to 'plans'"),
    ],
)  # fmt: skip
def test_what_a_system_line_says(system, text):
    assert system_line_text(system) == text


def test_a_system_line_does_not_make_a_read_room_unread_but_counts_behind_unread_messages(make_user, make_room):
    alice, bob, carol, dave = (make_user(name) for name in ("alice", "bob", "carol", "dave"))
    room = make_room(owner=alice, members=[bob, carol])
    messages_store(sends=[say(room, alice, "hello")])  # read by alice, not yet by bob or carol
    Participant.objects.filter(room=room, user=carol).update(last_read_seq=1)
    Participant.objects.create(room=room, user=dave, last_read_seq=1)  # as participant_add does

    messages_store(sends=[room_event(room, "invited", dave, by=alice)])

    # Whoever had read everything read the line with it; Bob, behind "hello", has both unread.
    assert positions(room) == {alice.pk: 2, bob.pk: 0, carol.pk: 2, dave.pk: 2}
    assert (unread(alice, room), unread(bob, room), unread(dave, room)) == (0, 2, 0)

    # A line right after one's own message is read with it; one after someone else's is not.
    messages_store(sends=[say(room, bob, "hi all"), room_event(room, "left", carol), say(room, alice, "bye carol")])
    messages_store(sends=[room_event(room, "renamed", alice, name="plans")])
    assert positions(room) == {alice.pk: 6, bob.pk: 4, carol.pk: 2, dave.pk: 2}


def test_a_sender_mentioned_in_the_same_batch_keeps_both_the_read_position_and_the_mention(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    messages_store(sends=[say(room, alice, "here"), say(room, bob, "hey @alice")])
    assert Participant.objects.filter(room=room, user=alice).values_list("last_read_seq", "mention_seqs").get() == (
        1,
        [2],
    )


def test_history_shows_a_system_line_with_no_sender_no_counter_and_its_facts(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    (line,) = messages_store(sends=[room_event(room, "left", bob)]).stored

    (shown,) = history_page(room_id=room.pk, user_id=alice.pk, limit=10)["messages"]
    assert (shown["kind"], shown["sender"], shown["body"], shown["unread_count"]) == (
        "system",
        {"id": None, "username": None},
        "bob left",
        0,
    )
    assert shown["system"] == {"event": "left", "user": {"id": bob.pk, "username": "bob"}, "by": None}
    assert shown["mentions"] == [] and line.kind == "system"
    room.refresh_from_db()
    assert room.last_message_preview == "bob left"  # the room list's preview is the line's text


def test_a_system_line_naming_members_mentions_nobody(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    messages_store(sends=[room_event(room, "renamed", alice, name="@bob @room")])
    assert not Message.objects.get(room=room).mentions  # none: stored as null
    assert Participant.objects.get(room=room, user=bob).mention_seqs == []


def test_a_system_line_cannot_be_edited_deleted_reacted_to_or_quoted(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    messages_store(sends=[room_event(room, "joined", bob)])

    for call, code in (
        (lambda: message_edit_request(user=alice, room_id=room.pk, seq=1, body="x"), "forbidden"),
        (lambda: message_delete_request(user=alice, room_id=room.pk, seq=1), "forbidden"),  # even the owner
        (lambda: reaction_set(user=bob, room_id=room.pk, seq=1, emoji="👍", on=True), "invalid"),
    ):
        with pytest.raises(ChatError) as caught:
            call()
        assert caught.value.code == code
    # A reply to it is stored, with the quote of a message that is not there (the rule for a bad quote).
    (reply,) = messages_store(sends=[say(room, bob, "welcome me", reply_to=1)]).stored
    assert (reply.seq, reply.reply_to["deleted"], reply.reply_to["sender"]) == (
        2,
        True,
        {"id": None, "username": DELETED_USER},
    )


def test_a_line_for_a_deleted_room_is_dropped_and_a_malformed_one_refused_without_stopping_the_batch(
    make_user, make_room
):
    alice, bob = make_user(), make_user()
    gone, kept = make_room(owner=alice), make_room(owner=alice)
    late = room_event(gone, "joined", bob)
    Room.objects.filter(pk=gone.pk).delete()
    bad = room_event(kept, "exploded", bob)

    result = messages_store(sends=[late, bad, say(kept, alice, "kept")])

    assert [m.body for m in result.stored] == ["kept"]
    assert [(env["event"], reason.split(":")[0]) for env, reason in result.rejected] == [("exploded", "invalid")]


def test_an_erased_account_leaves_no_name_in_system_lines(make_user, make_room):
    from accounts.services import account_delete

    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    messages_store(sends=[room_event(room, "invited", bob, by=alice), room_event(room, "left", bob)])

    account_delete(user=bob, erase_messages=True)

    lines = dict(Message.objects.filter(room=room).values_list("seq", "body"))
    assert lines == {1: f"alice added {DELETED_USER}", 2: f"{DELETED_USER} left"}
    assert Message.objects.get(room=room, seq=2).system["user"] == {"id": None, "username": DELETED_USER}
    room.refresh_from_db()
    assert room.last_message_preview == f"{DELETED_USER} left"
