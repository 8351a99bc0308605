"""The drawer's filters and cursors at the edges: dates near the limits, forged cursors, nesting.

Each used to reach the database or Python's date arithmetic unchecked and answer 500; each is
now 400 ``invalid`` on REST (and an explanation on the page), and the dates that do exist work.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from drawer.services import drawer_entry_save

pytestmark = pytest.mark.django_db

URL = "/api/v1/drawer/"


def cursor_of(raw) -> str:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


FORGED_CURSORS = {
    "nested": cursor_of(b"[" * 1000),
    "offset past 15:59": cursor_of(["9999-12-31T23:59:59-23:59", 1]),
    "offset before year 1": cursor_of(["0001-01-01T00:00:00+23:59", 1]),
    "id past bigint": cursor_of(["2026-01-01T00:00:00+00:00", 2**63]),
    "id zero": cursor_of(["2026-01-01T00:00:00+00:00", 0]),
    "float id": cursor_of(["2026-01-01T00:00:00+00:00", 1e308]),
    "not utf-8": cursor_of(b"\xff\xfe"),
    "too long": "A" * 400,
}


@pytest.fixture
def saved(alice, room, make_message):
    message = make_message(room, alice, "remember this")
    entry, _ = drawer_entry_save(user=alice, message_id=message.pk)
    return entry


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.mark.parametrize("name", list(FORGED_CURSORS))
def test_a_forged_cursor_is_invalid_on_rest(api_client, alice, saved, name):
    response = api_client(alice).get(URL, {"cursor": FORGED_CURSORS[name]})
    assert error(response) == (400, "invalid")


@pytest.mark.parametrize("name", list(FORGED_CURSORS))
def test_a_forged_cursor_is_explained_on_the_page(alice, saved, name):
    page = Client(raise_request_exception=False)
    page.force_login(alice)
    response = page.get("/drawer/", {"cursor": FORGED_CURSORS[name]})
    assert response.status_code == 200
    html = response.content.decode()
    # Refused by the selector, or (the nested one, longer than any query value) by the form.
    assert "not a cursor this server gave" in html or "Some filters are not valid: cursor:" in html


@pytest.mark.parametrize(
    "query",
    [
        {"until": "9999-12-31"},  # the day after is past datetime.max
        {"until": "9999-12-31T23:59:59-23:59"},
        {"since": "0001-01-01T00:00:00+23:59"},
        {"since": "10000-01-01"},
        {"since": "2026-02-30"},
        {"room": "١"},
        {"limit": "²"},
        {"room": "9" * 5000},
    ],
)
def test_dates_and_numbers_past_the_limits_are_invalid(api_client, alice, saved, query):
    assert error(api_client(alice).get(URL, query)) == (400, "invalid")


def test_the_dates_that_exist_at_the_edges_still_filter(api_client, alice, saved):
    client = api_client(alice)
    assert [e["id"] for e in client.get(URL, {"since": "0001-01-01", "until": "9999-12-30"}).json()["results"]] == [
        saved.pk
    ]
    assert client.get(URL, {"since": "9999-12-30"}).json()["results"] == []


def test_the_page_explains_a_date_past_the_limits(alice, saved):
    page = Client(raise_request_exception=False)
    page.force_login(alice)
    response = page.get("/drawer/", {"until": "9999-12-31"})
    assert response.status_code == 200
    assert "Some filters are not valid: until:" in response.content.decode()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_overflowing_filters_and_cursors_answer_invalid_over_http(server, alice, room, make_message):
    """The issue's reports, against the running daphne."""
    message = make_message(room, alice, "remember this")
    drawer_entry_save(user=alice, message_id=message.pk)
    key = Token.objects.get_or_create(user=alice)[0].key
    queries = [
        "until=9999-12-31",
        f"cursor={FORGED_CURSORS['nested']}",
        f"cursor={FORGED_CURSORS['offset past 15:59']}",
    ]
    for query in queries:
        request = urllib.request.Request(f"{server.http}{URL}?{query}", headers={"Authorization": f"Token {key}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=15)
        body = json.loads(refused.value.read())
        assert (refused.value.code, body["error"]["code"]) == (400, "invalid"), query
