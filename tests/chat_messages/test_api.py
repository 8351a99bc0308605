"""The messages REST API: history pages, send, edit and delete, as a mobile client uses them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from chat_messages.models import Message
from chat_messages.services import messages_store, send_envelope
from rooms.services import read_position_advance
from streams.pipeline import kafka
from tests.support import ChatClient, KafkaTap, in_thread, token_for

pytestmark = pytest.mark.kafka  # produces to or reads back from the broker


def post(room, sender, count: int = 1, body: str = "hello") -> list[int]:
    """Store messages as the persistence consumer does; returns their seqs."""
    sends = [
        send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=f"{body} {i}")
        for i in range(count)
    ]
    return [m.seq for m in messages_store(sends=sends).stored]


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture
def tap():
    tap = KafkaTap(kafka.MESSAGES)
    yield tap
    tap.close()


# -- history ----------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_history_pages_by_seq_around_the_newest_the_first_unread_or_any_seq(make_user, make_room, api):
    owner, reader = make_user(), make_user()
    room = make_room(owner=owner, members=[reader])
    post(room, owner, count=10)
    read_position_advance(user_id=reader.pk, room_id=room.pk, seq=4)
    url = f"/api/v1/rooms/{room.pk}/messages/"

    def page(**params):
        response = api(reader).get(url, params)
        assert response.status_code == 200, response.content
        body = response.json()
        return [m["seq"] for m in body["messages"]], body["has_older"], body["has_newer"]

    assert page(limit=3) == ([8, 9, 10], True, False)
    assert page(anchor="newest", limit=3) == ([8, 9, 10], True, False)
    assert page(anchor="first_unread", limit=4) == ([3, 4, 5, 6], True, True)
    assert page(anchor=7, limit=2) == ([6, 7], True, True)
    assert page(before=4, limit=2) == ([2, 3], True, True)
    assert page(before=3, limit=5) == ([1, 2], False, True)
    assert page(after=8, limit=5) == ([9, 10], True, False)
    assert page(after=0, limit=2) == ([1, 2], False, True)

    body = api(reader).get(url, {"anchor": "first_unread", "limit": 2}).json()
    assert (body["last_read_seq"], body["last_seq"]) == (4, 10)
    first = body["messages"][0]
    assert first["sender"] == {"id": owner.pk, "username": owner.username}
    assert (first["room"], first["body"], first["deleted"], first["edited_at"]) == (room.pk, "hello 3", False, None)
    # The owner has read everything (they sent it); the reader stopped at 4.
    assert [(m["seq"], m["unread_count"]) for m in body["messages"]] == [(4, 0), (5, 1)]


@pytest.mark.django_db
def test_the_history_of_an_empty_room_is_an_empty_page(make_user, make_room, api):
    owner = make_user()
    room = make_room(owner=owner)
    body = api(owner).get(f"/api/v1/rooms/{room.pk}/messages/").json()
    assert body == {"messages": [], "has_older": False, "has_newer": False, "last_read_seq": 0, "last_seq": 0}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"anchor": "oldest"}, "anchor"),
        ({"anchor": ""}, "anchor"),
        ({"before": 0}, "before"),
        ({"before": ""}, "before"),
        ({"after": -1}, "after"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"before": 5, "after": 1}, "non_field_errors"),
        ({"anchor": "newest", "before": 5}, "non_field_errors"),
    ],
)
def test_bad_history_parameters_are_invalid_and_name_the_parameter(make_user, make_room, api, params, field):
    owner = make_user()
    room = make_room(owner=owner)
    response = api(owner).get(f"/api/v1/rooms/{room.pk}/messages/", params)
    assert error(response) == (400, "invalid")
    assert field in response.json()["error"]["detail"]


# -- send -------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_message_sent_over_rest_is_accepted_once_the_message_log_has_it(make_user, make_room, api, tap):
    owner = make_user()
    room = make_room(owner=owner)
    msg_id = str(uuid.uuid4())

    response = api(owner).post(
        f"/api/v1/rooms/{room.pk}/messages/", {"client_msg_id": msg_id, "body": "hi there"}, format="json"
    )

    assert (response.status_code, response.json()) == (202, {"client_msg_id": msg_id})
    (record,) = tap.records(1)
    assert record.key == str(room.pk).encode()  # keyed by room: the room's order is kept
    assert {k: record.value[k] for k in ("kind", "room", "sender", "client_msg_id", "body")} == {
        "kind": "message.send", "room": room.pk, "sender": owner.pk, "client_msg_id": msg_id, "body": "hi there",
    }  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"client_msg_id": "not-a-uuid", "body": "hi"}, 400, "invalid"),
        ({"body": "hi"}, 400, "invalid"),
        ({"client_msg_id": "{uuid}", "body": ""}, 400, "invalid"),
        ({"client_msg_id": "{uuid}", "body": "   "}, 400, "invalid"),
        ({"client_msg_id": "{uuid}", "body": 42}, 400, "invalid"),  # JSON types are not guessed
        ({"client_msg_id": "{uuid}", "body": "é" * 2049}, 413, "too_large"),  # 4098 bytes
    ],
)
def test_a_bad_send_is_refused_with_its_code_and_nothing_reaches_the_log(
    make_user, make_room, api, tap, body, status, code
):
    owner = make_user()
    room = make_room(owner=owner)
    body = {k: str(uuid.uuid4()) if v == "{uuid}" else v for k, v in body.items()}

    response = api(owner).post(f"/api/v1/rooms/{room.pk}/messages/", body, format="json")

    assert error(response) == (status, code)
    assert response.json()["error"]["detail"]
    assert tap.records(1, timeout=1.0) == []


@pytest.mark.django_db
def test_a_form_encoded_send_is_refused_the_api_speaks_json(make_user, make_room, api):
    owner = make_user()
    room = make_room(owner=owner)
    response = api(owner).post(f"/api/v1/rooms/{room.pk}/messages/", {"client_msg_id": str(uuid.uuid4()), "body": "x"})
    assert error(response) == (415, "invalid")


# -- edit and delete --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_sender_edits_and_deletes_their_message_through_the_log(make_user, make_room, api, tap):
    owner = make_user()
    room = make_room(owner=owner)
    (seq,) = post(room, owner)
    url = f"/api/v1/rooms/{room.pk}/messages/{seq}/"

    edited = api(owner).patch(url, {"body": "hello, fixed"}, format="json")
    deleted = api(owner).delete(url)

    assert (edited.status_code, deleted.status_code) == (202, 202)
    records = tap.records(2)
    assert [(r.value["kind"], r.value["room"], r.value["seq"], r.value["sender"]) for r in records] == [
        ("message.edit", room.pk, seq, owner.pk),
        ("message.delete", room.pk, seq, owner.pk),
    ]
    assert records[0].value["body"] == "hello, fixed"


@pytest.mark.django_db
def test_only_the_sender_may_change_a_message_and_only_one_that_exists(make_user, make_room, api):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    (seq,) = post(room, owner)
    Message.objects.filter(room=room, seq=seq).update(body="")
    (gone,) = post(room, owner)
    Message.objects.filter(room=room, seq=gone).update(deleted_at="2026-01-01T00:00:00Z", body="")
    url = f"/api/v1/rooms/{room.pk}/messages/"

    assert error(api(member).patch(f"{url}{seq}/", {"body": "mine now"}, format="json")) == (403, "forbidden")
    assert error(api(member).delete(f"{url}{seq}/")) == (403, "forbidden")
    assert error(api(owner).patch(f"{url}99/", {"body": "x"}, format="json")) == (404, "not_found")
    assert error(api(owner).delete(f"{url}99/")) == (404, "not_found")
    assert error(api(owner).patch(f"{url}{gone}/", {"body": "back"}, format="json")) == (404, "not_found")
    assert error(api(owner).patch(f"{url}{seq}/", {"body": " "}, format="json")) == (400, "invalid")
    assert error(api(owner).patch(f"{url}{seq}/", {}, format="json")) == (400, "invalid")
    assert error(api(owner).patch(f"{url}{seq}/", {"body": "x" * 5000}, format="json")) == (413, "too_large")


@pytest.mark.django_db
def test_the_rooms_owner_deletes_a_members_message_a_member_does_not_and_edits_stay_the_senders(
    make_user, make_room, api, tap, settings
):
    owner, alice, bob = make_user(), make_user(), make_user()
    room = make_room(owner=owner, members=[alice, bob])
    (seq,) = post(room, alice)
    url = f"/api/v1/rooms/{room.pk}/messages/{seq}/"

    assert error(api(bob).delete(url)) == (403, "forbidden")
    assert error(api(owner).patch(url, {"body": "owners may not edit"}, format="json")) == (403, "forbidden")
    assert api(owner).delete(url).status_code == 202
    (record,) = tap.records(1)
    assert (record.value["kind"], record.value["sender"], record.value["moderator"]) == (
        "message.delete", alice.pk, owner.pk,
    )  # fmt: skip

    settings.CHAT_EDIT_WINDOW_S = 3600
    Message.objects.filter(room=room, seq=seq).update(created_at=timezone.now() - timedelta(hours=2))
    assert error(api(alice).patch(url, {"body": "late"}, format="json")) == (403, "forbidden")


# -- who may call -------------------------------------------------------------------------------------
ENDPOINTS = [
    ("get", "/api/v1/rooms/{id}/messages/", None),
    ("post", "/api/v1/rooms/{id}/messages/", {"client_msg_id": "8e6f5a8c-7f0e-4a35-9d68-8f1f2e1f0a11", "body": "x"}),
    ("patch", "/api/v1/rooms/{id}/messages/1/", {"body": "x"}),
    ("delete", "/api/v1/rooms/{id}/messages/1/", None),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_non_member_cannot_tell_a_room_they_are_not_in_from_a_missing_one(
    make_user, make_room, api, method, path, body
):
    owner, outsider = make_user(), make_user()
    room = make_room(owner=owner)
    post(room, owner)
    client = api(outsider)

    existing = getattr(client, method)(path.format(id=room.pk), body, format="json")
    missing = getattr(client, method)(path.format(id=room.pk + 1000), body, format="json")
    huge = getattr(client, method)(path.format(id=10**30), body, format="json")

    assert error(existing) == (403, "not_member")
    assert existing.json() == missing.json() == huge.json()
    assert Message.objects.filter(room=room).values_list("body", flat=True).get() == "hello 0"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_an_anonymous_client_is_refused(make_user, make_room, api, method, path, body):
    room = make_room()
    response = getattr(api(None), method)(path.format(id=room.pk), body, format="json")
    assert error(response) == (401, "unauthenticated")


# -- end to end: edits and deletions reach every member ---------------------------------------------
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_an_edit_and_a_deletion_over_rest_reach_every_member_and_the_history(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    a, b = [await ChatClient.connect(server.ws, u) for u in (alice, bob)]
    key = await in_thread(token_for, alice)

    def rest(method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Token {key}"}
        return requests.request(
            method, f"{server.http}/api/v1/rooms/{room.pk}{path}", headers=headers, timeout=10, **kwargs
        )

    sent = await asyncio.to_thread(
        rest, "POST", "/messages/", json={"client_msg_id": str(uuid.uuid4()), "body": "tpyo"}
    )
    assert sent.status_code == 202
    await b.wait_for(lambda c: c.new_messages(room.pk))
    seq = b.new_messages(room.pk)[0]["seq"]

    assert (await asyncio.to_thread(rest, "PATCH", f"/messages/{seq}/", json={"body": "typo"})).status_code == 202
    for client in (a, b):
        await client.wait_for(lambda c: c.of_type("message.updated"))
        (updated,) = client.of_type("message.updated")
        assert (updated["room"], updated["seq"], updated["body"]) == (room.pk, seq, "typo")

    assert (await asyncio.to_thread(rest, "DELETE", f"/messages/{seq}/")).status_code == 202
    for client in (a, b):
        await client.wait_for(lambda c: c.of_type("message.deleted"))
        assert client.of_type("message.deleted") == [{"type": "message.deleted", "room": room.pk, "seq": seq}]

    (shown,) = (await asyncio.to_thread(rest, "GET", "/messages/")).json()["messages"]
    assert (shown["seq"], shown["body"], shown["deleted"]) == (seq, "", True)
    for client in (a, b):
        await client.close()
