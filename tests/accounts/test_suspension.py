"""Suspending an account (accounts.services.account_suspend): every entry refuses it until it ends."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts import services
from audit.models import AuditEntry
from streams.errors import ChatError
from streams.realtime.hub import user_group
from streams.realtime.protocol import CLOSE_SUSPENDED, OP_CLOSE
from tests.accounts.conftest import csrf_from

pytestmark = pytest.mark.django_db

PASSWORD = "tulip-orbit-73"


def log_in(client: Client, username: str):
    token = csrf_from(client.get("/login/"))
    return client.post("/login/", {"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD})


def test_suspending_signs_out_everywhere_and_closes_sockets_with_4403(
    make_user, api, feed, django_capture_on_commit_callbacks
):
    mod, alice = make_user("mod"), make_user("alice", password=PASSWORD)
    client = Client()
    assert log_in(client, "alice").status_code == 302
    rest = api(alice)
    assert rest.get("/api/v1/accounts/me/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        services.account_suspend(user=alice, until=timezone.now() + timedelta(days=1), reason="spam", actor=mod)
    assert (None, {"op": OP_CLOSE, "code": CLOSE_SUSPENDED}) in [
        (f, c) for g, f, c in feed.events() if g == user_group(alice.pk)
    ]
    assert not Token.objects.filter(user=alice).exists()
    assert not Session.objects.filter(session_key=client.cookies["sessionid"].value).exists()
    assert rest.get("/api/v1/accounts/me/").status_code == 401
    assert client.get("/").status_code == 302  # back to the log-in page
    entry = AuditEntry.objects.get(action="account.suspended")
    assert (entry.actor_id, entry.target_id, entry.after["reason"]) == (mod.pk, str(alice.pk), "spam")


def test_a_suspended_account_cannot_log_in_and_is_told_until_when(make_user):
    alice = make_user("alice", password=PASSWORD)
    until = timezone.now() + timedelta(hours=5)
    services.account_suspend(user=alice, until=until, reason="spam")
    response = log_in(Client(), "alice")
    assert response.status_code == 200
    text = response.content.decode()
    assert "suspended" in text and until.astimezone(UTC).strftime("%Y-%m-%d %H:%M") in text


def test_a_suspended_account_gets_no_token(make_user, api):
    alice = make_user("alice", password=PASSWORD)
    services.account_suspend(user=alice, reason="spam")
    response = api(None).post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "suspended"
    assert "until a moderator lifts it" in response.json()["error"]["detail"]


def test_a_token_issued_around_the_suspension_is_refused(make_user):
    from rest_framework.test import APIClient

    alice = make_user("alice", password=PASSWORD)
    services.account_suspend(user=alice)
    key = Token.objects.create(user=alice).key  # as if issued in the same instant
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/v1/accounts/me/")
    assert response.status_code == 401
    assert "suspended" in response.json()["error"]["detail"]


def test_a_suspension_ends_by_itself_or_when_lifted(make_user):
    mod, alice = make_user("mod"), make_user("alice", password=PASSWORD)
    services.account_suspend(user=alice, until=timezone.now() + timedelta(hours=1), actor=mod)
    type(alice).objects.filter(pk=alice.pk).update(suspended_until=timezone.now() - timedelta(seconds=1))
    assert log_in(Client(), "alice").status_code == 302  # expired

    services.account_suspend(user=alice, actor=mod)
    assert log_in(Client(), "alice").status_code == 200
    assert services.account_unsuspend(user=alice, actor=mod)
    assert log_in(Client(), "alice").status_code == 302
    assert not services.account_unsuspend(user=alice, actor=mod)
    assert AuditEntry.objects.filter(action="account.unsuspended", actor=mod).count() == 1


def test_a_suspension_must_end_in_the_future(make_user):
    alice = make_user("alice")
    with pytest.raises(ChatError) as caught:
        services.account_suspend(user=alice, until=timezone.now() - timedelta(minutes=1))
    assert caught.value.code == "invalid"


def test_the_user_admin_suspends_with_a_reason_and_lifts(admin_client, make_user):
    alice = make_user("alice", password=PASSWORD)
    response = admin_client.post("/admin/accounts/user/", {
        "action": "suspend_7d", "_selected_action": [alice.pk], "index": 0, "reason": "spam",
    })  # fmt: skip
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.is_suspended() and alice.suspension_reason == "spam"
    assert "until" in admin_client.get("/admin/accounts/user/").content.decode()
    assert admin_client.get(f"/admin/accounts/user/{alice.pk}/change/").status_code == 200
    admin_client.post("/admin/accounts/user/", {"action": "unsuspend", "_selected_action": [alice.pk], "index": 0})
    alice.refresh_from_db()
    assert not alice.is_suspended()
    assert AuditEntry.objects.filter(action__in=["account.suspended", "account.unsuspended"]).count() == 2
