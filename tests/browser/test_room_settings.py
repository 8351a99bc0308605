"""Room management in the web chat (rename, topic, delete), who has read a message, and Mark unread."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.models import Participant, Room
from rooms.services import participant_role_set
from tests.browser.conftest import room_url, screenshot, send_live, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def message(page, text: str):
    return page.locator("#messages .message", has=page.locator("[data-role=body]", has_text=text))


def badge(page, room):
    return page.locator(f'.room-row[data-room="{room.pk}"] [data-role=badge]')


def read_position(user, room) -> int:
    return Participant.objects.get(room=room, user=user).last_read_seq


def test_the_owner_renames_sets_the_topic_and_deletes_the_room_and_the_other_page_follows(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    a = browsers.open_room_as(alice, room)
    b = browsers.open_room_as(bob, room)
    expect(b.locator("#room-settings-open")).to_be_hidden()  # a plain member has no Settings
    expect(b.locator("#room-topic")).to_be_hidden()

    a.click("#room-settings-open")
    dialog = a.locator("#room-settings")
    expect(dialog).to_be_visible()
    expect(a.locator("#room-settings-name")).to_have_value("general")
    a.fill("#room-settings-name", "Launch")
    a.fill("#room-settings-topic", "Ship it on Friday; checklist in the drawer")
    screenshot(a, "room-settings")
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_be_hidden()

    for page in (a, b):
        expect(page.locator("#room-title")).to_have_text("Launch")
        expect(page.locator("#room-topic")).to_have_text("Ship it on Friday; checklist in the drawer")
        expect(page.locator(f'.room-row[data-room="{room.pk}"] [data-role=name]')).to_have_text("Launch")
    expect(b).to_have_title("Launch · Chat")
    screenshot(b, "room-topic")
    room.refresh_from_db()
    assert (room.name, room.topic) == ("Launch", "Ship it on Friday; checklist in the drawer")

    # Made an admin, Bob gets Settings at once (no Delete: that is the owner's), and clears the topic.
    participant_role_set(actor_id=alice.pk, room_id=room.pk, user_id=bob.pk, role="admin")
    b.click("#room-settings-open")
    expect(b.locator("#room-settings")).to_be_visible()
    expect(b.locator("#room-delete")).to_be_hidden()
    b.fill("#room-settings-topic", "")
    b.locator("#room-settings button[type=submit]").click()
    expect(a.locator("#room-topic")).to_be_hidden()

    # The owner deletes the room, after a confirm; Bob's page says so and drops it from his list.
    a.click("#room-settings-open")
    expect(a.locator("#room-delete")).to_be_visible()
    a.once("dialog", lambda confirm: confirm.accept())
    a.click("#room-delete")
    a.wait_for_url(browsers.server.http + "/")
    expect(b.locator("#room-notice")).to_have_text("This room was deleted.")
    expect(b.locator("#composer-input")).to_be_disabled()
    expect(b.locator("#room-settings-open")).to_be_hidden()
    expect(b.locator(f'.room-row[data-room="{room.pk}"]')).to_have_count(0)
    assert not Room.objects.filter(pk=room.pk).exists()


def test_who_has_read_a_message_and_mark_unread_keeps_the_room_unread(browsers, make_user, make_room):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = make_room(owner=alice, members=[bob, carol], name="Reviews")
    b = browsers.open_room_as(bob, room)
    a = browsers.open_room_as(alice, room)
    send_live(alice, room, "Ready for review")

    # Bob has the room open, so he reads it; Carol has not. Alice asks who has.
    counter = message(a, "Ready for review").locator("[data-role=unread]")
    expect(counter).to_have_text("1")
    counter.click()
    popover = a.locator("#readers-popover")
    expect(popover).to_be_visible()
    expect(a.locator("#readers-list li")).to_have_text(["bob"])
    expect(a.locator("#readers-pending")).to_have_text("1 member has not read it yet.")
    screenshot(a, "message-readers")
    a.keyboard.press("Escape")
    expect(popover).to_be_hidden()
    mine = message(a, "Ready for review")
    mine.hover()
    expect(mine.locator("[data-role=mark-unread]")).to_be_hidden()  # not on one's own message
    mine.locator("[data-role=readers]").click()
    expect(a.locator("#readers-list li")).to_have_text(["bob"])

    # Bob marks it unread: his list shows the room unread, and Alice's counter goes back up.
    theirs = message(b, "Ready for review")
    theirs.hover()
    expect(theirs.locator("[data-role=readers]")).to_be_hidden()
    theirs.locator("[data-role=mark-unread]").click()
    expect(badge(b, room)).to_have_text("1")
    wait_until(lambda: read_position(bob, room) == 0, what="Bob's read position moved back")
    expect(counter).to_have_text("2")

    # While he stays, the page reads nothing by itself, not even a new message...
    send_live(alice, room, "Any news?")
    expect(message(b, "Any news?")).to_have_count(1)
    expect(badge(b, room)).to_have_text("2")
    b.wait_for_timeout(500)
    assert read_position(bob, room) == 0
    # ...until he sends one.
    b.fill("#composer-input", "Looking now")
    b.press("#composer-input", "Enter")
    expect(badge(b, room)).to_be_hidden()
    wait_until(lambda: read_position(bob, room) == 3, what="Bob's read position at his message")

    # The room list page shows what he marked.
    latest = message(b, "Any news?")
    latest.hover()
    latest.locator("[data-role=mark-unread]").click()
    expect(badge(b, room)).to_have_text("2")
    b.goto("/")
    expect(badge(b, room)).to_have_text("2")
    b.goto(room_url(room))  # opening the room again reads it
    expect(badge(b, room)).to_be_hidden()
    wait_until(lambda: read_position(bob, room) == 3, what="read again on re-entering")
