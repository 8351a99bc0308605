"""Rooms in the admin: direct rooms named by their pair, and moderators' sanctions imposed and lifted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEntry
from rooms.models import RoomSanction
from rooms.services import room_open_direct

pytestmark = pytest.mark.django_db


def test_direct_rooms_show_their_pair_without_a_query_per_room(admin_client, make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room_open_direct(user=alice, other=bob)
    room_open_direct(user=carol, other=alice)
    with CaptureQueriesContext(connection) as few:
        page = admin_client.get("/admin/rooms/room/").content.decode()
    assert "alice ↔ bob" in page and "alice ↔ carol" in page
    for _ in range(5):
        room_open_direct(user=make_user(), other=bob)
    with CaptureQueriesContext(connection) as more:
        admin_client.get("/admin/rooms/room/")
    assert len(more) == len(few)


def test_a_deleted_account_shows_as_deleted_user(admin_client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    room, _ = room_open_direct(user=alice, other=bob)
    type(bob).objects.filter(pk=bob.pk).delete()
    assert "alice ↔ deleted user" in admin_client.get("/admin/rooms/room/").content.decode()
    assert "alice ↔ deleted user" in admin_client.get(f"/admin/rooms/room/{room.pk}/change/").content.decode()


def test_a_moderator_mutes_from_the_admin_and_lifts_it(admin_client, make_user, make_room):
    bob = make_user()
    room = make_room(members=[bob])
    until = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    response = admin_client.post("/admin/rooms/roomsanction/add/", {
        "room": room.pk, "user": bob.pk, "kind": "mute", "until_0": until.strftime("%Y-%m-%d"),
        "until_1": until.strftime("%H:%M:%S"), "reason": "flooding",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    sanction = RoomSanction.objects.get(user=bob)
    assert sanction.is_active() and sanction.reason == "flooding"
    response = admin_client.post(
        "/admin/rooms/roomsanction/", {"action": "lift", "_selected_action": [sanction.pk], "index": 0}
    )
    assert response.status_code == 302
    sanction.refresh_from_db()
    assert not sanction.is_active()
    assert {e.action for e in AuditEntry.objects.all()} >= {"room.user_muted", "room.user_unmuted"}
