"""Moderators delete accounts from the admin, through the deletion service, and follow purges."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from accounts.models import AccountDeletion
from chat_messages.models import Message

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"
DELETIONS = "/admin/accounts/accountdeletion/"


def run_action(client, action: str, users):
    return client.post(USERS, {"action": action, "_selected_action": [u.pk for u in users]}, follow=True)


def test_deleting_an_account_keeps_its_messages_as_deleted_user(
    admin_client, admin_user, make_user, make_room, add_messages
):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    add_messages(room, alice, 2, body="hello")

    response = run_action(admin_client, "delete_keep_messages", [alice])

    assert "Deleted 1 account(s)." in response.content.decode()
    assert not get_user_model().objects.filter(pk=alice.pk).exists()
    assert list(Message.objects.filter(room=room).values_list("sender", "body")) == [
        (None, "hello 1"),
        (None, "hello 2"),
    ]
    deletion = AccountDeletion.objects.get(user_id=alice.pk)
    assert (deletion.username, deletion.requested_by, deletion.erase_messages) == ("alice", admin_user.username, False)


def test_deleting_and_erasing_from_the_admin(admin_client, make_user, make_room, add_messages):
    alice = make_user("alice")
    room = make_room(owner=alice, members=[make_user()])
    add_messages(room, alice, 2, body="hello")

    run_action(admin_client, "delete_erase_messages", [alice])

    assert list(Message.objects.filter(room=room).values_list("sender", "body")) == [(None, ""), (None, "")]


def test_a_large_account_is_queued_and_its_progress_is_listed(
    settings, admin_client, make_user, make_room, add_messages
):
    settings.ACCOUNT_PURGE_INLINE_MAX = 2
    alice = make_user("alice")
    add_messages(make_room(owner=alice, members=[make_user()]), alice, 3)

    response = run_action(admin_client, "delete_keep_messages", [alice])
    listing = admin_client.get(DELETIONS).content.decode()

    assert "1 large account(s) deactivated" in response.content.decode()
    assert not get_user_model().objects.get(pk=alice.pk).is_active
    assert "alice" in listing and "Pending" in listing and "0% (0/3 messages)" in listing
    detail = admin_client.get(f"{DELETIONS}{AccountDeletion.objects.get(user_id=alice.pk).pk}/change/")
    assert detail.status_code == 200 and "0% (0/3 messages)" in detail.content.decode()


def test_the_stock_delete_is_gone_so_nothing_bypasses_the_service(admin_client, make_user):
    alice = make_user("alice")

    changelist = admin_client.get(USERS).content.decode()
    delete_page = admin_client.get(f"{USERS}{alice.pk}/delete/")

    assert "delete_selected" not in changelist
    assert "delete_keep_messages" in changelist and "delete_erase_messages" in changelist
    assert delete_page.status_code == 403


def test_a_moderator_cannot_delete_their_own_account_here(admin_client, admin_user):
    response = run_action(admin_client, "delete_keep_messages", [admin_user])

    assert "You cannot delete your own account from here." in response.content.decode()
    assert get_user_model().objects.filter(pk=admin_user.pk).exists()


def test_staff_without_the_delete_permission_get_no_deletion_actions(client, make_user):
    staff = make_user("staff")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(staff)

    changelist = client.get(USERS)

    assert changelist.status_code == 200
    assert "delete_keep_messages" not in changelist.content.decode()


def test_a_failed_purge_can_be_run_again(settings, admin_client, celery_eager, make_user, make_room, add_messages):
    settings.ACCOUNT_PURGE_INLINE_MAX = 0
    alice = make_user("alice")
    add_messages(make_room(owner=alice, members=[make_user()]), alice, 2)
    run_action(admin_client, "delete_keep_messages", [alice])  # queued: on-commit never runs in this test
    deletion = AccountDeletion.objects.get(user_id=alice.pk)
    AccountDeletion.objects.filter(pk=deletion.pk).update(status=AccountDeletion.Status.FAILED, error="broker down")

    admin_client.post(DELETIONS, {"action": "run_again", "_selected_action": [deletion.pk]})

    deletion.refresh_from_db()
    assert (deletion.status, deletion.progress) == ("done", 100)
    assert not get_user_model().objects.filter(pk=alice.pk).exists()
