"""The account page's "Download your data": its section, its script (no inline script), its API."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_account_page_offers_the_download_with_a_script_the_policy_allows(client, make_user):
    alice = make_user("alice")
    client.force_login(alice)
    page = client.get("/account/")
    html = page.content.decode()

    assert page.status_code == 200
    assert 'id="data-export"' in html and 'data-exports-url="/api/v1/account/exports/"' in html
    assert '<script type="module" src="/static/js/account-export.js">' in html
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert client.get("/static/js/account-export.js").status_code == 200


def test_the_page_starts_and_follows_an_export_with_its_session(client, make_user):
    """What the script does: POST with the session and CSRF token, then GET the export it was given."""
    from django.test import Client

    alice = make_user("alice")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    browser.get("/account/")
    token = browser.cookies["csrftoken"].value
    started = browser.post(
        "/api/v1/account/exports/", {"include_files": True}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert started.status_code == 202
    followed = browser.get(started.json()["urls"]["status"])
    assert followed.status_code == 200 and followed.json()["status"] == "queued"
