"""System lines in the web chat: who was added, who left, a rename, live on every page and in history;
the notice to the invited user; the prompt of a group room nobody else is in yet."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.models import Participant
from tests.browser.conftest import room_url, screenshot, send_live

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def line(page, text: str):
    return page.locator("#messages .system-line", has_text=text)


def test_joins_leaves_and_renames_are_lines_in_the_room_and_the_invited_user_is_told(browsers, make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, name="general")
    a = browsers.open_room_as(alice, room)
    b = browsers.open_as(bob)  # on his room list, where the room is not yet

    # Nobody else is in the new room: a prompt, whose button opens the members panel's invite field.
    prompt = a.locator("#invite-prompt")
    expect(prompt).to_contain_text("Invite people to start: Members → Invite")
    screenshot(a, "invite-prompt")
    prompt.get_by_role("button", name="Invite people").click()
    expect(a.locator("#members-panel")).to_be_visible()
    expect(a.locator("#invite-username")).to_be_focused()
    a.fill("#invite-username", "bob")
    a.click("#invite-form button[type=submit]")

    expect(line(a, "alice added bob")).to_be_visible()
    expect(prompt).to_have_count(0)
    # Bob hears who added him, and where, with the way there; the line does not make the room unread.
    toast = b.locator("#toast")
    expect(toast).to_contain_text("alice added you to general")
    screenshot(b, "invited-toast")
    row = b.locator(f'.room-row[data-room="{room.pk}"]')
    expect(row.locator("[data-role=preview]")).to_have_text("alice added bob")
    expect(row.locator("[data-role=badge]")).to_be_hidden()
    toast.get_by_role("link", name="Open").click()
    b.wait_for_url(browsers.server.http + room_url(room))
    expect(line(b, "alice added bob")).to_be_visible()
    # A line has no sender, actions or counter of its own.
    expect(line(b, "alice added bob").locator("time")).to_be_visible()
    expect(line(b, "alice added bob").locator("button, [data-role=unread]")).to_have_count(0)

    send_live(bob, room, "hello all")
    expect(a.locator("#messages .message", has_text="hello all")).to_be_visible()

    # Bob leaves: Alice's page says so.
    b.once("dialog", lambda confirm: confirm.accept())
    b.click("#leave-room")
    b.wait_for_url(browsers.server.http + "/")
    expect(line(a, "bob left")).to_be_visible()
    assert not Participant.objects.filter(room=room, user=bob).exists()

    # A rename is a line too.
    a.click("#room-settings-open")
    a.fill("#room-settings-name", "plans")
    a.locator("#room-settings button[type=submit]").click()
    expect(line(a, "alice renamed the room to 'plans'")).to_be_visible()
    screenshot(a, "system-lines")

    # History shows the same lines, in their place among the messages.
    a.reload()
    items = a.locator("#messages > li:not(.divider)")
    expect(items).to_have_count(4)
    texts = [" ".join(text.split()) for text in items.evaluate_all("(items) => items.map((item) => item.innerText)")]
    assert texts[0].startswith("alice added bob") and texts[2].startswith("bob left"), texts
    assert "hello all" in texts[1] and texts[3].startswith("alice renamed the room to 'plans'"), texts
    expect(a.locator("#messages .system-line")).to_have_count(3)
