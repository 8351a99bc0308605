"""The admin: exports listed read-only, a room's history exported and downloaded by permitted staff, audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from audit.models import AuditEntry
from exports.models import DataExport
from tests.exports.conftest import unzip

pytestmark = pytest.mark.django_db

EXPORT_ROOM = "/admin/exports/dataexport/export-room/"


@pytest.fixture
def staff(make_user):
    """A staff member who may see exports and (``permitted``) export rooms."""

    def make(*, permitted: bool):
        user = make_user()
        user.is_staff = True
        user.save()
        codenames = ["view_dataexport"] + (["export_room"] if permitted else [])
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="exports", codename__in=codenames))
        user.user_permissions.add(Permission.objects.get(content_type__app_label="rooms", codename="view_room"))
        return user

    return make


def test_a_permitted_staff_member_exports_a_room_and_downloads_it(
    client, staff, make_user, make_room, add_messages, celery_eager, django_capture_on_commit_callbacks
):
    moderator = staff(permitted=True)
    room = make_room(owner=make_user("owner"), name="incident")
    add_messages(room, room.participants.get().user, 2, body="evidence")
    client.force_login(moderator)
    assert f'?room={room.pk}">Export history' in client.get(f"/admin/rooms/room/{room.pk}/change/").content.decode()
    form = client.get(f"{EXPORT_ROOM}?room={room.pk}")
    assert form.status_code == 200 and f'value="{room.pk}"' in form.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(EXPORT_ROOM, {"room": room.pk})

    assert answer.status_code == 302
    export = DataExport.objects.get(kind="room")
    assert export.status == "done" and export.room_id == room.pk and export.requester_name == moderator.username
    entry = AuditEntry.objects.get(action="room.exported_by_admin")
    assert entry.actor == moderator and entry.target_id == str(room.pk)
    listing = client.get("/admin/exports/dataexport/").content.decode()
    assert "Export a room" in listing and f"/admin/exports/dataexport/{export.pk}/download/" in listing

    download = client.get(f"/admin/exports/dataexport/{export.pk}/download/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    files = unzip(b"".join(download.streaming_content))
    assert [m["body"] for m in files["messages.json"]] == ["evidence 1", "evidence 2"]
    assert AuditEntry.objects.filter(action="room.export_downloaded_by_admin", actor=moderator).count() == 1


def test_without_the_permission_staff_can_neither_export_nor_download(
    client, staff, make_user, make_room, celery_eager, django_capture_on_commit_callbacks
):
    room = make_room(name="private")
    permitted, refused = staff(permitted=True), staff(permitted=False)
    client.force_login(permitted)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(EXPORT_ROOM, {"room": room.pk})
    export = DataExport.objects.get()

    client.force_login(refused)
    assert client.get(EXPORT_ROOM).status_code == 403
    assert client.post(EXPORT_ROOM, {"room": room.pk}).status_code == 403
    assert client.get(f"/admin/exports/dataexport/{export.pk}/download/").status_code == 403
    listing = client.get("/admin/exports/dataexport/")
    assert listing.status_code == 200 and "Export a room" not in listing.content.decode()
    assert "Export history" not in client.get(f"/admin/rooms/room/{room.pk}/change/").content.decode()
    assert DataExport.objects.count() == 1
    assert AuditEntry.objects.filter(action="room.exported_by_admin").count() == 1
    assert not AuditEntry.objects.filter(action="room.export_downloaded_by_admin").exists()


def test_a_users_own_export_is_not_downloadable_in_the_admin(client, make_user):
    from exports import services

    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    alice = make_user("alice")
    export, _ = services.export_request_user(user=alice)
    export = services.export_build(export_id=export.pk)
    client.force_login(admin)

    assert client.get(f"/admin/exports/dataexport/{export.pk}/download/").status_code == 404
    page = client.get(f"/admin/exports/dataexport/{export.pk}/change/")
    assert page.status_code == 200 and "alice" in page.content.decode()


def test_an_unknown_room_is_refused_in_the_form(client, make_user):
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    answer = client.post(EXPORT_ROOM, {"room": 999999})
    assert answer.status_code == 200 and "No room has this id." in answer.content.decode()
    assert not DataExport.objects.exists()
