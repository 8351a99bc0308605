"""A room's retention period (its owner, through PATCH /rooms/{id}/, or an admin) and legal hold
(a site admin in the admin only, audited)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from audit.models import AuditEntry
from rooms import services
from rooms.models import Participant, Room
from streams.errors import ChatError

pytestmark = pytest.mark.django_db


def test_the_owner_sets_the_rooms_retention_and_everyone_sees_it(api, make_user, make_room):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    url = f"/api/v1/rooms/{room.pk}/"

    response = api(owner).patch(url, {"retention_days": 30}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["retention_days"] == 30
    assert api(member).get(url).json()["retention_days"] == 30
    # Fields left out stay: a rename keeps the period.
    assert api(owner).patch(url, {"name": "renamed"}, format="json").json()["retention_days"] == 30

    assert api(owner).patch(url, {"retention_days": None}, format="json").json()["retention_days"] is None
    assert Room.objects.get(pk=room.pk).retention_days is None


def test_only_the_owner_and_only_sensible_periods(api, make_user, make_room):
    owner, admin, member = make_user(), make_user(), make_user()
    room = make_room(owner=owner, members=[admin, member])
    Participant.objects.filter(room=room, user=admin).update(role="admin")
    url = f"/api/v1/rooms/{room.pk}/"

    assert api(member).patch(url, {"retention_days": 1}, format="json").status_code == 403
    refused = api(admin).patch(url, {"retention_days": 1}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    for bad in (-1, 36501, "soon", 1.5):
        assert api(owner).patch(url, {"retention_days": bad}, format="json").status_code == 400, bad
    assert Room.objects.get(pk=room.pk).retention_days is None


@pytest.fixture
def superuser_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("siteadmin", password="pw-siteadmin-1")
    client.force_login(admin)
    client.user = admin
    return client


def _room_form(room: Room, **changes) -> dict:
    form = {
        "name": room.name,
        "topic": room.topic,
        "retention_days": "" if room.retention_days is None else room.retention_days,
        "participants-TOTAL_FORMS": "0",
        "participants-INITIAL_FORMS": "0",
        "participants-MIN_NUM_FORMS": "0",
        "participants-MAX_NUM_FORMS": "1000",
    }
    if room.is_public:
        form["is_public"] = "on"
    if room.legal_hold:
        form["legal_hold"] = "on"
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_a_site_admin_sets_and_lifts_a_legal_hold_in_the_admin_audited(superuser_client, make_room):
    room = make_room(name="evidence")
    url = f"/admin/rooms/room/{room.pk}/change/"

    response = superuser_client.post(url, _room_form(room, legal_hold="on", retention_days="7"))
    assert response.status_code == 302, response.content.decode()[:2000]
    room.refresh_from_db()
    assert room.legal_hold and room.legal_hold_by == "siteadmin" and room.legal_hold_at
    assert room.retention_days == 7
    entry = AuditEntry.objects.get(action="room.legal_hold_set")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (superuser_client.user.pk, "room", str(room.pk))
    assert AuditEntry.objects.filter(action="room.retention_set").count() == 1

    response = superuser_client.post(url, _room_form(room, legal_hold=None))
    assert response.status_code == 302
    room.refresh_from_db()
    assert not room.legal_hold and room.legal_hold_by == "" and room.legal_hold_at is None
    assert AuditEntry.objects.filter(action="room.legal_hold_lifted").count() == 1
    assert AuditEntry.objects.filter(action="room.legal_hold_set").count() == 1  # the unchanged hold: no entry


def test_a_staff_moderator_cannot_set_a_legal_hold(client, django_user_model, make_room):
    staff = django_user_model.objects.create_user("mod", password="pw-mod-12345", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="rooms"))
    client.force_login(staff)
    room = make_room(name="r")

    page = client.get(f"/admin/rooms/room/{room.pk}/change/").content.decode()
    assert 'name="legal_hold"' not in page  # shown, not editable
    assert 'name="retention_days"' in page
    response = client.post(f"/admin/rooms/room/{room.pk}/change/", _room_form(room, legal_hold="on"))
    assert response.status_code == 302
    assert not Room.objects.get(pk=room.pk).legal_hold
    with pytest.raises(ChatError):
        services.room_legal_hold_set(room=room, hold=True, actor=staff)
    assert not AuditEntry.objects.filter(action__startswith="room.legal_hold").exists()
