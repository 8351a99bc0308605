"""Moderators in the Django admin: search and edit rooms and members; deletions go through the services."""

from __future__ import annotations

import pytest

from rooms.models import Participant, Room
from streams.realtime.protocol import OP_LEAVE_ROOM

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator_client(client, django_user_model):
    moderator = django_user_model.objects.create_superuser("moderator", password="pw-moderator-1")
    client.force_login(moderator)
    return client


def test_rooms_are_found_by_name_and_by_member(moderator_client, make_user, make_room):
    alice = make_user("alice-in-rooms")
    make_room(owner=alice, name="book club")
    make_room(name="chess")
    by_name = moderator_client.get("/admin/rooms/room/", {"q": "book"}).content.decode()
    by_member = moderator_client.get("/admin/rooms/room/", {"q": "alice-in-rooms"}).content.decode()
    assert "book club" in by_name and "chess" not in by_name
    assert "book club" in by_member and "chess" not in by_member
    members = moderator_client.get("/admin/rooms/participant/", {"q": "alice-in-rooms"})
    assert members.status_code == 200 and "alice-in-rooms" in members.content.decode()


def test_a_moderator_deleting_a_room_tells_its_members(
    moderator_client, make_user, make_room, post, feed, django_capture_on_commit_callbacks
):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    post(room, member, count=2)
    feed.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = moderator_client.post(f"/admin/rooms/room/{room.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Room.objects.filter(pk=room.pk).exists()
    events = feed.events()
    assert (f"room.{room.pk}", {"type": "room.deleted", "room": room.pk}, None) in events
    assert (f"user.{member.pk}", None, {"op": OP_LEAVE_ROOM, "room": room.pk}) in events


def test_the_bulk_delete_action_goes_through_the_service_too(
    moderator_client, make_room, feed, django_capture_on_commit_callbacks
):
    rooms = [make_room(name=f"spam {i}") for i in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        moderator_client.post(
            "/admin/rooms/room/",
            {"action": "delete_selected", "_selected_action": [r.pk for r in rooms], "post": "yes"},
        )
    assert not Room.objects.filter(pk__in=[r.pk for r in rooms]).exists()
    deleted = {f["room"] for _, f, _ in feed.events() if f and f["type"] == "room.deleted"}
    assert deleted == {r.pk for r in rooms}


def test_a_moderator_removing_a_participant_cuts_their_sockets_off(
    moderator_client, make_user, make_room, feed, django_capture_on_commit_callbacks
):
    owner, troll = make_user(), make_user()
    room = make_room(owner=owner, members=[troll])
    participant = Participant.objects.get(room=room, user=troll)
    with django_capture_on_commit_callbacks(execute=True):
        moderator_client.post(f"/admin/rooms/participant/{participant.pk}/delete/", {"post": "yes"})
    assert not Participant.objects.filter(pk=participant.pk).exists()
    assert (
        f"user.{troll.pk}",
        {"type": "participant.removed", "room": room.pk, "user": troll.pk},
        {"op": OP_LEAVE_ROOM, "room": room.pk},
    ) in feed.events()


def test_the_room_page_edits_the_room_and_its_members_through_the_services(
    moderator_client, make_user, make_room, feed, django_capture_on_commit_callbacks
):
    owner, troll, helper, newcomer = make_user(), make_user(), make_user(), make_user()
    room = make_room(owner=owner, members=[troll, helper], name="before")
    rows = list(Participant.objects.filter(room=room).order_by("joined_at", "id"))
    assert moderator_client.get(f"/admin/rooms/room/{room.pk}/change/").status_code == 200
    form = {
        "name": "after",
        "is_public": "on",
        "participants-TOTAL_FORMS": str(len(rows) + 1),
        "participants-INITIAL_FORMS": str(len(rows)),
        "participants-MIN_NUM_FORMS": "0",
        "participants-MAX_NUM_FORMS": "1000",
    }
    for i, p in enumerate(rows):
        form.update(
            {f"participants-{i}-id": p.pk, f"participants-{i}-room": room.pk, f"participants-{i}-user": p.user_id}
        )
        form[f"participants-{i}-role"] = {helper.pk: "admin"}.get(p.user_id, p.role)
        if p.user_id == troll.pk:
            form[f"participants-{i}-DELETE"] = "on"
    new = len(rows)
    form.update({f"participants-{new}-room": room.pk, f"participants-{new}-user": newcomer.pk})
    form[f"participants-{new}-role"] = "member"

    with django_capture_on_commit_callbacks(execute=True):
        response = moderator_client.post(f"/admin/rooms/room/{room.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    room.refresh_from_db()
    assert (room.name, room.is_public) == ("after", True)
    roles = dict(Participant.objects.filter(room=room).values_list("user_id", "role"))
    assert roles == {owner.pk: "owner", helper.pk: "admin", newcomer.pk: "member"}
    types = [(g, f["type"]) for g, f, _ in feed.events() if f]
    assert (f"user.{troll.pk}", "participant.removed") in types
    assert (f"user.{newcomer.pk}", "participant.added") in types
    assert (f"room.{room.pk}", "participant.updated") in types
    assert (f"room.{room.pk}", "room.updated") in types
