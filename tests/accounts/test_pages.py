"""Sign-up, login, logout and the account page, through the real pages with real CSRF checks."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.models import UserSession
from chat_messages.models import Message
from streams.realtime.hub import session_group
from tests.accounts.conftest import csrf_from

pytestmark = pytest.mark.django_db

PASSWORD = "tulip-orbit-73"


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def submit(browser, url: str, data: dict, page: str | None = None):
    """Open the page (``url`` unless given), then post its form with the page's CSRF token."""
    token = csrf_from(browser.get(page or url))
    return browser.post(url, {"csrfmiddlewaretoken": token, **data})


def logged_in_as(browser) -> int | None:
    key = browser.cookies.get("sessionid")
    if key is None or not Session.objects.filter(session_key=key.value).exists():
        return None
    user_id = Session.objects.get(session_key=key.value).get_decoded().get("_auth_user_id")
    return int(user_id) if user_id else None


def test_signing_up_creates_the_account_and_logs_in(browser):
    page = browser.get("/signup/")
    response = submit(browser, "/signup/", {"username": "alice", "password1": PASSWORD, "password2": PASSWORD})

    assert page.status_code == 200
    assert 'name="username"' in page.content.decode()
    assert (response.status_code, response["Location"]) == (302, "/")
    alice = get_user_model().objects.get(username="alice")
    assert alice.check_password(PASSWORD)
    assert logged_in_as(browser) == alice.pk
    assert UserSession.objects.filter(user=alice, session_key=browser.cookies["sessionid"].value).exists()


def test_a_form_posted_without_its_csrf_token_is_refused(browser):
    browser.get("/signup/")

    response = browser.post("/signup/", {"username": "alice", "password1": PASSWORD, "password2": PASSWORD})

    assert response.status_code == 403
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "Alice", "password1": PASSWORD, "password2": PASSWORD}, "That username is taken."),
        ({"username": "bob", "password1": PASSWORD, "password2": PASSWORD + "x"}, "The two passwords differ."),
        ({"username": "bob", "password1": "password", "password2": "password"}, "This password is too common."),
        ({"username": "bob smith", "password1": PASSWORD, "password2": PASSWORD}, "Enter a valid username."),
    ],
)
def test_a_refused_sign_up_shows_why_and_keeps_the_visitor_out(browser, make_user, data, message):
    make_user("alice")

    response = submit(browser, "/signup/", data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert get_user_model().objects.count() == 1
    assert logged_in_as(browser) is None


def test_sign_ups_from_one_address_are_rate_limited(settings, browser):
    settings.RATE_LIMITS_ENABLED = True
    rate = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["signup"].split("/")[0])
    browser.defaults["REMOTE_ADDR"] = "10.201.{}.{}".format(*divmod(uuid.uuid4().int % 62500, 250))
    token = csrf_from(browser.get("/signup/"))

    answers = [browser.post("/signup/", {"csrfmiddlewaretoken": token, "username": ""}) for _ in range(rate + 1)]

    assert {a.status_code for a in answers[:rate]} == {200}
    assert answers[-1].status_code == 429
    assert "Too many sign-ups" in answers[-1].content.decode()


def test_logging_in_and_out_through_the_pages(browser, make_user):
    alice = make_user("alice", password=PASSWORD)

    wrong = submit(browser, "/login/", {"username": "alice", "password": "nope"})
    assert wrong.status_code == 200
    assert "enter a correct username and password" in wrong.content.decode()
    assert logged_in_as(browser) is None

    right = submit(browser, "/login/", {"username": "alice", "password": PASSWORD})
    assert (right.status_code, right["Location"]) == (302, "/")
    assert logged_in_as(browser) == alice.pk
    key = browser.cookies["sessionid"].value
    assert UserSession.objects.filter(user=alice, session_key=key).exists()

    # The nav's logout form, on any page of a logged-in user.
    assert browser.get("/logout/").status_code == 405  # a link cannot log anyone out
    out = submit(browser, "/logout/", {}, page="/account/")
    assert (out.status_code, out["Location"]) == (302, "/login/")
    assert logged_in_as(browser) is None
    assert not Session.objects.filter(session_key=key).exists()
    assert not UserSession.objects.filter(session_key=key).exists()


