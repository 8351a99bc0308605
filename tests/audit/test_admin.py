"""The audit log in the admin: listed, filtered and searched; never added, changed or deleted."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from audit.models import AuditEntry
from audit.services import audit_record

pytestmark = pytest.mark.django_db

LIST = "/admin/audit/auditentry/"


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-root-123")


@pytest.fixture
def root(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def entries(make_user, superuser):
    mod, alice = make_user("mod"), make_user("alice")
    return {
        "deleted": audit_record(
            action="message.deleted_by_moderator", actor=mod, target_type="message", target_id=17,
            before={"body": "spam spam", "seq": 3}, after={"deleted": True}, detail="room 5, message #3",
        ),
        "renamed": audit_record(
            action="room.updated_by_moderator", actor=superuser, target_type="room", target_id=5,
            before={"name": "old <b>name</b>", "topic": "same"}, after={"name": "new name", "topic": "same"},
        ),
        "throttled": audit_record(
            action="auth.login_throttled", target_type="username", target_id="alice", ip="10.0.0.9",
            detail="password attempt (admin) refused by the login throttle",
        ),
        "revoked": audit_record(action="auth.token_revoked", actor=alice, target_type="user", target_id=alice.pk),
    }  # fmt: skip


def listed(client, **params) -> set[int]:
    response = client.get(LIST, params)
    assert response.status_code == 200
    return {entry.pk for entry in response.context["cl"].result_list}


def test_the_log_lists_newest_first(root, entries):
    response = root.get(LIST)
    assert response.status_code == 200
    assert [e.pk for e in response.context["cl"].result_list] == sorted((e.pk for e in entries.values()), reverse=True)
    page = response.content.decode()
    assert "system" in page and "message.deleted_by_moderator" in page and "10.0.0.9" in page


def test_filters_by_action_actor_target_type_and_date(root, entries, superuser):
    assert listed(root, action="auth.login_throttled") == {entries["throttled"].pk}
    assert listed(root, actor__id__exact=superuser.pk) == {entries["renamed"].pk}
    assert listed(root, target_type="user") == {entries["revoked"].pk}
    today = entries["deleted"].at
    assert listed(root, at__year=today.year, at__month=today.month, at__day=today.day) == {
        e.pk for e in entries.values()
    }
    yesterday = today - dt.timedelta(days=1)
    assert listed(root, at__year=yesterday.year, at__month=yesterday.month, at__day=yesterday.day) == set()
    # The actor filter offers only accounts that acted, not every user.
    choices = root.get(LIST).content.decode()
    assert "?actor__id__exact=" in choices


def test_search_by_username_target_id_and_detail(root, entries):
    assert listed(root, q="mod") == {entries["deleted"].pk}
    assert listed(root, q="17") == {entries["deleted"].pk}
    assert listed(root, q="alice") == {entries["throttled"].pk, entries["revoked"].pk}
    assert listed(root, q="refused by the login") == {entries["throttled"].pk}


def test_the_entry_page_shows_before_and_after_field_by_field(root, entries):
    response = root.get(f"{LIST}{entries['renamed'].pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    # One row per field, the changed one marked, the values escaped.
    assert (
        "<th>name</th><td>&quot;old &lt;b&gt;name&lt;/b&gt;&quot;</td><td>&quot;new name&quot;</td><td>changed</td>"
        in page
    )
    assert "<th>topic</th><td>&quot;same&quot;</td><td>&quot;same&quot;</td><td></td>" in page
    assert "<pre>{\n  &quot;name&quot;: &quot;new name&quot;," in page
    assert 'name="_save"' not in page  # read-only: no save button
    assert "<b>name</b>" not in page


def test_nobody_adds_changes_or_deletes_an_entry_not_even_a_superuser(root, entries):
    entry = entries["deleted"]
    assert root.get(f"{LIST}add/").status_code == 403
    assert root.post(f"{LIST}add/", {"action": "auth.token_revoked"}).status_code == 403
    assert root.post(f"{LIST}{entry.pk}/change/", {"detail": "nothing happened"}).status_code == 403
    assert root.get(f"{LIST}{entry.pk}/delete/").status_code == 403
    assert root.post(f"{LIST}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = root.post(LIST, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert bulk.status_code in (200, 302)
    assert "delete_selected" not in root.get(LIST).content.decode()
    assert AuditEntry.objects.count() == len(entries)
    assert AuditEntry.objects.get(pk=entry.pk).detail == "room 5, message #3"


def test_staff_see_the_log_only_with_the_view_permission(make_user, entries):
    staff = make_user("staff-member")
    staff.is_staff = True
    staff.save()
    client = Client()
    client.force_login(staff)
    assert client.get(LIST).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_auditentry"))
    assert client.get(LIST).status_code == 200
    assert client.get(f"{LIST}{entries['deleted'].pk}/change/").status_code == 200
    # Even with every audit permission Django knows of, it stays read-only.
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="audit"))
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.post(f"{LIST}{entries['deleted'].pk}/delete/", {"post": "yes"}).status_code == 403
