"""The web chat and the server's close codes: 4429 (too many sockets) and 4503 (server stopping)."""

from __future__ import annotations

import pytest
from django.conf import settings
from playwright.sync_api import expect

from chat_messages.models import Message
from tests.browser.conftest import screenshot
from tests.browser.test_chat import message_bodies, send
from tests.browser.test_outbox import own_web_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RECONNECT_TIMEOUT_MS = 40_000  # the server's restart plus the pages' backoff
OPEN_SOCKETS = """async (count) => {
  window.__others = [];
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(`ws://${location.host}/ws/chat/`);
    window.__others.push(ws);
    await new Promise((opened, refused) => {
      ws.onopen = opened;
      ws.onclose = (event) => refused(new Error(`socket ${i} closed with ${event.code}`));
    });
  }
}"""


@pytest.fixture
def limited_browsers(chromium, server):
    """Pages of a second web server with the per-user limits on (the session's server has them off)."""
    with own_web_server(chromium, server, RATE_LIMITS="on") as opened:
        yield opened


def test_one_socket_too_many_waits_says_why_and_connects_when_another_closes(limited_browsers, make_user, make_room):
    alice = make_user("alice")
    room = make_room(owner=alice, name="general")
    a = limited_browsers.open_as(alice)  # the room list: one socket
    expect(a.locator("#offline-banner")).to_be_hidden()
    # Other tabs and devices of Alice's take every socket she may have.
    a.evaluate(OPEN_SOCKETS, settings.CHAT_MAX_SOCKETS_PER_USER - 1)

    b = a.context.new_page()
    attempts = []
    b.on("websocket", lambda ws: attempts.append(ws))
    b.goto(f"/rooms/{room.pk}/")
    banner = b.locator("#offline-banner")
    expect(banner.locator("[data-role=text]")).to_have_text(
        "Too many open tabs/devices; close one to keep chatting here."
    )
    screenshot(b, "too-many-sockets")
    b.wait_for_timeout(3_000)
    assert len(attempts) == 1, "a refused page must not retry at once (it waits 30 s or a click)"

    a.evaluate("() => window.__others.forEach((ws) => ws.close())")
    for _ in range(5):  # the server forgets a closed socket within moments
        b.wait_for_timeout(1_000)
        b.locator("#offline-banner [data-role=retry]").click()
        if _hidden_within(banner, 2_000):
            break
    expect(banner).to_be_hidden()
    send(b, "one tab fewer")
    expect(message_bodies(b)).to_have_text(["one tab fewer"])


def _hidden_within(locator, timeout_ms: int) -> bool:
    try:
        expect(locator).to_be_hidden(timeout=timeout_ms)
    except AssertionError:
        return False
    return True


def test_a_stopping_server_says_it_restarts_and_the_page_sends_what_was_typed_once(browsers, server, alice_and_bob):
    alice, _, room = alice_and_bob
    a = browsers.open_room_as(alice, room)
    send(a, "before the restart")
    expect(message_bodies(a)).to_have_text(["before the restart"])

    server.stop("web")  # SIGTERM: the server closes every socket with 4503 before it goes
    try:
        expect(a.locator("#offline-banner [data-role=text]")).to_have_text("Server restarting… Reconnecting.")
        send(a, "typed during the restart")
        expect(a.locator("#pending .message [data-role=status]")).to_have_text("Waiting for connection…")
    finally:
        server.start("web")

    expect(a.locator("#offline-banner")).to_be_hidden(timeout=RECONNECT_TIMEOUT_MS)
    expected = ["before the restart", "typed during the restart"]
    expect(message_bodies(a)).to_have_text(expected, timeout=RECONNECT_TIMEOUT_MS)
    expect(a.locator("#pending .message")).to_have_count(0)
    assert Message.objects.filter(room=room, body="typed during the restart").count() == 1
