"""Hostile input under /api/ and on the pages: 400 ``invalid``, never a 500 the client is blamed for.

Input that overflows, nests or fails to parse is the client's fault and answers 400 ``invalid``;
a real bug answers 500 ``internal`` (not ``unavailable``, which clients read as "retry later").
The nesting and overflow cases also run against the real daphne, over a real HTTP client.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request

import pytest
from django.db import DataError
from django.urls import path
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient

from chatproject.urls import urlpatterns as project_urlpatterns
from streams.web.api import QUERY_VALUE_MAX_CHARS, ChatAPIView
from tests.api.support import error

pytestmark = pytest.mark.django_db

DEEP_ARRAY = "[" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000


# --- end to end, against the running daphne -------------------------------------------------------


def send(server, method: str, target: str, body: bytes | None = None, headers: dict | None = None):
    """(status, parsed JSON or None, raw body) of one request over a real socket."""
    request = urllib.request.Request(server.http + target, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    return status, data, raw


def raw_http(server, target: bytes, headers: bytes = b"") -> int:
    """The status of a request written byte for byte (targets urllib would refuse to send)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    conn.connect()
    conn.sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"Connection: close\r\n\r\n")
    response = http.client.HTTPResponse(conn.sock)
    response.begin()
    status = response.status
    response.read()
    conn.close()
    return status


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize("target", ["/api/v1/accounts/", "/api/v1/auth/token/"])
def test_deep_nesting_without_a_login_is_invalid_not_a_crash(server, target, body):
    status, data, raw = send(server, "POST", target, body.encode(), {"Content-Type": "application/json"})
    assert (status, data["error"]["code"]) == (400, "invalid"), raw[:200]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_body_past_the_upload_limit_is_too_large_not_parsed(server, settings):
    body = b'{"username": "' + b"a" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b'", "password": "x"}'
    status, data, raw = send(server, "POST", "/api/v1/accounts/", body, {"Content-Type": "application/json"})
    assert (status, data["error"]["code"]) == (413, "too_large"), raw[:200]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_hostile_queries_and_bodies_of_a_logged_in_client_are_invalid_over_http(server, make_user, make_room):
    me = make_user()
    room = make_room(owner=me)
    auth = {"Authorization": f"Token {Token.objects.get_or_create(user=me)[0].key}"}
    cases = [
        ("GET", "/api/v1/drawer/?until=9999-12-31", None),
        ("GET", "/api/v1/drawer/?since=9999-12-31T23:59:59-23:59", None),
        ("GET", f"/api/v1/rooms/{room.pk}/messages/?anchor={'9' * 5000}", None),
        ("GET", f"/api/v1/rooms/{room.pk}/messages/?before=%D9%A1", None),  # "١", an Arabic-Indic 1
        ("GET", "/api/v1/users/?q=a%00b", None),
        ("POST", f"/api/v1/rooms/{room.pk}/read/", DEEP_ARRAY),
        ("PATCH", f"/api/v1/rooms/{room.pk}/", DEEP_OBJECT),
        ("POST", "/api/v1/drawer/", DEEP_ARRAY),
    ]
    for method, target, body in cases:
        headers = {**auth, "Content-Type": "application/json"}
        status, data, raw = send(server, method, target, body.encode() if body else None, headers)
        assert (status, data and data["error"]["code"]) == (400, "invalid"), (method, target, raw[:200])


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_nul_in_a_token_is_an_invalid_token_not_a_crash(server):
    # daphne itself refuses a NUL in a header (400); behind another server it reaches the view (below).
    assert raw_http(server, b"/api/v1/rooms/", b"Authorization: Token a\x00b\r\n") in (400, 401)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "target",
    [
        b"/api/v1/users/?q=%ff%fe",
        b"/api/v1/drawer/?cursor=%00",
        b"/api/%ff/",
        b"/rooms/%ff/",
        b"/login/?next=%ff%00",
        b"/\xff\xfe/",
        b"/login/?next=\xff",
        b"/readyz?%ff=%00",
    ],
)
def test_invalid_utf8_and_nul_in_the_path_or_query_never_crash(server, target):
    assert raw_http(server, target) < 500


