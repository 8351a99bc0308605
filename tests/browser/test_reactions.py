"""Reactions in the web chat: the picker, the chips, taking one back, live on the other page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, send_live

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def first_message(page):
    return page.locator('#messages .message[data-seq="1"]')


def chips(page):
    return first_message(page).locator(".reaction")


def test_two_people_react_and_unreact_and_the_chips_follow_on_both_pages_and_after_a_reload(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    send_live(bob, room, "Lunch at noon?")
    a = browsers.open_room_as(alice, room)
    b = browsers.open_room_as(bob, room)
    expect(first_message(a)).to_have_count(1)

    # Alice reacts from the picker; both pages show one thumbs-up, Alice's own highlighted.
    first_message(a).hover()
    first_message(a).locator("[data-role=react]").click()
    a.locator(".reaction-picker .reaction-choice", has_text="👍").click()
    for page in (a, b):
        expect(chips(page)).to_have_text(["👍 1"])
    expect(chips(a).first).to_have_class("reaction reaction-mine")
    expect(chips(b).first).to_have_attribute("aria-pressed", "false")
    expect(chips(b).first).to_have_attribute("title", "alice")

    # Bob adds his by clicking the chip; then a heart from the picker.
    chips(b).first.click()
    for page in (a, b):
        expect(chips(page)).to_have_text(["👍 2"])
    first_message(b).hover()
    first_message(b).locator("[data-role=react]").click()
    b.locator(".reaction-picker .reaction-choice", has_text="❤️").click()
    expect(chips(a)).to_have_text(["👍 2", "❤️ 1"])
    screenshot(a, "reactions")

    # Alice takes hers back; a reload of Bob's page reads the same from the history.
    chips(a).first.click()
    expect(chips(b)).to_have_text(["👍 1", "❤️ 1"])
    b.reload()
    expect(chips(b)).to_have_text(["👍 1", "❤️ 1"])
    expect(chips(b).first).to_have_attribute("title", "bob")
