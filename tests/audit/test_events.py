"""Each audited action through its real path: the admin's pages and actions, the log-in throttle
on its three doors, the token endpoint, and account deletion by its owner or by an admin."""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import AccountDeletion, Device
from audit.models import AuditEntry
from chat_messages.models import Message
from chat_messages.services import messages_store, send_envelope
from drawer.models import SavedMessage
from drawer.services import drawer_entry_save
from rooms.models import Participant, Room

pytestmark = pytest.mark.django_db

PASSWORD = "tulip-orbit-73"
USERS = "/admin/accounts/user/"


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


def only(action: str) -> AuditEntry:
    found = entries(action)
    assert len(found) == 1, [str(e) for e in AuditEntry.objects.all()]
    return found[0]


def as_text(entry: AuditEntry) -> str:
    """Everything the entry holds, to check that a secret is nowhere in it."""
    return json.dumps(
        [entry.actor_username, entry.target_type, entry.target_id, entry.before, entry.after, entry.detail]
    )


def store(room, sender, body: str = "hello") -> Message:
    messages_store(sends=[send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=body)])
    return Message.objects.filter(room=room).order_by("-seq").first()


@pytest.fixture
def moderator(django_user_model):
    return django_user_model.objects.create_superuser("moderator", password="pw-moderator-1")


@pytest.fixture
def admin(moderator) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


# -- moderators' actions --------------------------------------------------------------------------
@pytest.mark.kafka
def test_deleting_a_message_for_everyone_records_its_body_and_sender(admin, moderator, make_user, make_room):
    alice = make_user("alice")
    message = store(make_room(owner=alice), alice, body="buy cheap watches")

    response = admin.post(
        "/admin/chat_messages/message/", {"action": "delete_for_everyone", "_selected_action": [message.pk]}
    )

    assert response.status_code == 302
    entry = only("message.deleted_by_moderator")
    assert (entry.actor, entry.target_type, entry.target_id) == (moderator, "message", str(message.pk))
    assert entry.before == {
        "room": message.room_id, "seq": message.seq, "sender": alice.pk, "sender_username": "alice",
        "body": "buy cheap watches", "attachments": None,
    }  # fmt: skip
    assert entry.after == {"deleted": True}


def test_a_deletion_the_broker_refused_is_not_recorded(admin, make_user, make_room, settings):
    from streams.pipeline import kafka

    alice = make_user()
    message = store(make_room(owner=alice), alice)
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    settings.KAFKA_PRODUCE_TIMEOUT_S = 0.5
    kafka.reset_producer()
    try:
        response = admin.post(
            "/admin/chat_messages/message/",
            {"action": "delete_for_everyone", "_selected_action": [message.pk]},
            follow=True,
        )
    finally:
        kafka.reset_producer()
    assert "Stopped after 0" in response.content.decode()
    assert entries("message.deleted_by_moderator") == []


