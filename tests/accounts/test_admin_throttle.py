"""The admin's log-in counts against the same `login` throttle as /login/ and the API token."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from chatproject.admin import THROTTLED, ChatAdminSite

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def login_limit(settings):
    """The default `login` rate (10/min) on, from a zero count."""
    settings.RATE_LIMITS_ENABLED = True
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(username="boss", password=PASSWORD)


def admin_login(client, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": "boss", "password": password})


def test_the_eleventh_wrong_password_in_a_minute_is_refused_with_the_login_page(settings, staff):
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"] == "10/min"
    client = Client()
    for _ in range(10):
        response = admin_login(client, "guess")
        assert response.status_code == 200
        assert THROTTLED not in response.content.decode()

    refused = admin_login(client, "guess")
    assert refused.status_code == 429
    page = refused.content.decode()
    assert THROTTLED in page and 'id="login-form"' in page

    # Even the right password is not checked until the minute is over.
    assert admin_login(client, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_right_password_still_logs_in_under_the_limit(staff):
    client = Client()
    for _ in range(3):
        admin_login(client, "guess")
    response = admin_login(client, PASSWORD)
    assert (response.status_code, response["Location"]) == (302, "/admin/")


def test_the_admin_the_log_in_page_and_the_api_token_share_one_count(staff):
    client = Client()
    for _ in range(4):
        assert client.post("/login/", {"username": "boss", "password": "guess"}).status_code == 200
    for _ in range(4):
        assert admin_login(client, "guess").status_code == 200
    token = APIClient()
    for _ in range(2):
        assert (
            token.post("/api/v1/auth/token/", {"username": "boss", "password": "guess"}, format="json").status_code
            == 400
        )

    assert admin_login(client, "guess").status_code == 429
    assert client.post("/login/", {"username": "boss", "password": "guess"}).status_code == 429


def test_the_admin_page_itself_is_not_counted(staff):
    client = Client()
    for _ in range(15):
        assert client.get("/admin/login/").status_code == 200


def test_the_apps_admin_registrations_are_on_the_throttled_site(staff):
    assert isinstance(admin.site._wrapped, ChatAdminSite)
    registered = {model._meta.label for model in admin.site._registry}
    assert {"accounts.User", "rooms.Room", "chat_messages.Message", "drawer.SavedMessage"} <= registered
    client = Client()
    client.force_login(staff)
    index = client.get("/admin/")
    assert index.status_code == 200
    for app in ("accounts", "rooms", "chat_messages", "drawer"):
        assert f'href="/admin/{app}/"' in index.content.decode()
