"""The rooms REST API: /api/v1/rooms/..., as a mobile client uses it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from rooms import services
from rooms.models import Participant, Room

pytestmark = pytest.mark.django_db

ADMIN = Participant.Role.ADMIN


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_the_room_list_shows_unread_counts_and_last_message_latest_activity_first(make_user, make_room, post, api):
    me, friend = make_user(), make_user("friend")
    quiet = make_room(owner=me, name="quiet")
    busy = make_room(owner=friend, members=[me], name="busy")
    direct, _ = services.room_open_direct(user=friend, other=me)
    post(direct, friend, count=1)
    post(busy, friend, count=3)
    services.read_position_advance(user_id=me.pk, room_id=busy.pk, seq=1)

    rooms = api(me).get("/api/v1/rooms/").json()

    assert [r["id"] for r in rooms] == [busy.pk, direct.pk, quiet.pk]
    by_id = {r["id"]: r for r in rooms}
    assert {k: by_id[busy.pk][k] for k in ("name", "kind", "role", "member_count", "unread", "last_seq")} == {
        "name": "busy", "kind": "group", "role": "member", "member_count": 2, "unread": 2, "last_seq": 3,
    }  # fmt: skip
    assert by_id[busy.pk]["last_read_seq"] == 1
    assert by_id[busy.pk]["last_message"]["preview"] == "hello 2"
    assert by_id[busy.pk]["last_message"]["seq"] == 3
    other = by_id[direct.pk]["other_user"]
    assert (other["id"], other["username"], other["presence"]["status"]) == (friend.pk, "friend", "offline")
    assert by_id[direct.pk]["unread"] == 1
    assert by_id[quiet.pk]["last_message"] is None and by_id[quiet.pk]["other_user"] is None


def test_the_room_list_of_a_user_in_200_rooms_takes_a_fixed_number_of_queries(
    make_user, api, django_assert_max_num_queries, django_assert_num_queries
):
    me, other = make_user(), make_user()
    client = api(me)
    client.get("/api/v1/rooms/")  # authentication's token lookup and throttle are per request, not per room

    def add_rooms(n: int, start: int) -> None:
        now = timezone.now()
        rooms = Room.objects.bulk_create(
            Room(name=f"room {start + i}", created_by=other, last_seq=i, last_message_at=now - timedelta(minutes=i),
                 last_message_preview=f"last of {start + i}")
            for i in range(n)
        )  # fmt: skip
        Participant.objects.bulk_create(
            [Participant(room=r, user=u, last_read_seq=0) for r in rooms for u in (me, other)]
        )
        services.room_open_direct(user=me, other=make_user())

    add_rooms(1, 0)
    with django_assert_max_num_queries(3) as few:
        assert len(client.get("/api/v1/rooms/").json()) == 2
    add_rooms(199, 1)
    with django_assert_num_queries(len(few.captured_queries)):
        rooms = client.get("/api/v1/rooms/").json()
    assert len(rooms) == 202
    assert sum(r["unread"] for r in rooms) == sum(range(199))
    assert all(r["other_user"]["username"] for r in rooms if r["kind"] == "direct")


def test_creating_rooms(make_user, api):
    me, a, b = make_user(), make_user(), make_user()
    client = api(me)
    group = client.post("/api/v1/rooms/", {"kind": "group", "name": "team", "members": [a.pk, b.pk]}, format="json")
    assert group.status_code == 201
    assert (group.json()["role"], group.json()["member_count"]) == ("owner", 3)
    first = client.post("/api/v1/rooms/", {"kind": "direct", "user": a.pk}, format="json")
    again = api(a).post("/api/v1/rooms/", {"kind": "direct", "user": me.pk}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["other_user"]["id"] == me.pk
    bad = client.post("/api/v1/rooms/", {"kind": "group", "name": " "}, format="json")
    nobody = client.post("/api/v1/rooms/", {"kind": "direct", "user": 10**12}, format="json")
    assert (bad.status_code, error_code(bad), nobody.status_code, error_code(nobody)) == (
        400,
        "invalid",
        400,
        "invalid",
    )


def test_a_direct_room_with_oneself_is_refused_saying_it_is_you(make_user, api):
    me = make_user()

    response = api(me).post("/api/v1/rooms/", {"kind": "direct", "user": me.pk}, format="json")

    assert (response.status_code, error_code(response)) == (400, "invalid")
    assert response.json()["error"]["detail"] == "That's you: a direct room is with someone else."
    assert not Room.objects.filter(kind=Room.Kind.DIRECT).exists()


def test_a_room_shows_the_read_position_and_unread_count(make_user, make_room, post, api):
    owner, me = make_user(), make_user()
    room = make_room(owner=owner, members=[me])
    post(room, owner, count=5)
    read = api(me).post(f"/api/v1/rooms/{room.pk}/read/", {"seq": 3}, format="json")
    assert (read.status_code, read.json()) == (200, {"last_read_seq": 3})
    body = api(me).get(f"/api/v1/rooms/{room.pk}/").json()
    assert (body["last_read_seq"], body["last_seq"], body["unread"]) == (3, 5, 2)


def test_reading_never_moves_back_but_marking_unread_does(make_user, make_room, post, api):
    owner, me = make_user(), make_user()
    room = make_room(owner=owner, members=[me])
    post(room, owner, count=5)
    client = api(me)
    assert client.post(f"/api/v1/rooms/{room.pk}/read/", {"seq": 4}, format="json").json() == {"last_read_seq": 4}
    assert client.post(f"/api/v1/rooms/{room.pk}/read/", {"seq": 2}, format="json").json() == {"last_read_seq": 4}
    unread = client.post(f"/api/v1/rooms/{room.pk}/unread/", {"seq": 2}, format="json")
    assert (unread.status_code, unread.json()) == (200, {"last_read_seq": 1})
    assert client.get(f"/api/v1/rooms/{room.pk}/").json()["unread"] == 4
    negative = client.post(f"/api/v1/rooms/{room.pk}/read/", {"seq": -1}, format="json")
    assert (negative.status_code, error_code(negative)) == (400, "invalid")


def test_members_are_listed_invited_and_removed_by_those_allowed(make_user, make_room, api):
    owner, admin, member, newcomer = make_user("owner"), make_user("admin"), make_user("member"), make_user()
    room = make_room(owner=owner, members=[admin, member])
    Participant.objects.filter(room=room, user=admin).update(role=ADMIN)
    url = f"/api/v1/rooms/{room.pk}/participants/"

    listed = api(member).get(url).json()
    assert [(p["user"]["username"], p["role"]) for p in listed] == [
        ("owner", "owner"), ("admin", "admin"), ("member", "member"),
    ]  # fmt: skip
    denied = api(member).post(url, {"user": newcomer.pk}, format="json")
    assert (denied.status_code, error_code(denied)) == (403, "forbidden")
    invited = api(admin).post(url, {"user": newcomer.pk}, format="json")
    assert (invited.status_code, invited.json()["user"]["id"]) == (201, newcomer.pk)
    twice = api(admin).post(url, {"user": newcomer.pk}, format="json")
    assert (twice.status_code, error_code(twice)) == (409, "conflict")

    cannot = api(member).delete(f"{url}{newcomer.pk}/")
    assert (cannot.status_code, error_code(cannot)) == (403, "forbidden")
    assert api(admin).delete(f"{url}{newcomer.pk}/").status_code == 204
    gone = api(admin).delete(f"{url}{newcomer.pk}/")
    assert (gone.status_code, error_code(gone)) == (404, "not_found")
    assert api(member).delete(f"{url}{member.pk}/").status_code == 204  # removing yourself = leaving
    assert error_code(api(member).get(f"/api/v1/rooms/{room.pk}/")) == "not_member"


def test_the_owner_hands_over_and_changes_roles(make_user, make_room, api):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    url = f"/api/v1/rooms/{room.pk}/participants/{member.pk}/"
    assert api(member).patch(url, {"role": "admin"}, format="json").status_code == 403
    handed = api(owner).patch(url, {"role": "owner"}, format="json")
    assert (handed.status_code, handed.json()["role"]) == (200, "owner")
    assert api(owner).get(f"/api/v1/rooms/{room.pk}/").json()["role"] == "admin"


def test_owner_and_admins_rename_and_the_owner_deletes(make_user, make_room, post, api):
    owner, admin, member = make_user(), make_user(), make_user()
    room = make_room(owner=owner, members=[admin, member])
    Participant.objects.filter(room=room, user=admin).update(role=ADMIN)
    post(room, member, count=2)
    url = f"/api/v1/rooms/{room.pk}/"
    assert api(member).patch(url, {"name": "mine"}, format="json").status_code == 403
    renamed = api(admin).patch(url, {"name": "ours", "is_public": True}, format="json")
    assert (renamed.status_code, renamed.json()["name"], renamed.json()["is_public"]) == (200, "ours", True)
    refused = api(admin).delete(url)
    assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    assert api(owner).delete(url).status_code == 204
    assert not Room.objects.filter(pk=room.pk).exists()
    assert error_code(api(member).get(url)) == "not_member"


def test_owner_and_admins_set_the_topic_members_hear_it_and_a_member_may_not(
    make_user, make_room, api, feed, django_capture_on_commit_callbacks
):
    owner, admin, member = make_user(), make_user(), make_user()
    created = api(owner).post(
        "/api/v1/rooms/", {"kind": "group", "name": "launch", "topic": "  Ship it on Friday  "}, format="json"
    )
    assert (created.status_code, created.json()["topic"]) == (201, "Ship it on Friday")
    room = Room.objects.get(pk=created.json()["id"])
    for user in (admin, member):
        services.participant_invite(actor_id=owner.pk, room_id=room.pk, user_id=user.pk)
    Participant.objects.filter(room=room, user=admin).update(role=ADMIN)
    url = f"/api/v1/rooms/{room.pk}/"
    feed.clear()

    with django_capture_on_commit_callbacks(execute=True):
        changed = api(admin).patch(url, {"topic": "Ship it on Monday"}, format="json")
    body = changed.json()
    assert (changed.status_code, body["topic"], body["name"]) == (200, "Ship it on Monday", "launch")
    assert feed.frames(f"room.{room.pk}") == [
        {"type": "room.updated", "room": room.pk, "name": "launch", "topic": "Ship it on Monday", "is_public": False,
         "owner": owner.pk}
    ]  # fmt: skip
    refused = api(member).patch(url, {"topic": "mine"}, format="json")
    assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    assert [r["topic"] for r in api(member).get("/api/v1/rooms/").json()] == ["Ship it on Monday"]
    renamed = api(owner).patch(url, {"name": "release", "topic": ""}, format="json")
    assert (renamed.json()["name"], renamed.json()["topic"]) == ("release", "")
    direct, _ = services.room_open_direct(user=owner, other=member)
    assert api(owner).get(f"/api/v1/rooms/{direct.pk}/").json()["topic"] == ""


def test_joining_a_public_room(make_user, api):
    owner, visitor = make_user(), make_user()
    public = services.room_create_group(owner=owner, name="lobby", is_public=True)
    joined = api(visitor).post(f"/api/v1/rooms/{public.pk}/join/")
    assert (joined.status_code, joined.json()["role"], joined.json()["member_count"]) == (201, "member", 2)
    assert api(visitor).post(f"/api/v1/rooms/{public.pk}/join/").status_code == 200


def test_readers_of_a_message(make_user, make_room, post, api):
    owner, reader, lagging = make_user("olga"), make_user("rita"), make_user("lars")
    room = make_room(owner=owner, members=[reader, lagging])
    post(room, owner, count=2)
    services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=2)
    body = api(lagging).get(f"/api/v1/rooms/{room.pk}/messages/2/readers/").json()
    assert body["unread_count"] == 1
    assert [(r["id"], r["username"]) for r in body["readers"]] == [(owner.pk, "olga"), (reader.pk, "rita")]
    missing = api(lagging).get(f"/api/v1/rooms/{room.pk}/messages/3/readers/")
    assert (missing.status_code, error_code(missing)) == (404, "not_found")


ENDPOINTS = [
    ("get", "/api/v1/rooms/{id}/", None),
    ("patch", "/api/v1/rooms/{id}/", {"name": "taken"}),
    ("patch", "/api/v1/rooms/{id}/", {"topic": "taken"}),
    ("delete", "/api/v1/rooms/{id}/", None),
    ("get", "/api/v1/rooms/{id}/participants/", None),
    ("post", "/api/v1/rooms/{id}/participants/", {"user": 1}),
    ("delete", "/api/v1/rooms/{id}/participants/1/", None),
    ("patch", "/api/v1/rooms/{id}/participants/1/", {"role": "admin"}),
    ("post", "/api/v1/rooms/{id}/read/", {"seq": 1}),
    ("post", "/api/v1/rooms/{id}/unread/", {"seq": 1}),
    ("post", "/api/v1/rooms/{id}/join/", None),
    ("get", "/api/v1/rooms/{id}/messages/1/readers/", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_non_member_cannot_tell_a_room_they_are_not_in_from_a_missing_one(
    make_user, make_room, post, api, method, path, body
):
    owner, outsider = make_user(), make_user()
    room = make_room(owner=owner, name="private")
    post(room, owner)
    client = api(outsider)
    existing = getattr(client, method)(path.format(id=room.pk), body, format="json")
    missing = getattr(client, method)(path.format(id=room.pk + 1000), body, format="json")
    huge = getattr(client, method)(path.format(id=10**30), body, format="json")
    assert existing.status_code == missing.status_code == 403
    assert (
        existing.json()
        == missing.json()
        == {"error": {"code": "not_member", "detail": existing.json()["error"]["detail"]}}
    )
    assert huge.json() == existing.json()
    room.refresh_from_db()
    assert room.name == "private" and Participant.objects.filter(room=room).count() == 1


@pytest.mark.parametrize(("method", "path", "body"), [("get", "/api/v1/rooms/", None), *ENDPOINTS])
def test_an_anonymous_client_is_refused(make_user, make_room, api, method, path, body):
    room = make_room()
    response = getattr(api(None), method)(path.format(id=room.pk), body, format="json")
    assert (response.status_code, error_code(response)) == (401, "unauthenticated")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("patch", "/api/v1/rooms/{group}/", {"name": ""}, 400, "invalid"),
        ("patch", "/api/v1/rooms/{group}/", {"name": "x" * 101}, 400, "invalid"),
        ("patch", "/api/v1/rooms/{direct}/", {"name": "ours"}, 400, "invalid"),
        ("patch", "/api/v1/rooms/{group}/", {"name": "tab\tbed"}, 400, "invalid"),
        ("patch", "/api/v1/rooms/{group}/", {"topic": "two\nlines"}, 400, "invalid"),
        ("patch", "/api/v1/rooms/{group}/", {"topic": "bell \x07"}, 400, "invalid"),
        ("patch", "/api/v1/rooms/{group}/", {"topic": 5}, 400, "invalid"),
        ("patch", "/api/v1/rooms/{group}/", {"topic": "x" * 251}, 413, "too_large"),
        ("patch", "/api/v1/rooms/{direct}/", {"topic": "ours"}, 400, "invalid"),
        ("post", "/api/v1/rooms/", {"kind": "group", "name": "t", "topic": "x" * 251}, 413, "too_large"),
        ("post", "/api/v1/rooms/", {"kind": "direct", "user": "{member}", "topic": "ours"}, 400, "invalid"),
        ("delete", "/api/v1/rooms/{direct}/", None, 403, "forbidden"),
        ("post", "/api/v1/rooms/{group}/participants/", {}, 400, "invalid"),
        ("post", "/api/v1/rooms/{group}/participants/", {"user": 10**12}, 400, "invalid"),
        ("post", "/api/v1/rooms/{direct}/participants/", {"user": "{stranger}"}, 400, "invalid"),
        ("patch", "/api/v1/rooms/{group}/participants/{member}/", {"role": "king"}, 400, "invalid"),
        ("patch", "/api/v1/rooms/{group}/participants/{stranger}/", {"role": "admin"}, 404, "not_found"),
        ("post", "/api/v1/rooms/{group}/unread/", {"seq": 0}, 400, "invalid"),
        ("post", "/api/v1/rooms/{group}/unread/", {"seq": 3}, 404, "not_found"),
        ("post", "/api/v1/rooms/{group}/read/", {}, 400, "invalid"),
        ("get", "/api/v1/rooms/{group}/messages/0/readers/", None, 404, "not_found"),
    ],
)
def test_refusals_carry_their_code_and_a_detail(make_user, make_room, post, api, method, path, body, status, code):
    owner, member, stranger = make_user(), make_user(), make_user()
    group = make_room(owner=owner, members=[member])
    direct, _ = services.room_open_direct(user=owner, other=member)
    post(group, owner, count=2)
    ids = {"group": group.pk, "direct": direct.pk, "member": member.pk, "stranger": stranger.pk}
    if body is not None:
        body = {k: int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v for k, v in body.items()}

    response = getattr(api(owner), method)(path.format(**ids), body, format="json")

    assert (response.status_code, error_code(response)) == (status, code)
    assert response.json()["error"]["detail"]
