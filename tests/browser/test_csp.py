"""Every page works under the Content-Security-Policy, in a real Chromium, with no violation.

A violation is what the browser reports (a console error "Refused to ... because it violates
the following Content Security Policy directive"): an inline script, an inline style attribute,
an asset from elsewhere. Each page is loaded and used (the chat sends over its WebSocket, the
API docs draw the schema), and the console must stay free of them. A last test proves the
detector: an injected inline handler is refused and reported.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, store_history

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIOLATION = "Content Security Policy"


class Watched:
    """A browser context whose pages' CSP violations and script errors are collected."""

    def __init__(self, chromium, server) -> None:
        self.context = chromium.new_context(base_url=server.http)
        self.server = server
        self.violations: list[str] = []
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message) -> None:
        if VIOLATION in message.text:
            self.violations.append(f"{self.page.url}: {message.text}")

    def goto(self, target: str):
        response = self.page.goto(target)
        assert response.status < 400, (target, response.status)
        assert self.page.url == self.server.http + target, f"{target} went to {self.page.url}"
        assert "default-src 'self'" in response.headers["content-security-policy"], target
        self.page.wait_for_load_state("networkidle")
        return response

    def log_in(self, user, path: str = "/login/", submit: str = "main button[type=submit]") -> None:
        self.goto(path)
        self.page.fill("#id_username", user.username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click(submit)
        self.page.wait_for_load_state("networkidle")


@pytest.fixture
def watched(chromium, server):
    opened: list[Watched] = []

    def make() -> Watched:
        opened.append(Watched(chromium, server))
        return opened[-1]

    yield make
    for item in opened:
        item.context.close()


def test_the_chat_pages_work_under_the_policy(watched, make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob], name="general")
    store_history(room, [bob], ["hello **there**"])
    browser = watched()

    for anonymous in ("/login/", "/signup/"):
        browser.goto(anonymous)
    browser.log_in(alice)
    for target in ("/", f"/rooms/{room.pk}/", "/drawer/", "/account/"):
        browser.goto(target)

    # The room page's socket (connect-src) carries a message there and back.
    browser.goto(f"/rooms/{room.pk}/")
    browser.page.fill("#composer-input", "sent under the policy")
    browser.page.press("#composer-input", "Enter")
    expect(browser.page.locator("#messages .message [data-role=body]")).to_have_text(
        ["hello **there**", "sent under the policy"], timeout=20_000
    )

    assert browser.violations == []
    assert browser.errors == []


def test_the_admin_works_under_the_policy(watched, django_user_model, make_room):
    boss = django_user_model.objects.create_superuser(username="boss", password=PASSWORD)
    room = make_room(owner=boss, name="ops")
    browser = watched()

    browser.log_in(boss, "/admin/login/", "#login-form input[type=submit]")
    expect(browser.page.locator("#site-name")).to_be_visible()
    for target in (
        "/admin/", "/admin/rooms/room/", f"/admin/rooms/room/{room.pk}/change/", "/admin/accounts/user/",
        "/admin/ops/pipeline/", "/admin/search/messagedoc/", "/admin/backup/replicationslot/", "/admin/audit/auditentry/",
    ):  # fmt: skip
        browser.goto(target)
    # The admin's own scripts run (the changelist's select-all box ticks every row).
    browser.goto("/admin/accounts/user/")
    browser.page.check("#action-toggle")
    expect(browser.page.locator("input.action-select").first).to_be_checked()

    assert browser.violations == []
    assert browser.errors == []


def test_the_api_docs_work_under_the_policy_from_local_assets(watched, server):
    browser = watched()
    outside: list[str] = []
    browser.page.on(
        "request", lambda request: None if request.url.startswith(server.http) else outside.append(request.url)
    )

    browser.goto("/api/docs/")
    # Swagger UI drew the schema: its title and the operations.
    expect(browser.page.locator(".swagger-ui .info .title")).to_contain_text("Chat server API", timeout=20_000)
    expect(browser.page.locator(".opblock").first).to_be_visible()

    assert outside == [], "the docs fetched from another origin"
    assert browser.violations == []
    assert browser.errors == []


def test_an_injected_inline_handler_is_refused_and_reported(watched, make_user):
    browser = watched()
    browser.goto("/login/")
    browser.page.evaluate(
        """() => {
            document.body.insertAdjacentHTML("beforeend", '<img src="/nothing.png" onerror="window.pwned = 1">');
            const script = document.createElement("script");
            script.textContent = "window.pwned = 2";
            document.body.append(script);
        }"""
    )
    browser.page.wait_for_timeout(500)

    assert browser.page.evaluate("() => window.pwned") is None
    assert len(browser.violations) >= 2, browser.violations
