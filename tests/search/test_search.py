"""Message search (GET /api/v1/search/) over the index the chat-index consumer keeps.

Messages are stored by the persist service and indexed by calling the index worker's consume()
with the same envelopes, as the two consumer groups do with one topic.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid

import pytest
from django.db.models import F
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from chat_messages import services as message_services
from chat_messages.models import Message
from chat_messages.services import messages_store, send_envelope
from rooms.services import participant_leave
from search import services
from search.backends.base import get_backend
from search.models import MessageDoc
from search.selectors import message_search
from search.workers import IndexWorker
from streams.pipeline import kafka
from streams.pipeline.worker import Record

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"


def api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def consume(*envelopes: dict) -> None:
    """The chat-index consumer reads these envelopes (persist has applied them)."""
    IndexWorker().consume(
        [Record("chat.messages", 0, offset, str(env.get("room")).encode(), env) for offset, env in enumerate(envelopes)]
    )


def say(room, sender, *bodies: str) -> list[Message]:
    """Store these messages (persist) and index them (chat-index)."""
    sends = [
        send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=body) for body in bodies
    ]
    stored = messages_store(sends=sends).stored
    consume(*sends)
    return stored


def bodies(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [hit["body"] for hit in response.json()["hits"]]


def found(user, q: str, **params) -> list[str]:
    return bodies(api(user).get(URL, {"q": q, **params}))


# -- matching -------------------------------------------------------------------------------------
def test_korean_is_found_by_part_of_a_word(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    say(room, me, "안녕하세요 반갑습니다", "회의는 내일 3시에 합니다", "점심 먹었어요?")

    assert found(me, "반갑") == ["안녕하세요 반갑습니다"]
    assert found(me, "회의") == ["회의는 내일 3시에 합니다"]
    assert found(me, "3시") == ["회의는 내일 3시에 합니다"]
    # One syllable, at the end of a word and inside one.
    assert found(me, "다") == ["회의는 내일 3시에 합니다", "안녕하세요 반갑습니다"]
    assert found(me, "심") == ["점심 먹었어요?"]
    assert found(me, "회의 내일") == ["회의는 내일 3시에 합니다"]
    assert found(me, "회의 점심") == []


def test_english_any_case_and_part_of_a_word_newest_first(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    say(room, alice, "Release on Friday", "the release notes", "releases are fun", "friday lunch?")
    say(room, bob, "RELEASE friday, confirmed", "Meeting moved")

    assert found(bob, "release") == [
        "RELEASE friday, confirmed", "releases are fun", "the release notes", "Release on Friday",
    ]  # fmt: skip
    assert found(bob, "friday release") == ["RELEASE friday, confirmed", "Release on Friday"]
    assert found(bob, "meet") == ["Meeting moved"]
    assert found(bob, "EETIN") == ["Meeting moved"]
    assert found(bob, "nothing like it") == []


def test_chinese_japanese_full_width_and_quoted_phrases(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    say(room, me, "明天东京开会", "東京タワーに行きます", "ＡＢＣ会議", "on the way home", "the home way")

    assert found(me, "东京") == ["明天东京开会"]
    assert found(me, "タワー") == ["東京タワーに行きます"]
    assert found(me, "abc") == ["ＡＢＣ会議"]  # full-width letters fold to ASCII
    assert found(me, '"way home"') == ["on the way home"]
    assert found(me, "way home") == ["the home way", "on the way home"]


def test_punctuation_and_emoji_are_matched_as_written(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    say(room, me, "!!! ???", "ship it 🚀", "100% sure", "snake_case")

    assert found(me, "🚀") == ["ship it 🚀"]
    assert found(me, "?!") == []
    assert found(me, "%") == ["100% sure"]  # LIKE's wildcards are taken literally
    assert found(me, "_") == ["snake_case"]


def test_relevance_puts_whole_words_first(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    say(room, me, "plan", "the plan is set", "planning session", "explanation follows")

    assert found(me, "plan", order="relevance") == [
        "plan",
        "the plan is set",
        "planning session",
        "explanation follows",
    ]
    assert found(me, "plan") == ["explanation follows", "planning session", "the plan is set", "plan"]


# -- what a hit says ------------------------------------------------------------------------------
def test_a_hit_says_where_the_message_is_who_sent_it_and_where_the_terms_are(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob], name="Team")
    (message,) = say(room, alice, "Budget draft, see BUDGET.xlsx")
    Message.objects.filter(pk=message.pk).update(edited_at=F("created_at"))
    (gone,) = say(room, bob, "budget final")
    Message.objects.filter(pk=gone.pk).update(sender=None)  # the sender's account was deleted

    hits = api(alice).get(URL, {"q": "budget"}).json()["hits"]

    assert [h["sender"] for h in hits] == [
        {"id": None, "username": "deleted user"},
        {"id": alice.pk, "username": "alice"},
    ]
    assert {k: hits[1][k] for k in ("id", "room", "room_name", "seq", "body")} == {
        "id": message.pk, "room": room.pk, "room_name": "Team", "seq": 1, "body": "Budget draft, see BUDGET.xlsx",
    }  # fmt: skip
    assert hits[1]["created_at"] and hits[1]["edited_at"] == hits[1]["created_at"]
    assert hits[1]["snippet"] == [
        {"text": "Budget", "hit": True},
        {"text": " draft, see ", "hit": False},
        {"text": "BUDGET", "hit": True},
        {"text": ".xlsx", "hit": False},
    ]


def test_a_direct_room_is_named_after_the_other_person(make_user, api_client_direct_room):
    alice, bob, room = api_client_direct_room
    say(room, bob, "hello there")
    assert [h["room_name"] for h in api(alice).get(URL, {"q": "hello"}).json()["hits"]] == ["bob"]
    assert [h["room_name"] for h in api(bob).get(URL, {"q": "hello"}).json()["hits"]] == ["alice"]


@pytest.fixture
def api_client_direct_room(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    response = api(alice).post("/api/v1/rooms/", {"kind": "direct", "user": bob.pk}, format="json")
    assert response.status_code == 201, response.content
    from rooms.models import Room

    return alice, bob, Room.objects.get(pk=response.json()["id"])


# -- who sees what --------------------------------------------------------------------------------
def test_never_other_peoples_rooms_rooms_left_or_deleted_messages(make_user, make_room):
    me, other = make_user(), make_user()
    mine = make_room(owner=me, name="mine")
    theirs = make_room(owner=other, name="theirs")
    left = make_room(owner=other, members=[me], name="left")
    say(mine, me, "secret plan A")
    say(theirs, other, "secret plan B")
    say(left, other, "secret plan C")
    participant_leave(user_id=me.pk, room_id=left.pk)
    (deleted,) = say(mine, me, "secret plan D")
    # Deleted in the database, and the index not told yet: the hit is still never shown.
    Message.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now(), body="")
    assert MessageDoc.objects.filter(message_id=deleted.pk).exists()

    assert found(me, "secret") == ["secret plan A"]
    assert found(other, "secret") == ["secret plan C", "secret plan B"]


def test_an_index_lagging_behind_an_edit_never_shows_words_the_message_no_longer_has(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    (message,) = say(room, me, "my password is hunter2")
    Message.objects.filter(pk=message.pk).update(body="(removed)", edited_at=timezone.now())

    assert found(me, "hunter2") == []


def test_edits_and_deletions_reach_the_index_through_the_consumer(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    first, second = say(room, me, "meet at noon", "lunch at one")

    message_services.message_apply_edit(env=(edit := kafka.envelope(
        "message.edit", room=room.pk, seq=first.seq, sender=me.pk, body="meet at dinner")))  # fmt: skip
    consume(edit)
    delete = kafka.envelope("message.delete", room=room.pk, seq=second.seq, sender=me.pk)
    message_services.message_apply_delete(env=delete)
    consume(delete)

    assert found(me, "dinner") == ["meet at dinner"]
    assert found(me, "noon") == []
    assert found(me, "lunch") == []
    assert MessageDoc.objects.get(message_id=first.pk).folded == "meet at dinner"
    assert not MessageDoc.objects.filter(message_id=second.pk).exists()
    consume(edit, delete)  # a replay changes nothing
    assert found(me, "dinner") == ["meet at dinner"]


def test_a_send_and_its_edit_in_one_batch_are_indexed(make_user, make_room):
    """A typo fixed at once: the send and the edit reach chat-index in one batch and name the same
    row twice (by its send key and by its seq); it is written once, with its newest words."""
    me = make_user()
    room = make_room(owner=me)
    send = send_envelope(room_id=room.pk, sender_id=me.pk, client_msg_id=uuid.uuid4(), body="meet at noom")
    (message,) = messages_store(sends=[send]).stored
    edit = kafka.envelope("message.edit", room=room.pk, seq=message.seq, sender=me.pk, body="meet at noon")
    message_services.message_apply_edit(env=edit)

    consume(send, edit)

    assert found(me, "noon") == ["meet at noon"]
    assert found(me, "noom") == []


def test_a_message_whose_sender_was_deleted_before_it_was_indexed_is_still_found(make_user, make_room):
    """The account went (its messages kept, without a sender) before chat-index read the send:
    the message is still in the room for everyone else, so it is still found."""
    from accounts.services import account_delete

    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    send = send_envelope(room_id=room.pk, sender_id=bob.pk, client_msg_id=uuid.uuid4(), body="handover notes")
    messages_store(sends=[send])
    account_delete(user=bob, erase_messages=False)

    consume(send, kafka.envelope("account.erased", room=room.pk, user=bob.pk, erase_messages=False))

    assert found(alice, "handover") == ["handover notes"]


def test_a_deleted_room_and_an_erased_account_leave_the_index(make_user, make_room):
    me, bob, carol = make_user(), make_user(), make_user()
    gone = make_room(owner=me, members=[bob])
    stays = make_room(owner=me, members=[bob, carol])
    say(gone, me, "quarterly numbers")
    say(stays, bob, "quarterly plans by bob")
    say(stays, carol, "quarterly plans by carol")
    gone_id = gone.pk
    gone.delete()
    consume(kafka.envelope("room.deleted", room=gone_id))

    from accounts.services import account_delete

    account_delete(user=carol, erase_messages=True)
    consume(kafka.envelope("account.erased", room=stays.pk, user=carol.pk, erase_messages=True))

    assert not MessageDoc.objects.filter(room_id=gone_id).exists()
    assert not MessageDoc.objects.filter(sender_id=carol.pk).exists()
    assert found(me, "quarterly") == ["quarterly plans by bob"]


def test_a_send_persist_refused_indexes_nothing(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    never_stored = send_envelope(room_id=room.pk, sender_id=me.pk, client_msg_id=uuid.uuid4(), body="ghost words")
    hostile = [
        {"v": 1, "kind": "message.send", "room": room.pk, "sender": "x", "client_msg_id": "y"},
        {"v": 1, "kind": "message.send", "room": room.pk, "sender": 10**30, "client_msg_id": str(uuid.uuid4())},
        {"v": 1, "kind": "message.edit", "room": room.pk, "seq": True, "sender": me.pk, "body": "x"},
        {"v": 1, "kind": "message.delete", "room": -1, "seq": 1},
        {"v": 1, "kind": "room.deleted", "room": "1 OR 1=1"},
        {"v": 1, "kind": "account.erased", "user": None, "erase_messages": True},
        {"v": 1, "kind": "message.send"},
    ]
    # Persist refused them all (and dead-lettered them): the index skips them, without failing.
    consume(never_stored, *hostile)
    assert not MessageDoc.objects.exists()
    assert found(me, "ghost") == []


def test_system_lines_are_never_found(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    line = kafka.envelope(
        "room.event", room=room.pk, event="invited",
        user={"id": bob.pk, "username": "bob"}, by={"id": alice.pk, "username": "alice"},
    )  # fmt: skip
    messages_store(sends=[line])
    consume(line)
    say(room, bob, "bob added a file")
    assert found(alice, "added") == ["bob added a file"]


# -- filters and pages ----------------------------------------------------------------------------
def test_one_room_and_a_room_i_am_not_in_looks_like_a_missing_one(make_user, make_room):
    me, other = make_user(), make_user()
    one, two = make_room(owner=me), make_room(owner=me)
    theirs = make_room(owner=other)
    say(one, me, "lunch here")
    say(two, me, "lunch there")
    say(theirs, other, "lunch elsewhere")

    assert found(me, "lunch", room=two.pk) == ["lunch there"]
    existing = api(me).get(URL, {"q": "lunch", "room": theirs.pk})
    missing = api(me).get(URL, {"q": "lunch", "room": theirs.pk + 1000})
    assert existing.status_code == missing.status_code == 403
    assert existing.json() == missing.json()
    assert existing.json()["error"]["code"] == "not_member"
    assert "elsewhere" not in existing.content.decode()


def test_sender_and_date_filters(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    old, _ = say(room, alice, "report v1", "report v2")
    (bobs,) = say(room, bob, "report from bob")
    # Sent in January (its row and its document: a message's time never changes once stored).
    january = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)
    Message.objects.filter(pk=old.pk).update(created_at=january)
    MessageDoc.objects.filter(message_id=old.pk).update(created_at=january)

    assert found(alice, "report", sender=bob.pk) == ["report from bob"]
    assert found(alice, "report", until="2026-01-15") == ["report v1"]  # the whole day
    assert found(alice, "report", until="2026-01-15T12:00:00Z") == []
    assert found(alice, "report", since="2026-01-16") == ["report from bob", "report v2"]
    assert found(alice, "report", since="2026-01-15", until="2026-01-15T12:00:01+00:00") == ["report v1"]
    assert bobs.sender_id == bob.pk


def test_pages_with_next_cursor_and_the_older_next_before(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    say(room, me, *[f"ping {i}" for i in range(5)])

    first = api(me).get(URL, {"q": "ping", "limit": 2}).json()
    second = api(me).get(URL, {"q": "ping", "limit": 2, "cursor": first["next_cursor"]}).json()
    last = api(me).get(URL, {"q": "ping", "limit": 2, "before": second["next_before"]}).json()

    assert [h["body"] for h in first["hits"] + second["hits"] + last["hits"]] == [f"ping {i}" for i in range(4, -1, -1)]
    assert last["next_cursor"] is None and last["next_before"] is None
    ranked = api(me).get(URL, {"q": "ping", "limit": 3, "order": "relevance"}).json()
    rest = api(me).get(URL, {"q": "ping", "limit": 3, "order": "relevance", "cursor": ranked["next_cursor"]}).json()
    assert sorted(h["body"] for h in ranked["hits"] + rest["hits"]) == [f"ping {i}" for i in range(5)]
    assert rest["next_cursor"] is None
    # A cursor of one order is refused by the other.
    wrong = api(me).get(URL, {"q": "ping", "order": "relevance", "cursor": first["next_cursor"]})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "invalid")


def test_a_tampered_cursor_is_refused_not_a_server_error(make_user, make_room):
    me = make_user()
    say(make_room(owner=me), me, "ping")
    for value in ("true", "1.5", '"7"', "null"):
        raw = base64.urlsafe_b64encode(f'{{"o":"recent","v":{value}}}'.encode()).decode()
        response = api(me).get(URL, {"q": "ping", "cursor": raw})
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid"), value


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
        ({"q": "a", "sender": "bob"}, "sender"),
        ({"q": "a", "since": "yesterday"}, "since"),
        ({"q": "a", "until": "9999-12-31"}, "until"),
        ({"q": "a", "since": "2026-02-01", "until": "2026-01-01"}, "since"),
        ({"q": "a", "order": "oldest"}, "order"),
        ({"q": "a", "cursor": "not-a-cursor"}, "cursor"),
        ({"q": "a", "cursor": "eyJvIjoicmVjZW50IiwidiI6LTF9"}, "cursor"),  # {"o":"recent","v":-1}
    ],
)
def test_bad_search_parameters_are_invalid(make_user, params, field):
    response = api(make_user()).get(URL, params)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid")
    assert field in response.json()["error"]["detail"]


def test_search_needs_a_signed_in_user():
    response = api(None).get(URL, {"q": "anything"})
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthenticated")


# -- rebuild --------------------------------------------------------------------------------------
def test_a_rebuild_gives_the_same_results_as_the_live_index(make_user, make_room):
    me, bob = make_user(), make_user()
    room, other = make_room(owner=me, members=[bob]), make_room(owner=bob, members=[me])
    say(room, me, "회의는 내일", "meeting tomorrow", "회의록 공유")
    say(other, bob, "no 회의 today", "meet me")
    (edited,) = say(room, bob, "draft plan")
    edit = kafka.envelope("message.edit", room=room.pk, seq=edited.seq, sender=bob.pk, body="final 회의 plan")
    message_services.message_apply_edit(env=edit)
    consume(edit)
    queries = ["회의", "meet", "plan", "내일", "e"]
    live = {q: message_search(user_id=me.pk, q=q).hits for q in queries}
    docs = sorted(MessageDoc.objects.values_list("message_id", "folded", "version"))

    # A stale document (a message gone while nobody indexed) is swept too.
    MessageDoc.objects.create(message_id=10**12, room_id=room.pk, created_at=timezone.now(), version=1, folded="회의")
    result = services.index_rebuild(clear=True)

    assert {q: message_search(user_id=me.pk, q=q).hits for q in queries} == live
    assert sorted(MessageDoc.objects.values_list("message_id", "folded", "version")) == docs
    assert (result.indexed, result.removed) == (6, 0)
    services.index_rebuild()  # over a full index: the same again, and the stale one swept
    MessageDoc.objects.create(message_id=10**12, room_id=room.pk, created_at=timezone.now(), version=1, folded="회의")
    assert services.index_rebuild().removed == 1
    assert sorted(MessageDoc.objects.values_list("message_id", "folded", "version")) == docs
    assert get_backend().stats()["documents"] == 6


def test_an_older_version_never_replaces_a_newer_one(make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    (message,) = say(room, me, "first words")
    newer = timezone.now() + dt.timedelta(seconds=5)
    Message.objects.filter(pk=message.pk).update(body="second words", edited_at=newer)
    services.docs_sync(message_ids=[message.pk])
    from search.backends.base import Doc

    stale = Doc(message_id=message.pk, room_id=room.pk, sender_id=me.pk, created_at=message.created_at,
                body="first words", version=int(message.created_at.timestamp() * 1e6))  # fmt: skip
    get_backend().upsert([stale])  # a rebuild that read the row before the edit, writing late

    assert MessageDoc.objects.get(message_id=message.pk).folded == "second words"
