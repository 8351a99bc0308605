"""Small things of the web chat: messaging oneself, one colour per person, the members panel on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.models import Room
from rooms.services import room_open_direct
from tests.browser.conftest import room_url, screenshot, store_history

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_messaging_oneself_says_that_is_you_and_opens_nothing(browsers, make_user):
    alice = make_user("alice")
    page = browsers.open_as(alice)

    page.click("#new-room-toggle")
    page.fill("#new-direct-username", "ALICE")
    page.click("#new-direct-form button[type=submit]")

    expect(page.locator("#new-room-status")).to_have_text("That's you: pick someone else.")
    assert page.url.endswith("/")
    assert not Room.objects.filter(kind=Room.Kind.DIRECT).exists()


def avatar_colour(locator) -> str:
    return locator.evaluate("(element) => getComputedStyle(element).backgroundColor")


def test_a_person_wears_the_same_avatar_colour_in_the_sidebar_and_the_conversation(browsers, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    direct, _ = room_open_direct(user=alice, other=bob)
    store_history(direct, [bob], ["hi Alice"])
    page = browsers.open_room_as(alice, direct)

    in_sidebar = page.locator(f'.room-row[data-room="{direct.pk}"] [data-role=avatar]')
    in_conversation = page.locator("#messages .message [data-role=avatar]").first
    expect(in_conversation).to_have_text("B")
    page.click("#members-toggle")
    in_members = page.locator(f'#member-list [data-user="{bob.pk}"] [data-role=avatar]')
    expect(in_members).to_be_visible()

    assert avatar_colour(in_sidebar) == avatar_colour(in_conversation) == avatar_colour(in_members)
    # Not one colour for everyone: Alice's own differs from Bob's.
    assert avatar_colour(page.locator(f'#member-list [data-user="{alice.pk}"] [data-role=avatar]')) != avatar_colour(
        in_sidebar
    )


def test_on_a_phone_the_members_sheet_closes_by_its_button_by_escape_and_by_a_tap_beside_it(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    store_history(room, [alice, bob], ["Morning!", "Hi, who else is here?"])
    page = browsers.open_as(alice, **PHONE)
    page.goto(room_url(room))
    panel, close, timeline = page.locator("#members-panel"), page.locator("#members-close"), page.locator("#timeline")
    toggle = page.locator("#members-toggle")
    expect(page.locator("#messages .message")).to_have_count(2)

    toggle.click()
    expect(panel).to_be_visible()
    expect(close).to_be_visible()
    expect(close).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#member-list .member")).to_have_count(2)
    screenshot(page, "members-on-phone")

    close.click()
    expect(panel).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()
    expect(page.locator("#messages .message").last).to_be_in_viewport()

    toggle.click()
    expect(panel).to_be_visible()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    # A tap on the shaded conversation closes the sheet, and does nothing else.
    toggle.click()
    expect(panel).to_be_visible()
    timeline.click(position={"x": 20, "y": 200})
    expect(panel).to_be_hidden()
    expect(page.locator("#messages .message").first).to_be_in_viewport()


def test_on_a_wide_screen_the_members_panel_sits_beside_the_conversation_as_before(browsers, alice_and_bob):
    alice, _, room = alice_and_bob
    page = browsers.open_room_as(alice, room)

    page.click("#members-toggle")
    panel = page.locator("#members-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#members-close")).to_be_hidden()
    assert panel.evaluate("(element) => getComputedStyle(element).position") != "absolute"
    page.keyboard.press("Escape")  # Esc belongs to the composer here (a reply, an edit)
    expect(panel).to_be_visible()
    page.click("#members-toggle")
    expect(panel).to_be_hidden()
