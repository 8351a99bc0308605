"""Replies in the web chat: Reply, the quote on both pages, the jump to the original, its deletion."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from chat_messages.services import message_send
from tests.browser.conftest import screenshot, send_live, store_history

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def by_seq(page, seq: int):
    return page.locator(f'#messages .message[data-seq="{seq}"]')


def test_a_reply_quotes_its_original_on_both_pages_jumps_to_it_and_follows_its_deletion(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    send_live(alice, room, "Who brings the cake?")
    a = browsers.open_room_as(alice, room)
    b = browsers.open_room_as(bob, room)
    expect(by_seq(b, 1)).to_have_count(1)

    by_seq(b, 1).hover()
    by_seq(b, 1).locator("[data-role=reply]").click()
    expect(b.locator("#reply-bar")).to_be_visible()
    expect(b.locator("#reply-bar .quote-body")).to_have_text("Who brings the cake?")
    b.fill("#composer-input", "I do!")
    screenshot(b, "reply-composing")
    b.press("#composer-input", "Enter")
    expect(b.locator("#reply-bar")).to_be_hidden()

    for page in (a, b):
        quote = by_seq(page, 2).locator("[data-role=quote]")
        expect(quote).to_be_visible()
        expect(quote.locator(".quote-sender")).to_have_text("alice")
        expect(quote.locator(".quote-body")).to_have_text("Who brings the cake?")
    screenshot(a, "reply")

    # The quote leads to the original.
    by_seq(a, 2).locator("[data-role=quote]").click()
    expect(by_seq(a, 1)).to_contain_class("is-focused")

    # Alice deletes the original: the quote on Bob's page keeps none of its words.
    by_seq(a, 1).hover()
    a.once("dialog", lambda dialog: dialog.accept())
    by_seq(a, 1).locator("[data-role=delete]").click()
    expect(by_seq(b, 2).locator(".quote-body")).to_have_text("Message deleted")
    b.reload()
    expect(by_seq(b, 2).locator(".quote-body")).to_have_text("Message deleted")


def test_a_quote_of_a_message_far_up_opens_the_room_at_it(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    store_history(room, [alice, bob], [f"old {i}" for i in range(1, 81)])
    message_send(user=bob, room_id=room.pk, client_msg_id=uuid.uuid4(), body="about the first one", reply_to=1)
    a = browsers.open_room_as(alice, room)
    expect(by_seq(a, 81)).to_have_count(1)
    expect(by_seq(a, 1)).to_have_count(0)  # not on the page: fifty messages around the newest

    by_seq(a, 81).locator("[data-role=quote]").click()

    a.wait_for_url(f"**/rooms/{room.pk}/?at=1")
    expect(by_seq(a, 1)).to_contain_class("is-focused")
