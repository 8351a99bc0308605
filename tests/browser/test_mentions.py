"""Mentions and notifications in the web chat: highlights, the sidebar's @ badge, mute, and the
browser notifications a hidden page raises (the permission granted to the test's context)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.models import Participant, Room
from rooms.services import participant_mute, room_open_direct
from tests.browser.conftest import room_url, screenshot, send_live, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The real Notification, with every notification the page raises also recorded, and a switch
# for document.visibilityState (a headless page is always "visible").
RECORD_NOTIFICATIONS = """
window.__notes = [];
window.__hidden = false;
const Real = window.Notification;
function Recorded(title, options) {
  window.__notes.push({ title, body: options && options.body });
  return new Real(title, options);
}
Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
Recorded.requestPermission = (...args) => Real.requestPermission(...args);
window.Notification = Recorded;
Object.defineProperty(document, "visibilityState", { get: () => (window.__hidden ? "hidden" : "visible") });
"""


def notes(page) -> list[dict]:
    return page.evaluate("window.__notes")


def row(page, room):
    return page.locator(f'#room-list .room-row[data-room="{room.pk}"]')


def test_a_hidden_page_notifies_mentions_and_direct_messages_but_not_from_a_muted_room(
    browsers, alice_and_bob, make_room
):
    alice, bob, general = alice_and_bob
    random = make_room(owner=alice, members=[bob], name="random")
    b = browsers.open_as(bob, permissions=["notifications"])
    b.context.add_init_script(RECORD_NOTIFICATIONS)
    b.goto(room_url(general))
    expect(b.locator("#notifications-enable")).to_be_hidden()  # granted: nothing to ask
    b.evaluate("window.__hidden = true")

    send_live(alice, general, "@bob can you look?")
    mention = b.locator("#messages .message.message-mentions-me")
    expect(mention.locator(".mention-me")).to_have_text("@bob")
    wait_until(lambda: len(notes(b)) == 1, what="a notification of the mention")
    send_live(alice, general, "no mention here")
    expect(b.locator("#messages .message")).to_have_count(2)

    # Muted: the room's mention counts (the @ badge), its unread badge and notifications do not.
    participant_mute(user_id=bob.pk, room_id=random.pk, muted=True)
    expect(row(b, random).locator("[data-role=muted]")).to_be_visible()
    send_live(alice, random, "@bob in the muted room")
    send_live(alice, random, "and more")
    expect(row(b, random).locator("[data-role=mentions]")).to_have_text("@")
    expect(row(b, random).locator("[data-role=badge]")).to_be_hidden()

    direct = room_open_direct(user=alice, other=bob)[0]
    send_live(alice, direct, "a direct word")
    wait_until(lambda: len(notes(b)) == 2, what="a notification of the direct message")
    assert notes(b) == [
        {"title": "alice in general", "body": "@bob can you look?"},
        {"title": "alice", "body": "a direct word"},
    ]
    screenshot(b, "mentions")

    # A page in sight raises none.
    b.evaluate("window.__hidden = false")
    send_live(alice, general, "@bob again")
    expect(b.locator("#messages .message")).to_have_count(3)
    assert len(notes(b)) == 2


def test_mute_in_the_header_hides_the_badge_and_follows_on_the_users_other_page(browsers, alice_and_bob):
    alice, bob, general = alice_and_bob
    b = browsers.open_room_as(bob, general)
    other = browsers.open_as(bob)

    b.locator("#mute-toggle").click()
    expect(b.locator("#mute-toggle")).to_have_text("Unmute")
    expect(row(other, general).locator("[data-role=muted]")).to_be_visible()
    b.goto("/")  # away from the room, so the next message stays unread
    expect(row(b, general).locator("[data-role=muted]")).to_be_visible()
    send_live(alice, general, "while muted")
    expect(row(other, general).locator(".room-preview")).to_have_text("while muted")
    expect(row(other, general).locator("[data-role=badge]")).to_be_hidden()
    # The server counts it unread for Bob (what the badge shows once unmuted).
    assert Participant.objects.get(room=general, user=bob).last_read_seq < Room.objects.get(pk=general.pk).last_seq
    assert not other.title().startswith("(")  # no unread count in the tab title

    # Unmuted from the other page: both show the unread message again.
    other.evaluate(f"Chat.api('DELETE', '/api/v1/rooms/{general.pk}/mute/')")
    for page in (b, other):
        expect(row(page, general).locator("[data-role=muted]")).to_be_hidden()
        expect(row(page, general).locator("[data-role=badge]")).to_have_text("1")
