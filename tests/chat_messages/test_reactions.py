"""Reactions: one emoji per user and kind on a message, live to the room, one query per history page."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat_messages.models import Reaction
from chat_messages.selectors import history_page
from chat_messages.services import message_apply_delete, messages_store, reaction_set, send_envelope
from rooms.services import participant_remove
from streams.errors import ChatError
from streams.realtime.hub import room_group

pytestmark = pytest.mark.django_db

THUMBS, HEART = Reaction.REACTIONS[0], Reaction.REACTIONS[1]


def store(room, sender, count: int = 1) -> list[int]:
    sends = [
        send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=f"m{i}")
        for i in range(count)
    ]
    return [m.seq for m in messages_store(sends=sends).stored]


def refused(**kwargs) -> str:
    with pytest.raises(ChatError) as caught:
        reaction_set(**kwargs)
    return caught.value.code


def reactions(room, user, seq) -> list[dict]:
    page = history_page(room_id=room.pk, user_id=user.pk, anchor=seq, limit=1)
    return next(m for m in page["messages"] if m["seq"] == seq)["reactions"]


@pytest.mark.django_db(transaction=True)
def test_members_react_once_per_emoji_and_the_room_hears_each_change_once(make_user, make_room, feed):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    (seq,) = store(room, alice)
    feed.clear()

    assert reaction_set(user=bob, room_id=room.pk, seq=seq, emoji=THUMBS, on=True) is True
    assert reaction_set(user=bob, room_id=room.pk, seq=seq, emoji=THUMBS, on=True) is False  # again: nothing
    assert reaction_set(user=alice, room_id=room.pk, seq=seq, emoji=HEART, on=True) is True
    assert reaction_set(user=alice, room_id=room.pk, seq=seq, emoji=THUMBS, on=True) is True
    assert reaction_set(user=alice, room_id=room.pk, seq=seq, emoji=HEART, on=False) is True
    assert reaction_set(user=alice, room_id=room.pk, seq=seq, emoji=HEART, on=False) is False

    frames = feed.frames(room_group(room.pk))
    assert [(f["type"], f["emoji"], f["user"]["id"]) for f in frames] == [
        ("reaction.added", THUMBS, bob.pk),
        ("reaction.added", HEART, alice.pk),
        ("reaction.added", THUMBS, alice.pk),
        ("reaction.removed", HEART, alice.pk),
    ]
    assert all((f["room"], f["seq"]) == (room.pk, seq) for f in frames)
    assert reactions(room, bob, seq) == [
        {
            "emoji": THUMBS,
            "count": 2,
            "users": [{"id": bob.pk, "username": bob.username}, {"id": alice.pk, "username": alice.username}],
        }
    ]


def test_a_reaction_others_may_not_make_is_refused_with_the_reason(make_user, make_room):
    alice, bob, carol = make_user(), make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    (seq,) = store(room, alice)

    assert refused(user=carol, room_id=room.pk, seq=seq, emoji=THUMBS, on=True) == "not_member"
    assert refused(user=bob, room_id=room.pk, seq=seq, emoji="🦄", on=True) == "invalid"
    assert refused(user=bob, room_id=room.pk, seq=seq, emoji=None, on=True) == "invalid"
    assert refused(user=bob, room_id=room.pk, seq=99, emoji=THUMBS, on=True) == "not_found"
    assert refused(user=bob, room_id=room.pk, seq="1", emoji=THUMBS, on=True) == "invalid"
    # A member who left can no longer react to what they saw.
    participant_remove(actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)
    assert refused(user=bob, room_id=room.pk, seq=seq, emoji=THUMBS, on=True) == "not_member"


def test_deleting_a_message_drops_its_reactions(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    (seq,) = store(room, alice)
    reaction_set(user=bob, room_id=room.pk, seq=seq, emoji=THUMBS, on=True)

    message_apply_delete(env={"room": room.pk, "seq": seq, "sender": alice.pk})

    assert Reaction.objects.count() == 0
    assert refused(user=bob, room_id=room.pk, seq=seq, emoji=HEART, on=True) == "not_found"


def test_a_history_page_with_reactions_costs_the_same_queries_however_many_messages_and_reactions(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    seqs = store(room, alice, 30)
    for seq in seqs[:5]:
        reaction_set(user=bob, room_id=room.pk, seq=seq, emoji=THUMBS, on=True)

    def queries(limit: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            page = history_page(room_id=room.pk, user_id=alice.pk, anchor="newest", limit=limit)
        assert len(page["messages"]) == limit
        return len(captured)

    small = queries(3)
    for seq in seqs:
        for emoji in Reaction.REACTIONS:
            reaction_set(user=alice, room_id=room.pk, seq=seq, emoji=emoji, on=True)
    assert queries(30) == small


def test_reactions_over_rest_answer_the_messages_reactions_and_refuse_what_is_not_allowed(make_user, make_room, api):
    alice, bob, carol = make_user(), make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    (seq,) = store(room, alice)
    url = f"/api/v1/rooms/{room.pk}/messages/{seq}/reactions/"

    added = api(bob).put(url + quote(HEART) + "/")
    again = api(bob).put(url + quote(HEART) + "/")
    assert added.status_code == again.status_code == 200
    assert added.json() == {
        "changed": True,
        "reactions": [{"emoji": HEART, "count": 1, "users": [{"id": bob.pk, "username": bob.username}]}],
    }
    assert again.json()["changed"] is False
    removed = api(bob).delete(url + quote(HEART) + "/")
    assert removed.json() == {"changed": True, "reactions": []}

    assert api(carol).put(url + quote(HEART) + "/").json()["error"]["code"] == "not_member"
    unknown = api(bob).put(url + quote("🦄") + "/")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "invalid")
    gone = api(bob).put(f"/api/v1/rooms/{room.pk}/messages/99/reactions/{quote(HEART)}/")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "not_found")
