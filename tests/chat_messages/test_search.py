"""Message search (GET /api/v1/search/): whole words, the user's rooms only, newest first."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from chat_messages.models import Message
from chat_messages.search import BodyVector, message_search
from chat_messages.services import messages_store, send_envelope
from rooms.services import participant_leave

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"


def api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def say(room, sender, *bodies: str) -> list[Message]:
    sends = [
        send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=body) for body in bodies
    ]
    return messages_store(sends=sends).stored


def bodies(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [hit["body"] for hit in response.json()["hits"]]


def test_search_finds_every_word_whole_in_any_case_newest_first(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    say(room, alice, "Release on Friday", "the release notes", "releases are fun", "friday lunch?")
    say(room, bob, "RELEASE friday, confirmed")

    assert bodies(api(bob).get(URL, {"q": "release"})) == [
        "RELEASE friday, confirmed", "the release notes", "Release on Friday",
    ]  # fmt: skip
    assert bodies(api(bob).get(URL, {"q": "friday release"})) == ["RELEASE friday, confirmed", "Release on Friday"]
    assert bodies(api(bob).get(URL, {"q": "nothing like it"})) == []


def test_a_hit_says_where_the_message_is_and_who_sent_it(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    (message,) = say(room, alice, "budget draft")
    Message.objects.filter(pk=message.pk).update(edited_at=F("created_at"))
    (gone,) = say(room, bob, "budget final")
    Message.objects.filter(pk=gone.pk).update(sender=None)  # the sender's account was deleted

    hits = api(alice).get(URL, {"q": "budget"}).json()["hits"]

    assert [h["sender"] for h in hits] == [
        {"id": None, "username": "deleted user"},
        {"id": alice.pk, "username": "alice"},
    ]
    assert {k: hits[1][k] for k in ("id", "room", "seq", "body")} == {
        "id": message.pk, "room": room.pk, "seq": 1, "body": "budget draft",
    }  # fmt: skip
    assert hits[1]["created_at"] and hits[1]["edited_at"] == hits[1]["created_at"]


def test_search_never_shows_other_peoples_rooms_rooms_left_or_deleted_messages(make_user, make_room):
    me, other = make_user(), make_user()
    mine = make_room(owner=me, name="mine")
    theirs = make_room(owner=other, name="theirs")
    left = make_room(owner=other, members=[me], name="left")
    say(mine, me, "secret plan A")
    say(theirs, other, "secret plan B")
    say(left, other, "secret plan C")
    participant_leave(user_id=me.pk, room_id=left.pk)
    (deleted,) = say(mine, me, "secret plan D")
    Message.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())

    assert bodies(api(me).get(URL, {"q": "secret"})) == ["secret plan A"]
    assert bodies(api(other).get(URL, {"q": "secret"})) == ["secret plan C", "secret plan B"]


def test_search_pages_with_next_before(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    say(room, me, *[f"ping {i}" for i in range(5)])

    first = api(me).get(URL, {"q": "ping", "limit": 2}).json()
    second = api(me).get(URL, {"q": "ping", "limit": 2, "before": first["next_before"]}).json()
    last = api(me).get(URL, {"q": "ping", "limit": 2, "before": second["next_before"]}).json()

    assert [h["body"] for h in first["hits"] + second["hits"] + last["hits"]] == [f"ping {i}" for i in range(4, -1, -1)]
    assert first["next_before"] == first["hits"][-1]["id"]
    assert last["next_before"] is None


def test_search_in_one_room_and_a_room_i_am_not_in_looks_like_a_missing_one(make_user, make_room):
    me, other = make_user(), make_user()
    one, two = make_room(owner=me), make_room(owner=me)
    theirs = make_room(owner=other)
    say(one, me, "lunch here")
    say(two, me, "lunch there")
    say(theirs, other, "lunch elsewhere")

    assert bodies(api(me).get(URL, {"q": "lunch", "room": two.pk})) == ["lunch there"]
    existing = api(me).get(URL, {"q": "lunch", "room": theirs.pk})
    missing = api(me).get(URL, {"q": "lunch", "room": theirs.pk + 1000})
    assert existing.status_code == missing.status_code == 403
    assert existing.json() == missing.json()
    assert existing.json()["error"]["code"] == "not_member"
    assert "elsewhere" not in existing.content.decode()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a", "limit": 0}, "limit"),
        ({"q": "a", "limit": 101}, "limit"),
        ({"q": "a", "before": 0}, "before"),
        ({"q": "a", "room": "general"}, "room"),
        ({"q": "a", "room": ""}, "room"),
    ],
)
def test_bad_search_parameters_are_invalid(make_user, params, field):
    response = api(make_user()).get(URL, params)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid")
    assert field in response.json()["error"]["detail"]


def test_search_needs_a_signed_in_user():
    response = api(None).get(URL, {"q": "anything"})
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthenticated")


def test_punctuation_alone_finds_nothing_rather_than_failing(make_user, make_room):
    me = make_user()
    say(make_room(owner=me), me, "!!! ???")
    assert message_search(user_id=me.pk, query="!!!").hits == []
    assert bodies(api(me).get(URL, {"q": "?!"})) == []


def test_the_match_is_the_expression_the_gin_index_holds():
    """If BodyVector and migration 0002 drift apart, PostgreSQL silently stops using the index."""
    from django.contrib.postgres.search import SearchQuery

    query = Message.objects.alias(document=BodyVector(F("body"))).filter(
        document=SearchQuery("hello", config="simple", search_type="plain")
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    assert "message_body_search_idx" in query.explain()
