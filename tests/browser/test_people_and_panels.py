"""Small things of the web chat: messaging oneself, one colour per person, the members panel on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.models import Room
from rooms.services import room_open_direct
from tests.browser.conftest import store_history

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


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
