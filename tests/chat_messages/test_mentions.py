"""Mentions (@name, @room) found when a message is stored, counted per room, and muting a room."""

from __future__ import annotations

import uuid

import pytest

from chat_messages.selectors import history_page
from chat_messages.services import mention_names, message_apply_delete, messages_store, send_envelope
from rooms.selectors import room_summary_for_member
from rooms.services import participant_mute, read_position_advance, read_position_mark_unread
from streams.realtime.hub import room_group, user_group

pytestmark = pytest.mark.django_db


def store(room, sender, *bodies: str):
    sends = [
        send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=body) for body in bodies
    ]
    return messages_store(sends=sends).stored


def mentions_of(room, user) -> int:
    return room_summary_for_member(room_id=room.pk, user_id=user.pk).mentions


def test_names_are_found_where_a_name_starts_and_end_before_the_punctuation_after_them():
    assert mention_names("@Bob, ask @carol.smith. Mail bob@example.com or @room!") == {"bob", "carol.smith", "room"}
    assert mention_names("no one here @ all, a@b") == set()


def test_a_message_mentions_the_members_it_names_not_strangers_nor_its_sender(make_user, make_room):
    alice, bob, carol, dave = (make_user(name) for name in ("alice", "bob", "carol", "dave"))
    room = make_room(owner=alice, members=[bob, carol])

    (message,) = store(room, alice, "@BOB and @carol: see @dave and @alice (bob@example.com)")

    assert message.mentions == sorted([bob.pk, carol.pk])  # as message.new carries them
    page = history_page(room_id=room.pk, user_id=bob.pk, anchor="newest", limit=5)
    assert page["messages"][0]["mentions"] == sorted([bob.pk, carol.pk])
    assert (mentions_of(room, bob), mentions_of(room, carol), mentions_of(room, alice)) == (1, 1, 0)


def test_at_room_mentions_everyone_else_when_the_owner_or_an_admin_says_it(make_user, make_room):
    alice, bob, carol = (make_user(name) for name in ("alice", "bob", "carol"))
    room = make_room(owner=alice, members=[bob, carol])

    (from_member,) = store(room, bob, "@room lunch?")
    (from_owner,) = store(room, alice, "@room meeting at 3")

    assert from_member.mentions == []  # a plain member's @room is just text
    assert from_owner.mentions == sorted([bob.pk, carol.pk])


def test_the_mention_count_follows_the_read_position_both_ways(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    store(room, alice, "hi @bob", "more", "again @bob")
    assert mentions_of(room, bob) == 2

    read_position_advance(user_id=bob.pk, room_id=room.pk, seq=2)
    assert mentions_of(room, bob) == 1
    read_position_advance(user_id=bob.pk, room_id=room.pk, seq=3)
    assert mentions_of(room, bob) == 0
    read_position_mark_unread(user_id=bob.pk, room_id=room.pk, seq=1)
    assert mentions_of(room, bob) == 2


@pytest.mark.django_db(transaction=True)
def test_muting_is_the_users_own_and_only_their_sockets_hear_of_it(make_user, make_room, api, feed):
    alice, bob, carol = make_user(), make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    feed.clear()

    muted = api(bob).put(f"/api/v1/rooms/{room.pk}/mute/")
    again = api(bob).put(f"/api/v1/rooms/{room.pk}/mute/")
    assert (muted.status_code, muted.json()["muted"], again.json()["muted"]) == (200, True, True)
    assert room_summary_for_member(room_id=room.pk, user_id=alice.pk).muted is False
    unmuted = api(bob).delete(f"/api/v1/rooms/{room.pk}/mute/")
    assert unmuted.json()["muted"] is False

    events = feed.events()
    assert [(g, f) for g, f, _ in events if f] == [
        (user_group(bob.pk), {"type": "room.updated", "room": room.pk, "muted": True}),
        (user_group(bob.pk), {"type": "room.updated", "room": room.pk, "muted": False}),
    ]
    assert not [g for g, _, _ in events if g == room_group(room.pk)]
    assert api(carol).put(f"/api/v1/rooms/{room.pk}/mute/").json()["error"]["code"] == "not_member"
    assert participant_mute(user_id=bob.pk, room_id=room.pk, muted=False) is False


def test_names_beyond_ascii_are_mentioned_in_any_case(make_user, make_room):
    alice, emile, jiwoo = make_user("alice"), make_user("Émile"), make_user("지우")
    room = make_room(owner=alice, members=[emile, jiwoo])

    (lower, as_written) = store(room, alice, "@émile, @지우: ready?", "@Émile!")

    assert lower.mentions == sorted([emile.pk, jiwoo.pk])
    assert as_written.mentions == [emile.pk]


def test_a_deleted_message_no_longer_counts_as_a_mention(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    store(room, alice, "@bob one", "@bob two")
    assert mentions_of(room, bob) == 2

    message_apply_delete(env={"room": room.pk, "seq": 2, "sender": alice.pk})

    assert mentions_of(room, bob) == 1
