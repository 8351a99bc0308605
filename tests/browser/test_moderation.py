"""Moderation in the web chat: reporting a message, a moderator's warning in a banner, a suspension's close."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from moderation.models import Report
from moderation.services import warning_issue
from tests.browser.conftest import send_live

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_reporting_a_message_from_its_actions(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    send_live(bob, room, "buy cheap watches")
    a = browsers.open_room_as(alice, room)
    message = a.locator('#messages .message[data-seq="1"]')
    expect(message).to_have_count(1)
    message.hover()
    message.locator("[data-role=report]").click()
    dialog = a.locator("#report-dialog")
    dialog.locator("input[value=spam]").check()
    dialog.locator("textarea[name=note]").fill("again")
    dialog.locator("button[type=submit]").click()
    expect(a.locator("#toast")).to_contain_text("Reported")
    report = Report.objects.get()
    assert (report.reporter_id, report.reason, report.note, report.message.seq) == (alice.pk, "spam", "again", 1)


def test_ones_own_message_has_no_report_button(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    send_live(alice, room, "mine")
    a = browsers.open_room_as(alice, room)
    message = a.locator('#messages .message[data-seq="1"]')
    expect(message).to_have_count(1)
    expect(message.locator("[data-role=report]")).to_be_hidden()


def test_a_warning_shows_live_in_a_banner_until_dismissed(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    a = browsers.open_room_as(alice, room)
    a.wait_for_function("() => window.Chat && window.Chat.socket.ws && window.Chat.socket.ws.readyState === 1")
    warning_issue(user=alice, text="Keep it civil.")
    banner = a.locator("#moderation-warnings")
    expect(banner).to_contain_text("Keep it civil.")
    banner.locator("[data-role=dismiss]").click()
    expect(banner).to_be_hidden()
    a.reload()
    expect(a.locator("#messages")).to_be_attached()
    a.wait_for_timeout(500)
    expect(a.locator("#moderation-warnings")).to_be_hidden()
