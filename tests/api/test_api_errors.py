"""One error shape for every failure under /api/, whatever raised it."""

from __future__ import annotations

import pytest

from tests.api.support import error

pytestmark = pytest.mark.django_db


@pytest.mark.urls("tests.api.urls")
@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here/", "/api/v1/rooms/abc/", "/api/v1/rooms/-1/messages/", "/api/v2/"]
)
def test_an_unknown_api_url_answers_the_json_error(rest, path):
    response = rest.get(path)
    assert error(response) == (404, "not_found")
    assert response.json()["error"]["detail"]


@pytest.mark.urls("tests.api.urls")
def test_an_unknown_page_is_still_an_html_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls("tests.api.urls")
def test_a_crash_under_api_answers_the_json_error_and_a_page_crash_the_html_page(rest):
    crashed = rest.get("/api/v1/crash/")
    assert error(crashed) == (500, "internal")
    assert "a bug" not in crashed.content.decode()  # no internals leak to clients
    page = rest.get("/crash/")
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


def test_the_project_answers_unknown_api_urls_in_json(rest):
    assert error(rest.get("/api/v1/nothing-here/")) == (404, "not_found")


def test_a_form_encoded_body_is_refused_the_api_speaks_json(rest):
    response = rest.post("/api/v1/rooms/", {"kind": "group", "name": "form"})
    assert error(response) == (415, "invalid")


def test_a_malformed_json_body_is_invalid(rest):
    response = rest.post("/api/v1/rooms/", "{", content_type="application/json")
    assert error(response) == (400, "invalid")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/rooms/", {"kind": "group", "name": "x", "is_public": "0"}, "is_public"),
        ("/api/v1/rooms/", {"kind": "group", "name": "x", "is_public": 1}, "is_public"),
        ("/api/v1/rooms/", {"kind": "group", "name": 5}, "name"),
        ("/api/v1/rooms/", {"kind": "group", "name": "x", "members": ["2"]}, "members"),
        ("/api/v1/rooms/", {"kind": "direct", "user": "2"}, "user"),
        ("/api/v1/rooms/", ["kind", "group"], "non_field_errors"),
        ("/api/v1/accounts/", {"username": 12345, "password": "tulip-orbit-73"}, "username"),
    ],
)
def test_json_values_must_have_the_types_the_schema_shows(rest, path, body, field):
    response = rest.post(path, body, format="json")
    assert error(response) == (400, "invalid")
    assert field in response.json()["error"]["detail"]


def test_null_is_refused_where_the_schema_does_not_allow_it(rest, make_room, me):
    room = make_room(owner=me)
    response = rest.post(f"/api/v1/rooms/{room.pk}/read/", {"seq": None}, format="json")
    assert error(response) == (400, "invalid")


def test_a_method_the_endpoint_does_not_have_is_refused_in_the_error_shape(rest):
    response = rest.put("/api/v1/rooms/", {}, format="json")
    assert error(response) == (405, "invalid")
