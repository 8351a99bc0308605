"""The web chat across a server restart: offline banner, catch-up, queued sends, nothing lost or doubled."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat_messages.models import Message
from tests.browser.conftest import send_live, wait_until
from tests.browser.test_chat import message_bodies, send, seqs

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RECONNECT_TIMEOUT_MS = 40_000  # the server's restart plus the pages' backoff


def test_after_a_server_restart_the_pages_catch_up_and_send_what_was_queued(browsers, server, alice_and_bob):
    alice, bob, room = alice_and_bob
    a = browsers.open_room_as(alice, room)
    b = browsers.open_room_as(bob, room)
    send(a, "before the restart")
    expect(message_bodies(b)).to_have_text(["before the restart"])
    expect(a.locator("#offline-banner")).to_be_hidden()

    server.stop("web")
    try:
        for page in (a, b):
            expect(page.locator("#offline-banner")).to_be_visible()
        # Stored by the persistence consumer (still running) while no page can hear about it.
        send_live(bob, room, "sent while the pages were offline")
        wait_until(
            lambda: Message.objects.filter(room=room, body="sent while the pages were offline").exists(),
            what="the message sent during the restart is stored",
        )
        # Typed while offline: queued, shown as pending.
        send(a, "typed while offline")
        expect(a.locator("#pending .message [data-role=status]")).to_have_text("Waiting for connection…")
    finally:
        server.start("web")

    expected = ["before the restart", "sent while the pages were offline", "typed while offline"]
    for page in (a, b):
        expect(page.locator("#offline-banner")).to_be_hidden(timeout=RECONNECT_TIMEOUT_MS)
        expect(message_bodies(page)).to_have_text(expected, timeout=RECONNECT_TIMEOUT_MS)
    expect(a.locator("#pending .message")).to_have_count(0)

    # Live again, and still nothing doubled (a late duplicate would have arrived by now).
    send(b, "after the restart")
    for page in (a, b):
        expect(message_bodies(page)).to_have_text([*expected, "after the restart"])
        assert seqs(page) == [1, 2, 3, 4]
    assert Message.objects.filter(room=room, body="typed while offline").count() == 1
