"""Deactivating an account in the admin stops it at once: open sockets closed (4401), sessions and token gone."""

from __future__ import annotations

import asyncio

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from rest_framework.authtoken.models import Token

from accounts.models import UserSession
from tests.support import ChatClient, in_thread, token_for

USERS = "/admin/accounts/user/"
PASSWORD = "tulip-orbit-73"


def change_form(user, **changes) -> dict:
    """The admin change form of ``user`` as a browser submits it (a None value: the box unticked)."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def logged_in_browser(user) -> Client:
    browser = Client()
    assert browser.login(username=user.username, password=PASSWORD)
    return browser


@pytest.mark.django_db
def test_unticking_active_signs_the_user_out_everywhere(admin_client, make_user):
    alice = make_user("alice", password=PASSWORD)
    browser = logged_in_browser(alice)
    token_for(alice)
    assert UserSession.objects.filter(user=alice).exists()

    response = admin_client.post(f"{USERS}{alice.pk}/change/", change_form(alice, is_active=None))

    assert response.status_code == 302
    assert not get_user_model().objects.get(pk=alice.pk).is_active
    assert not Token.objects.filter(user=alice).exists()
    assert not Session.objects.filter(session_key=browser.cookies["sessionid"].value).exists()
    assert browser.get("/account/").status_code == 302  # sent to the login page


@pytest.mark.django_db
def test_saving_an_active_user_leaves_them_signed_in(admin_client, make_user):
    alice = make_user("alice", password=PASSWORD)
    token_for(alice)

    response = admin_client.post(f"{USERS}{alice.pk}/change/", change_form(alice, first_name="Alice"))

    assert response.status_code == 302
    assert Token.objects.filter(user=alice).exists()


@pytest.mark.django_db
def test_the_deactivate_action_signs_the_selected_users_out(admin_client, admin_user, make_user):
    alice, bob = make_user("alice", password=PASSWORD), make_user("bob", password=PASSWORD)
    for user in (alice, bob):
        token_for(user)

    response = admin_client.post(
        USERS, {"action": "deactivate", "_selected_action": [alice.pk, admin_user.pk]}, follow=True
    )

    page = response.content.decode()
    assert "Deactivated 1 account(s)." in page and "cannot deactivate your own account" in page
    assert not get_user_model().objects.get(pk=alice.pk).is_active
    assert get_user_model().objects.get(pk=admin_user.pk).is_active
    assert not Token.objects.filter(user=alice).exists() and Token.objects.filter(user=bob).exists()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_unticking_active_in_the_admin_closes_the_users_open_socket(server, make_user):
    alice, moderator = await in_thread(
        lambda: (
            make_user("alice", password=PASSWORD),
            get_user_model().objects.create_superuser("moderator", "mod@example.com", PASSWORD),
        )
    )
    chat = await ChatClient.connect(server.ws, alice)
    await chat.send(type="sync", rooms={}, req="ready")
    await chat.wait_for(lambda c: c.of_type("sync.done"), timeout=10)

    def untick() -> int:
        admin = Client()
        admin.force_login(moderator)
        return admin.post(f"{USERS}{alice.pk}/change/", change_form(alice, is_active=None)).status_code

    assert await in_thread(untick) == 302

    await asyncio.wait_for(chat.reader, timeout=5)  # the server closed it, within seconds
    assert chat.ws.close_code == 4401