# --- the Django test client: every entry, every kind -------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("post", "/api/v1/rooms/"),
        ("patch", "/api/v1/rooms/{room}/"),
        ("post", "/api/v1/rooms/{room}/participants/"),
        ("post", "/api/v1/rooms/{room}/read/"),
        ("post", "/api/v1/rooms/{room}/unread/"),
        ("post", "/api/v1/rooms/{room}/messages/"),
        ("patch", "/api/v1/rooms/{room}/messages/1/"),
        ("post", "/api/v1/drawer/"),
        ("patch", "/api/v1/drawer/1/"),
        ("delete", "/api/v1/accounts/me/"),
    ],
)
def test_every_json_body_refuses_deep_nesting(rest, me, make_room, method, target, body):
    room = make_room(owner=me)
    response = getattr(rest, method)(target.format(room=room.pk), body, content_type="application/json")
    assert error(response) == (400, "invalid")


def test_the_body_limit_follows_the_setting(rest, me, make_room, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    room = make_room(owner=me)
    large = json.dumps({"seq": 1, "padding": "x" * 100})
    assert error(rest.post(f"/api/v1/rooms/{room.pk}/read/", large, content_type="application/json")) == (
        413,
        "too_large",
    )
    small = rest.post(f"/api/v1/rooms/{room.pk}/read/", {"seq": 0}, format="json")
    assert small.status_code == 200, small.content


@pytest.mark.parametrize(
    "query",
    [
        {"before": "١"},  # Arabic-Indic digit one: int() reads it, the schema says ASCII digits
        {"after": "²"},
        {"limit": "1_0"},
        {"before": "9" * 30},
        {"anchor": "9" * 5000},
        {"before": "9" * (QUERY_VALUE_MAX_CHARS + 1)},
        {"before": "1\x00"},
    ],
)
def test_history_query_numbers_are_ascii_and_bounded(rest, me, make_room, query):
    room = make_room(owner=me)
    assert error(rest.get(f"/api/v1/rooms/{room.pk}/messages/", query)) == (400, "invalid")


@pytest.mark.parametrize("query", [{"q": "x", "room": "١"}, {"q": "x", "before": "1e3"}, {"q": "x" * 2000}])
def test_search_query_numbers_are_ascii_and_bounded(rest, query):
    assert error(rest.get("/api/v1/search/", query)) == (400, "invalid")


def test_a_plain_ascii_number_with_spaces_still_works(rest, me, make_room):
    room = make_room(owner=me)
    assert rest.get(f"/api/v1/rooms/{room.pk}/messages/", {"limit": " 5 "}).status_code == 200


def test_a_nul_in_a_token_is_refused_as_an_invalid_token(me):
    anon = APIClient(raise_request_exception=False)
    anon.credentials(HTTP_AUTHORIZATION="Token a\x00b")
    assert error(anon.get("/api/v1/rooms/")) == (401, "unauthenticated")


def test_the_room_page_opens_as_usual_for_an_anchor_that_is_not_an_ascii_seq(me, make_room):
    from django.test import Client

    room = make_room(owner=me)
    page = Client(raise_request_exception=False)
    page.force_login(me)
    for at in ["²", "١", "9" * 5000, "99999999999999999999", "-1", "0", "1\x00"]:
        response = page.get(f"/rooms/{room.pk}/", {"at": at})
        assert response.status_code == 200, at


# --- the safety net and the 500 code ---------------------------------------------------------------


class RaiseView(ChatAPIView):
    """Raises what its URL names: what a missed validator would let through, or a bug."""

    permission_classes = [AllowAny]
    faults = {
        "recursion": RecursionError("maximum recursion depth exceeded"),
        "overflow": OverflowError("date value out of range"),
        "data": DataError('time zone displacement out of range: "9999-12-31T23:59:59-23:59"'),
        "bug": RuntimeError("a bug"),
    }

    def get(self, request, kind: str):
        raise self.faults[kind]


urlpatterns = [path("api/v1/raise/<str:kind>/", RaiseView.as_view()), *project_urlpatterns]
handler404 = "streams.web.api.handler404"
handler500 = "streams.web.api.handler500"


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("kind", ["recursion", "overflow", "data"])
def test_an_input_fault_no_validator_caught_is_invalid_logged_without_traceback(kind, caplog):
    caplog.set_level(logging.WARNING)
    response = APIClient(raise_request_exception=False).get(f"/api/v1/raise/{kind}/")
    assert error(response) == (400, "invalid")
    # The exception's own words stay in the server's log.
    assert str(RaiseView.faults[kind]) not in response.json()["error"]["detail"]
    refused = [r for r in caplog.records if r.name == "streams.web.api"]
    assert [r.levelno for r in refused] == [logging.WARNING]
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.urls(__name__)
def test_a_bug_answers_500_internal_not_unavailable():
    response = APIClient(raise_request_exception=False).get("/api/v1/raise/bug/")
    assert error(response) == (500, "internal")
    assert "a bug" not in response.content.decode()
