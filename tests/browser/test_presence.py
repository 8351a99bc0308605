"""Presence in the web chat, two people: Bob's dot on Alice's page turns online, away and offline.

A web process of its own with short timings (away after 3 s idle), so the idle page turns away
within the test; the pages are the real ones, the socket and Redis too.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from rooms.services import room_open_direct
from tests.browser.conftest import Browsers, room_url, screenshot
from tests.conftest import free_port

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AWAY_S = 3
WAIT_MS = (AWAY_S + 10) * 1000


@pytest.fixture(scope="module")
def quick_server(server):
    """A web process on the session's stack where presence turns away after AWAY_S."""
    port = free_port()
    server.start("web:presence-ui", port=port, CHAT_AWAY_AFTER_S=str(AWAY_S), CHAT_PRESENCE_SWEEP_S="0.3")
    yield SimpleNamespace(http=f"http://127.0.0.1:{port}")
    server.stop("web:presence-ui")


@pytest.fixture
def pages(chromium, quick_server):
    opened = Browsers(chromium, quick_server)
    yield opened
    opened.close()
    assert opened.errors == [], "the pages raised script errors"


def test_bobs_dot_turns_online_away_and_offline_as_his_page_is_active_idle_and_closed(pages, make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    make_room(owner=alice, members=[bob], name="general")
    direct, _ = room_open_direct(user=alice, other=bob)
    a = pages.open_as(alice)
    a.goto(room_url(direct))
    header = a.locator("#room-presence")
    header_dot = header.locator("[data-role=dot]")
    member_dot = a.locator(f'#member-list [data-user="{bob.pk}"] [data-role=presence]')
    row_dot = a.locator(f'#room-list [data-room="{direct.pk}"] [data-role=presence]')
    dots = (header_dot, member_dot, row_dot)

    def all_say(status: str) -> None:
        for dot in dots:
            expect(dot).to_have_attribute("data-status", status, timeout=WAIT_MS)

    all_say("offline")  # not here yet
    expect(header).to_contain_text("Offline")

    b = pages.open_as(bob)
    all_say("online")
    expect(header).to_have_text("Online")
    expect(row_dot).to_be_visible()

    # Bob's page sits idle: away, with when he was last seen.
    all_say("away")
    expect(header).to_contain_text("Away, last seen")
    a.locator("#members-toggle").click()
    screenshot(a, "presence-away")
    assert "last seen" in member_dot.get_attribute("title")

    # He types: online again at once (his page knows it was away and does not wait 30 s).
    b.locator("#new-room-toggle").click()
    b.keyboard.type("hi")
    all_say("online")

    # He closes the page: offline, and still when he was last seen.
    b.close()
    all_say("offline")
    expect(header).to_contain_text("Offline, last seen")
    assert "last seen" in row_dot.get_attribute("title")


def test_the_presence_module_throttles_activity_sends_at_once_while_away_and_draws_the_hover_text(chromium, server):
    """static/js/chat/presence.js alone, in a stub page on the server's origin (as test_modules.py does)."""
    context = chromium.new_context(base_url=server.http, locale="en-US", timezone_id="UTC")
    context.route(f"{server.http}/__presence-stub__/", lambda route: route.fulfill(body="<!doctype html><p>stub</p>"))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/__presence-stub__/")
    try:
        got = page.evaluate(
            """async () => {
              const m = await import("/static/js/chat/presence.js");
              const sent = [];
              const handlers = {};
              const socket = {
                send(frame) { sent.push(frame.type); return true; },
                on(type, fn) { handlers[type] = fn; },
                onOpen() {},
              };
              const p = m.createPresence({ socket, me: { id: 1 }, everyMs: 60000 });
              p.attach();
              const heard = [];
              p.onChange((id, state) => heard.push([id, state.status]));
              p.active(true);
              p.active();
              p.active();
              const throttled = sent.length;
              handlers["presence.updated"]({ user: { id: 1, username: "me" }, status: "away", last_seen: "2026-11-25T14:05:00Z" });
              await new Promise((resolve) => setTimeout(resolve, 1100));
              p.active();  // away: at once, not after everyMs (at most one a second)
              const afterAway = sent.length;
              handlers["presence.updated"]({ user: { id: 2, username: "bob" }, status: "offline", last_seen: "2026-11-25T14:05:00Z" });
              handlers["presence.updated"]({ user: { id: 2, username: "bob" }, status: "offline", last_seen: "2026-11-25T14:05:00Z" });
              const dot = document.createElement("span");
              m.setPresence(dot, p.get(2));
              const unknown = document.createElement("span");
              m.setPresence(unknown, p.get(3));
              return {
                throttled, afterAway, heard,
                dot: [dot.dataset.status, dot.title, dot.hidden],
                unknownHidden: unknown.hidden,
                online: m.presenceTitle({ status: "online", last_seen: "2026-11-25T14:05:00Z" }),
              };
            }"""
        )
    finally:
        context.close()
    assert errors == []
    assert got["throttled"] == 1, "one presence.active per interval"
    assert got["afterAway"] == 2, "at once when the server says we are away"
    assert got["heard"] == [[1, "away"], [2, "offline"]], "a repeated state is no change"
    assert got["dot"][0] == "offline" and got["dot"][1].startswith("Offline, last seen") and got["dot"][2] is False
    assert got["unknownHidden"] is True
    assert got["online"] == "Online"
