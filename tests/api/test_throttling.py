"""Rate limits per user and per endpoint class: sending is stricter than reading."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core.cache import cache
from django.urls import resolve
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.throttling import SimpleRateThrottle

from tests.api.support import operations, schema_document

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]


@pytest.fixture
def rates(settings):
    """Rate limits on, with small rates, and counters (in the Redis cache) from zero."""
    settings.RATE_LIMITS_ENABLED = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"send": "2/min", "read": "4/min", "write": "3/min", "signup": "1/min"},
    }
    cache.clear()
    yield
    cache.clear()


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def send(client, room) -> int:
    body = {"client_msg_id": str(uuid.uuid4()), "body": "hi"}
    return client.post(f"/api/v1/rooms/{room.pk}/messages/", body, format="json").status_code


def test_sending_is_limited_before_reading_and_each_class_counts_apart(rates, make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    client = api(me)

    assert [send(client, room) for _ in range(3)] == [202, 202, 429]
    refused = client.post(
        f"/api/v1/rooms/{room.pk}/messages/", {"client_msg_id": str(uuid.uuid4()), "body": "x"}, format="json"
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limited")
    assert 0 < int(refused["Retry-After"]) <= 60

    # Sending is used up; reading still has its own, larger allowance.
    reads = [client.get(f"/api/v1/rooms/{room.pk}/messages/").status_code for _ in range(5)]
    assert reads == [200, 200, 200, 200, 429]
    # Other changes count against neither.
    assert client.patch(f"/api/v1/rooms/{room.pk}/", {"name": "renamed"}, format="json").status_code == 200


def test_limits_are_per_user(rates, make_user, make_room):
    me, friend = make_user(), make_user()
    room = make_room(owner=me, members=[friend])
    assert [send(api(me), room) for _ in range(3)] == [202, 202, 429]
    assert send(api(friend), room) == 202


def test_rate_limits_off_lets_everything_through(rates, settings, make_user, make_room):
    settings.RATE_LIMITS_ENABLED = False
    me = make_user()
    room = make_room(owner=me)
    assert {api(me).get(f"/api/v1/rooms/{room.pk}/").status_code for _ in range(8)} == {200}


def test_by_default_sending_is_stricter_than_reading(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]

    def per_second(scope: str) -> float:
        count, seconds = SimpleRateThrottle.parse_rate(None, rates[scope])
        return count / seconds

    assert per_second("send") < per_second("write") < per_second("read")


def expected_scope(method: str, path: str) -> str:
    if method == "post" and path == "/api/v1/accounts/":
        return "signup"
    if path == "/api/v1/auth/token/":
        return "login"  # a password check (and its revocation), limited like the log-in page
    if method == "post" and path.endswith("/messages/"):
        return "send"
    if method == "post" and path.endswith("/attachments/"):
        return "upload"  # each stores a file (and decodes an image)
    if method == "post" and path == "/api/v1/account/exports/":
        return "export"  # each reads the user's whole history
    if method == "get" or path.endswith("/read/"):
        return "read"  # reporting a read position is a frequent, idempotent read-side call
    return "write"


def test_every_operation_counts_against_its_class():
    """Walks the schema, so a new endpoint is held to the same classes without listing it here."""
    factory = APIRequestFactory()
    seen = {}
    for method, path, _ in operations(schema_document()):
        url = re.sub(r"\{[a-z_]+\}", "1", path)  # every path parameter: an id, or a reaction's emoji
        view = resolve(url).func.view_class()
        view.request = getattr(factory, method)(url)
        (throttle,) = view.get_throttles()
        seen[f"{method.upper()} {path}"] = throttle.scope
        assert throttle.scope == expected_scope(method, path), (method, path, throttle.scope)
    assert seen["POST /api/v1/rooms/{room_id}/messages/"] == "send"
    assert seen["GET /api/v1/search/"] == "read"
