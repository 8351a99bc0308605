"""Editing and deleting stored messages in the web chat, seen live on the other person's page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, send_live

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def message(page, text: str):
    return page.locator("#messages .message", has=page.locator("[data-role=body]", has_text=text))


def by_seq(page, seq: int):
    return page.locator(f'#messages .message[data-seq="{seq}"]')


def test_a_sender_edits_with_the_button_and_the_up_arrow_and_deletes_and_the_other_page_follows(
    browsers, alice_and_bob
):
    alice, bob, room = alice_and_bob
    b = browsers.open_room_as(bob, room)
    a = browsers.open_room_as(alice, room)
    send_live(bob, room, "Helo Alice")
    expect(message(a, "Helo Alice")).to_have_count(1)
    own = by_seq(b, 1)

    # Bob edits his message with its Edit button; Alice's page shows the new text, marked edited.
    own.hover()
    own.locator("[data-role=edit]").click()
    editor = own.locator(".message-editor-input")
    expect(editor).to_have_value("Helo Alice")
    editor.fill("Hello Alice")
    screenshot(b, "message-editing")
    editor.press("Enter")
    expect(own.locator(".message-editor")).to_have_count(0)
    edited = message(a, "Hello Alice")
    expect(edited).to_have_count(1)
    expect(edited.locator("[data-role=edited]")).to_be_visible()
    expect(a.locator("#room-list [data-role=preview]")).to_have_text(["Hello Alice"])  # the sidebar too

    # The Up arrow in an empty composer opens the last of his own messages; Esc leaves it as it was.
    b.locator("#composer-input").press("ArrowUp")
    expect(own.locator(".message-editor-input")).to_have_value("Hello Alice")
    own.locator(".message-editor-input").press("Escape")
    expect(own.locator(".message-editor")).to_have_count(0)
    expect(b.locator("#composer-input")).to_be_focused()

    # Alice may not edit Bob's message; as the room's owner she may delete it (after a confirm).
    edited.hover()
    expect(edited.locator("[data-role=edit]")).to_be_hidden()
    a.once("dialog", lambda dialog: dialog.accept())
    edited.locator("[data-role=delete]").click()
    for page in (a, b):
        expect(page.locator("#messages .message.message-deleted [data-role=body]")).to_have_text(
            ["This message was deleted."]
        )
    expect(a.locator("#room-list [data-role=preview]")).to_have_text([""])
    screenshot(a, "message-deleted")


def test_a_member_sees_no_delete_on_others_messages_and_a_refused_edit_says_why(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    send_live(alice, room, "Owner's words")
    b = browsers.open_room_as(bob, room)
    theirs = message(b, "Owner's words")
    expect(theirs).to_have_count(1)
    theirs.hover()
    expect(theirs.locator("[data-role=edit]")).to_be_hidden()
    expect(theirs.locator("[data-role=delete]")).to_be_hidden()

    send_live(bob, room, "Mine")
    expect(message(b, "Mine")).to_have_count(1)
    mine = by_seq(b, 2)
    mine.hover()
    mine.locator("[data-role=edit]").click()
    mine.locator(".message-editor-input").fill("Mine, longer than the server accepts " + "x" * 5000)
    mine.locator(".message-editor-input").press("Enter")
    expect(b.locator(".toast")).to_contain_text("Could not edit")
    expect(mine.locator(".message-editor")).to_have_count(1)  # kept open to fix