def test_logging_out_closes_the_sockets_of_that_session_only(
    browser, make_user, listen, django_capture_on_commit_callbacks
):
    make_user("alice", password=PASSWORD)
    other = Client(enforce_csrf_checks=True)
    submit(browser, "/login/", {"username": "alice", "password": PASSWORD})
    submit(other, "/login/", {"username": "alice", "password": PASSWORD})
    mine, theirs = browser.cookies["sessionid"].value, other.cookies["sessionid"].value
    listener = listen(session_group(mine), session_group(theirs))

    with django_capture_on_commit_callbacks(execute=True):
        submit(browser, "/logout/", {}, page="/account/")

    assert listener.events() == [(session_group(mine), None, {"op": "close", "code": 4401})]
    assert other.get("/account/").status_code == 200


def test_an_inactive_account_cannot_log_in(browser, make_user):
    alice = make_user("alice", password=PASSWORD)
    alice.is_active = False
    alice.save()

    response = submit(browser, "/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 200
    assert logged_in_as(browser) is None


def test_the_account_page_needs_a_login(browser):
    response = browser.get("/account/")

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/account/")


def test_deleting_the_account_asks_for_the_password(browser, make_user):
    alice = make_user("alice", password=PASSWORD)
    browser.force_login(alice)

    page = browser.get("/account/")
    response = submit(browser, "/account/", {"password": "nope", "erase_messages": "on"})

    assert 'name="erase_messages"' in page.content.decode()
    assert 'type="password"' in page.content.decode()
    assert response.status_code == 200
    assert "That is not your password." in response.content.decode()
    assert get_user_model().objects.filter(pk=alice.pk).exists()


def test_deleting_the_account_with_erase_logs_out_and_erases_the_messages(browser, make_user, make_room, add_messages):
    alice, bob = make_user("alice", password=PASSWORD), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    add_messages(room, alice, 3, body="mine")
    submit(browser, "/login/", {"username": "alice", "password": PASSWORD})

    response = submit(browser, "/account/", {"password": PASSWORD, "erase_messages": "on"})

    assert (response.status_code, response["Location"]) == (302, "/login/")
    assert "Your account was deleted." in browser.get("/login/").content.decode()
    assert not get_user_model().objects.filter(pk=alice.pk).exists()
    assert list(Message.objects.filter(room=room).values_list("sender", "body")) == [(None, "")] * 3
    assert logged_in_as(browser) is None


def test_deleting_the_account_without_erase_keeps_the_messages(browser, make_user, make_room, add_messages):
    alice = make_user("alice", password=PASSWORD)
    room = make_room(owner=alice, members=[make_user()])
    add_messages(room, alice, 1, body="mine")
    browser.force_login(alice)

    submit(browser, "/account/", {"password": PASSWORD})

    assert list(Message.objects.filter(room=room).values_list("sender", "body")) == [(None, "mine 1")]


def test_the_base_layout_has_a_nav_for_visitors_and_members(browser, make_user):
    visitor = browser.get("/login/").content.decode()
    browser.force_login(make_user("alice"))
    member = browser.get("/account/").content.decode()

    assert 'href="/signup/"' in visitor and 'href="/login/"' in visitor
    assert 'href="/account/"' in member and 'action="/logout/"' in member and "alice" in member
    assert "/static/css/app.css" in member


@pytest.mark.django_db
def test_password_guessing_on_the_login_page_and_the_token_api_is_limited(settings, make_user):
    from django.core.cache import cache
    from django.test import Client

    settings.RATE_LIMITS_ENABLED = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "3/min"},
    }
    cache.clear()
    make_user("victim")
    page = Client()
    statuses = [page.post("/login/", {"username": "victim", "password": f"guess{i}"}).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert "Too many log-in attempts" in page.post("/login/", {"username": "victim", "password": "x"}).content.decode()
    cache.clear()
    api = Client()
    codes = [
        api.post("/api/v1/auth/token/", {"username": "victim", "password": "nope"}, content_type="application/json")
        for _ in range(4)
    ]
    assert [c.status_code for c in codes] == [400, 400, 400, 429]
    assert codes[-1].json()["error"]["code"] == "rate_limited"
    cache.clear()