def test_the_room_page_records_the_rename_and_each_membership_change(admin, moderator, make_user, make_room):
    owner, troll, helper, newcomer = make_user(), make_user("troll"), make_user("helper"), make_user("newcomer")
    room = make_room(owner=owner, members=[troll, helper], name="before")
    rows = list(Participant.objects.filter(room=room).order_by("joined_at", "id"))
    form = {
        "name": "after", "topic": "", "is_public": "on",
        "participants-TOTAL_FORMS": str(len(rows) + 1), "participants-INITIAL_FORMS": str(len(rows)),
        "participants-MIN_NUM_FORMS": "0", "participants-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
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

    response = admin.post(f"/admin/rooms/room/{room.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    renamed = only("room.updated_by_moderator")
    assert (renamed.actor, renamed.target_type, renamed.target_id) == (moderator, "room", str(room.pk))
    assert (renamed.before, renamed.after) == (
        {"name": "before", "is_public": False},
        {"name": "after", "is_public": True},
    )
    removed = only("room.member_removed")
    assert removed.before == {"user": troll.pk, "username": "troll", "role": "member"} and removed.after is None
    assert "troll" in removed.detail and removed.target_id == str(room.pk)
    role = only("room.member_role_changed_by_moderator")
    assert (role.before, role.after) == ({"user": helper.pk, "role": "member"}, {"user": helper.pk, "role": "admin"})
    added = only("room.member_added_by_moderator")
    assert added.after == {"user": newcomer.pk, "username": "newcomer", "role": "member"}
    assert {e.actor_id for e in AuditEntry.objects.all()} == {moderator.pk}


def test_saving_the_room_page_unchanged_records_nothing(admin, make_room):
    room = make_room(name="quiet")
    form = {"name": "quiet", "topic": "", "participants-TOTAL_FORMS": "0", "participants-INITIAL_FORMS": "0"}
    form.update({"participants-MIN_NUM_FORMS": "0", "participants-MAX_NUM_FORMS": "1000"})
    assert admin.post(f"/admin/rooms/room/{room.pk}/change/", form).status_code == 302
    assert not AuditEntry.objects.exists()


def test_deleting_a_room_and_removing_a_participant_in_the_admin(admin, moderator, make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    doomed = make_room(owner=alice, members=[bob], name="doomed")
    store(doomed, alice)
    kept = make_room(owner=alice, members=[bob], name="kept")

    assert admin.post(f"/admin/rooms/room/{doomed.pk}/delete/", {"post": "yes"}).status_code == 302
    membership = Participant.objects.get(room=kept, user=bob)
    assert admin.post(f"/admin/rooms/participant/{membership.pk}/delete/", {"post": "yes"}).status_code == 302

    deleted = only("room.deleted_by_moderator")
    assert not Room.objects.filter(pk=doomed.pk).exists()
    assert (deleted.actor, deleted.target_id) == (moderator, str(doomed.pk))
    assert deleted.before == {
        "kind": "group", "name": "doomed", "topic": "", "is_public": False, "members": 2, "last_seq": 1,
    }  # fmt: skip
    removed = only("room.member_removed")
    assert (removed.target_id, removed.before["username"]) == (str(kept.pk), "bob")


def test_removing_a_drawer_entry_in_the_admin(admin, moderator, make_user, make_room):
    alice = make_user("alice")
    room = make_room(owner=alice, name="notes")
    entry, _ = drawer_entry_save(user=alice, message_id=store(room, alice, body="private thought").pk)

    assert admin.post(f"/admin/drawer/savedmessage/{entry.pk}/delete/", {"post": "yes"}).status_code == 302

    assert not SavedMessage.objects.filter(pk=entry.pk).exists()
    recorded = only("drawer.entry_removed_by_moderator")
    assert (recorded.actor, recorded.target_type, recorded.target_id) == (moderator, "drawer_entry", str(entry.pk))
    assert recorded.before["username"] == "alice" and recorded.before["room_name"] == "notes"


# -- accounts in the admin --------------------------------------------------------------------------
def change_form(user, **changes) -> dict:
    """The admin change form of ``user`` as a browser submits it (a None value: the box unticked),
    with the hidden copy of date_joined's initial value the page holds (its default is callable)."""
    day, time = user.date_joined.strftime("%Y-%m-%d"), user.date_joined.strftime("%H:%M:%S")
    data = {
        "username": user.username, "first_name": user.first_name, "last_name": user.last_name, "email": user.email,
        "is_active": "on", "date_joined_0": day, "date_joined_1": time,
        "initial-date_joined_0": day, "initial-date_joined_1": time,
    }  # fmt: skip
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_deactivate_action(admin, moderator, make_user):
    alice = make_user("alice")
    admin.post(USERS, {"action": "deactivate", "_selected_action": [alice.pk]})
    entry = only("account.deactivated")
    assert (entry.actor, entry.target_type, entry.target_id) == (moderator, "user", str(alice.pk))
    assert (entry.before, entry.after) == ({"is_active": True}, {"is_active": False})


def test_the_user_page_records_the_fields_it_changed(admin, moderator, make_user):
    alice = make_user("alice")
    moderators = Group.objects.create(name="moderators")

    response = admin.post(
        f"{USERS}{alice.pk}/change/", change_form(alice, is_staff="on", groups=[moderators.pk], is_active=None)
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    changed = only("user.changed_by_admin")
    assert (changed.actor, changed.target_type, changed.target_id) == (moderator, "user", str(alice.pk))
    assert changed.before == {"is_staff": False, "groups": [], "is_active": True}
    assert changed.after == {"is_staff": True, "groups": ["moderators"], "is_active": False}
    # Unticking "Active" also signed them out everywhere, recorded as the account service does it.
    assert only("account.deactivated").before == {"is_active": True}


def test_adding_a_user_and_setting_a_password_keep_the_password_out_of_the_log(admin, moderator, make_user):
    response = admin.post(
        f"{USERS}add/",
        {"username": "carol", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    carol = get_user_model().objects.get(username="carol")
    added = only("user.added_by_admin")
    assert (added.actor, added.target_id, added.after) == (moderator, str(carol.pk), {"username": "carol"})

    new_password = "another-tulip-84"
    mismatch = {"password1": new_password, "password2": "something-else-1", "usable_password": "true"}
    assert admin.post(f"{USERS}{carol.pk}/password/", mismatch).status_code == 200
    assert entries("user.password_set_by_admin") == []
    form = {"password1": new_password, "password2": new_password, "usable_password": "true"}
    assert admin.post(f"{USERS}{carol.pk}/password/", form).status_code == 302
    carol.refresh_from_db()
    assert carol.check_password(new_password)
    entry = only("user.password_set_by_admin")
    assert (entry.actor, entry.target_id, entry.after) == (moderator, str(carol.pk), {"usable_password": True})
    for entry in AuditEntry.objects.all():
        assert PASSWORD not in as_text(entry) and new_password not in as_text(entry)
        assert carol.password not in as_text(entry)


def test_permission_groups_devices_and_tokens_edited_in_the_admin(admin, moderator, make_user):
    alice = make_user("alice")
    can_change = Permission.objects.get(codename="change_user")
    assert admin.post("/admin/auth/group/add/", {"name": "mods", "permissions": [can_change.pk]}).status_code == 302
    group = only("group.added_by_admin")
    assert group.after["name"] == "mods" and len(group.after["permissions"]) == 1
    assert "Can change user" in group.after["permissions"][0]

    device = Device.objects.create(user=alice, platform="fcm", token="push-secret-token", name="phone")
    assert admin.post(f"/admin/accounts/device/{device.pk}/delete/", {"post": "yes"}).status_code == 302
    removed = only("device.deleted_by_admin")
    assert (removed.actor, removed.target_id, removed.before["name"]) == (moderator, str(device.pk), "phone")
    assert "push-secret-token" not in as_text(removed)

    assert admin.post("/admin/authtoken/tokenproxy/add/", {"user": alice.pk}).status_code == 302
    key = Token.objects.get(user=alice).key
    issued = only("token.added_by_admin")
    assert (issued.actor, issued.target_type, issued.target_id) == (moderator, "user", str(alice.pk))
    assert admin.post(f"/admin/authtoken/tokenproxy/{alice.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Token.objects.filter(user=alice).exists()
    revoked = only("auth.token_revoked")
    assert (revoked.actor, revoked.target_type, revoked.target_id) == (moderator, "user", str(alice.pk))
    for entry in (issued, revoked):
        assert key not in as_text(entry)


def test_an_admin_deleting_an_account_is_recorded_and_outlives_it(admin, moderator, make_user, make_room):
    alice = make_user("alice")
    store(make_room(owner=alice), alice)

    admin.post(USERS, {"action": "delete_erase_messages", "_selected_action": [alice.pk]})

    assert not get_user_model().objects.filter(pk=alice.pk).exists()
    entry = only("account.deleted")
    assert (entry.actor, entry.actor_username, entry.target_id) == (moderator, "moderator", str(alice.pk))
    assert entry.before["username"] == "alice"
    assert entry.after["erase_messages"] is True and entry.after["purged"] == "now"
    assert "deleted by moderator" in entry.detail


def test_a_large_account_deleted_in_the_background_and_its_purge_run_again(
    settings, admin, moderator, make_user, make_room, celery_eager
):
    settings.ACCOUNT_PURGE_INLINE_MAX = 0
    alice = make_user("alice")
    store(make_room(owner=alice, members=[make_user()]), alice)

    admin.post(USERS, {"action": "delete_keep_messages", "_selected_action": [alice.pk]})  # queued, not run

    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["account.deactivated", "account.deleted"]
    assert only("account.deleted").after["purged"] == "in the background"
    deletion = AccountDeletion.objects.get(user_id=alice.pk)
    AccountDeletion.objects.filter(pk=deletion.pk).update(status=AccountDeletion.Status.FAILED, error="broker down")

    admin.post("/admin/accounts/accountdeletion/", {"action": "run_again", "_selected_action": [deletion.pk]})

    rerun = only("account.purge_rerun_by_admin")
    assert (rerun.actor, rerun.target_id) == (moderator, str(alice.pk))
    assert rerun.before == {"deletion": deletion.pk, "status": "failed", "error": "broker down"}
    assert not get_user_model().objects.filter(pk=alice.pk).exists()


# -- the user's own account -------------------------------------------------------------------------
def test_a_user_deleting_their_account_over_the_api_is_the_actor_and_stays_named(make_user, api):
    alice = make_user("alice")
    assert api(alice).delete("/api/v1/accounts/me/", {"erase_messages": False}, format="json").status_code == 204

    entry = only("account.deleted")
    assert not get_user_model().objects.filter(pk=alice.pk).exists()
    # The account is gone, the link with it; who did it is still on the entry.
    assert (entry.actor_id, entry.actor_username, entry.target_id) == (None, "alice", str(alice.pk))
    assert "deleted by themself" in entry.detail and entry.after["erase_messages"] is False


def test_a_user_deleting_their_account_on_the_page(make_user):
    alice = make_user("alice", password=PASSWORD)
    browser = Client()
    browser.force_login(alice)
    response = browser.post("/account/", {"password": PASSWORD, "erase_messages": "on"})
    assert response.status_code == 302
    entry = only("account.deleted")
    assert (entry.actor_id, entry.actor_username, entry.after["erase_messages"]) == (None, "alice", True)


def test_revoking_ones_token_over_the_api(make_user, api):
    alice = make_user("alice")
    client = api(alice)
    key = Token.objects.get(user=alice).key
    assert client.delete("/api/v1/auth/token/").status_code == 204
    entry = only("auth.token_revoked")
    assert (entry.actor, entry.target_type, entry.target_id) == (alice, "user", str(alice.pk))
    assert key not in as_text(entry)


# -- the log-in throttle ----------------------------------------------------------------------------
@pytest.fixture
def login_limit(settings):
    """The default `login` rate (10/min) on, from a zero count."""
    settings.RATE_LIMITS_ENABLED = True
    cache.clear()
    yield
    cache.clear()


def attempt(door: str, client, username: str = "alice", **extra):
    if door == "token":
        return client.post("/api/v1/auth/token/", {"username": username, "password": "guess"}, format="json", **extra)
    path = "/admin/login/?next=/admin/" if door == "admin" else "/login/"
    return client.post(path, {"username": username, "password": "guess"}, **extra)


@pytest.mark.parametrize(
    ("door", "via"), [("page", "log-in page"), ("admin", "admin"), ("token", "API token")]
)  # fmt: skip
def test_a_password_attempt_over_the_throttle_is_recorded_once_a_minute_per_address(login_limit, make_user, door, via):
    make_user("alice")
    client = APIClient() if door == "token" else Client()
    for _ in range(10):
        assert attempt(door, client).status_code in (200, 400)
    assert not AuditEntry.objects.exists()  # wrong passwords under the limit are the throttle's business

    assert attempt(door, client).status_code == 429
    entry = only("auth.login_throttled")
    assert (entry.actor_id, entry.target_type, entry.target_id, entry.ip) == (None, "username", "alice", "127.0.0.1")
    assert entry.after == {"via": via} and via in entry.detail

    # A script hammering on writes no more rows this minute.
    for _ in range(5):
        assert attempt(door, client, username="bob").status_code == 429
    assert len(entries("auth.login_throttled")) == 1


def test_each_throttled_address_gets_its_entry(login_limit, make_user):
    client = Client()
    for address in ("10.0.0.1", "10.0.0.2"):
        codes = [attempt("page", client, REMOTE_ADDR=address).status_code for _ in range(12)]
        assert codes[-1] == 429
    assert [e.ip for e in entries("auth.login_throttled")] == ["10.0.0.1", "10.0.0.2"]


def test_a_throttled_token_request_with_a_broken_body_is_recorded_without_a_name(login_limit):
    client = APIClient()
    for _ in range(10):
        attempt("token", client)
    response = client.post("/api/v1/auth/token/", "{not json", content_type="application/json")
    assert response.status_code == 429
    entry = only("auth.login_throttled")
    assert (entry.target_type, entry.target_id, entry.after) == ("", "", {"via": "API token"})


def test_revoking_a_token_over_the_throttle_is_not_a_log_in_attempt(login_limit, make_user, api):
    alice = make_user("alice")
    client = api(alice)
    key = Token.objects.get(user=alice).key
    for _ in range(10):  # the same token again each time, so that the request gets past authentication
        assert client.delete("/api/v1/auth/token/").status_code == 204
        Token.objects.create(user=alice, key=key)
    assert client.delete("/api/v1/auth/token/").status_code == 429
    assert entries("auth.login_throttled") == []
    assert len(entries("auth.token_revoked")) == 10
