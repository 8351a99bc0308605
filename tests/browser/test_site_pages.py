"""The site's own pages: 404 and 500 in the site's layout with a way back, and its icon.

Under /api/ both errors keep the API's JSON shape (tests/api/test_api_errors.py).
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from playwright.sync_api import expect

from chatproject.middleware import content_security_policy
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.django_db

ICON_LINK = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
SITE_LAYOUT = ('<header class="site-header">', '<link rel="stylesheet" href="/static/css/app.css">', ICON_LINK)


def signed_in(user, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def way_back(response) -> tuple[str, str]:
    """The error page's way back: (its address, its words)."""
    match = re.search(
        r'<p class="error-way-back">\s*<a class="button" href="([^"]+)">([^<]+)</a>', response.content.decode()
    )
    assert match, "the page has no way back"
    return match.group(1), match.group(2)


def test_an_unknown_page_is_the_sites_404_with_the_way_back_to_ones_rooms(make_user):
    alice = make_user("alice")

    response = signed_in(alice).get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert all(part in html for part in SITE_LAYOUT)
    assert "<title>Page not found · Chat</title>" in html
    assert ">alice</a>" in html  # the usual navigation, signed in
    assert way_back(response) == ("/", "Back to your rooms")


def test_signed_out_the_404_leads_to_the_log_in_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert '<header class="site-header">' in response.content.decode()
    assert way_back(response) == ("/login/", "Log in")


@pytest.mark.urls("tests.api.urls")
def test_a_crashed_page_is_the_sites_500_that_needs_neither_session_nor_database(make_user):
    client = signed_in(make_user("alice"), raise_request_exception=False)

    response = client.get("/crash/")

    assert response.status_code == 500
    html = response.content.decode()
    assert all(part in html for part in SITE_LAYOUT)
    assert "Something went wrong" in html and "a bug" not in html
    # Rendered without the request: no account links (reading the session may be what failed).
    assert "alice" not in html and "Log out" not in html and "Log in" not in html
    assert way_back(response) == ("/", "Back to the chat")


def test_favicon_ico_leads_to_the_svg_icon_which_every_page_links(client, make_user, make_room):
    redirect = client.get("/favicon.ico")
    assert (redirect.status_code, redirect["Location"]) == (302, "/static/favicon.svg")
    icon = client.get(redirect["Location"])
    assert (icon.status_code, icon["Content-Type"]) == (200, "image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content)

    alice = make_user()
    room = make_room(owner=alice)
    assert ICON_LINK in client.get("/login/").content.decode()
    for path in ("/", f"/rooms/{room.pk}/", "/drawer/", "/account/"):
        assert ICON_LINK in signed_in(alice).get(path).content.decode(), path


def test_the_content_security_policy_lets_pages_load_the_icon(rf):
    policy = dict(d.split(" ", 1) for d in content_security_policy(rf.get("/")).split("; "))
    assert "'self'" in policy["img-src"].split()


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_404_page_in_a_browser_shows_the_icon_and_leads_back(browsers, make_user):
    page = browsers.open_as(make_user("alice"))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 and "favicon" in r.url else None)

    response = page.goto("/no-such-page/")

    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Page not found")
    expect(page.locator(".site-header .nav-user")).to_have_text("alice")
    icon = page.evaluate("() => fetch(document.querySelector('link[rel=icon]').href).then((r) => r.status)")
    assert icon == 200 and missing == []
    screenshot(page, "not-found-page")
    page.click("text=Back to your rooms")
    expect(page.locator("#room-list")).to_be_attached()
